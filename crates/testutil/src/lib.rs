//! Test harnesses shared by the integration tests: a real `docker-registry`
//! on 127.0.0.1, the peer tools (cosign, skopeo, gpg), small OCI images,
//! and for the CRI proxy a real containerd ([`Containerd`]), a byte-level
//! fake runtime ([`FakeRuntime`]), a CRI client generated from the upstream
//! `api.proto` ([`cri`]) and raw gRPC helpers ([`grpc`]); the demo and the
//! benchmark drivers start from the same registry set-up
//! ([`RegistrySetup`]). Everything it starts it stops again, by PID.
//!
//! criguard must give containers/image's verdicts and read cosign's
//! signatures, so its tests run against the real programs rather than
//! against fixtures we wrote ourselves:
//!
//! ```no_run
//! use criguard_testutil::*;
//! let registry = Registry::start();
//! let image = push_test_image(&registry, "test/app", "v1", "some content");
//! let keys = tempfile::tempdir().unwrap();
//! let (key, public) = cosign_generate_key_pair(keys.path(), "pw");
//! cosign_sign(&key, "pw", &image.by_digest());
//! assert!(cosign_verify(&public, &image.by_digest()).status.success());
//! ```
//!
//! Offline by construction: cosign signs with `--tlog-upload=false --yes`
//! and verifies with `--insecure-ignore-tlog=true`, both with
//! `--allow-http-registry --allow-insecure-registry`; every peer tool runs
//! with a private HOME/TUF_ROOT, an empty registries.conf and
//! `HTTP(S)_PROXY=http://127.0.0.1:9`, which Go skips for loopback and which
//! makes any other connection fail at once. skopeo always gets `--policy`
//! and `--registries.d` so the host's /etc/containers never decides.
//!
//! Test-only code: failures panic with a message saying what went wrong,
//! because a panic is how a harness fails the test that uses it.
#![allow(clippy::expect_used, clippy::panic)]

pub mod bundles;
pub mod config;
pub mod containerd;
pub mod cosign;
pub mod cosign3;
pub mod cri;
pub mod daemon;
pub mod fake_runtime;
pub mod gpg;
pub mod grpc;
pub mod http;
pub mod http_server;
pub mod image;
pub mod keyless;
pub mod kube_apiserver;
pub mod openssl_tsa;
pub mod peer;
pub mod process;
pub mod program;
pub mod python_grpc;
pub mod referrers_registry;
pub mod registry;
pub mod rekor_v2;
pub mod setup;
pub mod sigstore_services;
pub mod skopeo;
pub mod static_http;
pub mod tsa;

pub use config::{insecure_registries_conf, sigstore_key_policy};
pub use containerd::Containerd;
pub use cosign::{cosign_generate_key_pair, cosign_sign, cosign_sign_with, cosign_verify};
pub use daemon::CriguardDaemon;
pub use fake_runtime::{FakeRuntime, RecordedCall};
pub use gpg::GpgHome;
pub use grpc::{RawResponse, grpc_call_raw, grpc_call_raw_blocking, grpc_call_raw_body};
pub use http::HttpResponse;
pub use image::{
    Blob, ImageBuilder, OciImage, OciIndex, Pushed, PushedIndex, push_image, push_index,
    push_test_image, push_test_multiarch, sha256_digest, test_image, test_multiarch, upload_image,
    upload_index,
};
pub use kube_apiserver::KubeApiServer;
pub use peer::{PeerTools, hermetic};
pub use process::{DEFAULT_TIMEOUT, output_text, run_ok, run_with_timeout};
pub use program::{pause_image, runnable_image, static_program};
pub use python_grpc::PythonGrpc;
pub use referrers_registry::ReferrersRegistry;
pub use registry::Registry;
pub use setup::{RegistrySetup, criguard_binary};
pub use skopeo::{
    lookaside_registries_d, sigstore_registries_d, skopeo_copy_with_policy,
    skopeo_copy_with_policy_using, skopeo_sign_gpg, skopeo_sign_gpg_all, skopeo_sign_sigstore,
    skopeo_standalone_sign,
};
pub use static_http::StaticHttpServer;
