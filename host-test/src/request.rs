//! What a test sends through the host ([`Request`]) and what it gets back
//! ([`Outcome`]).

use crate::abi::LogLevel;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// One HTTP request as the downstream sends it: headers, a body delivered in
/// chunks (each chunk is one `proxy_on_request_body` call unless the host
/// buffers), optional trailers and connection properties.
///
/// Built fluently: `Request::post("/api").header("content-type", "application/json").body(b"{}")`.
#[derive(Clone, Debug)]
pub struct Request {
    /// `:method`.
    pub method: String,
    /// `:path`.
    pub path: String,
    /// `:authority`.
    pub authority: String,
    /// `:scheme`.
    pub scheme: String,
    /// Regular headers, in order; names are lower-cased like Envoy's HTTP/2 codec does.
    pub headers: Vec<(String, String)>,
    /// Body chunks as they arrive from the downstream.
    /// Shared, so the host hands a chunk to the plugin's reads without
    /// copying it, as Envoy does with the data it received.
    pub chunks: Vec<Arc<[u8]>>,
    /// Trailers; `Some` makes the last body chunk arrive with `end_of_stream = false`.
    pub trailers: Option<Vec<(String, String)>>,
    /// The last body chunk arrives with `end_of_stream = false`, and the end
    /// follows alone, in a body callback with no new bytes. That is how
    /// Envoy's HTTP/1 codec delivers every body (and its HTTP/2 codec one
    /// whose `END_STREAM` comes on an empty DATA frame), so a verdict left
    /// for the end comes after the last bytes went upstream. Off, the last
    /// chunk carries the end, as an HTTP/2 client's last DATA frame does.
    pub end_apart: bool,
    /// Stream properties readable with `proxy_get_property` (dotted names).
    pub properties: Vec<(String, Vec<u8>)>,
    /// Simulates a host that reports `body_size > 0` but returns no bytes
    /// (e.g. a body spooled to disk).
    pub unreadable_body: bool,
    /// Keep a copy of what went upstream in [`Outcome::forwarded_headers`]
    /// and [`Outcome::forwarded_body`] (off by default: copying costs more
    /// than the filter on a small request).
    pub capture_forwarded: bool,
    /// The upstream answers before the request ends: its response headers
    /// go downstream once this many body bytes have been forwarded (an
    /// upload endpoint that replies early). `None`: it answers after.
    pub early_response_after: Option<u64>,
    /// The `:status` of that early response (default 200): `101` answers a
    /// WebSocket handshake, after which the client's frames follow as the
    /// request's body. Envoy gives the plugin no other 1xx.
    pub response_status: u16,
    /// Hostcalls the host refuses for this request, to test that the plugin
    /// fails closed.
    pub refuse: HostRefusals,
}

/// Host answers a test can turn hostile: each hostcall named here answers
/// BAD_ARGUMENT for the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostRefusals {
    /// `proxy_send_local_response`: a refused reply must still let nothing
    /// through.
    pub local_reply: bool,
    /// `proxy_close_stream` for the request.
    pub stream_reset: bool,
    /// The request header map, even in the headers callback.
    pub header_map: bool,
}

impl Request {
    /// A request with the given method and path, authority `localhost`, scheme `http`,
    /// no body, and `source.address` = `10.0.0.1:1234`.
    pub fn new(method: &str, path: &str) -> Self {
        Request {
            method: method.to_string(),
            path: path.to_string(),
            authority: "localhost".to_string(),
            scheme: "http".to_string(),
            headers: Vec::new(),
            chunks: Vec::new(),
            trailers: None,
            end_apart: false,
            properties: vec![("source.address".to_string(), b"10.0.0.1:1234".to_vec())],
            unreadable_body: false,
            capture_forwarded: false,
            early_response_after: None,
            response_status: 200,
            refuse: HostRefusals::default(),
        }
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// Sets `:authority`.
    pub fn authority(mut self, authority: &str) -> Self {
        self.authority = authority.to_string();
        self
    }

    /// Sets `:scheme`.
    pub fn scheme(mut self, scheme: &str) -> Self {
        self.scheme = scheme.to_string();
        self
    }

    /// Appends a header (name lower-cased); repeated names make repeated headers.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets `content-type`.
    pub fn content_type(self, value: &str) -> Self {
        self.header("content-type", value)
    }

    /// Adds `content-length` computed from the body as currently set.
    pub fn with_content_length(self) -> Self {
        let len = self.body_len();
        self.header("content-length", &len.to_string())
    }

    /// The whole body as one chunk (an empty slice means no body at all).
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        let b = body.as_ref();
        self.chunks = if b.is_empty() {
            Vec::new()
        } else {
            vec![Arc::from(b)]
        };
        self
    }

