//! A test Fulcio, Rekor v1, Rekor v2 and timestamp authority behind one
//! plain-HTTP server on 127.0.0.1, so that the real cosign 3 can sign
//! keyless (`--identity-token` with a signing config naming this server)
//! and criguard can verify what it wrote: the only way to show that
//! criguard reads the bundles cosign makes with certificates, log entries
//! and timestamps, not only the ones our helpers make.
//!
//! Fulcio v2 `POST /api/v2/signingCert`: the token is read unverified (a
//! test issuer), but the proof of possession is checked, so a request that
//! real Fulcio would refuse fails here too; the leaf is Fulcio-shaped
//! ([`LeafSpec`]) for the request's key, the token's email and issuer.
//! Rekor v1 `POST /api/v1/log/entries`: the canonical `dsse` (or
//! `hashedrekord`) 0.0.1 body real Rekor stores, a SET by [`TestRekor`],
//! and an RFC 6962 inclusion proof with a checkpoint the log signs.
//! Rekor v2 `POST /api/v2/log/entries`: the `hashedrekord` (or `dsse`)
//! 0.0.2 body in RFC 8785 form, which sigstore-go rebuilds from the bundle
//! to check the proof, as a leaf of [`TestLogV2`]'s tree. The TSA
//! `POST /api/v1/timestamp`: a [`TestTsa`] token over the request's
//! SHA-256 imprint. Each
//! endpoint's requests are counted, and every refused request is kept with
//! its reason, so a test can show that cosign went through each service.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::bundles::hex;
use crate::http_server::{HttpServer, Reply, lock, reply};
use crate::keyless::{LeafSpec, TestCa, TestRekor, der_utf8};
use crate::rekor_v2::{TestLogV2, dsse_body, mth, path, sha256};
use crate::tsa::{TestTsa, TsaSpec};

/// The largest request body read: a DSSE envelope of a cosign signature
/// is a few KiB.
const MAX_BODY: usize = 1 << 20;
/// The most entries the log holds (each proof is computed over all).
const MAX_ENTRIES: usize = 4096;
/// Fulcio's certificates live 10 minutes; a minute before now absorbs
/// clock rounding.
const LEAF_BEFORE: Duration = Duration::from_secs(60);
const LEAF_AFTER: Duration = Duration::from_secs(600);
/// The checkpoint's origin and signer name.
const LOG_NAME: &str = "rekor.test";
/// Where the timestamp authority answers (the public one's path).
const TSA_PATH: &str = "/api/v1/timestamp";

struct Inner {
    ca: TestCa,
    rekor: TestRekor,
    rekor_v2: TestLogV2,
    tsa: TestTsa,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    fulcio_requests: usize,
    rekor_requests: usize,
    rekor_v2_requests: usize,
    tsa_requests: usize,
    other_requests: usize,
    /// RFC 6962 leaf hashes of the logged bodies, in log order.
    leaves: Vec<Vec<u8>>,
    /// Why requests were refused.
    refusals: Vec<String>,
}

/// The running services; dropping it stops its thread.
pub struct SigstoreServices {
    server: HttpServer,
    inner: Arc<Inner>,
}

impl SigstoreServices {
    /// A new CA and a new log key, served on a free port.
    pub fn start() -> SigstoreServices {
        let inner = Arc::new(Inner {
            ca: TestCa::new("test Fulcio"),
            rekor: TestRekor::new(),
            rekor_v2: TestLogV2::new(),
            tsa: TestTsa::new(TsaSpec::default()),
            state: Mutex::default(),
        });
        let served = inner.clone();
        let server = HttpServer::start("sigstore-services", move |request| {
            handle(served.clone(), request)
        });
        SigstoreServices { server, inner }
    }

    /// "http://127.0.0.1:PORT", the URL of Fulcio and of both Rekors.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The timestamp authority's URL, as a signing config names it.
    pub fn tsa_url(&self) -> String {
        format!("{}{TSA_PATH}", self.url())
    }

    /// The Fulcio CA's certificate (PEM): a policy's `caData`.
    pub fn ca_pem(&self) -> String {
        self.inner.ca.pem()
    }

    /// The log's public key (PEM): a policy's `rekorPublicKeyData`.
    pub fn rekor_public_pem(&self) -> String {
        self.inner.rekor.public_pem().to_owned()
    }

