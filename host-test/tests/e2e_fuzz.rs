//! Randomised requests through the real `.wasm`: the filter never traps,
//! never stalls a request, and its verdict does not depend on chunking (and
//! equals the native inspector's).

mod plugin;
use json_sanitizer::inspector::{Inspector, JsonOptions, Limits, Numbers, REPORTABLE};
use json_sanitizer::samples::{api_body, nested_arrays, wide_array};
use json_sanitizer_host::{Request, Verdict};
use plugin::{gzip, post, try_host, try_host_with, zlib};
use proptest::prelude::*;
use std::time::Duration;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Pretty-printed nested objects holding text in many scripts, indented by
/// 1 to 4 spaces (or a tab) a level: the shapes the wasm build's own vector
/// steps handle (runs of up to 31 spaces after a line break, four CJK
/// characters at a time), which native tests do not reach.
fn pretty_text(rng: &mut Rng) -> Vec<u8> {
    const TEXT: [&str; 12] = [
        "日本語",
        "テキスト",
        "\u{800}",
        "\u{D7FF}",
        "\u{E000}",
        "\u{FFFF}",
        "é",
        "😀",
        "a",
        " ",
        "\\u00e9",
        "\\\"",
    ];
    let unit = match rng.below(5) {
        0 => "\t".to_string(),
        n => " ".repeat(n as usize),
    };
    let depth = 1 + rng.below(12) as usize;
    let mut out = String::new();
    for level in 0..depth {
        out += "{\n";
        out += &unit.repeat(level + 1);
        out += "\"text\": \"";
        for _ in 0..rng.below(40) {
            out += *rng.pick(&TEXT[..]);
        }
        out += "\",\n";
        out += &unit.repeat(level + 1);
        out += "\"next\": ";
    }
    out += "[]";
    for level in (0..depth).rev() {
        out += "\n";
        out += &unit.repeat(level);
        out += "}";
    }
    out.into_bytes()
}

fn random_body(rng: &mut Rng) -> Vec<u8> {
    let mut body = match rng.below(9) {
        0 => api_body(rng.below(20_000) as usize),
        1 => nested_arrays(rng.below(300) as usize),
        2 => wide_array(rng.below(20_000) as usize),
        3 => (0..rng.below(3000)).map(|_| rng.next() as u8).collect(),
        4 => Vec::new(),
        5 => br#"{"a":"\ud83d\ude00","b":[1,2.5e3,-0,true,null],"c":{"d":"\u00e9"}}"#.to_vec(),
        6 => pretty_text(rng),
        7 => (0..rng.below(200))
            .map(|_| *rng.pick(b"{}[]\":,\\u0123456789eE.+- tfnlrsa\xC3\xA9\xED\xA0\x80\xF0\xFF"))
            .collect(),
        // What parsers read differently: repeated keys, lone surrogates,
        // numbers beyond a double's reach, a few of them in a row.
        _ => {
            let parts: Vec<&str> = (0..1 + rng.below(3))
                .map(|_| {
                    *rng.pick(&[
                        r#"{"id":1,"id":2}"#,
                        r#"{"role":"user","Role":"admin"}"#,
                        r#""\udc00x""#,
                        r#"{"\ud800":1}"#,
                        "9007199254740993",
                        "-1e400",
                        "[1.5,2]",
                    ])
                })
                .collect();
            format!("[{}]", parts.join(",")).into_bytes()
        }
    };
    // Mutations: a few random byte edits.
    for _ in 0..rng.below(4) {
        if body.is_empty() {
            break;
        }
        let at = rng.below(body.len() as u64) as usize;
        match rng.below(3) {
            0 => body[at] = rng.next() as u8,
            1 => {
                body.remove(at);
            }
            _ => body.insert(at, *rng.pick(b"{}[],:\"\\")),
        }
    }
    body
}

