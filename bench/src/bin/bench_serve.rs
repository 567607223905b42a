//! The set-up and driver behind `bench/serve.sh`: what `criguard serve`
//! costs in front of a real containerd, measured side by side in one run
//! against containerd alone (the same calls on containerd's own socket).
//!
//! 1. Pass-through latency: `--calls` sequential ImageStatus, ListImages
//!    and ListContainers calls over one connection, direct, through
//!    criguard and through a raw byte relay (`criguard_bench::relay`: the
//!    floor of any user-space hop), in alternating blocks after a warm-up:
//!    p50, p99, mean.
//! 2. Throughput: `--load-calls` ImageStatus calls from `--clients`
//!    concurrent clients, each on its own connection, direct and through
//!    criguard (two rounds each, alternating); the daemon's RSS before and
//!    after, and its peak (VmHWM).
//! 3. A cold signed pull: CRI PullImage of a cosign-signed image under a
//!    policy requiring that key (sigstoreSigned, registries.d with
//!    use-sigstore-attachments), the image removed from containerd before
//!    every pull and, through criguard, a running daemon whose caches are
//!    off (every pull resolves, fetches and checks); `--pulls` repetitions,
//!    alternating. The first pull of a freshly started daemon (its registry
//!    clients not yet built) is measured too. Beside them,
//!    containers/image's own cost of the same check: `skopeo copy --policy`
//!    minus `skopeo copy --insecure-policy` to `dir:` (skopeo 1.18, both
//!    with `--remove-signatures`, so the difference is fetching and
//!    verifying the signatures).
//! 4. A warm second pull of the same image (decision cache warm).
//! 5. CreateContainer with a warm cache, in a real host-network sandbox:
//!    the bench's image has no command, so containerd refuses each create
//!    at once ("no command specified") either way; through criguard the
//!    difference is its check (the sandbox's namespace, then the pull
//!    record and decision cache).
//!
//! 6. With `--scale-pulls N` (`--scale-images M`, default 20;
//!    `--scale-rounds R`, default 3): N concurrent cold pulls of M
//!    distinct signed images on one connection, containerd alone and
//!    through a freshly started criguard, with criguard's manifest
//!    resolutions and signature reads counted (its metrics).
//! 7. With `--decisions N`: N distinct pull decisions (one image under N
//!    tags) on the daemon of sections 1 and 2, then its memory.
//!
//! `--passthrough-only` skips sections 3 to 5. Every goal of the
//! performance issue is printed with its figure and "met" or "not met";
//! CPU per forwarded call is criguard's utime + stime from /proc.
//!
//! Before and while timing, the answers are checked (the signed image is
//! allowed and verified, not cached, on a cold pull; an unsigned one is
//! refused; creates through criguard are allowed by a signature decision and
//! fail only with containerd's own refusal), so the figures are of the work
//! meant. Nothing is asserted about time: the goals are printed beside the
//! figures for the reader.
//!
//! Usage: `bench_serve PATH/TO/criguard OUT_DIR [--calls N] [--load-calls N]
//! [--clients N] [--pulls N] [--creates N] [--json] [--passthrough-only]
//! [--scale-pulls N] [--scale-images N] [--scale-rounds N] [--decisions N]`
//! (bench/serve.sh builds
//! criguard and passes both). Writes OUT_DIR/summary.md and
//! OUT_DIR/serve.json; `--json` prints the JSON too. Needs Debian's
//! containerd and docker-registry and the peer tools.

#![allow(clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criguard_bench::relay::ByteRelay;
use criguard_bench::{load_average, version};
use criguard_testutil::containerd::Release;
use criguard_testutil::cri::{self, ImageServiceClient, RuntimeServiceClient, v1};
use criguard_testutil::{
    Containerd, CriguardDaemon, PeerTools, Pushed, RegistrySetup, cosign_generate_key_pair,
    cosign_sign, criguard_binary, pause_image, push_image, push_test_image, run_with_timeout,
};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tonic::transport::Channel;

const PASSWORD: &str = "bench-password";
/// The namespace whose policy file requires our cosign key.
const NAMESPACE: &str = "bench-signed";
/// Calls per block when direct and through-criguard calls alternate.
const BLOCK: usize = 100;

struct Options {
    criguard: PathBuf,
    out: PathBuf,
    calls: usize,
    load_calls: usize,
    clients: usize,
    pulls: usize,
    creates: usize,
    json: bool,
    /// Only sections 1 and 2 (pass-through latency, throughput, CPU).
    passthrough_only: bool,
    /// Section 6, when not 0: this many concurrent cold pulls of
    /// `scale_images` distinct signed images.
    scale_pulls: usize,
    scale_images: usize,
    scale_rounds: usize,
    /// Section 7, when not 0: this many distinct pull decisions on the
    /// daemon of sections 1 and 2, then its memory.
    decisions: usize,
}

fn options() -> Options {
    let mut args = std::env::args_os().skip(1);
    let criguard = criguard_binary(&mut args);
    let out = PathBuf::from(
        args.next()
            .expect("usage: bench_serve CRIGUARD OUT_DIR [...]"),
    );
    let mut opts = Options {
        criguard,
        out,
        calls: 5000,
        load_calls: 100_000,
        clients: 64,
        pulls: 10,
        creates: 1000,
        json: false,
        passthrough_only: false,
        scale_pulls: 0,
        scale_images: 20,
        scale_rounds: 3,
        decisions: 0,
    };
    while let Some(flag) = args.next() {
        if flag == "--json" {
            opts.json = true;
            continue;
        }
        if flag == "--passthrough-only" {
            opts.passthrough_only = true;
            continue;
        }
        let value: usize = args
            .next()
            .and_then(|v| v.to_str()?.parse().ok())
            .filter(|v| *v > 0)
            .unwrap_or_else(|| panic!("{flag:?} needs a positive number"));
        match flag.to_str() {
            Some("--calls") => opts.calls = value,
            Some("--load-calls") => opts.load_calls = value,
            Some("--clients") => opts.clients = value,
            Some("--pulls") => opts.pulls = value,
            Some("--creates") => opts.creates = value,
            Some("--scale-pulls") => opts.scale_pulls = value,
            Some("--scale-images") => opts.scale_images = value,
            Some("--scale-rounds") => opts.scale_rounds = value,
            Some("--decisions") => opts.decisions = value,
            _ => panic!(
                "unknown option {flag:?}: --calls N, --load-calls N, --clients N, --pulls N, \
                 --creates N, --json, --passthrough-only, --scale-pulls N, --scale-images N, \
                 --scale-rounds N, --decisions N"
            ),
        }
    }
    opts
}

