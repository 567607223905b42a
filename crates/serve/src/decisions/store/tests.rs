#![allow(clippy::unwrap_used)]

use super::*;
use criguard_policy::SigstoreSignature;

fn pull(n: u8) -> StoredPull {
    StoredPull {
        image_id: format!("sha256:{}", sha256(&[n, 1]).encoded()),
        repository: "registry.example/team/app".to_owned(),
        located: Located {
            config_digest: Some(sha256(&[n, 1])),
            ..Located::digest(sha256(&[n]))
        },
        signatures: vec![
            Signature::SimpleSigning(b"\xa3gpg".to_vec()),
            Signature::Sigstore(SigstoreSignature {
                mime_type: "application/vnd.dev.cosign.simplesigning.v1+json".to_owned(),
                payload: vec![n; 100],
                annotations: [("k".to_owned(), "v".to_owned())].into(),
            }),
        ],
    }
}

fn open(dir: &Path, entries: usize, bytes: u64) -> FileStore {
    FileStore::open(dir, entries, bytes, Arc::new(Metrics::new())).unwrap()
}

#[test]
fn records_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), 10, 1 << 20).put(&pull(1)).unwrap();
    let store = open(dir.path(), 10, 1 << 20);
    let p = pull(1);
    assert_eq!(store.get(&p.image_id, &p.repository).unwrap(), Some(p));
    assert_eq!(
        store.get(&pull(2).image_id, &pull(1).repository).unwrap(),
        None
    );
}

#[test]
fn a_changed_blob_or_garbage_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 10, 1 << 20);
    let p = pull(1);
    store.put(&p).unwrap();
    let path = store.pulls.join(record_name(&p.image_id, &p.repository));
    let text = std::fs::read_to_string(&path).unwrap();
    // Another valid simple-signing blob in place of the first.
    let forged = text.replacen(
        &STANDARD.encode(b"\0simple-signing\n\xa3gpg"),
        &STANDARD.encode(b"\0simple-signing\n\xa3GPG"),
        1,
    );
    assert_ne!(forged, text);
    std::fs::write(&path, forged).unwrap();
    assert_eq!(store.get(&p.image_id, &p.repository).unwrap(), None);
    assert!(!path.exists());
    store.put(&p).unwrap();
    std::fs::write(&path, b"\0\0garbage").unwrap();
    assert_eq!(store.get(&p.image_id, &p.repository).unwrap(), None);
    assert!(!path.exists());
}

#[test]
fn an_unreadable_store_is_moved_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), 10, 1 << 20).put(&pull(1)).unwrap();
    std::fs::write(dir.path().join("verified-pulls/FORMAT"), b"garbage").unwrap();
    let store = open(dir.path(), 10, 1 << 20);
    let p = pull(1);
    assert_eq!(store.get(&p.image_id, &p.repository).unwrap(), None);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("verified-pulls.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    store.put(&p).unwrap();
    assert!(store.get(&p.image_id, &p.repository).unwrap().is_some());
    // A file where the store should be is moved aside too.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("verified-pulls"), b"junk").unwrap();
    let store = open(other.path(), 10, 1 << 20);
    store.put(&p).unwrap();
    assert!(store.get(&p.image_id, &p.repository).unwrap().is_some());
}

#[test]
fn the_least_recently_used_records_are_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 2, 1 << 20);
    let (a, b, c) = (pull(1), pull(2), pull(3));
    store.put(&a).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    store.put(&b).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Reading `a` makes `b` the oldest.
    assert!(store.get(&a.image_id, &a.repository).unwrap().is_some());
    std::thread::sleep(std::time::Duration::from_millis(20));
    store.put(&c).unwrap();
    assert!(store.get(&a.image_id, &a.repository).unwrap().is_some());
    assert!(store.get(&b.image_id, &b.repository).unwrap().is_none());
    assert!(store.get(&c.image_id, &c.repository).unwrap().is_some());
    // A byte bound of about one record keeps only the newest.
    let size = encode(&a).len() as u64;
    let store = open(dir.path(), 10, size + 10);
    assert_eq!(store.lock().entries.len(), 1);
}
