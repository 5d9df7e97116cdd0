//! Runs the `oci` subcommand exactly as the binary parses it, for the OCI
//! test suites (shared so the CLI is driven one way everywhere).
// Each suite uses some of these helpers.
#![allow(dead_code)]

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

/// Whether the binary's parser accepts `json-sanitizer-host <args...>`
/// (`args` starts with `oci`), without running anything.
pub fn parses(args: &[&str]) -> Result<(), clap::Error> {
    Cli::try_parse_from(std::iter::once("json-sanitizer-host").chain(args.iter().copied()))
        .map(|_| ())
}

/// The `mediaType` of each layer of a manifest, in order: what tells a
/// reader which variant (Istio's compat layer or the wasm-artifact pair) it has.
pub fn layer_media_types(manifest: &[u8]) -> Vec<String> {
    let m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect()
}
