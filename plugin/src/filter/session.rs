//! The life of one request, as plain Rust: headers → body chunks → end.
//!
//! Everything that depends on the host goes through [`Host`], so the whole
//! request state machine (hold-then-stream, cumulative body sizes, replies,
//! the breaker, report mode) is unit-tested natively; the proxy-wasm glue
//! only translates callbacks and hostcalls.

use super::decode::{Decoder, Encoding, Fed};
use super::log_budget::{Admission, LeftOut};
use super::metrics::{Metric, RuleCounter};
use super::pairs::{decode_spans, Span};
use super::plugin::Plugin;
use super::sniff::Sniffer;
use crate::ascii::CgiNames;
use crate::inspector::Inspector;
use crate::policy::breaker::{
    self, admit, record, Decision, Event, Outcome, Report, Scope, ScopeInput, Snapshot, Store,
};
use crate::policy::config::{
    ContentTypeAction, EncodedBodyAction, Mode, OtherCharsetAction, PassOrReject, Policy,
    METHOD_OVERRIDES,
};
use crate::policy::media::ContentTypeClass;
use crate::policy::reply::{self, Reply};
use crate::violation::{Violation, ViolationKind};
use std::borrow::Cow;
use std::ops::Range;
use std::rc::Rc;

/// Body bytes are read from the host in slices of at most this size, so the
/// guest's memory does not depend on how large the host's chunks are (a
/// 1 MiB data frame costs 64 reads of 16 KiB, not a 1 MiB allocation).
pub const READ_SLICE: usize = 16 * 1024;

/// Log severity, mapped onto proxy-wasm's levels by the glue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Rejections, breaker transitions.
    Info,
    /// Something the operator should look at (unreadable body, host errors).
    Warn,
}

/// What the session needs from the host during a request.
pub trait Host {
    /// Bytes `[start, start + len)` of the request body buffer the host
    /// holds now; `None` if it has none to give.
    fn body(&mut self, start: usize, len: usize) -> Option<Vec<u8>>;
    /// Wall-clock time in milliseconds (the breaker's clock); `None` if
    /// the host will not say.
    fn now_ms(&mut self) -> Option<u64>;
    /// The `source.address` property (`ip:port`), for the `source_ip` scope.
    fn source_address(&mut self) -> Option<String>;
    /// Shared data, for the breaker.
    fn store(&self) -> &dyn Store;
    /// A log line.
    fn log(&mut self, level: Level, message: &str);
    /// Resets the request stream (the fallback when the host refuses a
    /// local reply); `false` if the host refuses that too.
    fn reset_stream(&mut self) -> bool;
    /// Adds `delta` (> 0) to a counter.
    fn count(&mut self, metric: Metric, delta: u64);
    /// Adds one to a per-policy counter: `policy` is the policy's index in
    /// `Config::policies` (0 for the top level), `rule` its name. Called only
    /// when the configuration has rules.
    fn count_rule(&mut self, policy: usize, rule: &str, counter: RuleCounter);
    /// Leaves the violation found in this request, and the rule that judged
    /// it, where Envoy's access log can print them (see [`VIOLATION_PROPERTY`]
    /// and [`RULE_PROPERTY`]): in report mode they are the only per-request
    /// trace of a request that would have been refused. A refusal by the
    /// host is ignored: it is a record, not a decision.
    fn note_violation(&mut self, kind: ViolationKind, rule: &str);
}

/// The property the plugin sets to the violation's kind (`too_deep`) on
/// every request it refuses or, in report mode, would refuse. Envoy files it
/// in the stream's filter state as `wasm.json_sanitizer.violation`, which
/// an access log prints with `%FILTER_STATE(wasm.json_sanitizer.violation:PLAIN)%`.
pub const VIOLATION_PROPERTY: &str = "json_sanitizer.violation";

/// Set beside [`VIOLATION_PROPERTY`]: the name of the rule whose policy
/// judged the request (`default` for the top level), printed with
/// `%FILTER_STATE(wasm.json_sanitizer.rule:PLAIN)%`.
pub const RULE_PROPERTY: &str = "json_sanitizer.rule";

/// What the request headers say, read once in the headers callback (Envoy
/// refuses header access later).
///
/// It keeps the map the host handed over and the position of each header in
/// it: no copy, and a value is only made text (lossily, so a garbled value
/// simply matches nothing) when something asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// The header map as the host encoded it.
    raw: Vec<u8>,
    /// Each header's name and value, as ranges of `raw`, in order.
    spans: Vec<Span>,
}

impl RequestHead {
    /// The headers in the host's encoding of a header map, or `None` when
    /// it is inconsistent (a hostile host answer).
    pub fn from_encoded(raw: Vec<u8>) -> Option<Self> {
        let spans = decode_spans(&raw)?;
        Some(Self { raw, spans })
    }

    /// The headers `pairs` (names lower-case, as Envoy presents them), for
    /// tests: the filter only ever gets an encoded map from the host.
    #[cfg(test)]
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Self {
        Self::from_encoded(super::pairs::encode_pairs(pairs)).unwrap_or_default()
    }

