//! policy.json to [`Policy`], with containers/image's strictness and wording.
//!
//! Every rule of containers-policy.json(5) as containers/image enforces it is
//! checked here; where containers/image stops at the first problem, this
//! reader goes on and reports them all, each at its place in the file.

use std::collections::HashMap;
use std::path::PathBuf;

use criguard_reference::{Reference, is_valid_identity_prefix};
use serde_json::value::RawValue;

use crate::json::{self, Kind, Members, Node, Path, Problem, Reader};
use crate::model::*;
use crate::transport::Transport;

/// containers/image's (and CRI-O's) system-wide policy.
pub const DEFAULT_POLICY: &str = "/etc/containers/policy.json";

/// The largest policy file accepted. Real policies are kilobytes; a bound
/// keeps a runaway or hostile file from exhausting memory.
pub const MAX_POLICY_SIZE: usize = 16 * 1024 * 1024;

/// Parses policy.json text, returning every problem found if it is invalid.
pub(crate) fn parse_policy(text: &str) -> Result<Policy, Vec<Problem>> {
    if text.len() > MAX_POLICY_SIZE {
        return Err(vec![Problem {
            line: 1,
            column: 1,
            path: String::new(),
            message: format!(
                "policy is {} bytes, more than the {MAX_POLICY_SIZE} bytes accepted",
                text.len()
            ),
        }]);
    }
    let (mut reader, root) = Reader::new(text).map_err(|p| vec![p])?;
    let path = Path::Root;
    let node = Reader::root(root, &path);
    let policy = read_policy(&mut reader, &node);
    match policy {
        Some(policy) if !reader.has_problems() => Ok(policy),
        _ => {
            let problems = reader.into_problems();
            debug_assert!(!problems.is_empty(), "a rejected policy must say why");
            Err(problems)
        }
    }
}

fn read_policy<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>) -> Option<Policy> {
    let members = r.object(node)?;
    let mut default = None;
    let mut transports = Some(HashMap::new());
    members.for_each(node.path(), |key, value| match key {
        "default" => default = Some(read_requirements(r, &value)),
        "transports" => transports = read_transports(r, &value),
        _ => r.report(&value, format!("Unknown key {key:?}")),
    });
    let Some(default) = default else {
        r.report(node, "Default policy is missing");
        return None;
    };
    Some(Policy {
        default: default?,
        transports: transports?,
    })
}

fn read_transports<'a>(
    r: &mut Reader<'a>,
    node: &Node<'a, '_>,
) -> Option<HashMap<String, TransportScopes>> {
    let members = r.object(node)?;
    let mut out = HashMap::with_capacity(members.len());
    let mut ok = true;
    members.for_each(node.path(), |name, value| {
        match read_scopes(r, Transport::from_name(name), name, &value) {
            Some(scopes) => {
                out.insert(name.to_owned(), scopes);
            }
            None => ok = false,
        }
    });
    ok.then_some(out)
}

fn read_scopes<'a>(
    r: &mut Reader<'a>,
    transport: Option<Transport>,
    transport_name: &str,
    node: &Node<'a, '_>,
) -> Option<TransportScopes> {
    let members = r.object(node)?;
    let mut scopes = HashMap::with_capacity(members.len());
    let mut ok = true;
    members.for_each(node.path(), |scope, value| {
        if let (Some(transport), false) = (transport, scope.is_empty())
            && let Err(why) = transport.validate_scope(scope)
        {
            // containers/image discards the reason and says only "Unknown
            // key"; the reason is what a person needs to fix it.
            r.report(
                &value,
                format!("Unknown key {scope:?} (not a valid {transport_name} scope: {why})"),
            );
            ok = false;
            return;
        }
        match read_requirements(r, &value) {
            Some(reqs) => {
                scopes.insert(scope.to_owned(), reqs);
            }
            None => ok = false,
        }
    });
    ok.then_some(TransportScopes { scopes })
}

