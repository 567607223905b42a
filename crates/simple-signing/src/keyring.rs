//! The keys a `signedBy` requirement trusts, imported the way gpg imports
//! them into the throw-away GNUPGHOME containers/image makes for each
//! signature, and judged the way gpg judges a key when it verifies.
//!
//! rPGP parses packets and checks signatures; which keys may make data
//! signatures is decided here, because rPGP leaves that to its callers:
//!
//! * a certificate is imported only with a user ID carrying a valid
//!   self-certification (gpg: "no valid user IDs"); the rest of the blob
//!   still imports, as `gpg --import` keeps going after a bad key;
//! * a primary key or subkey is unusable when revoked (by a revocation the
//!   primary itself made) or expired *now* (gpg reports EXPKEYSIG for a
//!   signature made before the key expired, and containers/image rejects
//!   it);
//! * key flags, when present, must allow signing; without them the
//!   algorithm decides;
//! * a signing subkey needs a valid binding signature and a valid primary
//!   key binding ("back") signature, as gpg has required since 2.0;
//! * the newest valid self-signature decides expiry and flags;
//! * self-signatures made with MD5 do not count (gpg's default weak
//!   digest); SHA-1 ones do, as gpg 2.2 still accepts them.

use std::io::{Cursor, Read};

use pgp::armor::Dearmor;
use pgp::composed::{Deserializable, SignedPublicKey, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{
    Packet, PacketParser, PublicKey, PublicSubkey, Signature, SignatureType, SubpacketData,
};
use pgp::types::{KeyDetails, KeyId, Tag, Timestamp};

/// Key material larger than this is not a keyring anyone meant; gpg would
/// import it, criguard refuses to spend memory on it.
pub const MAX_KEYRING_SIZE: usize = 16 << 20;

/// One key that could have made a data signature: a primary key or a
/// subkey, with its verdict fixed at import time.
#[derive(Debug)]
pub(crate) struct SigningCandidate {
    pub(crate) key: CandidateKey,
    /// Uppercase hex fingerprint of this key.
    pub(crate) fingerprint: String,
    /// Uppercase hex fingerprint of its certificate's primary key, which
    /// is the identity containers/image accepts.
    pub(crate) primary_fingerprint: String,
    /// `Err(why)` when this key must not be trusted for data signatures.
    pub(crate) usable: Result<(), String>,
}

#[derive(Debug)]
pub(crate) enum CandidateKey {
    Primary(PublicKey),
    Subkey(PublicSubkey),
}

impl CandidateKey {
    pub(crate) fn key_id(&self) -> KeyId {
        match self {
            Self::Primary(k) => k.legacy_key_id(),
            Self::Subkey(k) => k.legacy_key_id(),
        }
    }

    pub(crate) fn created_at(&self) -> Timestamp {
        match self {
            Self::Primary(k) => k.created_at(),
            Self::Subkey(k) => k.created_at(),
        }
    }

    pub(crate) fn verify_data(
        &self,
        signature: &Signature,
        data: &[u8],
    ) -> pgp::errors::Result<()> {
        match self {
            Self::Primary(k) => signature.verify(k, data),
            Self::Subkey(k) => signature.verify(k, data),
        }
    }
}

/// The keys of one requirement (`keyPath`, every `keyPaths` entry, or
/// `keyData`), as gpg would have them after importing each blob.
#[derive(Debug, Default)]
pub struct Keyring {
    /// Primary fingerprints of the imported certificates, in import order
    /// (duplicates kept, as gpg's import results list them).
    identities: Vec<String>,
    candidates: Vec<SigningCandidate>,
}

impl Keyring {
    /// Imports every blob (binary or ASCII-armoured, any number of keys,
    /// several armoured blocks) and judges each key at `now` (seconds since
    /// the epoch). Unparseable data imports nothing, like gpg; an empty
    /// keyring is the caller's "No public keys imported".
    pub fn import(blobs: &[Vec<u8>], now: u32) -> Keyring {
        let mut keyring = Keyring::default();
        for blob in blobs {
            if blob.len() > MAX_KEYRING_SIZE {
                continue;
            }
            for key in parse_certificates(blob) {
                keyring.add(&key, now);
            }
        }
        keyring
    }

    /// Primary-key fingerprints (uppercase hex) of the imported
    /// certificates.
    pub fn identities(&self) -> &[String] {
        &self.identities
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// Keys whose key ID is `key_id`, usable or not.
    pub(crate) fn candidates_for(&self, key_id: &KeyId) -> impl Iterator<Item = &SigningCandidate> {
        self.candidates
            .iter()
            .filter(move |c| &c.key.key_id() == key_id)
    }

    /// Whether the key with this fingerprint (primary or subkey) may make
    /// data signatures; `None` when it is not in the keyring.
    pub(crate) fn usability(&self, fingerprint: &str) -> Option<&Result<(), String>> {
        self.candidates
            .iter()
            .find(|c| c.fingerprint == fingerprint)
            .map(|c| &c.usable)
    }

    fn add(&mut self, certificate: &SignedPublicKey, now: u32) {
        let primary = &certificate.primary_key;
        let Some(self_signature) = newest_self_signature(certificate) else {
            // gpg: "no valid user IDs"; the key is not imported at all.
            return;
        };
        let primary_fingerprint = fingerprint_hex(primary);
        self.identities.push(primary_fingerprint.clone());

        let primary_state =
            if certificate.details.revocation_signatures.iter().any(|s| {
                s.typ() == Some(SignatureType::KeyRevocation) && s.verify_key(primary).is_ok()
            }) {
                Err("the key is revoked".to_owned())
            } else {
                not_expired(
                    "the key",
                    primary.created_at(),
                    self_signature.key_expiration_time(),
                    now,
                )
            };
        let primary_usable = primary_state.clone().and_then(|()| {
            may_sign(self_signature, primary.algorithm().can_sign())
                .then_some(())
                .ok_or_else(|| "the key is not for signing".to_owned())
        });
        self.candidates.push(SigningCandidate {
            key: CandidateKey::Primary(primary.clone()),
            fingerprint: primary_fingerprint.clone(),
            primary_fingerprint: primary_fingerprint.clone(),
            usable: primary_usable,
        });

        for subkey in &certificate.public_subkeys {
            let key = &subkey.key;
            let usable = primary_state
                .clone()
                .map_err(|why| format!("{why} (it is the subkey's primary key)"))
                .and_then(|()| subkey_usable(primary, key, &subkey.signatures, now));
            self.candidates.push(SigningCandidate {
                key: CandidateKey::Subkey(key.clone()),
                fingerprint: fingerprint_hex(key),
                primary_fingerprint: primary_fingerprint.clone(),
                usable,
            });
        }
    }
}

/// Every certificate in `blob`. Armoured input may hold several blocks
/// (gpg imports them all). gpg's own keyring files interleave trust packets,
/// which are dropped first. Each certificate is assembled on its own, so a
/// broken one does not stop the ones after it, as with `gpg --import`.
/// Secret keys count as their public part, as gpg imports both.
fn parse_certificates(blob: &[u8]) -> Vec<SignedPublicKey> {
    let mut certificates = Vec::new();
    for binary in dearmor_all(blob) {
        let packets: Vec<Packet> = PacketParser::new(Cursor::new(&binary[..]))
            .map_while(Result::ok)
            .filter(|p| !matches!(p, Packet::Trust(_) | Packet::Marker(_) | Packet::Padding(_)))
            .collect();
        let mut groups: Vec<Vec<Packet>> = Vec::new();
        for packet in packets {
            let starts_key = matches!(packet, Packet::PublicKey(_) | Packet::SecretKey(_));
            match groups.last_mut() {
                Some(group) if !starts_key => group.push(packet),
                _ => groups.push(vec![packet]),
            }
        }
        for group in groups {
            let secret = matches!(group.first(), Some(Packet::SecretKey(_)));
            let packets = group.into_iter().map(Ok).peekable();
            if secret {
                if let Some(Ok(key)) = SignedSecretKey::from_packets(packets).next() {
                    certificates.push(key.to_public_key());
                }
            } else if let Some(Ok(key)) = SignedPublicKey::from_packets(packets).next() {
                certificates.push(key);
            }
        }
    }
    certificates
}

/// The binary packets of `blob`: itself when binary, else each armoured
/// block decoded (a block that does not decode contributes nothing).
fn dearmor_all(blob: &[u8]) -> Vec<Vec<u8>> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    let starts: Vec<usize> = (0..blob.len())
        .filter(|&i| blob[i..].starts_with(BEGIN) && (i == 0 || blob[i - 1] == b'\n'))
        .collect();
    if starts.is_empty() {
        return vec![blob.to_vec()];
    }
    starts
        .iter()
        .enumerate()
        .filter_map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(blob.len());
            let mut dearmor = Dearmor::new(Cursor::new(&blob[start..end]));
            dearmor.read_header().ok()?;
            let mut binary = Vec::new();
            dearmor.read_to_end(&mut binary).ok()?;
            Some(binary)
        })
        .collect()
}

