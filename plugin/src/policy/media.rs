//! Content types: which `content-type` header values are JSON to us.

/// The media type of a `content-type` value without parameters, trimmed:
/// `Application/JSON; charset=utf-8` becomes `Application/JSON` (ranges
/// match it ignoring case). Borrowed: no allocation per request.
pub fn essence(content_type: &str) -> &str {
    // Byte searches: in the wasm build `str` patterns cost far more than
    // these loops over a short header value, on every request.
    let media = match content_type.bytes().position(|b| b == b';') {
        Some(end) => content_type.get(..end).unwrap_or(content_type),
        None => content_type,
    };
    media.trim_ascii()
}

/// What a request's `content-type` headers make of its body, for the
/// content-type policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentTypeClass {
    /// One of the media types in `content_types`.
    Json,
    /// No media type that can be read: no header, an empty one, or one that
    /// is no media type at all; the missing header's policy applies.
    Missing,
    /// Media types, none of them JSON.
    Other,
}

/// What a request's `content-type` headers say, read in one pass (the
/// headers are looked up once per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentTypes {
    /// Every value counts, and so does every comma-separated part of one
    /// (Envoy joins a repeated header's values with commas, and an upstream
    /// may read either part): one JSON part makes the body JSON. Anything
    /// that is not a media type (empty, `application/json something`, bytes
    /// outside the grammar such as a trailing no-break space, a wildcard) is
    /// no better than no header, because some upstreams read it as JSON
    /// (FastAPI takes an empty content type for JSON, and Python's `strip`
    /// turns `application/json\xA0` into `application/json`).
    pub class: ContentTypeClass,
    /// A `charset` parameter of any value names an encoding other than
    /// UTF-8. JSON is UTF-8 (RFC 8259 §8.1) and application/json defines no
    /// charset, but Express's body-parser, Django REST framework and Spring
    /// decode the body in the charset named: in UTF-7 (`+ACI-` is `"`) or
    /// HZ, plain ASCII bytes that the inspector reads as one string can
    /// close it and add members; in Latin-1, `{"é":1,"Ã©":2}` holds a
    /// duplicate key that UTF-8 does not. Anything but `utf-8` or `utf8`
    /// counts (quoted or not, any case), and so does a parameter the
    /// upstream may read as one (`charset*`, `\u{A0}charset`, a `;` inside
    /// quotes): strict, because the cost of a false alarm is a 415 to a
    /// client that mislabels its JSON.
    pub foreign_charset: bool,
}

/// Reads a request's `content-type` values against `ranges` (see
/// [`ContentTypes`]).
pub fn read_content_types<S: AsRef<str>>(
    ranges: &[MediaRange],
    values: impl IntoIterator<Item = S>,
) -> ContentTypes {
    let mut foreign = false;
    let mut json = false;
    let is_json = |part: &str| {
        let media = essence(part);
        ranges.iter().any(|r| r.matches(media))
    };
    let (mut other, mut unreadable) = (false, false);
    // A part that is not JSON: another media type, or none at all.
    let mut note = |media_type: bool| {
        if media_type {
            other = true;
        } else {
            unreadable = true;
        }
    };
    let is_media = |part: &str| is_media_type(essence(part));
    for value in values {
        let value = value.as_ref();
        // One search for the parameters serves both questions.
        let params = value.as_bytes().iter().position(|&b| b == b';');
        if let Some(at) = params {
            foreign = foreign || params_name_foreign_charset(value.get(at..).unwrap_or_default());
        }
        if json {
            // Decided; only the charsets of the other values still count.
            continue;
        }
        // The usual value has no comma: no splitting (this runs on every
        // request).
        if !value.as_bytes().contains(&b',') {
            let media = value.get(..params.unwrap_or(value.len())).unwrap_or(value);
            let media = media.trim_ascii();
            json = ranges.iter().any(|r| r.matches(media));
            if !json {
                note(is_media_type(media));
            }
            continue;
        }
        // A part that is JSON as an upstream splitting on every comma reads
        // it counts, even inside quotes: `text/plain; x="` and then
        // `application/json`, joined, would hide it from a quote-aware split.
        if value.split(',').any(is_json) {
            json = true;
            continue;
        }
        if !quotes_close(value) {
            // A quote that never closes: no telling where the parts end.
            note(false);
            continue;
        }
        split_outside_quotes(value).for_each(|part| note(is_media(part)));
    }
    let class = if json {
        ContentTypeClass::Json
    } else if other && !unreadable {
        ContentTypeClass::Other
    } else {
        ContentTypeClass::Missing
    };
    ContentTypes {
        class,
        foreign_charset: foreign,
    }
}

