//! The native inspector against `serde_json::from_slice::<IgnoredAny>`,
//! measured in alternating rounds and reported as the best round of each.
//!
//! The criterion bench (`cargo bench -p json-sanitizer --bench inspector`)
//! gives medians; on a shared machine whose neighbours come and go, the
//! baseline and the inspector can see different neighbours and their ratio
//! moves by 2x between runs. Alternating rounds and keeping the fastest of
//! each (the least disturbed) gives a ratio that holds from run to run.
//!
//! `cargo run --release -p json-sanitizer --example interleaved [ROUNDS]`

use json_sanitizer::inspector::{Inspector, JsonOptions};
use serde::de::IgnoredAny;
use std::hint::black_box;
use std::time::{Duration, Instant};
use support::{inputs, limits};

#[path = "../benches/support/mod.rs"]
mod support;

/// Each round runs each contender over about this many bytes.
const ROUND_BYTES: usize = 20_000_000;

/// One pass of contender 0 (serde_json), 1 (the inspector, whole body) or
/// 2 (the inspector, 4 KiB chunks) over `bytes`.
fn run(contender: usize, inspector: &mut Inspector, bytes: &[u8]) {
    match contender {
        0 => {
            let _ = serde_json::from_slice::<IgnoredAny>(bytes);
        }
        1 => {
            inspector.reset();
            let _ = inspector.feed(bytes);
            let _ = inspector.finish();
        }
        _ => {
            inspector.reset();
            for chunk in bytes.chunks(4096) {
                let _ = inspector.feed(chunk);
            }
            let _ = inspector.finish();
        }
    }
}

fn main() {
    let rounds = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 40,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("error: ROUNDS must be a positive integer");
            std::process::exit(2);
        }
    };
    let limits = limits();
    let options = JsonOptions::default();
    println!("best of {rounds} alternating rounds; ratio = inspector / serde_json IgnoredAny");
    println!(
        "  {:<14} {:>12} {:>12} {:>7} {:>12} {:>7}",
        "input", "serde MB/s", "whole MB/s", "ratio", "4 KiB MB/s", "ratio"
    );
    for (name, bytes) in inputs() {
        if let Err(v) = Inspector::check(&limits, &options, &bytes) {
            eprintln!("skipping {name}: refused ({v:?})");
            continue;
        }
        let reps = (ROUND_BYTES / bytes.len()).max(1);
        let mut inspector = Inspector::new(&limits, &options);
        let mut best = [Duration::MAX; 3];
        for _ in 0..rounds {
            for (contender, slot) in best.iter_mut().enumerate() {
                let t = Instant::now();
                for _ in 0..reps {
                    run(contender, &mut inspector, black_box(&bytes));
                }
                *slot = (*slot).min(t.elapsed());
            }
        }
        let mbs = |d: Duration| (bytes.len() * reps) as f64 / d.as_secs_f64() / 1e6;
        let ratio = |d: Duration| best[0].as_secs_f64() / d.as_secs_f64();
        println!(
            "  {:<14} {:>12.0} {:>12.0} {:>6.2}x {:>12.0} {:>6.2}x",
            name,
            mbs(best[0]),
            mbs(best[1]),
            ratio(best[1]),
            mbs(best[2]),
            ratio(best[2])
        );
    }
}
