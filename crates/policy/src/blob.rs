//! Stored signature blobs: how a signature found in a lookaside store, a
//! `dir:` image or a local store is told apart and read.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::evaluate::{Signature, SigstoreSignature};
use crate::json::decode_go_base64;

/// Largest stored signature accepted, as containers/image's limit.
pub const MAX_SIGNATURE_SIZE: usize = 4 * 1024 * 1024;

/// First bytes of an OpenPGP message in either packet format, as
/// containers/image sniffs them (`0x3d` included, as upstream accepts it).
const OPENPGP_FIRST_BYTES: &[u8] = &[
    0xa0, 0xa1, 0xa2, 0xa3, 0xc8, 0x90, 0x91, 0x92, 0x3d, 0xc4, 0x88, 0x89, 0x8a, 0x8b, 0xc2,
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSigstore {
    #[serde(rename = "mimeType")]
    mime_type: String,
    payload: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Signature {
    /// Reads a stored blob: raw OpenPGP (simple signing), or a NUL byte, a
    /// format name and a newline followed by the signature.
    pub fn from_blob(blob: &[u8]) -> Result<Self, String> {
        if blob.len() > MAX_SIGNATURE_SIZE {
            return Err(format!(
                "signature blob of {} bytes is too large",
                blob.len()
            ));
        }
        let Some(&first) = blob.first() else {
            return Err("empty signature blob".to_owned());
        };
        if OPENPGP_FIRST_BYTES.contains(&first) {
            return Ok(Self::SimpleSigning(blob.to_vec()));
        }
        if first != 0 {
            return Err(format!(
                "unrecognized signature format, starting with binary {first:#x}"
            ));
        }
        let rest = &blob[1..];
        let Some(newline) = rest.iter().position(|b| *b == b'\n') else {
            return Err("invalid signature format, missing newline".to_owned());
        };
        let (name, body) = (&rest[..newline], &rest[newline + 1..]);
        if !name.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err("invalid signature format, non-printable format name".to_owned());
        }
        match name {
            b"simple-signing" => Ok(Self::SimpleSigning(body.to_vec())),
            b"sigstore-json" => {
                let stored: StoredSigstore = serde_json::from_slice(body)
                    .map_err(|e| format!("parsing sigstore signature: {e}"))?;
                let payload = decode_go_base64(&stored.payload)
                    .map_err(|e| format!("parsing sigstore signature payload: {e}"))?;
                Ok(Self::Sigstore(SigstoreSignature {
                    mime_type: stored.mime_type,
                    payload,
                    annotations: stored.annotations,
                }))
            }
            other => Err(format!(
                "unrecognized signature format {:?}",
                String::from_utf8_lossy(other)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(
            Signature::from_blob(b"").unwrap_err(),
            "empty signature blob"
        );
        assert!(Signature::from_blob(b"\xffsimple-signing\nhello").is_err());
        assert!(Signature::from_blob(b"\x00simple-signing").is_err());
        assert!(Signature::from_blob(b"\x00format\xffname\ndata").is_err());
        assert!(Signature::from_blob(b"\x00unknown-format\ndata").is_err());
        assert_eq!(
            Signature::from_blob(b"\x00simple-signing\n\xa3abc").unwrap(),
            Signature::SimpleSigning(b"\xa3abc".to_vec())
        );
        assert_eq!(
            Signature::from_blob(b"\xa3abc").unwrap(),
            Signature::SimpleSigning(b"\xa3abc".to_vec())
        );
        let mut blob = b"\0sigstore-json\n".to_vec();
        blob.extend_from_slice(br#"{"mimeType":"m","payload":"YWJj","annotations":{"k":"v"}}"#);
        match Signature::from_blob(&blob).unwrap() {
            Signature::Sigstore(s) => {
                assert_eq!(s.mime_type, "m");
                assert_eq!(s.payload, b"abc");
                assert_eq!(s.annotations["k"], "v");
            }
            other => panic!("{other:?}"),
        }
    }
}
