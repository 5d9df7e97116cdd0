//! The filter's behaviour end to end, through the real `.wasm` in the
//! Envoy-faithful harness: every violation with its status and problem body,
//! the header-stage refusals, hold-then-stream, trailers, unreadable bodies,
//! report mode, per-route rules, metrics, bad configurations.

mod plugin;
use json_sanitizer_host::{Action, HostBuilder, LogLevel, Metrics, ReplySource, Request, Verdict};
use plugin::{counter, gzip, host, post, try_host, try_host_with};

/// Body, expected violation, status, limit and offset.
type Case = (Vec<u8>, &'static str, u32, Option<u64>, u64);

#[test]
fn every_body_violation_gets_its_status_and_problem_document() {
    let config = r#"{"limits":{"max_body_bytes":4096,"max_depth":4,"max_array_elements":3,"max_object_entries":2,
        "max_key_bytes":6,"max_string_bytes":8,"max_number_chars":5},"json":{"numbers":"interoperable"},
        "reply":{"statuses":{"too_deep":422}}}"#;
    let (host, mut vm) = host_pair(config);
    let cases: Vec<Case> = vec![
        (vec![b' '; 5000], "body_too_large", 413, Some(4096), 4096),
        (b"[[[[[1]]]]]".to_vec(), "too_deep", 422, Some(4), 4),
        (b"[1,2,3,4]".to_vec(), "array_too_long", 400, Some(3), 7),
        (
            br#"{"a":1,"b":2,"c":3}"#.to_vec(),
            "too_many_entries",
            400,
            Some(2),
            13,
        ),
        (
            br#"{"abcdefg":1}"#.to_vec(),
            "key_too_long",
            400,
            Some(6),
            8,
        ),
        (
            br#"["abcdefghi"]"#.to_vec(),
            "string_too_long",
            400,
            Some(8),
            10,
        ),
        (b"[123456]".to_vec(), "number_too_long", 400, Some(5), 6),
        (b"[1e400]".to_vec(), "number_out_of_range", 400, None, 1),
        (
            br#"{"a":1,"\u0061":2}"#.to_vec(),
            "duplicate_key",
            400,
            None,
            7,
        ),
        (b"[\"\xC3\x28\"]".to_vec(), "invalid_utf8", 400, None, 3),
        (br#"["\ud800"]"#.to_vec(), "lone_surrogate", 400, None, 2),
        (b"[1,]".to_vec(), "syntax_error", 400, None, 3),
        (b"[1,2".to_vec(), "truncated", 400, None, 4),
        (b"{} {}".to_vec(), "trailing_data", 400, None, 3),
        (b"\xEF\xBB\xBF{}".to_vec(), "bom", 400, None, 0),
        (b"  ".to_vec(), "empty_body", 400, None, 2),
    ];
    for (body, violation, status, limit, offset) in cases {
        let o = vm
            .send(&post(&body).header("x-request-id", "e2e-1"))
            .unwrap();
        let reply = o
            .local_reply
            .as_ref()
            .unwrap_or_else(|| panic!("{violation}: no reply"));
        assert_eq!(reply.source, ReplySource::Plugin);
        assert_eq!(reply.status, status, "{violation}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        let doc = reply.json().expect("problem+json body");
        assert_eq!(doc["violation"], violation);
        assert_eq!(doc["status"], status);
        assert_eq!(
            doc["type"],
            format!("urn:json-sanitizer:problem:{violation}")
        );
        assert_eq!(doc["limit"].as_u64(), limit, "{violation}");
        assert_eq!(doc["offset"].as_u64(), Some(offset), "{violation}");
        assert_eq!(doc["request_id"], "e2e-1");
        assert!(doc["title"].is_string() && doc["detail"].is_string());
        // What Envoy's access log prints: %RESPONSE_CODE_DETAILS% and
        // %FILTER_STATE(wasm.json_sanitizer.violation:PLAIN)%.
        assert_eq!(reply.details, format!("json_sanitizer_{violation}"));
        assert_eq!(
            o.filter_state("wasm.json_sanitizer.violation").as_deref(),
            Some(violation)
        );
        assert!(o.trap.is_none());
        assert!(
            o.logged(&format!("violation={violation}")),
            "{violation}: {:?}",
            o.logs
        );
        assert_eq!(
            counter(&host, &format!("rejected.{violation}")),
            1,
            "{violation}"
        );
    }
    assert_eq!(counter(&host, "requests_rejected"), 16);
}

/// Every length limit at its boundary through the wasm, where string
/// bodies, keys and digits are read sixteen bytes a step: at the limit
/// passes, one over is refused at the first byte over, for limits around
/// one and two steps, whole and in chunks that cut the token.
#[test]
fn length_limits_hold_at_their_boundary_across_vector_steps() {
    for limit in [15u64, 16, 17, 31, 32, 33, 47] {
        let n = limit as usize;
        let config = format!(
            r#"{{"limits":{{"max_key_bytes":{limit},"max_string_bytes":{limit},"max_number_chars":{limit}}}}}"#
        );
        let (_h, mut vm) = host_pair(&config);
        // (body at the limit, body one over, the kind, where one over is found)
        let cases = [
            (
                format!(r#"{{"{}":1}}"#, "k".repeat(n)),
                format!(r#"{{"{}":1}}"#, "k".repeat(n + 1)),
                "key_too_long",
                2 + limit,
            ),
            (
                format!(r#"["{}"]"#, "s".repeat(n)),
                format!(r#"["{}"]"#, "s".repeat(n + 1)),
                "string_too_long",
                2 + limit,
            ),
            (
                format!("[{}]", "7".repeat(n)),
                format!("[{}]", "7".repeat(n + 1)),
                "number_too_long",
                1 + limit,
            ),
        ];
        for (at, over, kind, offset) in cases {
            for chunk in [usize::MAX, 7] {
                let o = vm.send(&post(&at).chunk_size(chunk)).unwrap();
                assert_eq!(o.status(), None, "{kind} at {limit}, chunks of {chunk}");
                let o = vm.send(&post(&over).chunk_size(chunk)).unwrap();
                let doc = o.problem().unwrap_or_else(|| panic!("{kind} over {limit}"));
                assert_eq!(doc["violation"], kind, "over {limit}, chunks of {chunk}");
                assert_eq!(doc["limit"], limit, "{kind}");
                assert_eq!(
                    doc["offset"], offset,
                    "{kind} over {limit}, chunks of {chunk}"
                );
            }
        }
    }
}

/// JSON Lines through the wasm: the bulk rule reads one value per line
/// (each with its own checks) whatever the chunking; elsewhere a second
/// value is trailing data.
#[test]
fn json_lines_bodies_are_judged_line_by_line_on_their_rule() {
    let (_host, mut vm) = host_pair(
        r#"{"content_types":["application/json","application/x-ndjson"],
            "rules":[{"name":"bulk","match":{"path_prefix":"/_bulk"},"json":{"lines":true}}]}"#,
    );
    let ndjson = |path: &str, body: &str, chunk: usize| {
        Request::post(path)
            .content_type("application/x-ndjson")
            .body(body)
            .with_content_length()
            .chunk_size(chunk)
    };
    let good = "{\"index\":{\"_id\":\"1\"}}\n{\"name\":\"a\"}\n{\"index\":{\"_id\":\"2\"}}\n{\"name\":\"b\"}\n";
    let bad = "{\"index\":{\"_id\":\"1\"}}\n{\"name\":\"a\",\"name\":\"b\"}\n";
    for chunk in [good.len(), 7, 1] {
        assert_eq!(
            vm.send(&ndjson("/_bulk", good, chunk)).unwrap().status(),
            None
        );
        // A repeated key on the second line of the bulk route; a second
        // value anywhere else.
        // A value spread over lines, or a raw U+2028 in a string, which
        // lenient line readers would cut into values of their own.
        for (path, body, violation, offset) in [
            ("/_bulk", bad, "duplicate_key", 34),
            ("/other", good, "trailing_data", 22),
            (
                "/_bulk",
                "{\"index\":{}}\n[[1],\n[2]]\n",
                "syntax_error",
                18,
            ),
            (
                "/_bulk",
                "{\"name\":\"a\u{2028}[1]\"}\n",
                "syntax_error",
                10,
            ),
        ] {
            let o = vm.send(&ndjson(path, body, chunk)).unwrap();
            let p = o.problem().unwrap();
            assert_eq!(
                (&p["violation"], p["offset"].as_u64()),
                (&violation.into(), Some(offset)),
                "{path} in {chunk}-byte chunks"
            );
        }
    }
    // A rule that allows the separators in strings passes that text.
    let (_host, mut allowing) = host_pair(
        r#"{"content_types":["application/json","application/x-ndjson"],
            "rules":[{"name":"bulk","match":{"path_prefix":"/_bulk"},
                      "json":{"lines":true,"allow_unicode_line_breaks":true}}]}"#,
    );
    let text = "{\"name\":\"a\u{2028}[1]\"}\n";
    for chunk in [text.len(), 1] {
        let o = allowing.send(&ndjson("/_bulk", text, chunk)).unwrap();
        assert_eq!(o.status(), None, "in {chunk}-byte chunks");
    }
}

/// `sniff` through the wasm: JSON sent as `text/plain` is inspected in any
/// chunking; a form is not, and reaches the upstream whole.
#[test]
fn sniffed_bodies_are_inspected_when_they_look_like_json() {
    let (host, mut vm) = host_pair(r#"{"on_other_content_type":"sniff"}"#);
    let plain = |body: &str| {
        Request::post("/api")
            .content_type("text/plain; charset=utf-8")
            .body(body)
            .with_content_length()
    };
    for chunk in [64, 1] {
        let o = vm
            .send(&plain(r#" {"role":"user","role":"admin"}"#).chunk_size(chunk))
            .unwrap();
        let p = o.problem().expect("refused");
        assert_eq!(
            (&p["violation"], p["offset"].as_u64()),
            (&"duplicate_key".into(), Some(16))
        );
        let o = vm
            .send(
                &plain("role=user&role=admin")
                    .chunk_size(chunk)
                    .capture_forwarded(),
            )
            .unwrap();
        assert_eq!(o.status(), None);
        assert_eq!(
            o.forwarded_body.as_deref(),
            Some(&b"role=user&role=admin"[..])
        );
    }
    assert_eq!(counter(&host, "requests_inspected"), 2);
    assert_eq!(counter(&host, "requests_skipped"), 2);
    // What Json.NET skips before a value is read past (and the inspector
    // refuses it); other control bytes start binary data (protobuf here).
    for (body, verdict) in [
        (&b"\x0C{}"[..], Some("syntax_error")),
        (b"\xC2\xA0[1]", Some("syntax_error")),
        (b"\x08\x01\x10\x7B\x18\x02", None),
    ] {
        let request = Request::post("/api")
            .content_type("application/octet-stream")
            .body(body)
            .chunk_size(1);
        let o = vm.send(&request).unwrap();
        assert_eq!(o.summary().violation.as_deref(), verdict, "{body:?}");
    }
}

/// Through the wasm: a UTF-7 body that body-parser would decode into a
/// second `role` is refused by its charset (415), and under `sniff` a JSON
/// Lines body whose first value is a scalar is still inspected.
/// A JSON Lines rule whose usual content type passes uninspected starts
/// with a warning in Envoy's log saying so (and the body indeed passes
/// unread); with the type in `content_types`, no warning and it is read.
#[test]
fn json_lines_that_ndjson_would_bypass_are_warned_at_start() {
    let rule =
        r#"{"rules":[{"name":"bulk","match":{"path_prefix":"/_bulk"},"json":{"lines":true}}]"#;
    let ndjson = Request::post("/_bulk")
        .content_type("application/x-ndjson")
        .body("{\"a\":1,\"a\":2}\n")
        .with_content_length();
    for (config, warned, status) in [
        (format!("{rule}}}"), true, None),
        (
            format!(r#"{rule},"content_types":["application/json","application/x-ndjson"]}}"#),
            false,
            Some(400),
        ),
    ] {
        let (_h, mut vm) = host_pair(&config);
        let warnings: Vec<&str> = vm
            .logs()
            .iter()
            .filter(|l| l.level == LogLevel::Warn)
            .map(|l| l.message.as_str())
            .collect();
        assert_eq!(warnings.len(), usize::from(warned), "{warnings:?}");
        if warned {
            assert!(
                warnings[0].contains("policies: bulk")
                    && warnings[0].contains("go through uninspected"),
                "{warnings:?}"
            );
        }
        assert_eq!(vm.send(&ndjson).unwrap().status(), status, "{config}");
    }
}

#[test]
fn foreign_charsets_and_scalar_first_lines_are_not_ways_around() {
    let (_host, mut vm) = host_pair(
        r#"{"on_other_content_type":"sniff",
            "rules":[{"name":"events","match":{"path_prefix":"/events"},"json":{"lines":true}}]}"#,
    );
    let utf7 = r#"{"role":"user","x":"+ACIALAAiAHIAbwBsAGUAIgA6ACIAYQBkAG0AaQBu-"}"#;
    for ct in [
        "application/json; charset=utf-7",
        "text/plain; charset=UTF-7",
    ] {
        let o = vm.send(&post(utf7).header("content-type", ct)).unwrap();
        assert_eq!(o.status(), Some(415), "{ct}");
        assert_eq!(o.body_bytes_read, 0, "{ct}");
    }
    let o = vm
        .send(&post(utf7).header("content-type", "application/json; charset=utf-8"))
        .unwrap();
    assert_eq!(o.status(), None);

    let lines = "0\n{\"user\":1,\"user\":2}\n";
    for chunk in [lines.len(), 1] {
        let o = vm
            .send(
                &Request::post("/events")
                    .content_type("text/plain")
                    .body(lines)
                    .chunk_size(chunk),
            )
            .unwrap();
        let p = o.problem().expect("refused");
        assert_eq!(
            (&p["violation"], p["offset"].as_u64()),
            (&"duplicate_key".into(), Some(12)),
            "{chunk}-byte chunks"
        );
    }
}

/// Through the wasm, with the shipped per-route example: a wildcard content
/// type (JSON to Django REST framework), Rails' `application/jsonrequest`,
/// a comment before the value (skipped by Ruby's `JSON.parse`) under
/// `sniff`, and a method override that would leave a skipping rule are all
/// judged, not passed.
#[test]
fn wildcard_types_rails_types_comments_and_method_overrides_are_judged() {
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/per-route.json"
    ))
    .unwrap();
    // Without its breaker, which the refusals here would open.
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    config["breaker"]["enabled"] = false.into();
    let (_host, mut vm) = host_pair(&config.to_string());
    let dup = r#"{"role":"user","role":"admin"}"#;
    let send = |vm: &mut json_sanitizer_host::Vm, request: Request| {
        vm.send(&request).unwrap().summary().violation
    };
    for ct in ["*/*", "application/*", "application/jsonrequest"] {
        let v = send(&mut vm, post(dup).header("content-type", ct));
        assert_eq!(v.as_deref(), Some("duplicate_key"), "{ct}");
    }
    for body in [format!("/**/{dup}"), format!("// x\n{dup}")] {
        let v = send(&mut vm, post(&body).header("content-type", "text/plain"));
        assert_eq!(v.as_deref(), Some("syntax_error"), "{body}");
    }
    let upload = |header: &str, method: Option<&str>| {
        let r = Request::post("/upload/meta")
            .content_type("application/json")
            .body(dup);
        match method {
            Some(m) => r.header(header, m),
            None => r,
        }
    };
    let header = "x-http-method-override";
    assert_eq!(
        send(&mut vm, upload(header, None)),
        None,
        "the uploads rule skips POST"
    );
    assert_eq!(send(&mut vm, upload(header, Some("PUT"))), None);
    assert_eq!(
        send(&mut vm, upload(header, Some("PATCH"))).as_deref(),
        Some("ambiguous_path")
    );
    // Rack and Symfony read X_HTTP_Method_Override as the dashed header,
    // whatever it names: two ways to read the request.
    assert_eq!(
        send(&mut vm, upload("X_HTTP_Method_Override", Some("PUT"))).as_deref(),
        Some("ambiguous_header")
    );
}

/// Through the wasm: a header the filter decides by, also sent spelt with
/// `_` for `-` (which CGI-style upstreams such as PHP and Rack read as the
/// same header, and others ignore), makes the request `ambiguous_header`,
/// before any body byte, whatever either value says. Other headers spelt
/// so change nothing: they are not the headers Envoy frames or identifies
/// the request by.
#[test]
fn underscored_twins_of_the_headers_the_filter_reads_are_ambiguous() {
    let (host, mut vm) = host_pair("{}");
    let deep = json_sanitizer::samples::nested_arrays(200);
    for (name, value) in [
        ("content_type", "application/json"),
        ("Content_Type", "text/plain"),
        ("content_encoding", "gzip"),
        ("x_http_method_override", "PATCH"),
        ("X_HTTP_Method", "PUT"),
        ("x_method_override", "DELETE"),
        // PHP reads a `.` in a name as `_` too; Envoy never refuses it.
        ("Content.Type", "application/json"),
        ("X.HTTP.Method.Override", "PATCH"),
    ] {
        let o = vm
            .send(&typed("application/json", "[1]").header(name, value))
            .unwrap();
        let doc = o.problem().unwrap_or_else(|| panic!("{name}: passed"));
        assert_eq!(doc["violation"], "ambiguous_header", "{name}");
        assert_eq!(doc["status"], 400);
        assert_eq!(o.body_bytes_read, 0, "{name}");
    }
    assert_eq!(counter(&host, "rejected.ambiguous_header"), 8);
    // Framing and identity are read by their names only: a
    // `transfer_encoding` does not make a handshake declare a body (it would
    // pass as text), and `x_request_id` is not the request id.
    let handshake = Request::get("/chat")
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("transfer_encoding", "chunked")
        .header("content_length", "1")
        .header("content-type", "text/plain")
        .body(&deep);
    let o = vm.send(&handshake).unwrap();
    assert_eq!(o.summary().violation.as_deref(), Some("too_deep"));
    let o = vm
        .send(
            &typed("application/json", "[1,]")
                .header("x_request_id", "forged")
                .header("x-request-id", "real-1"),
        )
        .unwrap();
    assert_eq!(o.problem().unwrap()["request_id"], "real-1");
}

/// Through the wasm: a WebSocket's frames, which Envoy runs through the
/// filter chain after the handshake's `101` as if they were its body, reach
/// the upstream whole, even with `hold_headers`; the same bytes on a POST
/// are refused, and so are bytes sent before the answer, or after another
/// answer (a request smuggled to an upstream that did not take the upgrade).
#[test]
fn websocket_frames_pass_uninspected_once_the_upgrade_is_answered() {
    // Headers held while a body is (an Envoy that allows it), but not a
    // handshake's: its upstream must answer before the client sends.
    let (host, mut vm) = plugin::try_host_with(r#"{"hold_headers":true}"#, |b| {
        b.allow_on_headers_stop_iteration(true)
    })
    .unwrap();
    let frames: &[u8] = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58\x88\x00";
    let handshake = |body: &[u8]| {
        Request::get("/chat")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .body(body)
            .chunk_size(5)
            .capture_forwarded()
    };
    let o = vm.send(&handshake(frames).answered(101, 0)).unwrap();
    assert_eq!(o.status(), None);
    assert!(o.headers_forwarded);
    assert_eq!(o.forwarded_body.as_deref(), Some(frames));
    assert!(o
        .callbacks
        .iter()
        .any(|c| c.name == "proxy_on_response_headers"));
    assert_eq!(counter(&host, "requests_skipped"), 1);
    let o = vm.send(&Request::post("/chat").body(frames)).unwrap();
    assert_eq!(o.summary().violation.as_deref(), Some("syntax_error"));
    let smuggled = b"POST /api HTTP/1.1\r\ncontent-type: application/json\r\n\r\n{}";
    for request in [handshake(smuggled), handshake(smuggled).answered(404, 0)] {
        let o = vm.send(&request).unwrap();
        assert_eq!(o.summary().violation.as_deref(), Some("syntax_error"));
        assert_eq!(o.forwarded_bytes, 0);
    }
}

/// `report_only` through the wasm: a reported violation lets the body
/// through (nothing refused, the whole body forwarded) and leaves what report
/// mode leaves: the log line, the counters and the access log's filter
/// state; a syntax error after it is still refused.
#[test]
fn report_only_violations_go_through_and_are_reported() {
    let (host, mut vm) =
        host_pair(r#"{"json":{"numbers":"interoperable","report_only":["number_out_of_range"]}}"#);
    let body = r#"{"id":9007199254740993,"amount":10}"#;
    for chunk in [body.len(), 1] {
        let o = vm
            .send(&post(body).chunk_size(chunk).capture_forwarded())
            .unwrap();
        assert_eq!(o.status(), None);
        assert_eq!(o.forwarded_body.as_deref(), Some(body.as_bytes()));
        assert!(
            o.logged("would reject rule=default violation=number_out_of_range limit=9007199254740991 offset=6"),
            "{:?}",
            o.logs
        );
        assert_eq!(
            o.filter_state("wasm.json_sanitizer.violation").as_deref(),
            Some("number_out_of_range")
        );
    }
    assert_eq!(
        counter(&host, "report_only.would_reject.number_out_of_range"),
        2
    );
    assert_eq!(counter(&host, "requests_passed"), 0);
    let o = vm
        .send(&post(r#"{"id":9007199254740993,"amount":10,}"#))
        .unwrap();
    assert_eq!(o.problem().unwrap()["violation"], "syntax_error");
    assert_eq!(counter(&host, "rejected.syntax_error"), 1);
    // Without report_only the same body is refused.
    let (_host, mut strict) = host_pair(r#"{"json":{"numbers":"interoperable"}}"#);
    assert_eq!(strict.send(&post(body)).unwrap().status(), Some(400));
}

#[test]
fn interoperable_numbers_stop_integers_beyond_two_to_the_fifty_three() {
    let (_host, mut vm) = host_pair(r#"{"json":{"numbers":"interoperable"}}"#);
    let (_default_host, mut default_vm) = host_pair("{}");
    let max = (1u64 << 53) - 1;
    for chunk in [None, Some(1), Some(7)] {
        let send = |vm: &mut json_sanitizer_host::Vm, body: String| {
            let req = post(body);
            vm.send(&chunk.map_or(req.clone(), |n| req.chunk_size(n)))
                .unwrap()
        };
        for body in [
            format!(r#"{{"id":{max},"amount":-{max},"rate":1.7976931348623157e308}}"#),
            r#"{"id":9007199254740990.5,"tiny":1e-323,"mole":6.022e23}"#.to_string(),
        ] {
            assert_eq!(send(&mut vm, body.clone()).status(), None, "{body}");
        }
        for (body, limit, offset) in [
            (format!(r#"{{"id":{}}}"#, max + 2), Some(max), 6),
            (
                format!(r#"{{"id":1,"amount":-{}}}"#, max + 1),
                Some(max),
                17,
            ),
            (r#"{"rate":18e307}"#.to_string(), None, 8),
            // An id written so that a double cannot hold it, and a value a
            // double rounds to zero.
            (r#"{"id":9.007199254740993e15}"#.to_string(), None, 6),
            (r#"{"id":9007199254740993.0}"#.to_string(), None, 6),
            (r#"{"tiny":1e-400}"#.to_string(), None, 8),
        ] {
            let o = send(&mut vm, body.clone());
            assert_eq!(o.status(), Some(400), "{body} in {chunk:?}");
            let doc = o.problem().unwrap();
            assert_eq!(doc["violation"], "number_out_of_range");
            assert_eq!(doc["limit"].as_u64(), limit, "{body}");
            assert_eq!(doc["offset"].as_u64(), Some(offset), "{body}");
            // By default any number the grammar allows passes.
            assert_eq!(send(&mut default_vm, body.clone()).status(), None, "{body}");
        }
    }
}

fn host_pair(config: &str) -> (json_sanitizer_host::Host, json_sanitizer_host::Vm) {
    try_host(config).unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn nothing_of_one_request_reaches_the_next_on_the_same_vm() {
    // Host and plugin both reuse per-request buffers (header lists, the
    // inspector); each request must still be judged on its own.
    let (_host, mut vm) = host_pair(r#"{"on_missing_content_type":"reject"}"#);
    let many_headers = post(r#"{"a":1,"a":2}"#)
        .header("x-one", "1")
        .header("x-two", "2");
    let o = vm.send(&many_headers).unwrap();
    assert_eq!(o.status(), Some(400));
    assert_eq!(o.problem().unwrap()["violation"], "duplicate_key");

    // Fewer headers, none of them a content-type: none may linger.
    let mut bare = Request::post("/").body(r#"{"a":1}"#);
    bare.headers.clear();
    let o = vm.send(&bare).unwrap();
    assert_eq!(o.status(), Some(415));

    // A body cut short mid-string, then one reusing its keys.
    let o = vm.send(&post(r#"{"a":{"b":"unterminated"#)).unwrap();
    assert_eq!(o.problem().unwrap()["violation"], "truncated");
    let o = vm.send(&post(r#"{"a":1,"b":{"a":2}}"#)).unwrap();
    assert!(o.reply().is_none(), "{:?}", o.reply());
    assert_eq!(o.forwarded_bytes, 19);
}

#[test]
fn replies_never_echo_payload_bytes() {
    let (_host, mut vm) = host_pair("{}");
    let secret = "SECRET-PAYLOAD-VALUE";
    for body in [
        format!("[\"{secret}\",]"),
        format!("{{\"{secret}\":1,\"{secret}\":2}}"),
    ] {
        let o = vm.send(&post(&body)).unwrap();
        let reply = o.local_reply.unwrap();
        assert!(!reply.body_text().contains(secret));
        assert!(o.logs.iter().all(|l| !l.message.contains(secret)));
    }
}

#[test]
fn content_length_over_the_limit_is_refused_before_reading_the_body() {
    let (host, mut vm) = host_pair(r#"{"limits":{"max_body_bytes":1000}}"#);
    let big = post(vec![b' '; 1001]).with_content_length();
    let o = vm.send(&big).unwrap();
    assert_eq!(o.status(), Some(413));
    assert_eq!(o.body_bytes_read, 0);
    assert_eq!(o.forwarded_bytes, 0);
    assert!(!o.headers_forwarded);
    let doc = o.problem().unwrap();
    assert_eq!(
        (doc["violation"].as_str(), doc["limit"].as_u64()),
        (Some("body_too_large"), Some(1000))
    );
    assert!(doc["offset"].is_null());
    // At the limit it is inspected (and passes), every byte of it.
    let at_limit = format!("[{}]", "1,".repeat(498) + "1 ");
    assert_eq!(at_limit.len(), 1000);
    let o = vm.send(&post(at_limit).with_content_length()).unwrap();
    assert_eq!(o.status(), None);
    assert_eq!(o.body_bytes_read, 1000);
    assert_eq!(o.forwarded_bytes, 1000);
    assert_eq!(counter(&host, "requests_passed"), 1);
}

#[test]
fn content_type_and_encoding_refusals_are_415() {
    let (_h, mut vm) = host_pair(r#"{"on_other_content_type":"reject"}"#);
    let o = vm.send(&typed("text/xml", "[1]")).unwrap();
    assert_eq!(o.status(), Some(415));
    assert_eq!(o.problem().unwrap()["violation"], "unsupported_media_type");
    assert_eq!(o.body_bytes_read, 0);
    let o = vm
        .send(&post("[1]").header("content-encoding", "gzip"))
        .unwrap();
    assert_eq!(o.status(), Some(415));
    assert_eq!(o.problem().unwrap()["violation"], "unsupported_encoding");
    let o = vm
        .send(&typed("application/json; charset=UTF-8", "[1]"))
        .unwrap();
    assert_eq!(o.status(), None);
    // Defaults: other types pass uninspected, a missing type is inspected.
    let (h, mut vm) = host_pair("{}");
    let o = vm
        .send(&typed("application/x-www-form-urlencoded", "a=1&b=2"))
        .unwrap();
    assert_eq!((o.status(), o.body_bytes_read), (None, 0));
    // A second, JSON content type cannot smuggle a body past inspection.
    let o = vm
        .send(&typed("text/plain", "[1,]").content_type("application/json"))
        .unwrap();
    assert_eq!(o.status(), Some(400));
    let o = vm.send(&Request::post("/").body("a=1")).unwrap();
    assert_eq!(o.status(), Some(400));
    assert_eq!(counter(&h, "requests_skipped"), 1);
    // Types that Fastify 4, ASP.NET Core and Koa parse as JSON unasked are
    // inspected by default; NDJSON (not one document) still passes.
    for loose in [
        "application/jsonx",
        "application/json5",
        "text/x+json",
        "application/csp-report",
    ] {
        let o = vm.send(&typed(loose, "[1,]")).unwrap();
        assert_eq!(o.status(), Some(400), "{loose}");
    }
    let o = vm
        .send(&typed("application/x-ndjson", "[1]\n[2]\n"))
        .unwrap();
    assert_eq!(o.status(), None);
    assert_eq!(counter(&h, "requests_skipped"), 2);
}

fn typed(content_type: &str, body: &str) -> Request {
    Request::post("/api").content_type(content_type).body(body)
}

/// An array of `ones` elements `1,` whose next element is a syntax error,
/// at byte `1 + 2 * ones`.
fn bad_after(ones: usize) -> Vec<u8> {
    format!("[{}x]", "1,".repeat(ones)).into_bytes()
}

/// Inside the hold window no body byte goes up: the headers have (Envoy
/// would stop the body callbacks for a pause there), so the upstream request
/// they opened is reset.
#[test]
fn a_violation_inside_the_hold_window_reaches_no_body_byte_upstream() {
    let (_h, mut vm) = host_pair(r#"{"hold_bytes":1024}"#);
    let body = bad_after(200);
    let o = vm.send(&post(&body).chunk_size(100)).unwrap();
    assert_eq!(o.status(), Some(400));
    assert!(o.headers_forwarded);
    assert_eq!(o.forwarded_bytes, 0);
    assert!(o.upstream_reset, "the request the headers opened is reset");
    let o = vm.send(&post(bad_after(100)).chunk_size(100)).unwrap();
    assert_eq!(o.callbacks[0].action, Some(Action::Continue));
}

/// With Envoy's `allow_on_headers_stop_iteration`, `hold_headers` holds the
/// headers too, and a refused request never reaches the upstream; without
/// it, the same configuration stalls every held request, as Envoy would.
#[test]
fn hold_headers_keeps_the_whole_request_back_where_envoy_allows_it() {
    let config = r#"{"hold_bytes":1024,"hold_headers":true}"#;
    let (_h, mut vm) = try_host_with(config, |b| b.allow_on_headers_stop_iteration(true)).unwrap();
    let o = vm.send(&post(bad_after(200)).chunk_size(100)).unwrap();
    assert_eq!(o.status(), Some(400));
    assert!(!o.headers_forwarded && !o.upstream_reset, "{o:?}");
    assert_eq!(o.forwarded_bytes, 0);
    let o = vm
        .send(&post("[1,2,3]").chunk_size(2).capture_forwarded())
        .unwrap();
    assert!(o.completed, "{o:?}");
    assert_eq!(o.forwarded_body.as_deref(), Some(&b"[1,2,3]"[..]));

    let (_h, mut vm) = host_pair(config);
    let o = vm.send(&post("[1,2,3]").chunk_size(2)).unwrap();
    assert!(o.stalled && !o.completed, "{o:?}");
    assert_eq!(o.summary().verdict, Verdict::Reject);
    assert_eq!(o.body_bytes_read, 0);
    assert_eq!(
        o.callback_names(),
        [
            "proxy_on_request_headers",
            "proxy_on_log",
            "proxy_on_done",
            "proxy_on_delete"
        ]
    );
}

/// The chunk that crosses `hold_bytes` is judged before it goes up (with
/// everything held before it); the one after it streams.
#[test]
fn the_hold_window_ends_after_the_chunk_that_crosses_it() {
    let (_h, mut vm) = host_pair(r#"{"hold_bytes":1024}"#);
    // Chunks of 100: the eleventh (bytes 1000..1100) crosses 1024.
    let o = vm.send(&post(bad_after(525)).chunk_size(100)).unwrap();
    assert_eq!(o.problem().unwrap()["offset"], 1051);
    assert_eq!(o.forwarded_bytes, 0);
    assert!(o.headers_forwarded && o.upstream_reset);
    let o = vm.send(&post(bad_after(575)).chunk_size(100)).unwrap();
    assert_eq!(o.problem().unwrap()["offset"], 1151);
    assert_eq!(
        o.forwarded_bytes, 1100,
        "the held bytes and the crossing chunk"
    );
    assert!(o.upstream_reset);
}

#[test]
fn a_violation_past_the_hold_window_resets_the_upstream() {
    let (_h, mut vm) = host_pair(r#"{"hold_bytes":1024}"#);
    let body = bad_after(1000);
    let o = vm.send(&post(&body).chunk_size(256)).unwrap();
    assert_eq!(o.status(), Some(400));
    assert!(o.headers_forwarded);
    assert!(o.forwarded_bytes > 1024, "{}", o.forwarded_bytes);
    assert!(o.upstream_reset);
    // hold_bytes 0: streaming from the first chunk.
    let (_h, mut vm) = host_pair(r#"{"hold_bytes":0}"#);
    let o = vm.send(&post(&body).chunk_size(256)).unwrap();
    assert!(o.headers_forwarded && o.upstream_reset);
    let o = vm
        .send(&post("[1,2,3]").chunk_size(2).capture_forwarded())
        .unwrap();
    assert_eq!(o.forwarded_body.as_deref(), Some(&b"[1,2,3]"[..]));
    assert!(o.completed);
}

/// Envoy's HTTP/1 codec hands the last bytes of a body over as an ordinary
/// chunk and the end of the stream as an empty one after them. With a
/// `content-length`, a streamed body whose end is what is wrong with it is
/// refused with its last bytes: the upstream never gets all the bytes the
/// length promised (a complete request to it), only a reset.
#[test]
fn a_streamed_body_cut_short_never_reaches_the_upstream_whole() {
    let (_h, mut vm) = host_pair(r#"{"hold_bytes":0}"#);
    let cut_short = format!("[{}1", "1,".repeat(1000));
    let whole = format!("{cut_short}]");
    for (body, refused) in [(&cut_short, true), (&whole, false)] {
        let (first, last) = body.split_at(1024);
        let request = post(body)
            .with_content_length()
            .chunks([first, last])
            .end_apart()
            .capture_forwarded();
        let o = vm.send(&request).unwrap();
        if refused {
            assert_eq!(o.problem().unwrap()["violation"], "truncated");
            assert_eq!(o.forwarded_bytes, 1024, "only the first chunk went up");
            assert!(o.upstream_reset);
        } else {
            assert!(o.completed, "{o:?}");
            assert_eq!(o.forwarded_body.as_deref(), Some(body.as_bytes()));
        }
    }
}

/// The VM's memory is capped (1 GiB in Envoy's V8, 8 MiB here), and a
/// request whose key tables do not fit traps the plugin: Envoy then fails
/// every request on that worker. `max_memory_bytes` under the cap refuses
/// that request with 503 `overloaded` instead, and the VM serves on.
#[test]
fn max_memory_bytes_keeps_a_flood_of_keys_from_trapping_the_vm() {
    let limits =
        r#""limits":{"max_object_entries":1000000,"max_body_bytes":16777216},"hold_bytes":0"#;
    // One object of 300,000 keys, never closed: some 16 MB of key tables.
    let flood = post(json_sanitizer::samples::open_object(300_000)).chunk_size(65_536);
    let cap = |b: HostBuilder| b.max_memory(8 << 20);

    let unbounded = format!(r#"{{{limits},"max_memory_bytes":null}}"#);
    let (_h, mut vm) = try_host_with(&unbounded, cap).unwrap();
    let o = vm.send(&flood).unwrap();
    assert!(o.trap.is_some(), "{o:?}");
    assert!(vm.broken().is_some());

    let bounded = format!(r#"{{{limits},"max_memory_bytes":2097152}}"#);
    let (h, mut vm) = try_host_with(&bounded, cap).unwrap();
    let o = vm.send(&flood).unwrap();
    assert!(o.trap.is_none(), "{:?}", o.trap);
    assert_eq!(o.status(), Some(503));
    assert_eq!(o.problem().unwrap()["violation"], "overloaded");
    assert_eq!(o.reply().unwrap().header("retry-after"), Some("1"));
    assert_eq!(counter(&h, "rejected.overloaded"), 1);
    assert!(vm.send(&post("[1,2,3]")).unwrap().completed);
}

/// DESIGN: a local reply after the response headers went downstream resets
/// the stream. An upstream that answers early (here after the first 256
/// bytes) and a violation found later: the client gets a reset, not the
/// 400, while the refusal is still logged and counted.
#[test]
fn a_violation_after_the_response_started_resets_the_stream() {
    let (h, mut vm) = host_pair(r#"{"hold_bytes":0}"#);
    let body = bad_after(1000);
    let early = vm
        .send(&post(&body).chunk_size(256).early_response_after(256))
        .unwrap();
    assert!(early.response_started && early.stream_reset && early.upstream_reset);
    assert!(early.reply().is_none(), "no reply reaches the client");
    let refused = early.undelivered_reply.as_ref().unwrap();
    assert_eq!(refused.json().unwrap()["violation"], "syntax_error");
    let s = early.summary();
    assert_eq!((s.verdict, s.status), (Verdict::Reject, None));
    assert!(early.logged("violation=syntax_error"));
    assert_eq!(counter(&h, "rejected.syntax_error"), 1);
    // The same request with an upstream that waits for the whole body.
    let late = vm.send(&post(&body).chunk_size(256)).unwrap();
    assert!(!late.response_started && !late.stream_reset && late.upstream_reset);
    assert_eq!(late.status(), Some(400));
    // A good body completes however early the upstream answers.
    let good = vm
        .send(&post("[1,2,3]").chunk_size(2).early_response_after(0))
        .unwrap();
    assert!(good.response_started && good.completed && !good.stream_reset);
}

#[test]
fn a_good_body_arrives_upstream_intact_in_any_chunking() {
    let body = json_sanitizer::samples::api_body(200_000);
    for (hold, chunk) in [(65536, 1000), (0, 4096), (2_097_152, 65536), (100, 7)] {
        let (_h, mut vm) = host_pair(&format!(r#"{{"hold_bytes":{hold}}}"#));
        let o = vm
            .send(&post(&body).chunk_size(chunk).capture_forwarded())
            .unwrap();
        assert_eq!(
            o.status(),
            None,
            "hold {hold} chunk {chunk}: {:?}",
            o.summary()
        );
        assert_eq!(o.forwarded_body.as_deref(), Some(&body[..]));
        assert_eq!(o.body_bytes_read, body.len() as u64, "each byte read once");
        assert!(o.completed && !o.stalled);
    }
}

#[test]
fn envoy_answers_413_itself_when_the_hold_window_exceeds_its_buffer() {
    let (_h, mut vm) = host_pair(r#"{"hold_bytes":2097152}"#);
    let o = vm
        .send(&post(json_sanitizer::samples::api_body(1_500_000)).chunk_size(65536))
        .unwrap();
    let reply = o.reply().unwrap();
    assert_eq!((reply.source, reply.status), (ReplySource::Host, 413));
}

#[test]
fn trailers_end_the_body_and_are_no_bypass() {
    let (h, mut vm) = host_pair("{}");
    let o = vm.send(&post("[1,2").trailer("grpc-status", "0")).unwrap();
    assert_eq!(o.problem().unwrap()["violation"], "truncated");
    assert!(!o.trailers_forwarded);
    let o = vm
        .send(&post("[1,2]").trailer("x-checksum", "abc"))
        .unwrap();
    assert_eq!(o.status(), None);
    assert!(o.trailers_forwarded && o.completed);
    assert_eq!(counter(&h, "requests_passed"), 1);
    // Headers, then trailers, and no body between them: an empty body.
    let o = vm.send(&post("").trailer("x-checksum", "abc")).unwrap();
    assert_eq!(o.problem().unwrap()["violation"], "empty_body");
    assert!(!o.trailers_forwarded);
    // Streamed, the body went up before the trailers showed it cut short:
    // the upstream request is reset, and the trailers never follow.
    let (_h, mut vm) = host_pair(r#"{"hold_bytes":0}"#);
    let o = vm
        .send(&post("[1,2").chunk_size(2).trailer("grpc-status", "0"))
        .unwrap();
    assert_eq!(o.problem().unwrap()["violation"], "truncated");
    assert_eq!(o.forwarded_bytes, 4);
    assert!(o.upstream_reset && !o.trailers_forwarded);
    // A compressed body cut short before its trailers is malformed.
    let (_h, mut vm) = host_pair(r#"{"on_encoded_body":"inspect"}"#);
    let gz = gzip(b"[1,2,3]");
    let o = vm
        .send(
            &post(&gz[..gz.len() - 4])
                .header("content-encoding", "gzip")
                .trailer("x-checksum", "abc"),
        )
        .unwrap();
    assert_eq!(o.problem().unwrap()["violation"], "malformed_encoding");
    assert!(!o.trailers_forwarded);
}

#[test]
fn a_body_reported_but_unreadable_is_not_an_empty_body() {
    let (_h, mut vm) = host_pair("{}");
    let o = vm.send(&post("[1]").unreadable_body()).unwrap();
    assert_eq!(o.status(), Some(500));
    assert_eq!(o.problem().unwrap()["violation"], "body_unreadable");
    assert!(o.logged("body unreadable"));
    let (_h, mut vm) = host_pair(r#"{"on_unreadable_body":"pass"}"#);
    let o = vm.send(&post("[1]").unreadable_body()).unwrap();
    assert_eq!(o.status(), None);
    assert!(o.completed);
}

/// A host that refuses the local reply must not turn a refusal into a pass:
/// the filter resets the stream, and if the host refuses that too, it holds
/// the request (Envoy's stream timeout ends it). Either way the violating
/// chunk and everything after it stay out of the upstream.
#[test]
fn a_local_reply_the_host_refuses_still_lets_nothing_through() {
    let (h, mut vm) = host_pair(r#"{"hold_bytes":0}"#);
    let streamed = || {
        Request::post("/api/orders")
            .content_type("application/json")
            .header("x-request-id", "r-1")
            .chunks(["[1,2", ",]", "[3]"])
            .capture_forwarded()
            .refuse_local_reply()
    };
    let o = vm.send(&streamed()).unwrap();
    assert_eq!((o.status(), o.trap.as_deref()), (None, None));
    assert!(o.stream_reset && o.upstream_reset && !o.completed, "{o:?}");
    assert_eq!(o.forwarded_body.as_deref(), Some(&b"[1,2"[..]));
    assert_eq!(o.hostcall_count("proxy_close_stream"), 1);
    assert!(o.logged("refused the local reply request_id=r-1 action=reset"));
    assert_eq!(o.summary().verdict, Verdict::Reject);

    let o = vm.send(&streamed().refuse_stream_reset()).unwrap();
    assert!(o.stalled && !o.completed && !o.stream_reset, "{o:?}");
    assert_eq!(o.forwarded_body.as_deref(), Some(&b"[1,2"[..]));
    assert!(o.logged("refused the local reply request_id=r-1 action=hold"));
    assert_eq!(counter(&h, "requests_rejected"), 2);
    assert_eq!(counter(&h, "requests_passed"), 0);

    // Inside the hold window no body byte went up.
    let (_h, mut vm) = host_pair("{}");
    let o = vm
        .send(&post("[1,]").capture_forwarded().refuse_local_reply())
        .unwrap();
    assert!(o.stream_reset && o.upstream_reset, "{o:?}");
    assert_eq!(o.forwarded_body.as_deref(), Some(&b""[..]));
}

/// Without its headers the filter can judge no rule, type or length: a
/// header map the host refuses gets `on_unreadable_body`'s answer, not the
/// top level's policy by default.
#[test]
fn a_header_map_the_host_refuses_is_an_unreadable_request() {
    let (h, mut vm) = host_pair(r#"{"rules":[{"match":{"path_prefix":"/api"},"skip":true}]}"#);
    let o = vm.send(&post("[1]").refuse_header_map()).unwrap();
    assert_eq!(o.status(), Some(500));
    assert_eq!(o.problem().unwrap()["violation"], "body_unreadable");
    assert!(o.logged("reason=\"the host refused the request headers\""));
    assert_eq!(counter(&h, "rejected.body_unreadable"), 1);
    // Without a body there is nothing to judge.
    let o = vm.send(&Request::get("/api").refuse_header_map()).unwrap();
    assert!(o.completed && o.status().is_none(), "{o:?}");
    assert!(o.logged("no body: passed"));
    let (h, mut vm) = host_pair(r#"{"on_unreadable_body":"pass"}"#);
    let o = vm.send(&post("[1,]").refuse_header_map()).unwrap();
    assert!(o.completed && o.status().is_none(), "{o:?}");
    assert_eq!(counter(&h, "requests_skipped"), 1);
}

#[test]
fn report_mode_counts_and_logs_but_forwards_everything() {
    let (h, mut vm) = host_pair(r#"{"mode":"report"}"#);
    let o = vm.send(&post("[1,,2]").capture_forwarded()).unwrap();
    assert_eq!(o.status(), None);
    assert_eq!(o.forwarded_body.as_deref(), Some(&b"[1,,2]"[..]));
    assert!(o.logged("would reject"));
    // The access log of the request that went through still says why it
    // would have been refused; a good one says nothing.
    assert_eq!(
        o.filter_state("wasm.json_sanitizer.violation").as_deref(),
        Some("syntax_error")
    );
    let good = vm.send(&post("[1,2]")).unwrap();
    assert_eq!(good.filter_state("wasm.json_sanitizer.violation"), None);
    assert_eq!(good.hostcall_count("proxy_set_property"), 0);
    assert_eq!(counter(&h, "report_only.would_reject"), 1);
    assert_eq!(counter(&h, "report_only.would_reject.syntax_error"), 1);
    assert_eq!(counter(&h, "requests_rejected"), 0);
}

/// Report mode covers the refusals decided from the headers too: a refused
/// content type or encoding and a content-length over the limit are logged
/// and counted, and the whole body still goes upstream.
#[test]
fn report_mode_forwards_what_the_headers_would_condemn() {
    let (h, mut vm) = host_pair(
        r#"{"mode":"report","on_other_content_type":"reject","limits":{"max_body_bytes":8}}"#,
    );
    let cases = [
        (
            "unsupported_media_type",
            Request::post("/api/orders")
                .content_type("text/plain")
                .body("{}"),
        ),
        (
            "unsupported_encoding",
            post("{}").header("content-encoding", "gzip"),
        ),
        ("body_too_large", post("[1,2,3,4]").with_content_length()),
    ];
    for (kind, req) in cases {
        let sent = req.body_bytes();
        let o = vm.send(&req.capture_forwarded()).unwrap();
        assert_eq!(o.status(), None, "{kind}");
        assert_eq!(o.forwarded_body.as_deref(), Some(&sent[..]), "{kind}");
        assert!(o.logged("would reject") && o.logged(kind), "{:?}", o.logs);
        assert_eq!(counter(&h, &format!("report_only.would_reject.{kind}")), 1);
    }
    assert_eq!(counter(&h, "report_only.would_reject"), 3);
    assert_eq!(counter(&h, "requests_rejected"), 0);
}

#[test]
fn per_route_rules_choose_the_policy() {
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/per-route.json"
    ))
    .unwrap();
    let (h, mut vm) = host_pair(&config);
    let deep9 = json_sanitizer::samples::nested_arrays(9);
    // Uploads are skipped, whatever the body.
    let o = vm
        .send(&post("garbage").method_path("POST", "/upload/1"))
        .unwrap();
    assert_eq!((o.status(), o.body_bytes_read), (None, 0));
    // ...but only under `/upload/`: a path that merely starts alike is inspected.
    let o = vm
        .send(&post("garbage").method_path("POST", "/uploadProfileJson"))
        .unwrap();
    assert_eq!(o.problem().unwrap()["violation"], "syntax_error");
    // Search allows depth 8.
    let o = vm
        .send(&post(&deep9).method_path("POST", "/api/search?q=1"))
        .unwrap();
    assert_eq!(o.problem().unwrap()["limit"], 8);
    // The access log says which rule judged it.
    let rule = |o: &json_sanitizer_host::Outcome| o.filter_state("wasm.json_sanitizer.rule");
    assert_eq!(rule(&o).as_deref(), Some("search"));
    // The default allows 64.
    assert_eq!(vm.send(&post(&deep9)).unwrap().status(), None);
    // Legacy is report-only and allows duplicates.
    let o = vm
        .send(&post(r#"{"a":1,"a":2}"#).method_path("POST", "/v1/x"))
        .unwrap();
    assert_eq!(o.status(), None);
    let o = vm.send(&post("[1,]").method_path("POST", "/v1/x")).unwrap();
    assert_eq!(o.status(), None);
    assert!(o.logged("rule=legacy"));
    assert_eq!(rule(&o).as_deref(), Some("legacy"));
    assert_eq!(counter(&h, "requests_skipped"), 1);
    // Bulk import is chosen by path *and* authority (port ignored): there an
    // array over the default 10,000 elements passes; on another authority,
    // or with a method the upload rule lists but on another path, it does not.
    let wide = json_sanitizer::samples::wide_array(10_001);
    let to = |authority: &str, method: &str, path: &str| {
        let mut r = post(&wide).method_path(method, path);
        r.authority = authority.to_string();
        r
    };
    for authority in [
        "internal.example.com:8443",
        "Internal.Example.com.",
        "internal.example.com.:80",
    ] {
        let o = vm.send(&to(authority, "POST", "/api/bulk/1")).unwrap();
        assert_eq!(o.status(), None, "{authority}: {:?}", o.logs);
    }
    // Another host, or another path that starts the same, is not the bulk
    // import (the rule's prefix stops at a segment).
    for (authority, path) in [
        ("api.example.com", "/api/bulk/1"),
        ("internal.example.com", "/api/bulkDelete"),
    ] {
        let o = vm.send(&to(authority, "POST", path)).unwrap();
        assert_eq!(
            o.problem().unwrap()["violation"],
            "array_too_long",
            "{authority}{path}"
        );
        assert!(o.logged("rule=default"));
        assert_eq!(rule(&o).as_deref(), Some("default"));
        // A pass between refusals, so that the default rule's breaker (three
        // failures in a row) stays closed for the checks below.
        assert_eq!(vm.send(&post("[1]")).unwrap().status(), None);
    }
    // The upload rule lists POST and PUT: a PATCH to /upload is inspected.
    let o = vm
        .send(&post("garbage").method_path("PATCH", "/upload/1"))
        .unwrap();
    assert_eq!(o.problem().unwrap()["violation"], "syntax_error");
    // Paths are matched normalized; one whose readings as written and as
    // resolved fall under different rules is refused before its body.
    for path in [
        "/upload/../api/orders",
        "//api/./search",
        "/upload/..;/api/orders",
    ] {
        let o = vm.send(&post("[1]").method_path("POST", path)).unwrap();
        assert_eq!(o.status(), Some(400), "{path}");
        assert_eq!(
            o.problem().unwrap()["violation"],
            "ambiguous_path",
            "{path}"
        );
        assert_eq!(o.body_bytes_read, 0, "{path}");
    }
    assert_eq!(counter(&h, "rejected.ambiguous_path"), 3);
    // Readings that agree are judged as usual (depth 9 passes the default).
    let o = vm
        .send(&post(&deep9).method_path("POST", "/api/x/../orders"))
        .unwrap();
    assert_eq!(o.status(), None);
    assert!(o.completed);

    // Each policy has its own counters, named after its rule, and together
    // they add up to the totals.
    for (rule, tail, n) in [
        ("uploads", "requests_skipped", 1),
        ("search", "requests_inspected", 1),
        ("search", "requests_rejected", 2),
        ("legacy", "requests_inspected", 2),
        ("legacy", "requests_passed", 1),
        ("legacy", "report_only.would_reject", 1),
        ("bulk_import", "requests_passed", 3),
        ("default", "requests_inspected", 8),
        ("default", "requests_passed", 4),
        ("default", "requests_rejected", 6),
    ] {
        assert_eq!(
            counter(&h, &format!("rule.{rule}.{tail}")),
            n,
            "{rule} {tail}"
        );
    }
    for tail in [
        "requests_inspected",
        "requests_passed",
        "requests_rejected",
        "requests_skipped",
        "report_only.would_reject",
    ] {
        let per_rule: u64 = ["default", "uploads", "search", "bulk_import", "legacy"]
            .iter()
            .map(|rule| counter(&h, &format!("rule.{rule}.{tail}")))
            .sum();
        assert_eq!(per_rule, counter(&h, tail), "{tail}");
    }
}

trait MethodPath {
    fn method_path(self, method: &str, path: &str) -> Self;
}

impl MethodPath for Request {
    fn method_path(mut self, method: &str, path: &str) -> Self {
        self.method = method.to_string();
        self.path = path.to_string();
        self
    }
}

#[test]
fn metrics_count_requests_bytes_and_outcomes() {
    let h = host("{}");
    let mut vm = h.start_vm().unwrap();
    vm.send(&post("[1,2,3]")).unwrap();
    vm.send(&post("{\"a\":[]}")).unwrap();
    vm.send(&post("[1,]")).unwrap();
    vm.send(&Request::get("/health")).unwrap();
    assert_eq!(counter(&h, "requests_inspected"), 3);
    assert_eq!(counter(&h, "requests_passed"), 2);
    assert_eq!(counter(&h, "requests_rejected"), 1);
    assert_eq!(counter(&h, "rejected.syntax_error"), 1);
    assert_eq!(counter(&h, "requests_skipped"), 1);
    assert_eq!(counter(&h, "bytes_inspected"), 7 + 8 + 4);
    // Every documented metric is defined up front.
    for name in [
        "breaker.opened",
        "breaker.cas_exhausted",
        "report_only.would_reject.bom",
        "rejected.breaker_open",
    ] {
        assert!(
            h.metrics()
                .counter(&format!("json_sanitizer.{name}"))
                .is_some(),
            "{name}"
        );
    }
    // Without rules there are no per-rule counters: they would repeat these.
    let per_rule: Vec<String> = h
        .metrics()
        .snapshot()
        .into_keys()
        .filter(|name| name.starts_with("json_sanitizer.rule."))
        .collect();
    assert!(per_rule.is_empty(), "{per_rule:?}");
}

/// Envoy adds up the counters of one name from every instance of the
/// plugin in the process (one registry here, shared by three hosts):
/// instances with their own `metrics_prefix` count apart, per-rule
/// counters included, and ones without add up under `json_sanitizer`.
#[test]
fn a_metrics_prefix_counts_an_instance_apart() {
    let shared = Metrics::default();
    let with = |config: &str| {
        try_host_with(config, |b| b.metrics(shared.clone())).unwrap_or_else(|e| panic!("{e:#}"))
    };
    let (_a, mut public) = with("{}");
    let (_b, mut also_public) = with(r#"{"hold_bytes":0}"#);
    let (_c, mut internal) = with(
        r#"{"metrics_prefix":"json_sanitizer_internal","rules":[{"name":"bulk","match":{"path_prefix":"/bulk"}}]}"#,
    );
    public.send(&post("[1]")).unwrap();
    also_public.send(&post("[1,]")).unwrap();
    for body in ["[1]", "[2]", "{"] {
        internal.send(&post(body)).unwrap();
    }
    let count = |name: &str| {
        shared
            .counter(name)
            .unwrap_or_else(|| panic!("{name} undefined"))
    };
    assert_eq!(count("json_sanitizer.requests_inspected"), 2);
    assert_eq!(count("json_sanitizer.rejected.syntax_error"), 1);
    assert_eq!(count("json_sanitizer_internal.requests_inspected"), 3);
    assert_eq!(count("json_sanitizer_internal.requests_passed"), 2);
    assert_eq!(count("json_sanitizer_internal.rejected.truncated"), 1);
    assert_eq!(
        count("json_sanitizer_internal.rule.default.requests_rejected"),
        1
    );
    assert_eq!(
        count("json_sanitizer_internal.rule.bulk.requests_inspected"),
        0
    );
    let names = shared.snapshot().into_keys();
    let stray: Vec<String> = names
        .filter(|n| n.starts_with("json_sanitizer.rule."))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// `reject_case_insensitive` through the wasm: keys Go would match to one
/// field are a duplicate at the second one's quote, whole or one byte per
/// chunk (a non-ASCII letter cut between chunks too); keys that differ
/// otherwise pass.
#[test]
fn keys_go_matches_to_one_field_are_duplicates_when_asked() {
    let (_h, mut vm) = host_pair(r#"{"json":{"duplicate_keys":"reject_case_insensitive"}}"#);
    for (body, offset) in [
        (r#"{"role":"user","Role":"admin"}"#, 15),
        ("{\"kind\":1,\"\u{212A}IND\":2}", 10),
        (r#"{"kind":1,"\u212Aind":2}"#, 10),
        ("[{\"size\":1},{\"size\":1,\"\u{17F}ize\":2}]", 22),
        ("{\"r\u{f4}le\":1,\"R\u{d4}LE\":2}", 11),
        ("{\"isAdmin\":1,\"\u{130}sAdmin\":2}", 13),
    ] {
        for chunk in [body.len(), 1] {
            let o = vm.send(&post(body).chunk_size(chunk)).unwrap();
            let p = o.problem().unwrap_or_else(|| panic!("{body}: passed"));
            assert_eq!(
                (&p["violation"], p["offset"].as_u64()),
                (&serde_json::json!("duplicate_key"), Some(offset)),
                "{body} in {chunk}-byte chunks"
            );
        }
    }
    for body in [
        r#"{"a":{"A":1}}"#,
        "{\"caf\u{e9}\":1,\"cafe\":2}",
        "{\"id\":1,\"\u{131}x\":2}",
    ] {
        assert_eq!(vm.send(&post(body)).unwrap().status(), None, "{body}");
    }
}

#[test]
fn bad_configurations_are_refused_naming_the_field() {
    for (config, field) in [
        (r#"{"limits":{"max_depth":0}}"#, "limits.max_depth"),
        (r#"{"limits":{"max_depth":-1}}"#, "limits.max_depth"),
        (r#"{"mode":"block"}"#, "mode"),
        (r#"{"colour":"red"}"#, "colour"),
        (
            r#"{"reply":{"statuses":{"too_deep":302}}}"#,
            "reply.statuses.too_deep",
        ),
        (r#"{"hold_bytes":5000000}"#, "hold_bytes"),
        (r#"{"rules":[{"match":{}}]}"#, "rules[0].match"),
        (
            r#"{"breaker":{"failure_ratio":0}}"#,
            "breaker.failure_ratio",
        ),
        ("not json", "<configuration>"),
    ] {
        let err = match try_host(config) {
            Ok(_) => panic!("accepted {config}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("proxy_on_configure"), "{err}");
        assert!(err.contains(&format!("field `{field}`")), "{config}: {err}");
    }
}

#[test]
fn every_example_configuration_loads_into_the_wasm() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for name in [
        "default.json",
        "strict-api.json",
        "report-only.json",
        "per-route.json",
    ] {
        let config = std::fs::read_to_string(dir.join(name)).unwrap();
        let (_h, mut vm) = host_pair(&config);
        let o = vm.send(&post("[1]").header("x-api-key", "k")).unwrap();
        assert_eq!(o.status(), None, "{name}");
    }
}

/// `max_log_lines_per_second` through the wasm, on the harness clock: the
/// second's first refusal is logged, the next two are left out (but
/// counted), and the next second's line comes after a notice saying so.
#[test]
fn refusal_lines_past_the_bound_are_left_out_then_counted() {
    let (h, mut vm) = host_pair(r#"{"max_log_lines_per_second":1}"#);
    let logged: Vec<bool> = (0..3)
        .map(|_| {
            vm.send(&post("[1,]"))
                .unwrap()
                .logged("violation=syntax_error")
        })
        .collect();
    assert_eq!(logged, [true, false, false]);
    h.clock().advance(std::time::Duration::from_secs(1));
    let o = vm.send(&post("[1,]")).unwrap();
    assert!(
        o.logged("json-sanitizer: 2 request lines left out (max_log_lines_per_second=1)"),
        "{:?}",
        o.logs
    );
    assert!(o.logged("violation=syntax_error"));
    assert_eq!(counter(&h, "requests_rejected"), 4);
}