fn read_requirements<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>) -> Option<Requirements> {
    if node.is_null() {
        r.report(
            node,
            "List of verification policy requirements must not be empty",
        );
        return None;
    }
    let items = r.array(node, "a list of policy requirements")?;
    if items.is_empty() {
        r.report(
            node,
            "List of verification policy requirements must not be empty",
        );
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, raw) in items.into_iter().enumerate() {
        let path = Path::Index(node.path(), i);
        let item = json::child(raw, &path);
        match read_requirement(r, &item) {
            Some(requirement) => out.push(RequirementEntry {
                requirement,
                json: serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null),
            }),
            None => ok = false,
        }
    }
    ok.then_some(Requirements { items: out })
}

/// Reads the `type` member leniently first, as containers/image does, to
/// know which strict reader applies.
fn type_of<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>) -> Option<String> {
    if node.kind() != Kind::Object {
        r.report(
            node,
            format!(
                "a policy requirement must be a JSON object, got {}",
                node.raw()
            ),
        );
        return None;
    }
    let members = r.object(node)?;
    let Some(raw) = members.get("type") else {
        return Some(String::new());
    };
    let path = Path::Key(node.path(), "type");
    r.string(&json::child(raw, &path), "\"type\"")
}

fn read_requirement<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>) -> Option<Requirement> {
    let before = r.problem_count();
    let kind = type_of(r, node)?;
    if r.problem_count() != before {
        return None;
    }
    match kind.as_str() {
        "insecureAcceptAnything" => {
            exact_fields(r, node, &["type"])?;
            Some(Requirement::InsecureAcceptAnything)
        }
        "reject" => {
            exact_fields(r, node, &["type"])?;
            Some(Requirement::Reject)
        }
        "signedBaseLayer" => {
            let members = exact_fields(r, node, &["type", "baseLayerIdentity"])?;
            let raw = members.get("baseLayerIdentity")?;
            let path = Path::Key(node.path(), "baseLayerIdentity");
            let base_layer_identity = read_reference_match(r, &json::child(raw, &path))?;
            Some(Requirement::SignedBaseLayer {
                base_layer_identity,
            })
        }
        "signedBy" => read_signed_by(r, node).map(Requirement::SignedBy),
        "sigstoreSigned" => read_sigstore_signed(r, node).map(Requirement::SigstoreSigned),
        other => {
            r.report(node, format!("Unknown policy requirement type {other:?}"));
            None
        }
    }
}

/// Reads an object that must have exactly `fields`.
fn exact_fields<'a>(
    r: &mut Reader<'a>,
    node: &Node<'a, '_>,
    fields: &[&str],
) -> Option<Members<'a>> {
    let members = allowed_fields(r, node, fields)?;
    let mut ok = true;
    for field in fields {
        if !members.contains(field) {
            r.report(node, format!("Key {field:?} missing in a JSON object"));
            ok = false;
        }
    }
    ok.then_some(members)
}

/// Reads an object whose keys must all be among `fields`.
fn allowed_fields<'a>(
    r: &mut Reader<'a>,
    node: &Node<'a, '_>,
    fields: &[&str],
) -> Option<Members<'a>> {
    let members = r.object(node)?;
    let before = r.problem_count();
    members.for_each(node.path(), |key, value| {
        if !fields.contains(&key) {
            r.report(&value, format!("Unknown key {key:?}"));
        }
    });
    (r.problem_count() == before).then_some(members)
}

/// Runs `read` on member `key` if present.
fn member<'a, T>(
    r: &mut Reader<'a>,
    members: &Members<'a>,
    parent: &Node<'a, '_>,
    key: &str,
    read: impl FnOnce(&mut Reader<'a>, &Node<'a, '_>) -> Option<T>,
) -> Option<Option<T>> {
    match members.get(key) {
        None => Some(None),
        Some(raw) => {
            let path = Path::Key(parent.path(), key);
            read(r, &json::child(raw, &path)).map(Some)
        }
    }
}

fn read_signed_identity<'a>(
    r: &mut Reader<'a>,
    members: &Members<'a>,
    node: &Node<'a, '_>,
) -> Option<ReferenceMatch> {
    Some(
        member(r, members, node, "signedIdentity", read_reference_match)?
            .unwrap_or(ReferenceMatch::MatchRepoDigestOrExact),
    )
}