fn random_request(rng: &mut Rng) -> Request {
    let method = *rng.pick(&["POST", "PUT", "PATCH", "GET", "DELETE"]);
    let path = *rng.pick(&[
        "/",
        "/api/orders",
        "/upload/x",
        "/api/search?q=1",
        "/v1/legacy",
        "/api/bulk/1",
    ]);
    let body = random_body(rng);
    let mut req = Request::new(method, path).authority(rng.pick::<&str>(&[
        "api.example.com",
        "internal.example.com:8080",
        "",
    ]));
    for _ in 0..rng.below(3) {
        let ct = *rng.pick(&[
            "application/json",
            "text/plain",
            "application/vnd.api+json; charset=utf-8",
            "",
            "APPLICATION/JSON",
            "multipart/form-data; boundary=x",
        ]);
        req = req.content_type(ct);
    }
    if rng.chance(20) {
        req = req.header(
            "content-encoding",
            rng.pick::<&str>(&["gzip", "identity", "br, identity", ""]),
        );
    }
    // Compressed for real, which `on_encoded_body: inspect` decodes
    // (per-route.json), sometimes cut short.
    let body = if rng.chance(15) {
        let deflate = rng.chance(50);
        req = req.header("content-encoding", if deflate { "deflate" } else { "gzip" });
        let mut encoded = if deflate { zlib(&body) } else { gzip(&body) };
        if rng.chance(20) {
            encoded.truncate(rng.below(encoded.len() as u64 + 1) as usize);
        }
        encoded
    } else {
        body
    };
    if rng.chance(40) {
        req = req.header(
            "x-request-id",
            &format!("req-{}\u{7f} {}", rng.next(), rng.below(10)),
        );
    }
    if rng.chance(30) {
        req = req.header("x-api-key", &format!("key-{}", rng.below(5)));
    }
    req = req.body(&body);
    match rng.below(4) {
        0 => req = req.with_content_length(),
        1 => req = req.header("content-length", &rng.next().to_string()),
        2 => req = req.header("content-length", "not-a-number"),
        _ => {}
    }
    if !body.is_empty() && rng.chance(70) {
        req = req.chunk_size(1 + rng.below(5000) as usize);
    }
    // An empty chunked body: headers that do not end the stream, then an
    // empty last chunk.
    if body.is_empty() && rng.chance(30) {
        req = req.chunks([b""]);
    }
    // Half end as HTTP/1 bodies end, in a callback of their own.
    if rng.chance(50) {
        req = req.end_apart();
    }
    if rng.chance(10) {
        req = req.trailer("x-trailer", "1");
    }
    if rng.chance(3) {
        req = req.unreadable_body();
    }
    // Hostile host answers: no header map, a refused local reply.
    if rng.chance(2) {
        req = req.refuse_header_map();
    }
    if rng.chance(3) {
        req = req.refuse_local_reply();
    }
    if rng.chance(50) {
        req = req.property(
            "source.address",
            format!("10.0.0.{}:{}", rng.below(4), rng.below(65536)),
        );
    }
    req
}

/// Of the fixed seed's requests, 17 are refused with a true length after
/// part of their body went up: enough to show the check above ran.
const CUT_OFF_FLOOR: usize = 10;

