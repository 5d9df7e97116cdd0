//! What the native benchmarks measure, shared by the criterion bench
//! (`benches/inspector.rs`) and the interleaved one (`examples/interleaved.rs`).

use json_sanitizer::inspector::Limits;
use json_sanitizer::samples::api_body;
use std::path::Path;

/// The corpus in `../shared/corpus` (skipped with a note when absent) and
/// generated 1 KiB and 64 KiB API bodies.
pub fn inputs() -> Vec<(String, Vec<u8>)> {
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
pub fn limits() -> Limits {
    Limits {
        max_body_bytes: Some(16 * 1024 * 1024),
        max_array_elements: Some(1_000_000),
        ..Limits::default()
    }
}
