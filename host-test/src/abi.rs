//! Numbers and wire formats of the proxy-wasm ABI 0.2.1 that the host speaks.
//!
//! Kept apart from the host itself so tests (and WAT guests written in tests)
//! can name status codes and enum values instead of repeating magic numbers.

/// Result code every `proxy_*` hostcall returns (`proxy_status_t` / `WasmResult`).
///
/// The Rust SDK panics on any status it does not expect, so returning the
/// exact code Envoy would return is what makes a filter fail here the way it
/// would fail in production.
#[repr(u32)]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// Key, buffer, map or property does not exist.
    NotFound = 1,
    /// Argument out of range, or a map/buffer used where the host forbids it.
    BadArgument = 2,
    /// A value could not be serialized.
    SerializationFailure = 3,
    /// A value could not be parsed.
    ParseFailure = 4,
    /// An expression was not recognized.
    BadExpression = 5,
    /// A guest pointer/length pair is outside linear memory.
    InvalidMemoryAccess = 6,
    /// A queue was empty.
    Empty = 7,
    /// `proxy_set_shared_data` with a stale compare-and-swap token.
    CasMismatch = 8,
    /// A result had an unexpected size.
    ResultMismatch = 9,
    /// Host-side failure.
    InternalFailure = 10,
    /// The connection or stream is gone.
    BrokenConnection = 11,
    /// The host does not implement this call.
    Unimplemented = 12,
}

impl Status {
    /// The raw code as the guest sees it.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// What an HTTP callback asks the host to do with the stream.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Let the data (and anything held before it) go upstream.
    Continue,
    /// Hold the data; for a body this makes the host buffer later chunks.
    Pause,
}

impl Action {
    /// Decodes the `i32` a callback returned. Only 0 continues: Envoy's
    /// proxy-wasm host reads every other value as one of the stop statuses
    /// (for headers all stop everything, for a body 2 and up stop with
    /// watermarks or without buffering), so a stray value stops the stream.
    pub fn from_raw(raw: i32) -> Self {
        if raw == 0 {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

/// Severity of a `proxy_log` line (numbering of the ABI).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// 0
    Trace,
    /// 1
    Debug,
    /// 2
    Info,
    /// 3
    Warn,
    /// 4
    Error,
    /// 5
    Critical,
}

impl LogLevel {
    /// Decodes an ABI log level; `None` for values the ABI does not define.
    pub fn from_raw(raw: i32) -> Option<Self> {
        Some(match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }

    /// The ABI number of this level.
    pub fn raw(self) -> i32 {
        self as i32
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        })
    }
}

/// Kind of a metric (`proxy_define_metric`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Monotonic; increments must be positive.
    Counter,
    /// Settable, may go up and down.
    Gauge,
    /// Records samples.
    Histogram,
}

impl MetricKind {
    /// Decodes the ABI number.
    pub fn from_raw(raw: i32) -> Option<Self> {
        Some(match raw {
            0 => MetricKind::Counter,
            1 => MetricKind::Gauge,
            2 => MetricKind::Histogram,
            _ => return None,
        })
    }
}

/// `proxy_buffer_type_t` values the host understands.
pub mod buffer {
    /// Request body of the current HTTP stream.
    pub const HTTP_REQUEST_BODY: i32 = 0;
    /// Response body (never present in this harness).
    pub const HTTP_RESPONSE_BODY: i32 = 1;
    /// VM configuration given to `proxy_on_vm_start`.
    pub const VM_CONFIGURATION: i32 = 6;
    /// Plugin configuration given to `proxy_on_configure`.
    pub const PLUGIN_CONFIGURATION: i32 = 7;
    /// Highest value defined by ABI 0.2.1.
    pub const MAX: i32 = 8;
}

/// `proxy_map_type_t` values the host understands.
pub mod map {
    /// Request headers (only during `proxy_on_request_headers`).
    pub const HTTP_REQUEST_HEADERS: i32 = 0;
    /// Request trailers (only during `proxy_on_request_trailers`).
    pub const HTTP_REQUEST_TRAILERS: i32 = 1;
    /// Response headers (only during `proxy_on_response_headers`).
    pub const HTTP_RESPONSE_HEADERS: i32 = 2;
    /// Highest value defined by ABI 0.2.1.
    pub const MAX: i32 = 7;
}

/// `proxy_stream_type_t`: the HTTP request stream.
pub const STREAM_HTTP_REQUEST: i32 = 0;

