//! What the inspector enforces: size and shape limits and grammar options.
//!
//! These are also the `limits` and `json` sections of the plugin
//! configuration, so they deserialize directly. Every limit is optional:
//! `null` means unlimited, a missing field means the default.

use crate::violation::ViolationKind;
use serde::Deserialize;

/// Size and shape limits. `None` is unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Total body bytes.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: Option<u64>,
    /// Container nesting: `[]` is 1, `[[]]` is 2, a top-level scalar is 0.
    #[serde(default = "defaults::max_depth")]
    pub max_depth: Option<u64>,
    /// Elements in any one array.
    #[serde(default = "defaults::max_array_elements")]
    pub max_array_elements: Option<u64>,
    /// Members in any one object.
    #[serde(default = "defaults::max_object_entries")]
    pub max_object_entries: Option<u64>,
    /// Raw bytes between a key's quotes (escapes count as written).
    #[serde(default = "defaults::max_key_bytes")]
    pub max_key_bytes: Option<u64>,
    /// Raw bytes between a string value's quotes.
    #[serde(default = "defaults::max_string_bytes")]
    pub max_string_bytes: Option<u64>,
    /// Characters in one number token.
    #[serde(default = "defaults::max_number_chars")]
    pub max_number_chars: Option<u64>,
    /// Digits in one number's exponent (`1e400` has three). Code that turns
    /// a big decimal into an integer or plain digits (Jackson before 2.15
    /// reading into a `BigInteger`, `toPlainString`, `setScale`) spends time
    /// and memory in proportion to the exponent's value: `1e-100000000`, 20
    /// bytes, takes Jackson 2.14 over a minute and 500 MiB into a
    /// `BigInteger`. At least 3 (every double's exponent fits in three
    /// digits): the configuration refuses less, and the inspector reads a
    /// smaller value as 3.
    #[serde(default = "defaults::max_exponent_digits")]
    pub max_exponent_digits: Option<u64>,
    /// Objects and arrays in the whole body (in JSON Lines, in all its
    /// values together). A parser that builds the document pays per
    /// container far more than its bytes: 2 MiB of `[{"":0},…]` is 100 MB
    /// as Go's `map[string]interface{}` and 117 MB in PHP, within every
    /// other limit. Unlimited by default: legitimate bodies differ too much
    /// (GeoJSON with short coordinates is one container per eight bytes).
    #[serde(default = "defaults::max_containers")]
    pub max_containers: Option<u64>,
}

/// The documented defaults (README "Configuration reference").
pub mod defaults {
    /// 2 MiB.
    pub fn max_body_bytes() -> Option<u64> {
        Some(2 * 1024 * 1024)
    }
    /// 100 levels.
    pub fn max_depth() -> Option<u64> {
        Some(100)
    }
    /// 10,000 elements.
    pub fn max_array_elements() -> Option<u64> {
        Some(10_000)
    }
    /// 1,000 members.
    pub fn max_object_entries() -> Option<u64> {
        Some(1_000)
    }
    /// 256 bytes.
    pub fn max_key_bytes() -> Option<u64> {
        Some(256)
    }
    /// 1 MiB.
    pub fn max_string_bytes() -> Option<u64> {
        Some(1024 * 1024)
    }
    /// 100 characters.
    pub fn max_number_chars() -> Option<u64> {
        Some(100)
    }
    /// 3 digits: every double (up to 1.8e308, down to 5e-324).
    pub fn max_exponent_digits() -> Option<u64> {
        Some(3)
    }
    /// Unlimited: set it for the services behind (see the field).
    pub fn max_containers() -> Option<u64> {
        None
    }
}

/// The smallest `max_exponent_digits`: a double's exponent needs three, and
/// the fast path reads exponents of up to three digits itself (longer ones
/// go to the state machine, which checks the limit exactly).
pub const MIN_EXPONENT_DIGITS: u64 = 3;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: defaults::max_body_bytes(),
            max_depth: defaults::max_depth(),
            max_array_elements: defaults::max_array_elements(),
            max_object_entries: defaults::max_object_entries(),
            max_key_bytes: defaults::max_key_bytes(),
            max_string_bytes: defaults::max_string_bytes(),
            max_number_chars: defaults::max_number_chars(),
            max_exponent_digits: defaults::max_exponent_digits(),
            max_containers: defaults::max_containers(),
        }
    }
}

