//! Generates the CRI test client (and server stubs) from the upstream CRI v1
//! definition in the team's shared folder. The .proto is read in place:
//! policy forbids copying it into the repository, and a test client built
//! from the real upstream file checks our own hand-written messages against
//! it. protox compiles it in Rust, so no `protoc` is needed.

use std::env;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    println!("cargo:rerun-if-env-changed=CRIGUARD_SHARED");
    let shared = match env::var_os("CRIGUARD_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let manifest = env::var_os("CARGO_MANIFEST_DIR")
                .map(PathBuf::from)
                .unwrap_or_default();
            manifest.join("../../../shared")
        }
    };
    let dir = shared.join("cri-api");
    let proto = dir.join("api.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    if !proto.is_file() {
        eprintln!(
            "error: {} is missing: ../shared (the team's shared fixtures) must sit beside the \
             repository, or CRIGUARD_SHARED must point at it",
            proto.display()
        );
        return ExitCode::FAILURE;
    }
    let fds = match protox::compile(["api.proto"], [&dir]) {
        Ok(fds) => fds,
        Err(e) => {
            eprintln!("error: compiling {}: {e:?}", proto.display());
            return ExitCode::FAILURE;
        }
    };
    let generated = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // FakeRuntime-style servers implement only the calls a test needs.
        .generate_default_stubs(true)
        .compile_fds(fds);
    if let Err(e) = generated {
        eprintln!(
            "error: generating the CRI client from {}: {e}",
            proto.display()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
