//! Layer 1: an incremental, strict JSON inspector.
//!
//! Feed the body in chunks of any size with [`Inspector::feed`], then call
//! [`Inspector::finish`]. The first [`Violation`] is returned with its kind,
//! the limit involved and the absolute byte offset of the byte that made the
//! body unacceptable; the verdict, kind and offset are the same for every way
//! of splitting the body into chunks.
//!
//! It is a resumable state machine, not a parser: no recursion, no allocation
//! per byte, memory O(`max_depth`) plus the key fingerprints of open objects
//! when duplicate keys are refused. It knows nothing of HTTP or proxy-wasm.
//!
//! Layout: `scan.rs` is the per-byte state machine (the reference), `fast.rs`
//! the straight-line path for whole tokens inside a chunk, `simd.rs` the
//! sixteen-bytes-at-a-time string scan, `swar.rs` the word-at-a-time
//! helpers, `keys.rs` the duplicate-key hashes and sets, `go_fold.rs` the
//! case folding of keys as Go matches them (checked against
//! `go_fold_classes.txt`, which the Go program `go_fold_classes.go`
//! writes), `shapes.rs` the repeated key lists that spare them most of
//! their work, `utf8.rs` the encoding checks, `lines.rs` JSON Lines' rule
//! that no value holds a line break.

mod fast;
mod go_fold;
mod keys;
mod limits;
mod lines;
mod numbers;
mod scan;
mod shapes;
mod simd;
pub(crate) mod swar;
mod utf8;

pub use limits::{
    defaults, DuplicateKeys, JsonOptions, Limits, Numbers, MIN_EXPONENT_DIGITS, REPORTABLE,
};
pub use numbers::MAX_EXACT_INTEGER;

use crate::violation::{Violation, ViolationKind};
use go_fold::Folder;
use keys::{KeyHasher, KeySet};
use numbers::NumberRange;
use shapes::{Shape, Shapes};

/// Where the scanner is in the grammar between two bytes. Kept as one small
/// enum so that a chunk boundary can fall anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace (or an allowed BOM) seen yet.
    Start,
    /// Read `EF`, checking for a byte order mark.
    Bom1,
    /// Read `EF BB`.
    Bom2,
    /// Expecting a value (after `:` or after `,` in an array).
    Value,
    /// Just after `[`: a value or `]`.
    ArrayFirst,
    /// Just after `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the closing bracket.
    AfterValue,
    /// After the top-level value: only whitespace (with `lines`, up to the
    /// newline that lets another value follow).
    Done,
    /// With `lines`: after the newline that ends a value, another value
    /// or whitespace.
    NextLine,
    /// Inside a string (key or value, see `in_key`).
    Str,
    /// After a backslash in a string.
    Escape,
    /// Inside the four hex digits of a `\u` escape.
    Unicode,
    /// After a high surrogate escape: expecting the `\` of its low half.
    LowBackslash,
    /// After a high surrogate escape and `\`: expecting `u`.
    LowU,
    /// Inside a multi-byte UTF-8 sequence in a string.
    Utf8,
    /// After `-`.
    NumMinus,
    /// After a leading `0` (no more integer digits allowed).
    NumZero,
    /// In integer digits.
    NumInt,
    /// After `.`: a digit must follow.
    NumDot,
    /// In fraction digits.
    NumFrac,
    /// After `e`/`E`: sign or digit.
    NumE,
    /// After the exponent sign: a digit must follow.
    NumESign,
    /// In exponent digits.
    NumExp,
    /// Inside `true`, `false` or `null`.
    Literal,
}

impl State {
    /// Inside a number token.
    fn is_number(self) -> bool {
        matches!(
            self,
            State::NumMinus
                | State::NumZero
                | State::NumInt
                | State::NumDot
                | State::NumFrac
                | State::NumE
                | State::NumESign
                | State::NumExp
        )
    }
}

/// `kind` as a bit of a set of kinds.
fn kind_bit(kind: ViolationKind) -> u32 {
    1 << kind as u32
}

