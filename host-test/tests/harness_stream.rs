//! The host's HTTP stream rules (Envoy's), checked with WAT guests.

mod common;
use common::{host, probes, probes_i, start_with_imports};
use json_sanitizer_host::{Outcome, ReplySource, Request, Status};

const CONTINUE: &str = "i32.const 0";

/// Body callback that probes `body_size`, reads the whole buffer and probes
/// how many bytes it got, and pauses for the first two calls.
const PAUSE_TWICE: &str = r#"
  (global $calls (mut i32) (i32.const 0))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (call $probe32 (local.get $size))
    (i32.store (i32.const 4) (i32.const 0))
    (drop (call $get_buffer (i32.const 0) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (call $probe32 (i32.load (i32.const 4)))
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (result i32) (i32.le_u (global.get $calls) (i32.const 2))
      (then (i32.const 1)) (else (i32.const 0))))
"#;

/// The `end_of_stream` argument of each body callback, in order.
fn end_of_stream_flags(o: &Outcome) -> Vec<u64> {
    o.callbacks
        .iter()
        .filter(|c| c.name == "proxy_on_request_body")
        .map(|c| c.args[1])
        .collect()
}

#[test]
fn body_size_is_cumulative_while_paused_and_per_chunk_after_continue() {
    let h = host(PAUSE_TWICE).build().unwrap();
    let mut vm = h.start_vm().unwrap();
    let req = Request::post("/")
        .chunks([
            vec![b'a'; 10],
            vec![b'b'; 20],
            vec![b'c'; 30],
            vec![b'd'; 40],
        ])
        .capture_forwarded();
    let o = vm.send(&req).unwrap();
    // (body_size, bytes readable) per call: 10, 10+20, 10+20+30 buffered, then 40 alone.
    assert_eq!(probes(&h), vec![10, 10, 30, 30, 60, 60, 40, 40]);
    assert_eq!(o.forwarded_bytes, 100);
    assert_eq!(o.forwarded_body.as_deref(), Some(&req.body_bytes()[..]));
    assert_eq!(o.body_bytes_read, 10 + 30 + 60 + 40);
    assert!(o.completed && !o.stalled && o.reply().is_none());
    assert_eq!(end_of_stream_flags(&o), vec![0, 0, 0, 1]);
}

/// An HTTP/1 body's end comes alone: the last bytes without
/// `end_of_stream`, then a callback with nothing new (`body_size` 0 after a
/// `Continue`, the whole buffer after a `Pause`).
#[test]
fn an_end_apart_comes_in_a_body_callback_of_its_own() {
    let h = host(PAUSE_TWICE).build().unwrap();
    let mut vm = h.start_vm().unwrap();
    let req = Request::post("/")
        .chunks([vec![b'a'; 10], vec![b'b'; 20], vec![b'c'; 30]])
        .end_apart()
        .capture_forwarded();
    let o = vm.send(&req).unwrap();
    assert_eq!(probes(&h), vec![10, 10, 30, 30, 60, 60, 0, 0]);
    assert_eq!(end_of_stream_flags(&o), vec![0, 0, 0, 1]);
    assert_eq!(o.forwarded_body.as_deref(), Some(&req.body_bytes()[..]));
    assert!(o.completed && !o.stalled);

    // Paused on the last bytes, the end alone finds them all buffered.
    let mut vm = h.start_vm().unwrap();
    let req = Request::post("/")
        .chunks([vec![b'a'; 10], vec![b'b'; 20]])
        .end_apart();
    let o = vm.send(&req).unwrap();
    assert_eq!(probes(&h)[8..], [10, 10, 30, 30, 30, 30]);
    assert_eq!(o.forwarded_bytes, 30);
    assert!(o.completed);
}

const ALWAYS_PAUSE_BODY: &str = r#"
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) HEADERS)
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) i32.const 1)
"#;

