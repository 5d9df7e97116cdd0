//! Sends the same request through one VM of the plugin a given number of
//! times, and nothing else: a fixed workload for instruction counts of the
//! per-request path (headers + body + end, harness included).
//!
//! ```text
//! cargo build --release -p json-sanitizer-host --example requests
//! valgrind --tool=cachegrind --cache-sim=no --smc-check=all \
//!     target/release/examples/requests 1100
//! ```
//!
//! The difference between the counts for N + 1000 and N requests, divided by
//! 1000, is the cost of one. The body is the generated 1 KiB API body,
//! `--body TEXT` or `--body-file PATH` (sent in 64 KiB chunks), the plugin
//! configuration that of `bench` or `--config FILE`, the path `/bench`, and
//! `--header 'NAME: VALUE'` adds a header (`content-encoding: gzip` with a
//! gzip file as the body). The plugin is the workspace build (or
//! `JSON_SANITIZER_WASM`).

use anyhow::{bail, Context as _, Result};
use json_sanitizer_host::workload::{api_body, permissive_config};
use json_sanitizer_host::{engine, Host, Request};

const USAGE: &str =
    "usage: requests N [--body TEXT | --body-file PATH] [--config FILE] [--header 'NAME: VALUE']...";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .first()
        .context(USAGE)?
        .parse()
        .context("N must be a number of requests")?;
    let mut body = api_body(1024);
    let mut config = permissive_config();
    let mut headers = Vec::new();
    let read = |path: &str| std::fs::read(path).with_context(|| format!("cannot read {path}"));
    for pair in args[1..].chunks(2) {
        match pair {
            [flag, text] if flag == "--body" => body = text.clone().into_bytes(),
            [flag, path] if flag == "--body-file" => body = read(path)?,
            [flag, path] if flag == "--config" => {
                config = String::from_utf8_lossy(&read(path)?).into_owned()
            }
            [flag, header] if flag == "--header" => {
                let (name, value) = header.split_once(':').context(USAGE)?;
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
            _ => bail!(USAGE),
        }
    }
    let module = engine::plugin_module()?;
    let host = Host::builder(module).config(config).build()?;
    let mut vm = host.start_vm()?;
    let mut request = Request::post("/bench")
        .content_type("application/json")
        .body_chunked(&body, 64 << 10)
        .with_content_length();
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    for _ in 0..n {
        if let Some(trap) = vm.send(&request)?.trap {
            bail!("plugin trapped: {trap}");
        }
    }
    Ok(())
}
