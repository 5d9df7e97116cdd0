//! The request path as rules see it: normalized, so that `/upload/../api`,
//! `//api` or `/%61pi` cannot step around a rule that an upstream (or
//! Envoy's own `normalize_path`) would resolve them to.

use std::borrow::Cow;

/// `path` (the query string and fragment already removed) with
/// percent-encoded unreserved characters and slashes decoded (`%2F` and
/// `%5C` as `/`), backslashes read as slashes, repeated slashes merged and
/// `.` and `..` segments removed (RFC 3986, section 5.2.4): the most an
/// upstream could make of it. A path that needs none of this is returned as
/// it is, without allocating; one that does not start with `/` (`*`, an
/// absolute URI) too.
pub fn normalize(path: &str) -> Cow<'_, str> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') || !needs_work(bytes) {
        return Cow::Borrowed(path);
    }
    let decoded = decode(bytes);
    let mut segments: Vec<&[u8]> = Vec::new();
    // Whether the last segment read was `.`, `..` or empty: the result then
    // ends with a slash ("/a/b/.." is "/a/").
    let mut trailing_slash = false;
    for segment in decoded[1..].split(|&b| b == b'/') {
        trailing_slash = true;
        match segment {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            _ => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = Vec::with_capacity(decoded.len());
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if trailing_slash || segments.is_empty() {
        out.push(b'/');
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Whether anything in `path` could change under [`normalize`].
fn needs_work(path: &[u8]) -> bool {
    path.windows(2)
        .any(|w| w[0] == b'/' && (w[1] == b'/' || w[1] == b'.'))
        || path.iter().any(|&b| b == b'%' || b == b'\\')
}

/// The path with unreserved characters and slashes percent-decoded and
/// backslashes turned into slashes; other escapes stay as written.
fn decode(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        let escaped = match (b, path.get(i + 1..i + 3)) {
            (b'%', Some(&[h, l])) => hex(h).zip(hex(l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match escaped {
            Some(c) if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => {
                out.push(c);
                i += 3;
            }
            Some(b'/' | b'\\') => {
                out.push(b'/');
                i += 3;
            }
            _ => {
                out.push(if b == b'\\' { b'/' } else { b });
                i += 1;
            }
        }
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_a_resolving_upstream() {
        let cases = [
            ("/api/orders", "/api/orders"),
            ("/", "/"),
            ("//api//orders", "/api/orders"),
            ("/upload/../api/orders", "/api/orders"),
            ("/a/./b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("/%61pi/%73earch", "/api/search"),
            ("/upload%2F..%2Fapi", "/api"),
            ("/upload%2f%2e%2e%2fapi", "/api"),
            ("/upload\\..\\api", "/api"),
            ("/a%5Cb", "/a/b"),
            // Reserved and other escapes stay as written.
            ("/a%3Fb", "/a%3Fb"),
            ("/a%20b", "/a%20b"),
            ("/a%zzb", "/a%zzb"),
            ("/a%2", "/a%2"),
            ("/a%", "/a%"),
            // Names that only start with dots are names.
            ("/.well-known/x", "/.well-known/x"),
            ("/a/..b/c", "/a/..b/c"),
            ("/a/.../c", "/a/.../c"),
            // Not an origin-form path: untouched.
            ("*", "*"),
            ("", ""),
            ("http://h/a/../b", "http://h/a/../b"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn a_normal_path_is_not_copied() {
        for raw in ["/api/orders", "/a/b.json", "/v1.2/x", "/"] {
            assert!(matches!(normalize(raw), Cow::Borrowed(_)), "{raw}");
        }
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for raw in ["/a//b/../c/./", "/%2e%2e/x", "/a%252e%252e/b", "//..//"] {
            let once = normalize(raw).into_owned();
            assert_eq!(normalize(&once), once.as_str(), "{raw}");
        }
    }
}
