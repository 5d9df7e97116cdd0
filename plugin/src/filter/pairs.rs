//! The proxy-wasm ABI's encoding of header maps (used for request headers
//! and local reply headers). Pure, so it is tested natively, including on
//! garbage: a hostile host answer must never panic the filter.

use std::ops::Range;

/// A header's name and value, as byte ranges of the encoded map.
pub type Span = (Range<usize>, Range<usize>);

/// Parses the ABI's header map encoding: a `u32` count, `count` pairs of
/// `u32` lengths, then each key and value followed by a NUL. Any
/// inconsistency yields `None` instead of a panic. The pairs are ranges of
/// `bytes`, so the map the host handed over is the only copy of the headers.
pub fn decode_spans(bytes: &[u8]) -> Option<Vec<Span>> {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = word(0)?;
    let mut sizes_at = 4usize;
    let mut data_at = count.checked_mul(8)?.checked_add(4)?;
    if data_at > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        let key_len = word(sizes_at)?;
        let value_len = word(sizes_at + 4)?;
        sizes_at += 8;
        let key = data_at..data_at.checked_add(key_len)?;
        data_at = key.end.checked_add(1)?;
        let value = data_at..data_at.checked_add(value_len)?;
        data_at = value.end.checked_add(1)?;
        // The value ends after the key, so one check keeps both within the
        // map (the final NUL may be missing).
        if value.end > bytes.len() {
            return None;
        }
        pairs.push((key, value));
    }
    Some(pairs)
}

/// The inverse of [`decode_spans`], for local reply headers (and for tests
/// that build request headers).
pub fn encode_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.as_ref().len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.as_ref().len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The decoded map as slices of `bytes`.
    fn decode_pairs(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
        let spans = decode_spans(bytes)?;
        Some(
            spans
                .into_iter()
                .map(|(k, v)| (&bytes[k], &bytes[v]))
                .collect(),
        )
    }

    #[test]
    fn round_trip() {
        let pairs = vec![
            (":method".to_string(), "POST".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("empty".to_string(), String::new()),
        ];
        let bytes = encode_pairs(&pairs);
        let want: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(decode_pairs(&bytes), Some(want));
        assert_eq!(decode_pairs(&[]), Some(vec![]));
    }

    #[test]
    fn inconsistent_maps_are_refused() {
        let mut bytes = encode_pairs(&[("a", "b")]);
        bytes.truncate(bytes.len() - 2);
        assert_eq!(decode_pairs(&bytes), None);
        assert_eq!(decode_pairs(&u32::MAX.to_le_bytes()), None);
        assert_eq!(decode_pairs(&[1, 0]), None);
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_pairs(&bytes);
        }
    }
}
