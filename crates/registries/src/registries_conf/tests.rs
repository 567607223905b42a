use super::*;

const DIGEST: &str = "@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn conf(files: &[(&str, &str)]) -> Result<RegistriesConf, Error> {
    RegistriesConf::from_files(
        files
            .iter()
            .map(|(name, text)| ((*name).to_owned(), text.as_bytes().to_vec())),
    )
}

fn named(reference: &str) -> Reference {
    Reference::parse_canonical(reference).unwrap()
}

/// A main file like upstream's `find-registry.conf`…
const FIND_REGISTRY: &str = r#"
[[registry]]
location = "registry.com:5000"
prefix = "simple-prefix.com"

[[registry]]
location = "another-registry.com:5000"
prefix = "complex-prefix.com:4000/with/path"

[[registry]]
location = "registry.com:5000"
prefix = "another-registry.com"

[[registry]]
location = "no-prefix.com"

[[registry]]
location = "empty-prefix.com"
prefix = ""

[[registry]]
location = "subdomain-prefix.com"
prefix = "*.so.simple-prefix.com"

[[registry]]
location = "subdomain-prefix-2.com"
prefix = "*.simple-prefix.com"

[[registry]]
location = "subdomain-prefix-1.com"
prefix = "*.not.quite.simple-prefix.com"

[[registry]]
location = "subdomain-prefix-2.com"
prefix = "*.docker.io"

[[registry]]
location = "subdomain-prefix-3.com"
prefix = "*.bar.example.com"

[[registry]]
location = "subdomain-prefix-4.com"
prefix = "*.bar.docker.io"

[[registry]]
location = "subdomain-prefix-5.com"
prefix = "foo.bar.example.com:5000"

[[registry]]
prefix="*.internal.registry.com"

[[registry]]
prefix="*.com"

[[registry]]
prefix="*.foobar.io"
"#;

/// …and drop-ins like its `registries.conf.d`.
const DROP_INS: &[(&str, &str)] = &[
    (
        "config-1.conf",
        "unqualified-search-registries = [\"example-overwrite.com\"]\n\
         [[registry]]\nlocation = \"1.com\"\n\
         [aliases]\ndocker=\"docker.io/library/config1\"\n",
    ),
    (
        "config-2.conf",
        "short-name-mode = \"permissive\"\ncredential-helpers = [\"dropin-1\"]\n\
         [[registry]]\nlocation = \"2.com\"\n\
         [[registry]]\nlocation = \"base.com\"\nblocked = true\n",
    ),
    (
        "subdomain-override-1.conf",
        "[[registry]]\nlocation = \"subdomain-prefix-1-overridden-by-dropin-location.com\"\nprefix = \"*.not.quite.simple-prefix.com\"\n",
    ),
    (
        "subdomain-override-2.conf",
        "[[registry]]\nlocation = \"subdomain-prefix-2-overridden-by-dropin-location.com\"\nprefix = \"*.docker.com\"\n",
    ),
    (
        "subdomain-override-3.conf",
        "[[registry]]\nlocation = \"subdomain-prefix-3-overridden-by-dropin-location.com\"\nprefix = \"*.bar.example.com\"\n",
    ),
];

fn find_registry_conf() -> RegistriesConf {
    let mut files = vec![("registries.conf", FIND_REGISTRY)];
    files.extend_from_slice(DROP_INS);
    conf(&files).unwrap()
}

