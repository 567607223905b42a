//! The identity tables of containers/image's policy_reference_match tests,
//! as data.

use super::*;

const D: &str = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const D2: &str = "@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const FULL_RHEL: &str = "registry.access.redhat.com/rhel7/rhel:7.2.3";
const UNTAGGED_RHEL: &str = "registry.access.redhat.com/rhel7/rhel";

fn d(name: &str) -> String {
    format!("{name}{D}")
}
fn d2(name: &str) -> String {
    format!("{name}{D2}")
}

/// (a, b, expected) rows usable in both directions.
fn exact_table() -> Vec<(String, String, bool)> {
    let s = |x: &str| x.to_owned();
    vec![
        (s("busybox:latest"), s("busybox:latest"), true),
        (s(FULL_RHEL), s(FULL_RHEL), true),
        (d("busybox"), d("busybox"), true),
        (s("library/busybox:latest"), s("busybox:latest"), true),
        (
            s("docker.io/library/busybox:latest"),
            s("busybox:latest"),
            true,
        ),
        (d("library/busybox"), d("busybox"), true),
        (d("busybox:latest"), d("busybox:latest"), true),
        (s("busybox:latest"), s("busybox:notlatest"), false),
        (s("busybox:latest"), s("notbusybox:latest"), false),
        (
            s("busybox:latest"),
            s("hostname/library/busybox:notlatest"),
            false,
        ),
        (
            s("hostname/library/busybox:latest"),
            s("busybox:notlatest"),
            false,
        ),
        (s("busybox:latest"), s(FULL_RHEL), false),
        (d("busybox"), d("notbusybox"), false),
        (s("busybox:latest"), d("busybox"), false),
        (d("busybox"), d2("busybox"), false),
        (s("busybox"), s("busybox:latest"), false),
        (s("busybox"), d("busybox"), false),
        (s("busybox"), s("busybox"), false),
        (d("busybox:latest"), d2("busybox:latest"), false),
        (d("busybox:latest"), d("busybox:notlatest"), false),
        (d("busybox:latest"), d("busybox"), false),
        (d("busybox:latest"), s("busybox:latest"), false),
        (
            s("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES"),
            s("busybox:latest"),
            false,
        ),
        (s(""), s("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES"), false),
        (s("INVALID"), s("INVALID"), false),
    ]
}

fn repository_table() -> Vec<(String, String, bool)> {
    let s = |x: &str| x.to_owned();
    vec![
        (s("busybox:latest"), s("busybox:latest"), true),
        (s(FULL_RHEL), s(FULL_RHEL), true),
        (d("busybox"), d("busybox"), true),
        (s("library/busybox:latest"), s("busybox:latest"), true),
        (
            s("docker.io/library/busybox:latest"),
            s("busybox:latest"),
            true,
        ),
        (d("library/busybox"), d("busybox"), true),
        (s("busybox:latest"), s("busybox:notlatest"), true),
        (format!("{FULL_RHEL}tagsuffix"), s(FULL_RHEL), true),
        (s("library/busybox:latest"), s("busybox:notlatest"), true),
        (s("busybox:latest"), s("library/busybox:notlatest"), true),
        (
            s("docker.io/library/busybox:notlatest"),
            s("busybox:latest"),
            true,
        ),
        (
            s("busybox:notlatest"),
            s("docker.io/library/busybox:latest"),
            true,
        ),
        (s("busybox:latest"), d("busybox"), true),
        (d("busybox"), d2("busybox"), true),
        (s("busybox"), s("busybox:notlatest"), true),
        (s(FULL_RHEL), s(UNTAGGED_RHEL), true),
        (s("busybox"), d("busybox"), true),
        (s("library/busybox"), s("busybox"), true),
        (s("docker.io/library/busybox"), s("busybox"), true),
        (d("busybox:latest"), d("busybox:latest"), true),
        (d("busybox:latest"), d2("busybox:latest"), true),
        (d("busybox:latest"), d("busybox:notlatest"), true),
        (d("busybox:latest"), d("busybox"), true),
        (d("busybox:latest"), s("busybox:latest"), true),
        (s("busybox:latest"), s("notbusybox:latest"), false),
        (
            s("hostname/library/busybox:latest"),
            s("busybox:notlatest"),
            false,
        ),
        (s("busybox:latest"), s(FULL_RHEL), false),
        (d("busybox"), d("notbusybox"), false),
        (
            s("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES"),
            s("busybox:latest"),
            false,
        ),
        (s(""), s("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES"), false),
        (s("INVALID"), s("INVALID"), false),
    ]
}

