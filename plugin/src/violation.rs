//! Why a request is refused: the stable names shared by replies, metrics,
//! logs, the breaker's `counts` and the CLI's output.

use std::fmt;

/// Every reason the sanitizer can refuse a request. The names returned by
/// [`ViolationKind::as_str`] are a public contract: they appear in the
/// problem+json `violation` field, in metric names and in log lines, so they
/// never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    /// More body bytes than `max_body_bytes` (by `content-length` or counted).
    BodyTooLarge,
    /// Containers nested deeper than `max_depth`.
    TooDeep,
    /// An array with more than `max_array_elements` elements.
    ArrayTooLong,
    /// An object with more than `max_object_entries` members.
    TooManyEntries,
    /// A key longer than `max_key_bytes` raw bytes.
    KeyTooLong,
    /// A string value longer than `max_string_bytes` raw bytes.
    StringTooLong,
    /// More objects and arrays in the body than `max_containers`.
    TooManyContainers,
    /// A number whose exponent has more than `max_exponent_digits` digits.
    ExponentTooLong,
    /// A number token longer than `max_number_chars`.
    NumberTooLong,
    /// A number parsers read differently (`json.numbers: interoperable`): an
    /// integer beyond ±(2^53 − 1), or one that overflows a double.
    NumberOutOfRange,
    /// The same key twice in one object (compared after escape decoding).
    DuplicateKey,
    /// Bytes inside a string that are not well-formed UTF-8.
    InvalidUtf8,
    /// A `\u` escape of half a surrogate pair.
    LoneSurrogate,
    /// Anything RFC 8259 does not allow.
    SyntaxError,
    /// The body ended inside a value.
    Truncated,
    /// Something other than whitespace after the top-level value.
    TrailingData,
    /// A leading UTF-8 byte order mark.
    Bom,
    /// An empty or whitespace-only body.
    EmptyBody,
    /// A `content-type` the rule refuses.
    UnsupportedMediaType,
    /// A `content-encoding` the configuration refuses, or one the filter
    /// cannot decode (`on_encoded_body: inspect` decodes gzip and deflate).
    UnsupportedEncoding,
    /// A body in a coding the filter decodes (`on_encoded_body: inspect`)
    /// that is not valid in it: a corrupt or truncated stream, a wrong
    /// checksum, bytes after the end.
    MalformedEncoding,
    /// The circuit breaker for this request's scope is open.
    BreakerOpen,
    /// The host said there was a body but handed over no bytes for it.
    BodyUnreadable,
    /// The path as written and the path it resolves to (dot segments,
    /// escapes, path parameters) fall under different rules: an upstream
    /// could route it either way, so no one rule can be trusted for it.
    AmbiguousPath,
    /// A header the filter decides by (`content-type`, `content-encoding`,
    /// a method override) also came spelt with `_` or `.` for `-`, which
    /// CGI-style upstreams (PHP, Rack) read as the same header and others
    /// ignore: the request can be read two ways.
    AmbiguousHeader,
    /// The requests not yet judged hold as much memory as
    /// `max_memory_bytes` allows: this one would take them past it.
    Overloaded,
}

impl ViolationKind {
    /// All kinds, in a fixed order (metrics are defined in this order).
    pub const ALL: [ViolationKind; 26] = [
        Self::BodyTooLarge,
        Self::TooDeep,
        Self::ArrayTooLong,
        Self::TooManyEntries,
        Self::KeyTooLong,
        Self::StringTooLong,
        Self::NumberTooLong,
        Self::ExponentTooLong,
        Self::TooManyContainers,
        Self::NumberOutOfRange,
        Self::DuplicateKey,
        Self::InvalidUtf8,
        Self::LoneSurrogate,
        Self::SyntaxError,
        Self::Truncated,
        Self::TrailingData,
        Self::Bom,
        Self::EmptyBody,
        Self::UnsupportedMediaType,
        Self::UnsupportedEncoding,
        Self::MalformedEncoding,
        Self::BreakerOpen,
        Self::BodyUnreadable,
        Self::AmbiguousPath,
        Self::AmbiguousHeader,
        Self::Overloaded,
    ];