/// `TestFindRegistry`.
#[test]
fn longest_prefix_wins() {
    let config = find_registry_conf();
    assert_eq!(config.registries().len(), 19);

    let location = |image: &str| config.find_registry(image).map(Registry::location);
    let registry = config
        .find_registry("simple-prefix.com/foo/bar:latest")
        .unwrap();
    assert_eq!(registry.prefix(), "simple-prefix.com");
    assert_eq!(registry.location(), "registry.com:5000");
    assert!(config.find_registry("simple-prefix.com/").is_some());
    assert!(config.find_registry("simple-prefix.com").is_some());
    assert_eq!(
        location("not.so.simple-prefix.com/"),
        Some("subdomain-prefix.com")
    );
    assert_eq!(
        location("not.quite.simple-prefix.com/"),
        Some("subdomain-prefix-2.com")
    );
    assert_eq!(
        location("not.quite.simple-prefix.com:5000/with/path/and/beyond:tag"),
        Some("subdomain-prefix-2.com")
    );
    assert_eq!(
        location("really.not.quite.simple-prefix.com:5000/with/path/and/beyond:tag"),
        Some("subdomain-prefix-1-overridden-by-dropin-location.com")
    );
    assert_eq!(
        location("foo.docker.io:5000/omg/wtf/bbq:foo"),
        Some("subdomain-prefix-2.com")
    );
    assert_eq!(
        location(&format!("foo.bar.example.com:6000/omg/wtf/bbq{DIGEST}")),
        Some("subdomain-prefix-3-overridden-by-dropin-location.com")
    );
    assert_eq!(
        location("foo.bar.docker.io:5000/omg/wtf/bbq:foo"),
        Some("subdomain-prefix-4.com")
    );
    assert_eq!(
        location("foo.bar.example.com:5000/omg/wtf/bbq:foo"),
        Some("subdomain-prefix-5.com")
    );
    assert!(config.find_registry("simple-prefix.comx").is_none());

    let registry = config
        .find_registry("complex-prefix.com:4000/with/path/and/beyond:tag")
        .unwrap();
    assert_eq!(registry.prefix(), "complex-prefix.com:4000/with/path");
    assert_eq!(registry.location(), "another-registry.com:5000");

    for host in ["no-prefix.com", "empty-prefix.com"] {
        let registry = config.find_registry(&format!("{host}/foo:tag")).unwrap();
        assert_eq!(registry.prefix(), host);
        assert_eq!(registry.location(), host);
    }

    let base = config.find_registry("base.com/test:latest").unwrap();
    assert!(base.blocked());
    assert_eq!(base.file(), "config-2.conf");
}

/// `TestRefMatchingSubdomainPrefix`.
#[test]
fn wildcard_prefix_matching() {
    let cases: &[(&str, &str, Option<usize>)] = &[
        ("docker.io", "*.io", Some("docker.io".len())),
        ("docker.io/foo", "*.com", None),
        ("example.com/foo", "*.co", None),
        ("example.com/foo", "*.example.com", None),
        ("example.com/foo", "*.com", Some("example.com".len())),
        ("example.com/foo:bar", "*.com", Some("example.com".len())),
        (
            "example.com/foo/bar:baz",
            "*.com",
            Some("example.com".len()),
        ),
        ("yet.another.example.com/foo", "**.example.com", None),
        (
            "yet.another.example.com/foo",
            "***.another.example.com",
            None,
        ),
        (
            "yet.another.example.com/foo",
            "**********.another.example.com",
            None,
        ),
        (
            "yet.another.example.com/foo/bar",
            "**********.another.example.com",
            None,
        ),
        (
            "yet.another.example.com/foo/bar",
            "*.another.example.com",
            Some("yet.another.example.com".len()),
        ),
        (
            "another.example.com/namespace.com/foo/bar/bbq:baz",
            "*.example.com",
            Some("another.example.com".len()),
        ),
        (
            "example.net/namespace-ends-in.com/foo/bar/bbq:baz",
            "*.com",
            None,
        ),
        (
            "another.example.com/namespace.com/foo/bar/bbq:baz",
            "*.namespace.com",
            None,
        ),
        (
            "sub.example.com/foo/bar",
            "*.com",
            Some("sub.example.com".len()),
        ),
        (
            "sub.example.com/foo/bar",
            "*.example.com",
            Some("sub.example.com".len()),
        ),
        (
            "another.sub.example.com/foo/bar/bbq:baz",
            "*.example.com",
            Some("another.sub.example.com".len()),
        ),
        (
            "another.sub.example.com/foo/bar/bbq:baz",
            "*.sub.example.com",
            Some("another.sub.example.com".len()),
        ),
        (
            "yet.another.example.com/foo/bar@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "*.example.com",
            Some("yet.another.example.com".len()),
        ),
        // The port is not part of the match.
        (
            "sub.example.com:5000/foo",
            "*.example.com",
            Some("sub.example.com".len()),
        ),
    ];
    for (image, prefix, expected) in cases {
        assert_eq!(
            matching_prefix_len(image, prefix),
            *expected,
            "{image} vs {prefix}"
        );
    }
}