#[test]
fn paused_body_over_the_buffer_limit_gets_a_host_413() {
    let h = host(&ALWAYS_PAUSE_BODY.replace("HEADERS", CONTINUE))
        .buffer_limit(100)
        .build()
        .unwrap();
    let mut vm = h.start_vm().unwrap();
    let o = vm
        .send(&Request::post("/").chunks([vec![b'x'; 60], vec![b'y'; 60]]))
        .unwrap();
    let r = o.host_reply.as_ref().expect("host reply");
    assert_eq!((r.status, r.source), (413, ReplySource::Host));
    assert!(o.local_reply.is_none());
    // Only the first chunk reached the plugin; headers had gone upstream.
    assert_eq!(
        o.callback_names()
            .iter()
            .filter(|n| **n == "proxy_on_request_body")
            .count(),
        1
    );
    assert!(o.headers_forwarded && o.upstream_reset);
    assert_eq!(o.forwarded_bytes, 0);
    assert_eq!(o.summary().status, Some(413));

    // Within the limit, the same body just stalls at end of stream (paused, no reply).
    let o = vm
        .send(&Request::post("/").chunks([vec![b'x'; 50], vec![b'y'; 50]]))
        .unwrap();
    assert!(o.host_reply.is_none() && o.stalled && !o.completed);
}

/// The import of `proxy_set_buffer_bytes`, which the shared prelude lacks.
const SET_BUFFER: &str = r#"
  (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
"#;

/// `proxy_set_buffer_bytes` on the request body, as Envoy's buffer takes
/// it: at the start the first `size` bytes are replaced, at or past the end
/// bytes are added, in the middle it is BadArgument; the upstream gets the
/// changed chunk, and the request's own chunks are left as they were.
#[test]
fn set_buffer_bytes_replaces_a_prefix_or_appends_as_envoy_does() {
    let funcs = r#"
      (data (i32.const 2048) "XY")
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
        ;; "abcdef": the first two bytes become "XY", then "XY" is added at
        ;; the end, and a write at 3 (mid-buffer) is refused.
        (call $probe32 (call $set_buffer (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 2048) (i32.const 2)))
        (call $probe32 (call $set_buffer (i32.const 0) (i32.const 6) (i32.const 0) (i32.const 2048) (i32.const 2)))
        (call $probe32 (call $set_buffer (i32.const 0) (i32.const 3) (i32.const 1) (i32.const 2048) (i32.const 2)))
        ;; Replacing more than there is takes it all.
        (call $probe32 (call $set_buffer (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 2048) (i32.const 1)))
        (call $probe32 (call $get_buffer (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 0) (i32.const 4)))
        (call $probe32 (i32.load (i32.const 4)))
        i32.const 0)
    "#;
    let (h, mut vm) = start_with_imports(SET_BUFFER, funcs);
    let req = Request::post("/").body("abcdef").capture_forwarded();
    let o = vm.send(&req).unwrap();
    let (ok, bad) = (0, Status::BadArgument.code() as u64);
    assert_eq!(probes(&h), vec![ok, ok, bad, ok, ok, 1]);
    assert_eq!(o.forwarded_body.as_deref(), Some(&b"X"[..]));
    assert_eq!(req.body_bytes(), b"abcdef");

    // Without the last replacement: "XYcdefXY" goes upstream.
    let funcs = funcs.replace(
        "(i32.const 0) (i32.const 0) (i32.const 100) (i32.const 2048) (i32.const 1)",
        "(i32.const 0) (i32.const 8) (i32.const 0) (i32.const 2048) (i32.const 0)",
    );
    let (_, mut vm) = start_with_imports(SET_BUFFER, &funcs);
    let o = vm.send(&req).unwrap();
    assert_eq!(o.forwarded_body.as_deref(), Some(&b"XYcdefXY"[..]));
}

/// Envoy buffers the chunk a plugin pauses on and applies its limit then:
/// one chunk over it gets the 413 right after its callback, also when it is
/// the last one or trailers follow (no trailers callback).
#[test]
fn a_single_paused_chunk_over_the_buffer_limit_gets_the_413_at_once() {
    let h = host(&ALWAYS_PAUSE_BODY.replace("HEADERS", CONTINUE))
        .buffer_limit(100)
        .build()
        .unwrap();
    let mut vm = h.start_vm().unwrap();
    for req in [
        Request::post("/").chunks([vec![b'x'; 101], vec![b'y'; 1]]),
        Request::post("/").chunks([vec![b'x'; 101]]),
        Request::post("/")
            .chunks([vec![b'x'; 101]])
            .trailer("grpc-status", "0"),
    ] {
        let o = vm.send(&req).unwrap();
        let r = o.host_reply.as_ref().expect("host reply");
        assert_eq!((r.status, r.source), (413, ReplySource::Host));
        assert_eq!(
            o.callback_names()
                .iter()
                .filter(|n| n.starts_with("proxy_on_request_"))
                .copied()
                .collect::<Vec<_>>(),
            ["proxy_on_request_headers", "proxy_on_request_body"]
        );
    }
    // At the limit, it is buffered.
    let o = vm
        .send(&Request::post("/").chunks([vec![b'x'; 100]]))
        .unwrap();
    assert!(o.host_reply.is_none() && o.stalled);
}

