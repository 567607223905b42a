use super::*;

/// `url.Parse(input).String()`, and the same after appending
/// `/library/busybox` to the path, as observed from Go's `net/url`.
#[test]
fn parse_then_print_matches_go() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "https://lookaside.example.com",
            "https://lookaside.example.com",
            "https://lookaside.example.com/library/busybox",
        ),
        (
            "/no/scheme/just/a/path",
            "/no/scheme/just/a/path",
            "/no/scheme/just/a/path/library/busybox",
        ),
        (
            "no/scheme/relative/path",
            "no/scheme/relative/path",
            "no/scheme/relative/path/library/busybox",
        ),
        (
            "https://lookaside.centos.org/",
            "https://lookaside.centos.org/",
            "https://lookaside.centos.org//library/busybox",
        ),
        ("file:///tmp", "file:///tmp", "file:///tmp/library/busybox"),
        ("file:relative", "file:relative", "file:relative"),
        (
            "HTTPS://Host/X",
            "https://Host/X",
            "https://Host/X/library/busybox",
        ),
        (
            "https://host/a%2Fb",
            "https://host/a%2Fb",
            "https://host/a/b/library/busybox",
        ),
        (
            "https://host/a b?q=1#fr ag",
            "https://host/a%20b?q=1#fr%20ag",
            "https://host/a%20b/library/busybox?q=1#fr%20ag",
        ),
        (
            "https://user:pass@host/x",
            "https://user:pass@host/x",
            "https://user:pass@host/x/library/busybox",
        ),
        ("//host/path", "//host/path", "//host/path/library/busybox"),
        ("///path", "///path", "///path/library/busybox"),
        (
            "http:///path",
            "http:///path",
            "http:///path/library/busybox",
        ),
        ("", "", "/library/busybox"),
        ("http:", "http:", "http:///library/busybox"),
        ("./a:b", "./a:b", "./a:b/library/busybox"),
        (
            "https://[fe80::1%25en0]:80/x",
            "https://[fe80::1%25en0]:80/x",
            "https://[fe80::1%25en0]:80/x/library/busybox",
        ),
        (
            "https://h%C3%A9st/x",
            "https://h%C3%A9st/x",
            "https://h%C3%A9st/x/library/busybox",
        ),
    ];
    for (input, printed, appended) in cases {
        let mut url = GoUrl::parse(input).unwrap();
        assert_eq!(url.to_unredacted_string(), *printed, "{input}");
        url.append_to_path("/library/busybox");
        assert_eq!(url.to_unredacted_string(), *appended, "{input}");
    }
}

#[test]
fn parse_errors_match_go() {
    let cases: &[(&str, &str)] = &[
        (
            ":emptyscheme",
            r#"parse ":emptyscheme": missing protocol scheme"#,
        ),
        (
            "1a:b/c",
            r#"parse "1a:b/c": first path segment in URL cannot contain colon"#,
        ),
        // A scheme makes the rest opaque, colons and all.
        ("ab:c/d:e", ""),
        (
            "https://host:port/x",
            r#"parse "https://host:port/x": invalid port ":port" after host"#,
        ),
        (
            "https://[::1/x",
            r#"parse "https://[::1/x": missing ']' in host"#,
        ),
        (
            "https://host/a%zzb",
            r#"parse "https://host/a%zzb": invalid URL escape "%zz""#,
        ),
        (
            "https://ho%41st/x",
            r#"parse "https://ho%41st/x": invalid URL escape "%41""#,
        ),
        (
            "https://h st/x",
            r#"parse "https://h st/x": invalid character " " in host name"#,
        ),
        (
            "http://a b@host/",
            r#"parse "http://a b@host/": net/url: invalid userinfo"#,
        ),
        (
            "http://host/\t",
            r#"parse "http://host/\t": net/url: invalid control character in URL"#,
        ),
        (
            "https://host/x#%zz",
            r#"parse "https://host/x#%zz": invalid URL escape "%zz""#,
        ),
    ];
    for (input, message) in cases {
        match GoUrl::parse(input) {
            Ok(_) => assert!(message.is_empty(), "{input} was accepted"),
            Err(err) => assert_eq!(err.to_string(), *message, "{input}"),
        }
    }
}

#[test]
fn redaction_hides_only_the_password() {
    let url = GoUrl::parse("https://user:secret@host/x").unwrap();
    assert_eq!(url.to_redacted_string(), "https://user:xxxxx@host/x");
    let url = GoUrl::parse("https://user@host/x").unwrap();
    assert_eq!(url.to_redacted_string(), "https://user@host/x");
}

#[test]
fn quoting_escapes_what_go_escapes() {
    assert_eq!(go_quote(b"a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(go_quote(b"\x01\t\x7f"), r#""\x01\t\x7f""#);
    assert_eq!(go_quote(b"%\xc3"), r#""%\xc3""#);
    assert_eq!(go_quote("é".as_bytes()), "\"é\"");
}
