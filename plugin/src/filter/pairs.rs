//! The proxy-wasm ABI's encoding of header maps (used for request headers
//! and local reply headers). Pure, so it is tested natively, including on
//! garbage: a hostile host answer must never panic the filter.

/// Parses the ABI's header map encoding: a `u32` count, `count` pairs of
/// `u32` lengths, then each key and value followed by a NUL. Any
/// inconsistency yields `None` instead of a panic. The pairs borrow from
/// `bytes`: one allocation per map, not two per header.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
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
        let key = bytes.get(data_at..data_at.checked_add(key_len)?)?;
        data_at = data_at.checked_add(key_len)?.checked_add(1)?;
        let value = bytes.get(data_at..data_at.checked_add(value_len)?)?;
        data_at = data_at.checked_add(value_len)?.checked_add(1)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

/// The inverse of [`decode_pairs`], for local reply headers.
pub fn encode_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        let mut bytes = encode_pairs(&[("a".into(), "b".into())]);
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
