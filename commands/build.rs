//! Compiles the KurrentDB-compatible gRPC definitions in `schema/proto/` into server stubs.
//! The `.proto` files are parsed in Rust (protox), so building needs no `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "schema/proto/shared.proto",
        "schema/proto/status.proto",
        "schema/proto/streams.proto",
        "schema/proto/serverfeatures.proto",
        "schema/proto/gossip.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["schema/proto"])?;
    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        // Event data as shared bytes: a read hands the ledger's buffer to the encoder uncopied.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
