//! Coverage-guided differential fuzzing of the inspector.
//!
//! The proptests in `plugin/tests/inspector_properties.rs` check the same
//! properties over generated documents; this target lets libFuzzer search
//! the byte space for the inputs the generators never make. For every input
//! it checks that:
//!
//! - the verdict (kind, offset, limit) is the same for the body whole, cut at
//!   the fuzzer's positions, and one byte per chunk (where only the
//!   reference state machine reads, never the fast path), under the default
//!   limits, none, or limits aimed at the body's own boundaries, with each
//!   duplicate-key policy (`reject`, `reject_case_insensitive`, `allow`),
//!   with and without `numbers: interoperable`, with any `report_only`
//!   kinds (the noted violation must agree too), as one document or as
//!   JSON Lines;
//! - as JSON Lines with no limits, a body whose every line is valid alone
//!   is valid;
//! - a `number_out_of_range` verdict points at a number that Rust's own
//!   parsers find out of range (an integer beyond 2^53 − 1, or a number
//!   that is infinite as an `f64`);
//! - an inspector reused after `reset()` on another body judges exactly as
//!   a fresh one (recycled inspectors carry no state between requests);
//! - with no limits, complete documents are accepted exactly when
//!   serde_json accepts them, with the differences by design (duplicate
//!   keys, lone surrogates, invalid UTF-8) made explicit, as in the
//!   proptest (`plugin/tests/support/serde_oracle.rs`).
//!
//! Input layout: `[mode, n, one byte per limit (7), n % 8 cut positions (2
//! bytes each), body]`; the next three bits of `n` pick `report_only`, the
//! one after them JSON Lines, and the top one `allow_unicode_line_breaks`.
//! Run with `cargo +nightly fuzz run --fuzz-dir plugin/fuzz inspector`.

#![no_main]

#[path = "../../tests/support/number_oracle.rs"]
mod number_oracle;
#[path = "../../tests/support/serde_oracle.rs"]
mod serde_oracle;

use json_sanitizer::inspector::{
    DuplicateKeys, Inspector, JsonOptions, Limits, Numbers, REPORTABLE,
};
use json_sanitizer::violation::{Violation, ViolationKind};
use libfuzzer_sys::fuzz_target;
use number_oracle::in_interoperable_range;
use serde_oracle::SerdeVerdict;

fuzz_target!(|data: &[u8]| {
    let Some((&[mode, n, l0, l1, l2, l3, l4, l5, l6], rest)) = data.split_first_chunk::<9>() else {
        return;
    };
    let cut_bytes = usize::from(n % 8) * 2;
    if rest.len() < cut_bytes {
        return;
    }
    let (cuts, body) = rest.split_at(cut_bytes);
    let cuts: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (body.len() + 1))
        .collect();
    let limits = limits(mode, [l0, l1, l2, l3, l4, l5, l6], body);
    let options = JsonOptions {
        duplicate_keys: match (mode & 4 != 0, mode & 64 != 0) {
            (true, _) => DuplicateKeys::Allow,
            (false, false) => DuplicateKeys::Reject,
            (false, true) => DuplicateKeys::RejectCaseInsensitive,
        },
        allow_bom: mode & 8 != 0,
        allow_lone_surrogates: mode & 16 != 0,
        allow_empty_body: mode & 32 != 0,
        numbers: if mode & 128 != 0 {
            Numbers::Interoperable
        } else {
            Numbers::Any
        },
        // The bits of `n` above the cut count pick the reported kinds, the
        // next one JSON Lines, and the last whether its Unicode line breaks
        // may stand in strings.
        report_only: REPORTABLE
            .into_iter()
            .enumerate()
            .filter(|&(bit, _)| (n >> 3) & (1 << bit) != 0)
            .map(|(_, kind)| kind)
            .collect(),
        lines: n & 64 != 0,
        allow_unicode_line_breaks: n & 128 != 0,
    };

    let (whole, noted) = inspect(&mut Inspector::new(&limits, &options), body, &[]);
    let whole_noted = (whole, noted);
    assert_eq!(
        inspect(&mut Inspector::new(&limits, &options), body, &cuts),
        whole_noted,
        "cut at {cuts:?}"
    );
    let bytewise: Vec<usize> = (1..body.len()).collect();
    assert_eq!(
        inspect(&mut Inspector::new(&limits, &options), body, &bytewise),
        whole_noted,
        "bytewise"
    );

    // The same inspector, first used on the body's second half (a stand-in
    // for any earlier request), then reset.
    let mut reused = Inspector::new(&limits, &options);
    let _ = inspect(&mut reused, &body[body.len() / 2..], &cuts);
    reused.reset();
    assert_eq!(inspect(&mut reused, body, &[]), whole_noted, "after reset");

    if let Some(offset) = whole.err().and_then(|v| v.offset) {
        assert!(
            offset <= body.len() as u64,
            "{whole:?} past the end of {} bytes",
            body.len()
        );
    }
    for v in whole.err().into_iter().chain(noted) {
        if v.kind == ViolationKind::NumberOutOfRange {
            let at = v.offset.expect("an offset") as usize;
            let token = number_token(&body[at..]);
            assert!(!in_interoperable_range(token), "{token} is in range");
        }
    }
    if let Some(v) = noted {
        assert!(options.report_only.contains(&v.kind), "{v:?} noted");
        assert!(v.offset.is_some_and(|o| o < body.len() as u64), "{v:?}");
    }
    if mode & 3 == 1 && mode & 0b1111_1100 == 0 && n >> 3 == 0 {
        agrees_with_serde_json(body, whole);
    }
    if options.lines && mode & 3 == 1 {
        every_line_valid_alone_is_valid_lines(body, &options, whole);
    }
});

