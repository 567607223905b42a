//! cosign's key files, so keys made by `criguard keygen` work with cosign
//! and keys made by `cosign generate-key-pair` work with `criguard sign`.
//!
//! The private key is PKCS #8 DER, sealed with NaCl secretbox under a key
//! derived from the password with scrypt, and stored as JSON inside a PEM
//! block labelled `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign before 2.0 wrote
//! `ENCRYPTED COSIGN PRIVATE KEY`; both are read). The public key is PKIX
//! PEM. Only ECDSA P-256 keys sign: containers/image hashes every ECDSA
//! signature with SHA-256, so a P-384 key signed the cosign way (SHA-384)
//! would never verify there.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use serde::{Deserialize, Serialize};

use criguard_policy::SigstoreSignature;
use criguard_policy::payload::COSIGN_SIGNATURE_MIME_TYPE;

use crate::public_key::PublicKey;
use crate::verifier::SIGNATURE_ANNOTATION;

/// cosign's payload: the repository (no tag) and the manifest digest, the
/// claim a `cosign sign` signature makes.
pub fn cosign_payload(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// The label cosign 2.x writes.
pub const PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label cosign 1.x wrote.
pub const LEGACY_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// scrypt cost cosign uses (N = 2^15, r = 8, p = 1).
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// Refuse key files asking for more than 2^20 scrypt rounds (1 GiB of
/// memory at r = 8): a key file must not be able to exhaust the node.
const MAX_SCRYPT_LOG_N: u8 = 20;
const MAX_KEY_FILE_SIZE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CosignKeyError {
    #[error("key file is larger than {MAX_KEY_FILE_SIZE} bytes")]
    TooLarge,
    #[error("no {PRIVATE_KEY_LABEL} PEM block found")]
    NotPem,
    #[error("unsupported PEM type {0:?}, expected {PRIVATE_KEY_LABEL}")]
    WrongLabel(String),
    #[error("malformed encrypted key: {0}")]
    Malformed(String),
    #[error("unsupported key derivation {0:?}, only scrypt is supported")]
    UnsupportedKdf(String),
    #[error("unsupported cipher {0:?}, only nacl/secretbox is supported")]
    UnsupportedCipher(String),
    #[error("scrypt parameters out of range: N={n}, r={r}, p={p}")]
    ScryptParams { n: u64, r: u32, p: u32 },
    #[error("decrypt: encrypted: decryption failed (wrong password?)")]
    Decrypt,
    #[error("unsupported private key: {0}")]
    UnsupportedKey(String),
    #[error("random number generator failed")]
    Random,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "base64_bytes")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "base64_bytes")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    #[serde(with = "base64_bytes")]
    nonce: Vec<u8>,
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// An ECDSA P-256 signing key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate() -> Result<Self, CosignKeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| CosignKeyError::Random)?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, CosignKeyError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8).map_err(|e| {
                CosignKeyError::UnsupportedKey(format!("only ECDSA P-256 keys can sign: {e}"))
            })?;
        Ok(Self {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// Reads an encrypted cosign private key.
    pub fn from_encrypted_pem(bytes: &[u8], password: &[u8]) -> Result<Self, CosignKeyError> {
        if bytes.len() > MAX_KEY_FILE_SIZE {
            return Err(CosignKeyError::TooLarge);
        }
        let (block, _) = crate::pem::decode(bytes).ok_or(CosignKeyError::NotPem)?;
        if block.label != PRIVATE_KEY_LABEL && block.label != LEGACY_PRIVATE_KEY_LABEL {
            return Err(CosignKeyError::WrongLabel(block.label));
        }
        let sealed: EncryptedKey = serde_json::from_slice(&block.der)
            .map_err(|e| CosignKeyError::Malformed(e.to_string()))?;
        if sealed.kdf.name != "scrypt" {
            return Err(CosignKeyError::UnsupportedKdf(sealed.kdf.name));
        }
        if sealed.cipher.name != "nacl/secretbox" {
            return Err(CosignKeyError::UnsupportedCipher(sealed.cipher.name));
        }
        let ScryptParams { n, r, p } = sealed.kdf.params;
        let out_of_range = CosignKeyError::ScryptParams { n, r, p };
        if !n.is_power_of_two() || n < 2 {
            return Err(out_of_range);
        }
        let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| CosignKeyError::ScryptParams {
            n,
            r,
            p,
        })?;
        if log_n > MAX_SCRYPT_LOG_N || r == 0 || r > 32 || p == 0 || p > 16 {
            return Err(out_of_range);
        }
        let nonce: [u8; 24] = sealed
            .cipher
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| CosignKeyError::Malformed("nonce must be 24 bytes".to_owned()))?;
        let key = derive_key(password, &sealed.kdf.salt, log_n, r, p)?;
        let plaintext = XSalsa20Poly1305::new(&key.into())
            .decrypt(&nonce.into(), sealed.ciphertext.as_slice())
            .map_err(|_| CosignKeyError::Decrypt)?;
        Self::from_pkcs8(&plaintext)
    }

    /// Writes the key the way `cosign generate-key-pair` does.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, CosignKeyError> {
        let rng = SystemRandom::new();
        let mut salt = vec![0u8; 32];
        let mut nonce = [0u8; 24];
        rng.fill(&mut salt).map_err(|_| CosignKeyError::Random)?;
        rng.fill(&mut nonce).map_err(|_| CosignKeyError::Random)?;
        let key = derive_key(password, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)?;
        let ciphertext = XSalsa20Poly1305::new(&key.into())
            .encrypt(&nonce.into(), self.pkcs8.as_slice())
            .map_err(|_| CosignKeyError::Random)?;
        let sealed = EncryptedKey {
            kdf: Kdf {
                name: "scrypt".to_owned(),
                params: ScryptParams {
                    n: 1 << SCRYPT_LOG_N,
                    r: SCRYPT_R,
                    p: SCRYPT_P,
                },
                salt,
            },
            cipher: Cipher {
                name: "nacl/secretbox".to_owned(),
                nonce: nonce.to_vec(),
            },
            ciphertext,
        };
        let json =
            serde_json::to_vec(&sealed).map_err(|e| CosignKeyError::Malformed(e.to_string()))?;
        Ok(::pem::encode(&::pem::Pem::new(PRIVATE_KEY_LABEL, json)))
    }

    pub fn public_key(&self) -> Result<PublicKey, CosignKeyError> {
        let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            self.pair.public_key(),
        )
        .map_err(|_| CosignKeyError::UnsupportedKey("public key encoding failed".to_owned()))?;
        PublicKey::from_spki_der(spki.as_ref()).map_err(CosignKeyError::UnsupportedKey)
    }

    /// cosign's signature of manifest `digest` (`sha256:…`) for
    /// `repository` (no tag): its payload, signed, with the annotation a
    /// `.sig` layer carries, as `cosign sign` writes it.
    pub fn sign_image(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<SigstoreSignature, CosignKeyError> {
        let payload = cosign_payload(repository, digest);
        Ok(SigstoreSignature {
            mime_type: COSIGN_SIGNATURE_MIME_TYPE.to_owned(),
            annotations: std::collections::BTreeMap::from([(
                SIGNATURE_ANNOTATION.to_owned(),
                self.sign_base64(&payload)?,
            )]),
            payload,
        })
    }

    /// Signs `message` (ECDSA P-256, SHA-256, DER).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CosignKeyError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| CosignKeyError::Random)
    }

    /// Signs `payload` (ECDSA P-256, SHA-256, DER) and returns the
    /// signature base64-encoded, as the cosign signature annotation holds it.
    pub fn sign_base64(&self, payload: &[u8]) -> Result<String, CosignKeyError> {
        let signature = self
            .pair
            .sign(&SystemRandom::new(), payload)
            .map_err(|_| CosignKeyError::Random)?;
        Ok(STANDARD.encode(signature.as_ref()))
    }
}

