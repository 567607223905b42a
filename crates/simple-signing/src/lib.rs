//! GPG "simple signing" (containers-signature(5)) without gpg: the keys a
//! `signedBy` requirement names, the signed message in a lookaside
//! signature, and the signatures `criguard sign --gpg-key` makes.
//!
//! Sans-IO like the rest of the engine: keys and blobs come in as bytes, a
//! payload or a rejection goes out. The payload is handed back to
//! `criguard-policy`, which checks digest and identity exactly as it does
//! for sigstore.
//!
//! containers/image verifies through gpgme in a throw-away GNUPGHOME per
//! signature; its verdicts are gpg's. gpg's rules that matter here (which
//! keys import, when a key may sign, which digests are too weak) are
//! written out in [`keyring`], because rPGP leaves key validity to its
//! callers.

mod keyring;
mod message;
mod signer;
mod verifier;

pub use keyring::{Keyring, MAX_KEYRING_SIZE};
pub use message::MAX_DECOMPRESSED_SIZE;
pub use signer::SigningKey;
pub use verifier::{VerifiedMessage, Verifier, verify_message};

/// Why a signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the key file is larger than {MAX_KEYRING_SIZE} bytes")]
    KeyFileTooLarge,
    #[error("reading the key file: {0}")]
    KeyFile(String),
    #[error("the key file holds no secret key (export it with gpg --export-secret-keys)")]
    NoSecretKey,
    #[error("key {fingerprint} cannot sign: {reason}")]
    Unusable { fingerprint: String, reason: String },
    #[error("key {0}: wrong passphrase, or the key is protected and no passphrase was given")]
    Passphrase(String),
    #[error("the system clock is before 1970, so key expiry cannot be checked")]
    ClockBeforeEpoch,
    #[error("signing: {0}")]
    Signing(String),
}