/// `TestRefMatchingPrefix`.
#[test]
fn plain_prefix_matching() {
    let a64 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let b64 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    let foo_a = format!("example.com/foo@sha256:{a64}");
    let foo_b = format!("example.com/foo@sha256:{b64}");
    let bar_a = format!("example.com/foo/bar@sha256:{a64}");
    let cases: Vec<(&str, &str, Option<usize>)> = vec![
        ("docker.io", "docker.io", Some(9)),
        ("docker.io", "example.com", None),
        ("example.com:5000", "example.com:5000", Some(16)),
        ("example.com:50000", "example.com:5000", None),
        // An upstream accident, kept: a host prefix matches the host with a port.
        ("example.com:5000", "example.com", Some(11)),
        ("example.com/foo", "example.com", Some(11)),
        ("example.com/foo/bar", "example.com", Some(11)),
        ("example.com/foo/bar:baz", "example.com", Some(11)),
        (&bar_a, "example.com", Some(11)),
        ("docker.io", "docker.io/library", None),
        ("docker.io/library", "docker.io/library", Some(17)),
        ("example.com/library", "docker.io/library", None),
        ("docker.io/libraryy", "docker.io/library", None),
        ("docker.io/library/busybox", "docker.io/library", Some(17)),
        ("docker.io", "docker.io/library/busybox", None),
        (
            "docker.io/library/busybox",
            "docker.io/library/busybox",
            Some(25),
        ),
        (
            "example.com/library/busybox",
            "docker.io/library/busybox",
            None,
        ),
        (
            "docker.io/library/busybox2",
            "docker.io/library/busybox",
            None,
        ),
        ("example.com", "example.com/foo:bar", None),
        ("example.com/foo", "example.com/foo:bar", None),
        ("example.com/foo:bar", "example.com/foo:bar", Some(19)),
        ("example.com/foo:bar2", "example.com/foo:bar", None),
        ("example.com", &foo_a, None),
        ("example.com/foo", &foo_a, None),
        (&foo_a, &foo_a, Some(foo_a.len())),
        (&foo_b, &foo_a, None),
        ("example.com/foo", "*", None),
        ("example.com/foo", "", None),
    ];
    for (image, prefix, expected) in cases {
        assert_eq!(
            matching_prefix_len(image, prefix),
            expected,
            "{image} vs {prefix}"
        );
    }
}

/// `TestRewriteReferenceSuccess`.
#[test]
fn rewrites() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "example.com/image",
            "example.com",
            "example.com",
            "example.com/image",
        ),
        (
            "example.com/image:latest",
            "example.com",
            "example.com",
            "example.com/image:latest",
        ),
        (
            "example.com:5000/image",
            "example.com:5000",
            "example.com:5000",
            "example.com:5000/image",
        ),
        (
            "example.com:5000/image:latest",
            "example.com:5000",
            "example.com:5000",
            "example.com:5000/image:latest",
        ),
        (
            "example.com/foo@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "example.com",
            "example.com",
            "example.com/foo@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
        (
            "example.com/foo/image:latest",
            "example.com/foo",
            "example.com",
            "example.com/image:latest",
        ),
        (
            "example.com/foo/image:latest",
            "example.com/foo",
            "example.com/path",
            "example.com/path/image:latest",
        ),
        (
            "docker.io/library/image:latest",
            "docker.io",
            "docker.io",
            "docker.io/library/image:latest",
        ),
        (
            "docker.io/library/image",
            "docker.io/library",
            "example.com",
            "example.com/image",
        ),
        (
            "docker.io/library/image",
            "docker.io",
            "example.com",
            "example.com/library/image",
        ),
        (
            "docker.io/library/prefix/image",
            "docker.io/library/prefix",
            "example.com",
            "example.com/image",
        ),
        (
            "docker.io/namespace/image",
            "*.io",
            "example.com",
            "example.com/namespace/image",
        ),
        (
            "docker.io/library/prefix/image",
            "*.io",
            "example.com",
            "example.com/library/prefix/image",
        ),
        (
            "sub.example.io/library/prefix/image",
            "*.example.io",
            "example.com",
            "example.com/library/prefix/image",
        ),
        (
            "another.sub.example.io:5000/library/prefix/image:latest",
            "*.sub.example.io",
            "example.com",
            "example.com:5000/library/prefix/image:latest",
        ),
        (
            "foo.bar.io/ns1/ns2/ns3/ns4",
            "*.bar.io",
            "omg.bbq.com/roflmao",
            "omg.bbq.com/roflmao/ns1/ns2/ns3/ns4",
        ),
        (
            "abc.internal.registry.com/foo:bar",
            "*.internal.registry.com",
            "",
            "abc.internal.registry.com/foo:bar",
        ),
        (
            "blah.foo.bar.com/omg:bbq",
            "*.com",
            "",
            "blah.foo.bar.com/omg:bbq",
        ),
        (
            "alien.vs.predator.foobar.io:5000/omg",
            "*.foobar.io",
            "",
            "alien.vs.predator.foobar.io:5000/omg",
        ),
        (
            "alien.vs.predator.foobar.io:5000/omg:bbq",
            "*.foobar.io",
            "",
            "alien.vs.predator.foobar.io:5000/omg:bbq",
        ),
    ];
    for (input, prefix, location, expected) in cases {
        let rewritten = rewrite(&named(input), prefix, location).unwrap();
        assert_eq!(
            rewritten.to_string(),
            *expected,
            "{input} {prefix} {location}"
        );
    }
}

