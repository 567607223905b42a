//! Public keys as cosign and containers/image accept them, and the
//! signature check each key type implies.
//!
//! sigstore verifies every key type with SHA-256 (`LoadVerifier(key,
//! SHA256)`): ECDSA on any of the NIST curves hashes with SHA-256, RSA uses
//! PKCS #1 v1.5 with SHA-256, Ed25519 signs the message itself. The error
//! strings are Go's, because containers/image passes them through into the
//! rejection a user sees.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, BitString};
use der::{Decode, Encode};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::pem;

pub(crate) const ID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The key types sigstore can verify with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa,
    Ed25519,
}

impl KeyAlgorithm {
    pub fn is_ecdsa(self) -> bool {
        matches!(self, Self::EcdsaP256 | Self::EcdsaP384 | Self::EcdsaP521)
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP384 => &signature::ECDSA_P384_SHA256_ASN1,
            Self::EcdsaP521 => &signature::ECDSA_P521_SHA256_ASN1,
            // Go's crypto/rsa accepts keys from 1024 bits; so must we, to
            // give the same verdicts.
            Self::Rsa => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            Self::Ed25519 => &signature::ED25519,
        }
    }

    /// Largest IEEE P1363 (r‖s) signature for the curve: twice the field size.
    fn fixed_signature_len(self) -> Option<usize> {
        match self {
            Self::EcdsaP256 => Some(64),
            Self::EcdsaP384 => Some(96),
            Self::EcdsaP521 => Some(132),
            Self::Rsa | Self::Ed25519 => None,
        }
    }
}

/// A parsed public key, ready to verify signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    /// The key in the form aws-lc-rs verifies with: an uncompressed point,
    /// a PKCS #1 `RSAPublicKey`, or the 32 Ed25519 bytes.
    key: Vec<u8>,
    /// DER `SubjectPublicKeyInfo`, what a Rekor entry's key is compared with.
    spki: Vec<u8>,
}

impl PublicKey {
    /// Reads the first PEM block of `bytes`, as sigstore's
    /// `UnmarshalPEMToPublicKey` does: `PUBLIC KEY` (PKIX) or
    /// `RSA PUBLIC KEY` (PKCS #1).
    pub fn from_pem(bytes: &[u8]) -> Result<Self, String> {
        let (block, _) = pem::decode(bytes).ok_or_else(|| "PEM decoding failed".to_owned())?;
        match block.label.as_str() {
            "PUBLIC KEY" => Self::from_spki_der(&block.der),
            "RSA PUBLIC KEY" => Self::from_pkcs1_der(&block.der),
            other => Err(format!(
                "unknown Public key PEM file type: {other}. Are you passing the correct public key?"
            )),
        }
    }

    /// Reads a DER `SubjectPublicKeyInfo`, such as a certificate's key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, String> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der)
            .map_err(|e| format!("x509: failed to parse public key: {e}"))?;
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| "x509: invalid public key bit string".to_owned())?
            .to_vec();
        let algorithm = match spki.algorithm.oid {
            ID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .ok_or_else(|| "x509: invalid ECDSA parameters".to_owned())?;
                match curve {
                    SECP256R1 => KeyAlgorithm::EcdsaP256,
                    SECP384R1 => KeyAlgorithm::EcdsaP384,
                    SECP521R1 => KeyAlgorithm::EcdsaP521,
                    _ => return Err("x509: unsupported elliptic curve".to_owned()),
                }
            }
            RSA_ENCRYPTION => KeyAlgorithm::Rsa,
            ID_ED25519 => KeyAlgorithm::Ed25519,
            _ => return Err("unsupported public key type".to_owned()),
        };
        if algorithm.is_ecdsa() && key.first() != Some(&0x04) {
            return Err("x509: failed to unmarshal elliptic curve point".to_owned());
        }
        Ok(Self {
            algorithm,
            key,
            spki: der.to_vec(),
        })
    }

    /// Wraps a PKCS #1 `RSAPublicKey` in the `SubjectPublicKeyInfo` Go
    /// would re-marshal it to, so Rekor comparisons see the same bytes.
    fn from_pkcs1_der(der: &[u8]) -> Result<Self, String> {
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL.into()),
            },
            subject_public_key: BitString::from_bytes(der)
                .map_err(|e| format!("x509: malformed PKCS #1 public key: {e}"))?,
        };
        let spki = spki
            .to_der()
            .map_err(|e| format!("x509: malformed PKCS #1 public key: {e}"))?;
        Self::from_spki_der(&spki)
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The key as DER `SubjectPublicKeyInfo` (PKIX).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key as a PKIX PEM block, as cosign writes `cosign.pub`.
    pub fn to_pem(&self) -> String {
        ::pem::encode(&::pem::Pem::new("PUBLIC KEY", self.spki.clone()))
    }

    /// Checks `signature` over `message`. ECDSA signatures may be ASN.1 DER
    /// or IEEE P1363 (r‖s), as sigstore accepts both.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), String> {
        let key = UnparsedPublicKey::new(self.algorithm.verification(), &self.key);
        if key.verify(message, signature).is_ok() {
            return Ok(());
        }
        if let Some(max) = self.algorithm.fixed_signature_len() {
            let fixed = signature.len().is_multiple_of(2) && signature.len() <= max;
            if fixed && p1363_to_der(signature).is_some_and(|der| key.verify(message, &der).is_ok())
            {
                return Ok(());
            }
            return Err("invalid signature when validating ASN.1 encoded signature".to_owned());
        }
        Err(match self.algorithm {
            KeyAlgorithm::Rsa => "crypto/rsa: verification error".to_owned(),
            _ => "failed to verify signature".to_owned(),
        })
    }
}

