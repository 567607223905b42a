use super::*;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn normalisation_matches_containers_image() {
    let cases: &[(&str, &str)] = &[
        ("busybox", "docker.io/library/busybox"),
        ("docker.io/busybox", "docker.io/library/busybox"),
        ("index.docker.io/busybox", "docker.io/library/busybox"),
        ("library/busybox:latest", "docker.io/library/busybox:latest"),
        ("ns/repo:1.0", "docker.io/ns/repo:1.0"),
        ("example.com/busybox", "example.com/busybox"),
        ("localhost/foo", "localhost/foo"),
        ("localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1"),
        ("localhost", "docker.io/library/localhost"),
        ("example.com:5000", "docker.io/library/example.com:5000"),
        ("Example.COM/repo", "Example.COM/repo"),
        ("a-b--c__d/f", "docker.io/a-b--c__d/f"),
        ("x.y/a-b--c__d.e", "x.y/a-b--c__d.e"),
        // Looks like a host but is not one: the grammar reads it as a path
        // with no domain at all, as containers/image does.
        ("a_b.c/x", "a_b.c/x"),
        (
            "quay.io/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "quay.io/x/y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
    ];
    for (input, want) in cases {
        let got = Reference::parse_normalized(input)
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .to_string();
        assert_eq!(&got, want, "{input}");
    }
}

#[test]
fn bad_references_are_refused_with_containers_image_wording() {
    let cases: &[(&str, &str)] = &[
        ("", "invalid reference format"),
        (
            "Foo/bar",
            "invalid reference format: repository name must be lowercase",
        ),
        (
            HEX,
            &format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
        ),
        ("busybox@sha256:FFFF", "invalid reference format"),
        (
            &format!("busybox@sha256:{}", HEX.to_uppercase()),
            "invalid checksum digest format",
        ),
        (
            "busybox@sha256:abcd0123456789abcdef0123456789abcdef",
            "invalid checksum digest length",
        ),
        (
            "busybox@md5:0123456789abcdef0123456789abcdef",
            "unsupported digest algorithm",
        ),
        ("busybox:", "invalid reference format"),
        ("busybox:-tag", "invalid reference format"),
        ("[::1]:5000/foo", "invalid reference format"),
        ("example.com/", "invalid reference format"),
        ("example.com//x", "invalid reference format"),
        ("a/b/-c", "invalid reference format"),
    ];
    for (input, want) in cases {
        let err = Reference::parse_normalized(input).expect_err(input);
        assert_eq!(&err.to_string(), want, "{input:?}");
    }
    let long = format!("example.com/{}", "a".repeat(250));
    assert_eq!(
        Reference::parse_normalized(&long).unwrap_err(),
        ReferenceError::NameTooLong
    );
    let tag_too_long = format!("busybox:{}", "t".repeat(129));
    assert!(Reference::parse_normalized(&tag_too_long).is_err());
    assert!(Reference::parse_normalized(&format!("busybox:{}", "t".repeat(128))).is_ok());
}

#[test]
fn name_only_references_keep_no_tag() {
    let r = Reference::parse_normalized("registry.example.com/app").unwrap();
    assert!(r.is_name_only());
    assert_eq!(r.to_string(), "registry.example.com/app");
    assert_eq!(
        r.with_default_tag().to_string(),
        "registry.example.com/app:latest"
    );
}

#[test]
fn docker_transport_adds_latest_and_refuses_tag_with_digest() {
    let r = Reference::parse_docker_transport("//busybox").unwrap();
    assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
    let digested = format!("//busybox@sha256:{HEX}");
    let r = Reference::parse_docker_transport(&digested).unwrap();
    assert_eq!(r.tag(), None);
    let both = format!("//busybox:1@sha256:{HEX}");
    assert_eq!(
        Reference::parse_docker_transport(&both).unwrap_err(),
        ReferenceError::TagAndDigest
    );
    assert_eq!(
        Reference::parse_docker_transport("busybox")
            .unwrap_err()
            .to_string(),
        "docker: image reference busybox does not start with //"
    );
}

#[test]
fn canonical_parse_requires_expanded_form() {
    assert!(Reference::parse_canonical("docker.io/library/busybox:latest").is_ok());
    assert_eq!(
        Reference::parse_canonical("busybox:latest").unwrap_err(),
        ReferenceError::NameNotCanonical
    );
    assert_eq!(
        Reference::parse_canonical("notlocalhost:tag").unwrap_err(),
        ReferenceError::NameNotCanonical
    );
}

#[test]
fn familiar_form() {
    let cases = [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/ns/repo", "ns/repo"),
        ("docker.io/library/a/b", "library/a/b"),
        ("quay.io/library/x:1", "quay.io/library/x:1"),
    ];
    for (input, want) in cases {
        assert_eq!(Reference::parse_normalized(input).unwrap().familiar(), want);
    }
}

#[test]
fn namespaces_in_containers_image_order() {
    let cases: &[(&str, &[&str])] = &[
        (
            "example.com:8443/ns/repo:tag",
            &[
                "example.com:8443/ns/repo",
                "example.com:8443/ns",
                "example.com:8443",
                "*.com",
            ],
        ),
        (
            "a.b.example.com/x",
            &[
                "a.b.example.com/x",
                "a.b.example.com",
                "*.b.example.com",
                "*.example.com",
                "*.com",
            ],
        ),
        (
            "busybox:latest",
            &[
                "docker.io/library/busybox",
                "docker.io/library",
                "docker.io",
                "*.io",
            ],
        ),
        ("localhost/busybox", &["localhost/busybox", "localhost"]),
        (
            "192.168.64.2:5000/x",
            &[
                "192.168.64.2:5000/x",
                "192.168.64.2:5000",
                "*.168.64.2",
                "*.64.2",
                "*.2",
            ],
        ),
    ];
    for (input, want) in cases {
        let got = Reference::parse_normalized(input)
            .unwrap()
            .policy_namespaces();
        assert_eq!(&got, want, "{input}");
    }
}

#[test]
fn policy_identity_needs_exactly_one_of_tag_and_digest() {
    let tagged = Reference::parse_normalized("busybox:1").unwrap();
    assert_eq!(
        tagged.policy_identity().unwrap(),
        "docker.io/library/busybox:1"
    );
    let name_only = Reference::parse_normalized("busybox").unwrap();
    assert!(name_only.policy_identity().is_err());
    let both = Reference::parse_normalized(&format!("busybox:1@sha256:{HEX}")).unwrap();
    assert_eq!(
        both.policy_identity().unwrap_err(),
        ReferenceError::TagAndDigest
    );
}

#[test]
fn identity_prefixes_as_remap_identity_validates_them() {
    for ok in [
        "localhost",
        "example.com",
        "example.com:80",
        "example.com/repo",
        "example.com/ns1/ns2/ns3/repo.with.dots-dashes_underscores",
        "example.com:80/ns1/ns2/ns3/repo.with.dots-dashes_underscores",
        "shortname",
        "ns/shortname",
    ] {
        assert!(is_valid_identity_prefix(ok), "{ok}");
    }
    for bad in [
        "",
        "repo_with_underscores",
        "example.com/",
        "example.com/UPPERCASEISINVALID",
        "example.com/repo/",
        "example.com/repo:tag",
        &format!("example.com/repo@sha256:{HEX}"),
        &format!("example.com/repo:tag@sha256:{HEX}"),
        "this is invalid",
    ] {
        assert!(!is_valid_identity_prefix(bad), "{bad}");
    }
}

#[test]
fn digests() {
    let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
    assert_eq!(d.algorithm(), "sha256");
    assert_eq!(d.encoded(), HEX);
    assert_eq!(
        Digest::parse("sha256:../..").unwrap_err(),
        DigestError::InvalidLength
    );
    assert_eq!(
        Digest::parse("sha256").unwrap_err(),
        DigestError::InvalidFormat
    );
    assert_eq!(
        Digest::parse(":abc").unwrap_err(),
        DigestError::InvalidFormat
    );
    assert_eq!(
        Digest::parse("foo:abc").unwrap_err(),
        DigestError::Unsupported
    );
    assert_eq!(
        Digest::parse("Foo:abc").unwrap_err(),
        DigestError::InvalidFormat
    );
    let bytes = [0xabu8; 32];
    assert_eq!(Digest::sha256_from_bytes(&bytes).encoded(), "ab".repeat(32));
}