fn read_signed_by<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>) -> Option<SignedBy> {
    let members = allowed_fields(
        r,
        node,
        &[
            "type",
            "keyType",
            "keyPath",
            "keyPaths",
            "keyData",
            "signedIdentity",
        ],
    )?;
    let before = r.problem_count();
    let key_type = member(r, &members, node, "keyType", |r, n| {
        let name = r.string(n, "\"keyType\"")?;
        match KeyType::from_name(&name) {
            Some(kt) => Some(Some(kt)),
            None => {
                r.report(n, format!("Unrecognized keyType value {name:?}"));
                None
            }
        }
    });
    let key_path = member(r, &members, node, "keyPath", |r, n| {
        r.string(n, "\"keyPath\"")
    });
    let key_paths = member(r, &members, node, "keyPaths", |r, n| {
        r.strings(n, "\"keyPaths\"")
    });
    let key_data = member(r, &members, node, "keyData", |r, n| {
        r.bytes(n, "\"keyData\"")
    });
    let signed_identity = read_signed_identity(r, &members, node);
    if r.problem_count() != before {
        return None;
    }
    let (key_type, key_path, key_paths, key_data, signed_identity) = (
        key_type?.flatten(),
        key_path?,
        key_paths?,
        key_data?,
        signed_identity?,
    );

    let present = [
        members.contains("keyPath"),
        members.contains("keyPaths"),
        members.contains("keyData"),
    ]
    .into_iter()
    .filter(|p| *p)
    .count();
    match present {
        0 => {
            r.report(
                node,
                "Exactly one of keyPath, keyPaths and keyData must be specified, none of them present",
            );
            return None;
        }
        1 => {}
        _ => {
            r.report(
                node,
                "Exactly one of keyPath, keyPaths and keyData must be specified, more than one present",
            );
            return None;
        }
    }
    let Some(key_type) = key_type else {
        r.report(node, "invalid keyType \"\"");
        return None;
    };
    let keys = match (
        key_path.filter(|p| !p.is_empty()),
        key_paths.flatten(),
        key_data.flatten(),
    ) {
        (Some(path), None, None) => GpgKeys::Path(PathBuf::from(path)),
        (None, Some(paths), None) => GpgKeys::Paths(paths.into_iter().map(PathBuf::from).collect()),
        (None, None, Some(data)) => GpgKeys::Data(data),
        _ => {
            r.report(
                node,
                "exactly one of keyPath, keyPaths and keyData must be specified",
            );
            return None;
        }
    };
    Some(SignedBy {
        key_type,
        keys,
        signed_identity,
    })
}

