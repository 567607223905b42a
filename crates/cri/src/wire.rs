//! gRPC framing, and the one edit criguard makes to a request: the image
//! name in a pinned pull. The edit works on the wire format, so every other
//! byte of the request, unknown fields included, stays as the kubelet sent
//! it; decoding into generated types and encoding again would drop them.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint};

use crate::Error;
use crate::v1::PullImageRequest;

/// Compressed flag (1 byte) and big-endian length (4 bytes).
const FRAME_HEADER: usize = 5;

/// The message of a unary gRPC body, which must be exactly one
/// uncompressed frame: a compressed or split message is refused rather
/// than checked by guesswork.
pub(crate) fn unary_message(body: &[u8]) -> Result<&[u8], Error> {
    let Some((header, message)) = body.split_first_chunk::<FRAME_HEADER>() else {
        return Err(Error::Frame(format!(
            "a gRPC message needs a 5-byte frame header, the body has {} bytes",
            body.len()
        )));
    };
    if header[0] != 0 {
        return Err(Error::Frame(
            "the message is compressed; criguard only checks uncompressed messages".to_owned(),
        ));
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if length != message.len() {
        return Err(Error::Frame(format!(
            "expected one gRPC message of {length} bytes, the body has {} bytes after the header",
            message.len()
        )));
    }
    Ok(message)
}

/// One uncompressed gRPC frame.
pub(crate) fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(FRAME_HEADER + message.len());
    framed.put_u8(0);
    // Messages come from a body bounded far below 4 GiB.
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(message);
    framed.freeze()
}

/// `request` (an encoded `PullImageRequest`) with `ImageSpec.image` set to
/// `image` and nothing else changed.
///
/// Protobuf merges repeated occurrences of an embedded message, and the
/// last `image` wins, so every occurrence is replaced; the result is
/// decoded again to prove the runtime will read `image`.
pub fn replace_image_name(request: &[u8], image: &str) -> Result<Vec<u8>, Error> {
    const IMAGE_SPEC: u32 = 1;
    const IMAGE: u32 = 1;
    let edited = replace_field(request, IMAGE_SPEC, &mut |spec| {
        replace_field(spec, IMAGE, &mut |_| Ok(image.as_bytes().to_vec()))
    })?;
    let decoded = PullImageRequest::decode(edited.as_slice()).map_err(|e| Error::Message {
        what: "PullImageRequest after pinning",
        message: e.to_string(),
    })?;
    if decoded.image.map(|spec| spec.image).as_deref() != Some(image) {
        return Err(Error::Message {
            what: "PullImageRequest",
            message: "it names no image to pin".to_owned(),
        });
    }
    Ok(edited)
}

/// Makes a field's new contents from its old ones.
type FieldEdit<'a> = dyn FnMut(&[u8]) -> Result<Vec<u8>, Error> + 'a;

/// `message` with each length-delimited field `number` replaced by what
/// `edit` makes of its contents; other fields are copied byte for byte.
fn replace_field(message: &[u8], number: u32, edit: &mut FieldEdit<'_>) -> Result<Vec<u8>, Error> {
    let malformed = |e: prost::DecodeError| Error::Message {
        what: "protobuf message",
        message: e.to_string(),
    };
    let mut out = Vec::with_capacity(message.len() + 96);
    let mut rest = message;
    while !rest.is_empty() {
        let field_start = rest;
        let (tag, wire_type) = decode_key(&mut rest).map_err(malformed)?;
        let body = match wire_type {
            WireType::Varint => {
                decode_varint(&mut rest).map_err(malformed)?;
                None
            }
            WireType::SixtyFourBit => Some(take(&mut rest, 8)?),
            WireType::ThirtyTwoBit => Some(take(&mut rest, 4)?),
            WireType::LengthDelimited => {
                let length = decode_varint(&mut rest).map_err(malformed)?;
                let length = usize::try_from(length).map_err(|_| Error::Message {
                    what: "protobuf message",
                    message: "field length overflows".to_owned(),
                })?;
                Some(take(&mut rest, length)?)
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(Error::Message {
                    what: "protobuf message",
                    message: "groups do not occur in the CRI".to_owned(),
                });
            }
        };
        let consumed = field_start.len() - rest.len();
        match body {
            Some(contents) if tag == number && wire_type == WireType::LengthDelimited => {
                let replaced = edit(contents)?;
                encode_key(number, WireType::LengthDelimited, &mut out);
                encode_varint(replaced.len() as u64, &mut out);
                out.extend_from_slice(&replaced);
            }
            _ => out.extend_from_slice(&field_start[..consumed]),
        }
    }
    Ok(out)
}

