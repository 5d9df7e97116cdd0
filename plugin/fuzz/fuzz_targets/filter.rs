//! Coverage-guided fuzzing of the filter's request life cycle (the session
//! behind the `Host` trait, natively), with a host that buffers like Envoy
//! but whose answers are partly the fuzzer's: header maps in any encoding,
//! bodies reported larger or smaller than what it returns, shared data
//! holding anything.
//!
//! Each input drives up to eight requests through one plugin instance (so
//! the breaker's shared state and the recycled inspectors carry over) under
//! one of the example configurations. It checks that:
//!
//! - nothing panics, and no metric is ever moved by a delta of zero (Envoy
//!   refuses those); per-policy counters move only when the configuration
//!   has rules, and only for one of its policies;
//! - every local reply has a status within 400–599 and a problem+json body
//!   whose `status` and `violation` agree with the reply;
//! - when a hostile host refuses that reply (and maybe the stream reset
//!   too) and goes on delivering the body, nothing more is let through;
//! - under the default configuration, with an honest host and inspectable
//!   headers, the session refuses exactly the bodies the inspector refuses,
//!   with the same violation and offset, however Envoy's buffering cut them;
//!   and so it does under the defaults with `on_encoded_body: inspect` for
//!   the same bodies sent compressed (gzip or deflate, cut anywhere),
//!   through the recycled decoder;
//! - every request, however it ended, leaves no memory counted against
//!   `max_memory_bytes`.
//!
//! Run with `cargo +nightly fuzz run --fuzz-dir plugin/fuzz filter`.

#![no_main]

use json_sanitizer::filter::decode::testing::{member, zlib};
use json_sanitizer::filter::metrics::{Metric, RuleCounter};
use json_sanitizer::filter::pairs::encode_pairs;
use json_sanitizer::filter::plugin::Plugin;
use json_sanitizer::filter::session::{Action, Host, Level, RequestHead, Session};
use json_sanitizer::inspector::{defaults, Inspector, JsonOptions, Limits};
use json_sanitizer::policy::breaker::testing::EnvoyStore;
use json_sanitizer::policy::breaker::Store;
use json_sanitizer::policy::config::Config;
use json_sanitizer::policy::reply::Reply;
use json_sanitizer::violation::ViolationKind;
use libfuzzer_sys::fuzz_target;
use std::rc::Rc;

const CONFIGS: [&str; 5] = [
    include_str!("../../../examples/default.json"),
    include_str!("../../../examples/per-route.json"),
    include_str!("../../../examples/report-only.json"),
    include_str!("../../../examples/strict-api.json"),
    // The defaults, decoding compressed bodies.
    r#"{"on_encoded_body":"inspect"}"#,
];

/// The index in [`CONFIGS`] of the defaults that decode.
const DECODING: usize = 4;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let choice = usize::from(input.byte()) % CONFIGS.len();
    let raw = CONFIGS[choice].as_bytes();
    let config = Config::parse(raw).expect("the example configurations parse");
    let policies = config.rules.len();
    let counts_rules = policies > 0;
    let plugin = Rc::new(Plugin::new(config, "json_sanitizer", raw, 7));
    let mut host = FuzzHost {
        policies,
        counts_rules,
        ..FuzzHost::default()
    };
    for _ in 0..8 {
        if input.0.is_empty() {
            break;
        }
        request(&plugin, &mut host, &mut input, choice);
        // Whatever way it ended, the request let go of the memory it held
        // for inspection: a leak would make every later request overloaded.
        assert_eq!(
            plugin.memory_in_flight(),
            0,
            "memory held after the request"
        );
    }
});

/// The fuzzer's bytes, taken from the front; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    /// A length-prefixed string.
    fn text(&mut self) -> String {
        let n = usize::from(self.byte() % 24);
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.byte()) % from.len()]
    }
}

