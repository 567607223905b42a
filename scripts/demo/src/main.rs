//! The registry half of `scripts/demo.sh`: criguard signing an image and
//! then judging three images against a sigstore policy, in a real registry
//! on 127.0.0.1. It prints every criguard command with its output, so a
//! reader sees the verdicts and the reasons, and exits 1 if any verdict (or
//! the reason for a rejection) is not the expected one: a demo that shows a
//! wrong verdict must not look like a success.
//!
//! Run through `scripts/demo.sh`, which builds criguard and passes its path:
//! `cargo run --release -p criguard-demo -- PATH/TO/criguard`.
//! Needs Debian's docker-registry and the peer tools (skopeo pushes the
//! images); everything it starts is stopped by PID when it ends.

#![allow(clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Output};
use std::time::Duration;

use criguard_testutil::image::{OCI_MANIFEST, upload_manifest};
use criguard_testutil::{
    Blob, Containerd, CriguardDaemon, RegistrySetup, cri, criguard_binary, push_test_image,
    run_with_timeout,
};

const PASSWORD: &str = "demo-password";

/// What `criguard verify` should say: exit 0, or exit 1 with a reason
/// containing the given text.
enum Expect {
    Allowed,
    Rejected(String),
}

struct Demo {
    setup: RegistrySetup,
    criguard: PathBuf,
    /// Verdicts that were not the expected ones, for the summary.
    failures: Vec<String>,
    checked: usize,
}

impl Demo {
    /// Shows `path` as `$DEMO/...` so commands stay readable; the header
    /// says what `$DEMO` is.
    fn show(&self, text: impl AsRef<OsStr>) -> String {
        let dir = self.setup.dir.path().display().to_string();
        text.as_ref().to_string_lossy().replace(&dir, "$DEMO")
    }

    /// Runs `criguard ARGS`, printing the command, its output and a non-zero
    /// exit status, as a terminal session would show them.
    fn criguard(&self, args: &[&OsStr]) -> Output {
        let mut cmd = self.setup.command(&self.criguard);
        cmd.args(args);
        let mut line = String::from("$ criguard");
        for arg in args {
            let _ = write!(line, " {}", self.show(arg));
        }
        println!("\n{line}");
        let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
        print!("{}", self.show(&*String::from_utf8_lossy(&out.stdout)));
        eprint!("{}", self.show(&*String::from_utf8_lossy(&out.stderr)));
        if !out.status.success() {
            println!("(exit status {})", out.status.code().unwrap_or(-1));
        }
        out
    }

    /// A setup step that must succeed for the demo to go on.
    fn step(&self, args: &[&OsStr]) {
        let out = self.criguard(args);
        assert!(
            out.status.success(),
            "criguard failed; the demo cannot go on"
        );
    }

    /// `criguard sign --key` of `image`, which must succeed.
    fn sign(&self, key: &Path, password: &Path, image: &str) {
        self.step(&[
            "sign".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--password-file".as_ref(),
            password.as_os_str(),
            "--registries-conf".as_ref(),
            self.setup.registries_conf.as_os_str(),
            image.as_ref(),
        ]);
    }

