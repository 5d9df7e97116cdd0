//! Case-blind comparison of header names and media types, which every
//! request does a few times.

/// Whether `a` and `b` are equal ignoring ASCII case, like
/// `<[u8]>::eq_ignore_ascii_case`. Header names reach the filter lower-case
/// (Envoy lowers them) and clients send `application/json` as written, so
/// the exact compare, eight bytes at a time, answers nearly every call; the
/// case-blind one, a byte at a time (a measurable part of a small request
/// in wasm), runs only when that fails.
pub(crate) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (same_words(a, b) || a.eq_ignore_ascii_case(b))
}

/// Whether `a` and `b` (of equal length) are the same bytes, eight at a time.
fn same_words(a: &[u8], b: &[u8]) -> bool {
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    wa.remainder() == wb.remainder() && wa.zip(wb).all(|(x, y)| word(x) == word(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_standard_compare_at_every_length_and_position() {
        let text = b"application/vnd.example+json";
        for n in 0..=text.len() {
            let a = &text[..n];
            assert!(eq_ignore_case(a, a), "{n}");
            assert!(!eq_ignore_case(a, &text[..n.saturating_sub(1)]) || n == 0);
            for k in 0..n {
                for flip in [0x20u8, 0x01] {
                    let mut b = a.to_vec();
                    b[k] ^= flip;
                    assert_eq!(eq_ignore_case(a, &b), a.eq_ignore_ascii_case(&b), "{n} {k}");
                }
            }
        }
        assert!(eq_ignore_case(b"Content-Type", b"content-type"));
        assert!(!eq_ignore_case(b"content-type", b"x-request-id"));
    }
}
