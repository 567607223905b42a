//! Resolves and evaluates 1,000,000 image references against a policy of
//! 10,000 docker scopes, and prints how long each phase took.
//!
//! Criterion times single operations; this answers the question as
//! it is asked, for a whole batch, including parsing the reference strings.
//! It prints figures and checks results, never timings: how fast a machine
//! is says nothing about whether the engine is right.
//!
//! Run with `cargo run --release -p criguard-policy --example resolve_million`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criguard_policy::{Evaluator, Image, ImageReference, InMemoryTrustFiles};

#[allow(dead_code, reason = "the bench and this example use different parts")]
#[path = "../benches/common/mod.rs"]
mod common;

use common::{Outcome, Probe};

const SCOPES: usize = 10_000;
const IMAGES: usize = 1_000_000;

/// The `j`-th image: mostly under a scope spread over the whole policy
/// (7,919 is prime, so `j * 7919 % SCOPES` visits every scope), with one in
/// 64 reaching the transport default and one in 64 the global default.
fn probe(j: usize) -> Probe {
    match j % 64 {
        62 => common::unscoped_probe(j),
        63 => common::global_default_probe(j),
        _ => common::probe(j * 7919 % SCOPES, j),
    }
}

fn report(what: &str, elapsed: Duration, count: usize) {
    let per = elapsed.as_nanos() as f64 / count as f64;
    println!(
        "{what:<40} {:>8.1} ms total {:>8.1} ns each",
        elapsed.as_secs_f64() * 1e3,
        per
    );
}

fn main() {
    let text = common::policy_json(SCOPES);
    let start = Instant::now();
    let policy = common::parse_policy(&text);
    let parse_policy = start.elapsed();
    println!(
        "policy: {} docker scopes (+ transport default), {} bytes of JSON",
        SCOPES,
        text.len()
    );
    println!("parse policy: {:.1} ms", parse_policy.as_secs_f64() * 1e3);

    let probes: Vec<Probe> = (0..IMAGES).map(probe).collect();
    let digest = common::manifest_digest();
    // No trust files: the images are unsigned, and a signature requirement
    // rejects them before looking for keys.
    let files = InMemoryTrustFiles::new();
    let evaluator = Evaluator {
        files: &files,
        simple_signing: None,
        sigstore: None,
    };

    // Phase 1: strings to references, as a caller receiving names must do.
    let start = Instant::now();
    let images: Vec<ImageReference> = probes
        .iter()
        .map(|p| common::image_reference(&p.name))
        .collect();
    let parse_references = start.elapsed();

    // Phase 2: scope lookup alone.
    let start = Instant::now();
    let mut matched_scopes: BTreeMap<&str, usize> = BTreeMap::new();
    for image in &images {
        let (scope, requirements) = policy.requirements_for(black_box(image));
        black_box(requirements);
        let kind = match scope.scope() {
            None => "global default",
            Some("") => "transport default",
            Some(_) => "a scope",
        };
        *matched_scopes.entry(kind).or_default() += 1;
    }
    let resolve = start.elapsed();

    // Phase 3: full evaluation (which resolves again, as callers do).
    let start = Instant::now();
    let mut allowed = 0usize;
    for image in &images {
        let subject = Image {
            reference: image,
            manifest_digest: &digest,
            signatures: &[],
        };
        if evaluator
            .evaluate(&policy, black_box(&subject))
            .is_allowed()
        {
            allowed += 1;
        }
    }
    let evaluate = start.elapsed();

    report("parse 1,000,000 references", parse_references, IMAGES);
    report("resolve 1,000,000 references", resolve, IMAGES);
    report("resolve + evaluate 1,000,000 references", evaluate, IMAGES);
    report(
        "parse + resolve + evaluate, end to end",
        parse_references + evaluate,
        IMAGES,
    );
    println!("matched: {matched_scopes:?}");
    println!("allowed: {allowed}, rejected: {}", IMAGES - allowed);

    // Correctness after the timed loops: every image must have gone where
    // the generator put it.
    let expected_allowed = probes
        .iter()
        .filter(|p| p.outcome == Outcome::Allowed)
        .count();
    assert_eq!(
        allowed, expected_allowed,
        "verdicts differ from the generator's"
    );
    for (probe, image) in probes.iter().zip(&images).step_by(997) {
        common::check_resolution(&policy, image, &probe.scope);
    }
}
