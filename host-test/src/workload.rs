//! Request bodies and configurations shared by the CLI (`demo`, `bench`) and
//! the criterion benchmark, generated in code so no megabytes are committed.
//! Ordinary bodies come from the plugin's own generators
//! ([`json_sanitizer::samples`]), re-exported here, so the native and wasm
//! benchmarks measure the same documents.

pub use json_sanitizer::samples::{api_body, nested_arrays};

/// A valid document of at least `min_len` bytes made of few, large items
/// (1 KiB strings), so it stays inside the default element and string
/// limits and only its total size is over: the "too big" case.
pub fn big_json(min_len: usize) -> Vec<u8> {
    let filler = "x".repeat(1000);
    let mut out = Vec::with_capacity(min_len + 2048);
    out.push(b'[');
    let mut i = 0u64;
    while out.len() + 1 < min_len || i == 0 {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!(r#"{{"id":{i},"blob":"{filler}"}}"#).as_bytes());
        i += 1;
    }
    out.push(b']');
    out
}

/// One valid API body ([`api_body`]) of at least `total` bytes cut into
/// chunks of `chunk` bytes, for streaming huge bodies (the `hold_bytes: 0`
/// memory check).
pub fn streamed_json_chunks(total: usize, chunk: usize) -> Vec<Vec<u8>> {
    api_body(total)
        .chunks(chunk.max(1))
        .map(<[u8]>::to_vec)
        .collect()
}

/// A configuration that inspects everything but rejects nothing in the
/// benchmark bodies: pure streaming (`hold_bytes: 0`) and generous limits,
/// so the measurement is the inspector's cost, not a rejection shortcut.
pub fn permissive_config() -> String {
    r#"{
  "mode": "enforce",
  "hold_bytes": 0,
  "limits": {
    "max_body_bytes": 1073741824,
    "max_depth": 1000,
    "max_array_elements": 100000000,
    "max_object_entries": 100000000,
    "max_key_bytes": 65536,
    "max_string_bytes": 1073741824,
    "max_number_chars": 1000
  }
}"#
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_json_is_valid_and_large_enough() {
        let big = big_json(3 << 20);
        assert!(big.len() >= 3 << 20);
        serde_json::from_slice::<serde_json::Value>(&big).unwrap();
        let chunks = streamed_json_chunks(200_000, 65536);
        assert!(chunks.iter().all(|c| c.len() <= 65536));
        serde_json::from_slice::<serde_json::Value>(&chunks.concat()).unwrap();
    }
}
