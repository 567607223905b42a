//! Policy objects in, policy files out: no IO, the same bytes for the same
//! input.
//!
//! As OpenShift's machine-config operator renders for CRI-O: each object is
//! one `sigstoreSigned` requirement appended to each of its scopes under
//! `transports.docker` of the base policy (objects sharing a scope are all
//! required); `policy.json` holds the cluster's objects, `policies/<ns>.json`
//! the cluster's plus that namespace's; a namespace scope equal to or inside
//! a cluster scope is dropped and reported, since policy.json's most
//! specific scope would otherwise replace the cluster's requirements.
//!
//! Unlike OpenShift, nothing is copied to the `atomic` transport: CRI-O and
//! criguard evaluate every pull through `docker`, and `atomic` (deprecated)
//! would add scopes nothing reads.
//!
//! `Audit` objects never reach those files. They go, with the `Enforce`
//! objects, into a second set under `audit/` that `criguard serve` evaluates
//! after the enforced decision allowed an image, to count what would have
//! been refused; `Target::Crio` writes no such set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use criguard_policy::Policy as ParsedPolicy;
use criguard_registries::RegistriesD;
use serde_json::{Map, Value};

use crate::error::{FieldError, RenderError, RenderErrors};
use crate::object::ObjectRef;
use crate::requirement::sigstore_signed;
use crate::resources::{ClusterImagePolicy, ImagePolicy, ImagePolicySpec, Mode};
use crate::scope;
use crate::validate::{validate_cluster, validate_namespaced};

/// The global policy, relative to the output directory.
pub const POLICY_FILE: &str = "policy.json";
/// The folder of per-namespace policies (`<namespace>.json`).
pub const NAMESPACE_DIR: &str = "policies";
/// registries.d's file turning on sigstore attachments for every scope.
pub const REGISTRIES_D_FILE: &str = "registries.d/criguard.yaml";
/// The folder of the audit set (`policy.json`, `policies/`), criguard's only.
pub const AUDIT_DIR: &str = "audit";
/// Most objects (of both kinds together) one render accepts.
pub const MAX_OBJECTS: usize = 10_000;

/// Whose files are rendered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Target {
    /// criguard: the enforced set and the audit set.
    #[default]
    Criguard,
    /// CRI-O: only what it can enforce; `Audit` objects are left out.
    Crio,
}

/// What to render from.
#[derive(Debug, Clone, Default)]
pub struct RenderInput {
    /// policy.json bytes the objects are added to (the node's own policy).
    pub base_policy: Vec<u8>,
    pub cluster: Vec<ClusterImagePolicy>,
    pub namespaced: Vec<ImagePolicy>,
    pub target: Target,
}

/// A namespace scope dropped because a cluster scope contains it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Conflict {
    pub namespace: String,
    /// The `ImagePolicy`.
    pub name: String,
    pub scope: String,
    /// The `ClusterImagePolicy` whose scope wins, and that scope.
    pub cluster_policy: String,
    pub cluster_scope: String,
}

/// The files of one render and what became of each object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Relative path (see [`POLICY_FILE`] and the other constants) to
    /// contents; a complete set, to be written all or not at all.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// Every dropped namespace scope, sorted.
    pub conflicts: Vec<Conflict>,
    /// Objects with at least one scope in the files, sorted.
    pub applied: Vec<ObjectRef>,
    /// `Audit` objects left out because the target has no audit mode.
    pub not_rendered: Vec<ObjectRef>,
}

/// One object ready to be placed: its requirement and the scopes it keeps.
struct Entry {
    object: ObjectRef,
    mode: Mode,
    scopes: Vec<String>,
    requirement: Value,
}

