//! The `sigstoreSigned` check for one sigstore bundle (cosign 3), in the
//! order of the `.sig` check where the two share a step: load the trust
//! material, establish which key may have signed (configured keys, a
//! Fulcio certificate logged in Rekor, a certificate from the user's CA),
//! then check the envelope's one signature over DSSE's encoding, and only
//! then read the statement it signs.
//!
//! What a bundle adds to the policy's trust is nothing: its key hint is
//! not used to pick a key, its certificate must chain to the policy's CA,
//! its log entry must verify with the policy's Rekor keys and be bound to
//! this very envelope. Rekor v2 entries and RFC 3161 timestamps would need
//! a trusted root, which criguard does not read yet; a bundle that needs
//! one is refused with that reason.

use std::time::Duration;

use criguard_policy::{SignatureRejection, SigstoreSigned, TrustFiles};
use rustls_pki_types::UnixTime;

use crate::bundle::{Bundle, Material, TlogEntry};
use crate::certificate::{self, PkiIdentity};
use crate::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::public_key::PublicKey;
use crate::verifier::{TrustRoot, Verifier, load_trust_root};
use crate::{rekor, statement};

/// Verifies `bytes` (a bundle's JSON) under `requirement`; returns the
/// digests its statement signs.
pub(crate) fn verify(
    verifier: &Verifier,
    requirement: &SigstoreSigned,
    files: &dyn TrustFiles,
    bytes: &[u8],
) -> Result<Vec<String>, SignatureRejection> {
    let trust = load_trust_root(requirement, files)?;
    let bundle = Bundle::from_json(bytes).map_err(SignatureRejection::invalid)?;
    let envelope = &bundle.envelope;
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(SignatureRejection::invalid(format!(
            "the bundle's DSSE payload type is {:?}, not {IN_TOTO_PAYLOAD_TYPE:?}",
            envelope.payload_type
        )));
    }
    let signature = &envelope
        .only_signature()
        .map_err(SignatureRejection::invalid)?
        .sig;
    let keys = match trust {
        TrustRoot::PublicKeys { keys, rekor: None } => {
            require_public_key(&bundle)?;
            keys
        }
        TrustRoot::PublicKeys {
            keys,
            rekor: Some(rekor_keys),
        } => {
            require_public_key(&bundle)?;
            vec![logged_key(keys, &rekor_keys, &bundle, signature)?]
        }
        TrustRoot::Fulcio { ca, rekor, fulcio } => {
            let (leaf, intermediates) = certificates(&bundle, "fulcio")?;
            let logged = logged_entry(&rekor, &bundle, leaf, signature)
                .map_err(SignatureRejection::invalid)?;
            let integrated_time = u64::try_from(logged.integrated_time).map_err(|_| {
                SignatureRejection::invalid(format!(
                    "Rekor SET integratedTime {} is before 1970",
                    logged.integrated_time
                ))
            })?;
            let key = certificate::verify_fulcio_leaf(
                &ca,
                &fulcio.oidc_issuer,
                &fulcio.subject_email,
                UnixTime::since_unix_epoch(Duration::from_secs(integrated_time)),
                certificate_pem(leaf).as_bytes(),
                intermediates,
            )
            .map_err(SignatureRejection::invalid)?;
            vec![key]
        }
        TrustRoot::Pki {
            roots,
            mut intermediates,
            pki,
        } => {
            let (leaf, chain) = certificates(&bundle, "pki")?;
            intermediates.extend(chain.iter().cloned());
            let identity = PkiIdentity {
                subject_email: pki.subject_email.as_deref(),
                subject_hostname: pki.subject_hostname.as_deref(),
            };
            let key = certificate::verify_pki(
                &roots,
                &intermediates,
                &identity,
                verifier.now(),
                certificate_pem(leaf).as_bytes(),
                None,
            )
            .map_err(SignatureRejection::invalid)?;
            vec![key]
        }
    };
    verify_envelope(&keys, &envelope.signed_bytes(), signature)?;
    statement::signed_digests(&envelope.payload).map_err(SignatureRejection::invalid)
}