/// Evaluates a rule for an image written as text; an image reference that
/// does not parse cannot be evaluated, so the rule cannot accept anything.
fn matches(rule: &ReferenceMatch, image: &str, signature: &str) -> bool {
    match Reference::parse_normalized(image) {
        Ok(image) => rule.matches(Some(&image), signature),
        Err(_) => false,
    }
}

fn symmetric(rows: &[(String, String, bool)]) -> Vec<(String, String, bool)> {
    rows.iter()
        .flat_map(|(a, b, want)| [(a.clone(), b.clone(), *want), (b.clone(), a.clone(), *want)])
        .collect()
}

#[test]
fn match_exact() {
    for (image, sig, want) in symmetric(&exact_table()) {
        assert_eq!(
            matches(&ReferenceMatch::MatchExact, &image, &sig),
            want,
            "{image} / {sig}"
        );
    }
}

#[test]
fn match_repository() {
    for (image, sig, want) in symmetric(&repository_table()) {
        assert_eq!(
            matches(&ReferenceMatch::MatchRepository, &image, &sig),
            want,
            "{image} / {sig}"
        );
    }
}

#[test]
fn exact_reference_and_repository_ignore_the_image() {
    let image = Reference::parse_normalized("unrelated/image:tag").unwrap();
    for (policy, sig, want) in symmetric(&exact_table()) {
        // Policies with references that do not parse, or carry no tag or
        // digest, are refused when the policy is read.
        let Ok(intended) = Reference::parse_normalized(&policy) else {
            continue;
        };
        if intended.is_name_only() {
            continue;
        }
        let rule = ReferenceMatch::ExactReference(intended);
        assert_eq!(rule.matches(Some(&image), &sig), want, "{policy} / {sig}");
        assert_eq!(
            rule.matches(None, &sig),
            want,
            "{policy} / {sig} without image"
        );
    }
    for (policy, sig, want) in symmetric(&repository_table()) {
        let Ok(intended) = Reference::parse_normalized(&policy) else {
            continue;
        };
        let rule = ReferenceMatch::ExactRepository(intended);
        assert_eq!(rule.matches(Some(&image), &sig), want, "{policy} / {sig}");
    }
}

fn repo_digest_or_exact_rows() -> Vec<(String, String, bool)> {
    let s = |x: &str| x.to_owned();
    let mut rows: Vec<_> = symmetric(&exact_table())
        .into_iter()
        .filter(|r| r.2)
        .collect();
    rows.extend(symmetric(&repository_table()).into_iter().filter(|r| !r.2));
    rows.extend([
        (s("busybox:latest"), s("busybox:notlatest"), false),
        (format!("{FULL_RHEL}tagsuffix"), s(FULL_RHEL), false),
        (s("library/busybox:latest"), s("busybox:notlatest"), false),
        (s("busybox:latest"), s("library/busybox:notlatest"), false),
        (
            s("docker.io/library/busybox:notlatest"),
            s("busybox:latest"),
            false,
        ),
        (
            s("busybox:notlatest"),
            s("docker.io/library/busybox:latest"),
            false,
        ),
        (s("busybox"), s("busybox:latest"), false),
        (s("busybox:latest"), s("busybox"), false),
        (s("busybox"), d("busybox"), false),
        (d("busybox"), s("busybox"), false),
        (s(FULL_RHEL), s(UNTAGGED_RHEL), false),
        (s("busybox"), s("busybox"), false),
        (s("busybox:latest"), d("busybox"), false),
        (d("busybox"), s("busybox:latest"), true),
        (d("busybox"), d2("busybox"), true),
        (d("busybox:latest"), s("busybox:latest"), false),
        (d("busybox:latest"), s("busybox:notlatest"), false),
        (s("busybox:latest"), d("busybox:latest"), false),
        (d("busybox:latest"), d2("busybox:latest"), false),
        (d("busybox:latest"), d2("busybox:notlatest"), false),
    ]);
    rows
}