    /// The Rekor v2 log's public key (PEM, Ed25519).
    pub fn rekor_v2_public_pem(&self) -> String {
        self.inner.rekor_v2.public_pem()
    }

    /// How many `POST /api/v2/signingCert` requests came, answered or not.
    pub fn fulcio_requests(&self) -> usize {
        lock(&self.inner.state).fulcio_requests
    }

    /// How many `POST /api/v1/log/entries` requests came, answered or not.
    pub fn rekor_requests(&self) -> usize {
        lock(&self.inner.state).rekor_requests
    }

    /// How many `POST /api/v2/log/entries` requests came, answered or not.
    pub fn rekor_v2_requests(&self) -> usize {
        lock(&self.inner.state).rekor_v2_requests
    }

    /// How many timestamp requests came, answered or not.
    pub fn tsa_requests(&self) -> usize {
        lock(&self.inner.state).tsa_requests
    }

    /// How many requests went anywhere else.
    pub fn other_requests(&self) -> usize {
        lock(&self.inner.state).other_requests
    }

    /// Why requests were refused, in order: empty when all went well.
    pub fn refusals(&self) -> Vec<String> {
        lock(&self.inner.state).refusals.clone()
    }

    /// A `trusted_root.json` naming this CA, both logs and the timestamp
    /// authority (valid from 2020): for `cosign sign --trusted-root`, so
    /// that sigstore-go verifies the bundle it made before pushing it, and
    /// for `criguard verify --trusted-root` (Rekor v2 entries).
    pub fn trusted_root_json(&self) -> Vec<u8> {
        let ca_der = pem::parse(self.inner.ca.pem())
            .expect("the CA's PEM")
            .into_contents();
        let spki = self.inner.rekor.spki_der();
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": self.url(),
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": STANDARD.encode(spki),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2020-01-01T00:00:00Z"},
                },
                "logId": {"keyId": STANDARD.encode(sha256(&[spki]))},
            }, self.inner.rekor_v2.trusted_root_entry("2020-01-01T00:00:00Z")],
            "certificateAuthorities": [{
                "subject": {"organization": "test", "commonName": "test Fulcio"},
                "uri": self.url(),
                "certChain": {"certificates": [{"rawBytes": STANDARD.encode(ca_der)}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }],
            "ctlogs": [],
            "timestampAuthorities": [self.inner.tsa.trusted_root_entry()],
        })
        .to_string()
        .into_bytes()
    }
}

/// An OIDC identity token as cosign passes it to Fulcio: unsigned (the
/// test Fulcio does not check it), with the claims Fulcio reads for an
/// email identity and a validity around now.
pub fn test_identity_token(issuer: &str, email: &str) -> String {
    let now = unix_now();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "test"});
    let claims = json!({
        "iss": issuer,
        "sub": email,
        "email": email,
        "email_verified": true,
        "aud": "sigstore",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode("sig")
    )
}

fn unix_now() -> i64 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    i64::try_from(seconds).expect("a time before 2262")
}

/// A JSON answer.
fn json_reply(status: StatusCode, headers: &[(&str, String)], body: &Value) -> Reply {
    let mut headers = headers.to_vec();
    headers.push(("Content-Type", "application/json".to_owned()));
    reply(status, &headers, body.to_string().into_bytes())
}

