//! Runs one contender over one benchmark input a given number of times, and
//! nothing else: a fixed workload for instruction counts, which, unlike
//! timings, do not move with the neighbours on a shared machine.
//!
//! ```text
//! cargo build --release -p json-sanitizer --example passes
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/passes twitter 3
//! ```
//!
//! The difference between the counts for N and N + 2 passes, halved, is the
//! cost of one pass. INPUT is one of the benchmark inputs or a JSON file.
//! `passes INPUT N serde` measures serde_json instead, `passes INPUT N
//! chunks` the inspector fed 4 KiB at a time, `passes INPUT N
//! interoperable` the inspector with `numbers: interoperable`, and `passes
//! INPUT N lines` the inspector reading JSON Lines.

use json_sanitizer::inspector::{Inspector, JsonOptions, Numbers};
use serde::de::IgnoredAny;
use std::hint::black_box;
use support::{inputs, limits};

#[path = "../benches/support/mod.rs"]
mod support;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: passes INPUT N [serde|chunks|interoperable|lines]   (INPUT: twitter, citm_catalog, canada, api_1k, api_64k, or a file)";
    let (Some(name), Some(Ok(n))) = (args.first(), args.get(1).map(|n| n.parse::<usize>())) else {
        eprintln!("error: {usage}");
        std::process::exit(2);
    };
    let mut options = JsonOptions::default();
    let (serde, chunk) = match args.get(2).map(String::as_str) {
        None => (false, usize::MAX),
        Some("serde") => (true, usize::MAX),
        Some("chunks") => (false, 4096),
        Some("interoperable") => {
            options.numbers = Numbers::Interoperable;
            (false, usize::MAX)
        }
        Some("lines") => {
            options.lines = true;
            (false, usize::MAX)
        }
        Some(other) => {
            eprintln!("error: unknown contender `{other}`; {usage}");
            std::process::exit(2);
        }
    };
    let named = inputs().into_iter().find(|(input, _)| input == name);
    let bytes = match named {
        Some((_, bytes)) => bytes,
        None => match std::fs::read(name) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("error: no input named `{name}`, and no such file ({e}); {usage}");
                std::process::exit(2);
            }
        },
    };
    let mut inspector = Inspector::new(&limits(), &options);
    for _ in 0..n {
        if serde {
            let _ = serde_json::from_slice::<IgnoredAny>(black_box(&bytes));
        } else {
            inspector.reset();
            for piece in black_box(&bytes).chunks(chunk) {
                let _ = inspector.feed(piece);
            }
            let _ = inspector.finish();
        }
    }
}
