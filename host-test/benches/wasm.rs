//! Criterion benchmarks through the real plugin `.wasm`, each next to its
//! baselines on the same bytes, in the same run, so the ratios are
//! meaningful on any machine: `serde_json` into `IgnoredAny` natively, and
//! the same call compiled to wasm and run by the same engine
//! ([`SerdeInWasm`]).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use json_sanitizer_host::workload::{api_body, permissive_config};
use json_sanitizer_host::{plugin_module, Clock, Host, Request, SerdeInWasm, Vm};
use std::path::PathBuf;

const CHUNK: usize = 64 << 10;

fn vm() -> (Host, Vm) {
    let module = plugin_module().expect("plugin builds");
    let host = Host::builder(module)
        .config(permissive_config())
        .clock(Clock::real())
        .build()
        .expect("plugin links");
    let vm = host.start_vm().expect("plugin starts");
    (host, vm)
}

fn inputs() -> Vec<(String, Vec<u8>)> {
    let corpus = std::env::var_os("JSON_SANITIZER_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| json_sanitizer_host::engine::workspace_root().join("../shared/corpus"));
    let mut v = Vec::new();
    for name in ["citm_catalog.json", "twitter.json", "canada.json"] {
        if let Ok(b) = std::fs::read(corpus.join(name)) {
            v.push((name.to_string(), b));
        }
    }
    for (name, n) in [
        ("gen_1KiB", 1 << 10),
        ("gen_64KiB", 64 << 10),
        ("gen_10MB", 10_000_000),
    ] {
        v.push((name.to_string(), api_body(n)));
    }
    v
}

fn throughput(c: &mut Criterion) {
    let (_host, mut vm) = vm();
    let mut serde_wasm = SerdeInWasm::start().expect("the serde_json baseline builds and starts");
    let mut g = c.benchmark_group("inspect");
    for (name, body) in inputs() {
        g.throughput(Throughput::Bytes(body.len() as u64));
        if body.len() > 1 << 20 {
            g.sample_size(10);
        } else {
            g.sample_size(50);
        }
        let req = Request::post("/bench")
            .content_type("application/json")
            .body_chunked(&body, CHUNK);
        g.bench_with_input(BenchmarkId::new("wasm", &name), &req, |b, req| {
            b.iter(|| {
                let o = vm.send(req).expect("vm usable");
                assert!(o.trap.is_none());
            })
        });
        g.bench_with_input(
            BenchmarkId::new("native_serde_json", &name),
            &body,
            |b, body| b.iter(|| serde_baseline::is_json(std::hint::black_box(body))),
        );
        let placed = serde_wasm
            .place(&body)
            .expect("the baseline takes the body");
        g.bench_with_input(
            BenchmarkId::new("serde_json_in_wasm", &name),
            &placed,
            |b, &placed| b.iter(|| serde_wasm.validate(placed).expect("the baseline runs")),
        );
    }
    g.finish();
}

fn per_request(c: &mut Criterion) {
    let (_host, mut vm) = vm();
    let req = Request::post("/bench")
        .content_type("application/json")
        .body(api_body(1 << 10))
        .with_content_length();
    c.bench_function("request_1KiB_end_to_end", |b| {
        b.iter(|| vm.send(&req).expect("vm usable"))
    });
}

criterion_group!(benches, throughput, per_request);
criterion_main!(benches);