/// The newest self-certification of a user ID, or direct-key
/// self-signature, that verifies and is not weak; `None` when no user ID
/// is validly self-signed.
fn newest_self_signature(certificate: &SignedPublicKey) -> Option<&Signature> {
    let primary = &certificate.primary_key;
    let mut has_valid_user_id = false;
    let mut newest: Option<&Signature> = None;
    fn consider<'s>(newest: &mut Option<&'s Signature>, signature: &'s Signature) {
        if newest.is_none_or(|n| signature.created() > n.created()) {
            *newest = Some(signature);
        }
    }
    for user in &certificate.details.users {
        for signature in &user.signatures {
            let certification = matches!(
                signature.typ(),
                Some(
                    SignatureType::CertGeneric
                        | SignatureType::CertPersona
                        | SignatureType::CertCasual
                        | SignatureType::CertPositive
                )
            );
            if certification
                && strong_key_signature(signature)
                && signature
                    .verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
            {
                has_valid_user_id = true;
                consider(&mut newest, signature);
            }
        }
    }
    if !has_valid_user_id {
        return None;
    }
    for signature in &certificate.details.direct_signatures {
        if signature.typ() == Some(SignatureType::Key)
            && strong_key_signature(signature)
            && signature.verify_key(primary).is_ok()
        {
            consider(&mut newest, signature);
        }
    }
    newest
}

