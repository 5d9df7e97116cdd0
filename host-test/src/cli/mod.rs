//! Subcommands of the binary and what they share.

pub mod bench;
pub mod check;
pub mod demo;
pub mod replay;

use anyhow::{Context as _, Result};
use json_sanitizer_host::{load_module, plugin_module, Clock, Host, Vm};
use std::path::{Path, PathBuf};
use wasmtime::Module;

/// An error chain on one line (the CLI's stderr contract).
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The plugin named by `--plugin`, else the workspace build (built if stale).
pub fn plugin(path: Option<&Path>) -> Result<Module> {
    match path {
        Some(p) => load_module(p),
        None => plugin_module(),
    }
}

/// The configuration file named by `--config`, else `{}` (all defaults).
pub fn config(path: Option<&Path>) -> Result<Vec<u8>> {
    match path {
        Some(p) => {
            std::fs::read(p).with_context(|| format!("reading configuration {}", p.display()))
        }
        None => Ok(b"{}".to_vec()),
    }
}

/// A host with `workers` started VMs; a refused configuration becomes an
/// error naming the file.
pub fn start(
    module: Module,
    config: &[u8],
    config_name: &str,
    clock: Clock,
    workers: usize,
) -> Result<(Host, Vec<Vm>)> {
    let host = Host::builder(module).config(config).clock(clock).build()?;
    let vms = host
        .start_vms(workers)
        .with_context(|| format!("configuration {config_name}"))?;
    Ok((host, vms))
}

/// `--plugin` and `--config` as the `check` and `replay` commands take them:
/// a host with `workers` started VMs, errors naming the configuration file.
pub fn start_from_args(
    plugin_path: Option<&Path>,
    config_path: Option<&Path>,
    clock: Clock,
    workers: usize,
) -> Result<(Host, Vec<Vm>)> {
    let module = plugin(plugin_path)?;
    let config = config(config_path)?;
    let name = config_path.map_or("{}".to_string(), |p| p.display().to_string());
    start(module, &config, &name, clock, workers)
}

/// The workspace's `examples/` directory.
pub fn examples_dir() -> PathBuf {
    json_sanitizer_host::engine::workspace_root().join("examples")
}
