//! Shared set-up for the end-to-end suites: the real release plugin in the
//! harness, with a manual clock.
#![allow(dead_code)]

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use json_sanitizer_host::{plugin_module, Clock, Host, HostBuilder, Request};
use std::io::Write;

/// A host running the real plugin with `config`, on a manual clock.
pub fn host(config: &str) -> Host {
    try_host(config)
        .unwrap_or_else(|e| panic!("host for {config}: {e:#}"))
        .0
}

/// Like [`host`], but the start-up error (configure refused...) is returned.
pub fn try_host(config: &str) -> anyhow::Result<(Host, json_sanitizer_host::Vm)> {
    try_host_with(config, |b| b)
}

/// Like [`try_host`], with the builder adjusted by `tweak` (an Envoy option).
pub fn try_host_with(
    config: &str,
    tweak: impl FnOnce(HostBuilder) -> HostBuilder,
) -> anyhow::Result<(Host, json_sanitizer_host::Vm)> {
    let module = plugin_module()?;
    let builder = Host::builder(module)
        .config(config)
        .clock(Clock::manual_at_ms(1_800_000_000_000));
    let host = tweak(builder).build()?;
    let vm = host.start_vm()?;
    Ok((host, vm))
}

/// A JSON POST to `/api/orders` with `body` in one chunk.
pub fn post(body: impl AsRef<[u8]>) -> Request {
    Request::post("/api/orders")
        .authority("api.example.com")
        .content_type("application/json")
        .body(body)
}

/// The counter `json_sanitizer.<tail>` (0 when never incremented).
pub fn counter(host: &Host, tail: &str) -> u64 {
    host.metrics()
        .counter(&format!("json_sanitizer.{tail}"))
        .unwrap_or(0)
}

/// `data` as one gzip member, as clients compress request bodies.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data` in the zlib format: HTTP's `deflate`.
pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