/// `TestRewriteReferenceFailedDuringParseNamed`, minus the cases with an
/// empty location and a plain prefix, which validation already refuses.
#[test]
fn failed_rewrites() {
    let a64 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let foo_digest = format!("example.com/foo@sha256:{a64}");
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "example.com/foo/image:latest",
            "example.com/foo",
            "example.com/path/",
        ),
        (&foo_digest, "example.com/foo", "example.com"),
        (
            "example.com:5000/image:latest",
            "example.com",
            "example.com:5000",
        ),
        (
            "example.com/foo/image:latest",
            "example.com//foo",
            "example.com/path",
        ),
        ("example.com/image:latest", "image", "anotherimage"),
        (
            "example.com/foo/image:latest",
            "example.com/foo/",
            "example.com",
        ),
        ("example.com/foo/image", "example.com/f", "example.com/foo"),
        ("example.com/foo:latest", "example.com/f", "example.com/foo"),
        (&foo_digest, "example.com/f", "example.com/foo"),
        ("docker.io/library/image", "example.com", "example.com"),
        ("docker.io/library/image", "*.com", "example.com"),
        (
            "foo.docker.io/library/image",
            "*.example.com",
            "example.com/image",
        ),
        (
            "foo.docker.io/library/image",
            "*.docker.com",
            "example.com/image",
        ),
    ];
    for (input, prefix, location) in cases {
        assert!(
            rewrite(&named(input), prefix, location).is_err(),
            "{input} {prefix} {location}"
        );
    }
}