const _: () = assert!(ViolationKind::ALL.len() <= 32, "kind_bit needs a wider set");

/// One open container.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Elements or members seen so far.
    count: u64,
    /// `KeySet::len()` when this object opened (unused for arrays).
    keys_mark: usize,
    /// Whether this object follows or records a shape (see `shapes.rs`).
    shape: Shape,
    /// Object (`{`) rather than array (`[`).
    is_object: bool,
}

/// Limits with "unlimited" as `u64::MAX`, so the hot loop compares plain
/// integers.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    body: u64,
    depth: u64,
    array: u64,
    entries: u64,
    key: u64,
    string: u64,
    number: u64,
    /// Digits in an exponent; never below [`MIN_EXPONENT_DIGITS`], which the
    /// fast path reads without asking (the configuration refuses less).
    exponent: u64,
    /// Objects and arrays in the body.
    containers: u64,
    /// The depth from which the fast path leaves an array of scalars to the
    /// frame-by-frame path instead of taking it whole: `depth`, or 0 with
    /// `max_containers` set, so that every array is counted as it opens a
    /// frame (one field for both: no test of its own per array).
    whole_array_depth: u64,
}

impl Bounds {
    fn from(limits: &Limits) -> Self {
        let f = |v: Option<u64>| v.unwrap_or(u64::MAX);
        Self {
            body: f(limits.max_body_bytes),
            depth: f(limits.max_depth),
            array: f(limits.max_array_elements),
            entries: f(limits.max_object_entries),
            key: f(limits.max_key_bytes),
            string: f(limits.max_string_bytes),
            number: f(limits.max_number_chars),
            exponent: f(limits.max_exponent_digits).max(MIN_EXPONENT_DIGITS),
            containers: f(limits.max_containers),
            whole_array_depth: if limits.max_containers.is_some() {
                0
            } else {
                f(limits.max_depth)
            },
        }
    }
}

/// The incremental inspector of one body. Create one per request (or
/// [`Inspector::reset`] it to reuse its allocations).
#[derive(Debug, Clone)]
pub struct Inspector {
    bounds: Bounds,
    /// The token length limits of `bounds`, as the fast path uses them.
    room: fast::Room,
    check_duplicates: bool,
    /// Keys compare as Go matches them ([`DuplicateKeys::RejectCaseInsensitive`]).
    fold_keys: bool,
    allow_bom: bool,
    allow_lone_surrogates: bool,
    allow_empty_body: bool,
    /// The body is JSON Lines.
    lines: bool,
    /// With `lines`, U+0085, U+2028 and U+2029 may stand raw in strings.
    allow_unicode_line_breaks: bool,
    /// With `lines`, the values begun so far (bounded like array elements).
    values: u64,
    /// With `lines`, the body's last two bytes so far, oldest first: the
    /// start of a line separator that a chunk boundary cut.
    line_tail: [u8; 2],
    /// Objects and arrays opened so far in the body.
    containers: u64,
    /// Numbers must be in range ([`Numbers::Interoperable`]).
    check_number_range: bool,
    /// The kinds of `report_only`, as a set of [`ViolationKind`] bits.
    report_only: u32,
    seed: u64,

    /// Body bytes accepted so far (the offset of the next byte).
    consumed: u64,
    state: State,
    frames: Vec<Frame>,
    keys: KeySet,
    shapes: Shapes,
    verdict: Option<Violation>,
    /// The first violation of a `report_only` kind, which did not stop the
    /// scan.
    noted: Option<Violation>,