async fn handle(inner: Arc<Inner>, request: Request<Incoming>) -> Reply {
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec());
    let route = (parts.method.clone(), parts.uri.path().to_owned());
    let answer = match (&route.0, route.1.as_str()) {
        (&Method::POST, "/api/v2/signingCert") => {
            lock(&inner.state).fulcio_requests += 1;
            body.map_err(|e| format!("reading the request: {e}"))
                .and_then(|body| fulcio(&inner, &parts.headers, &body))
                // sigstore-go takes only 200 from Fulcio.
                .map(|answer| json_reply(StatusCode::OK, &[], &answer))
        }
        (&Method::POST, "/api/v1/log/entries") => {
            lock(&inner.state).rekor_requests += 1;
            body.map_err(|e| format!("reading the request: {e}"))
                .and_then(|body| rekor(&inner, &body))
                .map(|(uuid, answer)| {
                    let headers = [
                        ("ETag", uuid.clone()),
                        ("Location", format!("/api/v1/log/entries/{uuid}")),
                    ];
                    json_reply(StatusCode::CREATED, &headers, &answer)
                })
        }
        (&Method::POST, "/api/v2/log/entries") => {
            lock(&inner.state).rekor_v2_requests += 1;
            body.map_err(|e| format!("reading the request: {e}"))
                .and_then(|body| rekor_v2(&inner, &body))
                .map(|answer| json_reply(StatusCode::CREATED, &[], &answer))
        }
        (&Method::POST, TSA_PATH) => {
            lock(&inner.state).tsa_requests += 1;
            body.map_err(|e| format!("reading the request: {e}"))
                .and_then(|body| timestamp(&inner, &body))
                .map(|answer| {
                    let kind = ("Content-Type", "application/timestamp-reply".to_owned());
                    reply(StatusCode::OK, &[kind], answer)
                })
        }
        _ => {
            lock(&inner.state).other_requests += 1;
            Err(format!("no such endpoint: {} {}", route.0, route.1))
        }
    };
    answer.unwrap_or_else(|reason| {
        let reason = format!("{} {}: {reason}", route.0, route.1);
        lock(&inner.state).refusals.push(reason.clone());
        json_reply(
            StatusCode::BAD_REQUEST,
            &[],
            &json!({"code": 400, "message": reason}),
        )
    })
}

/// A string at `path` in `value`.
fn text<'v>(value: &'v Value, path: &[&str]) -> Result<&'v str, String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no string at {}", path.join(".")))
}

/// The unverified claims of a JWT.
fn token_claims(headers: &HeaderMap) -> Result<Value, String> {
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("no `Authorization: Bearer` token")?;
    let claims = token
        .split('.')
        .nth(1)
        .ok_or("the token is not a JWT (no claims part)")?;
    let claims = URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .map_err(|e| format!("the token's claims are not base64url: {e}"))?;
    serde_json::from_slice(&claims).map_err(|e| format!("the token's claims are not JSON: {e}"))
}

/// Fulcio v2: a leaf for the request's key, after its proof of possession
/// (a signature over the token's subject) verifies.
fn fulcio(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let claims = token_claims(headers)?;
    let issuer = text(&claims, &["iss"])?;
    let subject = text(&claims, &["email"]).or_else(|_| text(&claims, &["sub"]))?;
    let request: Value =
        serde_json::from_slice(body).map_err(|e| format!("the request is not JSON: {e}"))?;
    let key_pem = text(&request, &["publicKeyRequest", "publicKey", "content"])?;
    let spki = pem::parse(key_pem)
        .map_err(|e| format!("the public key is not PEM: {e}"))?
        .into_contents();
    let proof = STANDARD
        .decode(text(&request, &["publicKeyRequest", "proofOfPossession"])?)
        .map_err(|e| format!("the proof of possession is not base64: {e}"))?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &spki)
        .verify(subject.as_bytes(), &proof)
        .map_err(|_| {
            format!("the proof of possession is not a P-256 signature of {subject:?} by the key")
        })?;
    let now = SystemTime::now();
    let spec = LeafSpec {
        emails: vec![],
        issuer_v2: Some(der_utf8(issuer)),
        ..LeafSpec::default()
    };
    let leaf = spec.issue_for(
        &inner.ca,
        &spki,
        subject,
        now - LEAF_BEFORE,
        now + LEAF_AFTER,
    )?;
    Ok(json!({
        "signedCertificateEmbeddedSct": {
            "chain": {"certificates": [leaf, inner.ca.pem()]},
        },
    }))
}

