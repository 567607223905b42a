//! The node's files from the cached objects: the one renderer
//! (`criguard-kube-policy`) plus the folders readers need even when
//! empty.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criguard_kube_policy::{
    AUDIT_DIR, ClusterImagePolicy, ImagePolicy, NAMESPACE_DIR, RenderErrors, RenderInput, Rendered,
    Target,
};

use crate::fileset::FileSet;

/// Renders `cluster` and `namespaced` over `base` for `target`.
pub fn render(
    base: &[u8],
    target: Target,
    cluster: &[Arc<ClusterImagePolicy>],
    namespaced: &[Arc<ImagePolicy>],
) -> Result<Rendered, RenderErrors> {
    criguard_kube_policy::render(&RenderInput {
        base_policy: base.to_vec(),
        cluster: cluster.iter().map(|p| (**p).clone()).collect(),
        namespaced: namespaced.iter().map(|p| (**p).clone()).collect(),
        target,
    })
}

/// The set `serve` reads: the rendered files, and `policies/` always,
/// since serve takes a policy folder that disappears for "reject the
/// namespaces that had a policy", not for "no namespace has one".
pub fn serve_files(rendered: &Rendered) -> Result<FileSet, String> {
    let mut folders = vec![PathBuf::from(NAMESPACE_DIR)];
    // The audit set's namespace folder likewise, when there is an audit set.
    let audit = Path::new(AUDIT_DIR);
    if rendered.files.keys().any(|p| p.starts_with(audit)) {
        folders.push(audit.join(NAMESPACE_DIR));
    }
    FileSet::new(rendered.files.clone(), folders).map_err(|e| e.to_string())
}

/// The set for CRI-O's `signature_policy_dir`: `<namespace>.json` at the
/// top, as CRI-O looks them up. CRI-O reads the global policy from its own
/// `signature_policy`, which the agent does not manage.
pub fn crio_files(rendered: &Rendered) -> Result<FileSet, String> {
    let files = rendered
        .files
        .iter()
        .filter_map(|(path, bytes)| {
            let name = path.strip_prefix(NAMESPACE_DIR).ok()?;
            Some((name.to_owned(), bytes.clone()))
        })
        .collect();
    FileSet::new(files, []).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &[u8] = br#"{"default":[{"type":"reject"}]}"#;

    #[test]
    fn no_objects_render_the_base_and_an_empty_policies_folder() {
        let rendered = render(BASE, Target::Criguard, &[], &[]).unwrap();
        let set = serve_files(&rendered).unwrap();
        assert!(set.files().contains_key(&PathBuf::from("policy.json")));
        assert!(set.folders().contains(&PathBuf::from("policies")));
        if set
            .files()
            .contains_key(&PathBuf::from("audit/policy.json"))
        {
            assert!(set.folders().contains(&PathBuf::from("audit/policies")));
        }
        assert!(crio_files(&rendered).unwrap().files().is_empty());
    }

    #[test]
    fn an_invalid_base_renders_nothing() {
        assert!(render(b"{", Target::Criguard, &[], &[]).is_err());
    }
}
