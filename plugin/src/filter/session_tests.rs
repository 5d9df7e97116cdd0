//! The request life cycle against a fake host that buffers like Envoy:
//! appended while paused, per chunk after a continue.

use super::*;
use crate::ascii::CgiNames;
use crate::filter::plugin::RECYCLE_MAX_BYTES;
use crate::policy::breaker::testing::EnvoyStore;
use crate::policy::config::{Config, DEFAULT_METRICS_PREFIX};
use std::collections::HashMap;

#[path = "session_decode_tests.rs"]
mod decoded;

#[derive(Default)]
struct FakeHost {
    buffer: Vec<u8>,
    reads: usize,
    bytes_read: usize,
    unreadable: bool,
    /// Body reads answer one byte short.
    short_reads: bool,
    now: u64,
    clock_refused: bool,
    refuse_reset: bool,
    resets: usize,
    source: Option<String>,
    store: EnvoyStore,
    logs: Vec<(Level, String)>,
    metrics: HashMap<String, u64>,
    /// Per-policy counts, in order.
    rule_counts: Vec<(usize, RuleCounter)>,
    /// What `note_violation` left for the access log (violation, rule),
    /// in order.
    noted: Vec<(ViolationKind, String)>,
}

impl Host for FakeHost {
    fn body(&mut self, start: usize, len: usize) -> Option<Vec<u8>> {
        self.reads += 1;
        if self.unreadable {
            return None;
        }
        let len = if self.short_reads { len - 1 } else { len };
        let bytes = self.buffer.get(start..start + len)?.to_vec();
        self.bytes_read += bytes.len();
        Some(bytes)
    }
    fn now_ms(&mut self) -> Option<u64> {
        (!self.clock_refused).then_some(self.now)
    }
    fn reset_stream(&mut self) -> bool {
        self.resets += 1;
        !self.refuse_reset
    }
    fn source_address(&mut self) -> Option<String> {
        self.source.clone()
    }
    fn store(&self) -> &dyn Store {
        &self.store
    }
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_string()));
    }
    fn count(&mut self, metric: Metric, delta: u64) {
        assert!(delta > 0, "Envoy refuses increments <= 0");
        *self
            .metrics
            .entry(metric.name(DEFAULT_METRICS_PREFIX))
            .or_default() += delta;
    }
    fn count_rule(&mut self, policy: usize, rule: &str, counter: RuleCounter) {
        self.rule_counts.push((policy, counter));
        *self
            .metrics
            .entry(counter.name(DEFAULT_METRICS_PREFIX, rule))
            .or_default() += 1;
    }
    fn note_violation(&mut self, kind: ViolationKind, rule: &str) {
        self.noted.push((kind, rule.to_string()));
    }
}

impl FakeHost {
    fn metric(&self, tail: &str) -> u64 {
        self.metrics
            .get(&format!("json_sanitizer.{tail}"))
            .copied()
            .unwrap_or(0)
    }
}

fn plugin(json: &str) -> Rc<Plugin> {
    Rc::new(Plugin::new(
        Config::parse(json.as_bytes()).unwrap(),
        "json_sanitizer",
        json.as_bytes(),
        7,
    ))
}

fn head(extra: &[(&str, &str)]) -> RequestHead {
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), "/api/orders".to_string()),
        (":authority".to_string(), "api.example.com".to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    for (k, v) in extra {
        headers.retain(|(name, _)| name != k);
        if !v.is_empty() {
            headers.push((k.to_string(), v.to_string()));
        }
    }
    RequestHead::from_pairs(&headers)
}

/// Result of a simulated request: the action per callback.
#[derive(Debug)]
struct Run {
    headers: Action,
    body: Vec<Action>,
    trailers: Option<Action>,
}

impl Run {
    fn reply(&self) -> Option<&Reply> {
        std::iter::once(&self.headers)
            .chain(&self.body)
            .chain(&self.trailers)
            .find_map(|a| match a {
                Action::Reply(r) => Some(r),
                _ => None,
            })
    }
    fn status(&self) -> Option<u16> {
        self.reply().map(|r| r.status)
    }
    fn violation(&self) -> Option<String> {
        let doc: serde_json::Value = serde_json::from_str(&self.reply()?.body).ok()?;
        doc["violation"].as_str().map(str::to_string)
    }
}

/// Drives one request like Envoy: headers, chunks (buffer appended while the
/// filter pauses), optional trailers, then done. Stops at a local reply.
fn drive(
    plugin: &Rc<Plugin>,
    host: &mut FakeHost,
    head: &RequestHead,
    chunks: &[&[u8]],
    trailers: bool,
) -> Run {
    let mut s = Session::new(plugin.clone());
    host.buffer.clear();
    let no_body = chunks.is_empty() && !trailers;
    let headers = s.on_request_headers(head, no_body, host);
    let mut run = Run {
        headers,
        body: vec![],
        trailers: None,
    };
    let mut paused = false;
    if !matches!(run.headers, Action::Reply(_)) && !no_body {
        for (i, chunk) in chunks.iter().enumerate() {
            if !paused {
                host.buffer.clear();
            }
            host.buffer.extend_from_slice(chunk);
            let eos = i + 1 == chunks.len() && !trailers;
            let action = s.on_request_body(host.buffer.len(), eos, host);
            paused = action == Action::Pause;
            let stop = matches!(action, Action::Reply(_));
            run.body.push(action);
            if stop {
                break;
            }
        }
        if trailers && run.reply().is_none() {
            run.trailers = Some(s.on_request_trailers(host));
        }
    }
    s.on_done(host);
    run
}

#[test]
fn a_good_body_is_held_then_passed() {
    let p = plugin("{}");
    let mut host = FakeHost::default();
    let run = drive(&p, &mut host, &head(&[]), &[b"{\"a\":", b"[1,2]}"], false);
    // The headers go on (Envoy would stop the body callbacks for a pause
    // there); the body is held.
    assert_eq!(run.headers, Action::Continue);
    assert_eq!(run.body, vec![Action::Pause, Action::Continue]);
    assert_eq!(host.metric("requests_inspected"), 1);
    assert_eq!(host.metric("requests_passed"), 1);
    assert_eq!(host.metric("bytes_inspected"), 11);
    assert_eq!(host.bytes_read, 11, "each byte read exactly once");
    assert!(
        host.logs.is_empty(),
        "passes are not logged: {:?}",
        host.logs
    );
}