/// Envoy's default buffer limit (`per_connection_buffer_limit_bytes`) is
/// 1 MiB: a paused body of exactly that fits, one byte more gets the 413.
#[test]
fn the_default_buffer_limit_is_one_mebibyte() {
    let h = host(&ALWAYS_PAUSE_BODY.replace("HEADERS", CONTINUE))
        .build()
        .unwrap();
    let mut vm = h.start_vm().unwrap();
    let half = 1 << 19;
    let at_limit = vm
        .send(&Request::post("/").chunks([vec![b'x'; half], vec![b'y'; half]]))
        .unwrap();
    assert!(at_limit.host_reply.is_none() && at_limit.stalled);
    let over = vm
        .send(&Request::post("/").chunks([vec![b'x'; half], vec![b'y'; half + 1]]))
        .unwrap();
    assert_eq!(over.status(), Some(413));
}

/// With `allow_on_headers_stop_iteration`, held headers and a held body
/// that outgrows the buffer get Envoy's 413, and no upstream request was
/// opened to reset. Without it, the headers' pause stops everything: the body
/// is buffered with back-pressure (no 413) and no body callback comes.
#[test]
fn buffer_limit_with_held_headers_does_not_reset_upstream() {
    let guest = ALWAYS_PAUSE_BODY.replace("HEADERS", "i32.const 1");
    let req = Request::post("/").chunks([vec![b'x'; 60], vec![b'y'; 60]]);
    let h = host(&guest)
        .buffer_limit(100)
        .allow_on_headers_stop_iteration(true)
        .build()
        .unwrap();
    let o = h.start_vm().unwrap().send(&req).unwrap();
    assert_eq!(o.status(), Some(413));
    assert!(!o.headers_forwarded && !o.upstream_reset);

    let h = host(&guest).buffer_limit(100).build().unwrap();
    let o = h.start_vm().unwrap().send(&req).unwrap();
    assert_eq!(o.status(), None);
    assert!(o.stalled && !o.headers_forwarded, "{o:?}");
    assert!(!o.callback_names().contains(&"proxy_on_request_body"));
}

/// Probes the status of reading `:path` in each callback, and of adding a
/// header in the body callback and in `proxy_on_log`, where it also reads
/// the request trailers.
const HEADER_ACCESS: &str = r#"
  (data (i32.const 2048) ":path")
  (data (i32.const 2060) "x-added")
  (func $read_path (result i32)
    (call $get_header (i32.const 0) (i32.const 2048) (i32.const 5) (i32.const 0) (i32.const 4)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $probe32 (call $read_path))
    (call $probe32 (i32.load (i32.const 4)))
    i32.const 0)
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (call $probe32 (call $read_path))
    (call $probe32 (call $add_header (i32.const 0) (i32.const 2060) (i32.const 7) (i32.const 2060) (i32.const 7)))
    (call $probe32 (call $get_pairs (i32.const 0) (i32.const 0) (i32.const 4)))
    i32.const 0)
  (func (export "proxy_on_log") (param i32)
    (call $probe32 (call $read_path))
    (call $probe32 (i32.load (i32.const 4)))
    (call $probe32 (call $add_header (i32.const 0) (i32.const 2060) (i32.const 7) (i32.const 2060) (i32.const 7)))
    (call $probe32 (call $get_header (i32.const 1) (i32.const 2048) (i32.const 5) (i32.const 0) (i32.const 4))))
"#;

/// In Envoy's access-log phase (`proxy_on_log`) the request headers can be
/// read again, not changed, and there are no request trailers to read.
#[test]
fn request_headers_are_accessible_in_the_headers_callback_and_readable_in_on_log() {
    let h = host(HEADER_ACCESS).build().unwrap();
    let mut vm = h.start_vm().unwrap();
    let o = vm
        .send(&Request::post("/abc").body("{}").capture_forwarded())
        .unwrap();
    // headers: Ok and 4 bytes ("/abc"); body: BadArgument x3; log: Ok and
    // 4 bytes, BadArgument to add, NotFound for the trailers.
    assert_eq!(probes(&h), vec![0, 4, 2, 2, 2, 0, 4, 2, 1]);
    assert_eq!(o.hostcall_count("proxy_get_header_map_value"), 4);
    let fwd = o.forwarded_headers.unwrap();
    assert!(!fwd.iter().any(|(k, _)| k == "x-added"));
}

