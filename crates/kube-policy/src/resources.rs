//! The custom resources: `ClusterImagePolicy` and `ImagePolicy` in group
//! `criguard.dev`, version `v1alpha1`.
//!
//! The spec has OpenShift's `config.openshift.io/v1` shape, field for field,
//! so that its users can move their objects over by changing `apiVersion`;
//! `spec.mode` is criguard's own addition. Key and certificate fields are
//! strings holding base64 of PEM bytes, which is how Kubernetes JSON carries
//! `[]byte`; they are kept as the text the user wrote so that a problem can be
//! reported against that text.
//!
//! The CEL rules (`x-kubernetes-validations`) come from [`crate::cel`], which
//! shares its patterns with the renderer's own checks in [`crate::validate`]:
//! the API server refuses what the renderer would refuse.

// KubeSchema copies each struct, `pub` included, into a function body to
// build its schema; those copies are what this lint would flag.
#![allow(unreachable_pub)]
// Two `printcolumn(...)` entries repeat `type_ = "string"`, which this lint
// takes for one attribute given twice.
#![allow(clippy::duplicated_attributes)]

use std::ops::{Deref, DerefMut};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most scopes one policy may list, and the longest scope (as OpenShift).
pub const MAX_SCOPES: usize = 256;
pub const MAX_SCOPE_LENGTH: usize = 512;
/// Longest base64 text of one public key (a PEM key is well under 4 KiB).
pub const MAX_KEY_DATA_LENGTH: usize = 16 * 1024;
/// Longest base64 text of a certificate bundle (roots or intermediates).
pub const MAX_CERTIFICATE_DATA_LENGTH: usize = 256 * 1024;
/// Most conditions in a status (as OpenShift's v1 ImagePolicy).
pub const MAX_CONDITIONS: usize = 8;

/// What an `ImagePolicy` (namespaced) requires of images in its scopes.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "criguard.dev",
    version = "v1alpha1",
    kind = "ImagePolicy",
    namespaced,
    status = "ImagePolicyStatus",
    derive = "PartialEq",
    doc = "Signatures that images in the listed scopes must carry to run in this namespace.",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicySpec {
    /// Where the policy applies, in policy.json's scope syntax: `host[:port]`,
    /// a repository namespace, a repository, `repo:tag`, `repo@digest`, or
    /// `*.domain`.
    #[schemars(length(min = 1, max = 256), inner(length(min = 1, max = 512)))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = crate::cel::scopes_rule())]
    pub scopes: Vec<String>,
    /// How signatures are verified.
    pub policy: Policy,
    /// `Enforce` refuses images that fail; `Audit` only logs and counts them
    /// (criguard's addition; CRI-O never sees audit policies).
    #[serde(default)]
    pub mode: Mode,
}

/// The spec of a ClusterImagePolicy: an ImagePolicy's, for every
/// namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "criguard.dev",
    version = "v1alpha1",
    kind = "ClusterImagePolicy",
    status = "ImagePolicyStatus",
    derive = "PartialEq",
    doc = "Signatures that images in the listed scopes must carry to run on the cluster's nodes.",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    )
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct ClusterImagePolicySpec(pub ImagePolicySpec);

impl Deref for ClusterImagePolicySpec {
    type Target = ImagePolicySpec;
    fn deref(&self) -> &ImagePolicySpec {
        &self.0
    }
}

impl DerefMut for ClusterImagePolicySpec {
    fn deref_mut(&mut self) -> &mut ImagePolicySpec {
        &mut self.0
    }
}

/// Whether failures refuse the image or are only reported.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

/// `spec.policy`: the root of trust and how the signed identity must match.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub root_of_trust: RootOfTrust,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_identity: Option<SignedIdentity>,
}

/// `spec.policy.rootOfTrust`: a union on `policyType`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::cel::union_rule("policyType", "PublicKey", "publicKey"))]
#[x_kube(validation = crate::cel::union_rule("policyType", "FulcioCAWithRekor", "fulcioCAWithRekor"))]
#[x_kube(validation = crate::cel::union_rule("policyType", "PKI", "pki"))]
pub struct RootOfTrust {
    pub policy_type: PolicyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKey>,
    #[serde(
        default,
        rename = "fulcioCAWithRekor",
        skip_serializing_if = "Option::is_none"
    )]
    pub fulcio_ca_with_rekor: Option<FulcioCaWithRekor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pki: Option<Pki>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PolicyType {
    PublicKey,
    #[serde(rename = "FulcioCAWithRekor")]
    FulcioCaWithRekor,
    #[serde(rename = "PKI")]
    Pki,
}