    /// The body as explicit chunks (empty chunks are delivered as empty data frames).
    pub fn chunks<I, C>(mut self, chunks: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: AsRef<[u8]>,
    {
        self.chunks = chunks.into_iter().map(|c| Arc::from(c.as_ref())).collect();
        self
    }

    /// The body split into chunks of `size` bytes (last one shorter).
    pub fn body_chunked(mut self, body: impl AsRef<[u8]>, size: usize) -> Self {
        let size = size.max(1);
        self.chunks = body.as_ref().chunks(size).map(Arc::from).collect();
        self
    }

    /// Re-splits the current body into chunks of `size` bytes.
    pub fn chunk_size(self, size: usize) -> Self {
        let body = self.body_bytes();
        self.body_chunked(body, size)
    }

    /// Ends the body in a callback of its own, as HTTP/1 does (see
    /// [`Request::end_apart`]).
    pub fn end_apart(mut self) -> Self {
        self.end_apart = true;
        self
    }

    /// Adds a trailer (and so makes the body end without `end_of_stream`).
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers
            .get_or_insert_with(Vec::new)
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets or replaces a stream property (dotted name, e.g. `source.address`).
    pub fn property(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.properties.retain(|(n, _)| n != name);
        self.properties
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// Makes the body unreadable: sizes are reported, reads return nothing.
    pub fn unreadable_body(mut self) -> Self {
        self.unreadable_body = true;
        self
    }

    /// Records the forwarded headers and bytes in the outcome.
    pub fn capture_forwarded(mut self) -> Self {
        self.capture_forwarded = true;
        self
    }

    /// Makes the upstream start its response once `bytes` body bytes have
    /// been forwarded (see [`Request::early_response_after`]).
    pub fn early_response_after(mut self, bytes: u64) -> Self {
        self.early_response_after = Some(bytes);
        self
    }

    /// Makes the upstream answer with `status` once `after` body bytes have
    /// been forwarded (see [`Request::early_response_after`]).
    pub fn answered(mut self, status: u16, after: u64) -> Self {
        self.response_status = status;
        self.early_response_after = Some(after);
        self
    }

    /// Makes the host refuse the plugin's local reply (see
    /// [`HostRefusals::local_reply`]).
    pub fn refuse_local_reply(mut self) -> Self {
        self.refuse.local_reply = true;
        self
    }

    /// Makes the host refuse to reset the request's stream (see
    /// [`HostRefusals::stream_reset`]).
    pub fn refuse_stream_reset(mut self) -> Self {
        self.refuse.stream_reset = true;
        self
    }

    /// Makes the host refuse the request header map (see
    /// [`HostRefusals::header_map`]).
    pub fn refuse_header_map(mut self) -> Self {
        self.refuse.header_map = true;
        self
    }

    /// Total body length over all chunks.
    pub fn body_len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    /// The body concatenated.
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.body_len());
        for chunk in &self.chunks {
            body.extend_from_slice(chunk);
        }
        body
    }
}

/// Who produced a local reply.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReplySource {
    /// The plugin called `proxy_send_local_response`.
    Plugin,
    /// The host answered by itself (buffer limit 413, or 503 after a trap).
    Host,
}

/// A response generated at the proxy instead of by the upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// Who sent it.
    pub source: ReplySource,
    /// HTTP status.
    pub status: u32,
    /// Envoy's "response code details" string.
    pub details: String,
    /// Response headers, in order.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
    /// gRPC status argument (-1 = none).
    pub grpc_status: i32,
}

impl LocalReply {
    /// First value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as (lossy) text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Where a log line came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// `proxy_log`.
    Proxy,
    /// WASI `fd_write` to fd 1.
    Stdout,
    /// WASI `fd_write` to fd 2 (Rust panic messages land here).
    Stderr,
}

/// One line the plugin logged.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Severity (stdout counts as info, stderr as error).
    pub level: LogLevel,
    /// How it was written.
    pub source: LogSource,
    /// The text.
    pub message: String,
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.level, self.message)
    }
}

/// The (at most two) arguments of a callback after the context id, kept
/// inline: recording them must not allocate on every request.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct CallbackArgs {
    values: [u64; 2],
    len: usize,
}

