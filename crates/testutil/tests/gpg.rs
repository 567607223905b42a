//! The GnuPG harness makes real keys and signatures, and bookworm's skopeo
//! 1.9.3 (containers/image 5.23, gpgme) signs with them and judges images
//! by them, from a lookaside on disk or over HTTP.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use criguard_testutil::gpg::colon_validities;
use criguard_testutil::{
    GpgHome, PeerTools, Registry, StaticHttpServer, lookaside_registries_d, push_test_image,
    push_test_multiarch, run_ok, run_with_timeout, sha256_digest, skopeo_copy_with_policy_using,
    skopeo_sign_gpg, skopeo_sign_gpg_all, skopeo_standalone_sign, test_image,
};
use serde_json::Value;

use criguard_testutil::output_text as text;

fn pid_alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would still have one.
    Path::new(&format!("/proc/{pid}")).exists()
}

fn assert_fingerprint(fpr: &str) {
    assert_eq!(fpr.len(), 40, "{fpr:?}");
    assert!(
        fpr.chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)),
        "{fpr:?} is not uppercase hex"
    );
}

/// `--list-keys --with-colons` in `home`, as `(record, fpr, validity)`.
fn validities(home: &GpgHome) -> Vec<(String, String, char)> {
    let listing = run_ok(home.gpg().args(["--list-keys", "--with-colons"]));
    colon_validities(&String::from_utf8(listing).unwrap())
}

fn validity(home: &GpgHome, fpr: &str) -> char {
    validities(home)
        .into_iter()
        .find(|(_, f, _)| f == fpr)
        .unwrap_or_else(|| panic!("{fpr} is not in the keyring"))
        .2
}

/// `gpg --show-keys --with-colons` of a keyring file: its keys in order.
fn show_keys(home: &GpgHome, keyring: &[u8]) -> Vec<(String, String, char)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyring");
    fs::write(&file, keyring).unwrap();
    let listing = run_ok(home.gpg().args(["--show-keys", "--with-colons"]).arg(&file));
    colon_validities(&String::from_utf8(listing).unwrap())
}

/// A fresh home that imported `keyring`: it knows the public keys only.
fn verifier(keyring: &[u8]) -> (GpgHome, tempfile::TempDir) {
    let home = GpgHome::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyring");
    fs::write(&file, keyring).unwrap();
    run_ok(home.gpg().arg("--import").arg(&file));
    (home, dir)
}

/// `gpg --status-fd 1 --decrypt` of a signed message in `home`: the
/// `VALIDSIG` fields and the payload. Panics unless the signature is good.
fn verify(home: &GpgHome, signed: &[u8]) -> (Vec<String>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("signed");
    let output = dir.path().join("payload");
    fs::write(&input, signed).unwrap();
    let status = run_ok(
        home.gpg()
            .args(["--status-fd", "1", "--output"])
            .arg(&output)
            .arg("--decrypt")
            .arg(&input),
    );
    let status = String::from_utf8(status).unwrap();
    assert!(status.contains("[GNUPG:] GOODSIG "), "{status}");
    let validsig = status
        .lines()
        .find_map(|l| l.strip_prefix("[GNUPG:] VALIDSIG "))
        .unwrap_or_else(|| panic!("no VALIDSIG:\n{status}"))
        .split(' ')
        .map(str::to_string)
        .collect();
    (validsig, fs::read(&output).unwrap())
}

/// A policy that requires, for every image on `host`, a simple signature
/// by a key in the keyring at `key_path`, and rejects everything else.
fn gpg_policy(path: &Path, host: &str, key_path: &Path) -> PathBuf {
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {host: [{
            "type": "signedBy",
            "keyType": "GPGKeys",
            "keyPath": key_path,
        }]}},
    });
    fs::write(path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    path.to_path_buf()
}

