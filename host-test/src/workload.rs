//! Request bodies and configurations shared by the CLI (`demo`, `bench`) and
//! the criterion benchmark, generated in code so no megabytes are committed.

/// A realistic JSON document of at least `min_len` bytes: an array of small
/// API objects (numbers, strings, booleans, a nested array), valid and
/// free of duplicate keys, so a permissive configuration passes it.
pub fn json_of_size(min_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(min_len + 256);
    out.push(b'[');
    let mut i: u64 = 0;
    while out.len() + 1 < min_len || i == 0 {
        if i > 0 {
            out.push(b',');
        }
        let item = format!(
            r#"{{"id":{i},"name":"item-{i}","price":{}.{:02},"active":{},"tags":["alpha","beta",{}],"owner":{{"id":{},"email":"user{}@example.com"}}}}"#,
            i % 997,
            i % 100,
            i.is_multiple_of(2),
            i % 7,
            i * 31 % 1000,
            i % 113
        );
        out.extend_from_slice(item.as_bytes());
        i += 1;
    }
    out.push(b']');
    out
}

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

/// `depth` nested arrays: `[[[...]]]`.
pub fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut v = vec![b'['; depth];
    v.extend(std::iter::repeat_n(b']', depth));
    v
}

/// Chunks of `chunk` bytes that together form one valid JSON array of at
/// least `total` bytes, for streaming huge bodies (the `hold_bytes: 0`
/// memory check) without building the document twice.
pub fn streamed_json_chunks(total: usize, chunk: usize) -> Vec<Vec<u8>> {
    json_of_size(total)
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
        for n in [1, 1024, 65536, 300_000] {
            let b = json_of_size(n);
            assert!(b.len() >= n, "{n}: {}", b.len());
            serde_json::from_slice::<serde_json::Value>(&b).unwrap();
        }
        serde_json::from_slice::<serde_json::Value>(&nested_arrays(50)).unwrap();
        let big = big_json(3 << 20);
        assert!(big.len() >= 3 << 20);
        serde_json::from_slice::<serde_json::Value>(&big).unwrap();
        let chunks = streamed_json_chunks(200_000, 65536);
        assert!(chunks.iter().all(|c| c.len() <= 65536));
        serde_json::from_slice::<serde_json::Value>(&chunks.concat()).unwrap();
    }
}