/// `TestPullSourcesFromReference`, with upstream's
/// `pull-sources-from-reference.conf` restated.
#[test]
fn pull_sources_follow_mirror_restrictions() {
    let config = conf(&[(
        "registries.conf",
        r#"
[[registry]]
prefix = "registry-a.com/foo"
location = "registry-a.com/bar"
[[registry.mirror]]
location = "mirror-1.registry-a.com"
[[registry.mirror]]
location = "mirror-2.registry-a.com"
insecure = true

[[registry]]
prefix = "registry-b.com/foo"
location = "registry-b.com/bar"
mirror-by-digest-only = true
[[registry.mirror]]
location = "mirror-1.registry-b.com"
[[registry.mirror]]
location = "mirror-2.registry-b.com"

[[registry]]
prefix = "registry-a.com/baz"
location = "registry-a.com/bar"
[[registry.mirror]]
location = "mirror-1.registry-a.com"
[[registry.mirror]]
location = "mirror-2.registry-a.com"
insecure = true

[[registry]]
prefix = "registry-b.com/baz"
location = "registry-b.com/bar"
[[registry.mirror]]
pull-from-mirror = "digest-only"
location = "mirror-1.registry-b.com"
[[registry.mirror]]
pull-from-mirror = "digest-only"
location = "mirror-2.registry-b.com"

[[registry]]
prefix = "registry-c.com/baz"
location = "registry-c.com/bar"
[[registry.mirror]]
location = "mirror-1.registry-c.com"
[[registry.mirror]]
pull-from-mirror = "digest-only"
location = "mirror-2.registry-c.com"

[[registry]]
prefix = "registry-d.com/baz"
location = "registry-d.com/bar"
mirror-by-digest-only = true
[[registry.mirror]]
location = "mirror-1.registry-d.com"
[[registry.mirror]]
location = "mirror-2.registry-d.com"

[[registry]]
prefix = "registry-e.com/baz"
location = "registry-e.com/bar"
[[registry.mirror]]
pull-from-mirror = "tag-only"
location = "mirror-1.registry-e.com"
[[registry.mirror]]
pull-from-mirror = "tag-only"
location = "mirror-2.registry-e.com"

[[registry]]
prefix = "registry-f.com/baz"
location = "registry-f.com/bar"
[[registry.mirror]]
location = "mirror-1.registry-f.com"
[[registry.mirror]]
pull-from-mirror = "tag-only"
location = "mirror-2.registry-f.com"

[[registry]]
prefix = "registry-g.com/baz"
location = "registry-g.com/bar"
[[registry.mirror]]
pull-from-mirror = "digest-only"
location = "mirror-1.registry-g.com"
[[registry.mirror]]
pull-from-mirror = "tag-only"
location = "mirror-2.registry-g.com"
[[registry.mirror]]
location = "mirror-3.registry-g.com"
[[registry.mirror]]
pull-from-mirror = "all"
location = "mirror-4.registry-g.com"
"#,
    )])
    .unwrap();
    assert_eq!(config.registries().len(), 9);

    type Expected<'a> = &'a [(&'a str, bool)];
    let cases: &[(&str, Expected<'_>, Expected<'_>)] = &[
        (
            "registry-a.com/foo",
            &[
                ("mirror-1.registry-a.com", false),
                ("mirror-2.registry-a.com", true),
                ("registry-a.com/bar", false),
            ],
            &[
                ("mirror-1.registry-a.com", false),
                ("mirror-2.registry-a.com", true),
                ("registry-a.com/bar", false),
            ],
        ),
        (
            "registry-b.com/foo",
            &[
                ("mirror-1.registry-b.com", false),
                ("mirror-2.registry-b.com", false),
                ("registry-b.com/bar", false),
            ],
            &[("registry-b.com/bar", false)],
        ),
        (
            "registry-a.com/baz",
            &[
                ("mirror-1.registry-a.com", false),
                ("mirror-2.registry-a.com", true),
                ("registry-a.com/bar", false),
            ],
            &[
                ("mirror-1.registry-a.com", false),
                ("mirror-2.registry-a.com", true),
                ("registry-a.com/bar", false),
            ],
        ),
        (
            "registry-b.com/baz",
            &[
                ("mirror-1.registry-b.com", false),
                ("mirror-2.registry-b.com", false),
                ("registry-b.com/bar", false),
            ],
            &[("registry-b.com/bar", false)],
        ),
        (
            "registry-c.com/baz",
            &[
                ("mirror-1.registry-c.com", false),
                ("mirror-2.registry-c.com", false),
                ("registry-c.com/bar", false),
            ],
            &[
                ("mirror-1.registry-c.com", false),
                ("registry-c.com/bar", false),
            ],
        ),
        (
            "registry-d.com/baz",
            &[
                ("mirror-1.registry-d.com", false),
                ("mirror-2.registry-d.com", false),
                ("registry-d.com/bar", false),
            ],
            &[("registry-d.com/bar", false)],
        ),
        (
            "registry-e.com/baz",
            &[("registry-e.com/bar", false)],
            &[
                ("mirror-1.registry-e.com", false),
                ("mirror-2.registry-e.com", false),
                ("registry-e.com/bar", false),
            ],
        ),
        (
            "registry-f.com/baz",
            &[
                ("mirror-1.registry-f.com", false),
                ("registry-f.com/bar", false),
            ],
            &[
                ("mirror-1.registry-f.com", false),
                ("mirror-2.registry-f.com", false),
                ("registry-f.com/bar", false),
            ],
        ),
        (
            "registry-g.com/baz",
            &[
                ("mirror-1.registry-g.com", false),
                ("mirror-3.registry-g.com", false),
                ("mirror-4.registry-g.com", false),
                ("registry-g.com/bar", false),
            ],
            &[
                ("mirror-2.registry-g.com", false),
                ("mirror-3.registry-g.com", false),
                ("mirror-4.registry-g.com", false),
                ("registry-g.com/bar", false),
            ],
        ),
    ];
    for (prefix, by_digest, by_tag) in cases {
        for (suffix, expected) in [(DIGEST, by_digest), (":aaa", by_tag)] {
            let reference = named(&format!("{prefix}/image{suffix}"));
            let sources = config.pull_sources(&reference).unwrap();
            let actual: Vec<(String, bool, bool)> = sources
                .iter()
                .map(|s| (s.reference().to_string(), s.insecure(), s.is_mirror()))
                .collect();
            let wanted: Vec<(String, bool, bool)> = expected
                .iter()
                .enumerate()
                .map(|(i, (location, insecure))| {
                    (
                        format!("{location}/image{suffix}"),
                        *insecure,
                        i + 1 < expected.len(),
                    )
                })
                .collect();
            assert_eq!(actual, wanted, "{reference}");
        }
    }
}

#[test]
fn unconfigured_images_are_pulled_as_named() {
    let config = RegistriesConf::default();
    let reference = named("quay.io/a/b:1");
    let sources = config.pull_sources(&reference).unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].reference(), &reference);
    assert!(!sources[0].insecure());
    assert!(!sources[0].is_mirror());
    assert_eq!(sources[0].proxy(), None);
}