/// Durations, summarised in microseconds.
struct Samples(Vec<Duration>);

impl Samples {
    fn sorted_us(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.0.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// Nearest-rank percentile, `p` in (0, 1].
    fn percentile(&self, p: f64) -> f64 {
        let v = self.sorted_us();
        assert!(!v.is_empty(), "no samples");
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// The median (mean of the two middle values for an even count).
    fn median(&self) -> f64 {
        let v = self.sorted_us();
        assert!(!v.is_empty(), "no samples");
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    fn mean(&self) -> f64 {
        self.sorted_us().iter().sum::<f64>() / self.0.len() as f64
    }

    fn json(&self) -> Value {
        let v = self.sorted_us();
        json!({
            "n": v.len(),
            "median_us": self.median(),
            "p99_us": self.percentile(0.99),
            "mean_us": self.mean(),
            "min_us": v.first(),
            "max_us": v.last(),
        })
    }
}

fn sandbox(namespace: &str) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: "bench-pod".to_owned(),
            uid: "bench-uid".to_owned(),
            namespace: namespace.to_owned(),
            attempt: 0,
        }),
        ..Default::default()
    }
}

fn pull_request(image: &str) -> v1::PullImageRequest {
    v1::PullImageRequest {
        image: Some(cri::image_spec(image)),
        auth: None,
        sandbox_config: Some(sandbox(NAMESPACE)),
    }
}

