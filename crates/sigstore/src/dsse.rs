//! DSSE envelopes (Dead Simple Signing Envelope), as a sigstore bundle
//! carries them: the signature is over the pre-authentication encoding of
//! the payload type and the payload, never over the payload alone, so a
//! signature made for one payload type cannot be replayed as another.

use serde::Deserialize;

use crate::proto_json::{Bytes, bounded_list, require_object};

/// The payload type of an in-toto statement, the only one a cosign image
/// signature uses.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Most signatures an envelope may list for the parser to read it at all;
/// verification then requires exactly one.
const MAX_SIGNATURES: usize = 16;

/// A DSSE envelope with its base64 fields decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope; `keyid` is an unauthenticated hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSignature {
    pub sig: Vec<u8>,
    pub keyid: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawEnvelope {
    #[serde(default)]
    payload: Bytes,
    #[serde(default)]
    payload_type: String,
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_SIGNATURES, _>")]
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    #[serde(default)]
    sig: Bytes,
    #[serde(default)]
    keyid: String,
}

impl Envelope {
    /// Reads an envelope from its JSON form (standalone, or the
    /// `dsseEnvelope` member of a bundle).
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, String> {
        require_object(bytes, "DSSE envelope")?;
        let raw: RawEnvelope =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid DSSE envelope: {e}"))?;
        Ok(raw.into())
    }

    /// The bytes the one signature of the envelope signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// The envelope's only signature: an envelope with none or with
    /// several is refused, as a signature of an image must be one signer's.
    pub fn only_signature(&self) -> Result<&EnvelopeSignature, String> {
        match self.signatures.as_slice() {
            [only] => Ok(only),
            [] => Err("the DSSE envelope has no signature".to_owned()),
            many => Err(format!(
                "the DSSE envelope has {} signatures, exactly one is required",
                many.len()
            )),
        }
    }
}

impl From<RawEnvelope> for Envelope {
    fn from(raw: RawEnvelope) -> Envelope {
        Envelope {
            payload_type: raw.payload_type,
            payload: raw.payload.0,
            signatures: raw
                .signatures
                .into_iter()
                .map(|s| EnvelopeSignature {
                    sig: s.sig.0,
                    keyid: s.keyid,
                })
                .collect(),
        }
    }
}

/// DSSE's pre-authentication encoding:
/// `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII
/// decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + payload.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_spec_encoding() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn envelopes_parse_and_count_signatures() {
        let envelope = Envelope::from_json(
            br#"{"payload":"aGk=","payloadType":"t","signatures":[{"sig":"AAE="}]}"#,
        )
        .unwrap();
        assert_eq!(envelope.payload, b"hi");
        assert_eq!(envelope.only_signature().unwrap().sig, vec![0, 1]);
        assert_eq!(envelope.signed_bytes(), b"DSSEv1 1 t 2 hi".to_vec());

        let none = Envelope::from_json(br#"{"payload":"aGk=","payloadType":"t"}"#).unwrap();
        assert!(none.only_signature().unwrap_err().contains("no signature"));
        let two = Envelope::from_json(
            br#"{"payload":"","payloadType":"t","signatures":[{"sig":""},{"sig":""}]}"#,
        )
        .unwrap();
        assert!(two.only_signature().unwrap_err().contains("2 signatures"));

        let many = format!(
            r#"{{"payload":"","payloadType":"t","signatures":[{}]}}"#,
            [r#"{"sig":""}"#; 17].join(",")
        );
        assert!(Envelope::from_json(many.as_bytes()).is_err());
        assert!(Envelope::from_json(br#"{"payload":"!!","payloadType":"t"}"#).is_err());
        assert!(Envelope::from_json(b"[]").is_err());
    }
}