/// One request: headers, body chunks as Envoy delivers them, maybe
/// trailers, then the end of the stream.
fn request(plugin: &Rc<Plugin>, host: &mut FuzzHost, input: &mut Input, config: usize) {
    host.now += u64::from(input.byte()) * 250;
    let mode = input.byte();
    host.hostile = mode & 0b1110_0000 == 0b1110_0000;
    // A hostile host may also have no clock, and refuse the local reply
    // (then maybe the stream reset as well).
    host.clock_refused = host.hostile && mode & 0b10 != 0;
    let refuse_reply = host.hostile && mode & 0b100 != 0;
    host.refuse_reset = mode & 0b1000 != 0;
    host.store
        .garbage_gets
        .set(mode & 0b1111_0000 == 0b1011_0000);
    let chunks: Vec<&[u8]> = (0..input.byte() % 6)
        .map(|_| {
            let n = usize::from(input.byte()) * 4 + usize::from(input.byte() % 4);
            input.bytes(n)
        })
        .collect();
    let body: Vec<u8> = chunks.concat();
    // Under the decoding defaults, the body may be sent compressed, cut
    // where the plain chunks were cut (within the compressed length).
    let coding = match config {
        DECODING => input.pick(&[None, Some("gzip"), Some("deflate")]),
        _ => None,
    };
    let sent = match coding {
        Some("gzip") => member(&body, input.byte() % 11, None, None, false),
        Some(_) => zlib(&body, input.byte() % 11),
        None => body.clone(),
    };
    let mut cut = 0;
    let chunks: Vec<&[u8]> = chunks
        .iter()
        .enumerate()
        .map(|(k, chunk)| {
            let from = cut.min(sent.len());
            cut += chunk.len();
            let to = if k + 1 == chunks.len() {
                sent.len()
            } else {
                cut.min(sent.len())
            };
            &sent[from..to]
        })
        .collect();
    let (head, inspectable) = headers(input, sent.len(), coding);
    let trailers = mode & 1 != 0;
    let headers_end = chunks.is_empty() && !trailers;

    host.noted.clear();
    let mut session = Session::new(Rc::clone(plugin));
    let mut reply = None;
    let mut action = session.on_request_headers(&head, headers_end, host);
    host.buffer.clear();
    let mut refused = false;
    // The upstream may answer before some chunk (a 101 opens a WebSocket's
    // tunnel), after the last one (before trailers), or twice (Envoy
    // re-enters for the plugin's own reply); any answer, at any point, must
    // leave the session sound.
    let answer_before = usize::from(input.byte() % 8);
    let answer = input.pick(&[Some(101), Some(200), Some(404), None]);
    let answer_again = input.byte() & 1 != 0;
    for (k, chunk) in chunks.iter().enumerate() {
        if k == answer_before {
            session.on_response_headers(answer, host);
        }
        match &action {
            _ if refused => assert_eq!(action, Action::Pause, "let through after a refusal"),
            Action::Reply(r) => {
                reply = Some(r.clone());
                if !refuse_reply {
                    break;
                }
                session.reply_refused(host);
                refused = true;
            }
            // After a pause Envoy hands over the whole buffer again.
            Action::Continue => host.buffer.clear(),
            Action::Pause => {}
        }
        host.buffer.extend_from_slice(chunk);
        let mut size = host.buffer.len();
        if host.hostile {
            size = size
                .wrapping_add(usize::from(input.byte() % 5))
                .wrapping_sub(2);
        }
        let end = k + 1 == chunks.len() && !trailers;
        action = session.on_request_body(size, end, host);
    }
    if refused {
        assert_eq!(action, Action::Pause, "let through after a refusal");
        if trailers {
            assert_eq!(session.on_request_trailers(host), Action::Pause);
        }
    } else if reply.is_none() {
        if answer_before >= chunks.len() {
            session.on_response_headers(answer, host);
        }
        if let Action::Reply(r) = action {
            reply = Some(r);
        } else if trailers {
            if let Action::Reply(r) = session.on_request_trailers(host) {
                reply = Some(r);
            }
        }
    }
    if answer_again {
        session.on_response_headers(answer, host);
    }
    session.on_done(host);
    // Hands its inspector back to the plugin for the next request, as the
    // deletion of the stream's context does.
    drop(session);

    // At most one violation per request reaches the access log, and a
    // reply's is the one it names.
    assert!(host.noted.len() <= 1, "{:?}", host.noted);
    if let Some(r) = &reply {
        let kind = well_formed(r);
        assert_eq!(host.noted, [kind], "{r:?}");
    }
    if (config == 0 || config == DECODING) && inspectable && !host.hostile && !headers_end {
        let expected = Inspector::check(&Limits::default(), &JsonOptions::default(), &body).err();
        let got = reply.as_ref().map(|r| {
            let doc: serde_json::Value = serde_json::from_str(&r.body).expect("problem+json");
            (
                doc["violation"].as_str().map(str::to_owned),
                doc["offset"].as_u64(),
            )
        });
        let expected = expected.map(|v| (Some(v.kind.as_str().to_owned()), v.offset));
        assert_eq!(got, expected, "body {:?}", String::from_utf8_lossy(&body));
    }
}

