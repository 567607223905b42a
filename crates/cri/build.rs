//! Generates the Rust types of `proto/cri.proto` and
//! `proto/containerd_images.proto` with protox, so building needs no
//! `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/cri.proto");
    println!("cargo:rerun-if-changed=proto/containerd_images.proto");
    let descriptors = protox::compile(["cri.proto", "containerd_images.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
