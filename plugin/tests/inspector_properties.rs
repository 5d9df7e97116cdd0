//! Property tests of the inspector over generated and mutated documents:
//! the verdict never depends on how the body is cut into chunks, and for
//! complete documents it agrees with serde_json.
//!
//! The oracle for complete documents is serde_json, with the differences
//! by design made explicit: see `support/serde_oracle.rs`.

#[path = "support/number_oracle.rs"]
mod number_oracle;
#[path = "support/serde_oracle.rs"]
mod serde_oracle;

use json_sanitizer::inspector::{
    DuplicateKeys, Inspector, JsonOptions, Limits, Numbers, MAX_EXACT_INTEGER,
};
use json_sanitizer::violation::{Violation, ViolationKind};
use number_oracle::in_interoperable_range;
use proptest::prelude::*;
use serde_oracle::{NoDuplicates, NoFoldedDuplicates, SerdeVerdict};

/// A JSON tree whose rendering we control (whitespace, escapes, duplicates).
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A number token rendered as is.
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,6}",
        prop::collection::vec(any::<char>(), 0..10).prop_map(|v| v.into_iter().collect()),
        "[\"\\\\/{}\\[\\]:,]{0,4}",
    ]
}

fn json() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::Int),
        (-1.0e9..1.0e9f64).prop_map(J::Float),
        text().prop_map(J::Str),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(J::Arr),
            prop::collection::vec((prop_oneof!["[a-c]", text()], inner), 0..6).prop_map(J::Obj),
        ]
    })
}

/// Deterministic choices for rendering, from a proptest-chosen seed.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn ws(&mut self, out: &mut Vec<u8>) {
        for _ in 0..self.pick(4).saturating_sub(1) {
            out.push(b" \n\t\r"[self.pick(4) as usize]);
        }
    }
}

fn render_str(s: &str, c: &mut Choices, out: &mut Vec<u8>) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            c0 if (c0 as u32) < 0x20 || c.pick(5) == 0 => {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    let esc = if c.pick(2) == 0 {
                        format!("\\u{u:04x}")
                    } else {
                        format!("\\u{u:04X}")
                    };
                    out.extend_from_slice(esc.as_bytes());
                }
            }
            '/' if c.pick(2) == 0 => out.extend_from_slice(b"\\/"),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn render(v: &J, c: &mut Choices, out: &mut Vec<u8>) {
    c.ws(out);
    match v {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        J::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        J::Float(f) => {
            let s = if c.pick(2) == 0 {
                format!("{f}")
            } else {
                format!("{f:e}")
            };
            out.extend_from_slice(s.as_bytes());
        }
        J::Num(n) => out.extend_from_slice(n.as_bytes()),
        J::Str(s) => render_str(s, c, out),
        J::Arr(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                render(item, c, out);
            }
            c.ws(out);
            out.push(b']');
        }
        J::Obj(members) => {
            out.push(b'{');
            for (n, (k, item)) in members.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                c.ws(out);
                render_str(k, c, out);
                c.ws(out);
                out.push(b':');
                render(item, c, out);
            }
            c.ws(out);
            out.push(b'}');
        }
    }
    c.ws(out);
}

/// Bytes that matter to the grammar, UTF-8 and escapes.
const MUTATION_BYTES: &[u8] =
    b"{}[]\":,\\u0159eE.+- tfnl\x00\x1f\x7f\x80\xbf\xc3\xed\xa0\xf0\xf4\xff";

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop::sample::select(MUTATION_BYTES);
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(p, b)| Mutation::Insert(p, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), byte).prop_map(|(p, b)| Mutation::Replace(p, b)),
    ]
}

fn mutate(mut doc: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = doc.len();
        match *m {
            Mutation::Insert(p, b) => doc.insert(p % (n + 1), b),
            Mutation::Delete(p) if n > 0 => {
                doc.remove(p % n);
            }
            Mutation::Replace(p, b) if n > 0 => doc[p % n] = b,
            _ => {}
        }
    }
    doc
}

fn document() -> impl Strategy<Value = Vec<u8>> {
    (
        json(),
        any::<u64>(),
        prop::collection::vec(mutation(), 0..3),
    )
        .prop_map(|(v, seed, muts)| {
            let mut out = Vec::new();
            render(&v, &mut Choices(seed | 1), &mut out);
            mutate(out, &muts)
        })
}

