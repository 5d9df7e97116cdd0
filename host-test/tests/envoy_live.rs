//! The plugin in a real Envoy (1.40, its V8 Wasm runtime, two worker
//! threads), configured by the shipped `envoy/envoy.yaml`, in front of an
//! upstream on 127.0.0.1 that records what reaches it. The wasmtime harness
//! reproduces Envoy's behaviour for the rest of the suite; here the
//! behaviours DESIGN.md lists are seen where they come from: a refusal
//! before any body byte goes up, streaming past the hold window and the
//! reset that follows a late refusal, Envoy's own 413 for a paused body
//! over its buffer, trailers ending the body, held headers, the breaker's
//! state shared by the workers, the metrics and the access log.
//!
//! Envoy is fetched once (see `live/mod.rs`); set `JSON_SANITIZER_ENVOY`
//! to run another build (1.35 or later; the buffer-limit test states what
//! 1.40 does, which another version may not).

mod live;
mod process;

use json_sanitizer::samples::nested_arrays;
use live::{
    post, replace_once, shipped_bootstrap, with_http_option, with_plugin_fields, Envoy, Upstream,
};
use std::io::{Read as _, Write as _};

const JSON: (&str, &str) = ("content-type", "application/json");

/// One level over the sample's `max_depth` of 64.
fn too_deep() -> Vec<u8> {
    nested_arrays(65)
}

/// The sample as shipped: good JSON reaches the upstream byte for byte,
/// hostile JSON gets the problem document and never reaches it whole, a
/// declared length over the limit is refused before the body is sent, other
/// content types pass, underscored header names are refused by Envoy, and
/// the counters and the access log say what happened.
#[test]
fn the_shipped_envoy_yaml_passes_good_json_and_refuses_the_rest() {
    let upstream = Upstream::start();
    let envoy = Envoy::start(&shipped_bootstrap(), &upstream);

    let good = br#"{"order":{"id":7,"items":[1,2,3]},"note":"caf\u00e9"}"#;
    let r = envoy.send(&post("/api/orders", &[JSON], good));
    assert_eq!(r.status, 200, "{}", envoy.stderr());
    assert_eq!(r.json()["received"], good.len());
    let seen = upstream.to("/api/orders");
    assert_eq!(seen.len(), 1);
    assert!(seen[0].complete);
    assert_eq!(seen[0].body, good);

    // Too deep (the sample allows 64): refused within the hold window, so
    // no body byte reaches the upstream.
    let r = envoy.send(&post(
        "/api/deep",
        &[JSON, ("x-request-id", "live-1")],
        &too_deep(),
    ));
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let doc = r.json();
    assert_eq!(doc["violation"], "too_deep");
    assert_eq!(
        (doc["limit"].as_u64(), doc["offset"].as_u64()),
        (Some(64), Some(64))
    );
    // The sample is an edge proxy (`use_remote_address`): Envoy replaces a
    // client's request id with its own, which the reply and the access log
    // both carry.
    let id = doc["request_id"]
        .as_str()
        .expect("a request id")
        .to_string();
    assert!(id.len() >= 32 && id != "live-1", "{id}");
    assert!(envoy.access_log_line("/api/deep").contains(&id));
    assert!(envoy
        .settled(&upstream, "/api/deep")
        .iter()
        .all(|r| r.body.is_empty() && !r.complete));

    // A good request between refusals keeps the route's breaker (three
    // failures in a row) closed.
    let r = envoy.send(&post("/api/orders", &[JSON], good));
    assert_eq!(r.status, 200);

    // A declared length over max_body_bytes (1 MiB): 413 on the headers
    // alone; the body is never sent.
    let head = format!(
        "POST /api/big HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        2 << 20
    );
    let r = envoy.send(head.as_bytes());
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["violation"], "body_too_large");
    assert!(envoy.settled(&upstream, "/api/big").is_empty());

    // Another content type passes uninspected.
    let r = envoy.send(&post(
        "/api/text",
        &[("content-type", "text/plain")],
        &too_deep(),
    ));
    assert_eq!(r.status, 200);
    assert_eq!(upstream.to("/api/text")[0].body, too_deep());

    // A deep body sent as text, with a twin of `content-type` that a
    // CGI-style upstream reads as the content type.
    let twinned = |path: &str, twin: &str| {
        let headers = [("content-type", "text/plain"), (twin, "application/json")];
        envoy.send(&post(path, &headers, &too_deep()))
    };
    // The sample has Envoy refuse `content_type` before any filter runs
    // (its own 400, no problem document)...
    let r = twinned("/api/underscore", "content_type");
    assert_eq!(r.status, 400);
    assert_ne!(r.header("content-type"), Some("application/problem+json"));
    assert!(envoy.settled(&upstream, "/api/underscore").is_empty());
    // ... but not `Content.Type`, which PHP also reads as the content
    // type: the plugin refuses that one.
    let r = twinned("/api/dot", "Content.Type");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["violation"], "ambiguous_header");
    assert!(envoy.settled(&upstream, "/api/dot").is_empty());
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.rejected.ambiguous_header"),
        1
    );

    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.requests_passed"),
        2
    );
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.rejected.too_deep"),
        1
    );
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.rejected.body_too_large"),
        1
    );
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.requests_skipped"),
        1
    );
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.rule.default.requests_rejected"),
        3
    );
    // The sample's access log: response code details, then the violation
    // and the rule from the filter state.
    let line = envoy.access_log_line("/api/deep");
    assert!(
        line.contains(" 400 - json_sanitizer_too_deep too_deep default "),
        "{line}"
    );
}

