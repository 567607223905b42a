use criguard_reference::Digest;

use super::*;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const MAPPED: &str = "sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn base(url: &str) -> LookasideBase {
    LookasideBase::new(GoUrl::parse(url).unwrap())
}

/// `TestLookasideStorageURL`.
#[test]
fn signature_urls_append_digest_and_number() {
    let digest = Digest::parse(DIGEST).unwrap();
    for root in [
        "file:///tmp",
        "https://localhost:5555/root",
        "http://localhost:5555/root",
    ] {
        for number in [1, 2] {
            let url = base(root).signature_url(&digest, number).unwrap();
            assert_eq!(
                url.to_string(),
                format!("{root}@{MAPPED}/signature-{number}")
            );
        }
    }
}

#[test]
fn invalid_digests_cannot_reach_a_path() {
    assert!(Digest::parse("sha256:../hello").is_err());
}

#[test]
fn signature_numbers_are_bounded() {
    let digest = Digest::parse(DIGEST).unwrap();
    let base = base("file:///tmp");
    assert!(matches!(
        base.signature_url(&digest, 0),
        Err(Error::SignatureNumberZero)
    ));
    base.signature_url(&digest, MAX_LOOKASIDE_SIGNATURES)
        .unwrap();
    let err = base
        .signature_url(&digest, MAX_LOOKASIDE_SIGNATURES + 1)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "server provided 128 signatures, assuming that's unreasonable and a server error"
    );
}

#[test]
fn locations_by_scheme() {
    let digest = Digest::parse(DIGEST).unwrap();
    let location = |root: &str| base(root).signature_url(&digest, 1).unwrap().location();

    assert_eq!(
        location("file:///var/lib/containers/sigstore/library/busybox").unwrap(),
        LookasideLocation::File(PathBuf::from(format!(
            "/var/lib/containers/sigstore/library/busybox@{MAPPED}/signature-1"
        )))
    );
    // The host of a file URL is ignored, as upstream; escapes are decoded.
    assert_eq!(
        location("FILE://ignored/a%20b").unwrap(),
        LookasideLocation::File(PathBuf::from(format!("/a b@{MAPPED}/signature-1")))
    );
    assert_eq!(
        location("https://user:secret@example.com/sigs/x").unwrap(),
        LookasideLocation::Http(format!(
            "https://user:secret@example.com/sigs/x@{MAPPED}/signature-1"
        ))
    );
    assert_eq!(
        location("http://example.com/sigs").unwrap(),
        LookasideLocation::Http(format!("http://example.com/sigs@{MAPPED}/signature-1"))
    );

    let err = location("/no/scheme/just/a/path/file/path/test").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Unsupported scheme when reading signature from /no/scheme/just/a/path/file/path/test@{MAPPED}/signature-1"
        )
    );
    let err = location("ftp://user:secret@example.com/x").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Unsupported scheme when reading signature from ftp://user:xxxxx@example.com/x@{MAPPED}/signature-1"
        )
    );
    assert!(matches!(
        location("file:relative"),
        Err(Error::OpaqueLookasideUrl { .. })
    ));
    assert!(matches!(
        location("file:///%FF"),
        Err(Error::NonUtf8LookasidePath { .. })
    ));
}

#[test]
fn display_redacts_passwords() {
    let base = base("https://user:secret@example.com/sigs");
    assert_eq!(base.to_string(), "https://user:xxxxx@example.com/sigs");
}
