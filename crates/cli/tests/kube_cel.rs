//! The committed CRDs on a real API server: a valid object is admitted,
//! and each CEL rule (`x-kubernetes-validations`) refuses an object that
//! breaks it, with the rule's own message, before any agent or renderer
//! sees it.

#![allow(clippy::unwrap_used)]

mod kube_support;

use base64::Engine as _;
use criguard_kube_policy::{ClusterImagePolicy, ImagePolicy};
use criguard_testutil::KubeApiServer;
use kube::api::{Api, PostParams};
use kube_support::*;
use serde_json::{Value, json};

const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBRIyF/J3q3stc1+Y0zPm9I+XUlaf\nIlqCGIScrJXPkV6L2qRoyfN0n5JoC0bMa8/fB9NnRGcc4eoM2Q9+acLT4Q==\n-----END PUBLIC KEY-----\n";
/// Only its PEM frame matters to the CEL rules.
const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn public_key() -> Value {
    json!({"policyType": "PublicKey", "publicKey": {"keyData": b64(PUBLIC_KEY)}})
}

fn fulcio(issuer: &str, email: &str) -> Value {
    json!({
        "policyType": "FulcioCAWithRekor",
        "fulcioCAWithRekor": {
            "fulcioCAData": b64(CERTIFICATE),
            "rekorKeyData": b64(PUBLIC_KEY),
            "fulcioSubject": {"oidcIssuer": issuer, "signedEmail": email},
        },
    })
}

fn pki(subject: Value) -> Value {
    json!({
        "policyType": "PKI",
        "pki": {"caRootsData": b64(CERTIFICATE), "pkiCertificateSubject": subject},
    })
}

fn spec(scopes: Value, root_of_trust: Value, signed_identity: Option<Value>) -> Value {
    let mut policy = json!({"rootOfTrust": root_of_trust});
    if let Some(identity) = signed_identity {
        policy["signedIdentity"] = identity;
    }
    json!({"scopes": scopes, "policy": policy})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cel_rules_refuse_what_the_renderer_would_refuse() {
    let api = KubeApiServer::start();
    let client = client(&api).await;
    apply_crds(&client).await;
    let namespaced: Api<ImagePolicy> = Api::namespaced(client.clone(), "team");
    let cluster: Api<ClusterImagePolicy> = Api::all(client.clone());
    let scopes = json!(["quay.io/team"]);

    // Valid objects of every root of trust are admitted: the refusals
    // below are the rules' doing.
    let valid = [
        spec(scopes.clone(), public_key(), None),
        spec(
            scopes.clone(),
            fulcio("https://issuer.example", "dev@example.com"),
            None,
        ),
        spec(
            scopes.clone(),
            pki(json!({"hostname": "signer.example.com"})),
            None,
        ),
        spec(
            scopes.clone(),
            public_key(),
            Some(json!({"matchPolicy": "RemapIdentity",
                "remapIdentity": {"prefix": "mirror.example/team", "signedPrefix": "quay.io/team"}})),
        ),
    ];
    for (i, spec) in valid.into_iter().enumerate() {
        namespaced
            .create(
                &PostParams::default(),
                &image_policy("team", &format!("valid-{i}"), spec),
            )
            .await
            .unwrap_or_else(|e| panic!("valid object {i} refused: {e}"));
    }
    cluster
        .create(
            &PostParams::default(),
            &cluster_image_policy("valid", spec(scopes.clone(), public_key(), None)),
        )
        .await
        .unwrap();

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "scope grammar",
            spec(json!(["Quay.io/Upper Case"]), public_key(), None),
            "each scope must be host[:port]",
        ),
        (
            "union: policyType without its field",
            spec(scopes.clone(), json!({"policyType": "PublicKey"}), None),
            "publicKey is required when policyType is PublicKey",
        ),
        (
            "union: a field of another policyType",
            spec(
                scopes.clone(),
                json!({"policyType": "PublicKey", "publicKey": {"keyData": b64(PUBLIC_KEY)},
                       "pki": {"caRootsData": b64(CERTIFICATE),
                               "pkiCertificateSubject": {"email": "a@b.c"}}}),
                None,
            ),
            "pki is required when policyType is PKI, and forbidden otherwise",
        ),
        (
            "public key PEM shape",
            spec(
                scopes.clone(),
                json!({"policyType": "PublicKey", "publicKey": {"keyData": b64("not a key")}}),
                None,
            ),
            "must be base64 of PEM data starting with -----BEGIN PUBLIC KEY-----",
        ),
        (
            "certificate PEM shape",
            spec(
                scopes.clone(),
                json!({"policyType": "PKI", "pki": {"caRootsData": b64(PUBLIC_KEY),
                       "pkiCertificateSubject": {"email": "a@b.c"}}}),
                None,
            ),
            "must be base64 of PEM data starting with -----BEGIN CERTIFICATE-----",
        ),
        (
            "OIDC issuer URL",
            spec(
                scopes.clone(),
                fulcio("ftp://issuer.example", "dev@example.com"),
                None,
            ),
            "must be an http or https URL",
        ),
        (
            "email",
            spec(
                scopes.clone(),
                fulcio("https://issuer.example", "nobody"),
                None,
            ),
            "must be an email address",
        ),
        (
            "certificate host name",
            spec(scopes.clone(), pki(json!({"hostname": "Not_A_Host"})), None),
            "must be a DNS-1123 subdomain",
        ),
        (
            "PKI subject",
            spec(scopes.clone(), pki(json!({})), None),
            "at least one of email and hostname is required",
        ),
        (
            "union: matchPolicy without its field",
            spec(
                scopes.clone(),
                public_key(),
                Some(json!({"matchPolicy": "ExactRepository"})),
            ),
            "exactRepository is required when matchPolicy is ExactRepository",
        ),
        (
            "exact repository",
            spec(
                scopes.clone(),
                public_key(),
                Some(json!({"matchPolicy": "ExactRepository",
                    "exactRepository": {"repository": "quay.io/team/app:v1"}})),
            ),
            "must be a repository with its registry host, without tag or digest",
        ),
        (
            "remap prefix",
            spec(
                scopes.clone(),
                public_key(),
                Some(json!({"matchPolicy": "RemapIdentity",
                    "remapIdentity": {"prefix": "mirror.example/team@sha256:00", "signedPrefix": "quay.io/team"}})),
            ),
            "must be a registry host, optionally with a repository namespace",
        ),
    ];
    for (i, (rule, spec, message)) in cases.into_iter().enumerate() {
        let object = image_policy("team", &format!("bad-{i}"), spec.clone());
        let error = namespaced
            .create(&PostParams::default(), &object)
            .await
            .expect_err(&format!("{rule}: the API server admitted {spec}"));
        let text = error.to_string();
        assert!(text.contains(message), "{rule}: {text}");
        assert!(
            text.contains("Invalid") || text.contains("422"),
            "{rule}: {text}"
        );
        // The cluster-wide kind carries the same rules.
        let error = cluster
            .create(
                &PostParams::default(),
                &cluster_image_policy(&format!("bad-{i}"), spec),
            )
            .await
            .expect_err(&format!("{rule}: admitted as a ClusterImagePolicy"));
        assert!(error.to_string().contains(message), "{rule}: {error}");
    }
    // Nothing refused was stored.
    let stored = namespaced.list(&Default::default()).await.unwrap();
    assert_eq!(stored.items.len(), 4);
}
