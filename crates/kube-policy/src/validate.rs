//! The renderer's checks of one policy object, each problem at its field.
//!
//! They are the CRD's CEL and OpenAPI rules (see [`crate::cel`]) made again
//! in Rust, for objects that never went through an API server (files given
//! to `criguard policy render`) and for the status writer.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use regex::Regex;

use crate::cel;
use crate::error::FieldError;
use crate::object::ObjectRef;
use crate::resources::{
    ClusterImagePolicy, ImagePolicy, ImagePolicySpec, MAX_CERTIFICATE_DATA_LENGTH,
    MAX_KEY_DATA_LENGTH, MAX_SCOPE_LENGTH, MAX_SCOPES, MatchPolicy, PolicyType, RootOfTrust,
    SignedIdentity,
};

fn compiled(pattern: &str) -> Regex {
    Regex::new(pattern).expect("criguard's own patterns compile")
}

static SCOPE: LazyLock<Regex> = LazyLock::new(|| compiled(&cel::scope_pattern()));
static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| compiled(&cel::repository_pattern()));
static PREFIX: LazyLock<Regex> = LazyLock::new(|| compiled(&cel::prefix_pattern()));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| compiled(cel::EMAIL_PATTERN));
static URL: LazyLock<Regex> = LazyLock::new(|| compiled(cel::URL_PATTERN));
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| compiled(cel::HOSTNAME_PATTERN));
/// A namespace name (DNS-1123 label); it becomes a file name.
static NAMESPACE: LazyLock<Regex> =
    LazyLock::new(|| compiled("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"));

/// Checks a `ClusterImagePolicy`; every problem is returned.
pub fn validate_cluster(policy: &ClusterImagePolicy) -> Result<(), Vec<FieldError>> {
    let mut check = Checker::new(ObjectRef::cluster(policy));
    check.name();
    check.spec(&policy.spec);
    check.finish()
}

/// Checks an `ImagePolicy`, its namespace included; every problem is
/// returned.
pub fn validate_namespaced(policy: &ImagePolicy) -> Result<(), Vec<FieldError>> {
    let mut check = Checker::new(ObjectRef::namespaced(policy));
    check.name();
    match policy.metadata.namespace.as_deref() {
        None | Some("") => check.report("metadata.namespace", "an ImagePolicy needs a namespace"),
        Some(namespace) if !NAMESPACE.is_match(namespace) => check.report(
            "metadata.namespace",
            format!("{namespace:?} is not a namespace name (a DNS-1123 label)"),
        ),
        Some(_) => {}
    }
    check.spec(&policy.spec);
    check.finish()
}

/// Decodes a `[]byte` field as Kubernetes and Go do (standard alphabet,
/// padding required, line breaks ignored).
pub(crate) fn decode_data(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let joined: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    STANDARD.decode(joined)
}

struct Checker {
    object: ObjectRef,
    errors: Vec<FieldError>,
}

impl Checker {
    fn new(object: ObjectRef) -> Self {
        Self {
            object,
            errors: Vec::new(),
        }
    }

