//! Inspector throughput against `serde_json::from_slice::<IgnoredAny>` on the
//! same bytes, in the same run: the corpus in `../shared/corpus` plus
//! generated 1 KiB and 64 KiB API bodies, fed whole and in 4 KiB chunks,
//! with UTF-8 validation, duplicate-key detection and all limits on.
//!
//! `just bench` (or `cargo bench -p json-sanitizer --bench inspector`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use json_sanitizer::inspector::{Inspector, JsonOptions, Limits};
use json_sanitizer::samples::api_body;
use serde::de::IgnoredAny;
use std::hint::black_box;
use std::path::Path;

fn inputs() -> Vec<(String, Vec<u8>)> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let mut out = Vec::new();
    for name in ["twitter.json", "citm_catalog.json", "canada.json"] {
        match std::fs::read(corpus.join(name)) {
            Ok(bytes) => out.push((name.trim_end_matches(".json").to_string(), bytes)),
            Err(e) => {
                eprintln!("skipping {name}: {e} (expected beside the checkout in ../shared/corpus)")
            }
        }
    }
    out.push(("api_1k".into(), api_body(1024)));
    out.push(("api_64k".into(), api_body(64 * 1024)));
    out
}

/// All limits on, but high enough for the corpus documents (canada and citm
/// exceed the default body size and array length).
fn limits() -> Limits {
    Limits {
        max_body_bytes: Some(16 * 1024 * 1024),
        max_array_elements: Some(1_000_000),
        ..Limits::default()
    }
}

fn bench(c: &mut Criterion) {
    let limits = limits();
    let options = JsonOptions::default();
    for (name, bytes) in inputs() {
        Inspector::check(&limits, &options, &bytes).expect("benchmark inputs are acceptable");
        let mut group = c.benchmark_group(name.as_str());
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new("serde_json_ignored_any", "whole"), |b| {
            b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(&bytes)).unwrap())
        });
        let mut inspector = Inspector::new(&limits, &options);
        group.bench_function(BenchmarkId::new("inspector", "whole"), |b| {
            b.iter(|| {
                inspector.reset();
                inspector.feed(black_box(&bytes)).unwrap();
                inspector.finish().unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("inspector", "4KiB_chunks"), |b| {
            b.iter(|| {
                inspector.reset();
                for chunk in black_box(&bytes).chunks(4096) {
                    inspector.feed(chunk).unwrap();
                }
                inspector.finish().unwrap();
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