fn subkey_usable(
    primary: &PublicKey,
    subkey: &PublicSubkey,
    signatures: &[Signature],
    now: u32,
) -> Result<(), String> {
    if signatures.iter().any(|s| {
        s.typ() == Some(SignatureType::SubkeyRevocation)
            && s.verify_subkey_binding(primary, subkey).is_ok()
    }) {
        return Err("the subkey is revoked".to_owned());
    }
    let binding = signatures
        .iter()
        .filter(|s| {
            s.typ() == Some(SignatureType::SubkeyBinding)
                && strong_key_signature(s)
                && s.verify_subkey_binding(primary, subkey).is_ok()
        })
        .max_by_key(|s| s.created())
        .ok_or_else(|| "the subkey has no valid binding signature".to_owned())?;
    not_expired(
        "the subkey",
        subkey.created_at(),
        binding.key_expiration_time(),
        now,
    )?;
    if !may_sign(binding, subkey.algorithm().can_sign()) {
        return Err("the subkey is not for signing".to_owned());
    }
    let cross_certified = binding.embedded_signature().is_some_and(|back| {
        strong_key_signature(back) && back.verify_primary_key_binding(subkey, primary).is_ok()
    });
    if !cross_certified {
        return Err("the signing subkey is not cross-certified".to_owned());
    }
    Ok(())
}

/// Key flags decide when the self-signature has them; otherwise whatever
/// the algorithm can do.
fn may_sign(self_signature: &Signature, algorithm_can_sign: bool) -> bool {
    let has_flags = self_signature.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    });
    if has_flags {
        self_signature.key_flags().sign()
    } else {
        algorithm_can_sign
    }
}

fn not_expired(
    what: &str,
    created: Timestamp,
    validity: Option<pgp::types::Duration>,
    now: u32,
) -> Result<(), String> {
    let Some(validity) = validity.filter(|v| v.as_secs() > 0) else {
        return Ok(());
    };
    let expires = u64::from(created.as_secs()) + u64::from(validity.as_secs());
    if u64::from(now) >= expires {
        return Err(format!("{what} expired at {}", unix_time(expires)));
    }
    Ok(())
}

/// gpg ignores self-signatures made with MD5 (its default weak digest).
/// SHA-1 self-signatures, even recent ones, are still accepted by gpg 2.2,
/// and a test checks that against gpg.
fn strong_key_signature(signature: &Signature) -> bool {
    !matches!(signature.hash_alg(), Some(HashAlgorithm::Md5) | None)
}

pub(crate) fn fingerprint_hex(key: &impl KeyDetails) -> String {
    key.fingerprint()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// `YYYY-MM-DD HH:MM:SS UTC`, for messages.
pub(crate) fn unix_time(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rest = seconds % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for all u64 days
    // that fit an i64 year.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}