/// With `allow_on_headers_stop_iteration` and the headers held, Envoy still
/// has them in the body callbacks: readable and changeable there, and the
/// change goes upstream with them.
#[test]
fn held_headers_stay_accessible_in_the_body_callbacks_where_envoy_allows_holding() {
    let guest = HEADER_ACCESS.replacen(
        "    i32.const 0)\n  (func (export \"proxy_on_request_body\")",
        "    i32.const 1)\n  (func (export \"proxy_on_request_body\")",
        1,
    );
    assert_ne!(guest, HEADER_ACCESS, "the headers callback pauses");
    let h = host(&guest)
        .allow_on_headers_stop_iteration(true)
        .build()
        .unwrap();
    let o = h
        .start_vm()
        .unwrap()
        .send(&Request::post("/abc").body("{}").capture_forwarded())
        .unwrap();
    // headers: Ok, 4 bytes; body: Ok (read), Ok (add), Ok (pairs); log: as
    // without holding.
    assert_eq!(probes(&h), vec![0, 4, 0, 0, 0, 0, 4, 2, 1]);
    let fwd = o.forwarded_headers.unwrap();
    assert!(fwd.iter().any(|(k, _)| k == "x-added"), "{fwd:?}");
}

/// Continues the first body chunk; replies 400 during the second and still
/// returns Continue (the reply must win); probes the callbacks' order.
const REPLY_ON_SECOND: &str = r#"
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 2048) "{\"violation\":\"malformed\",\"offset\":7,\"limit\":null}")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (i32.eq (global.get $calls) (i32.const 2))
      (then
        (call $probe32 (call $reply (i32.const 400) (i32.const 0) (i32.const 0)
          (i32.const 2048) (i32.const 49) (i32.const 0) (i32.const 0) (i32.const -1)))))
    i32.const 0)
  (func (export "proxy_on_log") (param i32) (call $probe (i64.const 101)))
  (func (export "proxy_on_done") (param i32) (result i32) (call $probe (i64.const 102)) i32.const 1)
  (func (export "proxy_on_delete") (param i32) (call $probe (i64.const 103)))
"#;

#[test]
fn local_reply_takes_effect_on_return_and_resets_the_upstream() {
    let h = host(REPLY_ON_SECOND).build().unwrap();
    let mut vm = h.start_vm().unwrap();
    let o = vm
        .send(&Request::post("/").chunks([vec![b'a'; 5], vec![b'b'; 6], vec![b'c'; 7]]))
        .unwrap();
    let r = o.local_reply.as_ref().expect("plugin reply");
    assert_eq!((r.status, r.source), (400, ReplySource::Plugin));
    // Chunk 1 went upstream; chunk 2 did not, although its callback returned Continue.
    assert_eq!(o.forwarded_bytes, 5);
    assert!(o.upstream_reset && !o.completed);
    let s = o.summary();
    assert_eq!(s.violation.as_deref(), Some("malformed"));
    assert_eq!((s.offset, s.limit), (Some(7), None));
    // No third body callback; end of stream is log → done → delete.
    assert_eq!(
        o.callback_names(),
        vec![
            "proxy_on_request_headers",
            "proxy_on_request_body",
            "proxy_on_request_body",
            "proxy_on_log",
            "proxy_on_done",
            "proxy_on_delete"
        ]
    );
    assert_eq!(probes(&h), vec![0, 101, 102, 103]);
}

#[test]
fn reply_in_headers_forwards_nothing_and_skips_the_body() {
    let funcs = r#"
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $reply (i32.const 415) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const -1)))
        i32.const 0)
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (call $probe (i64.const 1)) i32.const 0)
    "#;
    let h = host(funcs).build().unwrap();
    let mut vm = h.start_vm().unwrap();
    let o = vm.send(&Request::post("/").body("{}")).unwrap();
    assert_eq!(o.status(), Some(415));
    assert!(!o.headers_forwarded && !o.upstream_reset && o.forwarded_bytes == 0);
    assert!(probes(&h).is_empty(), "body callback must not run");
}

#[test]
fn normal_end_of_stream_order_is_log_done_delete() {
    let h = host(REPLY_ON_SECOND).build().unwrap();
    let mut vm = h.start_vm().unwrap();
    let o = vm.send(&Request::post("/").body("x")).unwrap();
    assert!(o.completed);
    assert_eq!(probes(&h), vec![101, 102, 103]);
}