impl Limits {
    /// No limit at all: grammar and encoding checks only.
    pub const UNLIMITED: Limits = Limits {
        max_body_bytes: None,
        max_depth: None,
        max_array_elements: None,
        max_object_entries: None,
        max_key_bytes: None,
        max_string_bytes: None,
        max_number_chars: None,
        max_exponent_digits: None,
        max_containers: None,
    };

    /// Each limit by its configuration name, for validation and docs.
    pub fn named(&self) -> [(&'static str, Option<u64>); 9] {
        [
            ("max_body_bytes", self.max_body_bytes),
            ("max_depth", self.max_depth),
            ("max_array_elements", self.max_array_elements),
            ("max_object_entries", self.max_object_entries),
            ("max_key_bytes", self.max_key_bytes),
            ("max_string_bytes", self.max_string_bytes),
            ("max_number_chars", self.max_number_chars),
            ("max_exponent_digits", self.max_exponent_digits),
            ("max_containers", self.max_containers),
        ]
    }
}

/// What to do with the same key twice in one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateKeys {
    /// Refuse: parsers disagree on which value wins, a classic smuggling trick.
    #[default]
    Reject,
    /// Let them through.
    Allow,
    /// Refuse, and count as the same key two that are equal under Unicode
    /// simple case folding (`Role` and `role`, K (U+212A KELVIN SIGN) and
    /// `k`, `ſ` and `s`, `É` and `é`, `ς` and `σ`): Go's `encoding/json`
    /// matches object keys to struct fields that way, so
    /// `{"role":"user","Role":"admin"}` sets one field twice there (the last
    /// wins) while a case-sensitive parser sees two keys. `ı` and `İ` count
    /// as `i` as well, as Java's `equalsIgnoreCase` and Turkish-locale
    /// `toLowerCase()` read them. This is
    /// `encoding/json` v1; v2's `case:ignore` also ignores `_` and `-`,
    /// which this does not.
    RejectCaseInsensitive,
}

/// Which numbers to accept beyond RFC 8259's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Numbers {
    /// Any number the grammar allows, however large: what RFC 8259 says.
    #[default]
    Any,
    /// Only numbers every parser reads alike (I-JSON, RFC 7493 section 2.2):
    /// integers within ±(2^53 − 1) and nothing that overflows a double, so
    /// that a JavaScript gateway and a Go or Python service cannot read one
    /// amount as two (`9007199254740993`), or one of them refuse it (`1e400`).
    Interoperable,
}

/// Grammar options beyond strict RFC 8259.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonOptions {
    /// Duplicate key policy; keys compare after escape decoding.
    pub duplicate_keys: DuplicateKeys,
    /// Skip a leading UTF-8 byte order mark instead of refusing it.
    pub allow_bom: bool,
    /// Accept `\u` escapes of unpaired surrogates.
    pub allow_lone_surrogates: bool,
    /// Accept an empty or whitespace-only body.
    pub allow_empty_body: bool,
    /// Number range policy.
    pub numbers: Numbers,
    /// The body is JSON Lines (NDJSON): one value per line, each judged as
    /// a document of its own (the size limit applies to the whole body).
    pub lines: bool,
    /// With `lines`, accept a raw U+0085, U+2028 or U+2029 in a string:
    /// valid JSON Lines, refused by default because Python's
    /// `str.splitlines` (and the PyPI `ndjson` package) ends lines there.
    /// For services whose readers split on `\n` only, where user text
    /// holding them (`JSON.stringify` leaves them raw) must pass.
    pub allow_unicode_line_breaks: bool,
    /// Violations to report rather than refuse, among [`REPORTABLE`]: the
    /// body is then still inspected to its end for everything else, and
    /// the first of them is kept for the filter to log and count. For
    /// rolling out a stricter check while the size and grammar checks keep
    /// protecting the service.
    pub report_only: Vec<ViolationKind>,
}

/// The violations that can be reported instead of refused: found where
/// reading can go on as if the check were off (a key, an escape, a number
/// just read), unlike limits, which keep the scan itself bounded, and
/// grammar errors, after which there is no document to read.
pub const REPORTABLE: [ViolationKind; 3] = [
    ViolationKind::DuplicateKey,
    ViolationKind::LoneSurrogate,
    ViolationKind::NumberOutOfRange,
];