#[test]
fn agent_is_our_child_and_drop_stops_it() {
    let home = GpgHome::new();
    let mode = fs::metadata(home.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let pid = home.agent_pid();
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "gpg-agent");
    let ppid = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Field 4 of stat is the parent PID: ours, not init's.
    let ppid: u32 = ppid
        .rsplit(") ")
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, std::process::id());
    // It ignores SIGPIPE, or a client hanging up mid-command would kill it.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .unwrap();
    let ignored = u64::from_str_radix(ignored.trim(), 16).unwrap();
    assert_ne!(
        ignored & (1 << (13 - 1)),
        0,
        "SIGPIPE not ignored: {ignored:x}"
    );
    // gpg talks to that agent (key generation needs one) ...
    let fpr = home.generate_key("Agent <agent@example.com>", "ed25519", "sign", "never");
    assert_fingerprint(&fpr);
    let path = home.path().to_path_buf();
    drop(home);
    assert!(!pid_alive(pid), "gpg-agent {pid} survived Drop");
    assert!(!path.exists(), "{} survived Drop", path.display());
}

#[test]
fn keys_subkeys_expiry_and_revocation() {
    let home = GpgHome::new();
    let rsa = home.generate_key("RSA <rsa@example.com>", "rsa3072", "sign", "never");
    let cert_only = home.generate_key("Cert <cert@example.com>", "ed25519", "cert", "1y");
    let sub = home.add_subkey(&cert_only, "ed25519", "sign", "never");
    let doomed = home.add_subkey(&cert_only, "rsa2048", "sign", "never");
    let expired = home.generate_expired_key("Expired <expired@example.com>");
    for fpr in [&rsa, &cert_only, &sub, &doomed, &expired] {
        assert_fingerprint(fpr);
    }
    let mut all = vec![&rsa, &cert_only, &sub, &doomed, &expired];
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5);

    // A certify-only primary: key capabilities (field 12) are "c" for
    // itself, and the key as a whole can sign through its subkeys ("S").
    let listing = String::from_utf8(run_ok(home.gpg().args([
        "--list-keys",
        "--with-colons",
        &cert_only,
    ])))
    .unwrap();
    let pub_line = listing.lines().find(|l| l.starts_with("pub:")).unwrap();
    let caps = pub_line.split(':').nth(11).unwrap();
    assert!(caps.starts_with('c') && !caps.contains('s'), "{pub_line}");
    assert!(caps.contains('S'), "{pub_line}");

    assert_eq!(validity(&home, &rsa), 'u');
    assert_eq!(validity(&home, &expired), 'e');
    assert_eq!(validity(&home, &doomed), 'u');

    home.revoke_subkey(&cert_only, &doomed);
    assert_eq!(validity(&home, &doomed), 'r');
    assert_eq!(validity(&home, &sub), 'u', "only the one subkey is revoked");
    assert_eq!(validity(&home, &cert_only), 'u');

    home.revoke_key(&rsa);
    assert_eq!(validity(&home, &rsa), 'r');

    // The expired and revoked keys travel: another gpg imports and shows them so.
    let keyring = home.export_public(&[&expired, &rsa, &cert_only], false);
    let (other, _dir) = verifier(&keyring);
    assert_eq!(validity(&other, &expired), 'e');
    assert_eq!(validity(&other, &rsa), 'r');
    assert_eq!(validity(&other, &doomed), 'r');
    assert_eq!(validity(&other, &sub), '-', "not ultimately trusted there");
}

