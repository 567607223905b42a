//! The set-up and driver behind `bench/verify.sh`: whole-process wall time
//! of deciding one pull, side by side, for
//!
//! - `criguard verify` (the binary passed in, a release build),
//! - `cosign verify --key` (cosign 2.5, no transparency log), and
//! - `skopeo copy --policy` to `dir:` (skopeo 1.18, i.e. containers/image
//!   5.34: what CRI-O runs on a pull),
//!
//! on the same image, signed by real cosign, in a registry on 127.0.0.1.
//! With `--gpg` the image is GPG-signed by bookworm's skopeo 1.9.3 into a
//! file lookaside store instead, the policy is `signedBy` an RSA-3072 key,
//! and skopeo 1.9.3 (containers/image 5.23 with gpgme) takes cosign's place.
//! hyperfine times all three in one run, so they share the machine's state;
//! this program then prints hyperfine's table and criguard's time as a
//! fraction of the faster peer's.
//!
//! Before timing, each command is run once on the signed image (it must
//! accept) and once on an unsigned one (it must refuse), so the figures are
//! known to be of a real signature check, not of a fast failure or of a
//! policy that was not applied. No assertion is made about time: the ratio
//! is reported, and what it means is for the reader of docs/benchmarks.md.
//!
//! Usage: `bench_verify PATH/TO/criguard OUT_DIR [--runs N] [--warmup N] [--gpg]`
//! (bench/verify.sh builds criguard and passes both). Needs hyperfine,
//! Debian's docker-registry and the peer tools.

#![allow(clippy::expect_used, clippy::panic)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use criguard_bench::{load_average, version};
use criguard_testutil::{
    GpgHome, PeerTools, RegistrySetup, cosign_generate_key_pair, cosign_sign, criguard_binary,
    lookaside_registries_d, push_test_image, run_with_timeout, skopeo_sign_gpg,
};
use serde_json::Value;

const PASSWORD: &str = "bench-password";

/// One timed command: its name in the table, program and arguments.
struct Bench {
    name: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
}

impl Bench {
    /// The command, in the environment the peers get in the tests.
    fn command(&self, setup: &RegistrySetup) -> Command {
        let mut cmd = setup.command(&self.program);
        cmd.args(&self.args);
        cmd
    }

    /// The command line as hyperfine reads it with `--shell=none`: split
    /// like a POSIX shell would, so quote what needs quoting.
    fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn shell_quote(arg: &OsStr) -> String {
    let s = arg.to_str().expect("command arguments are UTF-8");
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What is signed and which peer stands beside skopeo 1.18: cosign for a
/// cosign-signed image, or bookworm's skopeo 1.9.3 (gpgme) for a GPG
/// simple-signing one.
enum Scenario {
    Cosign { public: PathBuf },
    Gpg,
}

/// The three commands for `image` (`HOST/REPO:TAG`); skopeo writes the
/// image to `dest`, which it empties and refills on every run.
fn commands(
    setup: &RegistrySetup,
    criguard: &Path,
    scenario: &Scenario,
    registries_d: &Path,
    image: &str,
    dest: &Path,
) -> [Bench; 3] {
    let policy = setup.path("policy.json");
    let os = |s: &str| OsString::from(s);
    let skopeo_args = |program: PathBuf, name: &'static str| Bench {
        name,
        program,
        args: vec![
            os("--policy"),
            policy.clone().into(),
            os("--registries.d"),
            registries_d.into(),
            os("copy"),
            os("--src-tls-verify=false"),
            os(&format!("docker://{image}")),
            os(&format!("dir:{}", dest.display())),
        ],
    };
    let peer = match scenario {
        Scenario::Cosign { public } => Bench {
            name: "cosign verify",
            program: PeerTools::get().cosign(),
            args: vec![
                os("verify"),
                os("--key"),
                public.into(),
                os("--insecure-ignore-tlog=true"),
                os("--allow-http-registry"),
                os("--allow-insecure-registry"),
                os(image),
            ],
        },
        Scenario::Gpg => skopeo_args(
            PeerTools::get().skopeo_bookworm(),
            "skopeo 1.9.3 copy (gpgme)",
        ),
    };
    [
        Bench {
            name: "criguard verify",
            program: criguard.to_path_buf(),
            args: vec![
                os("verify"),
                os("--policy"),
                policy.clone().into(),
                os("--registries.d"),
                registries_d.into(),
                os("--registries-conf"),
                setup.registries_conf.clone().into(),
                os(image),
            ],
        },
        peer,
        skopeo_args(PeerTools::get().skopeo(), "skopeo copy (CRI-O's check)"),
    ]
}

/// Runs `bench` once and checks it `accepts` (exit 0) or refuses (any
/// other exit) as expected; prints what it said, briefly.
fn check_once(setup: &RegistrySetup, bench: &Bench, image: &str, accepts: bool) {
    let mut cmd = bench.command(setup);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let first = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    println!(
        "  {:<28} {image}: exit {} ({})",
        bench.name,
        out.status.code().unwrap_or(-1),
        first.chars().take(110).collect::<String>()
    );
    assert_eq!(
        out.status.success(),
        accepts,
        "{} {} {image} when it should {}:\n{said}",
        bench.name,
        if accepts { "refused" } else { "accepted" },
        if accepts { "accept" } else { "refuse" },
    );
}

/// hyperfine's figures for one command, in milliseconds.
struct Figures {
    name: String,
    mean: f64,
    stddev: f64,
    median: f64,
    min: f64,
    max: f64,
    user: f64,
    system: f64,
}

fn figures(json: &Value) -> Vec<Figures> {
    let ms = |r: &Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN) * 1000.0;
    json["results"]
        .as_array()
        .expect("hyperfine JSON has results")
        .iter()
        .map(|r| Figures {
            name: r["command"].as_str().unwrap_or("?").to_string(),
            mean: ms(r, "mean"),
            stddev: ms(r, "stddev"),
            median: ms(r, "median"),
            min: ms(r, "min"),
            max: ms(r, "max"),
            user: ms(r, "user"),
            system: ms(r, "system"),
        })
        .collect()
}