/// Renders the files for `input`, or says every reason it cannot.
pub fn render(input: &RenderInput) -> Result<Rendered, RenderErrors> {
    let mut errors = Vec::new();
    let count = input.cluster.len() + input.namespaced.len();
    if count > MAX_OBJECTS {
        return Err(RenderErrors(vec![RenderError::TooManyObjects {
            count,
            limit: MAX_OBJECTS,
        }]));
    }
    let base = match parse_base(&input.base_policy) {
        Ok(base) => Some(base),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let mut seen = BTreeSet::new();
    let mut cluster = Vec::with_capacity(input.cluster.len());
    for policy in &input.cluster {
        let checked = validate_cluster(policy).map(|()| ObjectRef::cluster(policy));
        if let Some(entry) = entry(checked, &policy.spec, &mut seen, &mut errors) {
            cluster.push(entry);
        }
    }
    let mut by_namespace: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for policy in &input.namespaced {
        let checked = validate_namespaced(policy).map(|()| ObjectRef::namespaced(policy));
        if let Some(entry) = entry(checked, &policy.spec, &mut seen, &mut errors) {
            let namespace = entry.object.namespace.clone().unwrap_or_default();
            by_namespace.entry(namespace).or_default().push(entry);
        }
    }
    let Some(base) = base.filter(|_| errors.is_empty()) else {
        return Err(RenderErrors(errors));
    };
    cluster.sort_by(|a, b| a.object.cmp(&b.object));
    let mut conflicts = Vec::new();
    for entries in by_namespace.values_mut() {
        entries.sort_by(|a, b| a.object.cmp(&b.object));
        for entry in entries.iter_mut() {
            drop_conflicts(entry, &cluster, &mut conflicts);
        }
    }
    conflicts.sort();

    let enforced = |mode: Mode| mode == Mode::Enforce;
    let any = |_: Mode| true;
    let mut files = BTreeMap::new();
    files.insert(
        PathBuf::from(POLICY_FILE),
        compose(&base, [&cluster], enforced),
    );
    for (namespace, entries) in &by_namespace {
        files.insert(
            PathBuf::from(NAMESPACE_DIR).join(format!("{namespace}.json")),
            compose(&base, [&cluster, entries], enforced),
        );
    }
    let mut not_rendered = Vec::new();
    let attached: fn(Mode) -> bool = match input.target {
        Target::Criguard => {
            let audit = PathBuf::from(AUDIT_DIR);
            files.insert(audit.join(POLICY_FILE), compose(&base, [&cluster], any));
            for (namespace, entries) in &by_namespace {
                files.insert(
                    audit.join(NAMESPACE_DIR).join(format!("{namespace}.json")),
                    compose(&base, [&cluster, entries], any),
                );
            }
            |_| true
        }
        Target::Crio => {
            let all = cluster.iter().chain(by_namespace.values().flatten());
            not_rendered.extend(
                all.filter(|e| e.mode == Mode::Audit)
                    .map(|e| e.object.clone()),
            );
            |mode| mode == Mode::Enforce
        }
    };
    let all = || cluster.iter().chain(by_namespace.values().flatten());
    files.insert(
        PathBuf::from(REGISTRIES_D_FILE),
        registries_d(all().filter(|e| attached(e.mode))),
    );
    let mut applied: Vec<ObjectRef> = all()
        .filter(|e| attached(e.mode) && !e.scopes.is_empty())
        .map(|e| e.object.clone())
        .collect();
    applied.sort();
    not_rendered.sort();
    check_files(&files)?;
    Ok(Rendered {
        files,
        conflicts,
        applied,
        not_rendered,
    })
}

/// The base policy as JSON, once criguard's parser accepted it.
fn parse_base(bytes: &[u8]) -> Result<Map<String, Value>, RenderError> {
    ParsedPolicy::from_bytes(bytes, "the base policy")
        .map_err(|e| RenderError::InvalidBase(e.to_string()))?;
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(RenderError::InvalidBase("not a JSON object".into())),
        Err(e) => Err(RenderError::InvalidBase(e.to_string())),
    }
}

/// Makes a validated object an [`Entry`], or records why not.
fn entry(
    checked: Result<ObjectRef, Vec<FieldError>>,
    spec: &ImagePolicySpec,
    seen: &mut BTreeSet<ObjectRef>,
    errors: &mut Vec<RenderError>,
) -> Option<Entry> {
    let object = match checked {
        Ok(object) => object,
        Err(problems) => {
            errors.extend(problems.into_iter().map(RenderError::InvalidObject));
            return None;
        }
    };
    if !seen.insert(object.clone()) {
        errors.push(RenderError::InvalidObject(FieldError {
            object,
            field: "metadata.name".into(),
            message: "given twice".into(),
        }));
        return None;
    }
    let Some(requirement) = sigstore_signed(&spec.policy) else {
        errors.push(RenderError::InvalidObject(FieldError {
            object,
            field: "spec.policy".into(),
            message: "cannot be rendered".into(),
        }));
        return None;
    };
    Some(Entry {
        object,
        mode: spec.mode,
        scopes: spec.scopes.clone(),
        requirement,
    })
}

