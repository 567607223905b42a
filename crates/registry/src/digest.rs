//! Content digests of fetched bytes, and reading bodies under a limit.

use aws_lc_rs::digest;
use criguard_reference::Digest;

use crate::Error;

/// The sha256 digest of `bytes`: the digest a signature names.
pub fn sha256(bytes: &[u8]) -> Digest {
    let hash = digest::digest(&digest::SHA256, bytes);
    let mut raw = [0u8; 32];
    raw.copy_from_slice(hash.as_ref());
    Digest::sha256_from_bytes(&raw)
}

/// The digest of `bytes` with the algorithm of `like`, as text.
fn digest_with_algorithm_of(like: &Digest, bytes: &[u8]) -> Option<String> {
    let algorithm = match like.algorithm() {
        "sha256" => &digest::SHA256,
        "sha384" => &digest::SHA384,
        "sha512" => &digest::SHA512,
        _ => return None,
    };
    let hash = digest::digest(algorithm, bytes);
    let mut out = String::with_capacity(like.as_str().len());
    out.push_str(like.algorithm());
    out.push(':');
    for b in hash.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    Some(out)
}

/// Checks that `bytes` are what `expected` names; `what` says which body it
/// was in the error.
pub fn verify(what: &str, expected: &Digest, bytes: &[u8]) -> Result<(), Error> {
    let actual = digest_with_algorithm_of(expected, bytes).ok_or_else(|| Error::InvalidDigest {
        what: what.to_owned(),
        digest: expected.to_string(),
    })?;
    if actual == expected.as_str() {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_string(),
            actual,
        })
    }
}

/// Parses a digest found in a manifest or header; `what` names it in the error.
pub(crate) fn parse(what: &str, text: &str) -> Result<Digest, Error> {
    Digest::parse(text).map_err(|_| Error::InvalidDigest {
        what: what.to_owned(),
        digest: text.to_owned(),
    })
}

/// The tag containers/image and cosign use for the sigstore attachments of
/// the manifest with `digest`: `sha256-<hex>.sig`.
pub fn sigstore_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm(), digest.encoded())
}

/// Collects a body chunk by chunk and stops as soon as it exceeds `limit`,
/// so a huge body is refused without being held in memory.
pub(crate) struct LimitedBody {
    limit: usize,
    bytes: Vec<u8>,
}

impl LimitedBody {
    /// Refuses up front when the announced length is already too long.
    pub(crate) fn new(limit: usize, content_length: Option<u64>) -> Result<Self, u64> {
        match content_length {
            Some(len) if len > limit as u64 => Err(len),
            Some(len) => Ok(Self {
                limit,
                bytes: Vec::with_capacity(len as usize),
            }),
            None => Ok(Self {
                limit,
                bytes: Vec::new(),
            }),
        }
    }

    /// Adds a chunk; `false` once the limit is exceeded.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> bool {
        if self.bytes.len() + chunk.len() > self.limit {
            return false;
        }
        self.bytes.extend_from_slice(chunk);
        true
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(sha256(b"").as_str(), EMPTY_SHA256);
        assert_eq!(
            sha256(b"abc").as_str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn verify_matches_and_mismatches() {
        let d = Digest::parse(EMPTY_SHA256).unwrap();
        verify("blob", &d, b"").unwrap();
        let err = verify("manifest x", &d, b"abc").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "manifest x: digest mismatch: expected {EMPTY_SHA256}, got sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            )
        );
        // Other algorithms are verified with their own hash.
        let sha512 = Digest::parse(&format!("sha512:{}", "0".repeat(128))).unwrap();
        let err = verify("blob", &sha512, b"").unwrap_err().to_string();
        assert!(err.contains("got sha512:cf83e1357eefb8bd"), "{err}");
    }

    #[test]
    fn sigstore_tag_replaces_the_colon() {
        let d = Digest::parse(EMPTY_SHA256).unwrap();
        assert_eq!(
            sigstore_tag(&d),
            "sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.sig"
        );
    }

    #[test]
    fn limited_body_stops_at_the_limit() {
        assert_eq!(LimitedBody::new(4, Some(5)).err(), Some(5));
        let mut body = LimitedBody::new(4, Some(4)).unwrap();
        assert!(body.push(b"ab"));
        assert!(body.push(b"cd"));
        assert!(!body.push(b"e"));
        assert_eq!(body.into_bytes(), b"abcd");
        let mut unknown = LimitedBody::new(4, None).unwrap();
        assert!(!unknown.push(b"abcde"));
    }

    #[test]
    fn parse_names_the_bad_digest() {
        let err = parse("layer 0", "md5:abc").unwrap_err().to_string();
        assert_eq!(err, "layer 0: unsupported or invalid digest \"md5:abc\"");
    }
}