fn take<'a>(rest: &mut &'a [u8], length: usize) -> Result<&'a [u8], Error> {
    if rest.len() < length {
        return Err(Error::Message {
            what: "protobuf message",
            message: format!("a field of {length} bytes runs past the end"),
        });
    }
    let (head, tail) = rest.split_at(length);
    *rest = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{AuthConfig, ImageSpec, PodSandboxConfig, PodSandboxMetadata};

    fn request(image: &str) -> Vec<u8> {
        PullImageRequest {
            image: Some(ImageSpec {
                image: image.to_owned(),
                ..ImageSpec::default()
            }),
            auth: Some(AuthConfig {
                username: "u".to_owned(),
                ..AuthConfig::default()
            }),
            sandbox_config: Some(PodSandboxConfig {
                metadata: Some(PodSandboxMetadata {
                    namespace: "ns".to_owned(),
                    ..PodSandboxMetadata::default()
                }),
            }),
        }
        .encode_to_vec()
    }

    /// Field 99 (unknown here) at the top level and field 20 inside
    /// ImageSpec, as a newer kubelet might send.
    fn with_unknown_fields(mut encoded: Vec<u8>) -> Vec<u8> {
        let mut spec = Vec::new();
        encode_key(20, WireType::LengthDelimited, &mut spec);
        encode_varint(3, &mut spec);
        spec.extend_from_slice(b"new");
        encode_key(1, WireType::LengthDelimited, &mut encoded);
        encode_varint(spec.len() as u64, &mut encoded);
        encoded.extend_from_slice(&spec);
        encode_key(99, WireType::Varint, &mut encoded);
        encode_varint(7, &mut encoded);
        encoded
    }

    #[test]
    fn pinning_replaces_only_the_image_name() {
        let original = with_unknown_fields(request("example.com/app:v1"));
        let pinned = format!("example.com/app@sha256:{}", "a".repeat(64));
        let edited = replace_image_name(&original, &pinned).unwrap();
        let decoded = PullImageRequest::decode(edited.as_slice()).unwrap();
        assert_eq!(decoded.image.unwrap().image, pinned);
        assert_eq!(decoded.auth.unwrap().username, "u");
        // The unknown fields survive, byte for byte, at the end.
        let tail: &[u8] = &original[original.len() - 10..];
        assert!(edited.ends_with(tail), "{edited:?}");
        // Only the image name changed length.
        assert_eq!(
            edited.len() - original.len(),
            pinned.len() - "example.com/app:v1".len()
        );
    }

    #[test]
    fn a_request_without_an_image_cannot_be_pinned() {
        let empty = PullImageRequest::default().encode_to_vec();
        assert!(replace_image_name(&empty, "a@sha256:00").is_err());
    }

    #[test]
    fn malformed_messages_are_refused() {
        for bad in [&[0x0a, 0x05, b'a'][..], &[0x0b][..], &[0xff; 11][..]] {
            assert!(replace_image_name(bad, "x").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn frames() {
        let framed = frame(b"abc");
        assert_eq!(unary_message(&framed).unwrap(), b"abc");
        assert!(unary_message(&framed[..6]).is_err());
        let mut compressed = framed.to_vec();
        compressed[0] = 1;
        assert!(unary_message(&compressed).is_err());
        assert!(unary_message(b"").is_err());
    }
}