/// Pauses in the headers callback, continues in every body callback.
const PAUSE_HEADERS_CONTINUE_BODY: &str = r#"
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) i32.const 0)
"#;

#[test]
fn headers_paused_are_released_by_a_later_continue() {
    let h = host(PAUSE_HEADERS_CONTINUE_BODY)
        .allow_on_headers_stop_iteration(true)
        .build()
        .unwrap();
    let mut vm = h.start_vm().unwrap();
    let o = vm.send(&Request::post("/").body("{}")).unwrap();
    assert!(o.headers_forwarded && o.completed);
    // Headers-only request paused at end of stream: stalled, nothing forwarded.
    let o = vm.send(&Request::get("/")).unwrap();
    assert!(o.stalled && !o.headers_forwarded);
}

/// Envoy's default: a `Pause` from the headers callback becomes
/// StopAllIterationAndWatermark, so the body callback that would continue
/// the request never comes, and the request stalls (proxy-wasm-cpp-host
/// converts every headers StopIteration so since 2020). A `continue_stream`
/// made in that same callback still continues it.
#[test]
fn headers_paused_stop_the_body_callbacks_too_by_default() {
    let (_h, mut vm) = start_with_imports("", PAUSE_HEADERS_CONTINUE_BODY);
    let o = vm
        .send(&Request::post("/").chunks(["{", "}"]).trailer("x-t", "1"))
        .unwrap();
    assert!(o.stalled && !o.completed && !o.headers_forwarded, "{o:?}");
    assert_eq!(o.body_bytes_read, 0);
    assert_eq!(o.callback_names(), ["proxy_on_request_headers"]);
    let resumed = r#"
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $continue (i32.const 0))) i32.const 1)
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) i32.const 0)
    "#;
    let (_h, mut vm) = start_with_imports("", resumed);
    let o = vm.send(&Request::post("/").body("{}")).unwrap();
    assert!(o.completed && o.headers_forwarded, "{o:?}");
}

const TRAILERS: &str = r#"
  (data (i32.const 2048) "x-checksum")
  (func $read (result i32)
    (call $get_header (i32.const 1) (i32.const 2048) (i32.const 10) (i32.const 0) (i32.const 4)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (call $probe32 (call $read)) i32.const 1)
  (func (export "proxy_on_request_trailers") (param i32 i32) (result i32)
    (call $probe32 (call $read))
    (call $probe32 (i32.load (i32.const 4)))
    i32.const 0)
"#;

#[test]
fn trailers_follow_a_body_without_end_of_stream() {
    let h = host(TRAILERS).build().unwrap();
    let mut vm = h.start_vm().unwrap();
    let req = Request::post("/")
        .chunks(["ab", "cd"])
        .trailer("X-Checksum", "abc123");
    let o = vm.send(&req).unwrap();
    let body_calls: Vec<&json_sanitizer_host::CallbackRecord> = o
        .callbacks
        .iter()
        .filter(|c| c.name == "proxy_on_request_body")
        .collect();
    assert_eq!(body_calls.len(), 2);
    assert!(
        body_calls.iter().all(|c| c.args[1] == 0),
        "no end_of_stream on the body"
    );
    // Trailer map: BadArgument in the body callbacks, readable in the trailers callback.
    assert_eq!(probes(&h), vec![2, 2, 0, 6]);
    assert!(o.trailers_forwarded && o.completed);
    assert_eq!(o.forwarded_bytes, 4);
}

#[test]
fn continue_stream_during_a_paused_callback_acts_as_continue() {
    let funcs = r#"
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
        (call $probe32 (call $continue (i32.const 0))) i32.const 1)
    "#;
    let h = host(funcs).build().unwrap();
    let mut vm = h.start_vm().unwrap();
    let o = vm.send(&Request::post("/").chunks(["ab", "cd"])).unwrap();
    assert_eq!(probes_i(&h), vec![0, 0]);
    assert_eq!(o.forwarded_bytes, 4);
    assert!(o.completed);
}