#[test]
fn paused_reads_only_new_bytes_and_streams_past_the_hold_window() {
    let p = plugin(r#"{"hold_bytes": 8}"#);
    let mut host = FakeHost::default();
    let run = drive(
        &p,
        &mut host,
        &head(&[]),
        &[b"[1,2,", b"3,4,", b"5,6,", b"7]"],
        false,
    );
    // 5 bytes: hold; 9 bytes > 8: stream; later chunks stream.
    assert_eq!(
        run.body,
        vec![
            Action::Pause,
            Action::Continue,
            Action::Continue,
            Action::Continue
        ]
    );
    assert_eq!(host.bytes_read, 15);
    assert_eq!(host.metric("requests_passed"), 1);
}

#[test]
fn hold_window_boundary_at_exactly_hold_bytes() {
    let p = plugin(r#"{"hold_bytes": 4}"#);
    let mut host = FakeHost::default();
    let run = drive(&p, &mut host, &head(&[]), &[b"[1,2", b",3]"], false);
    assert_eq!(
        run.body[0],
        Action::Pause,
        "4 of 4 bytes is within the window"
    );
    let run = drive(&p, &mut host, &head(&[]), &[b"[1,23", b"]"], false);
    assert_eq!(run.body[0], Action::Continue, "5 bytes is past it");
}

#[test]
fn hold_zero_streams_from_the_first_byte() {
    let p = plugin(r#"{"hold_bytes": 0}"#);
    let mut host = FakeHost::default();
    let run = drive(&p, &mut host, &head(&[]), &[b"", b"[1]"], false);
    assert_eq!(run.headers, Action::Continue);
    assert_eq!(run.body, vec![Action::Continue, Action::Continue]);
    let run = drive(&p, &mut host, &head(&[]), &[b"[1,", b"]"], false);
    assert_eq!(run.body[0], Action::Continue);
    assert_eq!(run.status(), Some(400));
}

#[test]
fn violations_get_the_documented_status_and_problem_body() {
    let p = plugin(r#"{"reply":{"statuses":{"too_deep":422}}}"#);
    let mut host = FakeHost::default();
    let deep = crate::samples::nested_arrays(150);
    let run = drive(
        &p,
        &mut host,
        &head(&[("x-request-id", "req-42")]),
        &[&deep],
        false,
    );
    let reply = run.reply().unwrap();
    assert_eq!(reply.status, 422);
    let doc: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(doc["violation"], "too_deep");
    assert_eq!(doc["limit"], 100);
    assert_eq!(doc["offset"], 100);
    assert_eq!(doc["request_id"], "req-42");
    assert_eq!(host.metric("requests_rejected"), 1);
    assert_eq!(host.metric("rejected.too_deep"), 1);
    let (level, line) = &host.logs[0];
    assert_eq!(*level, Level::Info);
    assert_eq!(
        line,
        "json-sanitizer: rejected request_id=req-42 rule=default violation=too_deep limit=100 offset=100 status=422"
    );
    let run = drive(&p, &mut host, &head(&[]), &[b"{\"a\":1,\"a\":2}"], false);
    assert_eq!(
        (run.status(), run.violation().as_deref()),
        (Some(400), Some("duplicate_key"))
    );
}

/// An id that is not safe to echo as it is, is left out of the reply and
/// the log line whole: a trimmed id would name another request.
#[test]
fn a_request_id_that_is_not_printable_ascii_is_left_out_not_altered() {
    let p = plugin("{}");
    for id in ["req 42", "\"req-42\"", "r\u{e9}q", &"x".repeat(129)] {
        let mut host = FakeHost::default();
        let run = drive(
            &p,
            &mut host,
            &head(&[("x-request-id", id)]),
            &[b"[1,]"],
            false,
        );
        let reply = run.reply().unwrap();
        let doc: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(doc["violation"], "syntax_error");
        assert!(doc.get("request_id").is_none(), "{id:?}: {}", reply.body);
        let (_, line) = &host.logs[0];
        assert!(
            line.starts_with("json-sanitizer: rejected rule=default violation=syntax_error"),
            "{id:?}: {line}"
        );
    }
}

#[test]
fn content_length_over_the_limit_is_refused_before_any_body_byte() {
    let p = plugin(r#"{"limits":{"max_body_bytes":10},"hold_bytes":10}"#);
    let mut host = FakeHost::default();
    let run = drive(
        &p,
        &mut host,
        &head(&[("content-length", "11")]),
        &[b"[1,2,3,4,5]"],
        false,
    );
    assert_eq!(run.status(), Some(413));
    assert_eq!(run.violation().as_deref(), Some("body_too_large"));
    assert_eq!(host.reads, 0);
    let run = drive(
        &p,
        &mut host,
        &head(&[("content-length", "10")]),
        &[b"[1,2,3,45]"],
        false,
    );
    assert_eq!(run.status(), None);
    // Optional whitespace (space, tab) around the value is not part of it;
    // other characters make it no length at all, left to the streaming check.
    let reads = host.reads;
    let run = drive(
        &p,
        &mut host,
        &head(&[("content-length", " \t11 ")]),
        &[b"[1,2,3,4,5]"],
        false,
    );
    assert_eq!((run.status(), host.reads - reads), (Some(413), 0));
    let run = drive(
        &p,
        &mut host,
        &head(&[("content-length", "\u{a0}11")]),
        &[b"[1,2,3,45]"],
        false,
    );
    assert_eq!(run.status(), None);
    // Without content-length the limit is enforced while streaming.
    let run = drive(&p, &mut host, &head(&[]), &[b"[1,2,3,", b"4,5]"], false);
    assert_eq!(run.status(), Some(413));
    let doc: serde_json::Value = serde_json::from_str(&run.reply().unwrap().body).unwrap();
    assert_eq!(doc["offset"], 10);
}

#[test]
fn content_type_and_encoding_decisions() {
    let mut host = FakeHost::default();
    let body: &[&[u8]] = &[b"not json"];
    let defaults = plugin("{}");
    // Other types pass uninspected by default; a missing one is inspected.
    let run = drive(
        &defaults,
        &mut host,
        &head(&[("content-type", "text/plain")]),
        body,
        false,
    );
    assert_eq!(
        (run.headers.clone(), run.status()),
        (Action::Continue, None)
    );
    assert_eq!(host.reads, 0);
    assert_eq!(host.metric("requests_skipped"), 1);
    let run = drive(
        &defaults,
        &mut host,
        &head(&[("content-type", "")]),
        body,
        false,
    );
    assert_eq!(run.violation().as_deref(), Some("syntax_error"));
    let run = drive(
        &defaults,
        &mut host,
        &head(&[("content-type", "application/vnd.x+json; v=1")]),
        body,
        false,
    );
    assert_eq!(run.status(), Some(400));
    // Encoded bodies are refused by default.
    let run = drive(
        &defaults,
        &mut host,
        &head(&[("content-encoding", "gzip")]),
        body,
        false,
    );
    assert_eq!(
        (run.status(), run.violation().as_deref()),
        (Some(415), Some("unsupported_encoding"))
    );
    let run = drive(
        &defaults,
        &mut host,
        &head(&[("content-encoding", "Identity")]),
        &[b"1"],
        false,
    );
    assert_eq!(run.status(), None);
    // Codings are comma-separated tokens with optional spaces and tabs.
    for (codings, status) in [
        (" identity ,\tIDENTITY\t", None),
        ("identity, gzip", Some(415)),
    ] {
        let encoded = head(&[("content-encoding", codings)]);
        let run = drive(&defaults, &mut host, &encoded, &[b"1"], false);
        assert_eq!(run.status(), status, "{codings:?}");
    }

    let strict = plugin(
        r#"{"on_other_content_type":"reject","on_missing_content_type":"reject","on_encoded_body":"pass"}"#,
    );
    let run = drive(
        &strict,
        &mut host,
        &head(&[("content-type", "text/plain")]),
        body,
        false,
    );
    assert_eq!(
        (run.status(), run.violation().as_deref()),
        (Some(415), Some("unsupported_media_type"))
    );
    let run = drive(
        &strict,
        &mut host,
        &head(&[("content-type", "")]),
        body,
        false,
    );
    assert_eq!(run.status(), Some(415));
    let reads = host.reads;
    let run = drive(
        &strict,
        &mut host,
        &head(&[("content-encoding", "br")]),
        body,
        false,
    );
    assert_eq!(
        (run.headers.clone(), run.status()),
        (Action::Continue, None)
    );
    assert_eq!(host.reads, reads);
}

#[test]
fn requests_without_body_and_skipped_rules_pass_untouched() {
    let p =
        plugin(r#"{"rules":[{"name":"uploads","match":{"path_prefix":"/upload"},"skip":true}]}"#);
    let mut host = FakeHost::default();
    let run = drive(&p, &mut host, &head(&[]), &[], false);
    assert_eq!(run.headers, Action::Continue);
    let run = drive(
        &p,
        &mut host,
        &head(&[(":path", "/upload/1")]),
        &[b"garbage"],
        false,
    );
    assert_eq!(
        (run.headers.clone(), run.status()),
        (Action::Continue, None)
    );
    assert_eq!(host.reads, 0);
    assert_eq!(host.metric("requests_skipped"), 2);
    assert_eq!(host.metric("requests_inspected"), 0);
}

#[test]
fn trailers_end_the_body_so_they_are_no_bypass() {
    let p = plugin("{}");
    let mut host = FakeHost::default();
    let run = drive(&p, &mut host, &head(&[]), &[b"[1,2"], true);
    assert_eq!(run.body, vec![Action::Pause]);
    assert_eq!(run.violation().as_deref(), Some("truncated"));
    let run = drive(&p, &mut host, &head(&[]), &[b"[1,2]"], true);
    assert_eq!(run.trailers, Some(Action::Continue));
    assert_eq!(host.metric("requests_passed"), 1);
}

/// Envoy's HTTP/1 codec hands the last bytes of a body over as an ordinary
/// chunk and the end of the stream as an empty callback after them. A body
/// with a `content-length` is judged as soon as all of it has arrived: one
/// whose end is what is wrong with it is refused with its last bytes, which
/// then never complete the upstream's request; one that passes goes on and
/// passes at the end, counted once.
#[test]
fn a_body_is_judged_as_soon_as_its_declared_length_has_arrived() {
    for hold in [0, 64] {
        let p = plugin(&format!(r#"{{"hold_bytes": {hold}}}"#));
        let go_on = || {
            if hold == 0 {
                Action::Continue
            } else {
                Action::Pause
            }
        };
        for (body, refused) in [
            ("[1,2", Some("truncated")),
            ("   ", Some("empty_body")),
            ("12", None),
            ("[1,2] ", None),
        ] {
            let (first, last) = body.as_bytes().split_at(1);
            let length = body.len().to_string();
            let mut host = FakeHost::default();
            let run = drive(
                &p,
                &mut host,
                &head(&[("content-length", &length)]),
                &[first, last, b""],
                false,
            );
            assert_eq!(run.body[0], go_on(), "{body:?}");
            match refused {
                Some(kind) => {
                    assert_eq!(run.body.len(), 2, "refused with its last bytes: {body:?}");
                    assert_eq!(run.violation().as_deref(), Some(kind));
                    assert_eq!(host.metric("requests_rejected"), 1);
                }
                None => {
                    assert_eq!(
                        run.body,
                        vec![go_on(), go_on(), Action::Continue],
                        "{body:?}"
                    );
                    assert_eq!(host.metric("requests_passed"), 1);
                    assert_eq!(host.metric("requests_rejected"), 0);
                }
            }
        }
        // Without a declared length (chunked), or short of it, only the end
        // of the stream says the body is over.
        for extra in [vec![], vec![("content-length", "5")]] {
            let mut host = FakeHost::default();
            let run = drive(&p, &mut host, &head(&extra), &[b"[", b"1,2", b""], false);
            assert_eq!(run.body.len(), 3, "{extra:?}");
            assert_eq!(run.violation().as_deref(), Some("truncated"));
        }
    }
    // Report mode reports it once, and lets it through.
    let p = plugin(r#"{"mode": "report", "hold_bytes": 0}"#);
    let mut host = FakeHost::default();
    let run = drive(
        &p,
        &mut host,
        &head(&[("content-length", "4")]),
        &[b"[1", b",2", b""],
        false,
    );
    assert_eq!(run.body, vec![Action::Continue; 3]);
    assert_eq!(host.metric("report_only.would_reject.truncated"), 1);
    assert_eq!(host.metric("requests_rejected"), 0);
    assert_eq!(
        host.noted,
        vec![(ViolationKind::Truncated, "default".to_string())]
    );
}

#[test]
fn an_unreadable_body_is_never_taken_for_an_empty_one() {
    let mut host = FakeHost {
        unreadable: true,
        ..FakeHost::default()
    };
    let run = drive(&plugin("{}"), &mut host, &head(&[]), &[b"[1]"], false);
    assert_eq!(
        (run.status(), run.violation().as_deref()),
        (Some(500), Some("body_unreadable"))
    );
    assert!(host
        .logs
        .iter()
        .any(|(l, m)| *l == Level::Warn && m.contains("body unreadable")));
    let run = drive(
        &plugin(r#"{"on_unreadable_body":"pass"}"#),
        &mut host,
        &head(&[]),
        &[b"[1]"],
        false,
    );
    assert_eq!(
        (run.body.clone(), run.status()),
        (vec![Action::Continue], None)
    );
}

#[test]
fn report_mode_logs_and_counts_but_never_rejects() {
    let p = plugin(r#"{"mode":"report","limits":{"max_body_bytes":5}}"#);
    let mut host = FakeHost::default();
    let run = drive(
        &p,
        &mut host,
        &head(&[("x-request-id", "r1")]),
        &[b"[1,]"],
        false,
    );
    assert_eq!(run.status(), None);
    assert_eq!(run.body, vec![Action::Continue]);
    assert_eq!(host.metric("report_only.would_reject"), 1);
    assert_eq!(host.metric("report_only.would_reject.syntax_error"), 1);
    assert_eq!(host.metric("requests_rejected"), 0);
    assert!(host.logs[0].1.starts_with(
        "json-sanitizer: would reject request_id=r1 rule=default violation=syntax_error"
    ));
    let run = drive(
        &p,
        &mut host,
        &head(&[("content-length", "100")]),
        &[b"[1]"],
        false,
    );
    assert_eq!(run.headers, Action::Continue);
    assert_eq!(host.metric("report_only.would_reject.body_too_large"), 1);
}

/// `report_only` kinds in enforce mode: the body goes on and is logged,
/// counted and noted like report mode's; anything else is still refused,
/// and reported violations never count for the breaker.
#[test]
fn report_only_violations_pass_and_are_reported() {
    let p = plugin(
        r#"{"json":{"numbers":"interoperable","report_only":["duplicate_key","number_out_of_range"]},
            "breaker":{"enabled":true,"consecutive_failures":1}}"#,
    );
    let mut host = FakeHost::default();
    let id = head(&[("x-request-id", "r7")]);
    for (i, body) in [&br#"{"a":1,"a":2}"#[..], b"[9007199254740993]"]
        .into_iter()
        .enumerate()
    {
        let run = drive(&p, &mut host, &id, &[body], false);
        assert_eq!(run.status(), None, "{body:?}");
        assert_eq!(run.body, vec![Action::Continue]);
        assert_eq!(host.logs.len(), i + 1, "{:?}", host.logs);
    }
    assert!(host.logs[0].1.starts_with(
        "json-sanitizer: would reject request_id=r7 rule=default violation=duplicate_key limit=- offset=7 status=400"
    ));
    assert!(host.logs[1]
        .1
        .contains("violation=number_out_of_range limit=9007199254740991 offset=1"));
    assert_eq!(host.metric("report_only.would_reject"), 2);
    assert_eq!(host.metric("report_only.would_reject.duplicate_key"), 1);
    assert_eq!(
        host.metric("report_only.would_reject.number_out_of_range"),
        1
    );
    assert_eq!(host.metric("requests_passed"), 0);
    assert_eq!(host.metric("requests_rejected"), 0);
    assert_eq!(
        host.noted,
        [
            (ViolationKind::DuplicateKey, "default".to_string()),
            (ViolationKind::NumberOutOfRange, "default".to_string())
        ]
    );
    // The breaker (one failure opens it) did not count them.
    assert_eq!(host.metric("breaker.opened"), 0);
    // A body with a reported duplicate and then a syntax error is refused
    // for the error, which is logged (not the duplicate) and opens the
    // breaker.
    let run = drive(&p, &mut host, &id, &[br#"{"a":1,"a":2,]"#], false);
    assert_eq!(run.violation().as_deref(), Some("syntax_error"));
    let lines: Vec<&str> = host.logs[2..].iter().map(|(_, l)| l.as_str()).collect();
    assert!(lines[0].contains("rejected request_id=r7 rule=default violation=syntax_error"));
    assert!(
        !lines.iter().any(|l| l.contains("duplicate_key")),
        "{lines:?}"
    );
    assert_eq!(host.metric("report_only.would_reject"), 2);
    assert_eq!(host.metric("breaker.opened"), 1);
}

/// A body that becomes unreadable after a `report_only` violation, under
/// `on_unreadable_body: pass`, goes on as skipped, and the violation is still
/// logged and left for the access log.
#[test]
fn a_reported_violation_before_an_unreadable_pass_is_not_lost() {
    let p = plugin(r#"{"json":{"report_only":["duplicate_key"]},"on_unreadable_body":"pass"}"#);
    let mut host = FakeHost::default();
    let mut s = Session::new(p);
    assert_eq!(
        s.on_request_headers(&head(&[]), false, &mut host),
        Action::Continue
    );
    host.buffer = br#"{"a":1,"a":2,"#.to_vec();
    assert_eq!(
        s.on_request_body(host.buffer.len(), false, &mut host),
        Action::Pause
    );
    host.unreadable = true;
    host.buffer.extend_from_slice(br#""b":3}"#);
    assert_eq!(
        s.on_request_body(host.buffer.len(), true, &mut host),
        Action::Continue
    );
    s.on_done(&mut host);
    assert_eq!(host.metric("requests_skipped"), 1);
    assert_eq!(host.metric("report_only.would_reject"), 0);
    assert_eq!(
        host.noted,
        [(ViolationKind::DuplicateKey, "default".to_string())]
    );
    assert!(
        host.logs.iter().any(|(_, l)| l
            .starts_with("json-sanitizer: would reject rule=default violation=duplicate_key")),
        "{:?}",
        host.logs
    );
}

/// Every refusal says why where Envoy's access log can print it: the
/// reply's response code details and the noted violation name its kind, at
/// every stage (headers, body, breaker); report mode notes the kind without
/// replying, and a request that passes notes nothing.
#[test]
fn every_refusal_names_its_violation_for_the_access_log() {
    let p = plugin(
        r#"{"limits":{"max_body_bytes":10},"on_other_content_type":"reject",
            "breaker":{"enabled":true,"consecutive_failures":2,"counts":["syntax_error"]}}"#,
    );
    let cases: [(RequestHead, &[u8], ViolationKind); 4] = [
        (
            head(&[("content-length", "11")]),
            b"",
            ViolationKind::BodyTooLarge,
        ),
        (
            head(&[("content-type", "text/plain")]),
            b"[1]",
            ViolationKind::UnsupportedMediaType,
        ),
        (head(&[]), b"[1,]", ViolationKind::SyntaxError),
        // The second syntax error opens the breaker (for the next request).
        (head(&[]), b"[1,]", ViolationKind::SyntaxError),
    ];
    let mut host = FakeHost::default();
    for (head, body, kind) in &cases {
        host.noted.clear();
        let run = drive(&p, &mut host, head, &[body], false);
        let reply = run.reply().expect("refused");
        assert_eq!(reply.details, format!("json_sanitizer_{kind}"));
        assert_eq!(run.violation().as_deref(), Some(kind.as_str()));
        assert_eq!(host.noted, vec![(*kind, "default".to_string())]);
    }
    host.noted.clear();
    let run = drive(&p, &mut host, &head(&[]), &[b"[1]"], false);
    let reply = run.reply().expect("breaker open");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.details, "json_sanitizer_breaker_open");
    assert_eq!(
        host.noted,
        vec![(ViolationKind::BreakerOpen, "default".to_string())]
    );

    let report = plugin(
        r#"{"mode":"report","rules":[{"name":"orders","match":{"path_prefix":"/api/orders"}}]}"#,
    );
    host.noted.clear();
    let run = drive(&report, &mut host, &head(&[]), &[b"[1,]"], false);
    assert_eq!(run.status(), None);
    assert_eq!(
        host.noted,
        vec![(ViolationKind::SyntaxError, "orders".to_string())]
    );
    host.noted.clear();
    let run = drive(&report, &mut host, &head(&[]), &[b"[1]"], false);
    assert_eq!(run.status(), None);
    assert_eq!(host.noted, vec![]);
}

#[test]
fn rules_apply_their_own_limits_and_mode() {
    let p = plugin(
        r#"{"rules":[{"name":"tight","match":{"path_prefix":"/tight"},"limits":{"max_depth":2}},
                     {"name":"loose","match":{"methods":["PUT"]},"mode":"report"}]}"#,
    );
    let mut host = FakeHost::default();
    let run = drive(
        &p,
        &mut host,
        &head(&[(":path", "/tight/x")]),
        &[b"[[[1]]]"],
        false,
    );
    assert_eq!(run.violation().as_deref(), Some("too_deep"));
    assert!(host.logs.last().unwrap().1.contains("rule=tight"));
    let run = drive(&p, &mut host, &head(&[]), &[b"[[[1]]]"], false);
    assert_eq!(run.status(), None);
    let run = drive(
        &p,
        &mut host,
        &head(&[(":method", "PUT")]),
        &[b"[1,]"],
        false,
    );
    assert_eq!(run.status(), None);
    assert_eq!(host.metric("report_only.would_reject"), 1);
}

#[test]
fn with_rules_each_policy_counts_its_own_requests() {
    let p = plugin(
        r#"{"breaker":{"enabled":true,"consecutive_failures":1},
            "rules":[{"name":"search","match":{"path_prefix":"/search"},"limits":{"max_depth":2}},
                     {"name":"uploads","match":{"path_prefix":"/upload"},"skip":true},
                     {"name":"legacy v1","match":{"path_prefix":"/legacy"},"mode":"report"}]}"#,
    );
    let mut host = FakeHost::default();
    let path = |p: &'static str| head(&[(":path", p)]);
    drive(&p, &mut host, &path("/search"), &[b"[1]"], false);
    drive(&p, &mut host, &path("/search"), &[b"[[[1]]]"], false);
    // The breaker (per route) is now open for the search rule.
    let shed = drive(&p, &mut host, &path("/search"), &[b"[1]"], false);
    assert_eq!(shed.status(), Some(503));
    drive(&p, &mut host, &path("/upload/x"), &[b"not json"], false);
    drive(&p, &mut host, &path("/legacy"), &[b"[1,]"], false);
    drive(&p, &mut host, &path("/orders"), &[b"{}"], false);
    for (name, tail, n) in [
        ("search", "requests_inspected", 2),
        ("search", "requests_passed", 1),
        ("search", "requests_rejected", 2),
        ("search", "requests_skipped", 0),
        ("uploads", "requests_skipped", 1),
        ("uploads", "requests_inspected", 0),
        ("legacy_v1", "requests_inspected", 1),
        ("legacy_v1", "report_only.would_reject", 1),
        ("legacy_v1", "requests_passed", 0),
        ("default", "requests_inspected", 1),
        ("default", "requests_passed", 1),
    ] {
        assert_eq!(
            host.metric(&format!("rule.{name}.{tail}")),
            n,
            "{name} {tail}"
        );
    }
    // Each request counts once in its policy's counters, as in the totals.
    for counter in RuleCounter::ALL {
        let per_policy = host
            .rule_counts
            .iter()
            .filter(|(_, c)| *c == counter)
            .count();
        let total = counter.total().name(DEFAULT_METRICS_PREFIX);
        let total = total.strip_prefix("json_sanitizer.").unwrap();
        assert_eq!(per_policy as u64, host.metric(total), "{counter:?}");
    }
    let policies: Vec<usize> = host.rule_counts.iter().map(|(p, _)| *p).collect();
    assert_eq!(policies, [1, 1, 1, 1, 1, 2, 3, 3, 0, 0]);

    // Without rules there are only the totals.
    let p = plugin("{}");
    let mut host = FakeHost::default();
    drive(&p, &mut host, &path("/search"), &[b"[1]"], false);
    assert_eq!(host.metric("requests_passed"), 1);
    assert!(host.rule_counts.is_empty());
}

#[test]
fn the_breaker_trips_sheds_with_retry_after_and_recovers() {
    let p = plugin(r#"{"breaker":{"enabled":true,"consecutive_failures":3,"open_seconds":30}}"#);
    let mut host = FakeHost {
        now: 1_000_000,
        ..FakeHost::default()
    };
    for _ in 0..3 {
        assert_eq!(
            drive(&p, &mut host, &head(&[]), &[b"[1,]"], false).status(),
            Some(400)
        );
    }
    assert_eq!(host.metric("breaker.opened"), 1);
    assert!(host
        .logs
        .iter()
        .any(|(_, m)| m.contains("closed -> open") && m.contains("reason=consecutive")));
    let reads = host.reads;
    host.now += 10_500;
    let run = drive(&p, &mut host, &head(&[]), &[b"[1]"], false);
    let reply = run.reply().unwrap();
    assert_eq!(reply.status, 503);
    assert!(reply
        .headers
        .contains(&("retry-after".to_string(), "20".to_string())));
    assert_eq!(run.violation().as_deref(), Some("breaker_open"));
    assert_eq!(host.reads, reads, "no body byte read while open");
    assert_eq!(host.metric("breaker.rejected"), 1);
    // Half-open after 30 s: a passing probe closes it.
    host.now += 20_000;
    let run = drive(&p, &mut host, &head(&[]), &[b"[1]"], false);
    assert_eq!(run.status(), None);
    assert_eq!(host.metric("breaker.probes"), 1);
    assert_eq!(host.metric("breaker.closed"), 1);
    assert_eq!(
        drive(&p, &mut host, &head(&[]), &[b"[2]"], false).status(),
        None
    );
}

#[test]
fn a_breaker_never_trips_in_report_mode_or_on_uncounted_kinds() {
    let p = plugin(r#"{"mode":"report","breaker":{"enabled":true,"consecutive_failures":1}}"#);
    let mut host = FakeHost::default();
    for _ in 0..3 {
        drive(&p, &mut host, &head(&[]), &[b"[1,]"], false);
    }
    assert_eq!(host.metric("breaker.opened"), 0);
    let p =
        plugin(r#"{"breaker":{"enabled":true,"consecutive_failures":1,"counts":["too_deep"]}}"#);
    drive(&p, &mut host, &head(&[]), &[b"[1,]"], false);
    assert_eq!(host.metric("breaker.opened"), 0);
    drive(
        &p,
        &mut host,
        &head(&[]),
        &[&crate::samples::nested_arrays(101)],
        false,
    );
    assert_eq!(host.metric("breaker.opened"), 1);
}

#[test]
fn breaker_scopes_keep_clients_apart() {
    let p = plugin(
        r#"{"breaker":{"enabled":true,"consecutive_failures":2,"scope":{"header":"x-api-key"}}}"#,
    );
    let mut host = FakeHost::default();
    let bad = head(&[("x-api-key", "client-a-secret")]);
    let good = head(&[("x-api-key", "client-b")]);
    for _ in 0..2 {
        drive(&p, &mut host, &bad, &[b"{"], false);
    }
    assert_eq!(
        drive(&p, &mut host, &bad, &[b"[1]"], false).status(),
        Some(503)
    );
    assert_eq!(drive(&p, &mut host, &good, &[b"[1]"], false).status(), None);
    assert!(
        host.logs
            .iter()
            .all(|(_, m)| !m.contains("client-a-secret")),
        "header values are never logged"
    );
    // Values that are not UTF-8 are told apart by their bytes (as text both
    // would be U+FFFD).
    let raw = |key: &'static [u8]| {
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":path", b"/api/orders"),
            (b"content-type", b"application/json"),
            (b"x-api-key", key),
        ];
        RequestHead::from_pairs(&pairs)
    };
    for _ in 0..2 {
        drive(&p, &mut host, &raw(b"k\xff"), &[b"{"], false);
    }
    let shed = drive(&p, &mut host, &raw(b"k\xff"), &[b"[1]"], false);
    assert_eq!(shed.status(), Some(503));
    let other = drive(&p, &mut host, &raw(b"k\xfe"), &[b"[1]"], false);
    assert_eq!(other.status(), None);

    let p = plugin(r#"{"breaker":{"enabled":true,"consecutive_failures":1,"scope":"source_ip"}}"#);
    host.source = Some("10.0.0.1:5555".into());
    drive(&p, &mut host, &head(&[]), &[b"{"], false);
    host.source = Some("10.0.0.1:6666".into());
    assert_eq!(
        drive(&p, &mut host, &head(&[]), &[b"[1]"], false).status(),
        Some(503)
    );
    host.source = Some("10.0.0.2:5555".into());
    assert_eq!(
        drive(&p, &mut host, &head(&[]), &[b"[1]"], false).status(),
        None
    );
}

#[test]
fn large_chunks_are_read_in_bounded_slices() {
    let p = plugin(r#"{"hold_bytes":0}"#);
    let mut host = FakeHost::default();
    let body = crate::samples::api_body(2 * READ_SLICE + 100);
    let run = drive(&p, &mut host, &head(&[]), &[&body], false);
    assert_eq!(run.status(), None);
    assert_eq!(host.reads, body.len().div_ceil(READ_SLICE));
    assert_eq!(host.bytes_read, body.len());
    assert_eq!(host.metric("bytes_inspected"), body.len() as u64);
}

/// A request whose headers and first body bytes have arrived (held), and
/// that is still open: what a slow client keeps in flight. The answer to
/// its headers if they were refused, else to its body.
fn in_flight(p: &Rc<Plugin>, host: &mut FakeHost, body: &[u8]) -> (Session, Action) {
    let mut s = Session::new(p.clone());
    let headers = s.on_request_headers(&head(&[]), false, host);
    if headers != Action::Continue {
        return (s, headers);
    }
    host.buffer = body.to_vec();
    let action = s.on_request_body(body.len(), false, host);
    (s, action)
}

/// The memory the requests being inspected hold between them is bounded
/// by `max_memory_bytes`: at the bound they are all served, the one that
/// would take them past it gets 503 `overloaded` with `Retry-After` (and
/// lets its memory go at once); once a request ends, its memory is free for
/// the next. In report mode the request over the bound is reported and let
/// through uninspected.
#[test]
fn max_memory_bytes_bounds_what_requests_in_flight_hold_together() {
    let limits = r#""limits": {"max_object_entries": 100000}, "hold_bytes": 1048576"#;
    let body = crate::samples::open_object(20_000);
    let unbounded = plugin(&format!(r#"{{{limits}, "max_memory_bytes": null}}"#));
    let mut host = FakeHost::default();
    let (one, action) = in_flight(&unbounded, &mut host, &body);
    assert_eq!(action, Action::Pause);
    let each = unbounded.memory_in_flight();
    assert!(each > 1 << 20, "{each}");
    drop(one);
    assert_eq!(unbounded.memory_in_flight(), 0);

    for (max, second_served) in [(2 * each, true), (2 * each - 1, false)] {
        let p = plugin(&format!(r#"{{{limits}, "max_memory_bytes": {max}}}"#));
        let mut host = FakeHost::default();
        let (first, action) = in_flight(&p, &mut host, &body);
        assert_eq!(action, Action::Pause);
        let (second, action) = in_flight(&p, &mut host, &body);
        if second_served {
            assert_eq!(action, Action::Pause, "at the bound");
            assert_eq!(p.memory_in_flight(), max);
            let (_third, action) = in_flight(&p, &mut host, &body);
            let Action::Reply(reply) = action else {
                panic!("{action:?}")
            };
            assert_eq!(reply.status, 503);
            assert!(reply
                .headers
                .iter()
                .any(|(k, v)| k == "retry-after" && v == "1"));
            let doc: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
            assert_eq!(doc["violation"], "overloaded");
            assert_eq!(doc["limit"], max);
            assert_eq!(host.metric("rejected.overloaded"), 1);
            drop(second);
        } else {
            assert!(
                matches!(action, Action::Reply(ref r) if r.status == 503),
                "one over"
            );
            drop(second);
        }
        // What the refused request held is free again, and so is the
        // memory of a request once it ends: the next one is served.
        assert_eq!(p.memory_in_flight(), each);
        drop(first);
        assert_eq!(p.memory_in_flight(), 0);
        let (_next, action) = in_flight(&p, &mut host, &body);
        assert_eq!(action, Action::Pause);
    }

    let p = plugin(&format!(
        r#"{{{limits}, "mode": "report", "max_memory_bytes": {}}}"#,
        each - 1
    ));
    let mut host = FakeHost::default();
    let (mut s, action) = in_flight(&p, &mut host, &body);
    assert_eq!(action, Action::Continue, "let through");
    assert_eq!(p.memory_in_flight(), 0, "uninspected from there on");
    assert_eq!(host.metric("report_only.would_reject.overloaded"), 1);
    host.buffer = b"}".to_vec();
    assert_eq!(s.on_request_body(1, true, &mut host), Action::Continue);
}

/// A request holds memory only until its verdict: one that passed, or was
/// refused, and whose stream Envoy has not ended yet (a passed request may
/// wait long for its upstream) counts for nothing. A WebSocket handshake
/// waiting for its answer counts its inspector until the tunnel opens.
#[test]
fn memory_is_held_only_until_the_verdict() {
    let p = plugin(r#"{"hold_bytes": 1048576, "limits": {"max_object_entries": 100000}}"#);
    let mut host = FakeHost::default();
    for (end, passes) in [(&b"\"end\":0}"[..], true), (b"\"k0\":1}", false)] {
        let (mut s, action) = in_flight(&p, &mut host, &crate::samples::open_object(20_000));
        assert_eq!(action, Action::Pause);
        assert!(p.memory_in_flight() > 1 << 20);
        host.buffer.extend_from_slice(end);
        let action = s.on_request_body(host.buffer.len(), true, &mut host);
        assert_eq!(action == Action::Continue, passes, "{action:?}");
        assert_eq!(p.memory_in_flight(), 0, "before the stream ends");
        drop(s);
        assert_eq!(p.memory_in_flight(), 0);
    }

    let websocket = head(&[
        (":method", "GET"),
        ("content-type", ""),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
    ]);
    let mut s = Session::new(p.clone());
    assert_eq!(
        s.on_request_headers(&websocket, false, &mut host),
        Action::Continue
    );
    assert!(p.memory_in_flight() > 0, "waiting for its answer");
    s.on_response_headers(Some(101), &mut host);
    assert_eq!(p.memory_in_flight(), 0, "the tunnel is open");
    // With no room left, the handshake is refused rather than left out.
    let p = plugin(r#"{"max_memory_bytes": 1048576}"#);
    let mut held: Vec<Session> = Vec::new();
    let refused = (0..10_000).find_map(|_| {
        let mut s = Session::new(p.clone());
        let action = s.on_request_headers(&websocket, false, &mut host);
        held.push(s);
        match action {
            Action::Reply(r) => Some(r),
            _ => None,
        }
    });
    let reply = refused.expect("refused once the bound is reached");
    assert_eq!(reply.status, 503);
    assert!(p.memory_in_flight() <= 1 << 20);
    drop(held);
    assert_eq!(p.memory_in_flight(), 0);
}

#[test]
fn a_recycled_inspector_starts_clean_whatever_the_last_request_left() {
    let p = plugin(r#"{"limits":{"max_object_entries":2}}"#);
    let mut host = FakeHost::default();
    let json = head(&[]);
    // Requests that stop mid-string, mid-escape, deep inside objects, or
    // at a violation; each is followed by bodies that must pass exactly as
    // they would on a fresh inspector.
    // Some stop while an object follows a recorded shape and another is
    // being recorded (see `inspector/shapes.rs`).
    let leftovers: [&[u8]; 7] = [
        br#"{"a":{"b":["x"#,
        br#"{"a":"\u00"#,
        br#"{"a":1,"a":2}"#,
        br#"{"a":1,"b":2,"c":3}"#,
        br#"[[[[{"k":"#,
        br#"[{"a":1,"b":2},{"a":1,"b":{"c":"#,
        br#"[{"a":1,"b":2},{"a":1,"a":2}]"#,
    ];
    for leftover in leftovers {
        let first = drive(&p, &mut host, &json, &[leftover], false);
        assert!(first.status().is_some(), "{first:?}");
        let good: [&[u8]; 4] = [
            br#"{"a":1,"b":2}"#,
            br#"{"k":"v"}"#,
            b"[1]",
            br#"[{"a":1,"b":2},{"a":1,"b":2}]"#,
        ];
        for good in good {
            let run = drive(&p, &mut host, &json, &[good], false);
            assert_eq!(run.status(), None, "after {leftover:?}: {run:?}");
        }
        let repeated = drive(
            &p,
            &mut host,
            &json,
            &[br#"[{"a":1,"b":2},{"a":1,"a":2}]"#],
            false,
        );
        assert_eq!(
            repeated.status(),
            Some(400),
            "after {leftover:?}: {repeated:?}"
        );
    }
}

#[test]
fn only_a_modest_inspector_is_kept_for_reuse() {
    let p = plugin(r#"{"limits":{"max_object_entries":null,"max_body_bytes":null}}"#);
    let mut big = p.inspector(0);
    // An object with 100,000 distinct keys grows the key table far beyond
    // what a spare may keep.
    let mut body = b"{".to_vec();
    for i in 0..100_000 {
        body.extend_from_slice(format!("\"k{i}\":0,").as_bytes());
    }
    body.extend_from_slice(b"\"end\":0}");
    big.feed(&body).unwrap();
    big.finish().unwrap();
    // The README's number.
    assert_eq!(RECYCLE_MAX_BYTES, 64 * 1024);
    assert!(big.footprint() > RECYCLE_MAX_BYTES);
    p.recycle(0, big);
    assert!(p.inspector(0).footprint() <= RECYCLE_MAX_BYTES);

    // The largest object the default limits allow still fits, after objects
    // of a repeated shape have filled the shape cache.
    let defaults = plugin("{}");
    let mut full = defaults.inspector(0);
    let mut body = b"[".to_vec();
    for i in 0..100 {
        body.extend_from_slice(
            format!("{{\"s{i}\":0,\"t\":1}},{{\"s{i}\":0,\"t\":1}},").as_bytes(),
        );
    }
    body.push(b'{');
    for i in 0..999 {
        body.extend_from_slice(format!("\"k{i}\":0,").as_bytes());
    }
    body.extend_from_slice(b"\"end\":0}]");
    let before = full.footprint();
    full.feed(&body).unwrap();
    full.finish().unwrap();
    assert!(
        full.footprint() > before + 20_000 && full.footprint() <= RECYCLE_MAX_BYTES,
        "{before} -> {}",
        full.footprint()
    );

    let mut small = p.inspector(0);
    small.feed(br#"{"a":[1,2,3]}"#).unwrap();
    let kept = small.footprint();
    p.recycle(0, small);
    let reused = p.inspector(0);
    assert_eq!(reused.footprint(), kept, "the small one is the one reused");
    assert_eq!(reused.bytes_inspected(), 0, "and it starts over");
}

#[test]
fn the_header_view_keeps_order_repeats_and_garbled_values() {
    let raw: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"POST"),
        (b"content-type", b"text/plain"),
        (b"x-garbled", b"\xff\xfe"),
        (b"Content-Type", b"application/json"),
    ];
    let h = RequestHead::from_pairs(&raw);
    assert_eq!(
        h.all("content-type").collect::<Vec<_>>(),
        ["text/plain", "application/json"]
    );
    assert_eq!(h.get(":method").as_deref(), Some("POST"));
    assert_eq!(h.get("x-garbled").as_deref(), Some("\u{fffd}\u{fffd}"));
    assert_eq!(h.get("missing"), None);
    assert_eq!(h.iter().count(), 4);
}

#[test]
fn a_header_map_the_host_garbled_is_refused_not_read() {
    let good = crate::filter::pairs::encode_pairs(&[(":method", "POST")]);
    let head = RequestHead::from_encoded(good.clone()).expect("a consistent map");
    assert_eq!(head.get(":method").as_deref(), Some("POST"));
    for cut in 1..good.len() - 1 {
        assert!(
            RequestHead::from_encoded(good[..cut].to_vec()).is_none(),
            "map cut to {cut} bytes"
        );
    }
    assert!(RequestHead::from_encoded(u32::MAX.to_le_bytes().to_vec()).is_none());
    assert_eq!(
        RequestHead::from_encoded(Vec::new()).map(|h| h.iter().count()),
        Some(0)
    );
}

/// DESIGN: every reply and log line carries the request id when the request
/// has one: refusals from the headers and from the body, the unreadable-body
/// warning, breaker transitions, and the breaker's shared-data warnings.
#[test]
fn every_reply_and_log_line_carries_the_request_id() {
    let id = ("x-request-id", "req-7");
    let breaker = r#"{"breaker":{"enabled":true,"consecutive_failures":2,"open_seconds":10},
        "limits":{"max_body_bytes":64},"on_other_content_type":"reject"}"#;
    let p = plugin(breaker);
    let mut host = FakeHost {
        now: 1_000_000,
        ..FakeHost::default()
    };
    let mut replies = Vec::new();
    let mut run = |host: &mut FakeHost, extra: &[(&str, &str)], chunks: &[&[u8]]| {
        let mut headers = vec![id];
        headers.extend_from_slice(extra);
        let run = drive(&p, host, &head(&headers), chunks, false);
        replies.extend(run.reply().cloned());
    };
    // Header-stage refusals (413 by content-length, counted by the breaker,
    // and 415, not counted), a body-stage failure that trips the breaker, a
    // 503, and a probe that closes it.
    run(&mut host, &[("content-length", "65")], &[&[b' '; 65]]);
    run(&mut host, &[("content-type", "text/plain")], &[b"{}"]);
    run(&mut host, &[], &[b"[1,]"]);
    run(&mut host, &[], &[b"[1]"]);
    host.now += 10_000;
    run(&mut host, &[], &[b"[1]"]);
    // An unreadable body, and each breaker warning.
    host.unreadable = true;
    run(&mut host, &[], &[b"[1]"]);
    host.unreadable = false;
    host.store.always_mismatch.set(true);
    run(&mut host, &[], &[b"[1,]"]);
    host.store.always_mismatch.set(false);
    host.store.fail_sets.set(true);
    run(&mut host, &[], &[b"[1,]"]);
    host.store.fail_sets.set(false);
    host.store.garbage_gets.set(true);
    run(&mut host, &[], &[b"[1,]"]);

    let kinds: Vec<&str> = [
        "violation=body_too_large",
        "violation=unsupported_media_type",
        "closed -> open",
        "violation=breaker_open",
        "half_open -> closed",
        "body unreadable",
        "CAS conflicts",
        "shared data error",
        "unreadable state replaced",
    ]
    .into_iter()
    .filter(|k| !host.logs.iter().any(|(_, m)| m.contains(k)))
    .collect();
    assert!(kinds.is_empty(), "no line for {kinds:?}: {:?}", host.logs);
    for (_, line) in &host.logs {
        assert!(line.contains("request_id=req-7"), "{line}");
    }
    assert!(replies.len() >= 6, "{replies:?}");
    for reply in &replies {
        let doc: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(doc["request_id"], "req-7", "{}", reply.body);
    }
}

/// `on_other_content_type: inspect` inspects what is not declared JSON, and
/// `on_missing_content_type: pass` lets a typeless body through unread.
#[test]
fn content_type_policies_inspect_and_pass_as_configured() {
    let p = plugin(r#"{"on_other_content_type":"inspect"}"#);
    let mut host = FakeHost::default();
    let plain = head(&[("content-type", "text/plain")]);
    let run = drive(&p, &mut host, &plain, &[b"[1,]"], false);
    assert_eq!(run.violation().as_deref(), Some("syntax_error"));
    assert_eq!(host.metric("requests_inspected"), 1);

    let p = plugin(r#"{"on_missing_content_type":"pass"}"#);
    let mut host = FakeHost::default();
    let typeless = head(&[("content-type", "")]);
    let run = drive(&p, &mut host, &typeless, &[b"garbage"], false);
    assert!(run.reply().is_none());
    assert_eq!(host.reads, 0, "not read");
    assert_eq!(host.metric("requests_skipped"), 1);
    assert_eq!(host.metric("requests_inspected"), 0);
    // The defaults are the other way round.
    let p = plugin("{}");
    let mut host = FakeHost::default();
    assert!(drive(&p, &mut host, &plain, &[b"[1,]"], false)
        .reply()
        .is_none());
    let run = drive(&p, &mut host, &typeless, &[b"garbage"], false);
    assert_eq!(run.violation().as_deref(), Some("syntax_error"));
}

/// Content types an upstream may still read as JSON are inspected under the
/// defaults: two values joined by Envoy with a comma, an empty value (JSON
/// to FastAPI), and anything that is no media type (a no-break space that
/// Python strips arrives as invalid UTF-8). Plain other types still pass.
#[test]
fn joined_empty_and_unreadable_content_types_are_not_passed_uninspected() {
    let p = plugin("{}");
    let send = |ct: &str| {
        let mut host = FakeHost::default();
        let run = drive(
            &p,
            &mut host,
            &head(&[("content-type", ct)]),
            &[b"[1,]"],
            false,
        );
        (run.violation(), host.metric("requests_skipped"))
    };
    for ct in [
        "text/plain,application/json",
        "application/json, text/plain",
        "",
        " ",
        "application/json something",
        "application/json\u{FFFD}",
        "text/plain, ",
        "*/*",
        "application/*",
    ] {
        assert_eq!(send(ct), (Some("syntax_error".into()), 0), "{ct:?}");
    }
    for ct in [
        "text/plain",
        "text/plain, text/csv",
        "multipart/form-data; boundary=\"a,b\"",
    ] {
        assert_eq!(send(ct), (None, 1), "{ct:?}");
    }
}

/// A body to be inspected whose content type names another charset than
/// UTF-8 (body-parser would decode this UTF-7 into `{"a":"","role":"admin"}`)
/// is refused with 415 and the reason logged, before any byte is read;
/// `on_other_charset` can pass it or inspect its bytes instead, and bodies
/// that pass uninspected anyway are not affected.
#[test]
fn charsets_other_than_utf8_are_refused_as_configured() {
    let utf7: &[&[u8]] = &[br#"{"a":"+ACIALAAiAHIAbwBsAGUAIgA6ACIAYQBkAG0AaQBu-"}"#];
    let send = |config: &str, ct: &str| {
        let p = plugin(config);
        let mut host = FakeHost::default();
        let run = drive(&p, &mut host, &head(&[("content-type", ct)]), utf7, false);
        (run.status(), run.violation(), host)
    };
    let (status, violation, host) = send("{}", "application/json; charset=utf-7");
    assert_eq!(
        (status, violation.as_deref()),
        (Some(415), Some("unsupported_media_type"))
    );
    assert_eq!(host.reads, 0, "not read");
    assert!(
        host.logs
            .iter()
            .any(|(_, l)| l
                .contains(r#"reason="the content-type names a charset other than UTF-8""#)),
        "{:?}",
        host.logs
    );
    // Sniffed and missing-type bodies too: a sniffing upstream decodes alike.
    let sniff = r#"{"on_other_content_type":"sniff"}"#;
    assert_eq!(send(sniff, "text/plain; charset=utf-7").0, Some(415));
    assert_eq!(send("{}", "; charset=utf-7").0, Some(415));
    // UTF-8 named, or nothing named: inspected (and this body passes).
    for ct in ["application/json; charset=UTF-8", "application/json"] {
        let (status, _, host) = send("{}", ct);
        assert_eq!(
            (status, host.metric("requests_inspected")),
            (None, 1),
            "{ct}"
        );
    }
    // Pass: uninspected. Inspect: read as UTF-8.
    let (status, _, host) = send(
        r#"{"on_other_charset":"pass"}"#,
        "application/json; charset=utf-7",
    );
    assert_eq!(
        (status, host.metric("requests_skipped"), host.reads),
        (None, 1, 0)
    );
    let (status, _, host) = send(
        r#"{"on_other_charset":"inspect"}"#,
        "application/json; charset=utf-7",
    );
    assert_eq!((status, host.metric("requests_inspected")), (None, 1));
    // Not inspected anyway: passes as before.
    let (status, _, host) = send("{}", "text/plain; charset=utf-7");
    assert_eq!((status, host.metric("requests_skipped")), (None, 1));
    // A type the configuration refuses stays refused when its charset's
    // policy is pass.
    let refuse_all = r#"{"on_other_content_type":"reject","on_missing_content_type":"reject","on_other_charset":"pass"}"#;
    for ct in ["text/plain; charset=latin1", "x; charset=latin1"] {
        assert_eq!(send(refuse_all, ct).0, Some(415), "{ct}");
    }
    assert_eq!(send(refuse_all, "application/json; charset=latin1").0, None);
    // So does one whose coding's policy is pass.
    let p = plugin(r#"{"on_other_content_type":"reject","on_encoded_body":"pass"}"#);
    for (ct, status) in [("text/plain", Some(415)), ("application/json", None)] {
        let mut host = FakeHost::default();
        let encoded = head(&[("content-type", ct), ("content-encoding", "gzip")]);
        let run = drive(&p, &mut host, &encoded, &[b"\x1f\x8b"], false);
        assert_eq!(run.status(), status, "{ct}");
    }
}

/// Drives a request whose upstream answers with `status` after the chunks
/// `before` and before the chunks `after` (the last ends the stream): the
/// headers' action, the violation and the skipped count.
fn drive_answered(
    p: &Rc<Plugin>,
    head: &RequestHead,
    before: &[&[u8]],
    status: Option<u16>,
    after: &[&[u8]],
) -> (Action, Option<String>, u64) {
    let mut host = FakeHost::default();
    let mut s = Session::new(p.clone());
    let headers = s.on_request_headers(head, false, &mut host);
    let mut violation = None;
    let mut feed = |s: &mut Session, chunk: &[u8], eos: bool, host: &mut FakeHost| {
        host.buffer.clear();
        host.buffer.extend_from_slice(chunk);
        if let Action::Reply(r) = s.on_request_body(host.buffer.len(), eos, host) {
            let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            violation = doc["violation"].as_str().map(str::to_owned);
        }
    };
    if !matches!(headers, Action::Reply(_)) {
        for chunk in before {
            feed(&mut s, chunk, false, &mut host);
        }
        s.on_response_headers(status, &mut host);
        for (i, chunk) in after.iter().enumerate() {
            feed(&mut s, chunk, i + 1 == after.len(), &mut host);
        }
    }
    s.on_done(&mut host);
    (headers, violation, host.metric("requests_skipped"))
}

/// A WebSocket handshake answered 101, or a CONNECT answered 2xx: what the
/// client sends from then on is frames or TLS records, not a JSON body, and
/// passes uninspected (skipped); the headers go on at once, even with
/// `hold_headers`. Bytes before the answer are inspected, whatever the
/// handshake's content type says: a request smuggled ahead of it, for an
/// upstream that does not take the upgrade, is refused. A refused content
/// type stays refused. Only a real upgrade that declares no body of its own
/// waits so.
#[test]
fn tunnels_open_on_their_answer_and_what_comes_before_is_inspected() {
    let p = plugin(r#"{"hold_headers":true}"#);
    let frames: &[&[u8]] = &[b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", b"\x88\x00"];
    let tls: &[&[u8]] = &[b"\x16\x03\x01\x00\xa5\x01"];
    let smuggled: &[&[u8]] = &[
        b"POST /api/orders HTTP/1.1\r\n",
        b"content-length: 13\r\n\r\n",
    ];
    let websocket = head(&[
        (":method", "GET"),
        ("content-type", ""),
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
    ]);
    let connect = head(&[(":method", "CONNECT"), ("content-type", "")]);
    let passed = (Action::Continue, None, 1);
    assert_eq!(
        drive_answered(&p, &websocket, &[], Some(101), frames),
        passed
    );
    assert_eq!(drive_answered(&p, &connect, &[], Some(200), tls), passed);
    // CONNECT-UDP, whose client may send datagrams before the answer (RFC
    // 9298), is let through, answered or not; a CONNECT with an `upgrade`
    // header is still a CONNECT.
    let connect_udp = head(&[
        (":method", "GET"),
        ("content-type", ""),
        ("upgrade", "connect-udp"),
        ("connection", "Upgrade"),
    ]);
    let capsule: &[&[u8]] = &[b"\x00\x05\x00abcd"];
    for status in [Some(200), Some(101), None] {
        assert_eq!(
            drive_answered(&p, &connect_udp, capsule, status, capsule),
            passed
        );
    }
    let connect_upgrade = head(&[
        (":method", "CONNECT"),
        ("content-type", ""),
        ("upgrade", "foo"),
    ]);
    assert_eq!(
        drive_answered(&p, &connect_upgrade, &[], Some(200), tls),
        passed
    );
    // A WebSocket is opened by 101 only.
    let (_, violation, _) = drive_answered(&p, &websocket, &[], Some(200), frames);
    assert_eq!(violation.as_deref(), Some("syntax_error"));
    // No answer yet, or another one: inspected.
    let refused = |violation: &str| (Action::Continue, Some(violation.to_string()), 0);
    for (head, status) in [(&websocket, Some(101)), (&connect, Some(200))] {
        assert_eq!(
            drive_answered(&p, head, smuggled, status, frames),
            refused("syntax_error")
        );
    }
    for status in [Some(200), Some(404), None] {
        assert_eq!(
            drive_answered(&p, &websocket, &[], status, smuggled),
            refused("syntax_error"),
            "{status:?}"
        );
    }
    assert_eq!(
        drive_answered(&p, &connect, &[], Some(101), smuggled),
        refused("syntax_error")
    );
    // A handshake's content type says nothing about what follows it.
    let typed = head(&[
        (":method", "GET"),
        ("content-type", "text/plain"),
        ("upgrade", "websocket"),
        ("connection", "upgrade"),
    ]);
    assert_eq!(
        drive_answered(&p, &typed, smuggled, Some(101), &[]),
        refused("syntax_error")
    );
    assert_eq!(drive_answered(&p, &typed, &[], Some(101), frames), passed);
    // A stream that ends with nothing in it: passes.
    assert_eq!(drive_answered(&p, &websocket, &[], None, &[b""]), passed);
    // A refused content type stays refused.
    let strict = plugin(r#"{"on_missing_content_type":"reject"}"#);
    let (headers, _, _) = drive_answered(&strict, &websocket, &[], Some(101), frames);
    assert!(matches!(headers, Action::Reply(r) if r.status == 415));
    // Not tunnels: inspected as any request.
    let dup: &[&[u8]] = &[br#"{"a":1,"a":2}"#];
    let not_tunnels = [
        &[
            ("content-type", ""),
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
        ][..],
        &[
            (":method", "GET"),
            ("content-type", ""),
            ("upgrade", "websocket"),
        ],
        &[
            (":method", "GET"),
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
        ],
        &[
            (":method", "GET"),
            ("content-type", ""),
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("content-length", "13"),
        ],
        &[
            (":method", "CONNECT"),
            ("content-type", ""),
            ("transfer-encoding", "chunked"),
        ],
    ];
    let p = plugin("{}");
    for extra in not_tunnels {
        let (_, violation, _) = drive_answered(&p, &head(extra), &[], Some(101), dup);
        assert_eq!(violation.as_deref(), Some("duplicate_key"), "{extra:?}");
    }
}

/// `sniff`: a body whose first byte other than whitespace opens an object
/// or an array is inspected as JSON (wherever the chunks cut it), anything
/// else goes through uninspected and is counted as skipped; a length over
/// the limit refuses only JSON, while streaming.
#[test]
fn sniffed_content_types_inspect_only_what_looks_like_json() {
    let p = plugin(r#"{"on_other_content_type":"sniff","limits":{"max_body_bytes":32}}"#);
    let plain = head(&[("content-type", "text/plain")]);
    let cases: [(&[&[u8]], Option<&str>); 12] = [
        (&[br#"{"a":1,"a":2}"#], Some("duplicate_key")),
        (&[b"  \n", b"\t [1,]"], Some("syntax_error")),
        (&[b"", b"  ", b"[[1]]"], None),
        (&[b"\xEF", b"\xBB\xBF{}"], Some("bom")),
        (&[b"\x00{\x00}"], Some("syntax_error")),
        (&[b"a=1&b=%7B"], None),
        (&[b"  ", b"\"just a string\""], None),
        (&[b"  ", b"  "], None),
        (&[b"--boundary\r\n{\"a\":1,\"a\":2}"], None),
        (&[b"\xEF\xBB\xBFname,age\r\n"], None),
        (&[b"\xEF\xBC\x88"], None),
        (
            &[b"[", b"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]"],
            Some("body_too_large"),
        ),
    ];
    let (mut inspected, mut skipped) = (0, 0);
    for (chunks, violation) in cases {
        let mut host = FakeHost::default();
        let run = drive(&p, &mut host, &plain, chunks, false);
        assert_eq!(run.violation().as_deref(), violation, "{chunks:?}");
        if violation.is_some() || chunks.concat().contains(&b'[') {
            inspected += 1;
            assert_eq!(host.metric("requests_inspected"), 1, "{chunks:?}");
        } else {
            skipped += 1;
            assert_eq!(host.metric("requests_skipped"), 1, "{chunks:?}");
            assert_eq!(host.metric("requests_inspected"), 0, "{chunks:?}");
            assert_eq!(run.body.last(), Some(&Action::Continue), "{chunks:?}");
        }
    }
    assert_eq!((inspected, skipped), (6, 6));
    // A declared length over the limit refuses nothing before the body
    // shows whether it is JSON, and JSON as soon as it does, before any
    // byte of it is inspected (no offset).
    let mut host = FakeHost::default();
    let long = head(&[("content-type", "text/plain"), ("content-length", "100")]);
    let upload = [b'x'; 100];
    let run = drive(&p, &mut host, &long, &[&upload], false);
    assert_eq!(run.status(), None);
    let json = [&b"  "[..], &[b'['; 98]];
    let run = drive(&p, &mut host, &long, &json, false);
    assert_eq!(run.status(), Some(413));
    assert_eq!(run.body.len(), 2, "refused at the chunk that shows JSON");
    let problem: serde_json::Value = serde_json::from_str(&run.reply().unwrap().body).unwrap();
    assert_eq!(
        (&problem["offset"], &problem["limit"]),
        (&serde_json::Value::Null, &serde_json::json!(32))
    );
    // What the inspector refuses before the body shows whether it is JSON
    // waits for that: the same answer however the body is cut.
    let p = plugin(r#"{"on_other_content_type":"sniff","limits":{"max_body_bytes":8}}"#);
    let cases: [(&[&[u8]], Option<&str>); 5] = [
        (&[b"\x00", b"\x00\x00\x18ftypmp42"], None),
        (&[b"\x00\x00\x00\x18ftypmp42"], None),
        (&[b"\x00", b"{}"], Some("syntax_error")),
        (&[b"         ", b"  x"], None),
        (&[b"         ", b"  {}"], Some("body_too_large")),
    ];
    for (chunks, violation) in cases {
        let mut host = FakeHost::default();
        let run = drive(&p, &mut host, &plain, chunks, false);
        assert_eq!(run.violation().as_deref(), violation, "{chunks:?}");
    }
    // Trailers end a body that was only whitespace: passed.
    let run = drive(&p, &mut host, &plain, &[b"   "], true);
    assert_eq!(run.trailers, Some(Action::Continue));
}

/// Breaker updates retry CAS conflicts and count them; after
/// `MAX_CAS_RETRIES` the update is skipped, counted and the request served.
#[test]
fn breaker_cas_conflicts_are_retried_then_given_up_and_counted() {
    use crate::policy::breaker::MAX_CAS_RETRIES;
    let p = plugin(r#"{"breaker":{"enabled":true}}"#);
    let mut host = FakeHost::default();
    host.store.inject_mismatches.set(2);
    let run = drive(&p, &mut host, &head(&[]), &[b"[1,]"], false);
    assert_eq!(run.status(), Some(400));
    assert_eq!(host.metric("breaker.cas_retries"), 2);
    assert_eq!(host.metric("breaker.cas_exhausted"), 0);

    host.store.always_mismatch.set(true);
    let run = drive(&p, &mut host, &head(&[]), &[b"[1]"], false);
    assert!(run.reply().is_none(), "served normally");
    assert_eq!(
        host.metric("breaker.cas_retries"),
        2 + u64::from(MAX_CAS_RETRIES)
    );
    assert_eq!(host.metric("breaker.cas_exhausted"), 1);
}

/// Skipped requests (a skip rule, a content type passed through, no body)
/// are not breaker outcomes: they touch no shared data and do not break a
/// run of failures.
#[test]
fn skipped_requests_are_not_breaker_outcomes() {
    let p = plugin(
        r#"{"breaker":{"enabled":true,"consecutive_failures":2,"scope":"global"},
            "rules":[{"name":"uploads","match":{"path_prefix":"/upload"},"skip":true}]}"#,
    );
    let mut host = FakeHost::default();
    assert_eq!(
        drive(&p, &mut host, &head(&[]), &[b"[1,]"], false).status(),
        Some(400)
    );
    host.store.reset_calls();
    let skipped = [
        head(&[(":path", "/upload/1")]),
        head(&[("content-type", "text/plain")]),
    ];
    for h in &skipped {
        assert!(drive(&p, &mut host, h, &[b"[1]"], false).reply().is_none());
    }
    assert!(drive(&p, &mut host, &head(&[]), &[], false)
        .reply()
        .is_none());
    assert_eq!(
        host.store.calls(),
        (0, 0),
        "no shared data for skipped requests"
    );
    assert_eq!(host.metric("requests_skipped"), 3);
    // The run of failures goes on: the next failure is the second in a row.
    drive(&p, &mut host, &head(&[]), &[b"[1,]"], false);
    assert_eq!(host.metric("breaker.opened"), 1);
}

/// `max_keys` bounds the shared data: scope keys are hashed into that many
/// slots, so with one slot every client shares one breaker (the documented
/// price of bounded memory).
#[test]
fn scope_keys_in_one_slot_share_a_breaker() {
    let config = |max_keys: u32| {
        plugin(&format!(
            r#"{{"breaker":{{"enabled":true,"consecutive_failures":1,
                "scope":{{"header":"x-api-key"}},"max_keys":{max_keys}}}}}"#
        ))
    };
    let a = head(&[("x-api-key", "client-a")]);
    let b = head(&[("x-api-key", "client-b")]);
    // One slot: client-a's failure opens the breaker client-b is under too.
    let p = config(1);
    let mut host = FakeHost::default();
    drive(&p, &mut host, &a, &[b"{"], false);
    assert_eq!(
        drive(&p, &mut host, &b, &[b"[1]"], false).status(),
        Some(503)
    );
    assert_eq!(host.store.len(), 1);
    // Enough slots (these two keys land apart): each has its own.
    let p = config(1024);
    let mut host = FakeHost::default();
    drive(&p, &mut host, &a, &[b"{"], false);
    assert_eq!(drive(&p, &mut host, &b, &[b"[1]"], false).status(), None);
    assert_eq!(
        drive(&p, &mut host, &a, &[b"[1]"], false).status(),
        Some(503)
    );
}

/// One log line per refusal: not zero, not one per callback.
#[test]
fn each_refusal_is_logged_exactly_once() {
    let p = plugin(r#"{"hold_bytes":0,"mode":"enforce"}"#);
    let mut host = FakeHost::default();
    for chunks in [
        &[&b"[1,"[..], b"2,", b"]"][..],
        &[b"[1]", b"x"],
        &[b"{\"a\":1,\"a\":2}"],
    ] {
        host.logs.clear();
        let run = drive(&p, &mut host, &head(&[]), chunks, false);
        assert!(run.reply().is_some());
        let lines = host
            .logs
            .iter()
            .filter(|(_, m)| m.contains("rejected"))
            .count();
        assert_eq!(lines, 1, "{:?}", host.logs);
    }
}

/// A local reply the host refuses (Envoy answers a second one with an
/// error; a hostile host may refuse any) must not turn into a pass: the
/// stream is reset, and whatever the host still delivers is held, so the
/// refused body never reaches the upstream.
#[test]
fn a_reply_the_host_refuses_fails_closed() {
    let id = ("x-request-id", "req-9");
    for refuse_reset in [false, true] {
        // Streaming (hold 0): the violating chunk must not be continued.
        let p = plugin(r#"{"hold_bytes":0}"#);
        let mut host = FakeHost {
            refuse_reset,
            ..FakeHost::default()
        };
        let mut s = Session::new(p.clone());
        assert_eq!(
            s.on_request_headers(&head(&[id]), false, &mut host),
            Action::Continue
        );
        host.buffer = b"[1,".to_vec();
        assert_eq!(s.on_request_body(3, false, &mut host), Action::Continue);
        host.buffer = b"]".to_vec();
        assert!(matches!(
            s.on_request_body(1, false, &mut host),
            Action::Reply(_)
        ));
        s.reply_refused(&mut host);
        assert_eq!(host.resets, 1);
        let action = if refuse_reset { "hold" } else { "reset" };
        let warned = host.logs.iter().any(|(level, line)| {
            *level == Level::Warn
                && line.contains("refused the local reply")
                && line.contains("request_id=req-9")
                && line.ends_with(&format!("action={action}"))
        });
        assert!(warned, "{:?}", host.logs);
        // The host goes on delivering: nothing more is let through.
        host.buffer = b"[2]".to_vec();
        assert_eq!(s.on_request_body(3, false, &mut host), Action::Pause);
        assert_eq!(s.on_request_body(3, true, &mut host), Action::Pause);
        assert_eq!(s.on_request_trailers(&mut host), Action::Pause);
        assert_eq!(host.metric("requests_rejected"), 1);
        assert_eq!(host.metric("requests_passed"), 0);
        s.on_done(&mut host);
    }
    // A 503 from an open breaker and a 415 from the headers likewise hold
    // the body that follows a refused reply.
    let breaker = plugin(r#"{"breaker":{"enabled":true,"consecutive_failures":1}}"#);
    let mut host = FakeHost::default();
    drive(&breaker, &mut host, &head(&[]), &[b"[1,]"], false);
    let typed = plugin(r#"{"on_other_content_type":"reject"}"#);
    let plain = [("content-type", "text/plain")];
    for (p, head, status) in [(breaker, head(&[]), 503), (typed, head(&plain), 415)] {
        let mut s = Session::new(p);
        let shed = s.on_request_headers(&head, false, &mut host);
        assert!(
            matches!(&shed, Action::Reply(r) if r.status == status),
            "{shed:?}"
        );
        s.reply_refused(&mut host);
        host.buffer = b"[1]".to_vec();
        assert_eq!(s.on_request_body(3, true, &mut host), Action::Pause);
        // Even a second headers callback is held.
        assert_eq!(s.on_request_headers(&head, false, &mut host), Action::Pause);
    }
    // In report mode nothing was refused, so nothing is held.
    let p = plugin(r#"{"mode":"report","hold_bytes":0}"#);
    let mut host = FakeHost::default();
    let mut s = Session::new(p);
    s.on_request_headers(&head(&[]), false, &mut host);
    host.buffer = b"[1,]".to_vec();
    assert_eq!(s.on_request_body(4, false, &mut host), Action::Continue);
    host.buffer = b"[2]".to_vec();
    assert_eq!(s.on_request_body(3, true, &mut host), Action::Continue);
}

/// Answers Envoy never gives, each refused rather than trusted: body bytes
/// before the headers, a read that returns fewer bytes than asked, and a
/// paused buffer that shrinks.
#[test]
fn impossible_body_callbacks_are_refused_not_passed() {
    let p = plugin("{}");
    let unreadable = |run: Action, host: &FakeHost, why: &str| {
        let Action::Reply(reply) = run else {
            panic!("{why}: {run:?}");
        };
        assert_eq!(reply.status, 500, "{why}");
        assert!(reply.body.contains("body_unreadable"), "{why}");
        assert!(
            host.logs.iter().any(|(_, line)| line.contains(why)),
            "{why}: {:?}",
            host.logs
        );
    };

    let mut host = FakeHost::default();
    let mut s = Session::new(p.clone());
    host.buffer = b"[1]".to_vec();
    let run = s.on_request_body(3, true, &mut host);
    unreadable(run, &host, "body bytes before the headers");
    assert_eq!(host.bytes_read, 0);

    let mut host = FakeHost {
        short_reads: true,
        ..FakeHost::default()
    };
    let mut s = Session::new(p.clone());
    s.on_request_headers(&head(&[]), false, &mut host);
    host.buffer = b"[1,2]".to_vec();
    let run = s.on_request_body(5, true, &mut host);
    unreadable(run, &host, "a different number of body bytes");

    let mut host = FakeHost::default();
    let mut s = Session::new(p);
    s.on_request_headers(&head(&[]), false, &mut host);
    host.buffer = b"[1,2".to_vec();
    assert_eq!(s.on_request_body(4, false, &mut host), Action::Pause);
    host.buffer.truncate(3);
    let run = s.on_request_body(3, false, &mut host);
    unreadable(run, &host, "shrank while paused");
}

/// A host clock that will not answer must not be read as time 0: that would
/// put every worker's breaker window, open period and probe leases at the
/// epoch. The breaker is left alone and the request inspected as usual.
#[test]
fn a_refused_clock_skips_the_breaker_and_leaves_its_state_alone() {
    let p = plugin(r#"{"breaker":{"enabled":true,"consecutive_failures":2}}"#);
    let mut host = FakeHost {
        now: 5_000_000,
        ..FakeHost::default()
    };
    // One failure recorded with a working clock.
    drive(&p, &mut host, &head(&[]), &[b"[1,]"], false);
    let before = host.store.calls();
    host.clock_refused = true;
    let id = [("x-request-id", "req-3")];
    for _ in 0..3 {
        let run = drive(&p, &mut host, &head(&id), &[b"[1,]"], false);
        assert_eq!(run.status(), Some(400), "still inspected");
    }
    assert_eq!(host.store.calls(), before, "no shared-data call");
    assert_eq!(host.metric("breaker.opened"), 0);
    let lines: Vec<_> = host
        .logs
        .iter()
        .filter(|(level, line)| *level == Level::Warn && line.contains("clock is unavailable"))
        .collect();
    assert_eq!(lines.len(), 3, "{:?}", host.logs);
    assert!(lines
        .iter()
        .all(|(_, line)| line.contains("request_id=req-3")));

    // Admitted with a clock, finished without one: not recorded either.
    host.clock_refused = false;
    let mut s = Session::new(p.clone());
    s.on_request_headers(&head(&[]), false, &mut host);
    let admitted = host.store.calls();
    assert!(admitted.0 > before.0, "admission read the breaker");
    host.clock_refused = true;
    host.buffer = b"[1,]".to_vec();
    assert!(matches!(
        s.on_request_body(4, true, &mut host),
        Action::Reply(_)
    ));
    assert_eq!(host.store.calls(), admitted, "the failure is not recorded");
    host.clock_refused = false;
    // The clock back: the second failure in a row trips it.
    drive(&p, &mut host, &head(&[]), &[b"[1,]"], false);
    assert_eq!(host.metric("breaker.opened"), 1);
}

/// `hold_headers` pauses the headers too, for an Envoy that lets a filter do
/// that (`allow_on_headers_stop_iteration`); with nothing to hold
/// (`hold_bytes: 0`) it has nothing to pause for.
#[test]
fn hold_headers_pauses_the_headers_only_while_a_body_is_held() {
    let mut host = FakeHost::default();
    for (config, headers) in [
        (r#"{"hold_headers":true}"#, Action::Pause),
        (r#"{"hold_headers":true,"hold_bytes":0}"#, Action::Continue),
        (r#"{"hold_headers":false}"#, Action::Continue),
    ] {
        let p = plugin(config);
        let run = drive(&p, &mut host, &head(&[]), &[b"[1,", b"2]"], false);
        assert_eq!(run.headers, headers, "{config}");
        assert_eq!(run.status(), None, "{config}");
        let run = drive(&p, &mut host, &head(&[]), &[b"[1,", b"]"], false);
        assert_eq!(run.status(), Some(400), "{config}");
    }
}

/// A header map the host refuses is an unreadable request: it gets
/// `on_unreadable_body`'s answer (500, or passed uninspected and counted as
/// skipped), with a warning that names the cause.
#[test]
fn unreadable_headers_get_the_unreadable_body_answer() {
    let mut host = FakeHost::default();
    let mut s = Session::new(plugin("{}"));
    let Action::Reply(reply) = s.on_request_headers_unreadable(false, &mut host) else {
        panic!("not refused");
    };
    assert_eq!(reply.status, 500);
    assert!(reply.body.contains("body_unreadable"));
    assert!(
        host.logs
            .iter()
            .any(|(level, line)| *level == Level::Warn
                && line.contains("refused the request headers"))
    );
    host.buffer = b"[1]".to_vec();
    assert_eq!(s.on_request_body(3, true, &mut host), Action::Pause);

    let mut s = Session::new(plugin(r#"{"on_unreadable_body":"pass"}"#));
    assert_eq!(
        s.on_request_headers_unreadable(false, &mut host),
        Action::Continue
    );
    host.buffer = b"[1,]".to_vec();
    assert_eq!(s.on_request_body(4, true, &mut host), Action::Continue);
    assert_eq!(host.metric("requests_skipped"), 1);

    // Without a body there is nothing to judge: passed, with the warning.
    let mut s = Session::new(plugin("{}"));
    assert_eq!(
        s.on_request_headers_unreadable(true, &mut host),
        Action::Continue
    );
    assert_eq!(host.metric("requests_skipped"), 2);
    assert!(host.logs.last().is_some_and(|(level, line)| {
        *level == Level::Warn && line.contains("no body: passed")
    }));
}

proptest::proptest! {
    /// A sniffed body gets the same answer however the host cuts it, with
    /// the bytes that decide sniffing (whitespace, NUL, both byte order
    /// marks) and a size limit the whitespace can pass.
    #[test]
    fn sniffed_verdicts_do_not_depend_on_the_cuts(
        body in proptest::collection::vec(
            proptest::sample::select(&b" \n\x00\xEF\xBB\xBF\xFE\xFF{}[]x\"1,:"[..]),
            0..24,
        ),
        cuts in proptest::collection::vec(0usize..24, 0..4),
    ) {
        let p = plugin(r#"{"on_other_content_type":"sniff","limits":{"max_body_bytes":12},"hold_bytes":4}"#);
        let plain = head(&[("content-type", "text/plain")]);
        let answer = |chunks: &[&[u8]]| {
            let mut host = FakeHost::default();
            let run = drive(&p, &mut host, &plain, chunks, false);
            (run.status(), run.violation(), host.metric("requests_inspected"))
        };
        let whole = answer(&[&body]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        cuts.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain(std::iter::once(body.len())) {
            chunks.push(&body[prev..c]);
            prev = c;
        }
        proptest::prop_assert_eq!(answer(&chunks), whole, "{:?} cut {:?}", body, chunks);
    }
}

#[test]
fn underscored_twins_are_found_only_for_the_names_asked_about() {
    let names = CgiNames::new(["content-type", "x-http-method"].map(String::from));
    for (pairs, want) in [
        (vec![("content-type", "a/b")], false),
        (vec![("Content-Type", "a/b")], false),
        (vec![("content_type", "a/b")], true),
        (vec![("CONTENT_TYPE", "a/b")], true),
        (vec![("Content.Type", "a/b")], true),
        (vec![("x.http_method", "PUT")], true),
        (vec![("x-a", "1"), ("x_http_method", "PUT")], true),
        (vec![("x_http_method_override", "PUT")], false),
        (vec![("content_length", "1"), ("x_request_id", "a")], false),
        (
            vec![("content_typ_", "a/b"), ("content-typ_", "a/b")],
            false,
        ),
    ] {
        let head = RequestHead::from_pairs(&pairs);
        assert_eq!(head.has_cgi_twin(&names), want, "{pairs:?}");
    }
}

/// The header a breaker is scoped by is read by its name too: its `_` and
/// `.` spellings, which PHP reads as it, are `ambiguous_header` while that
/// breaker is on, so a client cannot be shed by one key and served by another.
#[test]
fn a_breaker_scope_header_has_no_twin() {
    let on = plugin(r#"{"breaker":{"enabled":true,"scope":{"header":"x-api-key"}}}"#);
    let off = plugin(r#"{"breaker":{"enabled":false,"scope":{"header":"x-api-key"}}}"#);
    for (name, refused) in [
        ("x.api.key", true),
        ("X_Api_Key", true),
        ("x-api-key", false),
    ] {
        let headers = [("x-api-key", "fresh"), (name, "real")];
        let mut host = FakeHost::default();
        let run = drive(&on, &mut host, &head(&headers), &[b"[1]"], false);
        let want = refused.then_some(400);
        assert_eq!(run.status(), want, "{name}");
        let mut host = FakeHost::default();
        let run = drive(&off, &mut host, &head(&headers), &[b"[1]"], false);
        assert_eq!(run.status(), None, "{name} with the breaker off");
    }
}

/// `max_log_lines_per_second`: a second's refusals log up to the bound,
/// one over is left out (but counted and noted for the access log); the
/// next second's first line comes after a notice of how many were left
/// out. Breaker sheds count against it too; report-only lines as well.
#[test]
fn refusal_lines_are_bounded_per_second_and_the_rest_counted() {
    let p = plugin(
        r#"{"max_log_lines_per_second":2,"breaker":{"enabled":true,"consecutive_failures":3}}"#,
    );
    let mut host = FakeHost {
        now: 10_000,
        ..FakeHost::default()
    };
    let lines = |host: &FakeHost, needle: &str| {
        host.logs.iter().filter(|(_, l)| l.contains(needle)).count()
    };
    let statuses: Vec<Option<u16>> = (0..5)
        .map(|_| drive(&p, &mut host, &head(&[]), &[b"[1,]"], false).status())
        .collect();
    assert_eq!(
        statuses,
        [Some(400), Some(400), Some(400), Some(503), Some(503)]
    );
    // Three failures opened the breaker; two more were shed.
    assert_eq!(host.metric("requests_rejected"), 5);
    assert_eq!(host.metric("breaker.rejected"), 2);
    assert_eq!(lines(&host, "rejected"), 2, "{:?}", host.logs);
    assert_eq!(host.noted.len(), 5, "every one noted for the access log");
    assert!(
        lines(&host, "closed -> open") == 1,
        "transitions are never left out: {:?}",
        host.logs
    );
    host.now = 10_999;
    drive(&p, &mut host, &head(&[]), &[b"[1,]"], false);
    assert_eq!(lines(&host, "rejected"), 2);
    host.now = 11_000;
    drive(&p, &mut host, &head(&[]), &[b"[1,]"], false);
    assert_eq!(lines(&host, "rejected"), 3);
    let notices: Vec<&(Level, String)> = host
        .logs
        .iter()
        .filter(|(_, l)| l.contains("left out"))
        .collect();
    let notice = "json-sanitizer: 4 request lines left out (max_log_lines_per_second=2)";
    assert_eq!(notices, [&(Level::Info, notice.to_string())]);
    // The notice comes right before the line it precedes.
    let at = host
        .logs
        .iter()
        .position(|(_, l)| l.contains("left out"))
        .unwrap();
    assert!(host.logs[at + 1].1.contains("violation=breaker_open"));

    // Without a bound, every line.
    let unbounded = plugin(r#"{"max_log_lines_per_second":null}"#);
    let mut host = FakeHost::default();
    for _ in 0..150 {
        drive(&unbounded, &mut host, &head(&[]), &[b"[1,]"], false);
    }
    assert_eq!(lines(&host, "rejected"), 150);
}

/// The breaker's per-request warnings count against the same bound: under
/// CAS contention that never ends, a second writes at most the bound, and
/// the next second's notice is a warning, as the lines it stands for were.
#[test]
fn breaker_warnings_of_a_request_are_bounded_too() {
    let p = plugin(r#"{"max_log_lines_per_second":2,"breaker":{"enabled":true}}"#);
    let mut host = FakeHost {
        now: 50_000,
        ..FakeHost::default()
    };
    host.store.always_mismatch.set(true);
    for _ in 0..10 {
        drive(&p, &mut host, &head(&[]), &[b"[1]"], false);
    }
    assert_eq!(host.metric("breaker.cas_exhausted"), 10);
    let conflicts = |host: &FakeHost| {
        host.logs
            .iter()
            .filter(|(_, l)| l.contains("CAS conflicts"))
            .count()
    };
    assert_eq!(conflicts(&host), 2, "{:?}", host.logs);
    host.now = 51_000;
    drive(&p, &mut host, &head(&[]), &[b"[1]"], false);
    assert_eq!(conflicts(&host), 3);
    assert!(
        host.logs.contains(&(
            Level::Warn,
            "json-sanitizer: 8 request lines left out (max_log_lines_per_second=2)".to_string()
        )),
        "{:?}",
        host.logs
    );
}