#[test]
fn blocked_is_judged_on_the_fetched_reference() {
    let config = conf(&[(
        "/etc/containers/registries.conf",
        r#"
[[registry]]
location = "blocked.example.com"
blocked = true

[[registry]]
location = "never-contact-source.example.com"
blocked = true
[[registry.mirror]]
location = "mirror.example.com/nevercontact"
[[registry.mirror]]
location = "blocked.example.com/mirror"

[[registry]]
prefix = "rewritten.example.com"
location = "elsewhere.example.com"
blocked = true
"#,
    )])
    .unwrap();

    let err = config
        .pull_sources(&named("blocked.example.com/ns/image:1"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "registry blocked.example.com is blocked in /etc/containers/registries.conf"
    );

    // The blocked primary is dropped, and so is the mirror in a blocked
    // registry; the other mirror is still used.
    let sources = config
        .pull_sources(&named("never-contact-source.example.com/image:1"))
        .unwrap();
    let references: Vec<String> = sources.iter().map(|s| s.reference().to_string()).collect();
    assert_eq!(references, ["mirror.example.com/nevercontact/image:1"]);

    // Upstream checks `blocked` on the rewritten location, which is not
    // itself blocked.
    let sources = config
        .pull_sources(&named("rewritten.example.com/image:1"))
        .unwrap();
    assert_eq!(
        sources[0].reference().to_string(),
        "elsewhere.example.com/image:1"
    );
}

#[test]
fn proxies_are_carried_to_sources() {
    let config = conf(&[(
        "registries.conf",
        r#"
[[registry]]
location = "example.com"
proxy = "socks5h://proxy.local:1080"
[[registry.mirror]]
location = "mirror.local"
proxy = "http://proxy.example.com:8000"
"#,
    )])
    .unwrap();
    let sources = config.pull_sources(&named("example.com/a:1")).unwrap();
    let proxies: Vec<Option<&str>> = sources.iter().map(PullSource::proxy).collect();
    assert_eq!(
        proxies,
        [
            Some("http://proxy.example.com:8000"),
            Some("socks5h://proxy.local:1080")
        ]
    );
}

/// `TestMirrors`.
#[test]
fn mirrors_are_read_in_order() {
    let config = conf(&[(
        "mirrors.conf",
        r#"
[[registry]]
location = "registry.com"
[[registry.mirror]]
location = "mirror-1.registry.com"
[[registry.mirror]]
location = "mirror-2.registry.com"
insecure = true

[[registry]]
location = "blocked.registry.com"
blocked = true
"#,
    )])
    .unwrap();
    assert_eq!(config.registries().len(), 2);
    let registry = config.find_registry("registry.com/image:tag").unwrap();
    let mirrors: Vec<(&str, bool)> = registry
        .mirrors()
        .iter()
        .map(|m| (m.location(), m.insecure()))
        .collect();
    assert_eq!(
        mirrors,
        [
            ("mirror-1.registry.com", false),
            ("mirror-2.registry.com", true)
        ]
    );
}

#[test]
fn locations_lose_trailing_slashes_and_may_not_be_urls() {
    let config = conf(&[(
        "a.conf",
        "[[registry]]\nlocation = \"example.com//////\"\n[[registry]]\nlocation = \"john.doe@example.com\"\n",
    )])
    .unwrap();
    assert!(config.find_registry("example.com/x").is_some());

    let err = conf(&[(
        "a.conf",
        "[[registry]]\nlocation = \"https://example.com\"\n",
    )])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"loading registries configuration "a.conf": invalid location 'https://example.com': URI schemes are not supported"#
    );
}