    /// The stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BodyTooLarge => "body_too_large",
            Self::TooDeep => "too_deep",
            Self::ArrayTooLong => "array_too_long",
            Self::TooManyEntries => "too_many_entries",
            Self::KeyTooLong => "key_too_long",
            Self::StringTooLong => "string_too_long",
            Self::NumberTooLong => "number_too_long",
            Self::ExponentTooLong => "exponent_too_long",
            Self::TooManyContainers => "too_many_containers",
            Self::NumberOutOfRange => "number_out_of_range",
            Self::DuplicateKey => "duplicate_key",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::LoneSurrogate => "lone_surrogate",
            Self::SyntaxError => "syntax_error",
            Self::Truncated => "truncated",
            Self::TrailingData => "trailing_data",
            Self::Bom => "bom",
            Self::EmptyBody => "empty_body",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::MalformedEncoding => "malformed_encoding",
            Self::BreakerOpen => "breaker_open",
            Self::BodyUnreadable => "body_unreadable",
            Self::AmbiguousPath => "ambiguous_path",
            Self::AmbiguousHeader => "ambiguous_header",
            Self::Overloaded => "overloaded",
        }
    }

    /// Parses a stable name back (configuration uses the names).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// True for the kinds found in the body: every JSON and size violation,
    /// and a body that does not decode (what the breaker counts by default).
    pub const fn is_body_violation(self) -> bool {
        !matches!(
            self,
            Self::UnsupportedMediaType
                | Self::UnsupportedEncoding
                | Self::BreakerOpen
                | Self::BodyUnreadable
                | Self::AmbiguousPath
                | Self::AmbiguousHeader
                | Self::Overloaded
        )
    }

    /// A short human title for the problem+json `title` field.
    pub const fn title(self) -> &'static str {
        match self {
            Self::BodyTooLarge => "Request body too large",
            Self::TooDeep => "JSON nested too deeply",
            Self::ArrayTooLong => "JSON array too long",
            Self::TooManyEntries => "JSON object has too many members",
            Self::KeyTooLong => "JSON key too long",
            Self::StringTooLong => "JSON string too long",
            Self::NumberTooLong => "JSON number too long",
            Self::ExponentTooLong => "JSON number exponent too long",
            Self::TooManyContainers => "JSON has too many objects and arrays",
            Self::NumberOutOfRange => "JSON number out of interoperable range",
            Self::DuplicateKey => "Duplicate key in JSON object",
            Self::InvalidUtf8 => "Invalid UTF-8 in JSON string",
            Self::LoneSurrogate => "Unpaired surrogate escape in JSON string",
            Self::SyntaxError => "Malformed JSON",
            Self::Truncated => "Truncated JSON",
            Self::TrailingData => "Data after the JSON value",
            Self::Bom => "Byte order mark not allowed",
            Self::EmptyBody => "Empty request body",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::UnsupportedEncoding => "Unsupported content encoding",
            Self::MalformedEncoding => "Malformed content encoding",
            Self::BreakerOpen => "Too many rejected requests; try again later",
            Self::BodyUnreadable => "Request body could not be read",
            Self::AmbiguousPath => "Request path is ambiguous",
            Self::AmbiguousHeader => "Request header is ambiguous",
            Self::Overloaded => "Too many request bodies in inspection; try again shortly",
        }
    }
}

/// Configuration names violations by their stable names (`"duplicate_key"`).
impl<'de> serde::Deserialize<'de> for ViolationKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{name}` is not a violation name (see the README's list)"
            ))
        })
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: what, against which limit, and where in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// The reason.
    pub kind: ViolationKind,
    /// The configured limit that was exceeded, for limit violations.
    pub limit: Option<u64>,
    /// Absolute byte offset in the body of the byte that made it
    /// unacceptable; `None` for refusals decided from headers alone.
    pub offset: Option<u64>,
}

impl Violation {
    /// A violation found at `offset` in the body.
    pub const fn at(kind: ViolationKind, offset: u64) -> Self {
        Self {
            kind,
            limit: None,
            offset: Some(offset),
        }
    }

    /// A limit violation found at `offset` in the body.
    pub const fn over(kind: ViolationKind, limit: u64, offset: u64) -> Self {
        Self {
            kind,
            limit: Some(limit),
            offset: Some(offset),
        }
    }
}
