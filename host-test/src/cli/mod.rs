//! Subcommands of the binary and what they share.

pub mod bench;
pub mod check;
pub mod demo;
pub mod replay;

use anyhow::{Context as _, Result};
use json_sanitizer_host::{load_module, plugin_module, Clock, Host, HostBuilder, Vm};
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

/// What is wrong with a request header as a client could send it, if
/// anything: a name that is not an RFC 9110 token (pseudo-headers have
/// their own options or fields), or CR, LF or NUL in the value, which no
/// HTTP codec lets through to Envoy's filters.
pub fn header_problem(name: &str, value: &str) -> Option<String> {
    if name.starts_with(':') {
        return Some(format!(
            "`{name}`: pseudo-headers are set by their own options (method, path, authority)"
        ));
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Some(format!("`{name}` is not a header name"));
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Some(format!("the value of `{name}` holds CR, LF or NUL"));
    }
    None
}

/// An origin-form path, as Envoy routes it.
pub fn parse_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') || text.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "`{text}` is not a request path (it starts with `/`, without spaces or control characters)"
        ));
    }
    Ok(text.to_string())
}

/// An HTTP method: an RFC 9110 token.
pub fn parse_method(text: &str) -> Result<String, String> {
    match header_problem(text, "") {
        None => Ok(text.to_string()),
        Some(_) => Err(format!("`{text}` is not an HTTP method")),
    }
}

/// A host, with a port or not.
pub fn parse_authority(text: &str) -> Result<String, String> {
    if text.is_empty() || text.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'/') {
        return Err(format!("`{text}` is not an authority (host or host:port)"));
    }
    Ok(text.to_string())
}

/// A `source.address` as Envoy sets it: an IP address, with a port or not
/// (`10.0.0.7:40000`, `[::1]:8080`, `10.0.0.7`).
pub fn parse_source_address(text: &str) -> Result<String, String> {
    let ok =
        text.parse::<std::net::SocketAddr>().is_ok() || text.parse::<std::net::IpAddr>().is_ok();
    if !ok {
        return Err(format!(
            "`{text}` is not an IP address with or without a port"
        ));
    }
    Ok(text.to_string())
}

/// Writes `lines` to stdout at once: a run that fails on a later input
/// prints nothing (the one-line error on stderr is its whole answer), and a
/// closed stdout is an error, not a panic.
pub fn print_all(lines: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(lines)?;
    out.flush()?;
    Ok(())
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
    start_with(Host::builder(module), config, config_name, clock, workers)
}

fn start_with(
    builder: HostBuilder,
    config: &[u8],
    config_name: &str,
    clock: Clock,
    workers: usize,
) -> Result<(Host, Vec<Vm>)> {
    let host = builder.config(config).clock(clock).build()?;
    let vms = host
        .start_vms(workers)
        .with_context(|| format!("configuration {config_name}"))?;
    Ok((host, vms))
}

/// The plugin, its configuration and how Envoy runs it, as the `check` and
/// `replay` commands take them.
#[derive(clap::Args)]
pub struct PluginArgs {
    /// Plugin `.wasm` (default: build the workspace plugin).
    #[arg(long, value_name = "W")]
    plugin: Option<PathBuf>,
    /// Plugin configuration JSON file (default: `{}`).
    #[arg(long, value_name = "F")]
    config: Option<PathBuf>,
    /// Run as an Envoy whose Wasm filter sets `allow_on_headers_stop_iteration`
    /// (what a configuration with `hold_headers` needs; without it such a
    /// configuration stalls every inspected request, as it would in Envoy).
    #[arg(long)]
    allow_on_headers_stop_iteration: bool,
}

impl PluginArgs {
    /// Says on stderr, once a run (`said`), why a request the plugin left
    /// paused got no answer: the one way the plugin pauses for good is
    /// `hold_headers` in a host that does not allow it.
    pub fn explain_pause(&self, what: &str, said: &mut bool) {
        if !*said && !self.allow_on_headers_stop_iteration {
            eprintln!(
                "json-sanitizer-host: note: {what}: the plugin left the request paused; a configuration with hold_headers needs --allow-on-headers-stop-iteration (Envoy's allow_on_headers_stop_iteration)"
            );
            *said = true;
        }
    }

    /// A host with `workers` started VMs, errors naming the configuration
    /// file.
    pub fn start(&self, clock: Clock, workers: usize) -> Result<(Host, Vec<Vm>)> {
        let module = plugin(self.plugin.as_deref())?;
        let config = config(self.config.as_deref())?;
        let name = self
            .config
            .as_deref()
            .map_or("{}".to_string(), |p| p.display().to_string());
        let builder = Host::builder(module)
            .allow_on_headers_stop_iteration(self.allow_on_headers_stop_iteration);
        start_with(builder, &config, &name, clock, workers)
    }
}

/// The workspace's `examples/` directory.
pub fn examples_dir() -> PathBuf {
    json_sanitizer_host::engine::workspace_root().join("examples")
}