    /// Offset of the current token's first byte (opening quote, number start).
    token_start: u64,
    /// Offset of the first byte over the current token's length limit.
    token_bound: u64,
    /// Offset of the first digit over the current exponent's limit.
    exponent_bound: u64,
    /// The current string is a key.
    in_key: bool,
    /// Running hash of the decoded bytes of the current key.
    key_hash: KeyHasher,
    /// The current key held a `\u0000`: what follows it is not hashed, as
    /// C parsers (cJSON, yajl, json-c) end the key there.
    key_cut: bool,
    /// With `fold_keys`, what stands between the key's bytes and `key_hash`.
    folder: Folder,
    /// Offset of the backslash of the current escape.
    escape_start: u64,
    /// Offset of the backslash of a high surrogate awaiting its low half.
    high_start: u64,
    /// That high surrogate (0xD800..=0xDBFF), 0 when none is pending.
    high: u32,
    /// Hex digits of the current `\u` escape read so far, and their value.
    hex_digits: u8,
    hex_value: u32,
    /// UTF-8 sequence in progress: bytes still needed, range of the next.
    utf8_need: u8,
    utf8_lo: u8,
    utf8_hi: u8,
    /// Literal in progress and how much of it matched.
    literal: &'static [u8],
    literal_pos: u8,
    /// With `check_number_range`, the digits of the number in progress.
    number_range: NumberRange,
}

impl Inspector {
    /// An inspector enforcing `limits` and `options`. Duplicate-key
    /// fingerprints use a fixed seed; see [`Inspector::with_seed`].
    pub fn new(limits: &Limits, options: &JsonOptions) -> Self {
        Self::with_seed(limits, options, 0)
    }

    /// Like [`Inspector::new`], with a secret seed for the key fingerprints so
    /// that a client cannot precompute keys that collide in the duplicate
    /// table (the filter seeds it randomly per VM).
    pub fn with_seed(limits: &Limits, options: &JsonOptions, seed: u64) -> Self {
        let bounds = Bounds::from(limits);
        // Reserve the whole stack up front when it is small, so that nesting
        // never allocates while scanning.
        let frames = Vec::with_capacity(bounds.depth.min(1024) as usize);
        Self {
            bounds,
            room: fast::Room::from(&bounds),
            check_duplicates: options.duplicate_keys != DuplicateKeys::Allow,
            fold_keys: options.duplicate_keys == DuplicateKeys::RejectCaseInsensitive,
            allow_bom: options.allow_bom,
            allow_lone_surrogates: options.allow_lone_surrogates,
            allow_empty_body: options.allow_empty_body,
            lines: options.lines,
            allow_unicode_line_breaks: options.allow_unicode_line_breaks,
            values: 0,
            line_tail: [0; 2],
            containers: 0,
            check_number_range: options.numbers == Numbers::Interoperable,
            report_only: options
                .report_only
                .iter()
                .fold(0, |bits, &kind| bits | kind_bit(kind)),
            seed,
            consumed: 0,
            state: State::Start,
            frames,
            keys: KeySet::default(),
            shapes: Shapes::default(),
            verdict: None,
            noted: None,
            token_start: 0,
            token_bound: u64::MAX,
            exponent_bound: u64::MAX,
            in_key: false,
            key_hash: KeyHasher::new(seed),
            key_cut: false,
            folder: Folder::default(),
            escape_start: 0,
            high_start: 0,
            high: 0,
            hex_digits: 0,
            hex_value: 0,
            utf8_need: 0,
            utf8_lo: 0,
            utf8_hi: 0,
            literal: b"",
            literal_pos: 0,
            number_range: NumberRange::default(),
        }
    }

    /// Starts over for a new body, keeping limits, options and allocations.
    pub fn reset(&mut self) {
        self.consumed = 0;
        self.state = State::Start;
        self.frames.clear();
        self.keys.clear();
        self.shapes.clear();
        self.verdict = None;
        self.noted = None;
        self.high = 0;
        self.values = 0;
        self.line_tail = [0; 2];
        self.containers = 0;
    }

