use super::*;

fn parse(text: &str) -> Result<Policy, Vec<Problem>> {
    parse_policy(text)
}

fn first_error(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(problems) => problems[0].message.clone(),
    }
}

/// A policy whose only docker scope holds `requirement`.
fn with_requirement(requirement: &str) -> String {
    format!(
        r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{"example.com":[{requirement}]}}}}}}"#
    )
}

fn requirement_of(text: &str) -> Requirement {
    let policy = parse(&with_requirement(text)).unwrap_or_else(|p| panic!("{text}: {p:?}"));
    let reqs = policy
        .transport("docker")
        .unwrap()
        .get("example.com")
        .unwrap();
    reqs.iter().next().unwrap().requirement.clone()
}

#[test]
fn upstream_policy_fixture_parses() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/containers-image/signature/fixtures/policy.json"
    );
    let text = std::fs::read_to_string(path).expect("shared fixtures beside the repository");
    let policy = parse(&text).unwrap();
    assert_eq!(
        policy
            .default_requirements()
            .iter()
            .next()
            .unwrap()
            .requirement,
        Requirement::Reject
    );
    let docker = policy.transport("docker").unwrap();
    let production = &docker.get("example.com/production").unwrap().items[0].requirement;
    assert_eq!(
        production,
        &Requirement::SignedBy(SignedBy {
            key_type: KeyType::GpgKeys,
            keys: GpgKeys::Path("/keys/employee-gpg-keyring".into()),
            signed_identity: ReferenceMatch::MatchRepoDigestOrExact,
        })
    );
    let hardened = docker.get("example.com/hardened").unwrap();
    assert_eq!(hardened.len(), 3);
    assert!(matches!(
        &hardened.items[2].requirement,
        Requirement::SignedBaseLayer { base_layer_identity: ReferenceMatch::ExactRepository(r) }
            if r.to_string() == "registry.access.redhat.com/rhel7/rhel"
    ));
    let remap = &docker
        .get("private-mirror:5000/vendor-mirror")
        .unwrap()
        .items[0]
        .requirement;
    assert!(matches!(remap, Requirement::SignedBy(SignedBy {
        signed_identity: ReferenceMatch::RemapIdentity { prefix, signed_prefix }, ..
    }) if prefix == "private-mirror:5000/vendor-mirror" && signed_prefix == "vendor.example.com"));
    for wildcard in ["*.access.redhat.com", "*.redhat.com", "*.com"] {
        assert!(docker.get(wildcard).is_some(), "{wildcard}");
    }
    assert_eq!(
        docker.get("bogus/key-data-example").unwrap().items[0].requirement,
        Requirement::SignedBy(SignedBy {
            key_type: KeyType::SignedByGpgKeys,
            keys: GpgKeys::Data(b"nonsense".to_vec()),
            signed_identity: ReferenceMatch::MatchRepoDigestOrExact,
        })
    );
    assert!(matches!(
        &docker.get("example.com/sigstore/key-path-example").unwrap().items[0].requirement,
        Requirement::SigstoreSigned(SigstoreSigned {
            trust: SigstoreTrust::PublicKeys(KeySet::Path(p)),
            rekor_public_keys: None,
            signed_identity: ReferenceMatch::MatchRepository,
        }) if p.to_str() == Some("/keys/public-key")
    ));
    assert!(policy.transport("dir").unwrap().get("").is_some());
    let default_policy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/containers-image/default-policy.json"
    );
    parse(&std::fs::read_to_string(default_policy).unwrap()).unwrap();
}