/// The bulk-import rule streams (`hold_bytes: 0`): the body goes up as it
/// is inspected, and a violation found later resets the upstream request
/// while the client gets the problem document.
#[test]
fn a_late_violation_in_a_streamed_body_resets_the_upstream_request() {
    let upstream = Upstream::start();
    let envoy = Envoy::start(&shipped_bootstrap(), &upstream);
    let mut conn = envoy.connect();
    let head = "POST /api/bulk/orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let first = "[".to_string() + &"1,".repeat(4000);
    write!(conn, "{head}{:x}\r\n{first}\r\n", first.len()).unwrap();
    upstream.wait_for("the first chunk", |seen| {
        seen.iter()
            .any(|r| r.path == "/api/bulk/orders" && !r.body.is_empty())
    });
    write!(conn, "2\r\nx]\r\n0\r\n\r\n").unwrap();
    let r = live::read_response(&mut conn).expect("a reply");
    assert_eq!(r.status, 400);
    let doc = r.json();
    assert_eq!(doc["violation"], "syntax_error");
    assert_eq!(doc["offset"], first.len());
    upstream.wait_for("the reset", |seen| {
        seen.iter().any(|r| r.path == "/api/bulk/orders" && r.cut)
    });
    let request = upstream.to("/api/bulk/orders").remove(0);
    assert!(!request.complete, "the upstream request was reset");
    assert!(!request.body.is_empty() && request.body.len() <= first.len());
    assert!(first.as_bytes().starts_with(&request.body));
    assert!(!request.body.contains(&b'x'));
}

/// A client that sends a little of the body, then the rest at once: the
/// plugin holds the first bytes, and Envoy hands all of the burst over in
/// one callback (one read can be about as large as the listener's buffer
/// limit), appending it to the held bytes first. The sample's route buffer
/// limit (hold_bytes + the listener's limit + 64 KiB, the larger of the two
/// limits bounding a held body) takes that, so good JSON is not Envoy's 413.
#[test]
fn a_burst_after_a_held_first_read_stays_within_the_samples_buffers() {
    let upstream = Upstream::start();
    let envoy = Envoy::start(&shipped_bootstrap(), &upstream);
    for (n, rest) in [(1, 131_000), (2, 200_000)] {
        let path = format!("/api/burst/{n}");
        // One string within max_string_bytes (256 KiB).
        let body = format!(r#"["{}"]"#, "a".repeat(rest + 100 - 4));
        let (first, burst) = body.as_bytes().split_at(100);
        let mut conn = envoy.connect();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).unwrap();
        conn.write_all(first).unwrap();
        // The headers went on, the first bytes are held: then the burst.
        upstream.wait_for("the headers", |seen| seen.iter().any(|r| r.path == path));
        std::thread::sleep(std::time::Duration::from_millis(100));
        conn.write_all(burst).unwrap();
        let r = live::read_response(&mut conn).expect("a reply");
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(upstream.to(&path)[0].body, body.as_bytes());
    }
}

/// What the requests in inspection hold is bounded (`max_memory_bytes`,
/// here at its least, 1 MiB): a body that keeps 64 objects of 1,000 keys
/// open, within every limit of the sample's, is refused with 503
/// `overloaded` in V8 too, and the VM serves on (a trap would have failed
/// every request on the worker). Its counters go under the configuration's
/// `metrics_prefix`.
#[test]
fn a_request_past_the_memory_bound_is_overloaded_and_the_vm_serves_on() {
    let upstream = Upstream::start();
    let bootstrap = with_plugin_fields(
        &shipped_bootstrap(),
        r#""max_memory_bytes": 1048576, "metrics_prefix": "json_sanitizer_edge""#,
    );
    let envoy = Envoy::start(&bootstrap, &upstream);
    let mut body = String::new();
    for _ in 0..64 {
        body.push('{');
        for k in 0..999 {
            body.push_str(&format!(r#""k{k}":0,"#));
        }
        body.push_str(r#""next":"#);
    }
    let r = envoy.send(&post("/api/keys", &[JSON], body.as_bytes()));
    assert_eq!(r.status, 503, "{}", envoy.stderr());
    assert_eq!(r.json()["violation"], "overloaded");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(envoy
        .settled(&upstream, "/api/keys")
        .iter()
        .all(|r| r.body.is_empty()));
    let r = envoy.send(&post("/api/orders", &[JSON], b"[1,2,3]"));
    assert_eq!(r.status, 200, "{}", envoy.stderr());
    // Counted under the configuration's own prefix, and only there.
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer_edge.rejected.overloaded"),
        1
    );
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer_edge.requests_passed"),
        1
    );
    assert_eq!(
        envoy.stat("wasmcustom.json_sanitizer.requests_passed"),
        None
    );
}

/// Envoy's HTTP/1 codec hands a body's last bytes to the plugin as an
/// ordinary chunk and the end of the stream as an empty one after them. A
/// streamed body with a `content-length` whose end is what is wrong with
/// it (cut short, or nothing but whitespace) is refused with those last
/// bytes, so the upstream never gets the complete request the length
/// promised; a whole one arrives whole.
#[test]
fn a_streamed_body_cut_short_never_reaches_the_upstream_whole() {
    let upstream = Upstream::start();
    let envoy = Envoy::start(&shipped_bootstrap(), &upstream);
    let cut_short = format!("[{}1", "1,".repeat(100_000)).into_bytes();
    let blank = vec![b' '; 200_000];
    for (path, body, kind) in [
        ("/api/bulk/cut", &cut_short, "truncated"),
        ("/api/bulk/blank", &blank, "empty_body"),
    ] {
        let r = envoy.send(&post(path, &[JSON], body));
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["violation"], kind);
        let seen = envoy.settled(&upstream, path);
        assert!(
            seen.iter()
                .all(|r| !r.complete && r.body.len() < body.len()),
            "{path}: {:?}",
            seen.iter()
                .map(|r| (r.body.len(), r.complete))
                .collect::<Vec<_>>()
        );
    }
    let mut whole = cut_short.clone();
    whole.push(b']');
    let r = envoy.send(&post("/api/bulk/whole", &[JSON], &whole));
    assert_eq!(r.status, 200, "{}", envoy.stderr());
    assert_eq!(upstream.to("/api/bulk/whole")[0].body, whole);
}

/// On HTTP/1.1 a refusal ends the client's connection (`connection:
/// close`), also one that comes after the whole body was read (at its last
/// byte, at the end of a chunked body, at its trailers): what the client
/// wrote behind the refused request (one pipelined after it, or one hidden
/// in a body refused at its first byte) is never read as a request, so
/// nothing reaches the upstream past a refusal. A request that passes keeps
/// the connection open.
#[test]
fn a_refusal_closes_the_http1_connection_and_nothing_behind_it_goes_up() {
    let upstream = Upstream::start();
    let bootstrap = with_http_option(
        &shipped_bootstrap(),
        "http_protocol_options: { enable_trailers: true }",
    );
    let envoy = Envoy::start(&bootstrap, &upstream);
    let head = "HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n";
    let kept_alive = |path: &str, body: &[u8]| {
        let mut raw =
            format!("POST {path} {head}content-length: {}\r\n\r\n", body.len()).into_bytes();
        raw.extend_from_slice(body);
        raw
    };
    let chunked = |path: &str, body: &str, trailers: &str| {
        format!(
            "POST {path} {head}transfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n{trailers}\r\n",
            body.len()
        )
        .into_bytes()
    };
    let smuggled = kept_alive("/api/smuggled", b"[1]");
    let mut hiding = b"]".to_vec();
    hiding.extend_from_slice(&smuggled);
    let refused = [
        (
            "at its last byte",
            "syntax_error",
            kept_alive("/api/refused/0", b"[1,]"),
        ),
        (
            "at its first byte",
            "syntax_error",
            kept_alive("/api/refused/1", &hiding),
        ),
        (
            "at its end",
            "truncated",
            chunked("/api/refused/2", "[1", ""),
        ),
        (
            "at its trailers",
            "truncated",
            chunked("/api/refused/3", "[1", "x-checksum: c0ffee\r\n"),
        ),
    ];
    for (n, (when, violation, request)) in refused.into_iter().enumerate() {
        let mut conn = envoy.connect();
        conn.write_all(&kept_alive(&format!("/api/first/{n}"), b"[1]"))
            .unwrap();
        let r = live::read_response(&mut conn).expect("a reply");
        assert_eq!(r.status, 200, "{}", envoy.stderr());
        assert_ne!(r.header("connection"), Some("close"));

        let mut rest = request;
        rest.extend_from_slice(&smuggled);
        conn.write_all(&rest).unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer)
            .expect("Envoy closes the connection after the refusal");
        let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 400"), "{when}: {answer}");
        assert!(
            answer.contains("\r\nconnection: close\r\n"),
            "{when}: {answer}"
        );
        assert_eq!(answer.matches("http/1.1 ").count(), 1, "{when}: {answer}");
        assert!(
            answer.contains(&format!(r#""violation":"{violation}""#)),
            "{when}: {answer}"
        );
    }
    assert!(envoy.settled(&upstream, "/api/smuggled").is_empty());
    for n in 0..4 {
        assert_eq!(upstream.to(&format!("/api/first/{n}")).len(), 1, "{n}");
    }
}

/// DESIGN: while a body is paused, Envoy's buffer limit applies, and past
/// it Envoy answers 413 itself (no problem document, no plugin counter).
/// Which limit: in Envoy 1.40 the larger of the listener's
/// `per_connection_buffer_limit_bytes` and the route's
/// `per_request_buffer_limit_bytes`, so a route's limit raises the pause
/// buffer for the requests it routes.
#[test]
fn envoy_answers_413_itself_when_a_held_body_outgrows_its_buffer() {
    let upstream = Upstream::start();
    let shipped = shipped_bootstrap();
    let listener = (
        "per_connection_buffer_limit_bytes: 131072",
        "per_connection_buffer_limit_bytes: 16384",
    );
    let route = (
        "per_request_buffer_limit_bytes: 262144",
        "per_request_buffer_limit_bytes: 16384",
    );
    // Within every limit of the plugin's (one 40 KB string), so only
    // Envoy's buffer stands in its way.
    let body = format!(r#"{{"blob":"{}"}}"#, "x".repeat(40_000));
    for (lowered, status) in [
        (vec![listener, route], 413),
        (vec![route], 200),
        (vec![listener], 200),
    ] {
        let bootstrap = lowered.iter().fold(shipped.clone(), |yaml, (from, to)| {
            replace_once(&yaml, from, to)
        });
        let envoy = Envoy::start(&bootstrap, &upstream);
        let r = envoy.send(&post("/api/held", &[JSON], body.as_bytes()));
        assert_eq!(r.status, status, "{lowered:?} lowered");
        if status == 413 {
            assert_ne!(r.header("content-type"), Some("application/problem+json"));
            assert_eq!(
                envoy.counter("wasmcustom.json_sanitizer.requests_rejected"),
                0
            );
            assert_eq!(
                envoy.counter("wasmcustom.json_sanitizer.requests_passed"),
                0
            );
        }
    }
    // The two that one larger limit let through arrived whole.
    let arrived: Vec<_> = upstream
        .to("/api/held")
        .into_iter()
        .filter(|r| r.complete)
        .collect();
    assert_eq!(arrived.len(), 2);
    assert!(arrived.iter().all(|r| r.body == body.as_bytes()));
}

/// DESIGN: trailers end the body with a last body callback that is not the
/// end of the stream; the verdict is finished there, so a body cut short
/// before its trailers is refused, and a whole one passes.
#[test]
fn trailers_end_the_body_in_envoy_too() {
    let upstream = Upstream::start();
    let bootstrap = with_http_option(
        &shipped_bootstrap(),
        "http_protocol_options: { enable_trailers: true }",
    );
    let envoy = Envoy::start(&bootstrap, &upstream);
    let chunked = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\nx-checksum: c0ffee\r\n\r\n",
            body.len()
        )
    };
    let r = envoy.send(chunked("/api/cut", "[1,2").as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["violation"], "truncated");
    assert!(envoy
        .settled(&upstream, "/api/cut")
        .iter()
        .all(|r| !r.complete));
    let r = envoy.send(chunked("/api/whole", "[1,2]").as_bytes());
    assert_eq!(r.status, 200, "{}", envoy.stderr());
    assert_eq!(upstream.to("/api/whole")[0].body, b"[1,2]");
}

/// `hold_headers` with `allow_on_headers_stop_iteration` (Envoy 1.35+): a
/// refused request never reaches the upstream at all, not even its headers.
#[test]
fn held_headers_keep_a_refused_request_from_the_upstream_entirely() {
    let upstream = Upstream::start();
    let mut bootstrap = replace_once(
        &shipped_bootstrap(),
        "failure_policy: FAIL_CLOSED\n",
        "failure_policy: FAIL_CLOSED\n                        allow_on_headers_stop_iteration: true\n",
    );
    bootstrap = with_plugin_fields(&bootstrap, r#""hold_headers": true"#);
    let envoy = Envoy::start(&bootstrap, &upstream);
    let r = envoy.send(&post("/api/deep", &[JSON], &too_deep()));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["violation"], "too_deep");
    let r = envoy.send(&post("/api/orders", &[JSON], b"[1,2,3]"));
    assert_eq!(r.status, 200, "{}", envoy.stderr());
    assert_eq!(upstream.to("/api/orders")[0].body, b"[1,2,3]");
    assert!(
        envoy.settled(&upstream, "/api/deep").is_empty(),
        "{:?}",
        upstream.seen()
    );
}

/// The breaker's state lives in shared data, which Envoy's two workers
/// share: three failures in a row open it, and the next requests are shed
/// with 503 and `Retry-After` by both workers, their bodies never read or
/// forwarded.
#[test]
fn the_breaker_opens_across_workers_and_sheds_with_retry_after() {
    let upstream = Upstream::start();
    let envoy = Envoy::start(&shipped_bootstrap(), &upstream);
    for _ in 0..3 {
        let r = envoy.send(&post("/api/x", &[JSON], b"[1,]"));
        assert_eq!(r.status, 400);
    }
    let r = envoy.send(&post("/api/orders", &[JSON], b"[1,2,3]"));
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["violation"], "breaker_open");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=30).contains(&retry), "{retry}");
    // Every later request on a new connection is shed too, until each of
    // the two workers has taken some (the kernel spreads connections over
    // them, so at most a few dozen): the state is shared, not per worker.
    let before = envoy.connections_by_worker();
    assert_eq!(before.len(), 2, "{}", envoy.stats("downstream_cx_total"));
    let mut shed = 1;
    loop {
        let r = envoy.send(&post("/api/orders", &[JSON], b"[1,2,3]"));
        assert_eq!(r.status, 503);
        shed += 1;
        let now = envoy.connections_by_worker();
        if now.iter().zip(&before).all(|(now, before)| now > before) {
            break;
        }
        assert!(shed < 64, "one worker took every connection: {now:?}");
    }
    assert!(envoy.settled(&upstream, "/api/orders").is_empty());
    assert_eq!(envoy.counter("wasmcustom.json_sanitizer.breaker.opened"), 1);
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.breaker.rejected"),
        shed
    );
}

