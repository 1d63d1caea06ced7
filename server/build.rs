//! Compiles `proto/sextant/v1/query.proto` with protox (a protobuf
//! compiler in Rust: no system `protoc`), then generates the messages and
//! the tonic service from its descriptors. The encoded descriptor set is
//! kept for gRPC reflection. The server binary gets the server side only;
//! the client side goes to `client/` for the integration tests.

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
    tonic_prost_build::configure()
        .build_client(false)
        .build_transport(false)
        .compile_fds(fds.clone())?;
    let client = out.join("client");
    std::fs::create_dir_all(&client)?;
    tonic_prost_build::configure()
        .build_server(false)
        .out_dir(&client)
        .compile_fds(fds)?;
    Ok(())
}
