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
    /// What must hold for this key to make data signatures, in gpg's
    /// order; judged at verification time, so an imported keyring does not
    /// go stale and can be kept.
    conditions: Vec<Condition>,
}

/// One reason a key may be unusable.
#[derive(Debug, Clone)]
enum Condition {
    /// Unusable at any time (revoked, not for signing, unbound).
    Fails(String),
    /// Unusable from `at` (seconds since the epoch) on: "{what} expired at
    /// {date}{context}".
    Expires {
        what: &'static str,
        at: u64,
        context: &'static str,
    },
}

impl SigningCandidate {
    /// `Err(why)` when this key must not be trusted for data signatures at
    /// `now` (seconds since the epoch).
    pub(crate) fn usable(&self, now: u32) -> Result<(), String> {
        for condition in &self.conditions {
            match condition {
                Condition::Fails(why) => return Err(why.clone()),
                Condition::Expires { what, at, context } if u64::from(now) >= *at => {
                    return Err(format!("{what} expired at {}{context}", unix_time(*at)));
                }
                Condition::Expires { .. } => {}
            }
        }
        Ok(())
    }
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
    /// several armoured blocks). Unparseable data imports nothing, like gpg;
    /// an empty keyring is the caller's "No public keys imported". Expiry
    /// is judged when a signature is checked, not here.
    pub fn import(blobs: &[Vec<u8>]) -> Keyring {
        Keyring::from_certificates(
            blobs
                .iter()
                .filter(|blob| blob.len() <= MAX_KEYRING_SIZE)
                .flat_map(|blob| parse_certificates(blob)),
        )
    }

    /// A keyring of certificates already parsed (a signing key's own).
    pub(crate) fn from_certificates(
        certificates: impl IntoIterator<Item = SignedPublicKey>,
    ) -> Keyring {
        let mut keyring = Keyring::default();
        for certificate in certificates {
            keyring.add(&certificate);
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
    /// data signatures at `now`; `None` when it is not in the keyring.
    pub(crate) fn usability(&self, fingerprint: &str, now: u32) -> Option<Result<(), String>> {
        self.candidates
            .iter()
            .find(|c| c.fingerprint == fingerprint)
            .map(|c| c.usable(now))
    }

    fn add(&mut self, certificate: &SignedPublicKey) {
        let primary = &certificate.primary_key;
        let Some(self_signature) = newest_self_signature(certificate) else {
            // gpg: "no valid user IDs"; the key is not imported at all.
            return;
        };
        let primary_fingerprint = fingerprint_hex(primary);
        self.identities.push(primary_fingerprint.clone());

        let revoked = certificate.details.revocation_signatures.iter().any(|s| {
            s.typ() == Some(SignatureType::KeyRevocation) && s.verify_key(primary).is_ok()
        });
        let primary_state = if revoked {
            vec![Condition::Fails("the key is revoked".to_owned())]
        } else {
            expiry(
                "the key",
                primary.created_at(),
                self_signature.key_expiration_time(),
            )
            .into_iter()
            .collect()
        };
        let mut conditions = primary_state.clone();
        if !may_sign(self_signature, primary.algorithm().can_sign()) {
            conditions.push(Condition::Fails("the key is not for signing".to_owned()));
        }
        self.candidates.push(SigningCandidate {
            key: CandidateKey::Primary(primary.clone()),
            fingerprint: primary_fingerprint.clone(),
            primary_fingerprint: primary_fingerprint.clone(),
            conditions,
        });

        // A subkey is unusable whenever its primary key is.
        let inherited: Vec<Condition> = primary_state
            .into_iter()
            .map(|condition| match condition {
                Condition::Fails(why) => {
                    Condition::Fails(format!("{why} (it is the subkey's primary key)"))
                }
                Condition::Expires { what, at, .. } => Condition::Expires {
                    what,
                    at,
                    context: " (it is the subkey's primary key)",
                },
            })
            .collect();
        for subkey in &certificate.public_subkeys {
            let key = &subkey.key;
            let mut conditions = inherited.clone();
            conditions.extend(subkey_conditions(primary, key, &subkey.signatures));
            self.candidates.push(SigningCandidate {
                key: CandidateKey::Subkey(key.clone()),
                fingerprint: fingerprint_hex(key),
                primary_fingerprint: primary_fingerprint.clone(),
                conditions,
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

/// What a subkey needs besides a usable primary: no revocation, a valid
/// binding (which also gives its expiry and flags), signing allowed, and a
/// back-signature.
fn subkey_conditions(
    primary: &PublicKey,
    subkey: &PublicSubkey,
    signatures: &[Signature],
) -> Vec<Condition> {
    if signatures.iter().any(|s| {
        s.typ() == Some(SignatureType::SubkeyRevocation)
            && s.verify_subkey_binding(primary, subkey).is_ok()
    }) {
        return vec![Condition::Fails("the subkey is revoked".to_owned())];
    }
    let Some(binding) = signatures
        .iter()
        .filter(|s| {
            s.typ() == Some(SignatureType::SubkeyBinding)
                && strong_key_signature(s)
                && s.verify_subkey_binding(primary, subkey).is_ok()
        })
        .max_by_key(|s| s.created())
    else {
        return vec![Condition::Fails(
            "the subkey has no valid binding signature".to_owned(),
        )];
    };
    let mut conditions: Vec<Condition> = expiry(
        "the subkey",
        subkey.created_at(),
        binding.key_expiration_time(),
    )
    .into_iter()
    .collect();
    if !may_sign(binding, subkey.algorithm().can_sign()) {
        conditions.push(Condition::Fails("the subkey is not for signing".to_owned()));
    }
    let cross_certified = binding.embedded_signature().is_some_and(|back| {
        strong_key_signature(back) && back.verify_primary_key_binding(subkey, primary).is_ok()
    });
    if !cross_certified {
        conditions.push(Condition::Fails(
            "the signing subkey is not cross-certified".to_owned(),
        ));
    }
    conditions
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

/// When a key made at `created` with `validity` (from its newest
/// self-signature or binding) expires; `None` (or zero) is never.
fn expiry(
    what: &'static str,
    created: Timestamp,
    validity: Option<pgp::types::Duration>,
) -> Option<Condition> {
    let validity = validity.filter(|v| v.as_secs() > 0)?;
    Some(Condition::Expires {
        what,
        at: u64::from(created.as_secs()) + u64::from(validity.as_secs()),
        context: "",
    })
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
    i64::try_from(seconds)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || format!("{seconds} seconds after the epoch"),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}