/// `max_log_lines_per_second` in Envoy: a burst of refusals logs at most
/// the bound per worker and second, and a refusal a second later is
/// preceded by a notice of how many lines were left out. The counters
/// count them all.
#[test]
fn a_burst_of_refusals_logs_within_the_bound_and_says_what_it_left_out() {
    let upstream = Upstream::start();
    let bootstrap = with_plugin_fields(&shipped_bootstrap(), r#""max_log_lines_per_second": 3"#);
    let envoy = Envoy::start(&bootstrap, &upstream);
    let burst = 40;
    let started = std::time::Instant::now();
    for _ in 0..burst {
        let r = envoy.send(&post("/api/x", &[JSON], b"[1,]"));
        assert!(matches!(r.status, 400 | 503), "{}", r.status);
    }
    let seconds = started.elapsed().as_secs() + 2;
    let lines = envoy.stderr().matches("json-sanitizer: rejected").count();
    assert!(
        (1..=3 * 2 * seconds as usize).contains(&lines),
        "{lines} lines for {burst} refusals in under {seconds} s"
    );
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.requests_rejected"),
        burst as u64
    );
    // A notice from now on, right before the refusal line it precedes.
    let notice = "request lines left out (max_log_lines_per_second=3)";
    let before = envoy.stderr().len();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for tries in 0.. {
        assert!(tries < 64, "no notice: {}", envoy.stderr());
        envoy.send(&post("/api/x", &[JSON], b"[1,]"));
        let log = envoy.stderr();
        let fresh = log.get(before..).unwrap_or_default();
        if let Some(at) = fresh.find(notice) {
            let next = fresh[at..].lines().nth(1).unwrap_or_default();
            assert!(next.contains("json-sanitizer: rejected"), "{fresh}");
            break;
        }
    }
}