    /// Inspects the next chunk of the body. Returns the first violation as
    /// soon as it is certain; once one is found every later call returns it
    /// again and no more bytes are looked at.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Violation> {
        if let Some(v) = self.verdict {
            return Err(v);
        }
        let room = self.bounds.body.saturating_sub(self.consumed);
        let (scan, over) = if (chunk.len() as u64) > room {
            (&chunk[..room as usize], true)
        } else {
            (chunk, false)
        };
        let scanned = if self.lines {
            self.scan_lines(scan)
        } else {
            self.scan(scan)
        };
        let result = scanned.and_then(|()| {
            if over {
                Err(Violation::over(
                    ViolationKind::BodyTooLarge,
                    self.bounds.body,
                    self.bounds.body,
                ))
            } else {
                Ok(())
            }
        });
        if let Err(v) = result {
            self.verdict = Some(v);
        }
        result
    }

    /// Declares the end of the body and returns the final verdict.
    pub fn finish(&mut self) -> Result<(), Violation> {
        if let Some(v) = self.verdict {
            return Err(v);
        }
        let result = match self.state {
            State::Done | State::NextLine => Ok(()),
            State::Start if self.allow_empty_body => Ok(()),
            State::Start => Err(Violation::at(ViolationKind::EmptyBody, self.consumed)),
            State::Bom1 | State::Bom2 => Err(Violation::at(ViolationKind::SyntaxError, 0)),
            State::NumZero | State::NumInt | State::NumFrac | State::NumExp
                if self.frames.is_empty() =>
            {
                self.number_ends()
            }
            _ => Err(Violation::at(ViolationKind::Truncated, self.consumed)),
        };
        if let Err(v) = result {
            self.verdict = Some(v);
        }
        result
    }

    /// The violation [`Inspector::finish`] would return if the body ended
    /// here, without ending it: when there is none, the inspector is left
    /// exactly as it was (nothing noted either), and more bytes may be fed.
    /// The filter asks when a body has every byte its `content-length`
    /// declared, before the host says that it ended.
    pub fn verdict_if_ended(&mut self) -> Option<Violation> {
        let noted = self.noted;
        let verdict = self.finish().err();
        if verdict.is_none() {
            self.noted = noted;
        }
        verdict
    }

    /// Whether a container opened now would be one level too deep.
    #[inline(always)]
    fn at_depth_limit(&self) -> bool {
        self.frames.len() as u64 >= self.bounds.depth
    }

    /// Whether opening one more object or array would go over
    /// `max_containers`.
    #[inline(always)]
    fn at_container_limit(&self) -> bool {
        self.containers >= self.bounds.containers
    }

    /// Heap bytes this inspector holds (its stack and key tables), which
    /// [`Inspector::reset`] keeps for reuse.
    pub fn footprint(&self) -> usize {
        self.frames.capacity() * std::mem::size_of::<Frame>()
            + self.keys.footprint()
            + self.shapes.footprint()
    }

    /// Body bytes inspected so far.
    pub fn bytes_inspected(&self) -> u64 {
        self.consumed
    }

    /// Current container nesting depth.
    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// The violation found so far, if any.
    pub fn verdict(&self) -> Option<Violation> {
        self.verdict
    }

    /// The first violation of a `report_only` kind found so far: it did not
    /// make [`Inspector::feed`] or [`Inspector::finish`] fail, and the body
    /// was inspected on. The same for every chunking, like the verdict.
    pub fn noted(&self) -> Option<Violation> {
        self.noted
    }

    /// A violation of a kind the scan can read past: kept if it is to be
    /// reported only (the first one), returned otherwise.
    #[cold]
    fn refuse_or_note(&mut self, v: Violation) -> Result<(), Violation> {
        if self.report_only & kind_bit(v.kind) == 0 {
            return Err(v);
        }
        self.noted.get_or_insert(v);
        Ok(())
    }

    /// One-shot convenience: the verdict on a complete body.
    pub fn check(limits: &Limits, options: &JsonOptions, body: &[u8]) -> Result<(), Violation> {
        let mut inspector = Self::new(limits, options);
        inspector.feed(body)?;
        inspector.finish()
    }
}

#[cfg(test)]
mod tests;