/// Whether the parameters of a `content-type` value (from its first `;`
/// on) name a charset other than UTF-8 (see [`ContentTypes::foreign_charset`]).
fn params_name_foreign_charset(params: &str) -> bool {
    params.split([';', ',']).any(|part| {
        let Some((name, charset)) = part.split_once('=') else {
            return false;
        };
        // Any name with `charset` in it counts: Python's `strip` (Django's
        // header parser) also takes a no-break space or a control byte off
        // `\xA0charset`, and `charset*` is RFC 2231's spelling.
        let name = name.trim_ascii().as_bytes();
        let is_charset = name
            .windows(7)
            .any(|w| crate::ascii::eq_ignore_case(w, b"charset"));
        if !is_charset {
            return false;
        }
        let charset = charset.trim_ascii();
        let charset = charset
            .strip_prefix('"')
            .and_then(|c| c.strip_suffix('"'))
            .unwrap_or(charset)
            .as_bytes();
        let utf8 = |name: &[u8]| crate::ascii::eq_ignore_case(charset, name);
        name.len() != 7 || !(utf8(b"utf-8") || utf8(b"utf8"))
    })
}

/// Where a header value's bytes stand: inside a quoted string or not
/// (`\\"` inside one does not end it).
#[derive(Default)]
struct Quotes {
    quoted: bool,
    escaped: bool,
}

impl Quotes {
    /// Takes the next byte; whether it is a comma outside quotes.
    fn comma(&mut self, b: u8) -> bool {
        match b {
            _ if self.escaped => self.escaped = false,
            b'\\' if self.quoted => self.escaped = true,
            b'"' => self.quoted = !self.quoted,
            b',' if !self.quoted => return true,
            _ => {}
        }
        false
    }
}

/// Whether every quoted string in a header value ends.
fn quotes_close(value: &str) -> bool {
    let mut quotes = Quotes::default();
    value.bytes().for_each(|b| {
        quotes.comma(b);
    });
    !quotes.quoted
}

/// `type/subtype` with RFC 9110 token characters on both sides, and no
/// `*`: a wildcard is a range (as in `accept`), not the type of a body, and
/// Django REST framework reads a body sent as `*/*` or `application/*` as
/// JSON.
fn is_media_type(media: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'+-.^_`|~".contains(&b))
    };
    media
        .split_once('/')
        .is_some_and(|(kind, subtype)| token(kind) && token(subtype))
}

/// The parts of a header value between commas that are not inside a quoted
/// parameter value (`boundary="a,b"` stays whole). Byte searches: this runs
/// on every request, and the usual value has no comma at all.
fn split_outside_quotes(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        let rest = bytes.get(from..)?;
        let mut quotes = Quotes::default();
        let comma = rest.iter().position(|&b| quotes.comma(b));
        let end = comma.map_or(bytes.len(), |c| from + c);
        start = comma.map(|c| from + c + 1);
        // Commas and quotes are ASCII, so both ends are on char boundaries.
        value.get(from..end)
    })
}

/// A configured media range such as `application/json`,
/// `application/*+json` or `*/*`: `type/subtype`, where either part may
/// contain `*` wildcards matching any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRange {
    /// `type/subtype`, lower-case.
    range: String,
    /// Whether it has a `*`; without one (`application/json`, the common
    /// case) it is matched with one compare ignoring case, not the glob.
    wildcard: bool,
}

impl MediaRange {
    /// Parses a range from the configuration; the error says why it is not one.
    pub fn parse(text: &str) -> Result<MediaRange, String> {
        let lowered = text.trim().to_ascii_lowercase();
        let Some((kind, subtype)) = lowered.split_once('/') else {
            return Err(format!(
                "`{text}` is not a media range like application/json"
            ));
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-*".contains(&b))
        };
        if !valid(kind) || !valid(subtype) {
            return Err(format!(
                "`{text}` is not a media range like application/json (no parameters, no spaces)"
            ));
        }
        Ok(MediaRange {
            wildcard: lowered.contains('*'),
            range: lowered,
        })
    }

    /// Whether a media type essence (see [`essence`]) falls in this range,
    /// ignoring ASCII case.
    pub fn matches(&self, essence: &str) -> bool {
        if !self.wildcard {
            return crate::ascii::eq_ignore_case(essence.as_bytes(), self.range.as_bytes());
        }
        match (self.range.split_once('/'), essence.split_once('/')) {
            (Some((kind, subtype)), Some((text_kind, text_subtype))) => {
                glob(kind.as_bytes(), text_kind.as_bytes())
                    && glob(subtype.as_bytes(), text_subtype.as_bytes())
            }
            _ => false,
        }
    }
}

