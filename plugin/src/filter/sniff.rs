//! `sniff`: whether a body sent under a content type that is not JSON looks
//! like JSON, from its first bytes, however the host cuts them.
//!
//! Services that parse any body as JSON (Go's `json.NewDecoder(r.Body)`,
//! `express.json({type: "*/*"})`, Flask's `get_json(force=True)`) make the
//! content type no guarantee: JSON sent as `text/plain` would pass a filter
//! that trusts it. Sniffing inspects what such a parser could take for a
//! document: a body whose first character other than JSON whitespace opens
//! an object or an array, after a UTF-8 byte order mark or not, also when
//! it is written in UTF-16 or UTF-32 (NUL bytes between the characters, a
//! UTF-16 or UTF-32 byte order mark first), which Python's, Jackson's and Express's
//! parsers decode. The inspector then judges it (a NUL byte is no JSON it
//! accepts). Anything else, forms, files (a JPEG, an MP4), CSV with a byte
//! order mark, text in any script, is not JSON to them either.
//!
//! A body of JSON Lines is a stream of values, and a reader of them takes a
//! scalar first line (`0`) as readily as an object: there, a first value
//! that opens a string or a number, or is all of `true`, `false`, `null`,
//! `NaN` or `Infinity` (which Python's `json` reads), looks like JSON too.
//!
//! Lenient parsers skip a comment or an anti-XSSI prefix before the value:
//! Ruby's `JSON.parse` takes `/* */` and `//` comments, Gson `)]}'`. A body
//! that starts with one looks like JSON (and the inspector refuses it).
//! Gson also skips `#` comments, but a `#` starts too much text (Markdown)
//! to be taken for JSON. Lenient parsers also skip more than JSON's
//! whitespace before the value: Json.NET every `char.IsWhiteSpace` (vertical
//! tab, form feed, U+00A0, U+2028, U+3000 and the other Unicode spaces) and
//! NUL bytes, yajl the vertical tab and form feed. These are read past too,
//! so `\x0C{` looks like JSON (and is refused). Other control bytes are
//! not: they start binary data (protobuf, gRPC frames, terminal logs with
//! colour codes) far more often than text, though cJSON, org.json and
//! json-bigint skip every one of them (the README names the gap).

/// The UTF-8 byte order mark.
const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The first bytes of a body, read until they show whether it looks like
/// JSON.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sniffer {
    /// Body bytes read so far.
    seen: u64,
    /// How many bytes of a UTF-8 byte order mark the body starts with.
    bom: u8,
    /// The first byte of a UTF-16 or UTF-32 byte order mark (`FF FE`,
    /// `FE FF`, or UTF-32BE's `00 00 FE FF`), once one has begun.
    utf16: u8,
    /// NUL bytes among the first two: 2 when the mark began after them.
    lead_nuls: u8,
    /// The body is JSON Lines: scalars look like JSON too.
    lines: bool,
    /// A start that looks like JSON only once whole, while it is read.
    pending: Option<Pending>,
    /// The body follows an upgrade or a `CONNECT` (see [`Sniffer::tunnel`]).
    tunnel: bool,
}

/// Starts that look like JSON once whole: the anti-XSSI prefix, then the
/// literals only a JSON Lines body may start with.
const LITERALS: [&[u8]; 6] = [b")]}'", b"true", b"false", b"null", b"NaN", b"Infinity"];

/// How many of [`LITERALS`] any body may start with (the rest: JSON Lines).
const ANY_BODY: usize = 1;