    fn text(&self, range: &Range<usize>) -> Cow<'_, str> {
        let bytes = self.raw.get(range.clone()).unwrap_or_default();
        // `from_utf8` first: it checks ASCII a word at a time, where the
        // lossy conversion walks every value byte by byte (in wasm, a
        // measurable part of a small request).
        match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        }
    }

    /// Every header as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_ {
        self.spans
            .iter()
            .map(|(name, value)| (self.text(name), self.text(value)))
    }

    /// The first value of header `name`.
    pub fn get<'a>(&'a self, name: &'a str) -> Option<Cow<'a, str>> {
        self.all(name).next()
    }

    /// The first value of header `name` as the host sent it: bytes that are
    /// not UTF-8 stay distinct (the lossy text makes them all U+FFFD).
    pub fn get_raw(&self, name: &str) -> Option<&[u8]> {
        self.values(name)
            .next()
            .and_then(|v| self.raw.get(v.clone()))
    }

    /// Every value of header `name`, in order (a header may be repeated).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        self.values(name).map(|v| self.text(v))
    }

    /// Whether any header is one of `names` spelt with `_` or `.` for `-`
    /// (a default request pays about 360 instructions in wasm for this).
    #[inline]
    pub fn has_cgi_twin(&self, names: &CgiNames) -> bool {
        self.spans.iter().any(|(k, _)| {
            names.may_be(k.end.wrapping_sub(k.start))
                && self.raw.get(k.clone()).is_some_and(|k| names.twin(k))
        })
    }

    /// Where each value of header `name` is in `raw`. Names compare ignoring
    /// ASCII case, lengths first (before the slice lookup: most names differ
    /// in length, and that skips it).
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Range<usize>> + 'a {
        self.spans
            .iter()
            .filter(move |(k, _)| {
                k.len() == name.len()
                    && self
                        .raw
                        .get(k.clone())
                        .is_some_and(|k| crate::ascii::eq_ignore_case(k, name.as_bytes()))
            })
            .map(|(_, v)| v)
    }
}

/// What the glue returns to the host for a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Let the request (and what is buffered) proceed.
    Continue,
    /// Hold: keep buffering, send nothing upstream yet.
    Pause,
    /// Answer locally with this reply (the glue sends it and pauses).
    Reply(Reply),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the headers callback.
    Headers,
    /// Inspecting the body.
    Body,
    /// Decided and let through (passed, skipped or reported): nothing more
    /// to do.
    Done,
    /// Refused with a local reply: whatever the host still delivers is held,
    /// never let through (it only comes if the reply did not take effect).
    Refused,
}

/// The breaker admission held by an inspected request until its outcome.
struct BreakerTicket {
    key: String,
    scope: String,
    snapshot: Snapshot,
}

/// One request's state.
pub struct Session {
    plugin: Rc<Plugin>,
    policy: usize,
    phase: Phase,
    inspector: Option<Box<Inspector>>,
    request_id: Option<String>,
    /// The previous body callback returned `Pause`: the host's buffer holds
    /// `buffered` bytes we already inspected, and `body_size` is cumulative.
    paused: bool,
    buffered: usize,
    inspected: u64,
    /// The content type says `sniff`, and the body has not yet shown
    /// whether it looks like JSON: it is inspected only if it does.
    sniffer: Option<Sniffer>,
    /// A WebSocket handshake or a CONNECT waiting for the response that
    /// opens its tunnel (see [`Session::on_response_headers`]).
    awaiting: Option<Tunnel>,
    /// The body's `content-length`, if it has one (see
    /// [`Session::declared_too_large`] and
    /// [`Session::refused_at_declared_end`]).
    declared: Option<u64>,
    /// Bytes this request's inspector and decoder hold, counted in the
    /// plugin's memory in flight (see [`Session::memory_fits`]).
    memory: u64,
    /// The body is sent in a coding the filter sees through
    /// (`on_encoded_body: inspect`): what is read goes through this, and the
    /// sniffer and the inspector get the decoded bytes.
    decoder: Option<Box<Decoder>>,
    /// Why the body is refused, beyond its violation, for the log line (what
    /// is wrong with its encoding).
    reason: Option<&'static str>,
    ticket: Option<BreakerTicket>,
}

impl Drop for Session {
    /// Leaves the inspector for the next request under the same policy, and
    /// the decoder for the next encoded one.
    fn drop(&mut self) {
        self.let_go();
    }
}

impl Session {
    /// A session for a new request under `plugin`'s configuration.
    pub fn new(plugin: Rc<Plugin>) -> Self {
        Self {
            plugin,
            policy: 0,
            phase: Phase::Headers,
            inspector: None,
            request_id: None,
            paused: false,
            buffered: 0,
            inspected: 0,
            sniffer: None,
            awaiting: None,
            declared: None,
            memory: 0,
            decoder: None,
            reason: None,
            ticket: None,
        }
    }

    fn policy(&self) -> &Policy {
        self.plugin.config.policy(self.policy)
    }

    /// Counts the request in a total and, when the configuration has rules,
    /// in its policy's own counter. Inlined, so that each call site's total
    /// is a constant and its metric index is worked out at compile time.
    #[inline(always)]
    fn tally(&self, host: &mut dyn Host, counter: RuleCounter) {
        host.count(counter.total(), 1);
        if !self.plugin.config.rules.is_empty() {
            host.count_rule(self.policy, &self.policy().name, counter);
        }
    }