/// Text that exercises the fast path's string handling: runs of multi-byte
/// UTF-8 (CJK, emoji), escapes of every kind, and long plain runs.
fn rich_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,40}",
        "[\\u{3040}-\\u{30ff}\\u{4e00}-\\u{4fff}a-z ]{0,30}",
        "[\\u{1f600}-\\u{1f64f}\\u{e9}\\u{2013}\\\\/\"\\n\\t\\u{0}-\\u{1f}a]{0,20}",
    ]
}

/// Numbers of every shape the grammar allows, some long.
fn rich_number() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        "(0|[1-9][0-9]{0,20})",
        prop::option::of("[0-9]{1,20}"),
        prop::option::of(("[eE]", "[+-]?", "[0-9]{1,4}")),
    )
        .prop_map(|(neg, int, frac, exp)| {
            let mut n = String::new();
            if neg {
                n.push('-');
            }
            n.push_str(&int);
            if let Some(f) = frac {
                n.push('.');
                n.push_str(&f);
            }
            if let Some((e, sign, d)) = exp {
                n.push_str(&e);
                n.push_str(&sign);
                n.push_str(&d);
            }
            n
        })
}

/// Documents rich in what the fast path handles (escapes, numbers,
/// non-ASCII, wide objects around the 64-key switch from scan to table, with
/// occasional repeated keys), then lightly mutated.
fn rich_document() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        rich_text().prop_map(J::Str),
        rich_number().prop_map(J::Num),
    ];
    let tree = leaf.prop_recursive(4, 160, 80, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(J::Arr),
            prop::collection::vec((prop_oneof!["[a-z]{1,2}", rich_text()], inner), 0..80)
                .prop_map(J::Obj),
        ]
    });
    (tree, any::<u64>(), prop::collection::vec(mutation(), 0..2)).prop_map(|(v, seed, muts)| {
        let mut out = Vec::new();
        render(&v, &mut Choices(seed | 1), &mut out);
        mutate(out, &muts)
    })
}

/// Keys for [`shaped_document`]: short and long (around the 16-byte
/// compare), empty, non-ASCII, and `xy`, which `render_str` may also spell
/// with escapes.
const SHAPE_KEYS: &[&str] = &[
    "id",
    "name",
    "a",
    "b",
    "xy",
    "",
    "in_reply_to_status_id_str",
    "sixteen_bytes_ok",
    "seventeen_bytes_k",
    "caf\u{e9}",
    "\u{1F600}",
];

/// The whitespace of a [`shaped_document`]: random, or as a pretty-printer
/// lays it out, `indent` spaces a level, so that the objects at one depth
/// repeat their members' leads (comma, whitespace, key, colon) byte for
/// byte and the same shape at another depth does not.
#[derive(Clone, Copy)]
enum Layout {
    Random,
    Pretty(usize),
}

impl Layout {
    /// Whitespace before a line at `level`.
    fn line(self, c: &mut Choices, level: u32, out: &mut Vec<u8>) {
        match self {
            Layout::Random => c.ws(out),
            Layout::Pretty(indent) => {
                out.push(b'\n');
                out.extend(std::iter::repeat_n(b' ', indent * level as usize));
            }
        }
    }

    /// Whitespace after a colon.
    fn after_colon(self, c: &mut Choices, out: &mut Vec<u8>) {
        match self {
            Layout::Random => c.ws(out),
            Layout::Pretty(_) => out.push(b' '),
        }
    }
}