impl PublicKey {
    /// Checks a DER-only ECDSA signature (Go's `ecdsa.VerifyASN1`), as used
    /// for Rekor SETs.
    pub fn verify_asn1(&self, message: &[u8], signature: &[u8]) -> Result<(), String> {
        if !self.algorithm.is_ecdsa() {
            return Err("not an ECDSA key".to_owned());
        }
        UnparsedPublicKey::new(self.algorithm.verification(), &self.key)
            .verify(message, signature)
            .map_err(|_| "invalid ECDSA signature".to_owned())
    }
}

/// Re-encodes an IEEE P1363 `r‖s` ECDSA signature as DER.
fn p1363_to_der(signature: &[u8]) -> Option<Vec<u8>> {
    if signature.is_empty() {
        return None;
    }
    let (r, s) = signature.split_at(signature.len() / 2);
    let r = der::asn1::UintRef::new(r).ok()?.to_der().ok()?;
    let s = der::asn1::UintRef::new(s).ok()?.to_der().ok()?;
    let body = [r, s].concat();
    let mut out = vec![0x30];
    match body.len() {
        len @ 0..=0x7f => out.push(len as u8),
        len @ 0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        _ => return None,
    }
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    fn ecdsa_pair(
        alg: &'static aws_lc_rs::signature::EcdsaSigningAlgorithm,
    ) -> (EcdsaKeyPair, PublicKey) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref()).unwrap();
        let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            pair.public_key(),
        )
        .unwrap();
        let key = PublicKey::from_spki_der(spki.as_ref()).unwrap();
        (pair, key)
    }

    #[test]
    fn ecdsa_der_and_p1363_signatures_verify() {
        let rng = SystemRandom::new();
        for (der_alg, fixed_alg, expected) in [
            (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                KeyAlgorithm::EcdsaP256,
            ),
            (
                &signature::ECDSA_P521_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P521_SHA256_FIXED_SIGNING,
                KeyAlgorithm::EcdsaP521,
            ),
        ] {
            let (pair, key) = ecdsa_pair(der_alg);
            assert_eq!(key.algorithm(), expected);
            let sig = pair.sign(&rng, b"payload").unwrap();
            key.verify(b"payload", sig.as_ref()).unwrap();
            assert_eq!(
                key.verify(b"other", sig.as_ref()).unwrap_err(),
                "invalid signature when validating ASN.1 encoded signature"
            );
            // The same key signing r‖s.
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(fixed_alg, &rng).unwrap();
            let fixed = EcdsaKeyPair::from_pkcs8(fixed_alg, pkcs8.as_ref()).unwrap();
            let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
                fixed.public_key(),
            )
            .unwrap();
            let fixed_key = PublicKey::from_spki_der(spki.as_ref()).unwrap();
            let sig = fixed.sign(&rng, b"payload").unwrap();
            fixed_key.verify(b"payload", sig.as_ref()).unwrap();
            assert!(fixed_key.verify(b"other", sig.as_ref()).is_err());
        }
    }

    #[test]
    fn p384_is_hashed_with_sha256() {
        // aws-lc-rs has no P-384/SHA-256 signer, so check the verifier
        // against a SHA-384 signature: it must be refused.
        let rng = SystemRandom::new();
        let (pair, key) = ecdsa_pair(&signature::ECDSA_P384_SHA384_ASN1_SIGNING);
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP384);
        let sig = pair.sign(&rng, b"payload").unwrap();
        assert!(key.verify(b"payload", sig.as_ref()).is_err());
    }

    #[test]
    fn ed25519_verifies_the_message_itself() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            pair.public_key(),
        )
        .unwrap();
        let key = PublicKey::from_spki_der(spki.as_ref()).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
        let sig = pair.sign(b"payload");
        key.verify(b"payload", sig.as_ref()).unwrap();
        assert_eq!(
            key.verify(b"tampered", sig.as_ref()).unwrap_err(),
            "failed to verify signature"
        );
    }

    #[test]
    fn pem_forms() {
        let (_, key) = ecdsa_pair(&signature::ECDSA_P256_SHA256_ASN1_SIGNING);
        let pem = key.to_pem();
        assert_eq!(PublicKey::from_pem(pem.as_bytes()).unwrap(), key);
        assert_eq!(
            PublicKey::from_pem(b"not a key").unwrap_err(),
            "PEM decoding failed"
        );
        let wrong = pem.replace("PUBLIC KEY", "CERTIFICATE");
        assert!(
            PublicKey::from_pem(wrong.as_bytes())
                .unwrap_err()
                .starts_with("unknown Public key PEM file type: CERTIFICATE.")
        );
    }

    #[test]
    fn pkcs1_rsa_key_is_remarshalled_as_pkix() {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            pair.public_key(),
        )
        .unwrap();
        let key = PublicKey::from_spki_der(spki.as_ref()).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa);
        let pkcs1 = ::pem::encode(&::pem::Pem::new("RSA PUBLIC KEY", key.key.clone()));
        let again = PublicKey::from_pem(pkcs1.as_bytes()).unwrap();
        assert_eq!(again.spki_der(), key.spki_der());
        let rng = SystemRandom::new();
        let mut sig = vec![0; pair.public_modulus_len()];
        pair.sign(&signature::RSA_PKCS1_SHA256, &rng, b"payload", &mut sig)
            .unwrap();
        again.verify(b"payload", &sig).unwrap();
        assert_eq!(
            again.verify(b"other", &sig).unwrap_err(),
            "crypto/rsa: verification error"
        );
    }
}
