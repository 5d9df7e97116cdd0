//! Case-blind comparison of header names and media types, which every
//! request does a few times.

use crate::inspector::swar::lanes_equal;

/// Whether `a` and `b` are equal ignoring ASCII case, like
/// `<[u8]>::eq_ignore_ascii_case`. Header names reach the filter lower-case
/// (Envoy lowers them) and clients send `application/json` as written, so
/// the exact compare, eight bytes at a time, answers nearly every call; the
/// case-blind one, a byte at a time (a measurable part of a small request
/// in wasm), runs only when that fails.
pub(crate) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (same_words(a, b) || a.eq_ignore_ascii_case(b))
}

/// Header names looked for in their CGI spellings (see [`cgi_twin`]), with
/// a mask of their lengths, so that a header of none of them is dismissed
/// with one test (a default request looks at every header this way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgiNames {
    names: Vec<String>,
    /// Bit `n` set for each length `n` among `names` (those under 64: a
    /// longer name is never looked for).
    lengths: u64,
}

impl CgiNames {
    /// The given names (lower-case), each once; a name without a `-` has
    /// no CGI spelling of its own and is left out.
    pub fn new<I: IntoIterator<Item = String>>(names: I) -> Self {
        let mut set = CgiNames {
            names: Vec::new(),
            lengths: 0,
        };
        for name in names {
            if name.len() < 64 && name.contains('-') && !set.names.contains(&name) {
                set.lengths |= 1 << name.len();
                set.names.push(name);
            }
        }
        set
    }

    /// Whether a header name of `len` bytes may be one of them: the test
    /// that dismisses most names before their bytes are looked up.
    #[inline(always)]
    pub fn may_be(&self, len: usize) -> bool {
        len < 64 && self.lengths & (1 << len) != 0
    }

    /// Whether header name `k` is one of them spelt with `_` or `.` for `-`.
    #[inline]
    pub fn twin(&self, k: &[u8]) -> bool {
        self.may_be(k.len())
            && has_underscore_or_dot(k)
            && self.names.iter().any(|name| cgi_twin(k, name.as_bytes()))
    }
}

/// Whether header name `a` is `name` (lower-case, with `-`) spelt with `_`
/// or `.` for at least one `-`, ignoring ASCII case: the same header to a
/// CGI-style server (PHP turns `Content-Type`, `Content_Type` and
/// `Content.Type` all into `HTTP_CONTENT_TYPE`, Rack the first two),
/// another to Envoy and most servers, which Envoy lets through by default
/// (`.` always: it is no underscore to `headers_with_underscores_action`).
/// One pass that stops at the first byte that differs (most names differ
/// in their first).
fn cgi_twin(a: &[u8], name: &[u8]) -> bool {
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

/// Whether `name` holds an `_` or a `.`, a word at a time (as
/// [`same_words`] walks), so that the names that cannot be twins cost a few
/// instructions.
fn has_underscore_or_dot(name: &[u8]) -> bool {
    let n = name.len();
    if n < 8 {
        return name.iter().any(|&b| b == b'_' || b == b'.');
    }
    let found = |at: usize| {
        word(name, at).is_some_and(|w| lanes_equal(w, b'_') | lanes_equal(w, b'.') != 0)
    };
    let mut at = 0;
    while at + 8 < n {
        if found(at) {
            return true;
        }
        at += 8;
    }
    found(n - 8)
}

/// Whether `a` and `b` (of equal length) are the same bytes: eight at a
/// time, the last eight overlapping the ones before (no slice compare,
/// which is a call to a byte loop in wasm).
fn same_words(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// The eight bytes at `s[at..at + 8]` as a little-endian word, if there
/// are eight (no panic path: measured dearer in wasm than this, on every
/// header lookup).
#[inline(always)]
fn word(s: &[u8], at: usize) -> Option<u64> {
    s.get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map(u64::from_le_bytes)
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