/// WebSockets through Envoy with upgrades on (Istio's default): the
/// handshake reaches the upstream, its `101` reaches the client, and the
/// frames that follow (no JSON) reach the upstream uninspected.
#[test]
fn websocket_frames_pass_once_the_upstream_takes_the_upgrade() {
    let upstream = Upstream::start();
    let bootstrap = with_http_option(
        &shipped_bootstrap(),
        "upgrade_configs: [{ upgrade_type: websocket }]",
    );
    let envoy = Envoy::start(&bootstrap, &upstream);
    let mut conn = envoy.connect();
    write!(
        conn,
        "GET /chat HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        std::io::Read::read_exact(&mut conn, &mut byte).expect("the handshake's answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // A masked text frame, "Hello": not JSON, and not to be judged as such.
    let frame: &[u8] = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    conn.write_all(frame).unwrap();
    upstream.wait_for("the frame", |seen| {
        seen.iter().any(|r| r.path == "/chat" && r.body == frame)
    });
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.requests_skipped"),
        1
    );
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.requests_rejected"),
        0
    );
}

/// Compressed bodies both ways the deployment notes give: the plugin
/// decoding them itself (`on_encoded_body: inspect`; the upstream gets them
/// as sent), and Envoy's decompressor before it (the plugin and the
/// upstream see the decoded body). Either way gzipped hostile JSON is
/// refused and gzipped good JSON arrives.
#[test]
fn gzipped_bodies_are_judged_decoded_by_the_plugin_or_by_envoy() {
    let good = br#"{"order":{"id":7,"items":[1,2,3]}}"#;
    let gzip = |data: &[u8]| json_sanitizer_host::oci::reproducible::gzip(data).unwrap();
    let headers = [JSON, ("content-encoding", "gzip")];

    // The plugin decodes.
    let upstream = Upstream::start();
    let bootstrap = replace_once(
        &shipped_bootstrap(),
        r#""on_encoded_body": "reject","#,
        r#""on_encoded_body": "inspect","#,
    );
    let envoy = Envoy::start(&bootstrap, &upstream);
    let r = envoy.send(&post("/api/deep", &headers, &gzip(&too_deep())));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["violation"], "too_deep");
    let sent = gzip(good);
    let r = envoy.send(&post("/api/orders", &headers, &sent));
    assert_eq!(r.status, 200, "{}", envoy.stderr());
    assert_eq!(upstream.to("/api/orders")[0].body, sent, "as sent");
    assert_eq!(
        envoy.counter("wasmcustom.json_sanitizer.requests_decoded"),
        2
    );
    drop(envoy);

    // Envoy decodes, before the plugin (which keeps refusing codings).
    let upstream = Upstream::start();
    let decompressor = r#"                http_filters:
                  - name: envoy.filters.http.decompressor
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor
                      decompressor_library:
                        name: gzip
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.compression.gzip.decompressor.v3.Gzip
                      request_direction_config:
                        common_config:
                          enabled: { default_value: true, runtime_key: request_decompression_enabled }
                      response_direction_config:
                        common_config:
                          enabled: { default_value: false, runtime_key: response_decompression_enabled }
"#;
    let bootstrap = replace_once(
        &shipped_bootstrap(),
        "                http_filters:\n",
        decompressor,
    );
    let envoy = Envoy::start(&bootstrap, &upstream);
    let r = envoy.send(&post("/api/deep", &headers, &gzip(&too_deep())));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["violation"], "too_deep");
    let r = envoy.send(&post("/api/orders", &headers, &gzip(good)));
    assert_eq!(r.status, 200, "{}", envoy.stderr());
    assert_eq!(upstream.to("/api/orders")[0].body, good, "decoded");
    // A coding Envoy does not decode still meets the plugin's refusal.
    let r = envoy.send(&post("/api/br", &[JSON, ("content-encoding", "br")], good));
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["violation"], "unsupported_encoding");
}