    /// `criguard verify` of `image`, checked against `expect`.
    fn verify(&mut self, what: &str, image: &str, expect: Expect) {
        println!("\n--- {what}");
        let s = &self.setup;
        let policy = s.path("policy.json");
        let args: [&OsStr; 8] = [
            "verify".as_ref(),
            "--policy".as_ref(),
            policy.as_os_str(),
            "--registries.d".as_ref(),
            s.registries_d.as_os_str(),
            "--registries-conf".as_ref(),
            s.registries_conf.as_os_str(),
            image.as_ref(),
        ];
        let out = self.criguard(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let code = out.status.code();
        let problem = match &expect {
            Expect::Allowed if code == Some(0) && stdout.starts_with("allowed: ") => None,
            Expect::Allowed => Some("expected ALLOWED (exit 0)".to_string()),
            Expect::Rejected(reason)
                if code == Some(1)
                    && stdout.starts_with("rejected: ")
                    && stdout.contains(reason.as_str()) =>
            {
                None
            }
            Expect::Rejected(reason) => {
                Some(format!("expected REJECTED (exit 1) because of {reason:?}"))
            }
        };
        self.checked += 1;
        match problem {
            None => println!(
                "=> as expected: {}",
                match expect {
                    Expect::Allowed => "ALLOWED",
                    Expect::Rejected(_) => "REJECTED",
                }
            ),
            Some(p) => {
                println!("=> NOT AS EXPECTED: {p}");
                self.failures.push(format!("{what}: {p}"));
            }
        }
    }
}

/// The node: containerd (Debian's, private dirs, the demo registry as its
/// http mirror) with `criguard serve` in front, and a CRI client doing
/// what the kubelet does.
fn node(demo: &mut Demo, key: &Path, password: &Path) {
    println!("\n== The node: criguard serve between the kubelet and containerd");
    let fresh = push_test_image(&demo.setup.registry, "demo/app", "v2", "the app, version 2");
    demo.sign(key, password, &fresh.by_tag());
    let host = demo.setup.registry.host();
    let containerd = Containerd::start(&[(&host, &host)]);
    println!(
        "containerd (pid {}) serves CRI on {}",
        containerd.pid().expect("containerd is running"),
        demo.show(containerd.socket())
    );
    let config = format!(
        "policy = \"{}\"\npolicy_dir = \"{}\"\nregistries_d = \"{}\"\nregistries_conf = \"{}\"\n",
        demo.setup.path("policy.json").display(),
        demo.setup.path("policies").display(),
        demo.setup.registries_d.display(),
        demo.setup.registries_conf.display()
    );
    let daemon = CriguardDaemon::start(&demo.criguard, containerd.socket(), &config);
    println!(
        "criguard serve (pid {}) listens on {}; the kubelet would be started with\n  \
         --container-runtime-endpoint=unix://{}",
        daemon.pid().expect("criguard is running"),
        demo.show(daemon.socket()),
        demo.show(daemon.socket())
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let pull = |image: &str| {
        runtime.block_on(async {
            let mut client = cri::image_client(cri::connect(daemon.socket()).await);
            let mut request = cri::pull_request(image);
            request.sandbox_config = Some(cri::v1::PodSandboxConfig {
                metadata: Some(cri::v1::PodSandboxMetadata {
                    name: "demo".to_owned(),
                    namespace: "default".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            });
            client
                .pull_image(request)
                .await
                .map(|r| r.into_inner().image_ref)
        })
    };
    let in_containerd = |image: &str| {
        runtime.block_on(async {
            let mut client = cri::image_client(cri::connect(containerd.socket()).await);
            client
                .image_status(cri::v1::ImageStatusRequest {
                    image: Some(cri::image_spec(image)),
                    verbose: false,
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().image)
        })
    };
    for (what, image, digest, allowed) in [
        (
            "6. kubelet pulls the signed image through criguard",
            fresh.by_tag(),
            fresh.digest.clone(),
            true,
        ),
        (
            "7. kubelet pulls the unsigned image through criguard",
            format!("{host}/demo/unsigned:v1"),
            String::new(),
            false,
        ),
        (
            "8. kubelet pulls the tampered tag through criguard",
            format!("{host}/demo/app:v1"),
            String::new(),
            false,
        ),
    ] {
        println!("\n--- {what}\nPullImage {{ image: {image:?}, namespace: \"default\" }}");
        let result = pull(&image);
        let problem = match (&result, allowed) {
            (Ok(image_ref), true) => {
                println!("=> image_ref {image_ref}");
                let pinned = format!("{host}/demo/app@{digest}");
                match in_containerd(&pinned) {
                    Some(found) => {
                        println!("containerd now has {:?}", found.repo_digests);
                        None
                    }
                    None => Some(format!("containerd has no {pinned}")),
                }
            }
            (Err(status), false) => {
                println!("=> gRPC {:?}: {}", status.code(), status.message());
                if status.code() == tonic::Code::Unknown
                    && status.message().starts_with("SignatureValidationFailed: ")
                    && in_containerd(&image).is_none()
                {
                    None
                } else {
                    Some("expected SignatureValidationFailed and no image in containerd".to_owned())
                }
            }
            (Ok(_), false) => Some("expected a refusal, the pull was allowed".to_owned()),
            (Err(status), true) => Some(format!("expected the pull to be allowed: {status}")),
        };
        demo.checked += 1;
        match problem {
            None => println!(
                "=> as expected: {}",
                if allowed { "PULLED" } else { "REFUSED" }
            ),
            Some(p) => {
                println!("=> NOT AS EXPECTED: {p}");
                demo.failures.push(format!("{what}: {p}"));
            }
        }
    }
    println!("\ncriguard's audit lines (JSON, one per decision):");
    for line in daemon.audit() {
        println!(
            "    {} {} {} {} {}",
            line["operation"], line["verdict"], line["image"], line["digest"], line["reason"]
        );
    }
    println!("\nfrom its /metrics:");
    for line in daemon
        .metrics()
        .lines()
        .filter(|l| l.starts_with("criguard_decisions_total"))
    {
        println!("    {line}");
    }
}

fn print_file(demo: &Demo, path: &Path) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("\n{}:", demo.show(path));
    for line in text.lines() {
        println!("    {}", demo.show(line));
    }
}

/// The tag a cosign signature of `digest` is stored under.
fn sig_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1) + ".sig"
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let criguard = criguard_binary(&mut args);
    let setup = RegistrySetup::start("criguard-demo-");
    let mut demo = Demo {
        setup,
        criguard,
        failures: Vec::new(),
        checked: 0,
    };
    let reg = &demo.setup.registry;
    let host = reg.host();
    println!("== A registry of our own");
    println!(
        "docker-registry (pid {}) listens on {host} only; its storage and every file \
         below are in $DEMO={}",
        reg.pid().expect("the registry is running"),
        demo.setup.dir.path().display()
    );
    // Two images with different content, so different digests; skopeo
    // pushes them, and the digests are checked against what is served.
    let signed = push_test_image(reg, "demo/app", "v1", "the app, version 1");
    let unsigned = push_test_image(reg, "demo/unsigned", "v1", "nobody signed this");
    println!("pushed {} = {}", signed.by_tag(), signed.digest);
    println!("pushed {} = {}", unsigned.by_tag(), unsigned.digest);

    println!("\n== Keys and a signature, made by criguard (cosign's formats)");
    let keys = demo.setup.path("keys");
    fs::create_dir(&keys).expect("creating the keys dir");
    let password = demo.setup.path("password");
    fs::write(&password, format!("{PASSWORD}\n")).expect("writing the password file");
    demo.step(&[
        "keygen".as_ref(),
        "--output-dir".as_ref(),
        keys.as_os_str(),
        "--password-file".as_ref(),
        password.as_os_str(),
    ]);
    let (key, public) = (keys.join("cosign.key"), keys.join("cosign.pub"));
    demo.sign(&key, &password, &signed.by_tag());

    println!("\n== What criguard reads: the policy, registries.d and registries.conf");
    let policy = demo.setup.policy(&public);
    print_file(&demo, &policy);
    let registries_d_file = demo.setup.registries_d.join("criguard-test.yaml");
    print_file(&demo, &registries_d_file);
    let registries_conf = demo.setup.registries_conf.clone();
    print_file(&demo, &registries_conf);

    println!("\n== Verdicts");
    demo.verify("1. the signed image", &signed.by_tag(), Expect::Allowed);
    demo.verify(
        "2. an unsigned image in the same registry",
        &unsigned.by_tag(),
        Expect::Rejected("A signature was required, but no signature exists".to_string()),
    );

    // Tampering, as an attacker with push rights would: move the signed
    // tag to other content. The signature covers the old digest only.
    let moved = push_test_image(
        &demo.setup.registry,
        "demo/app",
        "v1",
        "the app, with a backdoor",
    );
    println!(
        "\n(someone pushes other content as {}: the tag now names {})",
        moved.by_tag(),
        moved.digest
    );
    demo.verify(
        "3. tampered: the signed tag moved to other content",
        &moved.by_tag(),
        Expect::Rejected("A signature was required, but no signature exists".to_string()),
    );

    // And then copy the old signature to where a signature of the new
    // digest would be looked for: its payload still names the old digest.
    let sig = demo
        .setup
        .registry
        .get_manifest("demo/app", &sig_tag(&signed.digest));
    assert_eq!(sig.status, 200, "criguard sign stored no signature");
    upload_manifest(
        &demo.setup.registry,
        "demo/app",
        &sig_tag(&moved.digest),
        &Blob::new(OCI_MANIFEST, sig.body),
    );
    println!(
        "\n(someone copies the signature manifest {} to {})",
        sig_tag(&signed.digest),
        sig_tag(&moved.digest)
    );
    demo.verify(
        "4. tampered: the old signature transplanted onto the new digest",
        &moved.by_tag(),
        Expect::Rejected(format!(
            "Signature for digest {} does not match",
            signed.digest
        )),
    );
    demo.verify(
        "5. the content that was signed, by digest, is still allowed",
        &signed.by_digest(),
        Expect::Allowed,
    );

    node(&mut demo, &key, &password);

    println!();
    let failed = !demo.failures.is_empty();
    if failed {
        println!(
            "{} of {} verdicts were NOT the expected ones:",
            demo.failures.len(),
            demo.checked
        );
        for f in &demo.failures {
            println!("  - {f}");
        }
    } else {
        println!("All {} verdicts were the expected ones.", demo.checked);
    }
    // Stops the registry and removes $DEMO before the process exits.
    drop(demo);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