#[test]
fn unreadable_body_reports_a_size_but_returns_no_bytes() {
    let funcs = r#"
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
      (func (export "proxy_on_request_body") (param $c i32) (param $size i32) (param i32) (result i32)
        (i32.store (i32.const 0) (i32.const 0))
        (i32.store (i32.const 4) (i32.const 0))
        (call $probe32 (local.get $size))
        (call $probe32 (call $get_buffer (i32.const 0) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
        (call $probe32 (i32.load (i32.const 0)))
        (call $probe32 (i32.load (i32.const 4)))
        i32.const 0)
    "#;
    let h = host(funcs).build().unwrap();
    let mut vm = h.start_vm().unwrap();
    let o = vm
        .send(&Request::post("/").body("{\"a\":1}").unreadable_body())
        .unwrap();
    assert_eq!(probes(&h), vec![7, 0, 0, 0]);
    assert_eq!(o.body_bytes_read, 0);
    // The same body readable: pointer and size come back.
    let o = vm.send(&Request::post("/").body("{\"a\":1}")).unwrap();
    let p = probes(&h);
    assert_eq!((p[4], p[5], p[7]), (7, 0, 7));
    assert_ne!(p[6], 0);
    assert_eq!(o.body_bytes_read, 7);
}

/// Reads past the end of the body buffer answer as proxy-wasm-cpp-host
/// does: cut at the end, and from a start past it Ok with nothing (a null
/// pointer and a zero size written over whatever the slots held).
#[test]
fn body_reads_past_the_end_are_cut_or_empty_not_errors() {
    let funcs = r#"
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
      (func (export "proxy_on_request_body") (param $c i32) (param $size i32) (param i32) (result i32)
        ;; From 3 for 100 bytes: the last size - 3.
        (call $probe32 (call $get_buffer (i32.const 0) (i32.const 3) (i32.const 100) (i32.const 0) (i32.const 4)))
        (call $probe32 (i32.load (i32.const 4)))
        ;; From one past the end, with garbage in the return slots.
        (i32.store (i32.const 0) (i32.const 0x5555))
        (i32.store (i32.const 4) (i32.const 0x5555))
        (call $probe32 (call $get_buffer (i32.const 0) (i32.add (local.get $size) (i32.const 1))
          (i32.const 10) (i32.const 0) (i32.const 4)))
        (call $probe32 (i32.load (i32.const 0)))
        (call $probe32 (i32.load (i32.const 4)))
        i32.const 0)
    "#;
    let h = host(funcs).build().unwrap();
    let o = h
        .start_vm()
        .unwrap()
        .send(&Request::post("/").body("{\"a\":1}"))
        .unwrap();
    assert_eq!(probes(&h), vec![0, 4, 0, 0, 0]);
    assert_eq!(o.body_bytes_read, 4);
}

/// Envoy reads every callback status but 0 as a stop: a body callback that
/// returns 2 (StopIterationAndWatermark in Envoy's numbering) holds the body
/// like a pause, and one that never returns 0 leaves the request stalled.
#[test]
fn callback_statuses_other_than_zero_stop_the_stream() {
    let funcs = r#"
      (global $calls (mut i32) (i32.const 0))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
      (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
        (call $probe32 (local.get $size))
        (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
        (if (result i32) (i32.eq (global.get $calls) (i32.const 1))
          (then (i32.const 2)) (else (i32.const 0))))
    "#;
    let (h, mut vm) = start_with_imports("", funcs);
    let o = vm.send(&Request::post("/").chunks(["ab", "cd"])).unwrap();
    // The second call sees the held chunk with the new one.
    assert_eq!(probes(&h), vec![2, 4]);
    assert!(o.completed && o.forwarded_bytes == 4, "{o:?}");

    let stray = r#"
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) i32.const 7)
    "#;
    let (_h, mut vm) = start_with_imports("", stray);
    let o = vm.send(&Request::post("/").body("x")).unwrap();
    assert!(o.stalled && o.forwarded_bytes == 0, "{o:?}");
}

/// A local reply whose header map is malformed is still sent, without
/// headers, as Envoy does (it reads such a map as empty); the status is OK.
#[test]
fn a_local_reply_with_a_malformed_header_map_goes_out_without_headers() {
    let funcs = r#"
      (data (i32.const 2048) "\05\00\00\00\01")
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (call $probe32 (call $reply (i32.const 403) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 2048) (i32.const 5) (i32.const -1)))
        i32.const 0)
    "#;
    let (h, mut vm) = start_with_imports("", funcs);
    let o = vm.send(&Request::get("/")).unwrap();
    assert_eq!(probes(&h), vec![0]);
    let reply = o.local_reply.expect("sent");
    assert_eq!(reply.status, 403);
    assert!(reply.headers.is_empty(), "{:?}", reply.headers);
}
