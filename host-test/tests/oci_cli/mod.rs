//! Runs the `oci` subcommand exactly as the binary parses it, for the OCI
//! test suites (shared so the CLI is driven one way everywhere).

use clap::Parser;
use json_sanitizer_host::oci::{self, OciCommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Top,
}

#[derive(clap::Subcommand)]
enum Top {
    Oci(OciCommand),
}

/// `json-sanitizer-host <args...>` where `args` starts with `oci`.
pub fn run_cli(args: &[&str]) -> anyhow::Result<i32> {
    let cli =
        Cli::try_parse_from(std::iter::once("json-sanitizer-host").chain(args.iter().copied()))?;
    let Top::Oci(cmd) = cli.cmd;
    oci::run(cmd)
}