    /// Request headers: pick the rule, refuse what the headers condemn, and
    /// decide whether the body is held or streamed.
    pub fn on_request_headers(
        &mut self,
        head: &RequestHead,
        end_of_stream: bool,
        host: &mut dyn Host,
    ) -> Action {
        if let Some(late) = self.late_headers() {
            return late;
        }
        self.request_id = head
            .get("x-request-id")
            .and_then(|id| reply::clean_request_id(&id));
        let config = &self.plugin.config;
        if head.has_cgi_twin(&config.twinned_headers) {
            return self.reject(host, header_violation(ViolationKind::AmbiguousHeader, None));
        }
        let route = config.select_overridden(
            || [":method", ":path", ":authority"].map(|name| head.get(name).unwrap_or_default()),
            || {
                let values = METHOD_OVERRIDES.iter().flat_map(|name| head.all(name));
                values.collect::<Vec<_>>()
            },
        );
        self.policy = route.policy;
        if route.ambiguous {
            return self.reject(host, header_violation(ViolationKind::AmbiguousPath, None));
        }
        if route.skip || end_of_stream {
            return self.skip(host);
        }
        // Every content-type header counts: with two, an upstream may use
        // either, so one JSON value is enough to inspect.
        let content_types = config.read_content_types(head.all("content-type"));
        let action = match content_types.class {
            ContentTypeClass::Json => ContentTypeAction::Inspect,
            ContentTypeClass::Missing => config.on_missing_content_type,
            ContentTypeClass::Other => config.on_other_content_type,
        };
        // A WebSocket handshake or a CONNECT: what follows it is decided by
        // the response (looked for only when no JSON is declared: the usual
        // request pays nothing for this). Whatever its headers say about a
        // body, a passing type included, bytes sent before the response are
        // inspected; a refused type stays refused.
        if action != ContentTypeAction::Reject && content_types.class != ContentTypeClass::Json {
            match opens_a_tunnel(head) {
                // RFC 9298 lets a CONNECT-UDP client send datagrams before
                // the answer, and Envoy holds them until it (or ends the
                // tunnel itself): nothing of it is JSON to inspect.
                Some(Tunnel::ConnectUdp) => return self.skip(host),
                Some(tunnel) => return self.await_response(tunnel, host),
                None => {}
            }
        }
        if action == ContentTypeAction::Pass {
            return self.skip(host);
        }
        let on_charset = config.on_other_charset;
        let foreign_charset =
            content_types.foreign_charset && on_charset != OtherCharsetAction::Inspect;
        let encoding = Encoding::of(head.all("content-encoding"));
        let on_encoded = config.on_encoded_body;
        // The charset's and the coding's policies are for bodies that would
        // be inspected: a type the configuration refuses stays refused.
        let passed = (foreign_charset && on_charset == OtherCharsetAction::Pass)
            || (encoding != Encoding::Identity && on_encoded == EncodedBodyAction::Pass);
        if passed && action != ContentTypeAction::Reject {
            return self.skip(host);
        }

        // From here on the request is one the breaker guards.
        if let Some(shed) = self.admit_breaker(head, host) {
            return shed;
        }
        if action == ContentTypeAction::Reject {
            return self.reject(
                host,
                header_violation(ViolationKind::UnsupportedMediaType, None),
            );
        }
        if foreign_charset {
            self.reason = Some("the content-type names a charset other than UTF-8");
            return self.reject(
                host,
                header_violation(ViolationKind::UnsupportedMediaType, None),
            );
        }
        let coding = match (encoding, on_encoded) {
            (Encoding::Identity, _) => None,
            (Encoding::Decodable(coding), EncodedBodyAction::Inspect) => Some(coding),
            _ => {
                return self.reject(
                    host,
                    header_violation(ViolationKind::UnsupportedEncoding, None),
                )
            }
        };
        // A body being sniffed may not be JSON at all: its declared length
        // is held against it only once it looks like JSON.
        let sniff = action == ContentTypeAction::Sniff;
        self.declared = head
            .get("content-length")
            .and_then(|v| v.trim_ascii().parse::<u64>().ok());
        if !sniff && self.declared_too_large() {
            let max = self.policy().limits.max_body_bytes;
            return self.reject(host, header_violation(ViolationKind::BodyTooLarge, max));
        }
        let policy = self.policy();
        let inspector = self.plugin.inspector(self.policy);
        let hold_headers = self.plugin.config.hold_headers && policy.hold_bytes > 0;
        self.inspector = Some(inspector);
        self.decoder = coding.map(|c| self.plugin.decoder(c));
        if self.decoder.is_some() {
            host.count(Metric::RequestsDecoded, 1);
        }
        self.phase = Phase::Body;
        if !self.memory_fits() {
            return self.overloaded(host);
        }
        let lines = self.policy().json.lines;
        self.sniffer = sniff.then(|| Sniffer::new(lines));
        if !sniff {
            self.tally(host, RuleCounter::Inspected);
        }
        // The headers go upstream now, unless the configuration says Envoy
        // lets them be held (`allow_on_headers_stop_iteration`): by default
        // Envoy turns a pause here into "stop everything", and the body
        // callbacks that would end it never come. Body bytes are held either
        // way, so a violation inside the hold window costs the upstream an
        // opened and reset request, never a body byte.
        if hold_headers {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    /// The answer to a headers callback that is not the first thing in the
    /// stream (Envoy never sends one): held after a refusal, else let be.
    fn late_headers(&self) -> Option<Action> {
        match self.phase {
            Phase::Headers => None,
            Phase::Refused => Some(Action::Pause),
            Phase::Body | Phase::Done => Some(Action::Continue),
        }
    }

    /// The host would not hand over the request headers, or handed over a
    /// map that does not decode. Without them no rule, content type or
    /// length can be judged, so the request gets `on_unreadable_body`'s
    /// answer rather than the top level's policy by default.
    /// A request without a body has nothing to inspect: it passes, with
    /// the warning.
    pub fn on_request_headers_unreadable(
        &mut self,
        end_of_stream: bool,
        host: &mut dyn Host,
    ) -> Action {
        if let Some(late) = self.late_headers() {
            return late;
        }
        let why = "the host refused the request headers";
        if end_of_stream {
            let line = format!(
                "json-sanitizer: request headers unreadable, no body: passed reason=\"{why}\""
            );
            host.log(Level::Warn, &line);
            return self.skip(host);
        }
        self.unreadable(host, why)
    }

    /// A body callback. `body_size` is cumulative while paused, per chunk
    /// after a `Continue` (Envoy's buffering rule).
    pub fn on_request_body(
        &mut self,
        body_size: usize,
        end_of_stream: bool,
        host: &mut dyn Host,
    ) -> Action {
        match self.phase {
            Phase::Body => {}
            Phase::Done => return Action::Continue,
            Phase::Refused => return Action::Pause,
            // Envoy always delivers the headers first; a host that does not
            // gets no uninspected bytes through.
            Phase::Headers => {
                return self.unreadable(host, "the host delivered body bytes before the headers")
            }
        }
        let start = if self.paused { self.buffered } else { 0 };
        let Some(len) = body_size.checked_sub(start) else {
            return self.unreadable(host, "the host's body buffer shrank while paused");
        };
        let mut at = start;
        while at < body_size {
            let want = (body_size - at).min(READ_SLICE);
            let bytes = match host.body(at, want) {
                Some(bytes) if bytes.len() == want => bytes,
                Some(bytes) if !bytes.is_empty() => {
                    return self.unreadable(
                        host,
                        "the host returned a different number of body bytes than it reported",
                    )
                }
                _ => {
                    return self.unreadable(host, "the host reported a body but returned no bytes")
                }
            };
            let read = self.inspected;
            at += want;
            self.inspected += want as u64;
            let taken = match self.decoder.take() {
                None => self.take(&bytes, host),
                Some(mut decoder) => {
                    let taken = self.decode(&mut decoder, read, &bytes, host);
                    if self.phase == Phase::Body {
                        self.decoder = Some(decoder);
                    } else {
                        // Decided while decoding: let go with the rest.
                        self.plugin.recycle_decoder(decoder);
                    }
                    taken
                }
            };
            let taken = match taken {
                Ok(()) if !self.memory_fits() => Err(Stop::Refused(self.overloaded(host))),
                taken => taken,
            };
            match taken {
                Ok(()) => {}
                Err(Stop::Decided(action)) => return action,
                Err(Stop::Refused(action)) => {
                    host.count(Metric::BytesInspected, (at - start) as u64);
                    return action;
                }
            }
        }
        if len > 0 {
            host.count(Metric::BytesInspected, len as u64);
        }
        if end_of_stream || self.refused_at_declared_end() {
            return self.finish(host);
        }
        let hold = self.policy().hold_bytes;
        if hold > 0 && self.inspected <= hold {
            self.paused = true;
            self.buffered = body_size;
            Action::Pause
        } else {
            self.paused = false;
            self.buffered = 0;
            Action::Continue
        }
    }

    /// Trailers end the body: the verdict is due now, or trailers would be a
    /// way around the inspection.
    pub fn on_request_trailers(&mut self, host: &mut dyn Host) -> Action {
        match self.phase {
            Phase::Body => self.finish(host),
            Phase::Refused => Action::Pause,
            Phase::Headers | Phase::Done => Action::Continue,
        }
    }

    /// The host refused to send the local reply this session asked for. The
    /// request must still not go through: the stream is reset instead, and
    /// if the host refuses that too, the request stays paused (Envoy's
    /// stream timeout ends it) and nothing more is let through. The callback
    /// that asked for the reply returns `Pause` either way.
    pub fn reply_refused(&mut self, host: &mut dyn Host) {
        self.phase = Phase::Refused;
        let reset = host.reset_stream();
        let line = format!(
            "json-sanitizer: the host refused the local reply{} action={}",
            self.id_field(),
            if reset { "reset" } else { "hold" }
        );
        host.log(Level::Warn, &line);
    }

    /// The stream is over (completed, reset or refused). Frees a breaker
    /// probe slot if the request never reached a verdict.
    pub fn on_done(&mut self, host: &mut dyn Host) {
        self.record_outcome(host, Outcome::Abandoned);
        self.phase = Phase::Done;
    }

    /// Counts what this request's inspector and decoder hold now in the
    /// plugin's memory in flight; false, with nothing counted, when that
    /// would take it past `max_memory_bytes` (see [`Session::overloaded`]).
    #[inline(always)]
    fn memory_fits(&mut self) -> bool {
        let inspector = self.inspector.as_ref();
        let decoder = self.decoder.as_ref();
        let now = inspector.map_or(0, |i| std::mem::size_of::<Inspector>() + i.footprint())
            + decoder.map_or(0, |d| d.footprint());
        let fits = self.plugin.hold_memory(self.memory, now as u64);
        if fits {
            self.memory = now as u64;
        }
        fits
    }

    /// The request has its verdict: what it held for inspection is counted
    /// no more, and its inspector and decoder go back for the next request
    /// now, not when Envoy ends the stream (a passed request may wait long
    /// for its upstream, and must not hold the memory others need).
    fn let_go(&mut self) {
        self.plugin.hold_memory(self.memory, 0);
        self.memory = 0;
        if let Some(inspector) = self.inspector.take() {
            self.plugin.recycle(self.policy, inspector);
        }
        if let Some(decoder) = self.decoder.take() {
            self.plugin.recycle_decoder(decoder);
        }
    }

    /// Refuses a request whose memory does not fit as `overloaded` (in
    /// report mode, reports it and lets it through uninspected); the
    /// refusal lets that memory go at once, like any verdict.
    #[cold]
    #[inline(never)]
    fn overloaded(&mut self, host: &mut dyn Host) -> Action {
        // Grown past the usual size: freed, not recycled.
        (self.inspector, self.decoder) = (None, None);
        let max = self.plugin.config.max_memory_bytes;
        self.reject(host, header_violation(ViolationKind::Overloaded, max))
    }

    /// Whether the body's declared length is over `max_body_bytes`: refused
    /// at the headers, or, for a sniffed body, once it looks like JSON.
    #[inline(always)]
    fn declared_too_large(&self) -> bool {
        let max = self.policy().limits.max_body_bytes;
        self.declared
            .zip(max)
            .is_some_and(|(length, max)| length > max)
    }

    /// Whether the body, now that it has every byte its `content-length`
    /// declared, would be refused if it ended here. Envoy's HTTP/1 codec
    /// hands the last bytes over as an ordinary chunk and the end of the
    /// stream as an empty callback after it: let through, those bytes
    /// complete the upstream's request before any reset could follow. So a
    /// body whose end is what is wrong with it (truncated, empty, a
    /// compressed stream cut short) is refused with them, not after; one
    /// that would pass waits for its end as usual, and any byte a host sent
    /// beyond the declared length would be inspected like the others.
    fn refused_at_declared_end(&mut self) -> bool {
        // A sniffed body still undecided is whitespace: not JSON, passed.
        if self.declared != Some(self.inspected) || self.sniffer.is_some() {
            return false;
        }
        if self.decoder.as_ref().is_some_and(|d| d.finish().is_err()) {
            return true;
        }
        let inspector = self.inspector.as_mut();
        inspector.is_some_and(|i| i.verdict_if_ended().is_some())
    }

    fn finish(&mut self, host: &mut dyn Host) -> Action {
        if let Some(Err(why)) = self.decoder.as_ref().map(|d| d.finish()) {
            return self.malformed(host, why.0);
        }
        if self.sniffer.is_some() {
            // Nothing but whitespace, if anything: not a JSON body.
            return self.not_json(host);
        }
        let verdict = match self.inspector.as_mut() {
            Some(inspector) => inspector.finish(),
            None => Ok(()),
        };
        match verdict {
            Ok(()) => {
                self.phase = Phase::Done;
                self.record_outcome(host, Outcome::Success);
                match self.inspector.as_ref().and_then(|i| i.noted()) {
                    Some(v) => self.report_only(host, &v),
                    None => self.tally(host, RuleCounter::Passed),
                }
                self.let_go();
                Action::Continue
            }
            Err(v) => self.reject(host, v),
        }
    }

    /// Hands body bytes (decoded, if the body is encoded) to the sniffer and
    /// the inspector.
    #[inline(always)]
    fn take(&mut self, bytes: &[u8], host: &mut dyn Host) -> Result<(), Stop> {
        if let Some(sniffer) = self.sniffer.as_mut() {
            match sniffer.feed(bytes) {
                None => {}
                Some(true) => {
                    self.sniffer = None;
                    self.tally(host, RuleCounter::Inspected);
                    if self.declared_too_large() {
                        let max = self.policy().limits.max_body_bytes;
                        let v = header_violation(ViolationKind::BodyTooLarge, max);
                        return Err(Stop::Decided(self.reject(host, v)));
                    }
                }
                Some(false) => return Err(Stop::Decided(self.not_json(host))),
            }
        }
        let fed = match self.inspector.as_mut() {
            Some(inspector) => inspector.feed(bytes),
            None => Ok(()),
        };
        match fed {
            // While a sniffed body is undecided, what the inspector found in
            // it (a NUL byte, a byte order mark, whitespace past the size
            // limit) waits in its verdict: it is the body's refusal if the
            // body turns out to look like JSON (the next feed returns it),
            // and nothing if not, however the body was cut.
            Err(_) if self.sniffer.is_some() => Ok(()),
            Err(v) => Err(Stop::Refused(self.reject(host, v))),
            Ok(()) => Ok(()),
        }
    }

    /// Decodes the next `bytes` of an encoded body, of which `read` bytes
    /// came before, and takes what they decode to. `max_body_bytes` holds
    /// for the body as sent too (a stream of empty deflate blocks decodes to
    /// nothing): bytes past it are not decoded but refused, so the answer
    /// does not depend on where the host cut the body.
    #[inline(never)]
    fn decode(
        &mut self,
        decoder: &mut Decoder,
        read: u64,
        bytes: &[u8],
        host: &mut dyn Host,
    ) -> Result<(), Stop> {
        let max = self.policy().limits.max_body_bytes;
        let room = max.map_or(bytes.len(), |max| room(max, read, bytes.len()));
        let within = bytes.get(..room).unwrap_or_default();
        let mut decoded = 0;
        let fed = decoder.feed(within, &mut |piece| {
            decoded += piece.len() as u64;
            self.take_decoded(piece, host)
        });
        if decoded > 0 {
            host.count(Metric::BytesDecoded, decoded);
        }
        match fed {
            Ok(()) => {}
            Err(Fed::Stopped(stop)) => return Err(stop),
            Err(Fed::Malformed(why)) => return Err(Stop::Refused(self.malformed(host, why.0))),
        }
        if room < bytes.len() {
            let v = header_violation(ViolationKind::BodyTooLarge, max);
            return Err(self.over_the_limit(host, v));
        }
        Ok(())
    }

    /// Refuses a body at a size limit it reached before showing, if it is
    /// being sniffed, whether it is JSON: with what the inspector has found
    /// in it so far (a NUL byte, say), which would have been its refusal had
    /// it gone on to look like JSON, or else `over`.
    fn over_the_limit(&mut self, host: &mut dyn Host, over: Violation) -> Stop {
        let found = match self.inspector.as_ref() {
            Some(inspector) if self.sniffer.is_some() => inspector.verdict(),
            _ => None,
        };
        Stop::Refused(self.reject(host, found.unwrap_or(over)))
    }

    /// Takes decoded bytes. While they are being sniffed, `max_body_bytes`
    /// bounds them too: whitespace keeps a sniffer undecided, and the
    /// inspector's verdict on it waits, so without this a compressed body
    /// of spaces would be decoded to about a thousand times its size. The
    /// bytes are cut at the limit, so the answer does not depend on the
    /// chunking: a body that shows what it is within the limit is judged as
    /// usual; one that has not is refused with what the inspector found in
    /// it, or `body_too_large` at the limit.
    #[inline(never)]
    fn take_decoded(&mut self, piece: &[u8], host: &mut dyn Host) -> Result<(), Stop> {
        let max = self.policy().limits.max_body_bytes;
        // Every decoded byte so far went to the sniffer, which is still
        // undecided: it has counted them.
        let (Some(max), Some(sniffer)) = (max, &self.sniffer) else {
            return self.take(piece, host);
        };
        let room = room(max, sniffer.seen(), piece.len());
        let (within, beyond) = piece.split_at(room);
        self.take(within, host)?;
        if beyond.is_empty() {
            return Ok(());
        }
        if self.sniffer.is_none() {
            return self.take(beyond, host);
        }
        let v = Violation::over(ViolationKind::BodyTooLarge, max, max);
        Err(self.over_the_limit(host, v))
    }

    /// Refuses an encoded body that does not decode, saying why in the
    /// refusal's log line.
    fn malformed(&mut self, host: &mut dyn Host, why: &'static str) -> Action {
        self.reason = Some(why);
        self.reject(
            host,
            header_violation(ViolationKind::MalformedEncoding, None),
        )
    }

    /// A body that passed but for a violation of a `report_only` kind: it
    /// goes on, and is logged, counted and left for the access log like a
    /// request report mode would have refused (not as passed, so that the
    /// inspected requests are still passed + rejected + would-reject).
    fn report_only(&self, host: &mut dyn Host, v: &Violation) {
        self.log_violation(host, "would reject", v);
        self.tally(host, RuleCounter::WouldReject);
        host.count(Metric::WouldRejectKind(v.kind), 1);
    }

    /// Logs a violation's line and leaves it for the access log.
    fn log_violation(&self, host: &mut dyn Host, verb: &str, v: &Violation) {
        self.log_request_line(host, Level::Info, &self.violation_line(verb, v));
        host.note_violation(v.kind, &self.policy().name);
    }

    /// Logs a line of this request's within the worker's
    /// `max_log_lines_per_second`, first saying how many such lines were
    /// left out before it.
    fn log_request_line(&self, host: &mut dyn Host, level: Level, line: &str) {
        let admission = self
            .plugin
            .log_budget
            .admit(|| host.now_ms(), level == Level::Warn);
        let Admission::Write(left_out) = admission else {
            return;
        };
        // The notice is at the level of the lines it stands for, so that it
        // shows wherever they would.
        if let Some(LeftOut {
            lines,
            warning,
            per_second,
        }) = left_out
        {
            host.log(
                if warning { Level::Warn } else { Level::Info },
                &format!("json-sanitizer: {lines} request lines left out (max_log_lines_per_second={per_second})"),
            );
        }
        host.log(level, line);
    }

    /// The log line of a refusal (`verb` = `rejected`) or of a violation
    /// reported only (`would reject`).
    fn violation_line(&self, verb: &str, v: &Violation) -> String {
        let reason = self
            .reason
            .map(|why| format!(" reason=\"{why}\""))
            .unwrap_or_default();
        format!(
            "json-sanitizer: {verb}{} rule={} violation={} limit={} offset={} status={}{reason}",
            self.id_field(),
            self.policy().name,
            v.kind,
            v.limit.map_or("-".to_string(), |l| l.to_string()),
            v.offset.map_or("-".to_string(), |o| o.to_string()),
            self.plugin.config.reply.status(v.kind),
        )
    }

    /// Whether the response's status matters (a tunnel waits for it):
    /// without one, the response's headers need not be read at all.
    pub fn awaits_response(&self) -> bool {
        self.awaiting.is_some()
    }

    /// The response headers, with the response's `:status`. A WebSocket
    /// handshake answered `101`, or a CONNECT answered `2xx`, opens a
    /// tunnel: Envoy runs the frames or bytes the client sends from then on
    /// through the filter chain as the request's body, and they pass
    /// uninspected (counted as skipped). Conforming clients send nothing
    /// before that answer (RFC 6455 §4.1, RFC 9110 §9.3.6): what came
    /// before it was inspected, so a request smuggled ahead of the answer,
    /// for an upstream that does not take the upgrade, is refused.
    pub fn on_response_headers(&mut self, status: Option<u16>, host: &mut dyn Host) {
        let Some(tunnel) = self.awaiting.take() else {
            return;
        };
        let opened = match (tunnel, status) {
            (Tunnel::Upgrade, Some(101)) => true,
            (Tunnel::Connect, Some(status)) => (200..300).contains(&status),
            _ => false,
        };
        // Still undecided: no byte came before the answer.
        if opened && self.phase == Phase::Body && self.sniffer.is_some() {
            self.not_json(host);
        }
    }

    /// Headers of a WebSocket handshake or a CONNECT: they go upstream (even
    /// with `hold_headers`: the client sends nothing before the answer), the
    /// breaker is not asked (there is no JSON to count), and the body waits
    /// for the response; bytes before it are inspected.
    fn await_response(&mut self, tunnel: Tunnel, host: &mut dyn Host) -> Action {
        self.inspector = Some(self.plugin.inspector(self.policy));
        self.sniffer = Some(Sniffer::tunnel());
        self.awaiting = Some(tunnel);
        self.phase = Phase::Body;
        // Counted while the tunnel waits (for as long as it likes); an
        // opened one lets it go with the rest (see `not_json`).
        if !self.memory_fits() {
            return self.overloaded(host);
        }
        Action::Continue
    }

    /// A body being sniffed does not look like JSON: it goes through
    /// uninspected, like a content type passed.
    fn not_json(&mut self, host: &mut dyn Host) -> Action {
        self.sniffer = None;
        self.record_outcome(host, Outcome::Abandoned);
        self.skip(host)
    }

    /// Lets the request through uninspected. Not logged: it would be a line
    /// per ordinary request; the `requests_skipped` counter tells the story.
    fn skip(&mut self, host: &mut dyn Host) -> Action {
        self.phase = Phase::Done;
        self.tally(host, RuleCounter::Skipped);
        self.let_go();
        Action::Continue
    }

    fn unreadable(&mut self, host: &mut dyn Host, why: &str) -> Action {
        let pass = self.plugin.config.on_unreadable_body == PassOrReject::Pass;
        let line = format!(
            "json-sanitizer: body unreadable{} rule={} inspected={} action={} reason=\"{why}\"",
            self.id_field(),
            self.policy().name,
            self.inspected,
            if pass { "pass" } else { "reject" }
        );
        host.log(Level::Warn, &line);
        if pass {
            self.record_outcome(host, Outcome::Abandoned);
            self.phase = Phase::Done;
            self.tally(host, RuleCounter::Skipped);
            // A `report_only` violation found before the body became
            // unreadable is still logged and left for the access log; it is
            // not counted as would-reject, as the body was not read to its
            // end (the request counts as skipped).
            if let Some(v) = self.inspector.as_ref().and_then(|i| i.noted()) {
                self.log_violation(host, "would reject", &v);
            }
            self.let_go();
            return Action::Continue;
        }
        self.reject(host, header_violation(ViolationKind::BodyUnreadable, None))
    }

    /// Refuses (or, in report mode, reports) the request for `v`.
    fn reject(&mut self, host: &mut dyn Host, v: Violation) -> Action {
        let report = self.policy().mode == Mode::Report;
        self.phase = if report { Phase::Done } else { Phase::Refused };
        let counted = self.policy().breaker.counts_kind(v.kind);
        self.log_violation(host, if report { "would reject" } else { "rejected" }, &v);
        self.record_outcome(
            host,
            if counted {
                Outcome::Failure
            } else {
                Outcome::Abandoned
            },
        );
        self.let_go();
        if report {
            self.tally(host, RuleCounter::WouldReject);
            host.count(Metric::WouldRejectKind(v.kind), 1);
            return Action::Continue;
        }
        self.tally(host, RuleCounter::Rejected);
        host.count(Metric::Rejected(v.kind), 1);
        // The memory an overloaded request could not have is soon free.
        let retry_after = (v.kind == ViolationKind::Overloaded).then_some(1);
        Action::Reply(reply::build(
            &self.plugin.config.reply,
            &v,
            self.request_id.as_deref(),
            retry_after,
        ))
    }

    /// Asks the breaker whether this request may be inspected; `Some` is the
    /// 503 to send when its breaker is open.
    fn admit_breaker(&mut self, head: &RequestHead, host: &mut dyn Host) -> Option<Action> {
        let policy = self.policy();
        let cfg = &policy.breaker;
        if !cfg.enabled || policy.mode == Mode::Report {
            return None;
        }
        let header = match &cfg.scope {
            Scope::Header(name) => head.get_raw(name).map(<[u8]>::to_vec),
            _ => None,
        };
        let source = match cfg.scope {
            Scope::SourceIp => host.source_address(),
            _ => None,
        };
        let scope = cfg.scope_key(&ScopeInput {
            rule: &policy.name,
            policy: self.policy,
            header: header.as_deref(),
            source_address: source.as_deref(),
        });
        let key = breaker::shared_data_key(self.plugin.breaker_namespace(policy), scope.slot);
        let Some(now) = host.now_ms() else {
            // Without a time the breaker can neither judge nor be updated
            // (a time of 0 would corrupt its window for every worker): the
            // request is inspected as usual, outside the breaker.
            self.clock_refused(host, &scope.description);
            return None;
        };
        let admission = admit(cfg, host.store(), &key, now);
        self.apply_report(host, &admission.report, &scope.description);
        match admission.decision {
            Decision::Allow { snapshot, .. } => {
                self.ticket = Some(BreakerTicket {
                    key,
                    scope: scope.description,
                    snapshot,
                });
                None
            }
            Decision::Reject { retry_after_secs } => {
                self.phase = Phase::Refused;
                let v = header_violation(ViolationKind::BreakerOpen, None);
                let line = format!(
                    "json-sanitizer: rejected{} rule={} violation=breaker_open scope={} retry_after={}",
                    self.id_field(),
                    self.policy().name,
                    scope.description,
                    retry_after_secs
                );
                self.log_request_line(host, Level::Info, &line);
                host.note_violation(ViolationKind::BreakerOpen, &self.policy().name);
                self.tally(host, RuleCounter::Rejected);
                host.count(Metric::Rejected(ViolationKind::BreakerOpen), 1);
                Some(Action::Reply(reply::build(
                    &self.plugin.config.reply,
                    &v,
                    self.request_id.as_deref(),
                    Some(retry_after_secs),
                )))
            }
        }
    }

    /// Records this request's outcome in its breaker, once.
    fn record_outcome(&mut self, host: &mut dyn Host, outcome: Outcome) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        // An abandoned non-probe changes nothing: skip the hostcalls.
        if outcome == Outcome::Abandoned && !ticket.snapshot.is_probe() {
            return;
        }
        let Some(now) = host.now_ms() else {
            // Not recorded; a probe slot this request held frees itself when
            // its lease runs out.
            self.clock_refused(host, &ticket.scope);
            return;
        };
        let cfg = &self.plugin.config.policy(self.policy).breaker;
        let report = record(
            cfg,
            host.store(),
            &ticket.key,
            now,
            ticket.snapshot,
            outcome,
        );
        self.apply_report(host, &report, &ticket.scope);
    }

    /// Turns a breaker report into metrics and log lines (each with the
    /// request id, like every other line the filter writes).
    fn apply_report(&self, host: &mut dyn Host, report: &Report, scope: &str) {
        // Made only for a line actually written: most reports have none.
        let id = || self.id_field();
        for event in &report.events {
            let metric = match event {
                Event::Opened { .. } => Some(Metric::BreakerOpened),
                Event::Closed => Some(Metric::BreakerClosed),
                Event::Reopened { .. } => Some(Metric::BreakerReopened),
                Event::Rejected { .. } => Some(Metric::BreakerRejected),
                Event::ProbeStarted => Some(Metric::BreakerProbes),
                Event::HalfOpened => None,
            };
            if let Some(metric) = metric {
                host.count(metric, 1);
            }
            if let Some(line) = event.log_line(scope) {
                host.log(Level::Info, &format!("json-sanitizer: {line}{}", id()));
            }
        }
        if report.cas_retries > 0 {
            host.count(Metric::BreakerCasRetries, u64::from(report.cas_retries));
        }
        if report.cas_exhausted {
            host.count(Metric::BreakerCasExhausted, 1);
        }
        let mut warn = |what: &str| {
            let line = format!("json-sanitizer: breaker {scope}: {what}{}", id());
            self.log_request_line(host, Level::Warn, &line);
        };
        if report.cas_exhausted {
            warn("update skipped after repeated CAS conflicts");
        }
        if let Some(error) = &report.store_error {
            warn(&format!("shared data error: {error}"));
        }
        if report.discarded_invalid_state {
            warn("unreadable state replaced");
        }
    }

    fn clock_refused(&self, host: &mut dyn Host, scope: &str) {
        let line = format!(
            "json-sanitizer: breaker {scope}: the host clock is unavailable, breaker skipped{}",
            self.id_field()
        );
        self.log_request_line(host, Level::Warn, &line);
    }

    fn id_field(&self) -> String {
        self.request_id
            .as_deref()
            .map(|id| format!(" request_id={id}"))
            .unwrap_or_default()
    }
}

/// How many of `len` bytes fit within `max` when `used` already have.
fn room(max: u64, used: u64, len: usize) -> usize {
    usize::try_from(max.saturating_sub(used)).map_or(len, |room| room.min(len))
}

/// Why a body callback stops reading before the end of what it was given.
enum Stop {
    /// A sniffed body was decided (not JSON, or JSON declared too large):
    /// the bytes were not inspected.
    Decided(Action),
    /// The bytes were inspected, and refused (or, in report mode, reported).
    Refused(Action),
}

/// What a request that may open a tunnel waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tunnel {
    /// A WebSocket handshake (`101 Switching Protocols`).
    Upgrade,
    /// A `CONNECT` (any `2xx`).
    Connect,
    /// A CONNECT-UDP (RFC 9298), which Envoy presents as an upgrade to
    /// `connect-udp`: its client may send datagrams before the answer, so it
    /// does not wait for one (it is let through).
    ConnectUdp,
}