fn read_sigstore_signed<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>) -> Option<SigstoreSigned> {
    let members = allowed_fields(
        r,
        node,
        &[
            "type",
            "keyPath",
            "keyPaths",
            "keyData",
            "keyDatas",
            "fulcio",
            "pki",
            "rekorPublicKeyPath",
            "rekorPublicKeyPaths",
            "rekorPublicKeyData",
            "rekorPublicKeyDatas",
            "signedIdentity",
        ],
    )?;
    let before = r.problem_count();
    let key_path = member(r, &members, node, "keyPath", |r, n| {
        r.string(n, "\"keyPath\"")
    });
    let key_paths = member(r, &members, node, "keyPaths", |r, n| {
        let list = r.strings(n, "\"keyPaths\"")?;
        non_empty(r, n, "keyPaths", list)
    });
    let key_data = member(r, &members, node, "keyData", |r, n| {
        r.bytes(n, "\"keyData\"")
    });
    let key_datas = member(r, &members, node, "keyDatas", |r, n| {
        let list = r.bytes_list(n, "\"keyDatas\"")?;
        non_empty(r, n, "keyDatas", list)
    });
    let fulcio = member(r, &members, node, "fulcio", read_fulcio);
    let pki = member(r, &members, node, "pki", read_pki);
    let rekor_path = member(r, &members, node, "rekorPublicKeyPath", |r, n| {
        r.string(n, "\"rekorPublicKeyPath\"")
    });
    let rekor_paths = member(r, &members, node, "rekorPublicKeyPaths", |r, n| {
        let list = r.strings(n, "\"rekorPublicKeyPaths\"")?;
        non_empty(r, n, "rekorPublickeyPaths", list)
    });
    let rekor_data = member(r, &members, node, "rekorPublicKeyData", |r, n| {
        r.bytes(n, "\"rekorPublicKeyData\"")
    });
    let rekor_datas = member(r, &members, node, "rekorPublicKeyDatas", |r, n| {
        let list = r.bytes_list(n, "\"rekorPublicKeyDatas\"")?;
        non_empty(r, n, "rekorPublickeyDatas", list)
    });
    let signed_identity = read_signed_identity(r, &members, node);
    if r.problem_count() != before {
        return None;
    }

    let key_path = key_path?.filter(|p| !p.is_empty());
    let key_paths = key_paths?;
    let key_data = key_data?.flatten();
    let key_datas = key_datas?;
    let (fulcio, pki) = (fulcio?, pki?);
    let mut trusts = Vec::new();
    if let Some(p) = key_path {
        trusts.push(SigstoreTrust::PublicKeys(KeySet::Path(PathBuf::from(p))));
    }
    if let Some(ps) = key_paths {
        trusts.push(SigstoreTrust::PublicKeys(KeySet::Paths(
            ps.into_iter().map(PathBuf::from).collect(),
        )));
    }
    if let Some(d) = key_data {
        trusts.push(SigstoreTrust::PublicKeys(KeySet::Data(d)));
    }
    if let Some(ds) = key_datas {
        trusts.push(SigstoreTrust::PublicKeys(KeySet::Datas(ds)));
    }
    if let Some(f) = fulcio {
        trusts.push(SigstoreTrust::Fulcio(f));
    }
    if let Some(p) = pki {
        trusts.push(SigstoreTrust::Pki(p));
    }
    if trusts.len() != 1 {
        r.report(
            node,
            "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified",
        );
        return None;
    }
    let trust = trusts.pop()?;

    let mut rekors = Vec::new();
    if let Some(p) = rekor_path?.filter(|p| !p.is_empty()) {
        rekors.push(KeySet::Path(PathBuf::from(p)));
    }
    if let Some(ps) = rekor_paths? {
        rekors.push(KeySet::Paths(ps.into_iter().map(PathBuf::from).collect()));
    }
    if let Some(d) = rekor_data?.flatten() {
        rekors.push(KeySet::Data(d));
    }
    if let Some(ds) = rekor_datas? {
        rekors.push(KeySet::Datas(ds));
    }
    if rekors.len() > 1 {
        r.report(
            node,
            "at most one of rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas can be used simultaneously",
        );
        return None;
    }
    let rekor_public_keys = rekors.pop();
    match (&trust, &rekor_public_keys) {
        (SigstoreTrust::Fulcio(_), None) => {
            r.report(
                node,
                "At least one of rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas must be specified if fulcio is used",
            );
            return None;
        }
        (SigstoreTrust::Pki(_), Some(_)) => {
            r.report(
                node,
                "rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas are not supported for pki",
            );
            return None;
        }
        _ => {}
    }
    Some(SigstoreSigned {
        trust,
        rekor_public_keys,
        signed_identity: signed_identity?,
    })
}

/// containers/image refuses an empty (or `null`) list where a list of keys
/// is given at all.
fn non_empty<'a, T>(
    r: &mut Reader<'a>,
    node: &Node<'a, '_>,
    field: &str,
    list: Option<Vec<T>>,
) -> Option<Vec<T>> {
    match list {
        Some(items) if !items.is_empty() => Some(items),
        _ => {
            r.report(node, format!("{field:?} contains no entries"));
            None
        }
    }
}

/// Reads the nested `fulcio` or `pki` object, whose `null` is an error.
fn nested_object<'a>(
    r: &mut Reader<'a>,
    node: &Node<'a, '_>,
    fields: &[&str],
) -> Option<Members<'a>> {
    allowed_fields(r, node, fields)
}