/// Removes the scopes of a namespace entry that a cluster scope contains,
/// recording each (the first cluster policy by name, its first such scope).
fn drop_conflicts(entry: &mut Entry, cluster: &[Entry], conflicts: &mut Vec<Conflict>) {
    entry.scopes.retain(|inner| {
        let winner = cluster.iter().find_map(|c| {
            c.scopes
                .iter()
                .find(|outer| scope::contains(outer, inner))
                .map(|outer| (c, outer))
        });
        match winner {
            Some((c, outer)) => {
                conflicts.push(Conflict {
                    namespace: entry.object.namespace.clone().unwrap_or_default(),
                    name: entry.object.name.clone(),
                    scope: inner.clone(),
                    cluster_policy: c.object.name.clone(),
                    cluster_scope: outer.clone(),
                });
                false
            }
            None => true,
        }
    });
}

/// The base policy with every included entry's requirement appended to
/// each of its scopes in `transports.docker`, scopes sorted.
fn compose<const N: usize>(
    base: &Map<String, Value>,
    layers: [&[Entry]; N],
    include: impl Fn(Mode) -> bool,
) -> Vec<u8> {
    let mut policy = base.clone();
    let entries: Vec<&Entry> = layers
        .into_iter()
        .flatten()
        .filter(|e| include(e.mode) && !e.scopes.is_empty())
        .collect();
    if !entries.is_empty() {
        let transports = policy
            .entry("transports")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(transports) = transports {
            let slot = transports
                .entry("docker")
                .or_insert_with(|| Value::Object(Map::new()));
            let mut docker: BTreeMap<String, Value> = match slot.take() {
                Value::Object(scopes) => scopes.into_iter().collect(),
                _ => BTreeMap::new(),
            };
            for entry in entries {
                for scope in &entry.scopes {
                    let list = docker
                        .entry(scope.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(list) = list {
                        list.push(entry.requirement.clone());
                    }
                }
            }
            *slot = Value::Object(docker.into_iter().collect());
        }
    }
    let mut out = serde_json::to_vec_pretty(&Value::Object(policy)).unwrap_or_default();
    out.push(b'\n');
    out
}

/// registries.d: `use-sigstore-attachments: true` for every scope, sorted.
fn registries_d<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<u8> {
    let scopes: BTreeSet<&str> = entries
        .flat_map(|e| e.scopes.iter().map(String::as_str))
        .collect();
    let docker: BTreeMap<&str, BTreeMap<&str, bool>> = scopes
        .into_iter()
        .map(|scope| (scope, BTreeMap::from([("use-sigstore-attachments", true)])))
        .collect();
    let body = yaml_serde::to_string(&BTreeMap::from([("docker", docker)])).unwrap_or_default();
    format!(
        "# Written by criguard from ClusterImagePolicy and ImagePolicy objects; do not edit.\n{body}"
    )
    .into_bytes()
}

/// Every file must read back with criguard's own parsers: a file a node
/// would refuse is never handed out.
fn check_files(files: &BTreeMap<PathBuf, Vec<u8>>) -> Result<(), RenderErrors> {
    let mut errors = Vec::new();
    for (path, bytes) in files {
        let name = path.display().to_string();
        let problem = if path.extension().is_some_and(|e| e == "json") {
            ParsedPolicy::from_bytes(bytes, &name)
                .err()
                .map(|e| e.to_string())
        } else {
            RegistriesD::from_files([(name.clone(), bytes.clone())])
                .err()
                .map(|e| e.to_string())
        };
        if let Some(problem) = problem {
            errors.push(RenderError::Unparsable {
                file: name,
                problem,
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RenderErrors(errors))
    }
}
