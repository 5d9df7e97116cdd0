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

/// Whether header names `a` and `b` are the same name: ignoring ASCII case,
/// and reading `_` as `-`. CGI-style servers do (PHP, Rack, WSGI: both
/// `Content-Type` and `Content_Type` become `CONTENT_TYPE` or
/// `HTTP_CONTENT_TYPE`), and Envoy lets underscores through by default, so
/// `content_type` or `x_http_method_override` would otherwise carry a
/// second content type or method past the filter. The exact compare first,
/// as in [`eq_ignore_case`]: the byte loop only runs for names of the same
/// length that differ.
pub(crate) fn same_header_name(a: &[u8], b: &[u8]) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && (same_words(a, b) || a.iter().zip(b).all(|(&x, &y)| fold(x) == fold(y)))
}

/// Whether `a` and `b` (of equal length) are the same bytes: eight at a
/// time, the last eight overlapping the ones before (no slice compare,
/// which is a call to a byte loop in wasm).
fn same_words(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_le_bytes)
    };
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
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

    #[test]
    fn header_names_read_underscores_as_dashes() {
        for same in [
            &b"content-type"[..],
            b"Content-Type",
            b"content_type",
            b"CONTENT_TYPE",
            b"content-Type",
        ] {
            assert!(same_header_name(same, b"content-type"), "{same:?}");
            assert!(same_header_name(b"content-type", same), "{same:?}");
        }
        for other in [
            &b"content-typ"[..],
            b"content-types",
            b"contentstype",
            b"content\x7ftype",
            b"content type",
            b"x-request-id",
        ] {
            assert!(!same_header_name(other, b"content-type"), "{other:?}");
        }
        // Any underscore, anywhere, at any length.
        let name = b"x-http-method-override";
        for k in 0..name.len() {
            let mut b = name.to_vec();
            if b[k] == b'-' {
                b[k] = b'_';
                assert!(same_header_name(&b, name), "{k}");
            } else {
                b[k] = b'_';
                assert!(!same_header_name(&b, name), "{k}");
            }
        }
    }
}
