//! The synthetic policy and images shared by the `scopes` bench and the
//! `resolve_million` example, so that both measure the same workload.
//!
//! Scope `i` depends on `i` alone, so the policy with 100 scopes is the first
//! 100 scopes of the one with 10,000. Every probe used by the benches sits
//! under one of the first 50 scopes: it resolves to the same scope, with the
//! same requirements, at every size, and only the number of scopes around
//! it changes. That is what makes the size comparison mean something.
//!
//! Included with `#[path]` rather than exported by the library, which should
//! not carry benchmark fixtures in its public API.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use criguard_policy::{ImageReference, Policy};
use criguard_reference::{Digest, Reference};
use serde_json::{Map, Value, json};

/// Scope shapes cycle with `i % SHAPES` (see [`scope`]).
const SHAPES: usize = 10;
/// Requirement lists cycle with `(i / SHAPES) % REQUIREMENT_SETS`, so that
/// within the first 50 scopes every shape meets every requirement list.
const REQUIREMENT_SETS: usize = 5;

/// What evaluating an image without any signature must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Allowed,
    Rejected,
}

/// The scope an image must resolve to: `Some("")` is the docker transport
/// default, `None` the global default.
pub(crate) type ExpectedScope = Option<String>;

/// An image name before parsing, as a caller would receive it.
#[derive(Debug, Clone)]
pub(crate) enum Name {
    /// A docker reference as users write it (`image6:v1`, `quay.io/a/b:1`).
    Docker(String),
    /// An OCI layout; the policy has no `oci` transport, so these fall
    /// through to the global default.
    Oci(String),
}

/// One image with the scope and outcome the generator intends for it.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) name: Name,
    pub(crate) scope: ExpectedScope,
    pub(crate) outcome: Outcome,
}

/// The `i`-th docker scope. Every shape embeds `i`, so no two scopes are
/// equal and no scope is a namespace of another one's images.
pub(crate) fn scope(i: usize) -> String {
    match i % SHAPES {
        0 => format!("host{i}.example.com"),
        1 => format!("host{i}.example.com:5000"),
        2 => format!("quay{i}.io/team{i}"),
        3 => format!("registry{i}.corp/org{i}/team/app"),
        4 => format!("registry{i}.corp/org/app{i}:v1.{i}"),
        5 => format!("*.zone{i}.example.com"),
        6 => format!("docker.io/library/image{i}"),
        7 => format!("docker.io/user{i}"),
        8 => format!("localhost:5000/project{i}/app"),
        _ => format!("ghcr.io/org{i}/app@{}", digest_text(i as u64)),
    }
}

/// A docker reference that resolves to [`scope`]`(i)`; `variant` changes
/// the tag or a path component where the scope leaves room for it, and the
/// familiar forms make reference parsing normalise.
pub(crate) fn reference_under(i: usize, variant: usize) -> String {
    let v = variant;
    match i % SHAPES {
        0 => format!("host{i}.example.com/team{}/app{v}:v{v}", v % 7),
        1 => format!("host{i}.example.com:5000/app{v}:v{v}"),
        2 => format!("quay{i}.io/team{i}/app{v}:v{v}"),
        3 => format!("registry{i}.corp/org{i}/team/app:v{v}"),
        // Identity scopes only hold the one reference they name.
        4 | 9 => scope(i),
        5 => format!("mirror{}.zone{i}.example.com/lib/app:v{v}", v % 3),
        6 => format!("image{i}:v{v}"),
        7 => format!("user{i}/app{v}:latest"),
        _ => format!("localhost:5000/project{i}/app:v{v}"),
    }
}

/// A docker reference under no scope, which gets the transport default.
pub(crate) fn unscoped_reference(variant: usize) -> String {
    format!("unknown{variant}.example.org/ns/app:v{variant}")
}

fn requirement_set(i: usize) -> usize {
    (i / SHAPES) % REQUIREMENT_SETS
}

/// Only `insecureAcceptAnything` lets an unsigned image through.
pub(crate) fn outcome(i: usize) -> Outcome {
    if requirement_set(i) == 0 {
        Outcome::Allowed
    } else {
        Outcome::Rejected
    }
}

/// The probe for `reference_under(i, variant)`.
pub(crate) fn probe(i: usize, variant: usize) -> Probe {
    Probe {
        name: Name::Docker(reference_under(i, variant)),
        scope: Some(scope(i)),
        outcome: outcome(i),
    }
}

/// A probe that reaches the docker transport default `""` (a signature
/// requirement).
pub(crate) fn unscoped_probe(variant: usize) -> Probe {
    Probe {
        name: Name::Docker(unscoped_reference(variant)),
        scope: Some(String::new()),
        outcome: Outcome::Rejected,
    }
}

/// A probe in a transport the policy does not name: the global default
/// (`reject`).
pub(crate) fn global_default_probe(variant: usize) -> Probe {
    Probe {
        name: Name::Oci(format!("/var/lib/layouts/app{variant}")),
        scope: None,
        outcome: Outcome::Rejected,
    }
}