#[test]
fn exported_keyrings_keep_order() {
    let home = GpgHome::new();
    let a = home.generate_key("A <a@example.com>", "ed25519", "sign", "never");
    let b = home.generate_key("B <b@example.com>", "rsa2048", "sign,cert", "never");
    let c = home.generate_key("C <c@example.com>", "ed25519", "cert", "never");
    let c_sub = home.add_subkey(&c, "ed25519", "sign", "never");
    for armor in [false, true] {
        let keyring = home.export_public(&[&c, &a, &b], armor);
        assert_eq!(
            keyring.starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n"),
            armor
        );
        let keys = show_keys(&home, &keyring);
        let primaries: Vec<&str> = keys
            .iter()
            .filter(|(r, _, _)| r == "pub")
            .map(|(_, f, _)| f.as_str())
            .collect();
        assert_eq!(primaries, [&c, &a, &b], "armor {armor}: {keys:?}");
        assert!(keys.iter().any(|(r, f, _)| r == "sub" && *f == c_sub));
        // And a fresh gpg imports all three.
        let (other, _dir) = verifier(&keyring);
        assert_eq!(
            validities(&other)
                .iter()
                .filter(|(r, _, _)| r == "pub")
                .count(),
            3
        );
    }

    // Secret keys: unprotected, and protected (exported still protected).
    let secret = home.export_secret(&c, true, None);
    assert!(secret.starts_with(b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n"));
    let protected = home.generate_key_with_passphrase("P <p@example.com>", "ed25519", "pw 1");
    let out = run_with_timeout(
        home.gpg().args(["--export-secret-keys", &protected]),
        criguard_testutil::DEFAULT_TIMEOUT,
    );
    assert!(
        out.stdout.is_empty(),
        "exported a protected key without its passphrase\n{}",
        text(&out)
    );
    let protected_secret = home.export_secret(&protected, false, Some("pw 1"));
    for (secret, fpr, passphrase) in [(&secret, &c, ""), (&protected_secret, &protected, "pw 1")] {
        let other = GpgHome::new();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        fs::write(&file, secret).unwrap();
        run_ok(
            other
                .gpg()
                .args(["--passphrase", passphrase, "--import"])
                .arg(&file),
        );
        let listing = String::from_utf8(run_ok(other.gpg().args([
            "--list-secret-keys",
            "--with-colons",
            fpr,
        ])))
        .unwrap();
        assert!(
            listing.starts_with("sec:") || listing.contains("\nsec:"),
            "{listing}"
        );
    }
    // The agent caches no passphrase: signing still needs it.
    let payload = b"protected payload";
    let signed = home.sign_with_passphrase(&protected, payload, "pw 1");
    let (verifier_home, _dir) = verifier(&home.export_public(&[&protected], false));
    assert_eq!(verify(&verifier_home, &signed).1, payload);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload");
    fs::write(&file, payload).unwrap();
    let out = run_with_timeout(
        home.gpg()
            .args(["--local-user", &protected, "--sign", "--output", "-"])
            .arg(&file),
        criguard_testutil::DEFAULT_TIMEOUT,
    );
    assert!(
        !out.status.success(),
        "signed with a protected key without its passphrase (cached?)\n{}",
        text(&out)
    );
}

#[test]
fn signatures_verify_in_a_fresh_home() {
    let home = GpgHome::new();
    let key = home.generate_key("Signer <signer@example.com>", "ed25519", "sign", "never");
    let primary = home.generate_key("Primary <primary@example.com>", "ed25519", "cert", "never");
    let older = home.add_subkey(&primary, "ed25519", "sign", "never");
    let newer = home.add_subkey(&primary, "rsa2048", "sign", "never");
    let payload = br#"{"critical":{"type":"atomic container signature"}}"#;

    let signed = home.sign(&key, payload);
    let (fresh, _dir) = verifier(&home.export_public(&[&key, &primary], false));
    assert_ne!(fresh.agent_pid(), home.agent_pid());
    let (validsig, got) = verify(&fresh, &signed);
    assert_eq!(got, payload);
    assert_eq!(validsig[0], key, "signing key");
    assert_eq!(validsig[9], key, "primary key");
    // Opaque, compressed, binary: a compressed packet first, no file name.
    let packets = String::from_utf8(run_ok(
        home.gpg()
            .arg("--list-packets")
            .arg(write_temp(&signed).path().join("f")),
    ))
    .unwrap();
    assert!(packets.starts_with("# off=0") && packets.contains(":compressed packet:"));
    assert!(packets.contains("name=\"\""), "{packets}");

    // A certify-only primary signs through a subkey; '!' picks which.
    let (validsig, _) = verify(&fresh, &home.sign(&primary, payload));
    assert!(validsig[0] == older || validsig[0] == newer, "{validsig:?}");
    assert_eq!(validsig[9], primary);
    for subkey in [&older, &newer] {
        let (validsig, _) = verify(&fresh, &home.sign(&format!("{subkey}!"), payload));
        assert_eq!((&validsig[0], &validsig[9]), (subkey, &primary));
    }

    // --digest-algo: VALIDSIG field 8 is the hash algorithm (2 SHA1, 10 SHA512).
    let (validsig, _) = verify(&fresh, &home.sign_with_digest(&key, payload, "SHA1"));
    assert_eq!(validsig[7], "2");
    let (validsig, _) = verify(&fresh, &home.sign_with_digest(&key, payload, "SHA512"));
    assert_eq!(validsig[7], "10");
    // MD5 is made (gpg only warns) but not accepted by a default gpg.
    let md5 = home.sign_with_digest(&key, payload, "MD5");
    let file = write_temp(&md5);
    let packets = String::from_utf8(run_ok(
        home.gpg().arg("--list-packets").arg(file.path().join("f")),
    ))
    .unwrap();
    assert!(packets.contains("digest algo 1,"), "{packets}");
    let out = run_with_timeout(
        fresh
            .gpg()
            .args(["--status-fd", "1", "--verify"])
            .arg(file.path().join("f")),
        criguard_testutil::DEFAULT_TIMEOUT,
    );
    assert!(!out.status.success(), "{}", text(&out));
}

fn write_temp(data: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), data).unwrap();
    dir
}