/// The request headers, and whether the default configuration inspects
/// their body (a JSON content type, no content coding but `coding`, which
/// the body is sent in, no early 413).
fn headers(input: &mut Input, body_len: usize, coding: Option<&str>) -> (RequestHead, bool) {
    if input.byte() & 0b1111_1000 == 0 {
        // Whatever the host hands over; an inconsistent map is no headers,
        // as in the proxy-wasm glue.
        let n = usize::from(input.byte());
        let raw = input.bytes(n).to_vec();
        return (RequestHead::from_encoded(raw).unwrap_or_default(), false);
    }
    let mut pairs: Vec<(String, String)> = vec![
        (
            ":method".into(),
            input
                .pick(&["POST", "PUT", "GET", "post", "CONNECT"])
                .into(),
        ),
        (
            ":path".into(),
            input
                .pick(&[
                    "/api/orders",
                    "/api/search",
                    "/upload/x",
                    "/api/bulk/1",
                    "/v1/old",
                    "/",
                ])
                .into(),
        ),
        (
            ":authority".into(),
            input
                .pick(&["api.example.com", "internal.example.com"])
                .into(),
        ),
    ];
    // Whether the default configuration inspects the body: a JSON type
    // (`application/json`, `application/json*` or `*/*+json`, any case, any
    // parameters) or none at all.
    let (content_type, mut inspectable) = input.pick(&[
        (Some("application/json"), true),
        (Some("Application/JSON; charset=utf-8"), true),
        (Some("application/problem+json"), true),
        (Some("text/plain"), false),
        (Some("multipart/form-data; boundary=x"), false),
        (None, true),
    ]);
    if let Some(ct) = content_type {
        pairs.push(("content-type".into(), ct.into()));
    }
    // The default configuration's body limit, which a declared length over
    // it meets before any body byte (an early 413).
    let limit = defaults::max_body_bytes().unwrap_or(u64::MAX);
    match input.byte() % 8 {
        0 => pairs.push(("content-length".into(), body_len.to_string())),
        1 => pairs.push((
            "content-length".into(),
            limit.saturating_add(1 + body_len as u64).to_string(),
        )),
        2 => pairs.push(("content-length".into(), input.text())),
        _ => {}
    }
    if pairs.last().is_some_and(|(name, value)| {
        name == "content-length" && value.trim_ascii().parse::<u64>().is_ok_and(|n| n > limit)
    }) {
        inspectable = false;
    }
    match input.byte() % 8 {
        _ if coding.is_some() => {
            pairs.push(("content-encoding".into(), coding.unwrap_or_default().into()));
        }
        0 => {
            pairs.push(("content-encoding".into(), "gzip".into()));
            inspectable = false;
        }
        1 => pairs.push(("content-encoding".into(), " identity ,\tIDENTITY".into())),
        2 => {
            pairs.push(("content-encoding".into(), input.text()));
            inspectable = false;
        }
        _ => {}
    }
    for _ in 0..input.byte() % 4 {
        let name = input.pick(&[
            "x-request-id",
            "x-api-key",
            "content-type",
            "x-other",
            "upgrade",
            "connection",
            "x-http-method-override",
        ]);
        // A type, or a WebSocket handshake (whose body an answer may let
        // through), is no longer the defaults' plain case.
        if !matches!(name, "x-request-id" | "x-api-key" | "x-other") {
            inspectable = false;
        }
        let value = match name {
            "upgrade" => "websocket".to_string(),
            "connection" => input.pick(&["Upgrade", "keep-alive, upgrade"]).to_string(),
            _ => input.text(),
        };
        pairs.push((name.into(), value));
    }
    if pairs.iter().any(|(n, v)| n == ":method" && v == "CONNECT") {
        inspectable = false;
    }
    let head = RequestHead::from_encoded(encode_pairs(&pairs)).expect("encode_pairs is consistent");
    (head, inspectable)
}