/// The rotating set the `resolve` and `evaluate` benches cycle through:
/// one probe under each of the first 50 scopes (every shape with every
/// requirement list), plus one for each default.
pub(crate) fn rotating_probes() -> Vec<Probe> {
    let mut probes: Vec<Probe> = (0..SHAPES * REQUIREMENT_SETS)
        .map(|i| probe(i, i))
        .collect();
    probes.push(unscoped_probe(0));
    probes.push(global_default_probe(0));
    probes
}

/// policy.json text with `scopes` docker scopes (plus the transport default
/// `""`), pretty-printed like a hand-maintained file.
pub(crate) fn policy_json(scopes: usize) -> String {
    let mut docker = Map::new();
    docker.insert(
        String::new(),
        json!([{
            "type": "sigstoreSigned",
            "keyData": pem_base64(u64::MAX),
            "signedIdentity": {"type": "matchRepository"},
        }]),
    );
    for i in 0..scopes {
        docker.insert(scope(i), requirements(i));
    }
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {
            "docker": docker,
            "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]},
        },
    });
    serde_json::to_string_pretty(&policy).expect("a JSON value always serialises")
}

/// Parses [`policy_json`]; the generator must only produce valid policies.
pub(crate) fn policy(scopes: usize) -> Policy {
    parse_policy(&policy_json(scopes))
}

/// Parses generated policy text, which must be valid.
pub(crate) fn parse_policy(text: &str) -> Policy {
    match Policy::from_bytes(text.as_bytes(), "generated") {
        Ok(policy) => policy,
        Err(e) => panic!("generated policy is invalid: {e}: {:?}", e.problems()),
    }
}

/// The requirement list of scope `i`. The signature requirements carry
/// inline base64 keys and every kind of `signedIdentity` that needs
/// checking, so parsing runs the base64 and reference validators, not just
/// the JSON reader.
fn requirements(i: usize) -> Value {
    let seed = i as u64;
    match requirement_set(i) {
        0 => json!([{"type": "insecureAcceptAnything"}]),
        1 => json!([{"type": "reject"}]),
        2 => json!([{
            "type": "signedBy",
            "keyType": "GPGKeys",
            "keyData": BASE64.encode(pseudo_random_bytes(seed, 400)),
            "signedIdentity": {"type": "matchRepository"},
        }]),
        3 => json!([{
            "type": "sigstoreSigned",
            "keyData": pem_base64(seed),
            "rekorPublicKeyData": pem_base64(seed ^ 0x5555),
            "signedIdentity": {
                "type": "exactRepository",
                "dockerRepository": format!("registry.example.com/signed/app{i}"),
            },
        }]),
        _ => json!([
            {
                "type": "sigstoreSigned",
                "keyDatas": [pem_base64(seed), pem_base64(seed + 1)],
                "signedIdentity": {
                    "type": "remapIdentity",
                    "prefix": format!("mirror{i}.example.com/ns"),
                    "signedPrefix": "registry.example.com/ns",
                },
            },
            {
                "type": "signedBy",
                "keyType": "GPGKeys",
                "keyData": BASE64.encode(pseudo_random_bytes(seed, 400)),
                "signedIdentity": {
                    "type": "exactReference",
                    "dockerReference": format!("registry.example.com/app:{i}"),
                },
            },
        ]),
    }
}

/// A PEM block the size of a P-256 public key, base64-encoded again as
/// policy.json's `keyData` wants. Its content is noise: keys are only
/// decoded when a signature is checked, which these benches never reach.
fn pem_base64(seed: u64) -> String {
    let der = BASE64.encode(pseudo_random_bytes(seed, 91));
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{der}\n-----END PUBLIC KEY-----\n");
    BASE64.encode(pem)
}

/// `sha256:` and 64 hex digits derived from `seed`.
fn digest_text(seed: u64) -> String {
    let hex: String = pseudo_random_bytes(seed, 32)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Deterministic filler bytes (splitmix64), so every run sees the same
/// policy without a random-number dependency.
fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Turns a name into what the evaluator takes, as the CLI would: docker
/// references get `:latest` when they have neither tag nor digest.
pub(crate) fn image_reference(name: &Name) -> ImageReference {
    match name {
        Name::Docker(text) => {
            match Reference::parse_normalized(text).and_then(Reference::into_docker_transport) {
                Ok(reference) => ImageReference::Docker(reference),
                Err(e) => panic!("generated reference {text:?} is invalid: {e}"),
            }
        }
        Name::Oci(dir) => ImageReference::Oci {
            dir: dir.clone(),
            image: String::new(),
            resolved_dir: dir.clone(),
        },
    }
}

/// The manifest digest every evaluated image claims; with no signatures it
/// is never compared with anything, but `Image` needs one.
pub(crate) fn manifest_digest() -> Digest {
    Digest::parse(&digest_text(42)).expect("generated digest is valid")
}

/// Panics unless `image` resolves in `policy` to the scope the generator
/// meant; run before timing so that a wrong generator cannot produce
/// flattering figures.
pub(crate) fn check_resolution(policy: &Policy, image: &ImageReference, expected: &ExpectedScope) {
    let (matched, _) = policy.requirements_for(image);
    assert_eq!(
        matched.scope(),
        expected.as_deref(),
        "{image} resolved to {matched}"
    );
}
