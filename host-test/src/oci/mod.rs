//! OCI wasm image: build (reproducibly), push and pull. (Being written.)

/// Arguments of the `oci` subcommand.
#[derive(Debug, clap::Args)]
pub struct OciCommand {}

/// Runs the `oci` subcommand; returns the process exit code.
pub fn run(_cmd: OciCommand) -> anyhow::Result<i32> {
    anyhow::bail!("oci: not built yet")
}