/// A start being read that decides only once whole.
#[derive(Debug, Clone, Copy)]
enum Pending {
    /// One of [`LITERALS`], of which `matched` bytes have come.
    Literal { text: &'static [u8], matched: u8 },
    /// A `/`: a `*` or a `/` next opens a comment.
    Slash,
    /// The first `len` bytes of a UTF-8 sequence that may be one of
    /// [`UNICODE_SPACES`].
    Space { bytes: [u8; 3], len: u8 },
}

/// The Unicode spaces that Json.NET skips before a value (.NET's
/// `char.IsWhiteSpace` beyond ASCII), in UTF-8: NEL, no-break space, ogham
/// space mark, the spaces U+2000 to U+200A, the line and paragraph
/// separators, the narrow no-break and medium mathematical spaces, and the
/// ideographic space.
const UNICODE_SPACES: [&[u8]; 19] = [
    b"\xC2\x85",
    b"\xC2\xA0",
    b"\xE1\x9A\x80",
    b"\xE2\x80\x80",
    b"\xE2\x80\x81",
    b"\xE2\x80\x82",
    b"\xE2\x80\x83",
    b"\xE2\x80\x84",
    b"\xE2\x80\x85",
    b"\xE2\x80\x86",
    b"\xE2\x80\x87",
    b"\xE2\x80\x88",
    b"\xE2\x80\x89",
    b"\xE2\x80\x8A",
    b"\xE2\x80\xA8",
    b"\xE2\x80\xA9",
    b"\xE2\x80\xAF",
    b"\xE2\x81\x9F",
    b"\xE3\x80\x80",
];

/// Whether the start `seq` of a UTF-8 sequence is one of [`UNICODE_SPACES`]
/// (`Some(true)`), cannot become one (`Some(false)`), or may (`None`).
fn unicode_space(seq: &[u8]) -> Option<bool> {
    if UNICODE_SPACES.contains(&seq) {
        Some(true)
    } else if UNICODE_SPACES.iter().any(|space| space.starts_with(seq)) {
        None
    } else {
        Some(false)
    }
}

impl Sniffer {
    /// A sniffer for a body of JSON Lines when `lines`, of one document
    /// otherwise.
    pub fn new(lines: bool) -> Self {
        Sniffer {
            lines,
            ..Sniffer::default()
        }
    }

    /// A sniffer for the body of a WebSocket handshake or a `CONNECT`
    /// before the response: any byte is one a conforming client does not
    /// send yet, and "looks like JSON" (is inspected); the response that
    /// opens the tunnel decides the rest (see `Session::on_response_headers`).
    pub fn tunnel() -> Self {
        Sniffer {
            tunnel: true,
            ..Sniffer::default()
        }
    }