/// Keys in the policy are compared with bundles that say they were signed
/// by a key, not with certificates that would have to be trusted first.
fn require_public_key(bundle: &Bundle) -> Result<(), SignatureRejection> {
    match bundle.material {
        Material::PublicKey { .. } => Ok(()),
        _ => Err(SignatureRejection::invalid(
            "the bundle carries a certificate, but the policy trusts public keys (keyPath/keyData): \
             sign with the key itself, or trust the certificate's CA (fulcio or pki)",
        )),
    }
}

/// The leaf and any intermediates a certificate-based requirement needs.
fn certificates<'b>(
    bundle: &'b Bundle,
    requirement: &str,
) -> Result<(&'b [u8], &'b [Vec<u8>]), SignatureRejection> {
    match &bundle.material {
        Material::Certificate(der) => Ok((der, &[])),
        Material::Chain(chain) => match chain.split_first() {
            Some((leaf, rest)) => Ok((leaf, rest)),
            None => Err(SignatureRejection::invalid(
                "the bundle's certificate chain is empty",
            )),
        },
        Material::PublicKey { .. } => Err(SignatureRejection::invalid(format!(
            "the bundle names a public key, but the policy's {requirement} requirement needs a certificate"
        ))),
    }
}

fn certificate_pem(der: &[u8]) -> String {
    ::pem::encode(&::pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// Keys with Rekor keys: the first configured key that a logged entry of
/// this envelope names is the only key the envelope may be signed with.
fn logged_key(
    keys: Vec<PublicKey>,
    rekor_keys: &[PublicKey],
    bundle: &Bundle,
    signature: &[u8],
) -> Result<PublicKey, SignatureRejection> {
    let mut failures = Vec::new();
    for key in keys {
        match logged_entry(rekor_keys, bundle, key.spki_der(), signature) {
            Ok(_) => return Ok(key),
            Err(e) => failures.push(e),
        }
    }
    Err(SignatureRejection::invalid(format!(
        "No public key verified against the bundle's Rekor entry: {}",
        failures.join(", ")
    )))
}

/// The first transparency-log entry that verifies and is bound to this
/// envelope signed by `signer_der` (a key's SPKI or a certificate).
fn logged_entry(
    rekor_keys: &[PublicKey],
    bundle: &Bundle,
    signer_der: &[u8],
    signature: &[u8],
) -> Result<rekor::SetEntry, String> {
    if bundle.tlog_entries.is_empty() {
        let timestamps = if bundle.rfc3161_timestamps > 0 {
            format!(
                " (it has {} RFC 3161 timestamp(s), which need a trusted_root.json criguard does not read yet)",
                bundle.rfc3161_timestamps
            )
        } else {
            String::new()
        };
        return Err(format!(
            "the bundle has no transparency log entry, but the policy requires Rekor{timestamps}"
        ));
    }
    let mut failures = Vec::new();
    for entry in &bundle.tlog_entries {
        match check_entry(rekor_keys, entry, bundle, signer_der, signature) {
            Ok(found) => return Ok(found),
            Err(e) => failures.push(e),
        }
    }
    Err(failures.join("; "))
}

fn check_entry(
    rekor_keys: &[PublicKey],
    entry: &TlogEntry,
    bundle: &Bundle,
    signer_der: &[u8],
    signature: &[u8],
) -> Result<rekor::SetEntry, String> {
    rekor::verify_bundle_entry(
        rekor_keys,
        entry,
        signer_der,
        signature,
        &bundle.envelope.payload,
    )
}

/// The envelope's signature must verify over PAE with one of `keys`.
fn verify_envelope(
    keys: &[PublicKey],
    signed: &[u8],
    signature: &[u8],
) -> Result<(), SignatureRejection> {
    if keys.is_empty() {
        return Err(SignatureRejection::other(
            "Need at least one public key to verify the sigstore bundle, but got 0",
        ));
    }
    let mut failures = Vec::new();
    for key in keys {
        match key.verify(signed, signature) {
            Ok(()) => return Ok(()),
            Err(e) => failures.push(e),
        }
    }
    Err(SignatureRejection::invalid(format!(
        "cryptographic signature verification of the bundle failed: {}",
        failures.join(", ")
    )))
}
