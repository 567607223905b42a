//! An OpenPGP signed message, taken apart at the packet level.
//!
//! containers-signature(5) wants one signature over one literal data
//! packet, optionally compressed; gpg reports every signature it finds, and
//! containers/image rejects unless there is exactly one. Walking the packets
//! ourselves (instead of rPGP's streaming `Message`) lets us count them all,
//! refuse anything else that could hide inside (encrypted data, a second
//! literal, trailing packets) and bound decompression.

use std::io::{Cursor, Read};

use pgp::packet::{Packet, PacketParser, PacketTrait, Signature};

/// Signature blobs are read with a 4 MiB limit; compressed, they cannot
/// legitimately expand past this.
pub const MAX_DECOMPRESSED_SIZE: u64 = 16 << 20;

/// gpg unpacks nested compression, but no signer nests it; a few levels
/// cover every real blob and stop a recursion bomb.
const MAX_COMPRESSION_DEPTH: usize = 4;

/// What a signed message holds once its structure is known.
#[derive(Debug)]
pub(crate) struct SignedMessage {
    /// The literal data, exactly as signed (before any text-mode
    /// normalisation, which signature checking does itself).
    pub(crate) literal: Vec<u8>,
    /// Every signature packet, in order.
    pub(crate) signatures: Vec<Signature>,
}

/// Why a blob is not a signed message. These are what gpg reports as
/// errors (not as bad signatures), so they are plain errors upstream too.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum MessageError {
    #[error("no OpenPGP data found")]
    Empty,
    #[error("invalid OpenPGP packet: {0}")]
    Packet(String),
    #[error("the message is encrypted, not signed")]
    Encrypted,
    #[error("the message contains no literal data")]
    NoLiteral,
    #[error("the message contains more than one literal data packet")]
    SeveralLiterals,
    #[error("unexpected {0} packet in a signed message")]
    Unexpected(String),
    #[error("compressed data nested more than {MAX_COMPRESSION_DEPTH} levels deep")]
    TooDeep,
    #[error("the message decompresses to more than {MAX_DECOMPRESSED_SIZE} bytes")]
    TooLarge,
    #[error("decompressing the message: {0}")]
    Decompress(String),
}

impl SignedMessage {
    pub(crate) fn parse(blob: &[u8]) -> Result<SignedMessage, MessageError> {
        let mut message = SignedMessage {
            literal: Vec::new(),
            signatures: Vec::new(),
        };
        let mut literal_seen = false;
        parse_into(blob, 0, &mut message, &mut literal_seen)?;
        if !literal_seen {
            return Err(MessageError::NoLiteral);
        }
        Ok(message)
    }
}

fn parse_into(
    bytes: &[u8],
    depth: usize,
    message: &mut SignedMessage,
    literal_seen: &mut bool,
) -> Result<(), MessageError> {
    let mut any = false;
    for packet in PacketParser::new(Cursor::new(bytes)) {
        let packet = packet.map_err(|e| MessageError::Packet(e.to_string()))?;
        any = true;
        match packet {
            Packet::Marker(_) | Packet::Padding(_) => {}
            Packet::OnePassSignature(_) => {}
            Packet::Signature(signature) => message.signatures.push(signature),
            Packet::LiteralData(literal) => {
                if *literal_seen {
                    return Err(MessageError::SeveralLiterals);
                }
                *literal_seen = true;
                message.literal = literal.data().to_vec();
            }
            Packet::CompressedData(compressed) => {
                if depth >= MAX_COMPRESSION_DEPTH {
                    return Err(MessageError::TooDeep);
                }
                let reader = compressed
                    .decompress()
                    .map_err(|e| MessageError::Decompress(e.to_string()))?;
                let mut inner = Vec::new();
                reader
                    .take(MAX_DECOMPRESSED_SIZE + 1)
                    .read_to_end(&mut inner)
                    .map_err(|e| MessageError::Decompress(e.to_string()))?;
                if inner.len() as u64 > MAX_DECOMPRESSED_SIZE {
                    return Err(MessageError::TooLarge);
                }
                parse_into(&inner, depth + 1, message, literal_seen)?;
            }
            Packet::PublicKeyEncryptedSessionKey(_)
            | Packet::SymKeyEncryptedSessionKey(_)
            | Packet::SymEncryptedData(_)
            | Packet::SymEncryptedProtectedData(_)
            | Packet::GnupgAeadData(_) => return Err(MessageError::Encrypted),
            other => return Err(MessageError::Unexpected(format!("{:?}", other.tag()))),
        }
    }
    if !any {
        return Err(MessageError::Empty);
    }
    Ok(())
}