#[test]
fn match_repo_digest_or_exact() {
    for (image, sig, want) in repo_digest_or_exact_rows() {
        let rule = ReferenceMatch::MatchRepoDigestOrExact;
        assert_eq!(matches(&rule, &image, &sig), want, "{image} / {sig}");
    }
}

#[test]
fn remap_identity_with_a_prefix_that_does_not_apply_is_repo_digest_or_exact() {
    let rule = ReferenceMatch::RemapIdentity {
        prefix: "does-not-match.com".into(),
        signed_prefix: "does-not-match.rewritten".into(),
    };
    for (image, sig, want) in repo_digest_or_exact_rows() {
        assert_eq!(matches(&rule, &image, &sig), want, "{image} / {sig}");
    }
}

#[test]
fn unidentified_images_match_nothing_image_relative() {
    for rule in [
        ReferenceMatch::MatchExact,
        ReferenceMatch::MatchRepository,
        ReferenceMatch::MatchRepoDigestOrExact,
        ReferenceMatch::RemapIdentity {
            prefix: "a.com".into(),
            signed_prefix: "b.com".into(),
        },
    ] {
        assert!(!rule.matches(None, "busybox:latest"), "{rule:?}");
        assert!(!rule.matches(None, ""), "{rule:?}");
    }
}

#[test]
fn prefix_matching() {
    let rows: &[(&str, &str, bool)] = &[
        ("docker.io/image", "docker.io", true),
        ("docker.io/image", "example.com", false),
        ("example.com:5000/image", "example.com:5000", true),
        ("example.com:50000/image", "example.com:5000", false),
        ("example.com:5000/image", "example.com", false),
        ("example.com/foo", "example.com", true),
        ("example.com/foo/bar", "example.com", true),
        ("docker.io/ns/image", "docker.io/library", false),
        ("example.com/library", "docker.io/library", false),
        ("docker.io/libraryy/image", "docker.io/library", false),
        ("docker.io/library/busybox", "docker.io/library", true),
        ("example.com/ns/image", "example.com/ns", true),
        ("example.com/ns2/image", "example.com/ns", false),
        ("example.com/n2/image", "example.com/ns", false),
        ("example.com:5000/ns/image", "example.com/ns", false),
        ("example.com/ns/image", "example.com:5000/ns", false),
        (
            "docker.io/library/busybox",
            "docker.io/library/busybox",
            true,
        ),
        (
            "example.com/library/busybox",
            "docker.io/library/busybox",
            false,
        ),
        (
            "docker.io/library/busybox2",
            "docker.io/library/busybox",
            false,
        ),
        ("example.com/ns/imag2", "example.com/ns/image", false),
        ("example.com/ns/imagee", "example.com/ns/image", false),
    ];
    for (name, prefix, want) in rows {
        assert_eq!(name_has_prefix(name, prefix), *want, "{name} / {prefix}");
    }
    assert!(!name_has_prefix(
        "example.com",
        "example.com/library/busybox"
    ));
}