/// JSON Lines, with no limits: a body whose every line that is not blank
/// is a valid document on its own, with no `\r` inside its value and no
/// U+0085, U+2028 or U+2029 (which end lines to Python's `splitlines`), is
/// valid.
fn every_line_valid_alone_is_valid_lines(
    body: &[u8],
    options: &JsonOptions,
    whole: Result<(), Violation>,
) {
    let alone = JsonOptions {
        lines: false,
        ..options.clone()
    };
    // A byte order mark starts only the body, not each line.
    if body
        .split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.first() == Some(&0xEF))
    {
        return;
    }
    let blank = |line: &&[u8]| line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'));
    let mut lines = body
        .split(|&b| b == b'\n')
        .filter(|line| !blank(line))
        .peekable();
    if lines.peek().is_none() {
        return;
    }
    if body.windows(2).any(|w| w == "\u{85}".as_bytes())
        || body
            .windows(3)
            .any(|w| w == "\u{2028}".as_bytes() || w == "\u{2029}".as_bytes())
    {
        return;
    }
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    let one_line = |line: &[u8]| {
        let first = line.iter().position(|b| !is_ws(b)).unwrap_or(0);
        let last = line.iter().rposition(|b| !is_ws(b)).unwrap_or(0);
        !line[first..last].contains(&b'\r')
    };
    if lines
        .all(|line| one_line(line) && Inspector::check(&Limits::UNLIMITED, &alone, line).is_ok())
    {
        assert_eq!(whole, Ok(()), "every line is valid alone");
    }
}

/// Default limits, none, or each limit picked by its own byte: below 0x80
/// at the body's own largest such quantity or one under it (where a limit
/// bites: the boundary every limit is tested at), up to 0xC0 a small fixed
/// value, above that unlimited.
fn limits(mode: u8, picks: [u8; 7], body: &[u8]) -> Limits {
    let most = Maxima::of(body);
    let measured = [
        body.len() as u64,
        most.depth,
        most.elements,
        most.entries,
        most.string,
        most.string,
        most.number,
    ];
    let pick = |k: usize| match picks[k] {
        p @ 0..0x80 => Some(measured[k].saturating_sub(u64::from(p & 1))),
        p @ 0x80..0xC0 => Some(u64::from(p % 64)),
        _ => None,
    };
    match mode & 3 {
        0 => Limits::default(),
        1 => Limits::UNLIMITED,
        _ => Limits {
            max_body_bytes: pick(0),
            max_depth: pick(1),
            max_array_elements: pick(2),
            max_object_entries: pick(3),
            max_key_bytes: pick(4),
            max_string_bytes: pick(5),
            max_number_chars: pick(6),
            // From the number's own pick, within what the configuration
            // allows (at least three) and where exponents are (a few digits).
            max_exponent_digits: pick(6).map(|d| d.clamp(3, 8)),
            // From the depth's pick: a body has at least as many containers.
            max_containers: pick(1),
        },
    }
}

