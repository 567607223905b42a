//! Checking one simple-signing blob against a requirement's keys, with the
//! outcomes containers/image reaches through gpgme.
//!
//! containers/image accepts a signature only if gpg reports exactly one
//! signature, good, by a key that is neither expired nor revoked and may
//! sign, and the signing key (or its primary) is one the policy imported.
//! The payload is returned for the policy engine to check; nothing about it
//! is trusted here.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use criguard_policy::{SignatureRejection, SimpleSigningVerifier};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyId;

use crate::keyring::{Keyring, SigningCandidate, unix_time};
use crate::message::SignedMessage;

/// What a good signature tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedMessage {
    /// The signed literal data: the payload, still untrusted as JSON.
    pub payload: Vec<u8>,
    /// Uppercase hex fingerprint of the key that signed (a subkey's own).
    pub signer: String,
    /// Uppercase hex fingerprint of the signer's primary key, the identity
    /// containers/image matches against the imported keys.
    pub primary: String,
}

/// The GPG mechanism for the policy engine. The keys are imported again
/// whenever the keyring bytes differ from the last ones (a policy file
/// edited between two checks is read as it is now); checking several
/// signatures with the same keys imports them once.
#[derive(Debug, Default)]
pub struct Verifier {
    /// Fixed "now" for tests and benchmarks; the clock when `None`.
    now: Option<SystemTime>,
    /// The last keyring blobs and what they imported to. Imports hold no
    /// verdicts (expiry is judged per check), so they never go stale.
    last_import: Mutex<Option<Import>>,
}

/// Keyring blobs and the keyring they imported to.
#[derive(Debug)]
struct Import {
    blobs: Vec<Vec<u8>>,
    keyring: Arc<Keyring>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges key and signature expiry at `now` instead of the clock.
    pub fn at(now: SystemTime) -> Self {
        Self {
            now: Some(now),
            ..Self::default()
        }
    }

    fn import(&self, keyrings: &[Vec<u8>]) -> Arc<Keyring> {
        let last = || {
            self.last_import
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(import) = last().as_ref()
            && import.blobs.as_slice() == keyrings
        {
            return Arc::clone(&import.keyring);
        }
        // Imported without the lock held: a verifier shared by concurrent
        // evaluations (the daemon's) must not make them wait on each
        // other's imports.
        let keyring = Arc::new(Keyring::import(keyrings));
        *last() = Some(Import {
            blobs: keyrings.to_vec(),
            keyring: Arc::clone(&keyring),
        });
        keyring
    }
}

/// Seconds since the epoch, as OpenPGP counts them (saturating in 2106);
/// `None` for a clock before 1970, where no expiry could be judged.
pub(crate) fn unix_seconds(time: SystemTime) -> Option<u32> {
    let seconds = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(u32::try_from(seconds).unwrap_or(u32::MAX))
}

impl SimpleSigningVerifier for Verifier {
    fn verify(&self, keyrings: &[Vec<u8>], blob: &[u8]) -> Result<Vec<u8>, SignatureRejection> {
        // Fail closed: with a clock before 1970 every expired key would
        // look valid.
        let now = unix_seconds(self.now.unwrap_or_else(SystemTime::now)).ok_or_else(|| {
            SignatureRejection::other(
                "the system clock is before 1970, so GPG key expiry cannot be checked",
            )
        })?;
        let keyring = self.import(keyrings);
        if keyring.is_empty() {
            return Err(SignatureRejection::policy("No public keys imported"));
        }
        verify_message(&keyring, blob, now).map(|verified| verified.payload)
    }
}

/// Verifies `blob` with `keyring` at `now` (seconds since the epoch).
pub fn verify_message(
    keyring: &Keyring,
    blob: &[u8],
    now: u32,
) -> Result<VerifiedMessage, SignatureRejection> {
    let message = SignedMessage::parse(blob)
        .map_err(|e| SignatureRejection::other(format!("reading the GPG signature: {e}")))?;
    let [signature] = message.signatures.as_slice() else {
        return Err(SignatureRejection::invalid(format!(
            "Unexpected GPG signature count {}",
            message.signatures.len()
        )));
    };
    if !matches!(
        signature.typ(),
        Some(SignatureType::Binary | SignatureType::Text)
    ) {
        return Err(invalid(format!(
            "not a signature over data (signature type {:?})",
            signature.typ()
        )));
    }
    let key_ids = issuer_key_ids(signature);
    let Some(first_id) = key_ids.first() else {
        return Err(invalid("the signature does not say which key made it"));
    };
    let mut bad = None;
    for key_id in &key_ids {
        for candidate in keyring.candidates_for(key_id) {
            match candidate.key.verify_data(signature, &message.literal) {
                Ok(()) => {
                    usable_for(candidate, signature, now)?;
                    return Ok(VerifiedMessage {
                        payload: message.literal,
                        signer: candidate.fingerprint.clone(),
                        primary: candidate.primary_fingerprint.clone(),
                    });
                }
                Err(err) => bad = Some((candidate, err)),
            }
        }
    }
    Err(match bad {
        Some((candidate, err)) => invalid(format!(
            "bad signature by key {}: {err}",
            candidate.fingerprint
        )),
        None => invalid(format!(
            "no public key {} among the keys the policy trusts",
            hex_upper(first_id.as_ref())
        )),
    })
}

/// gpg's checks after the mathematics: the key's state, the digest, the
/// signature's own expiry, and a key younger than its signature.
fn usable_for(
    candidate: &SigningCandidate,
    signature: &Signature,
    now: u32,
) -> Result<(), SignatureRejection> {
    let who = &candidate.fingerprint;
    if let Err(why) = candidate.usable(now) {
        return Err(invalid(format!("key {who}: {why}")));
    }
    if matches!(signature.hash_alg(), Some(HashAlgorithm::Md5) | None) {
        return Err(invalid(format!(
            "signature by key {who} uses the MD5 digest, which gpg rejects"
        )));
    }
    let Some(created) = signature.created() else {
        return Err(invalid(format!(
            "signature by key {who} has no creation time"
        )));
    };
    if let Some(validity) = signature
        .signature_expiration_time()
        .filter(|v| v.as_secs() > 0)
    {
        let expires = u64::from(created.as_secs()) + u64::from(validity.as_secs());
        if u64::from(now) >= expires {
            return Err(invalid(format!(
                "signature by key {who} expired at {}",
                unix_time(expires)
            )));
        }
    }
    if candidate.key.created_at() > created {
        return Err(invalid(format!(
            "key {who} is newer than its signature (time conflict)"
        )));
    }
    Ok(())
}

/// Issuer key IDs, from the issuer fingerprint subpackets first (a v4
/// fingerprint ends with the key ID), then the issuer key ID subpackets.
fn issuer_key_ids(signature: &Signature) -> Vec<KeyId> {
    let mut ids: Vec<KeyId> = Vec::new();
    let from_fingerprints = signature.issuer_fingerprint().into_iter().filter_map(|f| {
        let bytes = f.as_bytes();
        let tail: [u8; 8] = bytes.get(bytes.len().checked_sub(8)?..)?.try_into().ok()?;
        Some(KeyId::new(tail))
    });
    for id in from_fingerprints.chain(signature.issuer_key_id().into_iter().copied()) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

fn invalid(reason: impl std::fmt::Display) -> SignatureRejection {
    SignatureRejection::invalid(format!("Invalid GPG signature: {reason}"))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