/// The body real Rekor v1 stores for a proposed entry.
fn canonical_body(proposed: &Value) -> Result<Value, String> {
    let kind = text(proposed, &["kind"])?;
    let version = text(proposed, &["apiVersion"])?;
    match (kind, version) {
        ("dsse", "0.0.1") => {
            let envelope = text(proposed, &["spec", "proposedContent", "envelope"])?;
            let verifiers = proposed
                .pointer("/spec/proposedContent/verifiers")
                .and_then(Value::as_array)
                .ok_or("no verifiers")?;
            let [verifier] = verifiers.as_slice() else {
                return Err(format!("{} verifiers, one expected", verifiers.len()));
            };
            let verifier = verifier.as_str().ok_or("the verifier is not a string")?;
            let parsed: Value = serde_json::from_str(envelope)
                .map_err(|e| format!("the envelope is not JSON: {e}"))?;
            let payload = STANDARD
                .decode(text(&parsed, &["payload"])?)
                .map_err(|e| format!("the envelope's payload is not base64: {e}"))?;
            let signatures = parsed
                .get("signatures")
                .and_then(Value::as_array)
                .ok_or("the envelope has no signatures")?;
            let [signature] = signatures.as_slice() else {
                return Err(format!("{} signatures, one expected", signatures.len()));
            };
            Ok(json!({
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {"algorithm": "sha256", "value": hex(&sha256(&[envelope.as_bytes()]))},
                    "payloadHash": {"algorithm": "sha256", "value": hex(&sha256(&[&payload]))},
                    "signatures": [{"signature": text(signature, &["sig"])?, "verifier": verifier}],
                },
            }))
        }
        // The proposed hashedrekord is already in its stored form.
        ("hashedrekord", "0.0.1") => Ok(json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {
                    "algorithm": text(proposed, &["spec", "data", "hash", "algorithm"])?,
                    "value": text(proposed, &["spec", "data", "hash", "value"])?,
                }},
                "signature": {
                    "content": text(proposed, &["spec", "signature", "content"])?,
                    "publicKey": {"content": text(proposed, &["spec", "signature", "publicKey", "content"])?},
                },
            },
        })),
        _ => Err(format!(
            "entries of kind {kind} {version} are not logged here"
        )),
    }
}

/// Rekor v1: logs the entry; its UUID and the answer keyed by it.
fn rekor(inner: &Inner, body: &[u8]) -> Result<(String, Value), String> {
    let proposed: Value =
        serde_json::from_slice(body).map_err(|e| format!("the entry is not JSON: {e}"))?;
    let body = canonical(&canonical_body(&proposed)?);
    let leaf = sha256(&[&[0], &body]);
    let mut state = lock(&inner.state);
    if state.leaves.len() >= MAX_ENTRIES {
        return Err(format!("the test log is full ({MAX_ENTRIES} entries)"));
    }
    state.leaves.push(leaf.clone());
    let index = state.leaves.len() - 1;
    let size = state.leaves.len();
    let root = mth(&state.leaves);
    let hashes: Vec<String> = path(index, &state.leaves).iter().map(|h| hex(h)).collect();
    drop(state);
    let log_index = u64::try_from(index).map_err(|e| e.to_string())?;
    let time = unix_now();
    let set = inner.rekor.entry_set(&body, time, log_index);
    let uuid = hex(&leaf);
    let answer = json!({
        uuid.clone(): {
            "body": STANDARD.encode(&body),
            "integratedTime": time,
            "logID": inner.rekor.log_id(),
            "logIndex": log_index,
            "verification": {
                "signedEntryTimestamp": STANDARD.encode(set),
                "inclusionProof": {
                    "checkpoint": checkpoint(&inner.rekor, size, &root),
                    "hashes": hashes,
                    "logIndex": log_index,
                    "rootHash": hex(&root),
                    "treeSize": size,
                },
            },
        },
    });
    Ok((uuid, answer))
}

/// RFC 3161: a `TimeStampResp` over the request's SHA-256 imprint, now.
fn timestamp(inner: &Inner, body: &[u8]) -> Result<Vec<u8>, String> {
    use der::Decode;
    use der::asn1::{Any, OctetString};
    let request = Vec::<Any>::from_der(body)
        .map_err(|e| format!("the request is not a TimeStampReq: {e}"))?;
    let imprint = request
        .get(1)
        .ok_or("the TimeStampReq has no messageImprint")?
        .decode_as::<Vec<Any>>()
        .map_err(|e| format!("reading the messageImprint: {e}"))?;
    let [algorithm, hashed] = imprint.as_slice() else {
        return Err("the messageImprint is not (algorithm, hash)".to_owned());
    };
    let algorithm = algorithm
        .decode_as::<x509_cert::spki::AlgorithmIdentifierOwned>()
        .map_err(|e| format!("reading the imprint's algorithm: {e}"))?;
    if algorithm.oid != const_oid::db::rfc5912::ID_SHA_256 {
        return Err(format!("the imprint is {}, not SHA-256", algorithm.oid));
    }
    let hashed = hashed
        .decode_as::<OctetString>()
        .map_err(|e| format!("reading the imprint's hash: {e}"))?;
    if hashed.as_bytes().len() != 32 {
        return Err("the SHA-256 imprint is not 32 bytes".to_owned());
    }
    Ok(inner.tsa.response_over(hashed.as_bytes(), unix_now(), 0))
}

