//! The request path as rules see it: normalized, so that `/upload/../api`,
//! `//api` or `/%61pi` cannot step around a rule that an upstream (or
//! Envoy's own `normalize_path`) would resolve them to.

use std::borrow::Cow;

/// How many times escapes are decoded: an upstream that decodes twice
/// reads `%252e` as `.`; three rounds cover that and then some.
const DECODE_ROUNDS: usize = 3;

/// `path` (the query string and fragment already removed) with
/// percent-encoded unreserved characters and slashes decoded (`%2F` and
/// `%5C` as `/`, and again while that uncovers more, as an upstream that
/// decodes twice would), backslashes read as slashes, `;` path parameters
/// dropped from each segment (`..;` is `..` to Tomcat), repeated slashes
/// merged and `.` and `..` segments removed (RFC 3986, section 5.2.4). A
/// path that needs none of this is returned as it is, without allocating;
/// one that does not start with `/` (`*`, an absolute URI) too.
pub fn normalize(path: &str) -> Cow<'_, str> {
    resolve(path).0
}

/// [`normalize`], and whether its result is settled: `false` when escapes
/// nested deeper than the decoding rounds would still decode further (the
/// result is then not normal itself). Only decoding can leave a result
/// unsettled: the segment steps never make a new escape, dot segment, empty
/// segment or backslash.
pub fn resolve(path: &str) -> (Cow<'_, str>, bool) {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') || !needs_work(bytes) {
        return (Cow::Borrowed(path), true);
    }
    let mut decoded = decode(bytes);
    let mut settled = false;
    for _ in 1..DECODE_ROUNDS {
        let again = decode(&decoded);
        if again == decoded {
            settled = true;
            break;
        }
        decoded = again;
    }
    let settled = settled || decode(&decoded) == decoded;
    let mut segments: Vec<&[u8]> = Vec::new();
    // Whether the last segment read was `.`, `..` or empty: the result then
    // ends with a slash ("/a/b/.." is "/a/").
    let mut trailing_slash = false;
    for segment in decoded[1..].split(|&b| b == b'/') {
        trailing_slash = true;
        let segment = segment.split(|&b| b == b';').next().unwrap_or_default();
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
    (
        Cow::Owned(String::from_utf8_lossy(&out).into_owned()),
        settled,
    )
}

/// Whether anything in `path` could change under [`normalize`].
fn needs_work(path: &[u8]) -> bool {
    path.windows(2)
        .any(|w| w[0] == b'/' && (w[1] == b'/' || w[1] == b'.'))
        || path.iter().any(|&b| matches!(b, b'%' | b'\\' | b';'))
}

/// The path with unreserved characters and slashes percent-decoded (also
/// when the `%` itself is escaped, `%252e`, as a second decoding would
/// read it) and backslashes turned into slashes; other escapes stay as
/// written.
fn decode(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        let (decoded, width) = match escape_at(path, i) {
            // `%25XY`: the `%` of `%XY`, escaped.
            Some(b'%') => {
                let inner = path.get(i + 3..i + 5).map(|xy| [b'%', xy[0], xy[1]]);
                (inner.and_then(|e| escape_at(&e, 0)).and_then(wanted), 5)
            }
            Some(c) => (wanted(c), 3),
            None => (None, 1),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                i += width;
            }
            None => {
                out.push(if b == b'\\' { b'/' } else { b });
                i += 1;
            }
        }
    }
    out
}

/// The byte an escape `%XY` at `path[i]` stands for.
fn escape_at(path: &[u8], i: usize) -> Option<u8> {
    match path.get(i..i + 3)? {
        [b'%', h, l] => Some(hex(*h)? << 4 | hex(*l)?),
        _ => None,
    }
}