impl CallbackArgs {
    /// The arguments `values` (at most two; more are dropped).
    pub fn new(values: &[u64]) -> Self {
        let mut args = Self::default();
        for (slot, &v) in args.values.iter_mut().zip(values) {
            *slot = v;
            args.len += 1;
        }
        args
    }

    /// The arguments, in order.
    pub fn as_slice(&self) -> &[u64] {
        &self.values[..self.len]
    }
}

impl std::ops::Deref for CallbackArgs {
    type Target = [u64];

    fn deref(&self) -> &[u64] {
        self.as_slice()
    }
}

impl std::fmt::Debug for CallbackArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// A guest callback the host invoked, and what it returned (for HTTP callbacks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackRecord {
    /// Export name, e.g. `proxy_on_request_body`.
    pub name: &'static str,
    /// Arguments after the context id (e.g. `[body_size, end_of_stream]`).
    pub args: CallbackArgs,
    /// `Some(action)` for callbacks returning an action, `None` otherwise.
    pub action: Option<crate::abi::Action>,
}

/// Everything observable about one request after the host drove it to the end.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The plugin's local reply, if it sent one.
    pub local_reply: Option<LocalReply>,
    /// A reply the host sent itself (413 buffer limit; 503 after a trap).
    pub host_reply: Option<LocalReply>,
    /// Whether the request headers went upstream.
    pub headers_forwarded: bool,
    /// Request headers as forwarded (after any changes the plugin made),
    /// when the request asked for them.
    pub forwarded_headers: Option<Vec<(String, String)>>,
    /// Body bytes that went upstream.
    pub forwarded_bytes: u64,
    /// The forwarded bytes themselves, when the request asked for them.
    pub forwarded_body: Option<Vec<u8>>,
    /// Whether the trailers went upstream.
    pub trailers_forwarded: bool,
    /// A reply or reset happened after something was already forwarded.
    pub upstream_reset: bool,
    /// The stream was reset: the plugin called `proxy_close_stream`, or
    /// sent a local reply after the response had started downstream.
    pub stream_reset: bool,
    /// The upstream's response headers went downstream before the request
    /// ended (see [`Request::early_response_after`]).
    pub response_started: bool,
    /// A local reply that came after the response had started: Envoy cannot
    /// send it and resets the stream instead, so the client never sees it.
    pub undelivered_reply: Option<LocalReply>,
    /// The request completed normally: everything forwarded, no reply.
    pub completed: bool,
    /// The plugin paused at end of stream and never replied nor resumed.
    pub stalled: bool,
    /// The plugin trapped (panic, runaway code, bad memory access): the message.
    pub trap: Option<String>,
    /// What the plugin logged during this request.
    pub logs: Vec<LogLine>,
    /// How often each hostcall was made during this request.
    pub hostcalls: HostcallCounts,
    /// Body bytes the plugin copied out with `proxy_get_buffer_bytes`.
    pub body_bytes_read: u64,
    /// What the plugin set with `proxy_set_property`, keyed as Envoy's
    /// filter state holds it for access logs (`wasm.` and the path):
    /// `%FILTER_STATE(wasm.json_sanitizer.violation:PLAIN)%`.
    pub filter_state: Vec<(String, Vec<u8>)>,
    /// Callbacks invoked, in order.
    pub callbacks: Vec<CallbackRecord>,
    /// Wall time the host spent on this request.
    pub elapsed: Duration,
}

/// Pass or reject, as the CLI reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No local reply, and the request went through.
    Pass,
    /// A local reply (plugin or host) answered the request, or it never
    /// went through: its stream was reset, it was left paused, or the
    /// plugin trapped.
    Reject,
}

/// The verdict of a request derived from its local reply: status plus the
/// `violation`, `offset` and `limit` fields of the problem+json body.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Pass or reject.
    pub verdict: Verdict,
    /// Reply status.
    pub status: Option<u32>,
    /// `violation` of the reply body.
    pub violation: Option<String>,
    /// `offset` of the reply body.
    pub offset: Option<u64>,
    /// `limit` of the reply body.
    pub limit: Option<u64>,
}

impl Outcome {
    /// The reply the client got: the plugin's, else the host's.
    pub fn reply(&self) -> Option<&LocalReply> {
        self.local_reply.as_ref().or(self.host_reply.as_ref())
    }