fn read_fulcio<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>) -> Option<Fulcio> {
    let members = nested_object(r, node, &["caPath", "caData", "oidcIssuer", "subjectEmail"])?;
    let before = r.problem_count();
    let ca_path = member(r, &members, node, "caPath", |r, n| {
        r.string(n, "\"caPath\"")
    });
    let ca_data = member(r, &members, node, "caData", |r, n| r.bytes(n, "\"caData\""));
    let issuer = member(r, &members, node, "oidcIssuer", |r, n| {
        r.string(n, "\"oidcIssuer\"")
    });
    let email = member(r, &members, node, "subjectEmail", |r, n| {
        r.string(n, "\"subjectEmail\"")
    });
    if r.problem_count() != before {
        return None;
    }
    let ca = match (ca_path?.filter(|p| !p.is_empty()), ca_data?.flatten()) {
        (Some(_), Some(_)) => {
            r.report(node, "caPath and caData cannot be used simultaneously");
            return None;
        }
        (None, None) => {
            r.report(node, "At least one of caPath and caData must be specified");
            return None;
        }
        (Some(p), None) => FileOrData::Path(PathBuf::from(p)),
        (None, Some(d)) => FileOrData::Data(d),
    };
    let Some(oidc_issuer) = issuer?.filter(|s| !s.is_empty()) else {
        r.report(node, "oidcIssuer not specified");
        return None;
    };
    let Some(subject_email) = email?.filter(|s| !s.is_empty()) else {
        r.report(node, "subjectEmail not specified");
        return None;
    };
    Some(Fulcio {
        ca,
        oidc_issuer,
        subject_email,
    })
}

fn read_pki<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>) -> Option<Pki> {
    let members = nested_object(
        r,
        node,
        &[
            "caRootsPath",
            "caRootsData",
            "caIntermediatesPath",
            "caIntermediatesData",
            "subjectEmail",
            "subjectHostname",
        ],
    )?;
    let before = r.problem_count();
    let roots_path = member(r, &members, node, "caRootsPath", |r, n| {
        r.string(n, "\"caRootsPath\"")
    });
    let roots_data = member(r, &members, node, "caRootsData", |r, n| {
        r.bytes(n, "\"caRootsData\"")
    });
    let inter_path = member(r, &members, node, "caIntermediatesPath", |r, n| {
        r.string(n, "\"caIntermediatesPath\"")
    });
    let inter_data = member(r, &members, node, "caIntermediatesData", |r, n| {
        r.bytes(n, "\"caIntermediatesData\"")
    });
    let email = member(r, &members, node, "subjectEmail", |r, n| {
        r.string(n, "\"subjectEmail\"")
    });
    let hostname = member(r, &members, node, "subjectHostname", |r, n| {
        r.string(n, "\"subjectHostname\"")
    });
    if r.problem_count() != before {
        return None;
    }
    let ca_roots = match (roots_path?.filter(|p| !p.is_empty()), roots_data?.flatten()) {
        (Some(_), Some(_)) => {
            r.report(
                node,
                "caRootsPath and caRootsData cannot be used simultaneously",
            );
            return None;
        }
        (None, None) => {
            r.report(
                node,
                "At least one of caRootsPath and caRootsData must be specified",
            );
            return None;
        }
        (Some(p), None) => FileOrData::Path(PathBuf::from(p)),
        (None, Some(d)) => FileOrData::Data(d),
    };
    let ca_intermediates = match (inter_path?.filter(|p| !p.is_empty()), inter_data?.flatten()) {
        (Some(_), Some(_)) => {
            r.report(
                node,
                "caIntermediatesPath and caIntermediatesData cannot be used simultaneously",
            );
            return None;
        }
        (None, None) => None,
        (Some(p), None) => Some(FileOrData::Path(PathBuf::from(p))),
        (None, Some(d)) => Some(FileOrData::Data(d)),
    };
    let subject_email = email?.filter(|s| !s.is_empty());
    let subject_hostname = hostname?.filter(|s| !s.is_empty());
    if subject_email.is_none() && subject_hostname.is_none() {
        r.report(
            node,
            "At least one of subjectEmail, subjectHostname must be specified",
        );
        return None;
    }
    Some(Pki {
        ca_roots,
        ca_intermediates,
        subject_email,
        subject_hostname,
    })
}

