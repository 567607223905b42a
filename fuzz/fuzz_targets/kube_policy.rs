//! Any bytes as `criguard policy render` input: YAML documents of
//! ClusterImagePolicy and ImagePolicy objects, rendered on a fixed base.
//!
//! Reading never panics; a render never panics, never produces a file
//! criguard's own parsers refuse, is the same for the same input, keeps
//! audit objects out of CRI-O's files, and every conflict it reports is a
//! namespace scope inside the cluster scope it names.

#![no_main]

use criguard_kube_policy::{
    Mode, PolicyObject, RenderError, RenderInput, Target, parse_objects, render, scope,
};
use libfuzzer_sys::fuzz_target;

const BASE: &[u8] = br#"{"default":[{"type":"reject"}],"transports":{"docker":{"example.com":[{"type":"insecureAcceptAnything"}]}}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(objects) = parse_objects(data, "fuzz") else {
        return;
    };
    let mut input = RenderInput {
        base_policy: BASE.to_vec(),
        ..RenderInput::default()
    };
    let mut audit = 0;
    for object in objects {
        if object.spec().mode == Mode::Audit {
            audit += 1;
        }
        match object {
            PolicyObject::Cluster(p) => input.cluster.push(p),
            PolicyObject::Namespaced(p) => input.namespaced.push(p),
        }
    }
    for target in [Target::Criguard, Target::Crio] {
        input.target = target;
        match render(&input) {
            Err(errors) => {
                assert!(!errors.0.is_empty());
                for error in &errors.0 {
                    assert!(
                        !matches!(error, RenderError::Unparsable { .. }),
                        "rendered a file criguard refuses: {error}"
                    );
                }
            }
            Ok(rendered) => {
                assert_eq!(render(&input).ok().as_ref(), Some(&rendered));
                for c in &rendered.conflicts {
                    assert!(scope::contains(&c.cluster_scope, &c.scope), "{c:?}");
                }
                if target == Target::Crio {
                    assert!(!rendered.files.keys().any(|p| p.starts_with("audit")));
                    assert_eq!(rendered.not_rendered.len(), audit);
                }
            }
        }
    }
});