/// Serializes a header map the way the ABI transports it: a `u32` count,
/// then `(u32 name_len, u32 value_len)` per pair, then each `name\0value\0`.
///
/// Written apart from the plugin's own codec (`json_sanitizer::filter::pairs`)
/// on purpose: the host is the check on the plugin's encoding, so a mistake
/// shared by both would pass unseen.
pub fn serialize_map(pairs: &[(String, String)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Parses the serialized map format of [`serialize_map`]; `None` when the
/// bytes are malformed (the host then answers `BadArgument`, never panics).
pub fn deserialize_map(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let read_u32 = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let n = read_u32(0)?;
    let mut sizes = Vec::with_capacity(n.min(1024));
    for i in 0..n {
        let at = 4usize.checked_add(i.checked_mul(8)?)?;
        sizes.push((read_u32(at)?, read_u32(at + 4)?));
    }
    let mut pos = 4 + n * 8;
    let mut out = Vec::with_capacity(sizes.len());
    for (kl, vl) in sizes {
        let k = bytes.get(pos..pos.checked_add(kl)?)?;
        pos += kl + 1;
        let v = bytes.get(pos..pos.checked_add(vl)?)?;
        pos += vl + 1;
        out.push((
            String::from_utf8_lossy(k).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        ));
    }
    Some(out)
}

/// Turns a serialized property path (segments separated by NUL) into the
/// dotted name the host's attributes are kept under: `["source", "address"]`
/// is `source.address`. `None` when the first segment holds a dot (the
/// common mistake `"source.address"` as one segment): Envoy splits paths on
/// NUL only, so no attribute has such a name, and only the filter state
/// (see [`filter_state_key`]) can answer it.
pub fn property_path(bytes: &[u8]) -> Option<String> {
    let segments: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    if segments.first().is_some_and(|s| s.contains('.')) {
        return None;
    }
    Some(segments.join("."))
}

/// The first segments Envoy answers from its own attributes (`request`,
/// `source`, `plugin_name`, ...): never from what a plugin set.
const ATTRIBUTE_ROOTS: [&[u8]; 22] = [
    b"request",
    b"response",
    b"connection",
    b"upstream",
    b"source",
    b"destination",
    b"metadata",
    b"filter_state",
    b"upstream_filter_state",
    b"xds",
    b"node",
    b"connection_id",
    b"plugin_name",
    b"plugin_root_id",
    b"plugin_vm_id",
    b"cluster_name",
    b"cluster_metadata",
    b"listener_direction",
    b"listener_metadata",
    b"route_name",
    b"route_metadata",
    b"upstream_host_metadata",
];

/// The filter-state key Envoy reads for a serialized property path, if it
/// reads one: `filter_state` then a key names that key; one segment that is
/// none of Envoy's attributes names `wasm.` and itself, where
/// `proxy_set_property` put it. Anything else is not filter state.
pub fn filter_state_key(raw: &[u8]) -> Option<String> {
    let segments: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    match segments.as_slice() {
        [one] if !one.is_empty() && !ATTRIBUTE_ROOTS.contains(one) => {
            Some(format!("wasm.{}", String::from_utf8_lossy(one)))
        }
        [root, key] if *root == b"filter_state" => Some(String::from_utf8_lossy(key).into_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trips() {
        let m = vec![
            (":path".to_string(), "/a".to_string()),
            ("x".to_string(), String::new()),
        ];
        assert_eq!(deserialize_map(&serialize_map(&m)).unwrap(), m);
        assert!(deserialize_map(&[5, 0, 0, 0, 1]).is_none());
    }

    #[test]
    fn property_paths_join_segments() {
        let path = |raw: &[u8]| property_path(raw);
        assert_eq!(path(b"source\0address").as_deref(), Some("source.address"));
        assert_eq!(path(b"plugin_name").as_deref(), Some("plugin_name"));
        assert_ne!(path(b"source.address").as_deref(), Some("source.address"));
        assert_eq!(
            path(b"metadata\0filter_metadata\0envoy.lb").as_deref(),
            Some("metadata.filter_metadata.envoy.lb")
        );
    }

    #[test]
    fn filter_state_is_read_for_unknown_names_and_by_its_own_key() {
        let key = |raw: &[u8]| filter_state_key(raw);
        assert_eq!(
            key(b"json_sanitizer.violation").as_deref(),
            Some("wasm.json_sanitizer.violation")
        );
        assert_eq!(key(b"mark").as_deref(), Some("wasm.mark"));
        assert_eq!(
            key(b"filter_state\0wasm.mark").as_deref(),
            Some("wasm.mark")
        );
        for attribute in [
            &b"request"[..],
            b"source",
            b"plugin_name",
            b"request\0path",
            b"mark\0x",
            b"",
        ] {
            assert_eq!(
                key(attribute),
                None,
                "{}",
                String::from_utf8_lossy(attribute)
            );
        }
    }

    #[test]
    fn only_zero_continues() {
        assert_eq!(Action::from_raw(0), Action::Continue);
        for raw in [1, 2, 3, 4, -1] {
            assert_eq!(Action::from_raw(raw), Action::Pause, "{raw}");
        }
    }
}