#[test]
fn ten_thousand_random_requests_never_trap_or_stall() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut configs: Vec<String> = [
        "default.json",
        "strict-api.json",
        "report-only.json",
        "per-route.json",
    ]
    .iter()
    .map(|n| std::fs::read_to_string(dir.join(n)).unwrap())
    .collect();
    configs.push(r#"{"hold_bytes":0,"breaker":{"enabled":true,"consecutive_failures":2,"scope":"source_ip"}}"#.into());
    configs.push(r#"{"limits":{"max_depth":null,"max_body_bytes":null},"json":{"allow_bom":true,"allow_empty_body":true,"allow_lone_surrogates":true,"duplicate_keys":"allow"}}"#.into());
    configs.push(r#"{"on_other_content_type":"sniff","on_missing_content_type":"sniff","json":{"numbers":"interoperable","report_only":["duplicate_key","lone_surrogate","number_out_of_range"]}}"#.into());
    configs.push(r#"{"limits":{"max_array_elements":50},"json":{"lines":true}}"#.into());
    // The least memory bound, under which key-heavy bodies are overloaded.
    configs.push(r#"{"max_memory_bytes":1048576,"limits":{"max_object_entries":null}}"#.into());
    // Headers held too, in an Envoy that allows it (the last configuration).
    configs.push(r#"{"hold_headers":true,"hold_bytes":4096}"#.into());
    let last = configs.len() - 1;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let per_config = 10_000 / configs.len() + 1;
    let mut total = 0;
    let mut resets = 0;
    let mut reported = 0;
    // Refused bodies of a true length that had started going up.
    let mut cut_off = 0;
    // How the requests ended, so that the run shows it reached each way.
    let (mut passed, mut at_headers, mut in_body, mut shed) = (0, 0, 0, 0);
    for (i, config) in configs.iter().enumerate() {
        let allow = i == last;
        let (h, mut vm) = try_host_with(config, |b| b.allow_on_headers_stop_iteration(allow))
            .unwrap_or_else(|e| panic!("{e:#}"));
        for _ in 0..per_config {
            let req = random_request(&mut rng);
            let o = vm.send(&req).unwrap();
            assert!(o.trap.is_none(), "trap {:?} on {req:?}", o.trap);
            assert!(!o.stalled, "stalled on {req:?}");
            // A refused reply ends in a reset stream instead.
            let refused = req.refuse.local_reply && o.stream_reset;
            resets += usize::from(refused);
            assert!(
                o.completed || o.reply().is_some() || refused,
                "neither passed nor answered: {req:?}"
            );
            // A refused request never reaches the upstream as it was sent:
            // of a body whose `content-length` is true, never every
            // declared byte (an HTTP/1 upstream would have it whole, and
            // answer it, before the reset).
            if (o.reply().is_some() || refused)
                && declares_its_length(&req)
                && o.forwarded_bytes > 0
            {
                assert!(
                    o.forwarded_bytes < req.body_len() as u64,
                    "a refused body went up whole: {req:?}"
                );
                cut_off += 1;
            }
            // What the access log shows: a reply names its violation in its
            // details and in the filter state; a request that passed names
            // one only in report mode or for a report_only kind.
            let noted = o.filter_state("wasm.json_sanitizer.violation");
            if let Some(reply) = &o.local_reply {
                let doc = reply.json().expect("problem+json");
                let kind = doc["violation"].as_str().expect("a violation");
                assert!((400..=599).contains(&reply.status));
                assert_eq!(reply.details, format!("json_sanitizer_{kind}"));
                assert_eq!(noted.as_deref(), Some(kind), "{req:?}");
                match kind {
                    "breaker_open" => shed += 1,
                    _ if doc["offset"].is_u64() => in_body += 1,
                    _ if o.body_bytes_read == 0 => at_headers += 1,
                    _ => {}
                }
            } else if o.completed && !config.contains("\"report\"") {
                match noted.as_deref() {
                    None => {}
                    Some(kind)
                        if config.contains("report_only")
                            && REPORTABLE.iter().any(|k| k.as_str() == kind) =>
                    {
                        assert!(o.logged("would reject"), "{req:?}");
                        reported += 1;
                    }
                    Some(kind) => panic!("{kind} noted on a request that passed: {req:?}"),
                }
            }
            passed += usize::from(o.completed);
            h.clock().advance(Duration::from_millis(rng.below(2000)));
            total += 1;
        }
    }
    assert!(total >= 10_000);
    assert!(resets > 10, "refused replies exercised: {resets}");
    assert!(reported > 10, "report_only exercised: {reported}");
    assert!(cut_off > CUT_OFF_FLOOR, "refused part-way up: {cut_off}");
    eprintln!(
        "passed {passed}, refused at the headers {at_headers}, in the body {in_body}, shed {shed}, part-way up {cut_off}"
    );
    assert!(passed > 2000, "passed: {passed}");
    assert!(at_headers > 1000, "refused at the headers: {at_headers}");
    assert!(in_body > 1000, "refused in the body: {in_body}");
    assert!(shed > 500, "shed by an open breaker: {shed}");
}

/// Whether `req`'s `content-length` is its body's length.
fn declares_its_length(req: &Request) -> bool {
    let len = req.body_len().to_string();
    req.headers
        .iter()
        .any(|(name, value)| name == "content-length" && *value == len)
}

fn document() -> impl Strategy<Value = Vec<u8>> {
    (any::<u64>(), 0usize..5).prop_map(|(seed, kind)| {
        let mut rng = Rng(seed | 1);
        match kind {
            0 => api_body(500 + rng.below(5000) as usize),
            _ => random_body(&mut rng),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The wasm's verdict, kind and offset do not depend on chunking or the
    /// hold window, and equal the native inspector's: under the default
    /// limits, and under tight ones with interoperable numbers, where every
    /// limit and `number_out_of_range` are within reach. (The wasm build
    /// runs its own copy of the fast path: simd128 masks, no leads, no
    /// guessed number ends.)
    #[test]
    fn wasm_verdicts_are_chunking_invariant_and_match_native(
        body in document(),
        a in 1usize..3000,
        b in 1usize..64,
        tight in 1u64..40,
    ) {
        // An empty body is no body: Envoy ends the stream with the headers
        // and the filter passes it untouched (the `empty_body` violation is
        // for a body stream that carries only whitespace).
        prop_assume!(!body.is_empty());
        let limits = Limits {
            max_body_bytes: Some(body.len() as u64 - tight.min(body.len() as u64) / 8),
            max_depth: Some(2 + tight % 3),
            max_array_elements: Some(2 + tight % 7),
            max_object_entries: Some(3 + tight),
            max_key_bytes: Some(tight),
            max_string_bytes: Some(tight + 10),
            max_number_chars: Some(2 + tight / 2),
            max_exponent_digits: Some(3 + tight % 3),
            max_containers: Some(3 + tight),
        };
        let interoperable = JsonOptions { numbers: Numbers::Interoperable, ..JsonOptions::default() };
        let tight_config = serde_json::json!({
            "hold_bytes": 0,
            "limits": {
                "max_body_bytes": limits.max_body_bytes, "max_depth": limits.max_depth,
                "max_array_elements": limits.max_array_elements,
                "max_object_entries": limits.max_object_entries,
                "max_key_bytes": limits.max_key_bytes, "max_string_bytes": limits.max_string_bytes,
                "max_number_chars": limits.max_number_chars,
                "max_exponent_digits": limits.max_exponent_digits,
                "max_containers": limits.max_containers,
            },
            "json": {"numbers": "interoperable"},
        })
        .to_string();
        let default_verdict = Inspector::check(&Limits::default(), &JsonOptions::default(), &body);
        let tight_verdict = Inspector::check(&limits, &interoperable, &body);
        let defaults = |hold: u32| format!(r#"{{"hold_bytes":{hold}}}"#);
        for (config, chunk, native) in [
            (defaults(65536), a, &default_verdict),
            (defaults(0), b, &default_verdict),
            (defaults(16), a, &default_verdict),
            (tight_config.clone(), a, &tight_verdict),
            (tight_config.clone(), b, &tight_verdict),
        ] {
            let (_h, mut vm) = try_host(&config).unwrap();
            let s = vm.send(&post(&body).chunk_size(chunk)).unwrap().summary();
            let expected = match native {
                Ok(()) => (Verdict::Pass, None, None),
                Err(v) => (Verdict::Reject, Some(v.kind.as_str().to_string()), v.offset),
            };
            prop_assert_eq!((s.verdict, s.violation.clone(), s.offset), expected, "{}", config);
        }
    }
}