/// One object of a run of objects of the same shape: `base`'s keys, or now
/// and then a variation of them (cut short, one more key, one key replaced
/// or two swapped, which may repeat a key), with nested objects of the same
/// or another shape as values.
fn shaped_object(c: &mut Choices, layout: Layout, base: &[usize], depth: u32, out: &mut Vec<u8>) {
    let mut keys = base.to_vec();
    match c.pick(12) {
        0 => keys.truncate(c.pick(keys.len() as u64 + 1) as usize),
        1 => keys.push(c.pick(SHAPE_KEYS.len() as u64) as usize),
        2 if !keys.is_empty() => {
            let at = c.pick(keys.len() as u64) as usize;
            keys[at] = c.pick(SHAPE_KEYS.len() as u64) as usize;
        }
        3 if keys.len() > 1 => {
            let (x, y) = (c.pick(keys.len() as u64), c.pick(keys.len() as u64));
            keys.swap(x as usize, y as usize);
        }
        _ => {}
    }
    out.push(b'{');
    for (n, &k) in keys.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        layout.line(c, depth + 2, out);
        if c.pick(8) == 0 {
            render_str(SHAPE_KEYS[k], c, out);
        } else {
            out.push(b'"');
            out.extend_from_slice(SHAPE_KEYS[k].as_bytes());
            out.push(b'"');
        }
        out.push(b':');
        layout.after_colon(c, out);
        match c.pick(6) {
            0 if depth < 3 => {
                // The parent's shape (same first key) or a shape of its own.
                let inner: Vec<usize> = if c.pick(2) == 0 {
                    base.to_vec()
                } else {
                    shape_keys(c)
                };
                if c.pick(2) == 0 {
                    shaped_object(c, layout, &inner, depth + 1, out);
                } else {
                    out.push(b'[');
                    for m in 0..=c.pick(3) {
                        if m > 0 {
                            out.push(b',');
                        }
                        shaped_object(c, layout, &inner, depth + 1, out);
                    }
                    out.push(b']');
                }
            }
            1 => out.extend_from_slice(b"\"text\""),
            2 => out.extend_from_slice([&b"[]"[..], b"[1, 2]", b"[\"a\",{}]"][c.pick(3) as usize]),
            _ => out.extend_from_slice(c.pick(1000).to_string().as_bytes()),
        }
    }
    layout.line(c, depth + 1, out);
    out.push(b'}');
}

