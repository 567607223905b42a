//! Policy parsing, scope lookup and evaluation against generated policies
//! of up to 10,000 docker scopes.
//!
//! The claim under test is that resolving an image costs one hash lookup
//! per candidate scope (identity, each namespace, wildcards, `""`), so it
//! depends on the depth of the image's name and not on how many scopes the
//! policy has. `resolve_by_scope_count` shows it directly: the same images
//! against 100, 1,000 and 10,000 scopes. The figures are recorded in
//! docs/benchmarks.md.

use std::hint::black_box;

use criguard_policy::{Evaluator, Image, ImageReference, InMemoryTrustFiles, Policy};
use criguard_reference::Reference;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

#[allow(dead_code, reason = "the example and this bench use different parts")]
#[path = "common/mod.rs"]
mod common;

use common::Probe;

const FULL_SIZE: usize = 10_000;
const SIZES: [usize; 3] = [100, 1_000, FULL_SIZE];

/// Parses probes and checks each resolves where the generator intends.
fn prepared(policy: &Policy, probes: &[Probe]) -> Vec<ImageReference> {
    probes
        .iter()
        .map(|probe| {
            let image = common::image_reference(&probe.name);
            common::check_resolution(policy, &image, &probe.scope);
            image
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    // A 10,000-scope parse takes milliseconds; ten samples are plenty and
    // keep the run short on a small machine.
    group.sample_size(10);
    for size in SIZES {
        let text = common::policy_json(size);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("policy_scopes", size), &text, |b, text| {
            b.iter(|| Policy::from_bytes(black_box(text.as_bytes()), "bench"))
        });
    }
    group.finish();
}

/// One lookup per bench, from the shallowest path (identity found first) to
/// the deepest (every candidate tried, then the default).
fn resolve(c: &mut Criterion) {
    let policy = common::policy(FULL_SIZE);
    let named = [
        // registry4.corp/org/app4:v1.4: the first candidate matches.
        ("identity_tag", common::probe(4, 0)),
        // ghcr.io/org9/app@sha256:…: a digest identity.
        ("identity_digest", common::probe(9, 0)),
        // image6:v0 → docker.io/library/image6: second candidate.
        ("repository", common::probe(6, 0)),
        // quay2.io/team2/app0:v0: the namespace above the repository.
        ("namespace", common::probe(2, 0)),
        // host1.example.com:5000/app0:v0: the host with its port.
        ("host_port", common::probe(1, 0)),
        // mirror0.zone5.example.com/lib/app:v0: *.zone5.example.com, after
        // every path candidate missed.
        ("wildcard", common::probe(5, 0)),
        // unknown0.example.org/ns/app:v0: all candidates miss, then "".
        ("transport_default", common::unscoped_probe(0)),
        // An OCI layout: no oci scopes at all, so the global default.
        ("global_default", common::global_default_probe(0)),
    ];
    let mut group = c.benchmark_group("resolve");
    for (label, probe) in &named {
        let image = &prepared(&policy, std::slice::from_ref(probe))[0];
        group.bench_function(*label, |b| {
            b.iter(|| {
                let (scope, requirements) = policy.requirements_for(black_box(image));
                black_box((scope, requirements.len()))
            })
        });
    }
    let images = prepared(&policy, &common::rotating_probes());
    group.bench_function("rotating", |b| {
        let mut next = 0;
        b.iter(|| {
            let image = &images[next % images.len()];
            next += 1;
            let (scope, requirements) = policy.requirements_for(black_box(image));
            black_box((scope, requirements.len()))
        })
    });
    group.finish();
}

/// The rotating set against policies of growing size: flat times mean the
/// lookup does not scan scopes.
fn resolve_by_scope_count(c: &mut Criterion) {
    let probes = common::rotating_probes();
    let mut group = c.benchmark_group("resolve_by_scope_count");
    for size in SIZES {
        let policy = common::policy(size);
        let images = prepared(&policy, &probes);
        group.bench_with_input(BenchmarkId::from_parameter(size), &images, |b, images| {
            let mut next = 0;
            b.iter(|| {
                let image = &images[next % images.len()];
                next += 1;
                let (scope, requirements) = policy.requirements_for(black_box(image));
                black_box((scope, requirements.len()))
            })
        });
    }
    group.finish();
}

/// Full evaluations of unsigned images: no cryptography runs, so this is the
/// engine's own cost (lookup, requirement walk, rejection message).
fn evaluate(c: &mut Criterion) {
    let policy = common::policy(FULL_SIZE);
    let digest = common::manifest_digest();
    // No trust files: the images are unsigned, and a signature requirement
    // rejects them before looking for keys.
    let files = InMemoryTrustFiles::new();
    let evaluator = Evaluator {
        files: &files,
        simple_signing: None,
        sigstore: None,
    };
    let named = [
        // host0.example.com: insecureAcceptAnything.
        ("accept", common::probe(0, 0)),
        // host10.example.com: reject.
        ("reject", common::probe(10, 0)),
        // host20.example.com: signedBy, and there is no signature.
        ("signed_by_unsigned", common::probe(20, 0)),
        // host30.example.com: sigstoreSigned, and there is no signature.
        ("sigstore_unsigned", common::probe(30, 0)),
    ];
    let mut group = c.benchmark_group("evaluate");
    for (label, probe) in &named {
        let image = &prepared(&policy, std::slice::from_ref(probe))[0];
        let subject = Image {
            reference: image,
            manifest_digest: &digest,
            signatures: &[],
        };
        assert_eq!(
            evaluator.evaluate(&policy, &subject).is_allowed(),
            probe.outcome == common::Outcome::Allowed,
            "{label}"
        );
        group.bench_function(*label, |b| {
            b.iter(|| black_box(evaluator.evaluate(&policy, black_box(&subject))))
        });
    }
    let probes = common::rotating_probes();
    let images = prepared(&policy, &probes);
    group.bench_function("rotating", |b| {
        let mut next = 0;
        b.iter(|| {
            let image = &images[next % images.len()];
            next += 1;
            let subject = Image {
                reference: image,
                manifest_digest: &digest,
                signatures: &[],
            };
            black_box(evaluator.evaluate(&policy, black_box(&subject)))
        })
    });
    group.finish();
}

fn reference(c: &mut Criterion) {
    let inputs = [
        ("short", "busybox"),
        ("tagged", "quay.io/org/app:v1.2"),
        (
            "port_digest",
            "localhost:5000/ns/app@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        ),
        ("docker_hub_full", "docker.io/library/nginx:1.25-alpine"),
    ];
    let mut group = c.benchmark_group("reference/parse_normalized");
    for (label, input) in inputs {
        group.bench_with_input(BenchmarkId::from_parameter(label), input, |b, input| {
            b.iter(|| Reference::parse_normalized(black_box(input)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    parse,
    resolve,
    resolve_by_scope_count,
    evaluate,
    reference
);
criterion_main!(benches);