    /// Status of [`Outcome::reply`].
    pub fn status(&self) -> Option<u32> {
        self.reply().map(|r| r.status)
    }

    /// The reply body parsed as JSON (the problem document).
    pub fn problem(&self) -> Option<serde_json::Value> {
        self.reply().and_then(LocalReply::json)
    }

    /// Verdict, status, violation, offset and limit.
    pub fn summary(&self) -> Summary {
        let delivered = self.reply();
        let Some(reply) = delivered.or(self.undelivered_reply.as_ref()) else {
            return Summary {
                verdict: if self.completed {
                    Verdict::Pass
                } else {
                    Verdict::Reject
                },
                status: None,
                violation: None,
                offset: None,
                limit: None,
            };
        };
        let problem = reply.json();
        let field = |k: &str| problem.as_ref().and_then(|p| p.get(k).cloned());
        Summary {
            verdict: Verdict::Reject,
            // A reply the reset kept from the client has no status there.
            status: delivered.map(|r| r.status),
            violation: field("violation").and_then(|v| v.as_str().map(str::to_string)),
            offset: field("offset").and_then(|v| v.as_u64()),
            limit: field("limit").and_then(|v| v.as_u64()),
        }
    }

    /// A filter-state value the plugin set (see [`Outcome::filter_state`]),
    /// as (lossy) text.
    pub fn filter_state(&self, key: &str) -> Option<String> {
        self.filter_state
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// Calls of one hostcall during this request.
    pub fn hostcall_count(&self, name: &str) -> u64 {
        self.hostcalls.get(name)
    }

    /// Whether any log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.iter().any(|l| l.message.contains(needle))
    }

    /// Names of the callbacks invoked, in order.
    pub fn callback_names(&self) -> Vec<&'static str> {
        self.callbacks.iter().map(|c| c.name).collect()
    }
}

/// How often each hostcall was made during one request, in the order of
/// their first call.
///
/// A request makes a dozen calls to a handful of hostcalls, and every one of
/// them is counted on the path that the per-request benchmark measures, so
/// this is a short list searched in place, not a map that allocates nodes
/// per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostcallCounts {
    counts: Vec<(Cow<'static, str>, u64)>,
}

impl HostcallCounts {
    /// Calls of the hostcall `name` (0 if it was never called).
    pub fn get(&self, name: &str) -> u64 {
        self.counts
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |&(_, calls)| calls)
    }

    /// Each hostcall called, with its count, in the order of first call.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts.iter().map(|(n, calls)| (n.as_ref(), *calls))
    }

    /// Counts one call of a hostcall the host implements.
    pub(crate) fn add(&mut self, name: &'static str) {
        self.bump(name, || Cow::Borrowed(name));
    }

    /// Counts one call of an import known only at link time (one the host
    /// answers with UNIMPLEMENTED); its name is copied on its first call.
    pub(crate) fn add_named(&mut self, name: &str) {
        self.bump(name, || Cow::Owned(name.to_string()));
    }

    fn bump(&mut self, name: &str, stored: impl FnOnce() -> Cow<'static, str>) {
        match self.counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, calls)) => *calls += 1,
            None => self.counts.push((stored(), 1)),
        }
    }

    /// Forgets the counts, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.counts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::HostcallCounts;

    #[test]
    fn hostcall_counts_are_by_name_in_first_call_order() {
        let mut counts = HostcallCounts::default();
        counts.add("proxy_log");
        counts.add("proxy_get_buffer_bytes");
        counts.add("proxy_log");
        // The same name at another address (built at run time, then leaked
        // to get a `'static` one) is the same hostcall.
        let elsewhere: &'static str = String::from("proxy_log").leak();
        counts.add(elsewhere);
        counts.add_named("proxy_http_call");
        counts.add_named("proxy_http_call");
        assert_eq!(counts.get("proxy_log"), 3);
        assert_eq!(counts.get("proxy_get_buffer_bytes"), 1);
        assert_eq!(counts.get("proxy_http_call"), 2);
        assert_eq!(counts.get("proxy_done"), 0);
        let order: Vec<_> = counts.iter().collect();
        assert_eq!(
            order,
            [
                ("proxy_log", 3),
                ("proxy_get_buffer_bytes", 1),
                ("proxy_http_call", 2)
            ]
        );
        counts.clear();
        assert_eq!(counts.get("proxy_log"), 0);
        assert_eq!(counts.iter().count(), 0);
    }
}