/// The simple-signing JSON in a verified signature.
fn signed_payload(verifier: &GpgHome, signature: &[u8]) -> (Vec<String>, Value) {
    let (validsig, payload) = verify(verifier, signature);
    (validsig, serde_json::from_slice(&payload).unwrap())
}

#[test]
fn bookworm_skopeo_signs_and_verifies_through_a_lookaside() {
    let registry = Registry::start();
    let host = registry.host();
    let image = push_test_image(&registry, "test/gpg", "v1", "gpg simple signing");
    let home = GpgHome::new();
    let key = home.generate_key("Skopeo <skopeo@example.com>", "rsa2048", "sign", "never");
    let other = home.generate_key("Other <other@example.com>", "ed25519", "sign", "never");
    let work = tempfile::tempdir().unwrap();
    let lookaside = work.path().join("lookaside");

    // Signing in place: the manifest stays, a signature is added.
    let digest = skopeo_sign_gpg(&home, &key, &image.by_tag(), &image.by_tag(), &lookaside);
    assert_eq!(digest, image.digest);
    let hex = digest.strip_prefix("sha256:").unwrap();
    let sig_dir = lookaside.join(format!("test/gpg@sha256={hex}"));
    let signature = fs::read(sig_dir.join("signature-1")).unwrap();
    assert!(!sig_dir.join("signature-2").exists());
    let (fresh, _dir) = verifier(&home.export_public(&[&key], false));
    let (validsig, payload) = signed_payload(&fresh, &signature);
    assert_eq!(validsig[0], key);
    assert_eq!(payload["critical"]["type"], "atomic container signature");
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        image.by_tag().as_str()
    );

    let keys = work.path().join("keys");
    fs::create_dir(&keys).unwrap();
    let key_file = keys.join("key.gpg");
    fs::write(&key_file, home.export_public(&[&key], false)).unwrap();
    let other_file = keys.join("other.gpg");
    fs::write(&other_file, home.export_public(&[&other], false)).unwrap();
    // An armored keyring in which the right key is not the first.
    let ring_file = keys.join("ring.asc");
    fs::write(&ring_file, home.export_public(&[&other, &key], true)).unwrap();
    let good = gpg_policy(&work.path().join("good.json"), &host, &key_file);
    let ring = gpg_policy(&work.path().join("ring.json"), &host, &ring_file);
    let wrong = gpg_policy(&work.path().join("wrong.json"), &host, &other_file);

    let skopeo = PeerTools::get().skopeo_bookworm();
    let file_d = lookaside_registries_d(
        &work.path().join("file.d"),
        &host,
        &format!("file://{}", lookaside.display()),
    );
    let server = StaticHttpServer::start(&lookaside);
    let http_d = lookaside_registries_d(&work.path().join("http.d"), &host, &server.url());
    for (how, registries_d) in [("file", &file_d), ("http", &http_d)] {
        for (policy, reference) in [
            (&good, image.by_tag()),
            (&good, image.by_digest()),
            (&ring, image.by_tag()),
        ] {
            let dest = tempfile::tempdir().unwrap();
            let out = skopeo_copy_with_policy_using(
                &skopeo,
                policy,
                registries_d,
                &reference,
                &dest.path().join("out"),
            );
            assert!(
                out.status.success(),
                "{how} {} {reference}: {}",
                policy.display(),
                text(&out)
            );
        }
        let dest = tempfile::tempdir().unwrap();
        let out = skopeo_copy_with_policy_using(
            &skopeo,
            &wrong,
            registries_d,
            &image.by_tag(),
            &dest.path().join("out"),
        );
        assert!(!out.status.success(), "{how}: accepted with the wrong key");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("Source image rejected"), "{how}: {stderr}");
        eprintln!("{how}, wrong key: {}", stderr.trim());
    }
    let log = server.log();
    assert!(
        log.contains(&format!(
            "\"GET /test/gpg@sha256={hex}/signature-1 HTTP/1.1\" 200"
        )),
        "skopeo did not read the signature over HTTP:\n{log}"
    );

    // An unsigned image on the same host has no signatures to offer.
    let unsigned = push_test_image(&registry, "test/unsigned", "v1", "nobody signed this");
    let dest = tempfile::tempdir().unwrap();
    let out = skopeo_copy_with_policy_using(
        &skopeo,
        &good,
        &http_d,
        &unsigned.by_tag(),
        &dest.path().join("out"),
    );
    assert!(!out.status.success(), "accepted an unsigned image");
    eprintln!(
        "http, unsigned: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );

    // Signing in place again keeps the first signature and adds a second.
    skopeo_sign_gpg(&home, &other, &image.by_tag(), &image.by_tag(), &lookaside);
    let second = fs::read(sig_dir.join("signature-2")).unwrap();
    assert_eq!(fs::read(sig_dir.join("signature-1")).unwrap(), signature);
    let (fresh, _dir) = verifier(&home.export_public(&[&other], false));
    assert_eq!(signed_payload(&fresh, &second).0[0], other);
    // ... and now the "wrong" policy finds its key's signature.
    let dest = tempfile::tempdir().unwrap();
    let out = skopeo_copy_with_policy_using(
        &skopeo,
        &wrong,
        &file_d,
        &image.by_tag(),
        &dest.path().join("out"),
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn bookworm_skopeo_sign_all_signs_the_index_and_every_instance() {
    let registry = Registry::start();
    let host = registry.host();
    let index = push_test_multiarch(&registry, "test/multi", "v1", "gpg multi-arch");
    let home = GpgHome::new();
    let key = home.generate_key("Multi <multi@example.com>", "ed25519", "sign", "never");
    let work = tempfile::tempdir().unwrap();
    let lookaside = work.path().join("lookaside");
    let digest = skopeo_sign_gpg_all(
        &home,
        &key,
        &index.index.by_tag(),
        &index.index.by_tag(),
        &lookaside,
    );
    assert_eq!(digest, index.index.digest);

    // One signature per manifest, all naming the tag copied to.
    let mut expected: Vec<String> = index.platforms.iter().map(|(_, _, d)| d.clone()).collect();
    expected.push(digest.clone());
    expected.sort();
    let mut signed: Vec<String> = fs::read_dir(lookaside.join("test"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    signed.sort();
    let expected_dirs: Vec<String> = expected
        .iter()
        .map(|d| format!("multi@{}", d.replace(':', "=")))
        .collect();
    assert_eq!(signed, expected_dirs);
    let (fresh, _dir) = verifier(&home.export_public(&[&key], false));
    for (dir, manifest_digest) in expected_dirs.iter().zip(&expected) {
        let sig_dir = lookaside.join("test").join(dir);
        let names: Vec<String> = fs::read_dir(&sig_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["signature-1"], "{dir}");
        let (_, payload) = signed_payload(&fresh, &fs::read(sig_dir.join("signature-1")).unwrap());
        let critical = &payload["critical"];
        assert_eq!(
            critical["image"]["docker-manifest-digest"],
            manifest_digest.as_str()
        );
        assert_eq!(
            critical["identity"]["docker-reference"],
            index.index.by_tag().as_str()
        );
    }

    // So the index by tag and each platform's manifest by digest pass.
    let key_file = work.path().join("key.gpg");
    fs::write(&key_file, home.export_public(&[&key], false)).unwrap();
    let policy = gpg_policy(&work.path().join("policy.json"), &host, &key_file);
    let registries_d = lookaside_registries_d(
        &work.path().join("registries.d"),
        &host,
        &format!("file://{}", lookaside.display()),
    );
    let skopeo = PeerTools::get().skopeo_bookworm();
    let mut references = vec![index.index.by_tag()];
    references.extend(
        index
            .platforms
            .iter()
            .map(|(_, _, d)| format!("{}@{d}", index.index.name())),
    );
    for reference in references {
        let dest = tempfile::tempdir().unwrap();
        let out = skopeo_copy_with_policy_using(
            &skopeo,
            &policy,
            &registries_d,
            &reference,
            &dest.path().join("out"),
        );
        assert!(out.status.success(), "{reference}: {}", text(&out));
    }
}

#[test]
fn bookworm_skopeo_standalone_sign() {
    let home = GpgHome::new();
    let key = home.generate_key(
        "Standalone <standalone@example.com>",
        "ed25519",
        "sign",
        "never",
    );
    let image = test_image("standalone");
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.json");
    fs::write(&manifest, &image.manifest.data).unwrap();
    let reference = "registry.example.com/team/app:1.0";
    let signature = skopeo_standalone_sign(&home, &manifest, reference, &key);
    let (fresh, _dir) = verifier(&home.export_public(&[&key], false));
    let (validsig, payload) = signed_payload(&fresh, &signature);
    assert_eq!(validsig[0], key);
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        sha256_digest(&image.manifest.data).as_str()
    );
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        reference
    );
    assert_eq!(payload["critical"]["type"], "atomic container signature");
}

#[test]
fn static_http_server_serves_a_dir_and_drop_kills_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("a@sha256=00")).unwrap();
    fs::write(
        dir.path().join("a@sha256=00/signature-1"),
        b"\x00\x01binary",
    )
    .unwrap();
    let server = StaticHttpServer::start(dir.path());
    assert_eq!(
        server.url(),
        format!("http://127.0.0.1:{}", server.addr().port())
    );
    let resp = criguard_testutil::http::request(
        server.addr(),
        "GET",
        "/a@sha256=00/signature-1",
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"\x00\x01binary");
    let missing = criguard_testutil::http::request(
        server.addr(),
        "GET",
        "/a@sha256=00/signature-2",
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(missing.status, 404);
    let pid = server.pid().unwrap();
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(comm.starts_with("python3"), "{comm:?}");
    let addr = server.addr();
    drop(server);
    assert!(!pid_alive(pid), "http.server {pid} survived Drop");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "something still listens on {addr}"
    );
}