/// `TestInvalidV2Configs`, `TestInvalidMirrorConfig` and the other
/// validation rules.
#[test]
fn invalid_configurations() {
    let cases = [
        (
            "[[registry]]\nlocation = \"registry.com\"\n[[registry]]\nlocation = \"registry.com\"\ninsecure = true\n",
            "registry 'registry.com' is defined multiple times with conflicting 'insecure' setting",
        ),
        (
            "[[registry]]\nlocation = \"registry.com\"\nblocked = true\n[[registry]]\nprefix = \"other.com\"\nlocation = \"registry.com\"\n",
            "registry 'registry.com' is defined multiple times with conflicting 'blocked' setting",
        ),
        (
            "[[registry]]\nlocation = \"registry.com\"\nproxy = \"http://a\"\n[[registry]]\nprefix = \"x.com\"\nlocation = \"registry.com\"\n",
            "registry 'registry.com' is defined multiple times with conflicting 'proxy' setting",
        ),
        (
            "[[registry]]\nlocation = \"registry.com\"\n[[registry.mirror]]\ninsecure = true\n",
            "invalid condition: mirror location is unset",
        ),
        (
            "[[registry]]\nprefix = \"https://registry.com\"\nlocation = \"registry.com\"\n",
            "invalid location 'https://registry.com': URI schemes are not supported",
        ),
        (
            "[[registry]]\ninsecure = true\n",
            "invalid condition: both location and prefix are unset",
        ),
        (
            "[[registry]]\nprefix = \"example.com\"\n",
            "invalid condition: location is unset and prefix is not in the format: *.example.com",
        ),
        (
            "[[registry]]\nprefix = \"*.example.com/ns\"\nlocation = \"x.com\"\n",
            r#"Wildcarded prefix should be in the format: *.example.com. Current prefix "*.example.com/ns" is incorrectly formatted"#,
        ),
        (
            "[[registry]]\nprefix = \"registry-a.com/foo\"\nlocation = \"registry-a.com/bar\"\npull-from-mirror = \"digest-only\"\n",
            r#"pull-from-mirror must not be set for a non-mirror registry "registry-a.com/foo""#,
        ),
        (
            "[[registry]]\nprefix = \"registry-a.com/foo\"\nlocation = \"registry-a.com/bar\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"mirror-1.registry-a.com\"\npull-from-mirror = \"digest-only\"\n",
            r#"cannot set mirror usage mirror-by-digest-only for the registry ("registry-a.com/foo") and pull-from-mirror for per-mirror ("mirror-1.registry-a.com") at the same time"#,
        ),
        (
            "[[registry]]\nprefix = \"registry-a.com/foo\"\nlocation = \"registry-a.com/bar\"\n[[registry.mirror]]\nlocation = \"mirror-1.registry-a.com\"\npull-from-mirror = \"notvalid\"\n",
            r#"unsupported pull-from-mirror value "notvalid" for mirror "mirror-1.registry-a.com""#,
        ),
        (
            "[[registry]]\nlocation = \"registry.com\"\nproxy = \"ftp://proxy\"\n",
            r#"proxy URL scheme "ftp" is not supported. Supported are http, https, socks5, socks5h"#,
        ),
        (
            "[[registry]]\nlocation = \"registry.com\"\nproxy = \":x\"\n",
            r#"parsing proxy URL ":x": parse ":x": missing protocol scheme"#,
        ),
    ];
    for (text, message) in cases {
        let err = conf(&[("bad.conf", text)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("loading registries configuration \"bad.conf\": {message}"),
            "{text}"
        );
    }
}

#[test]
fn the_first_table_for_a_prefix_wins_within_a_file() {
    let config = conf(&[(
        "a.conf",
        "[[registry]]\nprefix = \"example.com\"\nlocation = \"first.com\"\n\
         [[registry]]\nprefix = \"example.com\"\nlocation = \"second.com\"\n",
    )])
    .unwrap();
    assert_eq!(config.registries().len(), 1);
    assert_eq!(config.registries()[0].location(), "first.com");
}

#[test]
fn other_settings_are_ignored_and_v1_is_refused() {
    let config = conf(&[(
        "a.conf",
        r#"
unqualified-search-registries = ["registry.fedoraproject.org", "quay.io"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json"]
additional-layer-store-auth-helper = "helper"

[[registry]]
location = "quay.io"
unknown-key = 1

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"#,
    )])
    .unwrap();
    assert_eq!(config.registries().len(), 1);

    for text in [
        "[registries.search]\nregistries = ['registry1.com']\n",
        "[registries.insecure]\nregistries = []\n",
        "[registries.block]\nregistries = ['x.com']\n[[registry]]\nlocation = \"y.com\"\n",
    ] {
        let err = conf(&[("v1.conf", text)]).unwrap_err();
        assert!(
            matches!(err, Error::RegistriesConfV1 { .. }),
            "{text}: {err}"
        );
    }
    // A `[registries]` table without any v1 list is not v1.
    conf(&[("a.conf", "[registries.other]\nkey = 1\n")]).unwrap();
}

#[test]
fn syntax_and_type_errors_name_the_file_and_line() {
    for text in [
        "[[registry]]\nlocation = \"a.com\"\ninsecure = \"yes\"\n",
        "[[registry]]\nlocation = [1]\n",
        "registry = 1\n",
        "[[registry]]\nlocation = \"a.com\"\nlocation = \"b.com\"\n",
        "[[registry\n",
    ] {
        let err = conf(&[("bad.conf", text)]).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Syntax { .. }), "{text}: {message}");
        assert!(
            message.starts_with("parsing bad.conf: line "),
            "{text}: {message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }
}

#[test]
fn drop_ins_replace_tables_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("registries.conf");
    std::fs::write(
        &main,
        "[[registry]]\nlocation = \"example.com\"\n[[registry]]\nlocation = \"kept.com\"\n",
    )
    .unwrap();
    let drop_in_dir = dir.path().join("registries.conf.d");
    std::fs::create_dir(&drop_in_dir).unwrap();
    std::fs::write(
        drop_in_dir.join("10-first.conf"),
        "[[registry]]\nprefix = \"example.com\"\nlocation = \"first.com\"\n",
    )
    .unwrap();
    std::fs::write(
        drop_in_dir.join("20-second.conf"),
        "[[registry]]\nprefix = \"example.com\"\nlocation = \"second.com\"\n",
    )
    .unwrap();
    std::fs::write(drop_in_dir.join("30-ignored.conf.bak"), "not toml [").unwrap();
    std::fs::create_dir(drop_in_dir.join("40-directory.conf")).unwrap();

    let config = RegistriesConf::load(&main, Some(&drop_in_dir)).unwrap();
    let registry = config.find_registry("example.com/x").unwrap();
    assert_eq!(registry.location(), "second.com");
    assert_eq!(
        registry.file(),
        drop_in_dir.join("20-second.conf").display().to_string()
    );
    assert!(config.find_registry("kept.com/x").is_some());

    let missing = RegistriesConf::load(
        &dir.path().join("missing.conf"),
        Some(&dir.path().join("missing.d")),
    )
    .unwrap();
    assert_eq!(missing, RegistriesConf::default());
}

#[test]
fn oversized_files_are_refused() {
    let big = vec![b'#'; usize::try_from(crate::MAX_CONFIG_FILE_SIZE).unwrap() + 1];
    let err = RegistriesConf::from_files([("big.conf".to_owned(), big)]).unwrap_err();
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err}");
}
