//! criguard's Kubernetes policy objects and their rendering to policy files.
//!
//! # The API
//!
//! - [`ClusterImagePolicy`] (cluster-scoped) and [`ImagePolicy`]
//!   (namespaced), group `criguard.dev`, version `v1alpha1`: OpenShift's
//!   `config.openshift.io/v1` spec ([`ImagePolicySpec`]: `scopes`,
//!   `policy.rootOfTrust`, `policy.signedIdentity`) plus criguard's
//!   `spec.mode` ([`Mode::Enforce`] by default, or [`Mode::Audit`]);
//!   `status.conditions` ([`ImagePolicyStatus`], at most 8).
//! - [`crds`] / [`crds_yaml`]: the CRDs with OpenAPI and CEL rules
//!   (`deploy/crds/criguard.dev.yaml` is `crds_yaml()`).
//! - [`render`]: pure. [`RenderInput`] (base policy.json bytes, objects,
//!   [`Target`]) to [`Rendered`]: `files` (relative path to bytes:
//!   [`POLICY_FILE`], `policies/<ns>.json`, [`REGISTRIES_D_FILE`], and for
//!   [`Target::Criguard`] the audit set under [`AUDIT_DIR`]), `conflicts`
//!   (namespace scopes dropped because a cluster scope contains them),
//!   `applied` and `not_rendered` objects. Any invalid object or base fails
//!   the whole render ([`RenderErrors`], each error naming the object and
//!   field): a partial set is never produced.
//! - [`validate_cluster`] / [`validate_namespaced`]: one object's problems,
//!   for status conditions.
//! - [`parse_objects`]: multi-document YAML (files given to
//!   `criguard policy render`) to [`PolicyObject`]s.
//!
//! Writing the files (atomically: a temporary directory, fsync, rename)
//! is the caller's; this crate does no IO.

mod cel;
mod crds;
mod error;
mod input;
mod object;
mod render;
mod requirement;
mod resources;
pub mod scope;
mod validate;

pub use crds::{crds, crds_yaml};
pub use error::{FieldError, RenderError, RenderErrors};
pub use input::{API_VERSION, InputError, MAX_DOCUMENTS, MAX_INPUT_SIZE, parse_objects};
pub use object::{Kind, ObjectRef, PolicyObject};
pub use render::{
    AUDIT_DIR, Conflict, MAX_OBJECTS, NAMESPACE_DIR, POLICY_FILE, REGISTRIES_D_FILE, RenderInput,
    Rendered, Target, render,
};
pub use resources::{
    ClusterImagePolicy, ClusterImagePolicySpec, ExactRepository, FulcioCaWithRekor, FulcioSubject,
    ImagePolicy, ImagePolicySpec, ImagePolicyStatus, MAX_CERTIFICATE_DATA_LENGTH, MAX_CONDITIONS,
    MAX_KEY_DATA_LENGTH, MAX_SCOPE_LENGTH, MAX_SCOPES, MatchPolicy, Mode, Pki,
    PkiCertificateSubject, Policy, PolicyType, PublicKey, RemapIdentity, RootOfTrust,
    SignedIdentity,
};
pub use validate::{validate_cluster, validate_namespaced};