#[test]
fn prefix_rewriting() {
    let rows: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/ns/image:tag",
            Some("vendor.example/ns/image:tag"),
        ),
        (
            "docker.io",
            "not-docker-signed.example/ns",
            "busybox",
            Some("not-docker-signed.example/ns/library/busybox"),
        ),
        (
            "example.com/mirror",
            "example.com/vendor",
            "example.com/mirror/image:tag",
            Some("example.com/vendor/image:tag"),
        ),
        (
            "example.com/ns/mirror",
            "example.com/ns/vendor",
            "example.com/ns/mirror:tag",
            Some("example.com/ns/vendor:tag"),
        ),
        (
            "docker.io",
            "not-docker-signed.example",
            "busybox",
            Some("not-docker-signed.example/library/busybox"),
        ),
        (
            "docker.io/library",
            "not-docker-signed.example/ns",
            "busybox",
            Some("not-docker-signed.example/ns/busybox"),
        ),
        (
            "docker.io/library/busybox",
            "not-docker-signed.example/ns/notbusybox",
            "busybox",
            Some("not-docker-signed.example/ns/notbusybox"),
        ),
        (
            "mirror.example",
            "vendor.example",
            "mirror.example/image",
            Some("vendor.example/image"),
        ),
        (
            "mirror.example/ns/image",
            "vendor.example:5000",
            "mirror.example/ns/image:tag",
            None,
        ),
        (
            "mirror.example/ns/image",
            "notlocalhost",
            "mirror.example/ns/image:tag",
            None,
        ),
    ];
    for (prefix, signed, image, want) in rows {
        let image = Reference::parse_normalized(image).unwrap();
        let got = remap(&image, prefix, signed).map(|r| r.to_string());
        assert_eq!(got.as_deref(), *want, "{prefix} -> {signed} on {image}");
    }
}

#[test]
fn remap_identity_matches() {
    let rows: &[(&str, &str, &str, &str, bool)] = &[
        (
            "does-not-match.com",
            "does-not-match.rewritten",
            "busybox:latest",
            "busybox:latest",
            true,
        ),
        (
            "does-not-match.com",
            "does-not-match.rewritten",
            "busybox:latest",
            "notbusybox:latest",
            false,
        ),
        (
            "mirror.example",
            "public.com",
            "mirror.example/busybox:1",
            "public.com/busybox:1",
            true,
        ),
        (
            "mirror.example",
            "public.com",
            "mirror.example/busybox:1",
            "public.com/busybox:not1",
            false,
        ),
        (
            "mirror.example",
            "docker.io/library",
            "mirror.example/busybox:latest",
            "busybox:latest",
            true,
        ),
        (
            "mirror.example",
            "docker.io/library",
            "mirror.example/alpine:latest",
            "busybox:latest",
            false,
        ),
        (
            "docker.io/library",
            "original.com",
            "copied:latest",
            "original.com/copied:latest",
            true,
        ),
        (
            "docker.io/library",
            "original.com",
            "copied:latest",
            "original.com/ns/copied:latest",
            false,
        ),
        (
            "busybox",
            "example.com/busybox",
            "busybox:latest",
            "example.com/busybox:latest",
            false,
        ),
        (
            "docker.io/library/busybox",
            "busybox",
            "docker.io/library/busybox:latest",
            "busybox:latest",
            false,
        ),
        (
            "UPPERCASE",
            "example.com",
            "example.com/foo:latest",
            "example.com/foo:latest",
            true,
        ),
        (
            "example.com",
            "UPPERCASE",
            "example.com/foo:latest",
            "UPPERCASE/foo:latest",
            false,
        ),
    ];
    for (prefix, signed_prefix, image, sig, want) in rows {
        let rule = ReferenceMatch::RemapIdentity {
            prefix: (*prefix).into(),
            signed_prefix: (*signed_prefix).into(),
        };
        assert_eq!(
            matches(&rule, image, sig),
            *want,
            "{prefix} {signed_prefix} {image} {sig}"
        );
    }
}