    fn report(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            object: self.object.clone(),
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    fn name(&mut self) {
        if self.object.name.is_empty() {
            self.report("metadata.name", "a policy needs a name");
        } else if self.object.name.len() > 253 {
            self.report("metadata.name", "longer than 253 characters");
        }
    }

    fn spec(&mut self, spec: &ImagePolicySpec) {
        self.scopes(&spec.scopes);
        self.root_of_trust(&spec.policy.root_of_trust);
        if let Some(identity) = &spec.policy.signed_identity {
            self.signed_identity(identity);
        }
    }

    fn scopes(&mut self, scopes: &[String]) {
        if scopes.is_empty() {
            self.report("spec.scopes", "at least one scope is required");
        }
        if scopes.len() > MAX_SCOPES {
            self.report(
                "spec.scopes",
                format!(
                    "{} scopes, more than the {MAX_SCOPES} accepted",
                    scopes.len()
                ),
            );
            return;
        }
        let mut seen = BTreeSet::new();
        for (i, scope) in scopes.iter().enumerate() {
            let field = format!("spec.scopes[{i}]");
            if scope.len() > MAX_SCOPE_LENGTH {
                self.report(&field, format!("longer than {MAX_SCOPE_LENGTH} characters"));
            } else if !SCOPE.is_match(scope) {
                self.report(
                    &field,
                    format!(
                        "{scope:?} is not a scope: write host[:port], a repository namespace or \
                         repository under it, repo:tag, repo@digest, or *.domain"
                    ),
                );
            } else if !seen.insert(scope.as_str()) {
                self.report(&field, format!("{scope:?} is listed twice"));
            }
        }
    }

    fn root_of_trust(&mut self, root: &RootOfTrust) {
        const AT: &str = "spec.policy.rootOfTrust";
        let present = [
            (
                PolicyType::PublicKey,
                "publicKey",
                root.public_key.is_some(),
            ),
            (
                PolicyType::FulcioCaWithRekor,
                "fulcioCAWithRekor",
                root.fulcio_ca_with_rekor.is_some(),
            ),
            (PolicyType::Pki, "pki", root.pki.is_some()),
        ];
        for (kind, field, is_present) in present {
            let wanted = root.policy_type == kind;
            if wanted && !is_present {
                self.report(
                    &format!("{AT}.{field}"),
                    format!("required when policyType is {}", policy_type_name(kind)),
                );
            } else if !wanted && is_present {
                self.report(
                    &format!("{AT}.{field}"),
                    format!(
                        "not allowed when policyType is {}",
                        policy_type_name(root.policy_type)
                    ),
                );
            }
        }
        if let Some(key) = &root.public_key {
            let at = format!("{AT}.publicKey");
            self.pem(&format!("{at}.keyData"), &key.key_data, Pem::PublicKey);
            if let Some(rekor) = &key.rekor_key_data {
                self.pem(&format!("{at}.rekorKeyData"), rekor, Pem::PublicKey);
            }
        }
        if let Some(fulcio) = &root.fulcio_ca_with_rekor {
            let at = format!("{AT}.fulcioCAWithRekor");
            self.pem(
                &format!("{at}.fulcioCAData"),
                &fulcio.fulcio_ca_data,
                Pem::Certificates,
            );
            self.pem(
                &format!("{at}.rekorKeyData"),
                &fulcio.rekor_key_data,
                Pem::PublicKey,
            );
            let subject = &fulcio.fulcio_subject;
            self.pattern(
                &format!("{at}.fulcioSubject.oidcIssuer"),
                &subject.oidc_issuer,
                &URL,
                2048,
                "an http or https URL",
            );
            self.pattern(
                &format!("{at}.fulcioSubject.signedEmail"),
                &subject.signed_email,
                &EMAIL,
                320,
                "an email address",
            );
        }
        if let Some(pki) = &root.pki {
            let at = format!("{AT}.pki");
            self.pem(
                &format!("{at}.caRootsData"),
                &pki.ca_roots_data,
                Pem::Certificates,
            );
            if let Some(intermediates) = &pki.ca_intermediates_data {
                self.pem(
                    &format!("{at}.caIntermediatesData"),
                    intermediates,
                    Pem::Certificates,
                );
            }
            let subject = &pki.pki_certificate_subject;
            let at = format!("{at}.pkiCertificateSubject");
            if subject.email.is_none() && subject.hostname.is_none() {
                self.report(&at, "at least one of email and hostname is required");
            }
            if let Some(email) = &subject.email {
                self.pattern(
                    &format!("{at}.email"),
                    email,
                    &EMAIL,
                    320,
                    "an email address",
                );
            }
            if let Some(hostname) = &subject.hostname {
                self.pattern(
                    &format!("{at}.hostname"),
                    hostname,
                    &HOSTNAME,
                    253,
                    "a DNS-1123 subdomain",
                );
            }
        }
    }

    fn signed_identity(&mut self, identity: &SignedIdentity) {
        const AT: &str = "spec.policy.signedIdentity";
        let present = [
            (
                MatchPolicy::ExactRepository,
                "exactRepository",
                identity.exact_repository.is_some(),
            ),
            (
                MatchPolicy::RemapIdentity,
                "remapIdentity",
                identity.remap_identity.is_some(),
            ),
        ];
        for (kind, field, is_present) in present {
            let wanted = identity.match_policy == kind;
            if wanted && !is_present {
                self.report(
                    &format!("{AT}.{field}"),
                    format!("required when matchPolicy is {kind:?}"),
                );
            } else if !wanted && is_present {
                self.report(
                    &format!("{AT}.{field}"),
                    format!(
                        "not allowed when matchPolicy is {:?}",
                        identity.match_policy
                    ),
                );
            }
        }
        if let Some(exact) = &identity.exact_repository {
            self.pattern(
                &format!("{AT}.exactRepository.repository"),
                &exact.repository,
                &REPOSITORY,
                512,
                "a repository with its registry host, without tag or digest",
            );
        }
        if let Some(remap) = &identity.remap_identity {
            for (field, value) in [
                ("prefix", &remap.prefix),
                ("signedPrefix", &remap.signed_prefix),
            ] {
                self.pattern(
                    &format!("{AT}.remapIdentity.{field}"),
                    value,
                    &PREFIX,
                    512,
                    "a registry host, optionally with a repository namespace, without tag or digest",
                );
            }
        }
    }

    fn pattern(&mut self, field: &str, value: &str, pattern: &Regex, max: usize, what: &str) {
        if value.len() > max {
            self.report(field, format!("longer than {max} characters"));
        } else if !pattern.is_match(value) {
            self.report(field, format!("{value:?} is not {what}"));
        }
    }

    fn pem(&mut self, field: &str, text: &str, kind: Pem) {
        let (labels, max) = match kind {
            Pem::PublicKey => (cel::PUBLIC_KEY_LABELS, MAX_KEY_DATA_LENGTH),
            Pem::Certificates => (cel::CERTIFICATE_LABELS, MAX_CERTIFICATE_DATA_LENGTH),
        };
        if text.len() > max {
            self.report(field, format!("longer than {max} characters"));
            return;
        }
        let bytes = match decode_data(text) {
            Ok(bytes) => bytes,
            Err(e) => return self.report(field, format!("not base64: {e}")),
        };
        let shaped = std::str::from_utf8(&bytes).is_ok_and(|pem| {
            labels.iter().any(|label| {
                pem.starts_with(&format!("-----BEGIN {label}-----"))
                    && pem.trim().ends_with(&format!("-----END {label}-----"))
            })
        });
        if !shaped {
            self.report(field, cel::pem_message(labels));
        }
    }
}

#[derive(Clone, Copy)]
enum Pem {
    PublicKey,
    Certificates,
}

fn policy_type_name(kind: PolicyType) -> &'static str {
    match kind {
        PolicyType::PublicKey => "PublicKey",
        PolicyType::FulcioCaWithRekor => "FulcioCAWithRekor",
        PolicyType::Pki => "PKI",
    }
}