struct Options {
    criguard: PathBuf,
    out: PathBuf,
    runs: u32,
    warmup: u32,
    /// GPG simple signing instead of cosign.
    gpg: bool,
}

fn options() -> Options {
    let mut args = std::env::args_os().skip(1);
    let criguard = criguard_binary(&mut args);
    let out = PathBuf::from(
        args.next()
            .expect("usage: bench_verify CRIGUARD OUT_DIR [...]"),
    );
    let (mut runs, mut warmup, mut gpg) = (30, 3, false);
    while let Some(flag) = args.next() {
        if flag == "--gpg" {
            gpg = true;
            continue;
        }
        let value = args
            .next()
            .and_then(|v| v.to_str()?.parse().ok())
            .unwrap_or_else(|| panic!("{flag:?} needs a number"));
        match flag.to_str() {
            Some("--runs") => runs = value,
            Some("--warmup") => warmup = value,
            _ => panic!("unknown option {flag:?}: --runs N, --warmup N, --gpg"),
        }
    }
    Options {
        criguard,
        out,
        runs,
        warmup,
        gpg,
    }
}

fn main() {
    let opts = options();
    fs::create_dir_all(&opts.out).expect("creating the output dir");
    let setup = RegistrySetup::start("criguard-bench-");
    let reg = &setup.registry;
    println!(
        "registry: docker-registry (pid {}) on {}",
        reg.pid().expect("the registry is running"),
        reg.host()
    );
    let unsigned = push_test_image(reg, "bench/unsigned", "v1", "unsigned image");
    // Kept alive to the end: the GPG home's agent is stopped on drop.
    let mut gpg_home = None;
    let (scenario, registries_d, signed) = if opts.gpg {
        let gpg = GpgHome::new();
        let fingerprint = gpg.generate_key("bench <bench@example.com>", "rsa3072", "sign", "never");
        let lookaside = setup.path("lookaside");
        let registries_d = lookaside_registries_d(
            &setup.path("gpg-registries.d"),
            &reg.host(),
            &format!("file://{}", lookaside.display()),
        );
        let source = push_test_image(reg, "bench/source", "v1", "benchmarked image");
        let signed = format!("{}/bench/app:v1", reg.host());
        skopeo_sign_gpg(&gpg, &fingerprint, &source.by_tag(), &signed, &lookaside);
        let keyring = setup.path("keyring.gpg");
        fs::write(&keyring, gpg.export_public(&[&fingerprint], false))
            .expect("writing the keyring");
        fs::write(
            setup.path("policy.json"),
            serde_json::json!({
                "default": [{"type": "reject"}],
                "transports": {"docker": {reg.host(): [
                    {"type": "signedBy", "keyType": "GPGKeys", "keyPath": keyring}
                ]}},
            })
            .to_string(),
        )
        .expect("writing the policy");
        println!("image: {signed} (signed by skopeo 1.9.3 with RSA-3072 key {fingerprint})");
        gpg_home = Some(gpg);
        (Scenario::Gpg, registries_d, signed)
    } else {
        let signed = push_test_image(reg, "bench/app", "v1", "benchmarked image");
        let keys = setup.path("keys");
        fs::create_dir(&keys).expect("creating the keys dir");
        let (key, public) = cosign_generate_key_pair(&keys, PASSWORD);
        cosign_sign(&key, PASSWORD, &signed.by_digest());
        setup.policy(&public);
        println!(
            "image: {} = {} (signed by cosign {})",
            signed.by_tag(),
            signed.digest,
            PeerTools::get().package_version("cosign")
        );
        (
            Scenario::Cosign { public },
            setup.registries_d.clone(),
            signed.by_tag(),
        )
    };

    let dest = setup.path("skopeo-dest");
    let scratch_dest = setup.path("skopeo-check");
    fs::create_dir(&dest).expect("creating skopeo's destination");
    println!("\nEach command once, signed image (must accept) and unsigned (must refuse):");
    let benches = commands(
        &setup,
        &opts.criguard,
        &scenario,
        &registries_d,
        &signed,
        &dest,
    );
    let refusing = commands(
        &setup,
        &opts.criguard,
        &scenario,
        &registries_d,
        &unsigned.by_tag(),
        &scratch_dest,
    );
    for (bench, refused) in benches.iter().zip(&refusing) {
        check_once(&setup, bench, &signed, true);
        check_once(&setup, refused, &unsigned.by_tag(), false);
    }

    let hyperfine = PathBuf::from("hyperfine");
    println!("\nVersions:");
    println!("  {}", version(&opts.criguard, "--version"));
    // Debian's cosign reports its version as "devel"; the package knows.
    let tools = PeerTools::get();
    match scenario {
        Scenario::Cosign { .. } => println!(
            "  cosign {} (Debian package)",
            tools.package_version("cosign")
        ),
        Scenario::Gpg => println!(
            "  {} (Debian bookworm)",
            version(&tools.skopeo_bookworm(), "--version")
        ),
    }
    println!(
        "  {} (Debian package {})",
        version(&tools.skopeo(), "--version"),
        tools.package_version("skopeo")
    );
    println!("  {}", version(&hyperfine, "--version"));

    let json_path = opts.out.join("verify.json");
    let md_path = opts.out.join("verify.md");
    // hyperfine runs the commands itself, without a shell (--shell=none:
    // no shell start-up in the figures), in the hermetic environment, which
    // its children inherit. cosign's own variables are cleared as the test
    // harness clears them (crates/testutil/src/cosign.rs).
    let mut cmd = setup.command(&hyperfine);
    cmd.env_remove("COSIGN_EXPERIMENTAL")
        .env_remove("SIGSTORE_REKOR_PUBLIC_KEY")
        .env_remove("SIGSTORE_ROOT_FILE")
        .args(["--shell=none", "--style", "basic"])
        .arg("--warmup")
        .arg(opts.warmup.to_string())
        .arg("--runs")
        .arg(opts.runs.to_string())
        .arg("--export-json")
        .arg(&json_path)
        .arg("--export-markdown")
        .arg(&md_path);
    for bench in &benches {
        cmd.arg("--command-name")
            .arg(bench.name)
            .arg(bench.command_line());
    }
    println!(
        "\n$ hyperfine --shell=none --warmup {} --runs {} ...",
        opts.warmup, opts.runs
    );
    for bench in &benches {
        println!("    {}", bench.command_line());
    }
    let load_before = load_average();
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .expect("cannot run hyperfine: install it (bench/verify.sh does)");
    assert!(status.success(), "hyperfine failed ({status})");
    let load_after = load_average();

    let json: Value = serde_json::from_slice(
        &fs::read(&json_path).unwrap_or_else(|e| panic!("{}: {e}", json_path.display())),
    )
    .expect("hyperfine wrote invalid JSON");
    let figures = figures(&json);
    let mut summary = String::new();
    summary.push_str(
        "| command | mean ± σ (ms) | median (ms) | min (ms) | max (ms) | user (ms) | system (ms) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for f in &figures {
        summary.push_str(&format!(
            "| {} | {:.1} ± {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            f.name, f.mean, f.stddev, f.median, f.min, f.max, f.user, f.system
        ));
    }
    let find = |name: &str| {
        figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no figures for {name}"))
    };
    let ours = find(benches[0].name);
    let (peer, skopeo) = (find(benches[1].name), find(benches[2].name));
    let faster = if peer.mean <= skopeo.mean {
        peer
    } else {
        skopeo
    };
    let ratio = ours.mean / faster.mean;
    let median_ratio = ours.median / peer.median.min(skopeo.median);
    summary.push_str(&format!(
        "\ncriguard / faster peer ({}), by mean: {:.3} ({:.1} ms / {:.1} ms); by median: {:.3}. \
         The sigstore issue's goal is at most 0.25: {}.\n",
        faster.name,
        ratio,
        ours.mean,
        faster.mean,
        median_ratio,
        if ratio <= 0.25 { "met" } else { "not met" }
    ));
    summary.push_str(&format!(
        "\n{} runs after {} warm-up runs each; load average {load_before} before, {load_after} after.\n",
        opts.runs, opts.warmup
    ));
    drop(gpg_home);
    let summary_path = opts.out.join("summary.md");
    fs::write(&summary_path, &summary).expect("writing the summary");
    println!("\n{summary}");
    println!(
        "hyperfine's own exports: {} and {}; this summary: {}",
        md_path.display(),
        json_path.display(),
        summary_path.display()
    );
}