/// Signatures made with one public key, optionally logged in Rekor.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// base64 of a PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    #[schemars(length(max = 16384), extend("format" = "byte"))]
    #[x_kube(validation = crate::cel::pem_rule(crate::cel::PUBLIC_KEY_LABELS))]
    pub key_data: String,
    /// base64 of the PEM public key of the Rekor log the signatures were
    /// logged in; when given, a signature needs a valid Rekor SET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16384), extend("format" = "byte"))]
    #[x_kube(validation = crate::cel::pem_rule(crate::cel::PUBLIC_KEY_LABELS))]
    pub rekor_key_data: Option<String>,
}

/// Keyless signatures: a Fulcio certificate for an OIDC identity, logged in
/// Rekor.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FulcioCaWithRekor {
    /// base64 of the Fulcio CA certificates (PEM).
    #[serde(rename = "fulcioCAData")]
    #[schemars(length(max = 262144), extend("format" = "byte"))]
    #[x_kube(validation = crate::cel::pem_rule(crate::cel::CERTIFICATE_LABELS))]
    pub fulcio_ca_data: String,
    /// base64 of the Rekor log's PEM public key.
    #[schemars(length(max = 16384), extend("format" = "byte"))]
    #[x_kube(validation = crate::cel::pem_rule(crate::cel::PUBLIC_KEY_LABELS))]
    pub rekor_key_data: String,
    pub fulcio_subject: FulcioSubject,
}

/// Whom the Fulcio certificate must have been issued to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FulcioSubject {
    /// The OIDC issuer recorded in the certificate, an http(s) URL.
    #[schemars(length(max = 2048))]
    #[x_kube(validation = crate::cel::url_rule())]
    pub oidc_issuer: String,
    /// The email address the certificate names, exactly.
    #[schemars(length(max = 320))]
    #[x_kube(validation = crate::cel::email_rule())]
    pub signed_email: String,
}

/// Signatures by certificates from the user's own CA.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Pki {
    /// base64 of the PEM root certificates.
    #[schemars(length(max = 262144), extend("format" = "byte"))]
    #[x_kube(validation = crate::cel::pem_rule(crate::cel::CERTIFICATE_LABELS))]
    pub ca_roots_data: String,
    /// base64 of the PEM intermediate certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 262144), extend("format" = "byte"))]
    #[x_kube(validation = crate::cel::pem_rule(crate::cel::CERTIFICATE_LABELS))]
    pub ca_intermediates_data: Option<String>,
    pub pki_certificate_subject: PkiCertificateSubject,
}

/// What the signing certificate must name; both are checked when both are
/// given.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::cel::subject_rule())]
pub struct PkiCertificateSubject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 320))]
    #[x_kube(validation = crate::cel::email_rule())]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = crate::cel::hostname_rule())]
    pub hostname: Option<String>,
}

/// `spec.policy.signedIdentity`: which identity in the signature is
/// accepted for the image pulled; a union on `matchPolicy`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = crate::cel::union_rule("matchPolicy", "ExactRepository", "exactRepository"))]
#[x_kube(validation = crate::cel::union_rule("matchPolicy", "RemapIdentity", "remapIdentity"))]
pub struct SignedIdentity {
    pub match_policy: MatchPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_repository: Option<ExactRepository>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remap_identity: Option<RemapIdentity>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MatchPolicy {
    #[default]
    MatchRepoDigestOrExact,
    MatchRepository,
    ExactRepository,
    RemapIdentity,
}

/// The one repository every signature must name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExactRepository {
    #[schemars(length(max = 512))]
    #[x_kube(validation = crate::cel::repository_rule())]
    pub repository: String,
}

/// Signatures name the image under `signedPrefix` where it is pulled from
/// `prefix` (a mirror).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RemapIdentity {
    #[schemars(length(max = 512))]
    #[x_kube(validation = crate::cel::prefix_rule())]
    pub prefix: String,
    #[schemars(length(max = 512))]
    #[x_kube(validation = crate::cel::prefix_rule())]
    pub signed_prefix: String,
}

/// `status`: written by criguard's one status writer, never by every node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicyStatus {
    /// `Ready`, `Applied` and `ScopeConflict`, each with the
    /// `observedGeneration` it describes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