fn derive_key(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<[u8; 32], CosignKeyError> {
    let params =
        scrypt::Params::new(log_n, r, p, 32).map_err(|_| CosignKeyError::ScryptParams {
            n: 1 << log_n,
            r,
            p,
        })?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key).map_err(|_| {
        CosignKeyError::ScryptParams {
            n: 1 << log_n,
            r,
            p,
        }
    })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_password() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_encrypted_pem(b"secret").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        let again = SigningKey::from_encrypted_pem(pem.as_bytes(), b"secret").unwrap();
        let public = key.public_key().unwrap();
        assert_eq!(again.public_key().unwrap(), public);
        let signature = again.sign_base64(b"payload").unwrap();
        let raw = STANDARD.decode(signature).unwrap();
        public.verify(b"payload", &raw).unwrap();
        assert!(matches!(
            SigningKey::from_encrypted_pem(pem.as_bytes(), b"wrong"),
            Err(CosignKeyError::Decrypt)
        ));
        let legacy = pem.replace(PRIVATE_KEY_LABEL, LEGACY_PRIVATE_KEY_LABEL);
        assert!(SigningKey::from_encrypted_pem(legacy.as_bytes(), b"secret").is_ok());
    }

    #[test]
    fn refuses_expensive_scrypt_parameters() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_encrypted_pem(b"").unwrap();
        let (block, _) = crate::pem::decode(pem.as_bytes()).unwrap();
        let json = String::from_utf8(block.der).unwrap();
        let costly = json.replace("\"N\":32768", "\"N\":4294967296");
        let costly_pem = ::pem::encode(&::pem::Pem::new(PRIVATE_KEY_LABEL, costly.into_bytes()));
        assert!(matches!(
            SigningKey::from_encrypted_pem(costly_pem.as_bytes(), b""),
            Err(CosignKeyError::ScryptParams { .. })
        ));
    }
}