/// What a decoded byte becomes in the normalized path, if it is decoded:
/// unreserved characters stay themselves, both slashes become `/`.
fn wanted(c: u8) -> Option<u8> {
    match c {
        b'/' | b'\\' => Some(b'/'),
        c if c.is_ascii_alphanumeric() || b"-._~".contains(&c) => Some(c),
        _ => None,
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The values of `key` in a path's query string, percent-decoded (`+` is
/// a space, as in forms; bytes that are not UTF-8 become U+FFFD). Keys are
/// read as PHP reads them into `$_GET` (which Symfony and Laravel take
/// `_method` from): cut at a NUL byte, leading spaces dropped, spaces and
/// dots made `_`, and an unclosed `[` too, so `.method` and `_method%00x`
/// are `_method`.
pub fn query_values<'a>(path: &'a str, key: &'a str) -> impl Iterator<Item = String> + 'a {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    query.split('&').filter_map(move |pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decoded(k);
        let k = k.split(|&b| b == 0).next().unwrap_or_default();
        let v = percent_decoded(v);
        (php_key(&String::from_utf8_lossy(k)) == key)
            .then(|| String::from_utf8_lossy(&v).into_owned())
    })
}

/// A query key as PHP registers it (see [`query_values`]).
fn php_key(key: &str) -> String {
    let key = key.trim_start_matches(' ');
    let closed = key.find('[').is_some_and(|open| key[open..].contains(']'));
    key.chars()
        .map(|c| match c {
            ' ' | '.' => '_',
            '[' if !closed => '_',
            c => c,
        })
        .collect()
}

/// `text` with `%XX` escapes decoded and `+` read as a space.
fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let (decoded, width) = match (b, escape_at(bytes, i)) {
            (_, Some(c)) => (c, 3),
            (b'+', None) => (b' ', 1),
            (b, None) => (b, 1),
        };
        out.push(decoded);
        i += width;
    }
    out
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
            // Path parameters, which Tomcat and Spring drop.
            ("/upload/..;/api/orders", "/api/orders"),
            ("/api;jsessionid=1/search;x=y", "/api/search"),
            ("/a/.;x/b", "/a/b"),
            // Decoded again while that uncovers more (double decoding).
            ("/upload/%252e%252e/api", "/api"),
            ("/upload/%%32%65%%32%65/api/orders", "/api/orders"),
            // A third level is left as written.
            ("/a%25252Fb", "/a%25252Fb"),
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

    /// `%%32%65` needs a second round (the first makes `%2e`); an escape
    /// nested deeper than the rounds still decodes further, which
    /// `Config::select` treats as an ambiguous path.
    #[test]
    fn deeper_encodings_than_the_rounds_stay_unsettled() {
        assert_eq!(normalize("/upload/%%32%65%%32%65/api"), "/api");
        assert!(resolve("/upload/%%32%65%%32%65/api").1);
        let dot = "%%%33%32%%33%35%%%33%33%%33%32e";
        let raw = format!("/public/{dot}{dot}/admin");
        let once = normalize(&raw).into_owned();
        assert_ne!(normalize(&once), once.as_str(), "{once}");
        assert!(!resolve(&raw).1, "{raw} is reported unsettled");
    }

    proptest::proptest! {
        /// A normalized path is normal: normalizing it again changes
        /// nothing (else an upstream that normalizes once more would see
        /// another path than the rules did). The alphabet makes escapes of
        /// one and two levels (`%2e`, `%252e`); deeper ones are the subject
        /// of `deeper_encodings_than_the_rounds_stay_unsettled`.
        #[test]
        fn normalizing_twice_changes_nothing(
            tail in proptest::collection::vec(
                proptest::sample::select(vec![
                    "/", ".", "..", "%", "2", "5", "e", "E", "f", "F", "c", "C",
                    "%2", "%25", "%2e", "%2f", "%5c", ";", "\\", "a",
                ]),
                0..24,
            )
        ) {
            let raw = format!("/{}", tail.concat());
            let (once, settled) = resolve(&raw);
            proptest::prop_assert!(settled, "{}", raw);
            proptest::prop_assert_eq!(normalize(&once), once.as_ref(), "{}", raw);
        }
    }
}