/// Whether the request may open a tunnel: a WebSocket handshake (`GET` with
/// `upgrade` and `connection: upgrade`, which is also how Envoy hands on
/// HTTP/2's extended CONNECT) or a `CONNECT`, either declaring no body of
/// its own (a `content-length` other than 0, a `transfer-encoding`: a
/// server that does not take the upgrade reads that as any body).
fn opens_a_tunnel(head: &RequestHead) -> Option<Tunnel> {
    let declares_a_body = head
        .get_raw("content-length")
        .is_some_and(|n| n.trim_ascii() != b"0")
        || head.get_raw("transfer-encoding").is_some();
    if declares_a_body {
        return None;
    }
    // Raw bytes, not text: no conversion for a comparison.
    let method = head.get_raw(":method");
    if method == Some(&b"CONNECT"[..]) {
        return Some(Tunnel::Connect);
    }
    let upgrade = head.get_raw("upgrade")?.trim_ascii();
    let connection_upgrade = head.all("connection").any(|v| {
        v.split(',')
            .any(|token| crate::ascii::eq_ignore_case(token.trim_ascii().as_bytes(), b"upgrade"))
    });
    if upgrade.is_empty() || !connection_upgrade || method != Some(&b"GET"[..]) {
        return None;
    }
    Some(if crate::ascii::eq_ignore_case(upgrade, b"connect-udp") {
        Tunnel::ConnectUdp
    } else {
        Tunnel::Upgrade
    })
}

/// A violation decided without reading the body (no offset).
fn header_violation(kind: ViolationKind, limit: Option<u64>) -> Violation {
    Violation {
        kind,
        limit,
        offset: None,
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