/// A local reply as the README documents it; its violation.
fn well_formed(reply: &Reply) -> ViolationKind {
    assert!((400..=599).contains(&reply.status), "{reply:?}");
    let doc: serde_json::Value = serde_json::from_str(&reply.body).expect("problem+json body");
    assert_eq!(
        doc["status"].as_u64(),
        Some(u64::from(reply.status)),
        "{reply:?}"
    );
    let kind = doc["violation"].as_str().expect("a violation name");
    assert_eq!(
        doc["type"].as_str(),
        Some(format!("urn:json-sanitizer:problem:{kind}").as_str()),
        "{reply:?}"
    );
    assert!(
        reply
            .headers
            .iter()
            .any(|(name, value)| name == "content-type" && value == "application/problem+json"),
        "{reply:?}"
    );
    assert_eq!(reply.details, format!("json_sanitizer_{kind}"), "{reply:?}");
    *ViolationKind::ALL
        .iter()
        .find(|k| k.as_str() == kind)
        .expect("a documented violation")
}

#[derive(Default)]
struct FuzzHost {
    buffer: Vec<u8>,
    now: u64,
    hostile: bool,
    clock_refused: bool,
    refuse_reset: bool,
    store: EnvoyStore,
    /// What the session left for the access log during this request.
    noted: Vec<ViolationKind>,
    /// The highest policy index of the configuration, and whether it has
    /// rules (per-policy counters are kept only then).
    policies: usize,
    counts_rules: bool,
}

impl Host for FuzzHost {
    fn body(&mut self, start: usize, len: usize) -> Option<Vec<u8>> {
        let end = start.checked_add(len)?.min(self.buffer.len());
        Some(self.buffer.get(start..end)?.to_vec())
    }
    fn now_ms(&mut self) -> Option<u64> {
        (!self.clock_refused).then_some(self.now)
    }
    fn reset_stream(&mut self) -> bool {
        !self.refuse_reset
    }
    fn source_address(&mut self) -> Option<String> {
        Some("10.0.0.7:40000".into())
    }
    fn store(&self) -> &dyn Store {
        &self.store
    }
    fn log(&mut self, _: Level, message: &str) {
        assert!(!message.is_empty());
    }
    fn count(&mut self, metric: Metric, delta: u64) {
        assert!(delta > 0, "{metric:?} moved by 0: Envoy refuses it");
    }
    fn count_rule(&mut self, policy: usize, rule: &str, _counter: RuleCounter) {
        assert!(self.counts_rules, "per-policy counters without rules");
        assert!(!rule.is_empty(), "a rule has a name");
        assert!(
            policy <= self.policies,
            "policy {policy} of {}",
            self.policies
        );
    }
    fn note_violation(&mut self, kind: ViolationKind, rule: &str) {
        assert!(!rule.is_empty(), "a rule has a name");
        self.noted.push(kind);
    }
}