fn read_reference_match<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>) -> Option<ReferenceMatch> {
    // `null` and a missing "type" both read as type "" in containers/image.
    let kind = if node.is_null() {
        String::new()
    } else {
        let before = r.problem_count();
        let kind = type_of(r, node)?;
        if r.problem_count() != before {
            return None;
        }
        kind
    };
    match kind.as_str() {
        "matchExact" => exact_fields(r, node, &["type"]).map(|_| ReferenceMatch::MatchExact),
        "matchRepoDigestOrExact" => {
            exact_fields(r, node, &["type"]).map(|_| ReferenceMatch::MatchRepoDigestOrExact)
        }
        "matchRepository" => {
            exact_fields(r, node, &["type"]).map(|_| ReferenceMatch::MatchRepository)
        }
        "exactReference" => {
            let members = exact_fields(r, node, &["type", "dockerReference"])?;
            let (text, value) = string_member(r, &members, node, "dockerReference")?;
            match Reference::parse_normalized(&text) {
                Err(e) => {
                    report_at(
                        r,
                        &value,
                        format!("Invalid format of dockerReference {text:?}: {e}"),
                    );
                    None
                }
                Ok(reference) if reference.is_name_only() => {
                    report_at(
                        r,
                        &value,
                        format!("dockerReference {text:?} contains neither a tag nor a digest"),
                    );
                    None
                }
                Ok(reference) => Some(ReferenceMatch::ExactReference(reference)),
            }
        }
        "exactRepository" => {
            let members = exact_fields(r, node, &["type", "dockerRepository"])?;
            let (text, value) = string_member(r, &members, node, "dockerRepository")?;
            match Reference::parse_normalized(&text) {
                Err(e) => {
                    report_at(
                        r,
                        &value,
                        format!("Invalid format of dockerRepository {text:?}: {e}"),
                    );
                    None
                }
                Ok(reference) => Some(ReferenceMatch::ExactRepository(reference)),
            }
        }
        "remapIdentity" => {
            let members = exact_fields(r, node, &["type", "prefix", "signedPrefix"])?;
            let (prefix, at_prefix) = string_member(r, &members, node, "prefix")?;
            let (signed_prefix, at_signed) = string_member(r, &members, node, "signedPrefix")?;
            let mut ok = true;
            for (value, at) in [(&prefix, at_prefix), (&signed_prefix, at_signed)] {
                if !is_valid_identity_prefix(value) {
                    report_at(r, &at, format!("prefix {value:?} is not valid"));
                    ok = false;
                }
            }
            ok.then_some(ReferenceMatch::RemapIdentity {
                prefix,
                signed_prefix,
            })
        }
        other => {
            r.report(
                node,
                format!("Unknown policy reference match type {other:?}"),
            );
            None
        }
    }
}

/// A string member and a node to report problems about it at.
fn string_member<'a, 'p>(
    r: &mut Reader<'a>,
    members: &Members<'a>,
    parent: &Node<'a, 'p>,
    key: &'static str,
) -> Option<(String, ValueAt<'a, 'p>)> {
    let raw: &'a RawValue = members.get(key)?;
    let at = ValueAt {
        raw,
        parent: parent.path(),
        key,
    };
    let path = Path::Key(parent.path(), key);
    let text = r.string(&json::child(raw, &path), &format!("{key:?}"))?;
    Some((text, at))
}

/// Enough to rebuild a node for a member after its path storage is gone.
struct ValueAt<'a, 'p> {
    raw: &'a RawValue,
    parent: &'p Path<'p>,
    key: &'static str,
}

fn report_at<'a>(r: &mut Reader<'a>, at: &ValueAt<'a, '_>, message: String) {
    let path = Path::Key(at.parent, at.key);
    r.report(&json::child(at.raw, &path), message);
}

#[cfg(test)]
mod tests;
