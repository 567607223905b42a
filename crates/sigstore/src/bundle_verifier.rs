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
//! this very envelope. Rekor v2 entries and RFC 3161 timestamps need the
//! operator's trusted root (`rekor_v2`, `timestamp`); without one, a bundle
//! that needs them is refused with that reason, and the trusted root only
//! narrows: its logs count only where the policy names their keys.

use std::time::Duration;

use criguard_policy::{SignatureRejection, SigstoreSigned, TrustFiles};
use rustls_pki_types::UnixTime;

use crate::bundle::{Bundle, Material, TlogEntry};
use crate::certificate::{self, PkiIdentity};
use crate::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::public_key::PublicKey;
use crate::trusted_root::{TransparencyLog, TrustedRoot};
use crate::verifier::{TrustRoot, Verifier, load_trust_root};
use crate::{rekor, rekor_v2, statement, timestamp};

/// Verifies `bytes` (a bundle's JSON) under `requirement`; returns the
/// digests its statement signs.
pub(crate) fn verify(
    verifier: &Verifier,
    requirement: &SigstoreSigned,
    files: &dyn TrustFiles,
    bytes: &[u8],
) -> Result<Vec<String>, SignatureRejection> {
    let root = verifier.trusted_root();
    let trust = load_trust_root(&verifier.trust, requirement, files, true)?;
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
            vec![logged_key(root, keys, &rekor_keys, &bundle, signature)?]
        }
        TrustRoot::Fulcio { ca, rekor, fulcio } => {
            let (leaf, intermediates) = certificates(&bundle, "fulcio")?;
            let logged = logged_entry(root, &rekor, &bundle, leaf, signature)
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
    root: Option<&TrustedRoot>,
    keys: Vec<PublicKey>,
    rekor_keys: &[PublicKey],
    bundle: &Bundle,
    signature: &[u8],
) -> Result<PublicKey, SignatureRejection> {
    let mut failures = Vec::new();
    for key in keys {
        match logged_entry(root, rekor_keys, bundle, key.spki_der(), signature) {
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
/// envelope signed by `signer_der` (a key's SPKI or a certificate). Its
/// time is the Rekor v1 `integratedTime`, or for Rekor v2 the verified
/// RFC 3161 timestamp's.
fn logged_entry(
    root: Option<&TrustedRoot>,
    rekor_keys: &[PublicKey],
    bundle: &Bundle,
    signer_der: &[u8],
    signature: &[u8],
) -> Result<rekor::SetEntry, String> {
    if bundle.tlog_entries.is_empty() {
        let timestamps = if bundle.rfc3161_timestamps.is_empty() {
            String::new()
        } else {
            format!(
                " (it has {} RFC 3161 timestamp(s), which do not replace a log entry)",
                bundle.rfc3161_timestamps.len()
            )
        };
        return Err(format!(
            "the bundle has no transparency log entry, but the policy requires Rekor{timestamps}"
        ));
    }
    let mut failures = Vec::new();
    for entry in &bundle.tlog_entries {
        match check_entry(root, rekor_keys, entry, bundle, signer_der, signature) {
            Ok(found) => return Ok(found),
            Err(e) => failures.push(e),
        }
    }
    Err(failures.join("; "))
}

fn check_entry(
    root: Option<&TrustedRoot>,
    rekor_keys: &[PublicKey],
    entry: &TlogEntry,
    bundle: &Bundle,
    signer_der: &[u8],
    signature: &[u8],
) -> Result<rekor::SetEntry, String> {
    if entry.signed_entry_timestamp.is_some() {
        return rekor::verify_bundle_entry(
            rekor_keys,
            entry,
            signer_der,
            signature,
            &bundle.envelope.payload,
        );
    }
    let Some(root) = root else {
        return Err(format!(
            "the bundle's transparency log entry ({} {}) is a Rekor v2 entry (no signed entry timestamp), \
             which needs a trusted root: set trusted_root in criguard's config or pass --trusted-root",
            entry.kind, entry.version
        ));
    };
    check_v2_entry(root, rekor_keys, entry, bundle, signer_der, signature)
}

/// A Rekor v2 entry: logged in a log that both the trusted root and the
/// policy trust, at a time a timestamp authority of the trusted root
/// vouches for, and bound to this envelope and signer.
fn check_v2_entry(
    root: &TrustedRoot,
    rekor_keys: &[PublicKey],
    entry: &TlogEntry,
    bundle: &Bundle,
    signer_der: &[u8],
    signature: &[u8],
) -> Result<rekor::SetEntry, String> {
    let logs: Vec<&TransparencyLog> = root
        .tlogs
        .iter()
        .filter(|log| {
            rekor_keys
                .iter()
                .any(|key| key.spki_der() == log.key.spki_der())
        })
        .collect();
    if logs.is_empty() {
        return Err(
            "no transparency log of the trusted root has one of the policy's Rekor public keys \
             (the trusted root never adds a log the policy does not name)"
                .to_owned(),
        );
    }
    let time = timestamped(root, bundle, signature)?;
    let mut failures = Vec::new();
    for log in logs {
        if !log.valid_for.contains(time) {
            failures.push(format!(
                "log {:?} was not valid at the timestamp's time {time}",
                log.origin()
            ));
            continue;
        }
        match rekor_v2::verify_inclusion(entry, log) {
            Ok(()) => {
                rekor_v2::check_body(
                    entry,
                    signer_der,
                    signature,
                    &bundle.envelope.payload,
                    &bundle.envelope.signed_bytes(),
                )?;
                return Ok(rekor::SetEntry {
                    integrated_time: time,
                    log_index: entry.log_index,
                });
            }
            Err(e) => failures.push(format!("log {:?}: {e}", log.origin())),
        }
    }
    Err(format!(
        "the bundle's Rekor v2 entry is not proven: {}",
        failures.join("; ")
    ))
}

/// The time of the first RFC 3161 timestamp over `signature` that verifies
/// against the trusted root's timestamp authorities.
fn timestamped(root: &TrustedRoot, bundle: &Bundle, signature: &[u8]) -> Result<i64, String> {
    if bundle.rfc3161_timestamps.is_empty() {
        return Err(
            "the bundle's Rekor v2 entry carries no time, and the bundle has no RFC 3161 timestamp"
                .to_owned(),
        );
    }
    let mut failures = Vec::new();
    for token in &bundle.rfc3161_timestamps {
        match timestamp::parse(token).and_then(|t| t.verify(&root.timestamp_authorities, signature))
        {
            Ok(time) => return Ok(time),
            Err(e) => failures.push(e),
        }
    }
    Err(failures.join("; "))
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
