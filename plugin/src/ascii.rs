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

/// Whether header name `a` is `name` (lower-case, with `-`) spelt with `_`
/// or `.` for at least one `-`, ignoring ASCII case: the same header to a
/// CGI-style server (PHP and Rack turn `Content-Type`, `Content_Type` and,
/// PHP, `Content.Type` all into `HTTP_CONTENT_TYPE`), another to Envoy and
/// most servers, which Envoy lets through by default (`.` always: it is no
/// underscore to `headers_with_underscores_action`). One pass that stops at
/// the first byte that differs (most names differ in their first).
pub(crate) fn cgi_twin(a: &[u8], name: &[u8]) -> bool {
    if a.len() != name.len() {
        return false;
    }
    let mut respelt = false;
    for (&x, &y) in a.iter().zip(name) {
        if matches!(x, b'_' | b'.') && y == b'-' {
            respelt = true;
        } else if x.to_ascii_lowercase() != y {
            return false;
        }
    }
    respelt
}

/// Whether `name` holds an `_` or a `.`: eight bytes at a time, the last
/// eight overlapping the ones before (a header name is rarely longer than
/// 24), so that the names that cannot be twins cost a few instructions.
pub(crate) fn has_underscore_or_dot(name: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let n = name.len();
    if n < 8 {
        return name.iter().any(|&b| b == b'_' || b == b'.');
    }
    let word = |at: usize| {
        name.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_le_bytes)
    };
    // A zero byte in `w ^ "________"` is an `_`, in `w ^ "........"` a `.`
    // (each exact for "any").
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let has =
        |w: u64| zero_byte(w ^ (ONES * u64::from(b'_'))) || zero_byte(w ^ (ONES * u64::from(b'.')));
    let mut at = 0;
    while at + 8 < n {
        if has(word(at)) {
            return true;
        }
        at += 8;
    }
    has(word(n - 8))
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
    fn cgi_twins_are_the_name_with_an_underscore_or_a_dot_for_a_dash() {
        for twin in [
            &b"content_type"[..],
            b"CONTENT_TYPE",
            b"Content_Type",
            b"Content.Type",
        ] {
            assert!(cgi_twin(twin, b"content-type"), "{twin:?}");
        }
        for other in [
            &b"content-type"[..],
            b"Content-Type",
            b"content-typ",
            b"content_types",
            b"contentstype",
            b"content\x7ftype",
            b"content type",
            b"x-request-id",
            b"x_request_id",
        ] {
            assert!(!cgi_twin(other, b"content-type"), "{other:?}");
        }
        // Any dash, or several, at any place; elsewhere it is no twin.
        let name = b"x-http-method-override";
        for k in 0..name.len() {
            for respelt in [b'_', b'.'] {
                let mut b = name.to_vec();
                b[k] = respelt;
                assert_eq!(cgi_twin(&b, name), name[k] == b'-', "{k}");
            }
        }
        assert!(cgi_twin(b"x_http.method_override", name));
    }

    #[test]
    fn an_underscore_or_a_dot_is_found_at_every_place_and_length() {
        for n in 0..40 {
            let name = vec![b'a'; n];
            assert!(!has_underscore_or_dot(&name), "{n}");
            for k in 0..n {
                let mut with = name.clone();
                for found in [b'_', b'.'] {
                    with[k] = found;
                    assert!(has_underscore_or_dot(&with), "{n} {k}");
                }
                // Their neighbours in the byte order are neither.
                for other in [b'^', b'`', 0xDF, b'-', b'/', 0xAE] {
                    with[k] = other;
                    assert!(!has_underscore_or_dot(&with), "{n} {k} {other:#x}");
                }
            }
        }
    }
}
