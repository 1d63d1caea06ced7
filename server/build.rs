//! Compiles `proto/sextant/v1/query.proto` with protox (a protobuf
//! compiler in Rust: no system `protoc`), then generates the messages and
//! the tonic service from its descriptors. The encoded descriptor set is
//! kept for gRPC reflection. Both sides are generated: the server serves
//! it, and the client is public for the CLI and the integration tests.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from("../proto");
    let file = proto_dir.join("sextant/v1/query.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&proto_dir])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("sextant_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