/// Whether text `t` matches pattern `p`, where `*` matches any run of
/// characters (including none) and everything else matches itself, ignoring
/// ASCII case (`p` is lower-case). Iterative, with one backtrack point:
/// linear-ish and no recursion, whatever the client sends.
fn glob(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti].to_ascii_lowercase() {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(values: &[&str]) -> ContentTypes {
        let ranges =
            ["application/json", "application/*+json"].map(|r| MediaRange::parse(r).unwrap());
        read_content_types(&ranges, values)
    }

    fn class(values: &[&str]) -> ContentTypeClass {
        read(values).class
    }

    /// Every header and every comma-separated part counts; what is not a
    /// media type is treated as no header; only media types that are all
    /// not JSON are "other".
    #[test]
    fn classification_reads_every_part_and_treats_garbage_as_missing() {
        use ContentTypeClass::{Json, Missing, Other};
        let cases: &[(&[&str], ContentTypeClass)] = &[
            (&[], Missing),
            (&[""], Missing),
            (&["  "], Missing),
            (&["application/json"], Json),
            (&["text/plain"], Other),
            (&["text/plain", "application/json"], Json),
            // Envoy's join of two headers, either order, with or without space.
            (&["text/plain,application/json"], Json),
            (&["application/json, text/plain"], Json),
            (&["text/plain, text/html"], Other),
            // Not media types: like no header.
            (&["application/json something"], Missing),
            (&["application/json\u{FFFD}"], Missing),
            // Wildcards are ranges, not the type of a body.
            (&["*/*"], Missing),
            (&["application/*; charset=utf-8"], Missing),
            (&["*/json"], Missing),
            (&["text/plain, */*"], Missing),
            (&["json"], Missing),
            (&["text/plain, "], Missing),
            (&["text/plain", ""], Missing),
            // A quoted comma is no separator.
            (&["multipart/form-data; boundary=\"a,b\""], Other),
            (&["multipart/form-data; boundary=\"a\\\",b\""], Other),
            (&["text/plain; x=\"a,application/json\""], Other),
            (&["application/problem+json; v=\"1,2\""], Json),
            // A quote planted to hide the JSON part from a quote-aware split,
            // as Envoy joins `text/plain; x="` and `application/json`.
            (&["text/plain; x=\",application/json"], Json),
            (&["text/plain; x=\"a,application/json; y=\""], Json),
            // A quote that never closes, with no JSON in sight: unreadable.
            (&["text/plain; x=\"a,b"], Missing),
        ];
        for (values, want) in cases {
            assert_eq!(class(values), *want, "{values:?}");
        }
    }

    #[test]
    fn charsets_other_than_utf8_are_foreign() {
        let foreign = |values: &[&str]| read(values).foreign_charset;
        for plain in [
            &[][..],
            &["application/json"],
            &["application/json; charset=utf-8"],
            &["application/json;charset=UTF-8"],
            &["application/json; charset=\"utf-8\""],
            &["application/json; charset = utf8 "],
            &["application/json; boundary=x", "text/plain"],
            &["text/plain; format=flowed, application/json; charset=utf-8"],
        ] {
            assert!(!foreign(plain), "{plain:?}");
        }
        for other in [
            &["application/json; charset=utf-7"][..],
            &["application/json; CHARSET=\"UTF-7\""],
            &["application/json; charset=iso-8859-1"],
            &["application/json; charset=us-ascii"],
            &["application/json; charset=utf-16"],
            &["application/json; charset=hz-gb-2312"],
            &["application/json; charset="],
            &["application/json; charset=utf-8; charset=utf-7"],
            &["application/json; charset*=utf-8''x"],
            &["application/json;\u{A0}charset=utf-7"],
            &["application/json;\u{FFFD}charset=utf-7"],
            &["application/json;\x0bcharset=utf-7"],
            &["application/json; x-charset=utf-7"],
            &["application/json; x=\"a;charset=utf-7\""],
            &["application/json", "text/plain; charset=utf-7"],
            &["application/json, text/plain;charset=utf-7"],
        ] {
            assert!(foreign(other), "{other:?}");
        }
    }

    fn is_json(range: &str, header: &str) -> bool {
        MediaRange::parse(range).unwrap().matches(essence(header))
    }

    #[test]
    fn matching_ignores_case_and_parameters_and_honours_wildcards() {
        assert!(is_json("application/json", "application/json"));
        assert!(is_json(
            "application/json",
            "Application/JSON; charset=utf-8"
        ));
        assert!(is_json(
            "application/json",
            "  application/json ;charset=\"x\""
        ));
        assert!(is_json("application/*+json", "Application/Problem+JSON"));
        assert!(!is_json("application/*+json", "Application/Problem+XML"));
        assert!(!is_json("application/json", "application/jsonx"));
        assert!(!is_json("application/json", "text/json"));
        assert!(is_json("application/*+json", "application/problem+json"));
        assert!(is_json(
            "application/*+json",
            "application/vnd.api+json; v=2"
        ));
        assert!(!is_json("application/*+json", "application/json"));
        assert!(!is_json("application/*+json", "application/problem+xml"));
        assert!(is_json("*/*", "text/plain"));
        assert!(!is_json("application/json", ""));
        // ASCII whitespace (HTTP's optional whitespace is spaces and tabs) is
        // trimmed; other text is not.
        assert!(is_json(
            "application/json",
            "\tapplication/json\t; charset=utf-8"
        ));
        assert!(!is_json("application/json", "application/json\u{3000}"));
        assert_eq!(essence("caf\u{e9}/x; y"), "caf\u{e9}/x");
        assert!(!is_json("*/*", "application"));
        assert!(!is_json("application/json", "application"));
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in [
            "json",
            "application/",
            "/json",
            "application/json; charset=utf-8",
            "a b/c",
        ] {
            assert!(MediaRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn glob_backtracks() {
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a*b", b"axxc"));
        assert!(glob(b"**+json", b"vnd+json"));
    }
}
