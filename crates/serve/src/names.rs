//! Image names as the kubelet sends them.

use criguard_reference::Reference;

/// An image name as the kubelet sends it, parsed as the docker transport
/// evaluates it: `docker.io/library/` filled in, `:latest` added to a bare
/// name, and the tag of `name:tag@digest` dropped (the digest decides what
/// runs, as in CRI-O and containerd).
pub fn cri_reference(name: &str) -> Result<Reference, String> {
    let reference = Reference::parse_normalized(name)
        .map_err(|e| format!("{name:?} is not an image reference: {e}"))?;
    let reference = if reference.tag().is_some() && reference.digest().is_some() {
        reference.without_tag()
    } else {
        reference
    };
    reference
        .into_docker_transport()
        .map_err(|e| format!("{name:?} is not an image reference: {e}"))
}

/// `sha256:<64 hex>`, or the bare 64 hex: an image ID, which parses as a
/// (meaningless) name `docker.io/library/sha256:<hex>` otherwise.
pub(crate) fn is_image_id(name: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `name` names no registry (`busybox`, `library/busybox`,
/// `team/app:1`): its first component, if any, is not a host (no `.` or
/// `:`, not `localhost`). Runtimes resolve such names differently
/// (containerd: `docker.io`; CRI-O: registries.conf's search list).
pub(crate) fn is_short_name(name: &str) -> bool {
    match name.split_once('/') {
        None => true,
        Some((first, _)) => !(first.contains('.') || first.contains(':') || first == "localhost"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cri_names() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for (name, expected) in [
            ("busybox", "docker.io/library/busybox:latest".to_owned()),
            ("quay.io/x/y:1", "quay.io/x/y:1".to_owned()),
            (
                &format!("quay.io/x/y:1@{digest}"),
                format!("quay.io/x/y@{digest}"),
            ),
        ] {
            assert_eq!(cri_reference(name).unwrap().to_string(), expected);
        }
        for bad in ["", "UPPER/case", &"a".repeat(64)] {
            assert!(cri_reference(bad).is_err(), "{bad}");
        }
        assert!(is_image_id(&format!("sha256:{}", "0f".repeat(32))));
        assert!(!is_image_id("sha256:abc"));
        assert!(!is_image_id("busybox"));
        for short in [
            "busybox",
            "busybox:1",
            "library/busybox",
            "team/app@sha256:00",
        ] {
            assert!(is_short_name(short), "{short}");
        }
        for full in [
            "docker.io/library/busybox",
            "localhost/app",
            "127.0.0.1:5000/app",
            "q.io/a",
        ] {
            assert!(!is_short_name(full), "{full}");
        }
    }
}
