//! Making simple-signing signatures that gpg, and so containers/image,
//! accepts: a compressed one-pass signed message over the payload, binary,
//! SHA-256, by the key gpg itself would pick.

use std::io::Cursor;
use std::time::SystemTime;

use pgp::composed::{MessageBuilder, PublicOrSecret, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{CompressionAlgorithm, KeyDetails, Password};

use crate::Error;
use crate::keyring::{Keyring, MAX_KEYRING_SIZE, fingerprint_hex};
use crate::verifier::unix_seconds;

/// A secret key ready to sign, with the component that will sign chosen.
pub struct SigningKey {
    key: SignedSecretKey,
    /// Index into `key.secret_subkeys`, or `None` for the primary key.
    subkey: Option<usize>,
    fingerprint: String,
    primary_fingerprint: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint)
            .field("primary_fingerprint", &self.primary_fingerprint)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The first secret key in `bytes` (`gpg --export-secret-keys`, binary
    /// or armoured). Like gpg, the newest valid signing subkey signs, or the
    /// primary key when no subkey may; a key that cannot sign at all (or is
    /// expired or revoked now) is refused rather than producing signatures
    /// every verifier rejects.
    pub fn from_bytes(bytes: &[u8]) -> Result<SigningKey, Error> {
        if bytes.len() > MAX_KEYRING_SIZE {
            return Err(Error::KeyFileTooLarge);
        }
        let (keys, _) = PublicOrSecret::from_reader_many(Cursor::new(bytes))
            .map_err(|e| Error::KeyFile(e.to_string()))?;
        let key = keys
            .filter_map(Result::ok)
            .find_map(|k| match k {
                PublicOrSecret::Secret(k) => Some(k),
                PublicOrSecret::Public(_) => None,
            })
            .ok_or(Error::NoSecretKey)?;
        let now = unix_seconds(SystemTime::now()).ok_or(Error::ClockBeforeEpoch)?;
        let keyring = Keyring::from_certificates([key.to_public_key()]);
        let primary_fingerprint = fingerprint_hex(&key.primary_key);
        if keyring.is_empty() {
            return Err(Error::Unusable {
                fingerprint: primary_fingerprint,
                reason: "it has no validly self-signed user ID".to_owned(),
            });
        }
        // Newest usable subkey first, then the primary.
        let mut subkeys: Vec<(usize, &pgp::composed::SignedSecretSubKey)> =
            key.secret_subkeys.iter().enumerate().collect();
        subkeys.sort_by_key(|(_, s)| std::cmp::Reverse(s.key.created_at()));
        let mut reasons = Vec::new();
        for (index, subkey) in subkeys {
            let fingerprint = fingerprint_hex(&subkey.key);
            match keyring.usability(&fingerprint, now) {
                Some(Ok(())) => {
                    return Ok(SigningKey {
                        subkey: Some(index),
                        fingerprint,
                        primary_fingerprint,
                        key,
                    });
                }
                Some(Err(why)) => reasons.push(format!("subkey {fingerprint}: {why}")),
                None => {}
            }
        }
        match keyring.usability(&primary_fingerprint, now) {
            Some(Ok(())) => Ok(SigningKey {
                subkey: None,
                fingerprint: primary_fingerprint.clone(),
                primary_fingerprint,
                key,
            }),
            verdict => {
                reasons.extend(verdict.and_then(Result::err));
                Err(Error::Unusable {
                    fingerprint: primary_fingerprint,
                    reason: reasons.join("; "),
                })
            }
        }
    }

    /// Fingerprint of the key that signs (a subkey's own when one does).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Fingerprint of the primary key: what a keyring names.
    pub fn primary_fingerprint(&self) -> &str {
        &self.primary_fingerprint
    }

    /// Signs `payload`. `passphrase` unlocks a protected key (use "" for
    /// an unprotected one).
    pub fn sign(&self, payload: &[u8], passphrase: &str) -> Result<Vec<u8>, Error> {
        let password = Password::from(passphrase);
        // A wrong passphrase surfaces from signing; unlocking first gives
        // a clear message.
        let (signer, unlocked): (&dyn pgp::types::SigningKey, _) = match self.subkey {
            Some(index) => {
                let key = &self.key.secret_subkeys[index].key;
                (key, key.unlock(&password, |_, _| Ok(())))
            }
            None => {
                let key = &self.key.primary_key;
                (key, key.unlock(&password, |_, _| Ok(())))
            }
        };
        if !matches!(unlocked, Ok(Ok(()))) {
            return Err(Error::Passphrase(self.primary_fingerprint.clone()));
        }
        let mut builder = MessageBuilder::from_bytes("", payload.to_vec());
        builder.compression(CompressionAlgorithm::ZLIB).sign(
            signer,
            password,
            HashAlgorithm::Sha256,
        );
        builder
            .to_vec(rand::rngs::OsRng)
            .map_err(|e| Error::Signing(e.to_string()))
    }
}
