//! Golden files: each folder under tests/golden holds `base.json` and
//! `input.yaml`, and the expected files of a render for criguard
//! (`criguard/`) and for CRI-O (`crio/`). `CRIGUARD_BLESS=1` rewrites the
//! expected files from the renderer (then read the diff).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use criguard_kube_policy::{PolicyObject, RenderInput, Target, parse_objects, render};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn input(case: &Path, target: Target) -> RenderInput {
    let text = std::fs::read(case.join("input.yaml")).unwrap();
    let mut input = RenderInput {
        base_policy: std::fs::read(case.join("base.json")).unwrap(),
        target,
        ..RenderInput::default()
    };
    for object in parse_objects(&text, "input.yaml").unwrap() {
        match object {
            PolicyObject::Cluster(p) => input.cluster.push(p),
            PolicyObject::Namespaced(p) => input.namespaced.push(p),
        }
    }
    input
}

fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn rendered_files_equal_the_golden_files() {
    let bless = std::env::var_os("CRIGUARD_BLESS").is_some();
    let mut cases = 0;
    for case in std::fs::read_dir(golden()).unwrap() {
        let case = case.unwrap().path();
        for (target, folder) in [(Target::Criguard, "criguard"), (Target::Crio, "crio")] {
            let input = input(&case, target);
            let rendered = render(&input).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
            // Byte-identical for the same input, whatever the order given.
            let mut reversed = input.clone();
            reversed.cluster.reverse();
            reversed.namespaced.reverse();
            assert_eq!(render(&reversed).unwrap(), rendered, "{}", case.display());

            let expected_dir = case.join(folder);
            if bless {
                let _ = std::fs::remove_dir_all(&expected_dir);
                for (path, bytes) in &rendered.files {
                    let path = expected_dir.join(path);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(path, bytes).unwrap();
                }
            }
            let expected = files_under(&expected_dir);
            assert_eq!(
                expected.keys().collect::<Vec<_>>(),
                rendered.files.keys().collect::<Vec<_>>(),
                "{}/{folder}: file list",
                case.display()
            );
            for (path, bytes) in &rendered.files {
                assert_eq!(
                    String::from_utf8_lossy(&expected[path]),
                    String::from_utf8_lossy(bytes),
                    "{}/{folder}/{}",
                    case.display(),
                    path.display()
                );
            }
            cases += 1;
        }
    }
    assert!(cases >= 4, "golden cases found: {cases}");
}