/// Rough largest nesting, container width, string and number in a body, read
/// with a few rules of thumb (no grammar): only to aim limits at their
/// boundaries, so any body, well-formed or not, gives some answer.
#[derive(Default)]
struct Maxima {
    depth: u64,
    elements: u64,
    entries: u64,
    string: u64,
    number: u64,
}

impl Maxima {
    fn of(body: &[u8]) -> Self {
        let mut most = Maxima::default();
        // Per open container: is it an object, and its members so far.
        let mut open: Vec<(bool, u64)> = Vec::new();
        let mut string: Option<u64> = None;
        let mut escaped = false;
        let mut number = 0u64;
        for &b in body {
            if let Some(n) = string {
                if b == b'"' && !escaped {
                    most.string = most.string.max(n);
                    string = None;
                } else {
                    escaped = !escaped && b == b'\\';
                    string = Some(n + 1);
                }
                continue;
            }
            if matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                number += 1;
                most.number = most.number.max(number);
            } else {
                number = 0;
            }
            match b {
                b'"' => {
                    Self::touch(&mut open);
                    string = Some(0);
                }
                b'[' | b'{' => {
                    Self::touch(&mut open);
                    open.push((b == b'{', 0));
                    most.depth = most.depth.max(open.len() as u64);
                }
                b']' | b'}' => {
                    if let Some((is_object, n)) = open.pop() {
                        most.widest(is_object, n);
                    }
                }
                b',' => {
                    if let Some((_, n)) = open.last_mut() {
                        *n += 1;
                    }
                }
                b' ' | b'\t' | b'\n' | b'\r' | b':' => {}
                _ => Self::touch(&mut open),
            }
        }
        for (is_object, n) in open {
            most.widest(is_object, n);
        }
        most
    }

    /// A value starts in the innermost open container: it has a member.
    fn touch(open: &mut [(bool, u64)]) {
        if let Some((_, n)) = open.last_mut() {
            *n = (*n).max(1);
        }
    }

    fn widest(&mut self, is_object: bool, members: u64) {
        let widest = if is_object {
            &mut self.entries
        } else {
            &mut self.elements
        };
        *widest = (*widest).max(members);
    }
}

/// The verdict, and the violation noted for `report_only`.
fn inspect(
    ins: &mut Inspector,
    body: &[u8],
    cuts: &[usize],
) -> (Result<(), Violation>, Option<Violation>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
    cuts.sort_unstable();
    let mut prev = 0;
    for c in cuts.into_iter().chain(std::iter::once(body.len())) {
        if ins.feed(&body[prev..c]).is_err() {
            break;
        }
        prev = c;
    }
    (ins.finish(), ins.noted())
}

/// With no limits and default options, accepted exactly when serde_json
/// (with the differences by design made explicit) accepts.
fn agrees_with_serde_json(body: &[u8], ours: Result<(), Violation>) {
    if let Some(serde) = SerdeVerdict::of(body) {
        assert_eq!(
            ours.is_ok(),
            serde.accepts(),
            "ours={ours:?} serde={serde:?}"
        );
    }
}

/// The number token at the start of `s`, by the grammar (what follows it,
/// even another `e`, is not part of it).
fn number_token(s: &[u8]) -> &str {
    let digits = |from: usize| from + s[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut end = digits(usize::from(s.first() == Some(&b'-')));
    if s.get(end) == Some(&b'.') {
        end = digits(end + 1);
    }
    if matches!(s.get(end), Some(b'e' | b'E')) {
        end += 1;
        if matches!(s.get(end), Some(b'+' | b'-')) {
            end += 1;
        }
        end = digits(end);
    }
    std::str::from_utf8(&s[..end]).expect("ASCII")
}