/// A host-network pod (no CNI here) in the bench's namespace, as the
/// kubelet runs one: criguard judges a create by its sandbox's namespace,
/// so the creates below need a sandbox containerd really has.
fn pod_config(logs: &Path) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        log_directory: logs.to_str().unwrap_or_default().to_owned(),
        linux: Some(v1::LinuxPodSandboxConfig {
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(v1::NamespaceOption {
                    network: v1::NamespaceMode::Node as i32,
                    pid: v1::NamespaceMode::Container as i32,
                    ipc: v1::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..sandbox(NAMESPACE)
    }
}

/// What the kubelet sends, for the bench's image, which has no command:
/// containerd refuses it at once ("no command specified"), after
/// criguard's check, so each call times the check and a quick answer from
/// the runtime, and no container is left behind.
fn create_request(
    sandbox_id: &str,
    pod: &v1::PodSandboxConfig,
    image_id: &str,
    user_image: &str,
) -> v1::CreateContainerRequest {
    v1::CreateContainerRequest {
        pod_sandbox_id: sandbox_id.to_owned(),
        config: Some(v1::ContainerConfig {
            metadata: Some(v1::ContainerMetadata {
                name: "bench".to_owned(),
                attempt: 0,
            }),
            image: Some(v1::ImageSpec {
                image: image_id.to_owned(),
                user_specified_image: user_image.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        sandbox_config: Some(pod.clone()),
    }
}

#[derive(Clone, Copy)]
enum Call {
    ImageStatus,
    ListImages,
    ListContainers,
}

/// Both CRI services over one connection, as the kubelet holds them.
struct Clients {
    image: ImageServiceClient<Channel>,
    runtime: RuntimeServiceClient<Channel>,
}

impl Clients {
    async fn connect(socket: &Path) -> Clients {
        let channel = cri::connect(socket).await;
        Clients {
            image: cri::image_client(channel.clone()),
            runtime: cri::runtime_client(channel),
        }
    }
}

/// One pass-through call; panics unless the answer is the expected one.
async fn call_once(clients: &mut Clients, call: Call, image: &str) {
    match call {
        Call::ImageStatus => {
            let response = clients
                .image
                .image_status(v1::ImageStatusRequest {
                    image: Some(cri::image_spec(image)),
                    verbose: false,
                })
                .await
                .expect("ImageStatus");
            assert!(response.into_inner().image.is_some(), "{image} is missing");
        }
        Call::ListImages => {
            let response = clients
                .image
                .list_images(v1::ListImagesRequest::default())
                .await
                .expect("ListImages");
            assert!(!response.into_inner().images.is_empty(), "no images listed");
        }
        Call::ListContainers => {
            // The node has no containers; the answer is an empty list
            // either way, and what is measured is the hop.
            clients
                .runtime
                .list_containers(v1::ListContainersRequest::default())
                .await
                .expect("ListContainers");
        }
    }
}

/// `n` calls on each of `sockets` (one connection each), after `warmup`
/// calls each, in alternating blocks of [`BLOCK`] (the order rotating each
/// round) so all share the machine's state; the samples in `sockets` order.
async fn sequential<const N: usize>(
    sockets: [&Path; N],
    call: Call,
    image: &str,
    n: usize,
) -> [Samples; N] {
    let mut clients = Vec::with_capacity(N);
    for socket in sockets {
        clients.push(Clients::connect(socket).await);
    }
    let warmup = (n / 10).clamp(1, 500);
    for client in &mut clients {
        for _ in 0..warmup {
            call_once(client, call, image).await;
        }
    }
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut done = 0;
    let mut round = 0;
    while done < n {
        let k = BLOCK.min(n - done);
        for i in 0..N {
            let side = (i + round) % N;
            for _ in 0..k {
                let start = Instant::now();
                call_once(&mut clients[side], call, image).await;
                samples[side].push(start.elapsed());
            }
        }
        done += k;
        round += 1;
    }
    samples.map(Samples)
}

/// `total` ImageStatus calls from `clients` concurrent clients, each on a
/// connection of its own, made (and used once) before the clock starts.
/// Returns the wall time from the first call to the last answer.
async fn load(socket: &Path, clients: usize, total: usize, image: &str) -> Duration {
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut client = Clients::connect(socket).await;
        call_once(&mut client, Call::ImageStatus, image).await;
        connected.push(client);
    }
    let (per, extra) = (total / clients, total % clients);
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, mut client) in connected.into_iter().enumerate() {
        let n = per + usize::from(i < extra);
        let image = image.to_owned();
        tasks.spawn(async move {
            for _ in 0..n {
                call_once(&mut client, Call::ImageStatus, &image).await;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("a load client failed");
    }
    start.elapsed()
}

async fn image_client(socket: &Path) -> ImageServiceClient<Channel> {
    cri::image_client(cri::connect(socket).await)
}

async fn runtime_client(socket: &Path) -> RuntimeServiceClient<Channel> {
    cri::runtime_client(cri::connect(socket).await)
}

/// Removes image `id` from containerd (all its names) and checks it is gone.
fn remove_image(rt: &Runtime, containerd: &Path, id: &str) {
    rt.block_on(async {
        let mut client = image_client(containerd).await;
        let present = client
            .image_status(v1::ImageStatusRequest {
                image: Some(cri::image_spec(id)),
                verbose: false,
            })
            .await
            .expect("ImageStatus")
            .into_inner()
            .image
            .is_some();
        if present {
            client
                .remove_image(v1::RemoveImageRequest {
                    image: Some(cri::image_spec(id)),
                })
                .await
                .expect("RemoveImage");
        }
        let after = client
            .image_status(v1::ImageStatusRequest {
                image: Some(cri::image_spec(id)),
                verbose: false,
            })
            .await
            .expect("ImageStatus")
            .into_inner()
            .image;
        assert!(after.is_none(), "{id} is still in containerd: {after:?}");
    });
}

/// Times one PullImage of `image` on `socket`, the connection made (and,
/// for the proxy, its connection to containerd opened by a Version call)
/// before the clock starts. Returns the time and the image ref.
fn timed_pull(rt: &Runtime, socket: &Path, image: &str) -> (Duration, String) {
    rt.block_on(async {
        let channel = cri::connect(socket).await;
        cri::runtime_client(channel.clone())
            .version(v1::VersionRequest::default())
            .await
            .expect("Version");
        let mut client = cri::image_client(channel);
        let start = Instant::now();
        let response = client
            .pull_image(pull_request(image))
            .await
            .unwrap_or_else(|e| panic!("pulling {image} through {}: {e:?}", socket.display()));
        (start.elapsed(), response.into_inner().image_ref)
    })
}

/// The node's files, as `crates/cli/tests/serve_support` writes them: the
/// global policy and `policies/bench-signed.json` both require our cosign
/// key in the registry and reject everything else.
fn daemon_config(setup: &RegistrySetup, policy: &Path) -> String {
    let policies = setup.path("policies");
    fs::create_dir_all(&policies).expect("creating the policy dir");
    fs::copy(policy, policies.join(format!("{NAMESPACE}.json")))
        .expect("writing the namespace policy");
    format!(
        "policy = \"{}\"\npolicy_dir = \"{}\"\nregistries_d = \"{}\"\nregistries_conf = \"{}\"\n",
        policy.display(),
        policies.display(),
        setup.registries_d.display(),
        setup.registries_conf.display()
    )
}

/// The last audit line the daemon wrote for `operation`.
fn last_audit(daemon: &CriguardDaemon, operation: &str) -> Value {
    last_audits(daemon, operation, 1).remove(0)
}

/// The last `n` audit lines the daemon wrote for `operation`.
fn last_audits(daemon: &CriguardDaemon, operation: &str, n: usize) -> Vec<Value> {
    let mut lines: Vec<Value> = daemon
        .audit()
        .into_iter()
        .filter(|line| line["operation"] == operation)
        .collect();
    assert!(
        lines.len() >= n,
        "fewer than {n} {operation} audit lines in:\n{}",
        daemon.log()
    );
    lines.split_off(lines.len() - n)
}

/// The time criguard says it spent deciding (`elapsed_ms` of audit lines).
fn check_times(audits: &[Value]) -> Samples {
    audit_times(audits, "elapsed_ms")
}

/// One timing field of the audit lines (`elapsed_ms`, `resolve_ms`, …).
fn audit_times(audits: &[Value], field: &str) -> Samples {
    Samples(
        audits
            .iter()
            .map(|a| {
                let ms = a[field]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{field} in the audit line {a}"));
                Duration::from_secs_f64(ms / 1000.0)
            })
            .collect(),
    )
}

/// Checks every line allowed the image by a signature decision, from the
/// decision cache or not as `cached` says.
fn assert_allowed(audits: &[Value], cached: bool) {
    for audit in audits {
        assert!(
            audit["verdict"] == "allowed"
                && audit["reason"] == "signature"
                && audit["cached"] == cached
                && audit["signatures"].as_u64() >= Some(1),
            "expected an allowed, verified{} decision: {audit}",
            if cached { ", cached" } else { ", uncached" }
        );
    }
}

/// `skopeo copy` of `image` to a fresh `dir:`, under `policy` (or with
/// `--insecure-policy`), without copying signatures; returns the wall time
/// and whether it succeeded.
fn skopeo_copy(
    setup: &RegistrySetup,
    policy: Option<&Path>,
    image: &str,
) -> (Duration, bool, String) {
    let dest = tempfile::tempdir_in(setup.dir.path()).expect("a skopeo destination");
    let mut cmd = setup.command(&PeerTools::get().skopeo());
    match policy {
        Some(policy) => cmd.arg("--policy").arg(policy),
        None => cmd.arg("--insecure-policy"),
    };
    cmd.arg("--registries.d")
        .arg(&setup.registries_d)
        .args([
            "copy",
            "--quiet",
            "--remove-signatures",
            "--src-tls-verify=false",
        ])
        .arg(format!("docker://{image}"))
        .arg(format!("dir:{}", dest.path().display()));
    let start = Instant::now();
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let elapsed = start.elapsed();
    (
        elapsed,
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let opts = options();
    fs::create_dir_all(&opts.out).expect("creating the output dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building the tokio runtime");

    // The node: a registry with a cosign-signed and an unsigned image, the
    // signed-only policy, registries.d and registries.conf.
    let setup = RegistrySetup::start("criguard-bench-serve-");
    let reg = &setup.registry;
    let keys = setup.path("keys");
    fs::create_dir(&keys).expect("creating the keys dir");
    let (key, public) = cosign_generate_key_pair(&keys, PASSWORD);
    let signed: Pushed = push_test_image(reg, "bench/signed", "v1", "signed content");
    cosign_sign(&key, PASSWORD, &signed.by_digest());
    let unsigned = push_test_image(reg, "bench/unsigned", "v1", "unsigned content");
    let policy = setup.policy(&public);
    let config = daemon_config(&setup, &policy);
    let tag = signed.by_tag();
    let host = reg.host();
    let pause = push_image(reg, "bench/pause", "1", &pause_image());
    let containerd =
        Containerd::start_release(Release::V1_6, &[(&host, &host)], Some(&pause.by_tag()));
    let direct = containerd.socket().to_path_buf();
    let start_daemon = || CriguardDaemon::start(&opts.criguard, &direct, &config);

    println!(
        "machine: {} CPUs, load average {}",
        num_cpus(),
        load_average()
    );
    println!("  {}", version(&opts.criguard, "--version"));
    println!(
        "  {}",
        version(Path::new("/usr/bin/containerd"), "--version")
    );
    println!(
        "  {} (Debian package {})",
        version(&PeerTools::get().skopeo(), "--version"),
        PeerTools::get().package_version("skopeo")
    );
    println!(
        "image: {tag} = {} (one small layer), signed by cosign {}; registry {host} (pid {}), \
         containerd pid {}",
        signed.digest,
        PeerTools::get().package_version("cosign"),
        reg.pid().expect("the registry runs"),
        containerd.pid().expect("containerd runs"),
    );

    // The image in containerd, pulled directly: its ID is what pulls must
    // return and what creates name.
    let (_, image_id) = timed_pull(&rt, &direct, &tag);
    let mut daemon = start_daemon();
    println!(
        "criguard serve pid {} (default caches: decisions 600 s, tag resolutions 30 s)",
        daemon.pid().expect("the daemon runs")
    );

    // Checks: the policy is applied (unsigned refused by criguard and by
    // skopeo, signed accepted by both).
    rt.block_on(async {
        let status = image_client(daemon.socket())
            .await
            .pull_image(pull_request(&unsigned.by_tag()))
            .await
            .expect_err("criguard must refuse the unsigned image");
        assert!(
            status.message().starts_with("SignatureValidationFailed: "),
            "{status:?}"
        );
    });
    let (_, ok, said) = skopeo_copy(&setup, Some(&policy), &unsigned.by_tag());
    assert!(!ok, "skopeo accepted the unsigned image");
    assert!(said.contains("Source image rejected"), "{said}");
    let (_, ok, said) = skopeo_copy(&setup, Some(&policy), &tag);
    assert!(ok, "skopeo refused the signed image: {said}");
    let (_, ok, said) = skopeo_copy(&setup, None, &tag);
    assert!(ok, "skopeo --insecure-policy failed: {said}");
    println!("checked: unsigned refused and signed accepted by criguard and by skopeo");

    let load_before = load_average();
    let pass = passthrough(&rt, &opts, &direct, &daemon, &containerd, &tag);
    let remembered = (opts.decisions > 0).then(|| memory(&rt, &opts, &setup, &signed, &daemon));
    if opts.passthrough_only {
        let scaled =
            (opts.scale_pulls > 0).then(|| scale(&rt, &opts, &setup, &key, &direct, &config));
        let t = format!(
            "{}{}{}{}\n{} CPUs; load average {load_before} before, {} after.\n",
            TABLE_HEAD,
            pass.rows,
            remembered.as_ref().map_or("", |s| s.rows.as_str()),
            scaled.as_ref().map_or("", |s| s.rows.as_str()),
            num_cpus(),
            load_average()
        );
        let report = json!({
            "passthrough_only": true, "cpus": num_cpus(), "passthrough": pass.json,
            "scale": scaled.map(|s| s.json),
            "memory": remembered.map(|s| s.json),
        });
        write_report(&opts, &t, &report);
        return;
    }

    // 3a. containers/image's cost of the same check.
    println!(
        "3. skopeo copy, {} runs each with and without policy...",
        opts.pulls
    );
    let mut skopeo_policy = Vec::new();
    let mut skopeo_insecure = Vec::new();
    for i in 0..opts.pulls {
        for with_policy in if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            let (took, ok, said) =
                skopeo_copy(&setup, with_policy.then_some(policy.as_path()), &tag);
            assert!(ok, "skopeo copy failed: {said}");
            if with_policy {
                skopeo_policy.push(took);
            } else {
                skopeo_insecure.push(took);
            }
        }
    }
    let (skopeo_policy, skopeo_insecure) = (Samples(skopeo_policy), Samples(skopeo_insecure));

    // 3b. Cold pulls: the image removed from containerd first. Through
    // criguard, a daemon that caches nothing (cache and resolution TTLs 0),
    // so every pull resolves, fetches and verifies, over connections a
    // running node would already have open. A freshly started daemon (its
    // registry clients not yet built) is measured too, as first contact.
    println!("3. cold pulls, {} each...", opts.pulls);
    let uncached = CriguardDaemon::start(
        &opts.criguard,
        &direct,
        &format!("{config}cache_ttl_seconds = 0\nresolve_ttl_seconds = 0\n"),
    );
    remove_image(&rt, &direct, &image_id);
    timed_pull(&rt, uncached.socket(), &tag);
    let mut cold_direct = Vec::new();
    let mut cold_through = Vec::new();
    let mut first_contact = Vec::new();
    let mut cold_audits = Vec::new();
    for i in 0..opts.pulls {
        for through in if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            remove_image(&rt, &direct, &image_id);
            let (_, image_ref) = if through {
                let pulled = timed_pull(&rt, uncached.socket(), &tag);
                let audit = last_audit(&uncached, "pull");
                assert_allowed(std::slice::from_ref(&audit), false);
                cold_audits.push(audit);
                cold_through.push(pulled.0);
                pulled
            } else {
                let pulled = timed_pull(&rt, &direct, &tag);
                cold_direct.push(pulled.0);
                pulled
            };
            assert_eq!(image_ref, image_id, "the pull returned another image");
        }
        remove_image(&rt, &direct, &image_id);
        daemon.stop();
        daemon = start_daemon();
        let pulled = timed_pull(&rt, daemon.socket(), &tag);
        assert_eq!(pulled.1, image_id, "the pull returned another image");
        assert_allowed(&[last_audit(&daemon, "pull")], false);
        first_contact.push(pulled.0);
    }
    drop(uncached);
    let first_contact = Samples(first_contact);
    let (cold_direct, cold_through) = (Samples(cold_direct), Samples(cold_through));

    // 4. Warm pulls, on the last daemon (its caches hold this image).
    println!("4. warm pulls, {} each...", opts.pulls);
    timed_pull(&rt, &direct, &tag);
    timed_pull(&rt, daemon.socket(), &tag);
    let hits_before =
        daemon.metric("criguard_cache_lookups_total{cache=\"decision\",result=\"hit\"");
    let mut warm_direct = Vec::new();
    let mut warm_through = Vec::new();
    for i in 0..opts.pulls {
        for through in if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            let socket = if through { daemon.socket() } else { &direct };
            let (took, image_ref) = timed_pull(&rt, socket, &tag);
            assert_eq!(image_ref, image_id, "the pull returned another image");
            if through {
                warm_through.push(took);
            } else {
                warm_direct.push(took);
            }
        }
    }
    let hits = daemon.metric("criguard_cache_lookups_total{cache=\"decision\",result=\"hit\"")
        - hits_before;
    assert_eq!(
        hits as usize,
        opts.pulls,
        "warm pulls were not decision cache hits:\n{}",
        daemon.metrics()
    );
    let (warm_direct, warm_through) = (Samples(warm_direct), Samples(warm_through));
    let warm_audits = last_audits(&daemon, "pull", opts.pulls);
    assert_allowed(&warm_audits, true);

    // 5. CreateContainer, the check from the pull record and decision cache.
    println!("5. CreateContainer, {} calls each...", opts.creates);
    let allowed =
        "criguard_decisions_total{operation=\"create\",verdict=\"allowed\",reason=\"signature\"";
    let allowed_before = daemon.metric(allowed);
    let creates = rt.block_on(async {
        let mut clients = [
            runtime_client(&direct).await,
            runtime_client(daemon.socket()).await,
        ];
        // A real sandbox, and a container named "bench" in it already.
        let logs = tempfile::tempdir().expect("a log directory for the pod");
        let pod = pod_config(logs.path());
        let sandbox_id = clients[0]
            .run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(pod.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect("RunPodSandbox on containerd")
            .into_inner()
            .pod_sandbox_id;
        let request = create_request(&sandbox_id, &pod, &image_id, &tag);
        let mut messages: [Option<String>; 2] = [None, None];
        let mut samples = [Vec::new(), Vec::new()];
        let warmup = (opts.creates / 10).clamp(1, 100);
        let mut done = 0;
        let mut round = 0;
        while done < warmup + opts.creates {
            let k = BLOCK.min(warmup + opts.creates - done);
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                for j in 0..k {
                    let start = Instant::now();
                    let answer = clients[side].create_container(request.clone()).await;
                    let took = start.elapsed();
                    let status =
                        answer.expect_err("the image has no command: the create must fail");
                    // The message names a fresh container ID each time.
                    let message = format!("{:?}", status.code());
                    if done + j == 0 {
                        println!("   containerd answers: {}", status.message());
                    }
                    match &messages[side] {
                        Some(first) => assert_eq!(first, &message),
                        None => messages[side] = Some(message),
                    }
                    if done + j >= warmup {
                        samples[side].push(took);
                    }
                }
            }
            done += k;
            round += 1;
        }
        assert_eq!(
            messages[0], messages[1],
            "criguard's answer differs from containerd's"
        );
        println!("   both answered {}", messages[0].as_deref().unwrap_or(""));
        let [a, b] = samples;
        [Samples(a), Samples(b)]
    });
    let allowed_creates = daemon.metric(allowed) - allowed_before;
    let create_audits = last_audits(&daemon, "create", opts.creates);
    assert_allowed(&create_audits, true);
    let cold_phases = ["resolve_ms", "signatures_ms", "check_ms"]
        .map(|field| audit_times(&cold_audits, field).median());
    let cold_phases_line = format!(
        "criguard's cold decisions, median: resolving the tag {:.2} ms, reading the signatures \
         {:.2} ms, checking them {:.2} ms.",
        cold_phases[0] / 1000.0,
        cold_phases[1] / 1000.0,
        cold_phases[2] / 1000.0
    );
    let checks = [
        check_times(&cold_audits),
        check_times(&warm_audits),
        check_times(&create_audits),
    ];
    let record_hits =
        daemon.metric("criguard_cache_lookups_total{cache=\"pull-record\",result=\"hit\"");
    let warmup_creates = (opts.creates / 10).clamp(1, 100);
    assert_eq!(
        allowed_creates as usize,
        opts.creates + warmup_creates,
        "creates through criguard were not allowed by a signature decision:\n{}",
        daemon.metrics()
    );
    assert!(
        record_hits as usize >= opts.creates,
        "pull record missed:\n{}",
        daemon.metrics()
    );
    let scaled = (opts.scale_pulls > 0).then(|| scale(&rt, &opts, &setup, &key, &direct, &config));
    let load_after = load_average();

    // The table.
    let us = |x: f64| format!("{x:.0}");
    let ms = |x: f64| format!("{:.2}", x / 1000.0);
    let dus = |x: f64| format!("{x:+.0}");
    let dms = |x: f64| format!("{:+.2}", x / 1000.0);
    let mut t = String::from(TABLE_HEAD);
    t.push_str(&pass.rows);
    t.push_str(&format!(
        "| cold signed pull (decision not cached; running daemon), median of {} (ms) | {} | {} | {} | |\n",
        opts.pulls,
        ms(cold_direct.median()),
        ms(cold_through.median()),
        dms(cold_through.median() - cold_direct.median()),
    ));
    t.push_str(&format!(
        "| first pull by a freshly started daemon (registry clients built), median of {} (ms) | {} | {} | {} | |\n",
        opts.pulls,
        ms(cold_direct.median()),
        ms(first_contact.median()),
        dms(first_contact.median() - cold_direct.median()),
    ));
    t.push_str(&format!(
        "| skopeo 1.18 copy to dir:, `--insecure-policy` vs `--policy`, median of {} (ms) | {} | {} \
         | {} (containers/image's verify cost) | compare with the cold pull's added time |\n",
        opts.pulls,
        ms(skopeo_insecure.median()),
        ms(skopeo_policy.median()),
        dms(skopeo_policy.median() - skopeo_insecure.median()),
    ));
    t.push_str(&format!(
        "| warm second pull (decision cache hit), median of {} (ms) | {} | {} | {} | < 1 ms |\n",
        opts.pulls,
        ms(warm_direct.median()),
        ms(warm_through.median()),
        dms(warm_through.median() - warm_direct.median()),
    ));
    t.push_str(&format!(
        "| CreateContainer (warm cache; refused by containerd), median of {} (µs) | {} | {} | \
         {} µs | < 1 ms |\n",
        opts.creates,
        us(creates[0].median()),
        us(creates[1].median()),
        dus(creates[1].median() - creates[0].median()),
    ));
    for extra in [&remembered, &scaled].into_iter().flatten() {
        t.push_str(&extra.rows);
    }
    t.push_str(&format!(
        "\nadded time of a cold signed pull through criguard (through − direct): {} ms; \
         skopeo's verify cost (policy − insecure): {} ms.\n\
         criguard's own decision time (its audit lines' elapsed_ms), median: cold pull {} ms, \
         warm pull {} µs, create {} µs.\n\
         {cold_phases_line}\n\
         {} CPUs; load average {load_before} before, {load_after} after.\n",
        dms(cold_through.median() - cold_direct.median()),
        dms(skopeo_policy.median() - skopeo_insecure.median()),
        ms(checks[0].median()),
        us(checks[1].median()),
        us(checks[2].median()),
        num_cpus(),
    ));

    let report = json!({
        "options": {
            "calls": opts.calls, "load_calls": opts.load_calls, "clients": opts.clients,
            "pulls": opts.pulls, "creates": opts.creates,
        },
        "cpus": num_cpus(),
        "load_average": {"before": load_before, "after": load_after},
        "passthrough": pass.json,
        "cold_pull": {"direct": cold_direct.json(), "through": cold_through.json()},
        "first_contact_pull": first_contact.json(),
        "skopeo_copy": {"insecure_policy": skopeo_insecure.json(), "policy": skopeo_policy.json()},
        "warm_pull": {"direct": warm_direct.json(), "through": warm_through.json()},
        "create_container": {"direct": creates[0].json(), "through": creates[1].json()},
        "scale": scaled.map(|s| s.json),
        "criguard_decision_time": {
            "cold_pull": checks[0].json(),
            "warm_pull": checks[1].json(),
            "create": checks[2].json(),
        },
    });
    write_report(&opts, &t, &report);
    drop(daemon);
    drop(containerd);
}

const TABLE_HEAD: &str = "| measurement | direct to containerd | through criguard | added by criguard | goal |\n\
                          | --- | ---: | ---: | ---: | --- |\n";

/// "met" or "not met", as the report prints a goal.
fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**not met**" }
}

/// CPU time (user + system) process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/PID/stat");
    // The command name may hold spaces; the fields counted from after it.
    let after = &stat[stat.rfind(')').expect("a /proc/PID/stat line") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = run_with_timeout(
            std::process::Command::new("getconf").arg("CLK_TCK"),
            Duration::from_secs(10),
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("getconf CLK_TCK")
    })
}

/// Sections 1 and 2, as table rows (goals judged) and JSON.
struct Passthrough {
    rows: String,
    json: Value,
}

/// Section 1, sequential calls of each kind, direct and through criguard in
/// alternating blocks, with criguard's CPU time over them; section 2, the
/// concurrent load, with criguard's and containerd's CPU time and
/// criguard's memory.
fn passthrough(
    rt: &Runtime,
    opts: &Options,
    direct: &Path,
    daemon: &CriguardDaemon,
    containerd: &Containerd,
    image: &str,
) -> Passthrough {
    let criguard_pid = daemon.pid().expect("the daemon runs");
    let containerd_pid = containerd.pid().expect("containerd runs");
    println!(
        "\n1. pass-through latency, {} sequential calls each...",
        opts.calls
    );
    let mut rows = String::new();
    let mut json = serde_json::Map::new();
    let mut all_met = true;
    // The floor: the same calls through a relay that only copies bytes.
    let relay_dir = tempfile::tempdir().expect("temp dir for the relay");
    let relay = ByteRelay::start(&relay_dir.path().join("relay.sock"), direct);
    for (name, call) in [
        ("ImageStatus", Call::ImageStatus),
        ("ListImages", Call::ListImages),
        ("ListContainers", Call::ListContainers),
    ] {
        let cpu_before = cpu_time(criguard_pid);
        let [d, c, r] = rt.block_on(sequential(
            [direct, daemon.socket(), relay.socket()],
            call,
            image,
            opts.calls,
        ));
        // Warm-up calls included: criguard is busy only with its own side.
        let warmup = (opts.calls / 10).clamp(1, 500);
        let cpu_per_call = (cpu_time(criguard_pid) - cpu_before).as_secs_f64() * 1e6
            / (opts.calls + warmup) as f64;
        let p50 = c.median() - d.median();
        let p99 = c.percentile(0.99) - d.percentile(0.99);
        let relay_p50 = r.median() - d.median();
        let relay_p99 = r.percentile(0.99) - d.percentile(0.99);
        let met = p50 <= 30.0 && p99 <= 100.0;
        all_met &= met;
        rows.push_str(&format!(
            "| {name}, {} sequential calls: p50 / p99 / mean (µs) | {:.0} / {:.0} / {:.0} | \
             {:.0} / {:.0} / {:.0} | p50 {p50:+.0}, p99 {p99:+.0} µs; criguard CPU {cpu_per_call:.0} µs/call; \
             raw byte relay p50 {relay_p50:+.0}, p99 {relay_p99:+.0} µs \
             | p50 ≤ +30, p99 ≤ +100 µs: {} |\n",
            opts.calls,
            d.median(),
            d.percentile(0.99),
            d.mean(),
            c.median(),
            c.percentile(0.99),
            c.mean(),
            verdict(met),
        ));
        json.insert(
            name.to_owned(),
            json!({
                "direct": d.json(), "through": c.json(), "raw_relay": r.json(),
                "added_p50_us": p50, "added_p99_us": p99,
                "raw_relay_added_p50_us": relay_p50, "raw_relay_added_p99_us": relay_p99,
                "criguard_cpu_us_per_call": cpu_per_call, "met": met,
            }),
        );
    }

    println!(
        "2. throughput, {} ImageStatus calls from {} clients, twice each...",
        opts.load_calls, opts.clients
    );
    let (rss_before, _) = daemon.memory_kib();
    rt.block_on(load(
        daemon.socket(),
        opts.clients,
        opts.clients * 10,
        image,
    ));
    rt.block_on(load(direct, opts.clients, opts.clients * 10, image));
    let mut time = [Duration::ZERO; 2];
    let mut criguard_cpu = Duration::ZERO;
    let mut containerd_cpu = [Duration::ZERO; 2];
    for round in 0..2 {
        for side in if round == 0 { [0, 1] } else { [1, 0] } {
            let socket = if side == 1 { daemon.socket() } else { direct };
            let before = (cpu_time(criguard_pid), cpu_time(containerd_pid));
            time[side] += rt.block_on(load(socket, opts.clients, opts.load_calls, image));
            containerd_cpu[side] += cpu_time(containerd_pid) - before.1;
            if side == 1 {
                criguard_cpu += cpu_time(criguard_pid) - before.0;
            }
        }
    }
    let (rss_after, hwm_after) = daemon.memory_kib();
    let calls = 2 * opts.load_calls;
    let rate = |time: Duration| calls as f64 / time.as_secs_f64();
    let per_call = |cpu: Duration| cpu.as_secs_f64() * 1e6 / calls as f64;
    let (direct_rate, through_rate) = (rate(time[0]), rate(time[1]));
    let ratio = through_rate / direct_rate;
    all_met &= ratio >= 0.9;
    rows.push_str(&format!(
        "| ImageStatus throughput, {} clients, 2 × {} calls (calls/s) | {direct_rate:.0} | \
         {through_rate:.0} | ratio {ratio:.2}× | ≥ 0.9× direct: {} |\n",
        opts.clients,
        opts.load_calls,
        verdict(ratio >= 0.9),
    ));
    rows.push_str(&format!(
        "| CPU per call under that load (µs): criguard; containerd | {:.0} (containerd) | \
         {:.0} + {:.0} (criguard + containerd) | criguard {:+.0} µs of CPU per forwarded call | reported |\n",
        per_call(containerd_cpu[0]),
        per_call(criguard_cpu),
        per_call(containerd_cpu[1]),
        per_call(criguard_cpu),
    ));
    rows.push_str(&format!(
        "| criguard RSS before / after the load, peak (VmHWM) (MiB) | | {:.1} / {:.1}, peak {:.1} \
         | | peak < 40 MB: {} |\n",
        mib(rss_before),
        mib(rss_after),
        mib(hwm_after),
        verdict(hwm_after * 1024 < 40_000_000),
    ));
    rows.push_str(&format!(
        "| pass-through goals together | | | | {} |\n",
        verdict(all_met)
    ));
    json.insert(
        "throughput".to_owned(),
        json!({
            "clients": opts.clients,
            "calls": calls,
            "direct_calls_per_s": direct_rate,
            "through_calls_per_s": through_rate,
            "ratio": ratio,
            "met": ratio >= 0.9,
            "criguard_cpu_us_per_call": per_call(criguard_cpu),
            "containerd_cpu_us_per_call": {"direct": per_call(containerd_cpu[0]), "through": per_call(containerd_cpu[1])},
        }),
    );
    json.insert(
        "memory_kib".to_owned(),
        json!({"rss_before_load": rss_before, "rss_after_load": rss_after, "hwm_after_load": hwm_after}),
    );
    Passthrough {
        rows,
        json: Value::Object(json),
    }
}

/// Sections 6 and 7, each as table rows and JSON.
struct Section {
    rows: String,
    json: Value,
}

/// Section 6: `opts.scale_pulls` concurrent cold pulls of `opts.scale_images`
/// distinct cosign-signed images, on one connection as the kubelet makes
/// them with parallel image pulls; containerd alone and through a freshly
/// started criguard (empty caches), alternating, the images removed from
/// containerd before every round. Counts criguard's manifest resolutions
/// and signature reads from its metrics (the test harness's registry keeps
/// no access log).
#[allow(clippy::too_many_arguments)]
fn scale(
    rt: &Runtime,
    opts: &Options,
    setup: &RegistrySetup,
    key: &Path,
    direct: &Path,
    config: &str,
) -> Section {
    let reg = &setup.registry;
    println!(
        "6. {} concurrent cold pulls of {} signed images, {} rounds each...",
        opts.scale_pulls, opts.scale_images, opts.scale_rounds
    );
    let images: Vec<Pushed> = (0..opts.scale_images)
        .map(|i| {
            let pushed = push_test_image(
                reg,
                &format!("bench/scale-{i}"),
                "v1",
                &format!("scale {i}"),
            );
            cosign_sign(key, PASSWORD, &pushed.by_digest());
            pushed
        })
        .collect();
    let tags: Vec<String> = images.iter().map(Pushed::by_tag).collect();
    let remove_all = || {
        for tag in &tags {
            rt.block_on(async {
                let mut client = image_client(direct).await;
                let spec = Some(cri::image_spec(tag));
                let status = client
                    .image_status(v1::ImageStatusRequest {
                        image: spec.clone(),
                        verbose: false,
                    })
                    .await
                    .expect("ImageStatus");
                if let Some(image) = status.into_inner().image {
                    client
                        .remove_image(v1::RemoveImageRequest {
                            image: Some(cri::image_spec(&image.id)),
                        })
                        .await
                        .expect("RemoveImage");
                }
            });
        }
    };
    let pull_all = |socket: &Path| -> Duration {
        rt.block_on(async {
            let channel = cri::connect(socket).await;
            cri::runtime_client(channel.clone())
                .version(v1::VersionRequest::default())
                .await
                .expect("Version");
            let start = Instant::now();
            let mut pulls = JoinSet::new();
            for i in 0..opts.scale_pulls {
                let mut client = cri::image_client(channel.clone());
                let tag = tags[i % tags.len()].clone();
                pulls.spawn(async move {
                    client
                        .pull_image(pull_request(&tag))
                        .await
                        .unwrap_or_else(|e| panic!("pulling {tag}: {e:?}"))
                        .into_inner()
                        .image_ref
                });
            }
            while let Some(pulled) = pulls.join_next().await {
                assert!(pulled.expect("a pull task").starts_with("sha256:"));
            }
            start.elapsed()
        })
    };
    let mut direct_times = Vec::new();
    let mut through_times = Vec::new();
    let mut most = (0.0f64, 0.0f64);
    for round in 0..opts.scale_rounds {
        for through in if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            remove_all();
            if !through {
                direct_times.push(pull_all(direct));
                continue;
            }
            let daemon = CriguardDaemon::start(&opts.criguard, direct, config);
            through_times.push(pull_all(daemon.socket()));
            let resolutions = daemon.metric("criguard_registry_fetches_total{fetch=\"resolve\"");
            let signature_reads =
                daemon.metric("criguard_registry_fetches_total{fetch=\"signatures\"");
            let allowed = daemon.metric(
                "criguard_decisions_total{operation=\"pull\",verdict=\"allowed\",reason=\"signature\"",
            );
            assert_eq!(
                allowed as usize,
                opts.scale_pulls,
                "not every pull was allowed by a signature decision:\n{}",
                daemon.metrics()
            );
            most = (most.0.max(resolutions), most.1.max(signature_reads));
        }
    }
    remove_all();
    let (d, c) = (Samples(direct_times), Samples(through_times));
    let added = c.median() / d.median() - 1.0;
    let n = opts.scale_images as f64;
    let once = most.0 <= n && most.1 <= n;
    let mut rows = String::new();
    rows.push_str(&format!(
        "| {} concurrent cold pulls of {} signed images, median of {} rounds (ms) | {:.1} | {:.1} \
         | {:+.1} % | ≤ +10 %: {} |\n",
        opts.scale_pulls,
        opts.scale_images,
        opts.scale_rounds,
        d.median() / 1000.0,
        c.median() / 1000.0,
        added * 100.0,
        verdict(added <= 0.10),
    ));
    rows.push_str(&format!(
        "| criguard's manifest resolutions / signature reads in one round (its metrics), at most \
         | | {:.0} / {:.0} for {} images, {} pulls | | ≤ 1 each per image: {} |\n",
        most.0,
        most.1,
        opts.scale_images,
        opts.scale_pulls,
        verdict(once),
    ));
    Section {
        rows,
        json: json!({
            "pulls": opts.scale_pulls, "images": opts.scale_images, "rounds": opts.scale_rounds,
            "direct": d.json(), "through": c.json(), "added_fraction": added,
            "resolutions_max": most.0, "signature_reads_max": most.1,
            "met": added <= 0.10 && once,
        }),
    }
}

/// Section 7: `opts.decisions` distinct pull decisions (the signed image under
/// as many tags, pulled through `daemon`, 16 at a time), then the daemon's
/// memory: after sections 1 and 2 it has also forwarded their calls.
fn memory(
    rt: &Runtime,
    opts: &Options,
    setup: &RegistrySetup,
    signed: &Pushed,
    daemon: &CriguardDaemon,
) -> Section {
    println!(
        "7. {} distinct pull decisions, then criguard's memory...",
        opts.decisions
    );
    let reg = &setup.registry;
    let manifest = reg.get_manifest(&signed.repo, &signed.tag);
    let media_type = manifest
        .header("content-type")
        .expect("the manifest's Content-Type")
        .to_owned();
    let tags: Vec<String> = (0..opts.decisions)
        .map(|i| {
            let tag = format!("m{i}");
            let put = reg.request(
                "PUT",
                &format!("/v2/{}/manifests/{tag}", signed.repo),
                &[("Content-Type", &media_type)],
                &manifest.body,
            );
            assert_eq!(put.status, 201, "tagging {tag}");
            format!("{}/{}:{tag}", signed.host, signed.repo)
        })
        .collect();
    let decided =
        "criguard_decisions_total{operation=\"pull\",verdict=\"allowed\",reason=\"signature\"";
    let before = daemon.metric(decided);
    let started = Instant::now();
    rt.block_on(async {
        let channel = cri::connect(daemon.socket()).await;
        let mut pulls = JoinSet::new();
        for chunk in tags.chunks(tags.len().div_ceil(16)) {
            let mut client = cri::image_client(channel.clone());
            let chunk = chunk.to_vec();
            pulls.spawn(async move {
                for tag in chunk {
                    client
                        .pull_image(pull_request(&tag))
                        .await
                        .unwrap_or_else(|e| panic!("pulling {tag}: {e:?}"));
                }
            });
        }
        while let Some(done) = pulls.join_next().await {
            done.expect("a pull task");
        }
    });
    let took = started.elapsed();
    let decisions = daemon.metric(decided) - before;
    assert_eq!(decisions as usize, opts.decisions, "{}", daemon.metrics());
    let (rss, hwm) = daemon.memory_kib();
    let met = rss * 1024 < 40_000_000;
    let rows = format!(
        "| criguard RSS / peak after the calls above and {} distinct pull decisions ({:.1} s) (MiB) \
         | | {:.1} / {:.1} | | RSS < 40 MB: {} |\n",
        opts.decisions,
        took.as_secs_f64(),
        mib(rss),
        mib(hwm),
        verdict(met),
    );
    Section {
        rows,
        json: json!({"decisions": opts.decisions, "rss_kib": rss, "hwm_kib": hwm, "seconds": took.as_secs_f64(), "met": met}),
    }
}

/// Writes OUT_DIR/summary.md and OUT_DIR/serve.json and prints the table.
fn write_report(opts: &Options, table: &str, report: &Value) {
    let json_text = serde_json::to_string_pretty(report).expect("serialising the report");
    fs::write(opts.out.join("summary.md"), table).expect("writing summary.md");
    fs::write(opts.out.join("serve.json"), &json_text).expect("writing serve.json");
    println!("\n{table}");
    if opts.json {
        println!("{json_text}");
    }
    println!(
        "written: {} and {}",
        opts.out.join("summary.md").display(),
        opts.out.join("serve.json").display()
    );
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(0, usize::from)
}