/// Decodes standard base64 at `path`.
fn base64_at(value: &Value, path: &[&str]) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text(value, path)?)
        .map_err(|e| format!("{} is not base64: {e}", path.join(".")))
}

/// The one item of the array at `key`: a test log logs one signature by
/// one signer, as cosign sends.
fn only<'v>(value: &'v Value, key: &str) -> Result<&'v Value, String> {
    let items = value
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no {key}"))?;
    match items.as_slice() {
        [item] => Ok(item),
        _ => Err(format!("{} {key}, one expected", items.len())),
    }
}

/// A v0.0.2 verifier's DER and whether it is a certificate.
fn verifier_v2(verifier: &Value) -> Result<(Vec<u8>, bool), String> {
    if verifier.get("x509Certificate").is_some() {
        Ok((base64_at(verifier, &["x509Certificate", "rawBytes"])?, true))
    } else {
        Ok((base64_at(verifier, &["publicKey", "rawBytes"])?, false))
    }
}

/// Rekor v2: the entry as a bundle's `TransparencyLogEntry`, leaf of the
/// test log's tree with its proof and signed checkpoint.
fn rekor_v2(inner: &Inner, body: &[u8]) -> Result<Value, String> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| format!("the request is not JSON: {e}"))?;
    if let Some(dsse) = request.get("dsseRequestV002") {
        let envelope = &dsse["envelope"];
        let payload = base64_at(envelope, &["payload"])?;
        let signature = base64_at(only(envelope, "signatures")?, &["sig"])?;
        let (der, certificate) = verifier_v2(only(dsse, "verifiers")?)?;
        let body: Value =
            serde_json::from_slice(&dsse_body(&der, certificate, &signature, &payload))
                .map_err(|e| format!("the dsse body: {e}"))?;
        return Ok(inner.rekor_v2.entry("dsse", &canonical(&body)));
    }
    if let Some(hashed) = request.get("hashedRekordRequestV002") {
        let digest = base64_at(hashed, &["digest"])?;
        let signature = base64_at(hashed, &["signature", "content"])?;
        let verifier = hashed.pointer("/signature/verifier").ok_or("no verifier")?;
        // The body is RFC 8785 over the protobuf JSON of the entry, which
        // sigstore-go rebuilds from the bundle to check the proof; the
        // request's verifier is already in that form.
        let body = json!({
            "apiVersion": "0.0.2",
            "kind": "hashedrekord",
            "spec": {"hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
                "signature": {"content": STANDARD.encode(signature), "verifier": verifier},
            }},
        });
        return Ok(inner.rekor_v2.entry("hashedrekord", &canonical(&body)));
    }
    Err("neither a dsseRequestV002 nor a hashedRekordRequestV002".to_owned())
}

/// A checkpoint of the tree in signed-note form: the ECDSA key hint is the
/// first 4 bytes of SHA-256 of the log key's SubjectPublicKeyInfo.
fn checkpoint(log: &TestRekor, size: usize, root: &[u8]) -> String {
    let note = format!("{LOG_NAME} - 0\n{size}\n{}\n", STANDARD.encode(root));
    let mut signature = sha256(&[log.spki_der()])[..4].to_vec();
    signature.extend(log.sign(note.as_bytes()));
    format!(
        "{note}\n\u{2014} {LOG_NAME} {}\n",
        STANDARD.encode(signature)
    )
}