    /// Body bytes read so far (all of them, while undecided).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Reads the next bytes of the body: `Some(true)` once they look like
    /// JSON, `Some(false)` once they cannot be, `None` while only
    /// whitespace, NUL bytes or a byte order mark have come.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<bool> {
        if self.tunnel {
            return (!bytes.is_empty()).then_some(true);
        }
        for &b in bytes {
            let at = self.seen;
            self.seen += 1;
            if let Some(Pending::Space { mut bytes, len }) = self.pending {
                bytes[usize::from(len)] = b;
                let len = len + 1;
                match unicode_space(&bytes[..usize::from(len)]) {
                    Some(true) => self.pending = None,
                    Some(false) => return Some(false),
                    None => self.pending = Some(Pending::Space { bytes, len }),
                }
                continue;
            }
            if let Some(pending) = self.pending {
                // NUL bytes stand between the characters in UTF-16.
                if b == 0 {
                    continue;
                }
                let Pending::Literal { text, matched } = pending else {
                    return Some(matches!(b, b'*' | b'/'));
                };
                if text.get(usize::from(matched)) != Some(&b) {
                    return Some(false);
                }
                if usize::from(matched) + 1 == text.len() {
                    return Some(true);
                }
                self.pending = Some(Pending::Literal {
                    text,
                    matched: matched + 1,
                });
                continue;
            }
            if at < 3 && u64::from(self.bom) == at && b == UTF8_BOM[at as usize] {
                self.bom += 1;
                continue;
            }
            if (1..3).contains(&self.bom) {
                // `EF` or `EF BB` and then something else: UTF-8 text.
                return Some(false);
            }
            let bom_start = (at == 0 && matches!(b, 0xFE | 0xFF))
                || (at == 2 && self.lead_nuls == 2 && b == 0xFE);
            if bom_start {
                self.utf16 = b;
                continue;
            }
            let mark_ends_at = if self.lead_nuls == 2 { 3 } else { 1 };
            if self.utf16 != 0 && at == mark_ends_at {
                // `FF FE`, `FE FF` or `00 00 FE FF`: UTF-16 or UTF-32 text
                // follows.
                if b != self.utf16 ^ 1 {
                    return Some(false);
                }
                continue;
            }
            if at < 2 && b == 0 {
                self.lead_nuls += 1;
            }
            match b {
                // NUL bytes stand between the characters of UTF-16 and
                // UTF-32 text: `00 7B` is `{` in UTF-16BE (and Json.NET
                // skips them). The vertical tab and the form feed are
                // whitespace to lenient parsers.
                b' ' | b'\t' | b'\n' | b'\r' | 0x00 | 0x0B | 0x0C => {}
                0xC2 | 0xE1..=0xE3 => {
                    self.pending = Some(Pending::Space {
                        bytes: [b, 0, 0],
                        len: 1,
                    })
                }
                b'{' | b'[' => return Some(true),
                b'"' | b'-' | b'0'..=b'9' if self.lines => return Some(true),
                b'/' => self.pending = Some(Pending::Slash),
                _ => {
                    let usable = if self.lines { LITERALS.len() } else { ANY_BODY };
                    let text = LITERALS[..usable].iter().find(|l| l.first() == Some(&b));
                    let Some(&text) = text else {
                        return Some(false);
                    };
                    self.pending = Some(Pending::Literal { text, matched: 1 });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer for `body` (one document) fed whole, after checking that
    /// every 2-way split and one byte at a time give the same.
    fn sniff(body: &[u8]) -> Option<bool> {
        sniff_as(false, body)
    }

    /// The same for a body of JSON Lines when `lines`.
    fn sniff_as(lines: bool, body: &[u8]) -> Option<bool> {
        let whole = Sniffer::new(lines).feed(body);
        let run = |cuts: &[usize]| {
            let mut sniffer = Sniffer::new(lines);
            let mut prev = 0;
            for &c in cuts.iter().chain(std::iter::once(&body.len())) {
                if let Some(answer) = sniffer.feed(&body[prev..c]) {
                    return Some(answer);
                }
                prev = c;
            }
            None
        };
        for cut in 0..=body.len() {
            assert_eq!(run(&[cut]), whole, "{body:?} cut at {cut}");
        }
        let bytewise: Vec<usize> = (1..body.len()).collect();
        assert_eq!(run(&bytewise), whole, "{body:?} byte by byte");
        whole
    }

    #[test]
    fn objects_arrays_and_other_encodings_of_json_look_like_json() {
        for body in [
            &b"{}"[..],
            b"[1]",
            b" \t\r\n {\"a\":1}",
            b"\xEF\xBB\xBF{}",
            b"\xEF\xBB\xBF  [",
            // UTF-16BE, UTF-16LE after a space, UTF-32BE, BOMs of UTF-16.
            b"\x00{\x00}",
            b" \x00{\x00",
            b"\x00\x00\x00[",
            // UTF-32BE after its byte order mark (Python decodes it).
            b"\x00\x00\xFE\xFF\x00\x00\x00[",
            b"\xFF\xFE{\x00",
            b"\xFE\xFF\x00{",
            b"\xFF\xFE\x00\x00[\x00\x00\x00",
            // The inspector judges the rest: these are refused there.
            b"{oops",
            b"[,]",
            // Comments and the anti-XSSI prefix that lenient parsers skip.
            b"/* x */{}",
            b" //x\n[]",
            b")]}'\n{}",
            b"\x00/\x00*",
            // What org.json and Json.NET skip before the value.
            b"\x0C{}",
            b"\x0B\x0C [",
            b"\xC2\xA0{}",
            b"\xC2\x85 [",
            b"\xE2\x80\xA8\xE2\x80\x8A{",
            b"\xE3\x80\x80\xE1\x9A\x80[",
            b"\xE2\x81\x9F\x0C\xE2\x80\xAF{",
            // NUL bytes, which Json.NET skips, even four in a row.
            b"\x00\x00\x00\x0C\x00\x00\x00{",
            b"\x00\x00\x00\x00{",
        ] {
            assert_eq!(sniff(body), Some(true), "{body:?}");
        }
    }

    #[test]
    fn everything_else_is_not_json() {
        for body in [
            &b"a=1&b=%7B%7D"[..],
            b"--boundary\r\n{\"a\":1}",
            b"\"a string\"",
            b"12345",
            b"null",
            b"\xEF\xBB\xBFname,age\r\n",
            // U+FF08 FULLWIDTH LEFT PARENTHESIS: EF BC 88.
            b"\xEF\xBC\x88x",
            b"/x",
            b"/ *",
            b")]}x",
            b"# {}",
            b"  \xEF\xBB\xBF{}",
            // Not spaces: the copyright sign, a zero-width space, the euro
            // sign, a DEL.
            b"\xC2\xA9{}",
            b"\xE2\x80\x8B{}",
            b"\xE2\x82\xAC[",
            b"\x7F{}",
            // Other control bytes start binary data: protobuf, a gRPC frame
            // of 379 bytes, text with a terminal colour code, an icon.
            b"\x08\x01\x10\x7B",
            b"\x00\x00\x00\x01\x7B",
            b"\x1B[32mPASS\x1B[0m",
            b"\x01\x1F{",
            b"\x00\x00\x01\x00\x01\x00\x10\x10",
            b"\x89PNG\r\n",
            // Files whose first bytes are a UTF-16 or UTF-32 look-alike.
            b"\xFF\xD8\xFF\xE0",
            b"\x00\x00\x00\x18ftypmp42",
            b"\x00asm\x01\x00\x00\x00",
            b"\x00\x00\x01\x00",
            // UTF-16 text that is not JSON.
            b"\xFF\xFEh\x00i\x00",
            b"\xFE\xFE{",
            // Two NULs and half a UTF-32BE byte order mark, or a UTF-16 one.
            b"\x00\x00\xFE\x00",
            b"\x00\x00\xFF\xFE",
            b"\x00\xFE\xFF{",
        ] {
            assert_eq!(sniff(body), Some(false), "{body:?}");
        }
    }

    /// In JSON Lines a scalar first value looks like JSON; the same bodies
    /// as one document do not (see `everything_else_is_not_json`).
    #[test]
    fn json_lines_that_start_with_a_scalar_look_like_json() {
        let lines = |body: &[u8]| sniff_as(true, body);
        for body in [
            &b"0\n{\"a\":1}\n"[..],
            b"-1",
            b"\"a string\"\n",
            b" \n true\n",
            b"false",
            b"null\n[]",
            b"nullable",
            b"\x00n\x00u\x00l\x00l",
            b"NaN\n",
            b"Infinity",
            b"{}",
            b"\xEF\xBB\xBF[1]",
        ] {
            assert_eq!(lines(body), Some(true), "{body:?}");
            if body.first() != Some(&b'{') && !body.starts_with(b"\xEF") {
                assert!(!sniff(body).unwrap_or(false), "{body:?}");
            }
        }
        for body in [
            &b"name=x&a=1"[..],
            b"tru e",
            b"fals",
            b"+1",
            b"a,b\r\n",
            b"\x89PNG",
            b"Nan",
            b"# title",
        ] {
            assert_ne!(lines(body), Some(true), "{body:?}");
        }
        // Undecided until the literal is whole.
        assert_eq!(lines(b"nul"), None);
    }

    /// Before a tunnel opens, any byte is inspected, wherever the cuts.
    #[test]
    fn a_tunnel_waits_for_its_response_and_inspects_any_byte_before_it() {
        let mut sniffer = Sniffer::tunnel();
        assert_eq!(sniffer.feed(b""), None);
        assert_eq!(sniffer.feed(b"\x81"), Some(true));
        assert_eq!(Sniffer::tunnel().feed(b"POST /"), Some(true));
    }

    #[test]
    fn whitespace_and_a_byte_order_mark_alone_decide_nothing() {
        for body in [
            &b""[..],
            b"   ",
            b"\r\n\t",
            b"\xEF",
            b"\xEF\xBB",
            b"\xEF\xBB\xBF",
            b"\xEF\xBB\xBF \n",
            b"\x00\x00",
            b"\xFF",
            b"\xFE\xFF\x00",
            b"\x0C\x0B",
            b"\xE2",
            b"\xE2\x80",
            b"\xC2\xA0\xE3\x80",
            b"\x00\x00\x00",
        ] {
            assert_eq!(sniff(body), None, "{body:?}");
        }
    }
}