#[test]
fn top_level_rules() {
    let cases: &[(&str, &str)] = &[
        ("", "unexpected end of JSON input"),
        ("&", "expected value"),
        ("1", "JSON object expected, got 1"),
        ("null", "JSON object expected, got <nil>"),
        ("[]", "JSON object expected, got 91"),
        ("{}", "Default policy is missing"),
        (r#"{"transports":{}}"#, "Default policy is missing"),
        (
            r#"{"default":[{"type":"reject"}],"x":1}"#,
            "Unknown key \"x\"",
        ),
        (r#"{"default":1}"#, "must be a JSON array"),
        (r#"{"default":{}}"#, "must be a JSON array"),
        (
            r#"{"default":[]}"#,
            "List of verification policy requirements must not be empty",
        ),
        (
            r#"{"default":null}"#,
            "List of verification policy requirements must not be empty",
        ),
        (
            r#"{"default":[{"type":"reject"}],"transports":1}"#,
            "JSON object expected, got 1",
        ),
        (
            r#"{"default":[{"type":"reject"}],"transports":[]}"#,
            "JSON object expected, got 91",
        ),
        (
            r#"{"default":[{"type":"reject"}],"transports":null}"#,
            "JSON object expected, got <nil>",
        ),
        (
            r#"{"default":[{"type":"reject"}],"default":[{"type":"reject"}]}"#,
            "Duplicate key \"default\"",
        ),
        (
            r#"{"default":[{"type":"reject"}]} {}"#,
            "Unexpected data after JSON object",
        ),
        (
            r#"{"default":[1]}"#,
            "a policy requirement must be a JSON object",
        ),
        (
            r#"{"default":[{"type":"this is invalid"}]}"#,
            "Unknown policy requirement type \"this is invalid\"",
        ),
        (
            r#"{"default":[{}]}"#,
            "Unknown policy requirement type \"\"",
        ),
        (r#"{"default":[{"type":1}]}"#, "\"type\" must be a string"),
    ];
    for (text, want) in cases {
        let got = first_error(text);
        assert!(got.contains(want), "{text}: got {got:?}, want {want:?}");
    }
    assert!(parse(r#"{"default":[{"type":"reject"}]}"#).is_ok());
    assert!(parse(r#"{"default":[{"type":"reject"}],"transports":{}}"#).is_ok());
}

#[test]
fn scopes_are_validated_per_transport() {
    let ok = |transports: &str| {
        parse(&format!(
            r#"{{"default":[{{"type":"reject"}}],"transports":{transports}}}"#
        ))
        .is_ok()
    };
    assert!(ok(r#"{"docker":{}}"#));
    assert!(ok(
        r#"{"docker":{"":[{"type":"reject"}],"example*.*.com":[{"type":"reject"}]}}"#
    ));
    assert!(ok(r#"{"unknown":{"anything at all":[{"type":"reject"}]}}"#));
    assert!(ok(r#"{"dir":{"/abs":[{"type":"reject"}]}}"#));
    assert!(!ok(r#"{"dir":{"relative/path":[{"type":"reject"}]}}"#));
    assert!(!ok(r#"{"docker":{"x":1}}"#));
    assert!(!ok(r#"{"docker":{"x":{}}}"#));
    assert!(!ok(r#"{"docker":{"x":[]}}"#));
    assert!(!ok(r#"{"docker":{"":[]}}"#));
    assert!(!ok(
        r#"{"docker":{"x":[{"type":"reject"}],"x":[{"type":"reject"}]}}"#
    ));
    let err = first_error(
        r#"{"default":[{"type":"reject"}],"transports":{"dir":{"docker.io/busybox":[{"type":"reject"}]}}}"#,
    );
    assert!(
        err.starts_with("Unknown key \"docker.io/busybox\""),
        "{err}"
    );
    assert!(err.contains("Must be an absolute path"), "{err}");
}

#[test]
fn simple_requirements_take_only_type() {
    for t in ["insecureAcceptAnything", "reject"] {
        assert!(parse(&with_requirement(&format!(r#"{{"type":"{t}"}}"#))).is_ok());
        let extra = first_error(&with_requirement(&format!(r#"{{"type":"{t}","x":1}}"#)));
        assert_eq!(extra, "Unknown key \"x\"");
        let dup = first_error(&with_requirement(&format!(
            r#"{{"type":"{t}","type":"{t}"}}"#
        )));
        assert_eq!(dup, "Duplicate key \"type\"");
    }
    let missing = first_error(&with_requirement(r#"{"type":"signedBaseLayer"}"#));
    assert_eq!(
        missing,
        "Key \"baseLayerIdentity\" missing in a JSON object"
    );
    let null = first_error(&with_requirement(
        r#"{"type":"signedBaseLayer","baseLayerIdentity":null}"#,
    ));
    assert_eq!(null, "Unknown policy reference match type \"\"");
}

#[test]
fn signed_by_rules() {
    let base = r#""type":"signedBy","keyType":"GPGKeys""#;
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"keyType":"GPGKeys","keyData":"YWJj"}"#.into(),
            "Unknown policy requirement type \"\"",
        ),
        (
            format!(r#"{{{base},"keyData":"YWJj","x":1}}"#),
            "Unknown key \"x\"",
        ),
        (
            r#"{"type":"signedBy","keyData":"YWJj"}"#.into(),
            "invalid keyType \"\"",
        ),
        (
            r#"{"type":"signedBy","keyType":"this is invalid","keyData":"YWJj"}"#.into(),
            "Unrecognized keyType value \"this is invalid\"",
        ),
        (
            r#"{"type":"signedBy","keyType":null,"keyData":"YWJj"}"#.into(),
            "Unrecognized keyType value \"\"",
        ),
        (format!(r#"{{{base}}}"#), "none of them present"),
        (
            format!(r#"{{{base},"keyPath":"/a","keyPaths":["/b"],"keyData":"YWJj"}}"#),
            "more than one present",
        ),
        (
            format!(r#"{{{base},"keyPath":"/a","keyData":"YWJj"}}"#),
            "more than one present",
        ),
        (
            format!(r#"{{{base},"keyPaths":["/a"],"keyData":"YWJj"}}"#),
            "more than one present",
        ),
        (
            format!(r#"{{{base},"keyPath":"/a","keyPaths":["/b"]}}"#),
            "more than one present",
        ),
        (format!(r#"{{{base},"keyPath":1}}"#), "must be a string"),
        (
            format!(r#"{{{base},"keyPaths":1}}"#),
            "must be a JSON array",
        ),
        (format!(r#"{{{base},"keyPaths":[1]}}"#), "must be a string"),
        (format!(r#"{{{base},"keyData":1}}"#), "must be a string"),
        (
            format!(r#"{{{base},"keyData":"this is invalid base64"}}"#),
            "illegal base64 data at input byte 4",
        ),
        (
            format!(r#"{{{base},"keyPath":""}}"#),
            "exactly one of keyPath, keyPaths and keyData must be specified",
        ),
        (
            format!(r#"{{{base},"keyPaths":null}}"#),
            "exactly one of keyPath, keyPaths and keyData must be specified",
        ),
        (
            format!(r#"{{{base},"keyData":"YWJj","signedIdentity":"this is invalid"}}"#),
            "a policy requirement must be a JSON object",
        ),
        (
            format!(r#"{{{base},"keyData":"YWJj","signedIdentity":null}}"#),
            "Unknown policy reference match type \"\"",
        ),
        (
            format!(r#"{{{base},"keyData":"YWJj","keyData":"YWJj"}}"#),
            "Duplicate key \"keyData\"",
        ),
    ];
    for (req, want) in cases {
        let got = first_error(&with_requirement(&req));
        assert!(got.contains(want), "{req}: got {got:?}, want {want:?}");
    }
    assert_eq!(
        requirement_of(&format!(r#"{{{base},"keyData":"YWJj"}}"#)),
        requirement_of(&format!(
            r#"{{{base},"keyData":"YWJj","signedIdentity":{{"type":"matchRepoDigestOrExact"}}}}"#
        )),
    );
    // Accepted here, refused at evaluation, as upstream.
    assert!(matches!(
        requirement_of(&format!(r#"{{{base},"keyPaths":[]}}"#)),
        Requirement::SignedBy(SignedBy { keys: GpgKeys::Paths(p), .. }) if p.is_empty()
    ));
    assert!(matches!(
        requirement_of(&format!(r#"{{{base},"keyData":""}}"#)),
        Requirement::SignedBy(SignedBy { keys: GpgKeys::Data(d), .. }) if d.is_empty()
    ));
    for kt in [
        "GPGKeys",
        "signedByGPGKeys",
        "X509Certificates",
        "signedByX509CAs",
    ] {
        requirement_of(&format!(
            r#"{{"type":"signedBy","keyType":"{kt}","keyPath":"/k"}}"#
        ));
    }
    // Go's base64 ignores line breaks.
    assert!(matches!(
        requirement_of(&format!(r#"{{{base},"keyData":"YW\nJj"}}"#)),
        Requirement::SignedBy(SignedBy { keys: GpgKeys::Data(d), .. }) if d == b"abc"
    ));
}

#[test]
fn sigstore_signed_rules() {
    let t = r#""type":"sigstoreSigned""#;
    let fulcio = r#""fulcio":{"caPath":"/ca","oidcIssuer":"https://i","subjectEmail":"a@b"}"#;
    let pki = r#""pki":{"caRootsPath":"/r","subjectEmail":"a@b"}"#;
    let cases: Vec<(String, &str)> = vec![
        (
            format!(r#"{{{t}}}"#),
            "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified",
        ),
        (
            format!(r#"{{{t},"keyPath":"/a","keyData":"YWJj"}}"#),
            "exactly one of keyPath",
        ),
        (
            format!(r#"{{{t},"keyPaths":["/a"],"keyData":"YWJj"}}"#),
            "exactly one of keyPath",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj","keyDatas":["YWJj"]}}"#),
            "exactly one of keyPath",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj",{fulcio},"rekorPublicKeyPath":"/r"}}"#),
            "exactly one of keyPath",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj",{pki}}}"#),
            "exactly one of keyPath",
        ),
        (
            format!(r#"{{{t},{fulcio},{pki},"rekorPublicKeyPath":"/r"}}"#),
            "exactly one of keyPath",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj","x":1}}"#),
            "Unknown key \"x\"",
        ),
        (format!(r#"{{{t},"keyPath":1}}"#), "must be a string"),
        (format!(r#"{{{t},"keyPaths":1}}"#), "must be a JSON array"),
        (
            format!(r#"{{{t},"keyPaths":{{}}}}"#),
            "must be a JSON array",
        ),
        (
            format!(r#"{{{t},"keyPaths":[]}}"#),
            "\"keyPaths\" contains no entries",
        ),
        (
            format!(r#"{{{t},"keyDatas":[]}}"#),
            "\"keyDatas\" contains no entries",
        ),
        (format!(r#"{{{t},"keyDatas":1}}"#), "must be a JSON array"),
        (
            format!(r#"{{{t},"keyData":"not base64!"}}"#),
            "illegal base64 data",
        ),
        (
            format!(r#"{{{t},"fulcio":1,"rekorPublicKeyPath":"/r"}}"#),
            "JSON object expected, got 1",
        ),
        (
            format!(r#"{{{t},"fulcio":{{}},"rekorPublicKeyPath":"/r"}}"#),
            "At least one of caPath and caData must be specified",
        ),
        (
            format!(r#"{{{t},"fulcio":null,"rekorPublicKeyPath":"/r"}}"#),
            "JSON object expected, got <nil>",
        ),
        (format!(r#"{{{t},"pki":1}}"#), "JSON object expected, got 1"),
        (
            format!(r#"{{{t},"pki":{{}}}}"#),
            "At least one of caRootsPath and caRootsData must be specified",
        ),
        (
            format!(r#"{{{t},"pki":null}}"#),
            "JSON object expected, got <nil>",
        ),
        (
            format!(
                r#"{{{t},"keyData":"YWJj","rekorPublicKeyPath":"/r","rekorPublicKeyData":""}}"#
            ),
            "at most one of rekorPublickeyPath",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj","rekorPublicKeyPath":1}}"#),
            "must be a string",
        ),
        (
            format!(
                r#"{{{t},"keyData":"YWJj","rekorPublicKeyPath":"/r","rekorPublicKeyPaths":["/r"]}}"#
            ),
            "at most one of",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj","rekorPublicKeyPaths":[]}}"#),
            "\"rekorPublickeyPaths\" contains no entries",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj","rekorPublicKeyDatas":[]}}"#),
            "\"rekorPublickeyDatas\" contains no entries",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj","rekorPublicKeyData":"%%"}}"#),
            "illegal base64 data",
        ),
        (
            format!(r#"{{{t},{fulcio}}}"#),
            "must be specified if fulcio is used",
        ),
        (
            format!(r#"{{{t},{pki},"rekorPublicKeyPath":"/r"}}"#),
            "are not supported for pki",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj","signedIdentity":"this is invalid"}}"#),
            "a policy requirement must be a JSON object",
        ),
        (
            format!(r#"{{{t},"keyData":"YWJj","signedIdentity":null}}"#),
            "Unknown policy reference match type \"\"",
        ),
        (
            format!(
                r#"{{{t},"fulcio":{{"caPath":"/a","caData":"","oidcIssuer":"i","subjectEmail":"e"}},"rekorPublicKeyPath":"/r"}}"#
            ),
            "caPath and caData cannot be used simultaneously",
        ),
        (
            format!(
                r#"{{{t},"fulcio":{{"caPath":1,"oidcIssuer":"i","subjectEmail":"e"}},"rekorPublicKeyPath":"/r"}}"#
            ),
            "must be a string",
        ),
        (
            format!(
                r#"{{{t},"fulcio":{{"caPath":"/a","subjectEmail":"e"}},"rekorPublicKeyPath":"/r"}}"#
            ),
            "oidcIssuer not specified",
        ),
        (
            format!(
                r#"{{{t},"fulcio":{{"caPath":"/a","oidcIssuer":"i"}},"rekorPublicKeyPath":"/r"}}"#
            ),
            "subjectEmail not specified",
        ),
        (
            format!(
                r#"{{{t},"fulcio":{{"caPath":"/a","oidcIssuer":"i","subjectEmail":"e","x":1}},"rekorPublicKeyPath":"/r"}}"#
            ),
            "Unknown key \"x\"",
        ),
        (
            format!(
                r#"{{{t},"fulcio":{{"caData":"%","oidcIssuer":"i","subjectEmail":"e"}},"rekorPublicKeyPath":"/r"}}"#
            ),
            "illegal base64 data",
        ),
        (
            format!(r#"{{{t},"pki":{{"caRootsPath":"/r","caRootsData":"","subjectEmail":"e"}}}}"#),
            "caRootsPath and caRootsData cannot be used simultaneously",
        ),
        (
            format!(
                r#"{{{t},"pki":{{"caRootsPath":"/r","caIntermediatesPath":"/i","caIntermediatesData":"","subjectEmail":"e"}}}}"#
            ),
            "caIntermediatesPath and caIntermediatesData cannot be used simultaneously",
        ),
        (
            format!(r#"{{{t},"pki":{{"caRootsPath":"/r"}}}}"#),
            "At least one of subjectEmail, subjectHostname must be specified",
        ),
        (
            format!(r#"{{{t},"pki":{{"caRootsPath":"/r","subjectHostname":1}}}}"#),
            "must be a string",
        ),
    ];
    for (req, want) in cases {
        let got = first_error(&with_requirement(&req));
        assert!(got.contains(want), "{req}: got {got:?}, want {want:?}");
    }
    for ok in [
        format!(r#"{{{t},"keyPath":"/k"}}"#),
        format!(r#"{{{t},"keyPaths":["/k","/l"],"rekorPublicKeyData":"YWJj"}}"#),
        format!(r#"{{{t},"keyData":""}}"#),
        format!(r#"{{{t},"keyDatas":["YWJj"],"rekorPublicKeyDatas":["YWJj"]}}"#),
        format!(r#"{{{t},{fulcio},"rekorPublicKeyPaths":["/r"]}}"#),
        format!(r#"{{{t},{pki}}}"#),
        format!(
            r#"{{{t},"pki":{{"caRootsData":"YWJj","caIntermediatesData":"YWJj","subjectHostname":"h","subjectEmail":"e"}}}}"#
        ),
    ] {
        requirement_of(&ok);
    }
}

#[test]
fn reference_match_rules() {
    let base = |identity: &str| {
        with_requirement(&format!(
            r#"{{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k","signedIdentity":{identity}}}"#
        ))
    };
    let cases: &[(&str, &str)] = &[
        ("{}", "Unknown policy reference match type \"\""),
        (r#"{"type":1}"#, "\"type\" must be a string"),
        (
            r#"{"type":"this is invalid"}"#,
            "Unknown policy reference match type \"this is invalid\"",
        ),
        (r#"{"type":"matchExact","x":1}"#, "Unknown key \"x\""),
        (r#"{"type":"matchRepository","x":1}"#, "Unknown key \"x\""),
        (
            r#"{"type":"exactReference"}"#,
            "Key \"dockerReference\" missing in a JSON object",
        ),
        (
            r#"{"type":"exactReference","dockerReference":1}"#,
            "must be a string",
        ),
        (
            r#"{"type":"exactReference","dockerReference":"a:b","x":1}"#,
            "Unknown key \"x\"",
        ),
        (
            r#"{"type":"exactReference","dockerReference":""}"#,
            "Invalid format of dockerReference \"\"",
        ),
        (
            r#"{"type":"exactReference","dockerReference":"INVALIDUPPERCASE:latest"}"#,
            "Invalid format of dockerReference",
        ),
        (
            r#"{"type":"exactReference","dockerReference":"library/busybox"}"#,
            "contains neither a tag nor a digest",
        ),
        (
            r#"{"type":"exactRepository","dockerRepository":""}"#,
            "Invalid format of dockerRepository",
        ),
        (
            r#"{"type":"exactRepository","dockerRepository":"INVALIDUPPERCASE"}"#,
            "Invalid format of dockerRepository",
        ),
        (
            r#"{"type":"remapIdentity","signedPrefix":"example.com"}"#,
            "Key \"prefix\" missing",
        ),
        (
            r#"{"type":"remapIdentity","prefix":1,"signedPrefix":"example.com"}"#,
            "must be a string",
        ),
        (
            r#"{"type":"remapIdentity","prefix":"this is invalid","signedPrefix":"example.com"}"#,
            "prefix \"this is invalid\" is not valid",
        ),
        (
            r#"{"type":"remapIdentity","prefix":"example.com","signedPrefix":"example.com/UPPERCASEISINVALID"}"#,
            "is not valid",
        ),
        (
            r#"{"type":"remapIdentity","prefix":"","signedPrefix":"example.com"}"#,
            "prefix \"\" is not valid",
        ),
    ];
    for (identity, want) in cases {
        let got = first_error(&base(identity));
        assert!(got.contains(want), "{identity}: got {got:?}, want {want:?}");
    }
    for ok in [
        r#"{"type":"matchExact"}"#,
        r#"{"type":"exactReference","dockerReference":"library/busybox:latest"}"#,
        r#"{"type":"exactRepository","dockerRepository":"library/busybox:latest"}"#,
        r#"{"type":"remapIdentity","prefix":"example.com","signedPrefix":"docker.io/library"}"#,
    ] {
        assert!(parse(&base(ok)).is_ok(), "{ok}");
    }
}

#[test]
fn every_problem_is_listed_with_its_place() {
    let text = r#"{
  "default": [{"type": "reject", "extra": true}],
  "transports": {
    "docker": {
      "quay.io/a": [{"type": "signedBy", "keyType": "GPGKeys"}],
      "quay.io/b": []
    },
    "dir": {"relative": [{"type": "insecureAcceptAnything"}]}
  }
}"#;
    let problems = parse(text).unwrap_err();
    let rendered: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 4, "{rendered:#?}");
    assert_eq!(problems[0].path, "default[0].extra");
    assert_eq!((problems[0].line, problems[0].column), (2, 43));
    assert_eq!(problems[1].path, "transports.docker[\"quay.io/a\"][0]");
    assert!(problems[1].message.contains("none of them present"));
    assert_eq!(problems[1].line, 5);
    assert_eq!(problems[2].path, "transports.docker[\"quay.io/b\"]");
    assert_eq!(problems[3].path, "transports.dir.relative");
}

#[test]
fn oversized_policy_is_refused() {
    let text = format!(
        r#"{{"default":[{{"type":"reject"}}]}}{}"#,
        " ".repeat(MAX_POLICY_SIZE)
    );
    assert!(first_error(&text).contains("more than"));
}
