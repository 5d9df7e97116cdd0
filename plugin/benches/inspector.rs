//! Inspector throughput against `serde_json::from_slice::<IgnoredAny>` on the
//! same bytes, in the same run: the corpus in `../shared/corpus` plus
//! generated 1 KiB and 64 KiB API bodies, fed whole and in 4 KiB chunks,
//! with UTF-8 validation, duplicate-key detection and all limits on.
//!
//! `just bench` (or `cargo bench -p json-sanitizer --bench inspector`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use json_sanitizer::inspector::{Inspector, JsonOptions};
use serde::de::IgnoredAny;
use std::hint::black_box;
use support::{inputs, limits};

mod support;

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