/// A shape: up to eight distinct keys of [`SHAPE_KEYS`].
fn shape_keys(c: &mut Choices) -> Vec<usize> {
    let mut keys: Vec<usize> = Vec::new();
    for _ in 0..=c.pick(8) {
        let k = c.pick(SHAPE_KEYS.len() as u64) as usize;
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// An array of objects that mostly repeat one or two shapes, compact,
/// pretty-printed or with random whitespace: the input the shape cache is
/// for, with the duplicates it must still find.
fn shaped_document() -> impl Strategy<Value = Vec<u8>> {
    (any::<u64>(), 1usize..24).prop_map(|(seed, n)| {
        let mut c = Choices(seed | 1);
        let layout = match c.pick(3) {
            0 => Layout::Random,
            _ => Layout::Pretty(c.pick(9) as usize),
        };
        let shapes = [shape_keys(&mut c), shape_keys(&mut c)];
        let mut out = b"[".to_vec();
        for k in 0..n {
            if k > 0 {
                out.push(b',');
            }
            let base = &shapes[usize::from(c.pick(4) == 0)];
            shaped_object(&mut c, layout, base, 0, &mut out);
        }
        out.push(b']');
        out
    })
}

fn inspect_in_chunks(limits: &Limits, body: &[u8], cuts: &[usize]) -> Result<(), Violation> {
    inspect_with(limits, &JsonOptions::default(), body, cuts)
}

fn inspect_with(
    limits: &Limits,
    options: &JsonOptions,
    body: &[u8],
    cuts: &[usize],
) -> Result<(), Violation> {
    inspect_noted(limits, options, body, cuts).0
}

/// Like [`inspect_with`], with the violation noted for `report_only`.
fn inspect_noted(
    limits: &Limits,
    options: &JsonOptions,
    body: &[u8],
    cuts: &[usize],
) -> (Result<(), Violation>, Option<Violation>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut ins = Inspector::new(limits, options);
    let mut prev = 0;
    for c in cuts.into_iter().chain(std::iter::once(body.len())) {
        if ins.feed(&body[prev..c]).is_err() {
            break;
        }
        prev = c;
    }
    (ins.finish(), ins.noted())
}

/// The verdict on `doc` under `limits` is the same whole, cut at `cuts`,
/// and one byte per chunk (where no token is ever whole in a chunk, so the
/// reference state machine reads everything and the fast path nothing).
fn same_verdict_for_any_chunking(
    limits: &Limits,
    doc: &[u8],
    cuts: &[usize],
) -> Result<(), TestCaseError> {
    same_verdict_with(limits, &JsonOptions::default(), doc, cuts)
}

fn same_verdict_with(
    limits: &Limits,
    options: &JsonOptions,
    doc: &[u8],
    cuts: &[usize],
) -> Result<(), TestCaseError> {
    let whole = inspect_with(limits, options, doc, &[]);
    prop_assert_eq!(&inspect_with(limits, options, doc, cuts), &whole);
    let bytewise: Vec<usize> = (1..doc.len()).collect();
    prop_assert_eq!(&inspect_with(limits, options, doc, &bytewise), &whole);
    Ok(())
}

/// The digits of 2^1024 − 2^970, the smallest magnitude that rounds to
/// infinity as a double, worked out here by doubling decimal digits.
fn overflow_digits() -> String {
    fn doubled(n: &mut Vec<u8>, times: usize) {
        for _ in 0..times {
            let mut carry = 0;
            for d in n.iter_mut() {
                let v = *d * 2 + carry;
                (*d, carry) = (v % 10, v / 10);
            }
            if carry > 0 {
                n.push(carry);
            }
        }
    }
    let (mut high, mut low) = (vec![1u8], vec![1u8]);
    doubled(&mut high, 1024);
    doubled(&mut low, 970);
    let mut borrow = 0;
    for (k, d) in high.iter_mut().enumerate() {
        let sub = low.get(k).copied().unwrap_or(0) + borrow;
        borrow = u8::from(*d < sub);
        *d = *d + 10 * borrow - sub;
    }
    high.iter()
        .rev()
        .skip_while(|&&d| d == 0)
        .map(|&d| char::from(b'0' + d))
        .collect()
}

/// Number tokens around both edges of the interoperable range: integers
/// near ±2^53 and of any length, and decimals whose digits follow the
/// overflow threshold's for a while before they differ, written with the
/// point and the exponent anywhere that keeps them near 10^308.
fn edge_number() -> impl Strategy<Value = String> {
    let integer = (-4i64..4, any::<bool>()).prop_map(|(delta, negative)| {
        let n = (MAX_EXACT_INTEGER as i64 + 1 + delta).unsigned_abs();
        format!("{}{n}", if negative { "-" } else { "" })
    });
    let long_integer =
        ("-?[1-9][0-9]{0,24}", any::<bool>()).prop_map(
            |(n, frac)| {
                if frac {
                    format!("{n}.0")
                } else {
                    n
                }
            },
        );
    // Often all 309 digits, then zeros: the threshold itself.
    let shared = prop_oneof![1usize..309, 300usize..=309];
    let next = prop_oneof![0u8..10, Just(0)];
    let tail = prop_oneof!["[0-9]{0,3}", "0{0,3}"];
    let near_overflow = (
        shared,
        next,
        tail,
        0usize..400,
        -3i64..3,
        0usize..3,
        any::<bool>(),
    )
        .prop_map(|(shared, next, tail, point, shift, zeros, upper)| {
            let t = overflow_digits();
            let mut digits = t[..shared.min(t.len())].to_string();
            digits.push(char::from(b'0' + next));
            digits.push_str(&tail);
            let point = point.min(digits.len()).max(1);
            let exponent = 309 - point as i64 + zeros as i64 + shift;
            let e = if upper { "E" } else { "e" };
            if zeros > 0 {
                format!("0.{}{digits}{e}{exponent}", "0".repeat(zeros - 1))
            } else if point == digits.len() {
                format!("{digits}{e}{exponent:+}")
            } else {
                format!("{}.{}{e}{exponent:+}", &digits[..point], &digits[point..])
            }
        });
    let small = "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,4})?([eE][+-]?[0-9]{1,3})?";
    prop_oneof![integer, long_integer, near_overflow, small]
}

/// Keys that Go's `encoding/json` matches to a few fields (`id`, `kind`,
/// `size`, `café`, `ω`, `straße`, `σ`), spelled with other cases, K, ſ,
/// Ω, ẞ and ς, and `ıd` and `İD` for `id`, beside keys it keeps apart
/// (look-alikes, `ss`).
const CASED_KEYS: &[&str] = &[
    "id",
    "Id",
    "ID",
    "kind",
    "KIND",
    "\u{212A}ind",
    "\u{212A}",
    "k",
    "K",
    "size",
    "\u{17F}ize",
    "SIZE",
    "s",
    "\u{17F}",
    "caf\u{e9}",
    "CAF\u{e9}",
    "caf\u{c9}",
    "\u{2126}",
    "\u{3c9}",
    "\u{3a9}",
    "stra\u{df}e",
    "STRA\u{1e9e}E",
    "strasse",
    "\u{3c3}",
    "\u{3c2}",
    "\u{3a3}",
    "\u{131}d",
    "\u{130}D",
    "longer_key_name_1",
    "LONGER_KEY_NAME_1",
    "x",
];

/// `doc` on one line: `\n` and `\r` become spaces, and U+0085, U+2028 and
/// U+2029 as many spaces as they had bytes (whitespace where they were
/// allowed whitespace, text where they were text; a raw one elsewhere was
/// refused anyway, as a space may be).
fn one_line(doc: &[u8]) -> Vec<u8> {
    let mut out = doc.to_vec();
    for i in 0..out.len() {
        let len = match out[i..] {
            [b'\n' | b'\r', ..] => 1,
            [0xC2, 0x85, ..] => 2,
            [0xE2, 0x80, 0xA8 | 0xA9, ..] => 3,
            _ => 0,
        };
        out[i..i + len].fill(b' ');
    }
    out
}

/// Arrays of small objects keyed from [`CASED_KEYS`] (so shapes repeat),
/// some nested, rendered with random whitespace and escapes.
fn cased_document() -> impl Strategy<Value = Vec<u8>> {
    let key = (0..CASED_KEYS.len()).prop_map(|i| CASED_KEYS[i].to_string());
    let leaf = prop_oneof![
        Just(J::Null),
        any::<i64>().prop_map(J::Int),
        "[a-z]{0,3}".prop_map(J::Str)
    ];
    let object = leaf.prop_recursive(2, 24, 5, move |inner| {
        prop::collection::vec((key.clone(), inner), 0..6).prop_map(J::Obj)
    });
    (prop::collection::vec(object, 1..8), any::<u64>()).prop_map(|(items, seed)| {
        let mut out = Vec::new();
        render(&J::Arr(items), &mut Choices(seed | 1), &mut out);
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Any body, any chunking: the same verdict, kind and offset.
    #[test]
    fn verdict_is_independent_of_chunking(
        doc in document(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        same_verdict_for_any_chunking(&Limits::default(), &doc, &cuts)?;
    }

    /// Asking for the verdict at the end before the end changes nothing
    /// when there is none: bytes fed after it get the verdict and the note
    /// they would have had without it (the filter asks at a body's declared
    /// length). Top-level numbers, JSON Lines and interoperable numbers
    /// (whose range a number's end decides) are where an end has something
    /// to check.
    #[test]
    fn an_end_verdict_asked_early_leaves_the_inspector_as_it_was(
        doc in prop_oneof![document(), "-?[0-9]{1,22}(\\.[0-9]{1,4})?( |\n)?".prop_map(String::into_bytes)],
        cut in any::<usize>(),
        options in prop_oneof![
            Just(JsonOptions::default()),
            Just(JsonOptions { lines: true, ..JsonOptions::default() }),
            Just(JsonOptions {
                numbers: Numbers::Interoperable,
                report_only: vec![ViolationKind::NumberOutOfRange],
                ..JsonOptions::default()
            }),
        ],
    ) {
        let limits = Limits::default();
        let cut = cut % (doc.len() + 1);
        let mut ins = Inspector::new(&limits, &options);
        let early = ins.feed(&doc[..cut]).err().or_else(|| ins.verdict_if_ended());
        if let Some(v) = early {
            // A prefix that cannot end there: refused for good.
            prop_assert_eq!(ins.finish(), Err(v));
            return Ok(());
        }
        let later = ins.feed(&doc[cut..]).and_then(|()| ins.finish());
        let mut once = Inspector::new(&limits, &options);
        let whole = once.feed(&doc).and_then(|()| once.finish());
        prop_assert_eq!(later, whole);
        prop_assert_eq!(ins.noted(), once.noted());
    }

    /// Tight limits too: limit violations are split-invariant.
    #[test]
    fn limit_verdicts_are_independent_of_chunking(
        doc in document(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        small in 1u64..6,
    ) {
        let limits = Limits {
            max_body_bytes: Some(small * 20),
            max_depth: Some(small),
            max_array_elements: Some(small),
            max_object_entries: Some(small),
            max_key_bytes: Some(small),
            max_string_bytes: Some(small + 1),
            max_number_chars: Some(small + 2),
            max_exponent_digits: Some(small + 2),
            max_containers: Some(small * 3),
        };
        same_verdict_for_any_chunking(&limits, &doc, &cuts)?;
    }

    /// The fast path (whole chunks) and the reference state machine (one
    /// byte per chunk) agree on documents rich in escapes, numbers, non-ASCII
    /// text and wide objects, under default and near-limit bounds.
    #[test]
    fn fast_path_agrees_with_bytewise_on_rich_documents(
        doc in rich_document(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        tight in 1u64..40,
    ) {
        let near = Limits {
            max_body_bytes: Some(doc.len() as u64 - tight.min(doc.len() as u64) / 8),
            max_depth: Some(2 + tight % 3),
            max_array_elements: Some(2 + tight % 7),
            max_object_entries: Some(50 + tight),
            max_key_bytes: Some(tight),
            max_string_bytes: Some(tight + 10),
            max_number_chars: Some(5 + tight / 2),
            max_exponent_digits: Some(3 + tight % 3),
            max_containers: Some(2 + tight),
        };
        for limits in [Limits::default(), near] {
            same_verdict_for_any_chunking(&limits, &doc, &cuts)?;
        }
    }

    /// Objects repeating a few shapes (see `shapes.rs` in the inspector):
    /// refused exactly when one repeats a key, for any chunking, and with
    /// the same verdict as the state machine alone (one byte per chunk).
    #[test]
    fn repeated_shapes_agree_with_the_duplicate_oracle(
        doc in shaped_document(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        tight in 1u64..20,
    ) {
        let unique = serde_json::from_slice::<NoDuplicates>(&doc).is_ok();
        prop_assert!(
            serde_json::from_slice::<serde_json::Value>(&doc).is_ok(),
            "the generator makes valid JSON: {}",
            String::from_utf8_lossy(&doc)
        );
        let limits = Limits { max_depth: None, ..Limits::UNLIMITED };
        let whole = inspect_in_chunks(&limits, &doc, &[]);
        prop_assert_eq!(
            whole.is_ok(),
            unique,
            "{:?} {}",
            whole,
            String::from_utf8_lossy(&doc)
        );
        if let Err(v) = whole {
            prop_assert_eq!(v.kind, ViolationKind::DuplicateKey);
        }
        let near = Limits {
            max_key_bytes: Some(tight),
            max_object_entries: Some(tight / 2 + 1),
            ..limits
        };
        for limits in [limits, near] {
            same_verdict_for_any_chunking(&limits, &doc, &cuts)?;
        }
    }

    /// `report_only: [duplicate_key]`: the verdict is `allow`'s, and the
    /// noted violation is the duplicate `reject` refuses, when that is what
    /// `reject` finds first; the same for any chunking, limits near the
    /// document's own included (so that a limit can bite after a noted key).
    #[test]
    fn reported_duplicates_are_rejects_first_duplicate_and_allows_verdict(
        doc in prop_oneof![shaped_document(), cased_document()],
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        tight in 1u64..20,
    ) {
        let reported = JsonOptions {
            report_only: vec![ViolationKind::DuplicateKey],
            ..JsonOptions::default()
        };
        let allow = JsonOptions { duplicate_keys: DuplicateKeys::Allow, ..JsonOptions::default() };
        let unlimited = Limits { max_depth: None, ..Limits::UNLIMITED };
        let near = Limits {
            max_key_bytes: Some(tight),
            max_object_entries: Some(tight / 2 + 1),
            ..unlimited
        };
        for limits in [unlimited, near] {
            let rejected = inspect_with(&limits, &JsonOptions::default(), &doc, &[]);
            let whole = inspect_noted(&limits, &reported, &doc, &[]);
            prop_assert_eq!(&whole.0, &inspect_with(&limits, &allow, &doc, &[]));
            prop_assert_eq!(
                whole.1,
                rejected.err().filter(|v| v.kind == ViolationKind::DuplicateKey),
                "{}", String::from_utf8_lossy(&doc)
            );
            prop_assert_eq!(&inspect_noted(&limits, &reported, &doc, &cuts), &whole);
            let bytewise: Vec<usize> = (1..doc.len()).collect();
            prop_assert_eq!(&inspect_noted(&limits, &reported, &doc, &bytewise), &whole);
        }
    }

    /// `reject_case_insensitive`: refused exactly when an object repeats a
    /// key as Go would match it (the folded-key oracle), as `duplicate_key`,
    /// with the same verdict for any chunking; and never more lenient than
    /// `reject`.
    #[test]
    fn folded_duplicates_agree_with_the_folded_oracle(
        doc in cased_document(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let folding = JsonOptions {
            duplicate_keys: DuplicateKeys::RejectCaseInsensitive,
            ..JsonOptions::default()
        };
        let unique = serde_json::from_slice::<NoFoldedDuplicates>(&doc).is_ok();
        let whole = inspect_with(&Limits::UNLIMITED, &folding, &doc, &[]);
        prop_assert_eq!(whole.is_ok(), unique, "{:?} {}", whole, String::from_utf8_lossy(&doc));
        if let Err(v) = whole {
            prop_assert_eq!(v.kind, ViolationKind::DuplicateKey);
        }
        if inspect_in_chunks(&Limits::UNLIMITED, &doc, &[]).is_err() {
            prop_assert!(whole.is_err(), "stricter than reject");
        }
        same_verdict_with(&Limits::UNLIMITED, &folding, &doc, &cuts)?;
    }

    /// Interoperable numbers: an array of numbers near both edges is refused
    /// exactly when one of them is out of range by Rust's own parsers, at
    /// the first such number, for any chunking; by default all pass.
    #[test]
    fn number_ranges_agree_with_the_float_parser(
        numbers in prop::collection::vec(edge_number(), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let options = JsonOptions { numbers: Numbers::Interoperable, ..JsonOptions::default() };
        let doc = format!("[{}]", numbers.join(", "));
        let first_out = numbers.iter().position(|n| !in_interoperable_range(n));
        let expected = first_out.map(|k| {
            numbers[..k].iter().map(|n| n.len() + 2).sum::<usize>() as u64 + 1
        });
        let whole = inspect_with(&Limits::UNLIMITED, &options, doc.as_bytes(), &[]);
        prop_assert_eq!(
            whole.map_err(|v| (v.kind, v.offset)),
            match expected {
                None => Ok(()),
                Some(at) => Err((ViolationKind::NumberOutOfRange, Some(at))),
            },
            "{}", doc
        );
        same_verdict_with(&Limits::UNLIMITED, &options, doc.as_bytes(), &cuts)?;
        prop_assert_eq!(inspect_with(&Limits::UNLIMITED, &JsonOptions::default(), doc.as_bytes(), &cuts), Ok(()));
    }

    /// JSON Lines: valid documents, one per line (with blank lines and CRLF
    /// endings), pass; a last line that is refused on its own is refused at
    /// the same place in the body; the same for any chunking.
    #[test]
    fn json_lines_judge_each_line_as_its_own_document(
        docs in prop::collection::vec(document(), 1..5),
        last in document(),
        seps in prop::collection::vec(prop_oneof![Just("\n"), Just("\r\n"), Just("\n\n"), Just(" \n\t")], 5),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let lines = JsonOptions { lines: true, ..JsonOptions::default() };
        let limits = Limits { max_depth: None, ..Limits::UNLIMITED };
        let valid: Vec<Vec<u8>> = docs
            .iter()
            .map(|d| one_line(d))
            .filter(|d| inspect_with(&limits, &JsonOptions::default(), d, &[]).is_ok())
            .collect();
        let mut body = b"{}\n".to_vec();
        for (k, doc) in valid.iter().enumerate() {
            body.extend_from_slice(doc);
            body.extend_from_slice(seps[k % seps.len()].as_bytes());
        }
        prop_assert_eq!(inspect_with(&limits, &lines, &body, &[]), Ok(()), "{}", String::from_utf8_lossy(&body));
        same_verdict_with(&limits, &lines, &body, &cuts)?;
        // A last line without newlines of its own, refused alone.
        let last = one_line(&last);
        let alone = inspect_with(&limits, &JsonOptions::default(), &last, &[]);
        let start = body.len() as u64;
        body.extend_from_slice(&last);
        let expected = match alone {
            // A byte order mark is one only at the start of the body.
            Err(v) if v.kind == ViolationKind::Bom => {
                Err(Violation { kind: ViolationKind::SyntaxError, offset: Some(start), limit: None })
            }
            Err(v) if v.kind != ViolationKind::EmptyBody => Err(Violation {
                offset: v.offset.map(|o| o + start),
                ..v
            }),
            _ => Ok(()),
        };
        prop_assert_eq!(inspect_with(&limits, &lines, &body, &[]), expected, "{}", String::from_utf8_lossy(&body));
        same_verdict_with(&limits, &lines, &body, &cuts)?;
    }

    /// JSON Lines: a document valid on its own is a valid line exactly when
    /// it holds no line break inside its value and no U+0085, U+2028 or
    /// U+2029 anywhere; otherwise it is refused at the first of those, for
    /// any chunking.
    #[test]
    fn json_lines_refuse_line_breaks_inside_a_value(
        value in json(),
        separator in prop::sample::select(vec!["", "x\u{2028}", "\u{2029}", "\u{85}y"]),
        seed in any::<u64>(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        // A valid document, its strings sometimes holding a separator raw
        // (or escaped, as the rendering chooses), its whitespace sometimes
        // line breaks.
        let value = if separator.is_empty() {
            value
        } else {
            J::Arr(vec![J::Str(separator.to_string()), value])
        };
        let mut doc = Vec::new();
        render(&value, &mut Choices(seed | 1), &mut doc);
        let limits = Limits { max_depth: None, ..Limits::UNLIMITED };
        let plain = JsonOptions { duplicate_keys: DuplicateKeys::Allow, ..JsonOptions::default() };
        prop_assert_eq!(inspect_with(&limits, &plain, &doc, &[]), Ok(()));
        let lines = JsonOptions { lines: true, ..plain };
        let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        let first = doc.iter().position(|b| !is_ws(b)).unwrap_or(0);
        let last = doc.iter().rposition(|b| !is_ws(b)).unwrap_or(0);
        let inside = (first..last).find(|&i| matches!(doc[i], b'\n' | b'\r'));
        let text = String::from_utf8_lossy(&doc);
        let separator = text
            .char_indices()
            .find(|(_, c)| matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}'))
            .map(|(i, _)| i);
        let expected = match inside.into_iter().chain(separator).min() {
            Some(at) => Err(Violation { kind: ViolationKind::SyntaxError, offset: Some(at as u64), limit: None }),
            None => Ok(()),
        };
        prop_assert_eq!(inspect_with(&limits, &lines, &doc, &[]), expected, "{:?}", text);
        same_verdict_with(&limits, &lines, &doc, &cuts)?;
    }

    /// Complete documents within limits: accepted exactly when serde_json
    /// (with the by-design differences above made explicit) accepts them.
    #[test]
    fn acceptance_agrees_with_serde_json(doc in document()) {
        let serde = SerdeVerdict::of(&doc);
        prop_assume!(serde.is_some(), "a number beyond f64: serde_json cannot judge");
        let serde = serde.expect("assumed");
        let limits = Limits { max_depth: None, ..Limits::UNLIMITED };
        let ours = inspect_in_chunks(&limits, &doc, &[]);
        prop_assert_eq!(
            ours.is_ok(),
            serde.accepts(),
            "ours={:?} serde={:?} doc={:?}",
            ours, serde, String::from_utf8_lossy(&doc)
        );
    }
}