/// RFC 8785 (JCS), the form Rekor signs and hashes.
fn canonical(value: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value).expect("JSON values canonicalize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_members_at_every_depth() {
        let value = json!({"b": 1, "a": {"d": "x", "c": [{"f": 2, "e": 3}]}});
        assert_eq!(
            String::from_utf8(canonical(&value)).unwrap_or_default(),
            r#"{"a":{"c":[{"e":3,"f":2}],"d":"x"},"b":1}"#
        );
    }

    fn fulcio_request(subject: &str) -> (HeaderMap, Vec<u8>) {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("a key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .expect("a key");
        let spki: PublicKeyX509Der<'_> = key.public_key().as_der().expect("its SPKI");
        let proof = key.sign(&rng, subject.as_bytes()).expect("a proof");
        let body = json!({"publicKeyRequest": {
            "publicKey": {
                "algorithm": "ECDSA",
                "content": pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec())),
            },
            "proofOfPossession": STANDARD.encode(proof.as_ref()),
        }});
        let token = test_identity_token("https://issuer.test", "me@example.test");
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("a header value"),
        );
        (headers, body.to_string().into_bytes())
    }

    fn inner() -> Inner {
        Inner {
            ca: TestCa::new("unit test Fulcio"),
            rekor: TestRekor::new(),
            rekor_v2: TestLogV2::new(),
            tsa: TestTsa::new(TsaSpec::default()),
            state: Mutex::default(),
        }
    }

    #[test]
    fn fulcio_issues_only_with_a_proof_over_the_tokens_subject() {
        let inner = inner();
        let (headers, body) = fulcio_request("me@example.test");
        let answer = fulcio(&inner, &headers, &body).expect("a certificate");
        let chain = &answer["signedCertificateEmbeddedSct"]["chain"]["certificates"];
        assert_eq!(chain[1], inner.ca.pem());
        assert!(
            chain[0]
                .as_str()
                .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
        );

        let (headers, body) = fulcio_request("someone-else@example.test");
        let refused = fulcio(&inner, &headers, &body).expect_err("a bad proof");
        assert!(refused.contains("proof of possession"), "{refused}");
        let refused = fulcio(&inner, &HeaderMap::new(), &body).expect_err("no token");
        assert!(refused.contains("Bearer"), "{refused}");
    }

    #[test]
    fn rekor_logs_the_canonical_dsse_body_with_a_set() {
        let inner = inner();
        let envelope = json!({
            "payload": STANDARD.encode("the payload"),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": "c2ln", "keyid": ""}],
        })
        .to_string();
        let proposed = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {"proposedContent": {
            "envelope": envelope, "verifiers": ["dmVyaWZpZXI="],
        }}});
        let (uuid, answer) =
            rekor(&inner, proposed.to_string().as_bytes()).expect("a logged entry");
        let entry = &answer[uuid.as_str()];
        let body = STANDARD
            .decode(entry["body"].as_str().unwrap_or_default())
            .expect("base64");
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            body["spec"]["payloadHash"]["value"],
            hex(&sha256(&[b"the payload"]))
        );
        assert_eq!(body["spec"]["signatures"][0]["signature"], "c2ln");
        assert_eq!(body["spec"]["signatures"][0]["verifier"], "dmVyaWZpZXI=");
        assert_eq!(entry["logID"], inner.rekor.log_id());
        assert_eq!(entry["verification"]["inclusionProof"]["treeSize"], 1);
        let promise = canonical(&json!({
            "body": entry["body"],
            "integratedTime": entry["integratedTime"],
            "logID": entry["logID"],
            "logIndex": entry["logIndex"],
        }));
        let set = STANDARD
            .decode(
                entry["verification"]["signedEntryTimestamp"]
                    .as_str()
                    .unwrap_or_default(),
            )
            .expect("base64");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, inner.rekor.spki_der())
            .verify(&promise, &set)
            .expect("the SET verifies with the log key");
        let refused =
            rekor(&inner, br#"{"apiVersion":"0.0.1","kind":"rekord"}"#).expect_err("another kind");
        assert!(refused.contains("rekord"), "{refused}");
    }

    #[test]
    fn the_token_carries_its_claims() {
        let token = test_identity_token("https://issuer.test", "me@example.test");
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("a header value"),
        );
        let claims = token_claims(&headers).expect("claims");
        assert_eq!(claims["iss"], "https://issuer.test");
        assert_eq!(claims["email"], "me@example.test");
        assert_eq!(claims["email_verified"], true);
    }
}
