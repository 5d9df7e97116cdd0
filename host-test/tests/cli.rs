//! The `json-sanitizer-host` binary as a user runs it: the output formats of
//! `check`, `replay`, `demo` and `bench`, which scripts parse, and the exit
//! codes (0 all pass, 1 any rejected, 2 a usage, configuration or plugin
//! error with one line on stderr and no backtrace).

use json_sanitizer::inspector::{Inspector, JsonOptions, Limits};
use json_sanitizer_host::engine;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod process;
use process::output_with_stdin;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_json-sanitizer-host");

/// The fields of a `check` line, in the documented order.
const CHECK_FIELDS: [&str; 6] = ["file", "verdict", "status", "violation", "offset", "limit"];

/// The fields of a `replay` line, in the documented order.
const REPLAY_FIELDS: [&str; 8] = [
    "line",
    "verdict",
    "status",
    "violation",
    "headers",
    "body",
    "forwarded_bytes",
    "upstream_reset",
];

fn workspace() -> PathBuf {
    engine::workspace_root()
}

fn example(path: &str) -> PathBuf {
    workspace().join("examples").join(path)
}

/// Runs the binary with `args` (and `stdin`), using the plugin this test
/// process built, so that each run does not ask cargo again.
fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let plugin = engine::ensure_plugin().expect("the plugin builds");
    output_with_stdin(
        Command::new(BIN)
            .args(args)
            .current_dir(workspace())
            .env(engine::WASM_ENV, plugin)
            .env("RUST_BACKTRACE", "1"),
        stdin.unwrap_or_default(),
    )
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

/// Stdout as one JSON object per line, each with exactly `fields` in order.
fn json_lines(out: &Output, fields: &[&str]) -> Vec<Value> {
    let text = String::from_utf8(out.stdout.clone()).expect("UTF-8 stdout");
    text.lines()
        .map(|line| {
            let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(line)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            // serde_json's map is sorted; the order is checked on the raw text.
            let mut at = 0;
            for f in fields {
                let quoted = format!("\"{f}\":");
                let found = line[at..].find(&quoted).unwrap_or_else(|| {
                    panic!("`{f}` missing or out of order in {line}");
                });
                at += found + quoted.len();
            }
            assert_eq!(keys.len(), fields.len(), "extra fields in {line}");
            serde_json::from_str(line).unwrap()
        })
        .collect()
}

/// The stderr contract for exit code 2: one line, prefixed, no backtrace.
fn assert_one_line_error(out: &Output, mentions: &str) {
    assert_eq!(code(out), 2, "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    assert!(lines[0].starts_with("json-sanitizer-host: "), "{err}");
    assert!(lines[0].contains(mentions), "`{mentions}` not in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no partial output on an error");
}

/// The `check` line the native inspector predicts under the default
/// configuration (status 400 for every JSON violation there).
fn predicted(file: &str, body: &[u8]) -> Value {
    match Inspector::check(&Limits::default(), &JsonOptions::default(), body) {
        Ok(()) => serde_json::json!({"file": file, "verdict": "pass", "status": null,
            "violation": null, "offset": null, "limit": null}),
        Err(v) => serde_json::json!({"file": file, "verdict": "reject", "status": 400,
            "violation": v.kind.as_str(), "offset": v.offset, "limit": v.limit}),
    }
}

fn temp_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn check_prints_one_verdict_per_file_as_the_inspector_judges() {
    let files = [
        "examples/requests/good.json",
        "examples/requests/too-deep.json",
        "examples/requests/duplicate-key.json",
        "examples/requests/malformed.json",
        "examples/requests/lone-surrogate.json",
        "examples/requests/trailing-garbage.json",
    ];
    let mut args = vec!["check"];
    args.extend(files);
    let out = run(&args, None);
    assert_eq!(code(&out), 1, "some are rejected: exit 1");
    let lines = json_lines(&out, &CHECK_FIELDS);
    assert_eq!(lines.len(), files.len());
    for (line, file) in lines.iter().zip(files) {
        let body = std::fs::read(workspace().join(file)).unwrap();
        assert_eq!(*line, predicted(file, &body));
    }
    // Both verdicts occur.
    assert_eq!(lines[0]["verdict"], "pass");
    assert_eq!(lines[1]["verdict"], "reject");

    let good = run(&["check", "examples/requests/good.json"], None);
    assert_eq!(code(&good), 0, "all pass: exit 0");
    assert_eq!(json_lines(&good, &CHECK_FIELDS).len(), 1);
}

#[test]
fn check_reads_stdin_and_gives_the_same_verdict_in_any_chunking() {
    let body = br#"{"user": {"name": "x", "role": "user", "ro\u006ce": "admin"}}"#;
    let expected = predicted("-", body);
    assert_eq!(expected["violation"], "duplicate_key");
    for chunk in [None, Some("1"), Some("7")] {
        let mut args = vec!["check"];
        if let Some(n) = chunk {
            args.extend(["--chunk", n]);
        }
        args.push("-");
        let out = run(&args, Some(body));
        assert_eq!(code(&out), 1);
        assert_eq!(
            json_lines(&out, &CHECK_FIELDS),
            std::slice::from_ref(&expected),
            "{chunk:?}"
        );
    }
}

#[test]
fn check_flags_reach_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_file(
        dir.path(),
        "small.json",
        br#"{"limits": {"max_body_bytes": 64}, "on_other_content_type": "reject",
             "rules": [{"name": "uploads", "match": {"path_prefix": "/upload"}, "skip": true}]}"#,
    );
    let body = format!("[{}1]", "1,".repeat(40));
    let big = temp_file(dir.path(), "big.json", body.as_bytes());
    let check = |extra: &[&str]| {
        let mut args = vec!["check", "--config", &config];
        args.extend(extra);
        args.push(&big);
        let out = run(&args, None);
        json_lines(&out, &CHECK_FIELDS).remove(0)
    };

    // With content-length the filter refuses from the headers: no offset.
    let early = check(&[]);
    assert_eq!(early["violation"], "body_too_large");
    assert_eq!(early["status"], 413);
    assert_eq!(early["limit"], 64);
    assert_eq!(early["offset"], Value::Null);
    // Without it, while streaming: the first byte over the limit.
    let streamed = check(&["--no-content-length", "--chunk", "10"]);
    assert_eq!(streamed["violation"], "body_too_large");
    assert_eq!(streamed["offset"], 64);
    // The content type and the path are the ones given.
    let text = check(&["--content-type", "text/plain"]);
    assert_eq!(text["violation"], "unsupported_media_type");
    assert_eq!(text["status"], 415);
    let skipped = check(&["--path", "/upload/big"]);
    assert_eq!(skipped["verdict"], "pass");

    // An empty file is no body with a content-length (0, which ends the
    // stream with the headers, as HTTP/1 does) and an empty chunked body
    // without one.
    let empty = temp_file(dir.path(), "empty.json", b"");
    let verdict = |extra: &[&str]| {
        let mut args = vec!["check"];
        args.extend(extra);
        args.push(&empty);
        json_lines(&run(&args, None), &CHECK_FIELDS).remove(0)
    };
    assert_eq!(verdict(&[])["verdict"], "pass");
    let chunked = verdict(&["--no-content-length"]);
    assert_eq!(
        (&chunked["violation"], &chunked["status"]),
        (&Value::from("empty_body"), &Value::from(400))
    );
}

/// `--method`, `--authority` and `-H` pick the rule of `per-route.json`, as
/// Envoy's request line and headers would.
#[test]
fn check_sends_the_method_authority_and_headers_given() {
    let dir = tempfile::tempdir().unwrap();
    let config = example("per-route.json");
    let garbage = temp_file(dir.path(), "garbage.json", b"garbage");
    let wide = format!("[{}0]", "0,".repeat(10_000));
    let wide = temp_file(dir.path(), "wide.json", wide.as_bytes());
    let check = |args: &[&str], file: &str| {
        let mut all = vec!["check", "--config", config.to_str().unwrap()];
        all.extend(args);
        all.push(file);
        json_lines(&run(&all, None), &CHECK_FIELDS).remove(0)
    };
    // Uploads skip POST and PUT, not PATCH.
    let upload = ["--path", "/upload/1"];
    assert_eq!(check(&upload, &garbage)["verdict"], "pass");
    let put = [&upload[..], &["--method", "PUT"]].concat();
    assert_eq!(check(&put, &garbage)["verdict"], "pass");
    let patch = [&upload[..], &["--method", "PATCH"]].concat();
    assert_eq!(check(&patch, &garbage)["violation"], "syntax_error");
    // The bulk import takes 10,001 elements only on its own authority.
    let bulk = ["--path", "/api/bulk/1"];
    assert_eq!(check(&bulk, &wide)["violation"], "array_too_long");
    let internal = [&bulk[..], &["--authority", "internal.example.com:8443"]].concat();
    assert_eq!(check(&internal, &wide)["verdict"], "pass");
    // A header reaches the plugin: the body is now gzip, which
    // per-route.json decodes, and `garbage` is not gzip; compressed, it is
    // judged as what it is.
    let gzip = ["-H", "Content-Encoding: gzip"];
    assert_eq!(check(&gzip, &garbage)["violation"], "malformed_encoding");
    let compress = |name: &str, body: &[u8]| {
        let gz = json_sanitizer_host::oci::reproducible::gzip(body).unwrap();
        temp_file(dir.path(), name, &gz)
    };
    let garbage_gz = compress("garbage.json.gz", b"garbage");
    assert_eq!(check(&gzip, &garbage_gz)["violation"], "syntax_error");
    let good_gz = compress(
        "good.json.gz",
        &std::fs::read(example("requests/good.json")).unwrap(),
    );
    assert_eq!(check(&gzip, &good_gz)["verdict"], "pass");
    // A header that is not `name: value`, or that an option sets, is a
    // usage error naming what to do.
    for (header, says) in [
        ("no colon", "no colon"),
        ("bad name(x): 1", "not a header name"),
        ("x-a: 1\r\nx-b: 2", "CR, LF or NUL"),
        (":path: /x", "--path"),
        ("Host: example.com", "--authority"),
        ("content-type: text/plain", "--content-type"),
        ("Content-Length: 3", "--no-content-length"),
    ] {
        let out = run(&["check", "-H", header, &garbage], None);
        assert_one_line_error(&out, says);
    }
}

/// A configuration with `hold_headers` stalls every inspected request in an
/// Envoy without `allow_on_headers_stop_iteration`, and `check` says so (a
/// reject without a status); with the flag, it runs as that Envoy would.
#[test]
fn check_runs_hold_headers_only_as_an_envoy_that_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = temp_file(dir.path(), "hold.json", br#"{"hold_headers": true}"#);
    let good = temp_file(dir.path(), "good.json", b"[1,2]");
    let bad = temp_file(dir.path(), "bad.json", b"[1,]");
    let check = |extra: &[&str], file: &str| {
        let mut args = vec!["check", "--config", &config];
        args.extend(extra);
        args.push(file);
        json_lines(&run(&args, None), &CHECK_FIELDS).remove(0)
    };
    let stalled = check(&[], &good);
    assert_eq!(
        (&stalled["verdict"], &stalled["status"]),
        (&Value::from("reject"), &Value::Null)
    );
    // Why, once a run, on stderr.
    let both = run(&["check", "--config", &config, &good, &bad], None);
    assert_eq!(json_lines(&both, &CHECK_FIELDS).len(), 2);
    let note = String::from_utf8_lossy(&both.stderr);
    assert_eq!(note.lines().count(), 1, "{note}");
    assert!(
        note.contains("left the request paused")
            && note.contains("--allow-on-headers-stop-iteration"),
        "{note}"
    );
    let allow = ["--allow-on-headers-stop-iteration"];
    let allowed = run(&["check", "--config", &config, allow[0], &good], None);
    assert!(allowed.stderr.is_empty(), "{allowed:?}");
    assert_eq!(check(&allow, &good)["verdict"], "pass");
    assert_eq!(check(&allow, &bad)["violation"], "syntax_error");
}

#[test]
fn check_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = temp_file(dir.path(), "bad.json", br#"{"limits": {"max_depth": 0}}"#);
    let good = "examples/requests/good.json";

    let missing = run(&["check", "no/such/body.json"], None);
    assert_one_line_error(&missing, "no/such/body.json");
    let refused = run(&["check", "--config", &bad, good], None);
    assert_one_line_error(&refused, "limits.max_depth");
    let no_config = run(&["check", "--config", "no/such/config.json", good], None);
    assert_one_line_error(&no_config, "no/such/config.json");
    let no_plugin = run(&["check", "--plugin", "no/such/plugin.wasm", good], None);
    assert_one_line_error(&no_plugin, "no/such/plugin.wasm");
    let not_wasm = run(&["check", "--plugin", good, good], None);
    assert_one_line_error(&not_wasm, good);
    let zero_chunk = run(&["check", "--chunk", "0", good], None);
    assert_one_line_error(&zero_chunk, "--chunk");
    let unknown = run(&["check", "--frobnicate", good], None);
    assert_one_line_error(&unknown, "--frobnicate");
    let no_files = run(&["check"], None);
    assert_one_line_error(&no_files, "FILE");
    let no_command = run(&[], None);
    assert_one_line_error(
        &no_command,
        "a command is required: demo, check, replay, bench, oci",
    );
    let no_oci_command = run(&["oci"], None);
    assert_one_line_error(
        &no_oci_command,
        "a command is required: build, push, pull, inspect",
    );
    let stdin_twice = run(&["check", "-", "-"], Some(b"{}"));
    assert_one_line_error(&stdin_twice, "more than once");
    for (flag, value) in [
        ("--method", ""),
        ("--method", "GET X"),
        ("--path", ""),
        ("--path", "api"),
        ("--path", "/a b"),
        ("--authority", ""),
        ("--authority", "a b"),
        ("--content-type", "application/json\r\nx-api-key: a"),
    ] {
        let out = run(&["check", flag, value, good], None);
        assert_one_line_error(&out, flag);
    }
}

#[test]
fn demo_bench_and_plugin_errors_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let refused = temp_file(dir.path(), "bad.json", br#"{"hold_bytes": -1}"#);
    let no_examples = run(&["demo", "--examples", "no/such/examples"], None);
    assert_one_line_error(&no_examples, "no/such/examples");
    let bad_bench = run(&["bench", "--config", &refused, "--time-ms", "1"], None);
    assert_one_line_error(&bad_bench, "hold_bytes");
    // A plugin named by the environment must be there.
    let out = output_with_stdin(
        Command::new(BIN)
            .args(["check", "examples/requests/good.json"])
            .current_dir(workspace())
            .env(engine::WASM_ENV, "no/such/plugin.wasm")
            .env("RUST_BACKTRACE", "1"),
        b"",
    );
    assert_one_line_error(
        &out,
        "JSON_SANITIZER_WASM=no/such/plugin.wasm is not a file",
    );
}

/// Output into a pipe whose reader has gone (`| head` after its lines) is
/// a one-line error and exit 2, not a panic with a backtrace.
#[test]
fn a_closed_stdout_is_one_line_and_exit_2_not_a_panic() {
    let plugin = engine::ensure_plugin().expect("the plugin builds");
    for args in [
        &["demo"][..],
        &["check", "examples/requests/good.json"],
        &["bench", "--time-ms", "1", "--corpus", "no/such/dir"],
    ] {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(workspace())
            .env(engine::WASM_ENV, &plugin)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command has loaded the plugin, let alone written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(
            last.starts_with("json-sanitizer-host: ") && last.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A plugin that traps on a later file: exit 2 with one line, and nothing
/// on stdout (not the earlier files' verdicts), as the README says.
#[test]
fn a_plugin_trap_is_one_line_and_no_partial_output() {
    const TRAPS_ON_BIG_BODIES: &str = r#"(module
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
      (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
        (if (i32.gt_u (local.get 1) (i32.const 10)) (then unreachable))
        i32.const 0))"#;
    let dir = tempfile::tempdir().unwrap();
    let plugin = temp_file(dir.path(), "traps.wat", TRAPS_ON_BIG_BODIES.as_bytes());
    let small = temp_file(dir.path(), "small.json", b"{}");
    let big = temp_file(dir.path(), "big.json", b"[1,2,3,4,5,6,7,8]");
    let out = run(&["check", "--plugin", &plugin, &small, &big, &small], None);
    assert_one_line_error(&out, "plugin trapped on");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("big.json") && !err.contains("wasm trap: wasm trap"),
        "{err}"
    );
    let scenario = temp_file(
        dir.path(),
        "s.jsonl",
        b"{\"body\": \"{}\"}\n{\"body\": \"[1,2,3,4,5,6,7,8]\"}\n",
    );
    let out = run(&["replay", "--plugin", &plugin, &scenario], None);
    assert_one_line_error(&out, "s.jsonl:2: plugin trapped");
}

/// The example scenario, line by line, against what `strict-api.json` and
/// the breaker's rules say must happen.
#[test]
fn replay_runs_the_example_breaker_scenario_on_the_virtual_clock() {
    let scenario = example("scenarios/breaker.jsonl");
    let config = example("strict-api.json");
    let out = run(
        &[
            "replay",
            "--config",
            config.to_str().unwrap(),
            "--workers",
            "2",
            scenario.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out, &REPLAY_FIELDS);
    let steps: Vec<Value> = std::fs::read_to_string(&scenario)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), steps.len());
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(line["line"], n + 1);
    }

    let config: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    let trips = config["breaker"]["consecutive_failures"].as_u64().unwrap() as usize;
    let open_ms = config["breaker"]["open_seconds"].as_u64().unwrap() * 1000;
    let at = |i: usize| steps[i]["at_ms"].as_u64().unwrap();
    let body_len = |i: usize| steps[i]["body"].as_str().map(str::len);

    // 1: a good order passes whole.
    assert_eq!(lines[0]["verdict"], "pass");
    assert_eq!(lines[0]["forwarded_bytes"], body_len(0).unwrap());
    assert_eq!(lines[0]["headers"], serde_json::json!({}));
    assert_eq!(lines[0]["body"], Value::Null);
    // 2..=1+trips: refusals from team-a on both workers, with the statuses
    // the configuration maps them to; the last one trips the breaker.
    for line in &lines[1..=trips] {
        let violation = line["violation"].as_str().unwrap();
        let status = &config["reply"]["statuses"][violation];
        assert_eq!(line["status"], *status, "{line}");
        assert_eq!(line["forwarded_bytes"], 0);
        assert_eq!(line["headers"]["content-type"], "application/problem+json");
        let problem: Value = serde_json::from_str(line["body"].as_str().unwrap()).unwrap();
        assert_eq!(problem["status"], *status);
        assert_eq!(problem["violation"], violation);
    }
    // Then team-a is shed on the other worker (shared data), with
    // Retry-After the whole seconds until half-open, rounded up.
    let shed = &lines[trips + 1];
    assert_eq!(shed["status"], 503);
    assert_eq!(shed["violation"], "breaker_open");
    let until_half_open = at(trips) + open_ms - at(trips + 1);
    let retry_after = until_half_open.div_ceil(1000).to_string();
    assert_eq!(shed["headers"]["retry-after"], retry_after.as_str());
    // team-b has its own breaker.
    let other = &lines[trips + 2];
    assert_eq!(steps[trips + 2]["headers"]["x-api-key"], "team-b");
    assert_eq!(other["verdict"], "pass");
    // After the open period a probe in chunks passes and closes it, and a
    // request with trailers passes too.
    assert!(at(trips + 3) >= at(trips) + open_ms);
    for i in [trips + 3, trips + 4] {
        assert_eq!(lines[i]["verdict"], "pass", "{}", lines[i]);
        assert_eq!(lines[i]["forwarded_bytes"], body_len(i).unwrap());
        assert_eq!(lines[i]["upstream_reset"], false);
    }
}

#[test]
fn replay_reads_stdin_and_reports_streaming_resets() {
    let body = format!("[{}0]", "0,".repeat(30));
    let line = serde_json::json!({"body": body, "chunks": [8, 8, 8, 8],
        "headers": {"content-type": "application/json"}});
    let dir = tempfile::tempdir().unwrap();
    let config = temp_file(
        dir.path(),
        "c.json",
        br#"{"hold_bytes": 16, "limits": {"max_array_elements": 20}}"#,
    );
    // One scenario line on stdin: its result, after exit code 1.
    let replay_refused = |line: &Value| {
        let out = run(
            &["replay", "--config", &config, "-"],
            Some(format!("{line}\n").as_bytes()),
        );
        assert_eq!(code(&out), 1);
        json_lines(&out, &REPLAY_FIELDS).remove(0)
    };
    let result = replay_refused(&line);
    assert_eq!(result["violation"], "array_too_long");
    // Element 21 starts at byte 41, past the 16-byte hold window: what was
    // forwarded by then (whole chunks) stays forwarded and the upstream is
    // reset instead of getting a clean reply.
    assert_eq!(result["upstream_reset"], true);
    let forwarded = result["forwarded_bytes"].as_u64().unwrap();
    assert!((16..=41).contains(&forwarded), "{result}");

    // An upstream that answers early: the reply cannot reach the client,
    // the stream is reset instead (a refusal without a status).
    let early = serde_json::json!({"body": body, "chunks": [8, 8, 8, 8],
        "headers": {"content-type": "application/json"}, "early_response_after": 16});
    let result = replay_refused(&early);
    assert_eq!(result["verdict"], "reject");
    assert_eq!(result["violation"], "array_too_long");
    assert_eq!(result["status"], Value::Null);
    assert_eq!(result["body"], Value::Null);
    assert_eq!(result["upstream_reset"], true);
}

/// `method` picks the rule: `per-route.json` skips POST and PUT to
/// `/upload`, not PATCH; a scenario where everything passes exits 0.
/// The scenario line the README shows replays as it says: with two
/// workers, in its chunks, with its trailers, and passes.
#[test]
fn the_readme_scenario_line_replays() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let after = readme
        .split_once("A scenario line is one request")
        .expect("the README's scenario section")
        .1;
    let block = after
        .split_once("```json\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a json block")
        .0;
    let line: Value = serde_json::from_str(block).expect("the scenario line is JSON");
    let out = run(
        &["replay", "--workers", "2", "-"],
        Some(format!("{line}\n").as_bytes()),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let result = json_lines(&out, &REPLAY_FIELDS).remove(0);
    assert_eq!(result["verdict"], "pass");
    assert_eq!(result["forwarded_bytes"], 12);
    let one_worker = run(&["replay", "-"], Some(format!("{line}\n").as_bytes()));
    assert_one_line_error(&one_worker, "worker");
}

#[test]
fn replay_exits_0_when_every_request_passes_and_honours_the_method() {
    let config = example("per-route.json");
    let replay = |method: &str| {
        let line = serde_json::json!({"method": method, "path": "/upload/1", "body": "garbage",
            "headers": {"content-type": "application/json"}, "trailers": {"x-checksum": "0"}});
        run(
            &["replay", "--config", config.to_str().unwrap(), "-"],
            Some(format!("{line}\n").as_bytes()),
        )
    };
    let put = replay("PUT");
    assert_eq!(code(&put), 0, "{}", String::from_utf8_lossy(&put.stderr));
    assert_eq!(json_lines(&put, &REPLAY_FIELDS)[0]["forwarded_bytes"], 7);
    let patch = replay("PATCH");
    assert_eq!(code(&patch), 1);
    assert_eq!(
        json_lines(&patch, &REPLAY_FIELDS)[0]["violation"],
        "syntax_error"
    );
}

#[test]
fn replay_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"body": "{}", "trailers": {"x-checksum": 1}}"#,
            "invalid type",
        ),
        (
            r#"{"worker": 1, "body": "{}"}"#,
            "worker 1 but only --workers 1",
        ),
        (
            r#"{"body": "{}", "body_file": "x.json"}"#,
            "either body or body_file",
        ),
        (r#"{"body": "{}", "colour": "red"}"#, "colour"),
        (
            r#"{"body": "{}", "chunks": [5]}"#,
            "chunks add up to more than the body's 2 bytes",
        ),
        (
            r#"{"body": "{}", "chunks": [18446744073709551615, 2]}"#,
            "chunks add up to more than the body's 2 bytes",
        ),
        (r#"{"body_file": "nowhere.json"}"#, "nowhere.json"),
        (
            r#"[5, 0, "GET", null, null, null, {}, null, null, null, null, null]"#,
            "a scenario line is a JSON object",
        ),
        (
            r#"{"at_ms": 18446744073709551615, "body": "{}"}"#,
            "beyond the clock's range",
        ),
        // The clock counts u64 nanoseconds from 1970 (18446744073709.55 ms)
        // and scenarios start at MANUAL_EPOCH_MS: at_ms 16746744073709 is the
        // last one it can show (accepted below).
        (
            r#"{"at_ms": 16746744073710, "body": "{}"}"#,
            "beyond the clock's range",
        ),
        (
            r#"{"body": "{}", "headers": {"x-a": "a\nb"}}"#,
            "holds CR, LF or NUL",
        ),
        (
            r#"{"body": "{}", "headers": {":path": "/evil"}}"#,
            "pseudo-headers",
        ),
        (
            r#"{"body": "{}", "headers": {"": "v"}}"#,
            "is not a header name",
        ),
        (
            r#"{"body": "{}", "trailers": {"x-b": "a\rb"}}"#,
            "trailers: the value of `x-b` holds CR, LF or NUL",
        ),
        (
            r#"{"body": "{}", "early_response_after": 0, "response_status": 600}"#,
            "response_status: 600 is not an HTTP status",
        ),
        (r#"{"method": ""}"#, "method: `` is not an HTTP method"),
        (r#"{"method": "GET X"}"#, "is not an HTTP method"),
        (r#"{"path": "api"}"#, "path: `api` is not a request path"),
        (r#"{"path": "/a b"}"#, "is not a request path"),
        (r#"{"authority": ""}"#, "authority: `` is not an authority"),
        (
            r#"{"source_address": "nowhere"}"#,
            "source_address: `nowhere` is not an IP address",
        ),
        (
            r#"{"body": "{}", "response_status": 101}"#,
            "response_status needs early_response_after",
        ),
        (
            r#"{"body": "{}", "early_response_after": 0, "response_status": 100}"#,
            "no informational response (100)",
        ),
    ];
    for (i, (bad, mentions)) in cases.iter().enumerate() {
        let path = temp_file(
            dir.path(),
            &format!("s{i}.jsonl"),
            format!("{{\"body\": \"{{}}\"}}\n{bad}\n").as_bytes(),
        );
        let out = run(&["replay", &path], None);
        assert_one_line_error(&out, mentions);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("s{i}.jsonl:2")), "{err}");
    }
    let not_json = run(&["replay", "-"], Some(b"{\"body\": \n"));
    assert_one_line_error(&not_json, "-:1");
    // The virtual clock only goes forward.
    let backwards = run(
        &["replay", "-"],
        Some(b"{\"at_ms\": 5000, \"body\": \"{}\"}\n{\"at_ms\": 0, \"body\": \"{}\"}\n"),
    );
    assert_one_line_error(
        &backwards,
        "-:2: at_ms 0 is before the previous line's 5000",
    );
    // The edges the errors above stand beside are accepted.
    let edges = run(
        &["replay", "-"],
        Some(
            concat!(
                r#"{"body": "{}", "early_response_after": 0, "response_status": 599, "source_address": "[::1]:8080"}"#,
                "\n",
                r#"{"at_ms": 16746744073709, "body": "{}", "source_address": "10.0.0.7"}"#,
                "\n"
            )
            .as_bytes(),
        ),
    );
    assert_eq!(
        code(&edges),
        0,
        "{}",
        String::from_utf8_lossy(&edges.stderr)
    );
    assert_eq!(json_lines(&edges, &REPLAY_FIELDS).len(), 2);
    // Errors of the command itself.
    let dir = tempfile::tempdir().unwrap();
    let refused = temp_file(dir.path(), "bad.json", br#"{"breaker": {"max_keys": 0}}"#);
    let scenario = temp_file(dir.path(), "ok.jsonl", b"{}\n");
    for (args, mentions) in [
        (vec!["replay", "--workers", "0", &scenario], "--workers"),
        (vec!["replay", "--workers", "257", &scenario], "--workers"),
        (
            vec!["replay", "no/such/scenario.jsonl"],
            "no/such/scenario.jsonl",
        ),
        (
            vec!["replay", "--config", &refused, &scenario],
            "breaker.max_keys",
        ),
        (
            vec!["replay", "--plugin", "no/such/plugin.wasm", &scenario],
            "no/such/plugin.wasm",
        ),
    ] {
        assert_one_line_error(&run(&args, None), mentions);
    }
    let most_workers = run(&["replay", "--workers", "256", &scenario], None);
    assert_eq!(
        code(&most_workers),
        0,
        "{}",
        String::from_utf8_lossy(&most_workers.stderr)
    );
}

#[test]
fn demo_shows_every_example_configuration_and_the_breaker() {
    let out = run(&["demo"], None);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for section in [
        "default.json",
        "strict-api.json",
        "report-only.json",
        "per-route.json",
    ] {
        assert!(text.contains(&format!("== {section} ==")), "{text}");
    }
    let row = |label: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| l.trim_start().starts_with(label))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    // Under default.json (the first section) each example body gets the
    // native inspector's verdict.
    for file in ["too-deep.json", "malformed.json", "duplicate-key.json"] {
        let body = std::fs::read(example(&format!("requests/{file}"))).unwrap();
        let kind = Inspector::check(&Limits::default(), &JsonOptions::default(), &body)
            .unwrap_err()
            .kind;
        let first = &row(file)[0];
        assert_eq!(first[1..4], ["reject", "400", kind.as_str()], "{first:?}");
    }
    assert!(
        text.contains(" time "),
        "the table has a time column: {text}"
    );
    assert!(
        !text.contains("TRAP") && !text.contains("STALLED"),
        "{text}"
    );
    // Size limits, from the headers and while streaming (default.json).
    let early = &row("3 MiB, content-length")[0];
    assert_eq!(
        early[3..6],
        ["reject", "413", "body_too_large"],
        "{early:?}"
    );
    assert!(early.join(" ").ends_with("nothing forwarded"), "{early:?}");
    let streamed = row("3 MiB, streamed").remove(0).join(" ");
    assert!(
        streamed.contains("reject 413 body_too_large") && streamed.contains("upstream reset"),
        "{streamed}"
    );
    assert_eq!(row("good.json")[0][1..4], ["pass", "-", "-"]);
    // Passed by default.json, refused by strict-api.json (the second
    // section): `role` beside `Role` (reject_case_insensitive, with
    // duplicate_key at 422), an integer beyond 2^53 (numbers: interoperable)
    // and a form (415; its label is two words).
    for (label, at, strict) in [
        ("case-duplicate.json", 1, ["reject", "422", "duplicate_key"]),
        (
            "big-integer.json",
            1,
            ["reject", "400", "number_out_of_range"],
        ),
        (
            "not-json.txt",
            2,
            ["reject", "415", "unsupported_media_type"],
        ),
    ] {
        let rows = row(label);
        assert_eq!(rows[0][at..at + 3], ["pass", "-", "-"], "{rows:?}");
        assert_eq!(rows[1][at..at + 3], strict, "{rows:?}");
    }
    // Two bodies only per-route.json (the fourth section) looks into: JSON
    // sent as text/plain, which default.json passes uninspected (it trusts
    // the content type) and per-route.json sniffs; and JSON Lines, which only
    // its events rule reads. Both repeat a key; strict-api.json refuses
    // both content types outright.
    for label in ["duplicate-key.json as text", "events.ndjson"] {
        let rows = row(label);
        let verdicts: Vec<&[String]> = rows.iter().map(|r| &r[3..6]).collect();
        assert_eq!(
            verdicts,
            [
                &["pass", "-", "-"][..],
                &["reject", "415", "unsupported_media_type"],
                &["pass", "-", "-"],
                &["reject", "400", "duplicate_key"],
            ],
            "{rows:?}"
        );
    }
    // Compressed bodies: default.json refuses them unread (415), and
    // per-route.json (the fourth section) decodes them, judging the JSON
    // inside and stopping a bomb at the size limit.
    for (label, per_route) in [
        ("good.json, gzipped", ["pass", "-", "-"]),
        (
            "duplicate-key.json, gzipped",
            ["reject", "400", "duplicate_key"],
        ),
        (
            "gzip bomb: 64 MiB in 64 KiB",
            ["reject", "413", "body_too_large"],
        ),
    ] {
        let rows = row(label);
        let words = label.split_whitespace().count();
        let verdicts: Vec<&[String]> = rows.iter().map(|r| &r[words..words + 3]).collect();
        assert_eq!(
            verdicts[0],
            ["reject", "415", "unsupported_encoding"],
            "{rows:?}"
        );
        assert_eq!(verdicts[3], per_route, "{rows:?}");
    }
    // report-only (the third section) lets everything through, and the
    // access log says what it would have refused.
    let reported = row("too-deep.json").remove(2).join(" ");
    assert!(
        reported.starts_with("too-deep.json pass - -")
            && reported.ends_with("access log: would reject, too_deep"),
        "{reported}"
    );
    // The breaker trips, sheds with 503, and recovers.
    let verdict = |label: &str| -> Vec<String> {
        let words = row(label).remove(0);
        let at = words
            .iter()
            .position(|w| w == "pass" || w == "reject")
            .unwrap_or_else(|| panic!("no verdict in {words:?}"));
        words[at..at + 3].to_vec()
    };
    assert_eq!(verdict("+3s"), ["reject", "400", "syntax_error"]);
    assert_eq!(verdict("+4s"), ["reject", "503", "breaker_open"]);
    assert!(text.contains("half-open probe"), "{text}");
    assert_eq!(verdict("+33s"), ["pass", "-", "-"]);
    assert_eq!(verdict("+34s"), ["pass", "-", "-"]);
}

#[test]
fn bench_prints_its_three_tables() {
    let dir = tempfile::tempdir().unwrap();
    temp_file(dir.path(), "small.json", br#"{"a": [1, 2, 3], "b": "c"}"#);
    let out = run(
        &[
            "bench",
            "--corpus",
            dir.path().to_str().unwrap(),
            "--time-ms",
            "1",
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for row in [
        "small.json",
        "generated 1 KiB",
        "generated 64 KiB",
        "generated 10 MB",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(row))
            .unwrap_or_else(|| panic!("no `{row}` row in {text}"));
        assert!(line.trim_end().ends_with("pass"), "{line}");
        assert_eq!(line.matches('x').count(), 3, "three ratios: {line}");
    }
    assert!(text.contains("µs/request"), "{text}");
    let memory: Vec<u64> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("after "))
        .map(|l| {
            let n = l
                .split(':')
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            n.parse().unwrap()
        })
        .collect();
    assert_eq!(memory.len(), 2, "{text}");
    assert_eq!(memory[0], memory[1], "streaming grew guest memory: {text}");
}

/// Repeated CLI runs compile the plugin once: the first run leaves its
/// machine code in the cache, the next ones load it, and a corrupt cache
/// file is ignored and rewritten.
#[test]
fn the_compiled_plugin_is_cached_across_runs_and_a_corrupt_entry_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = engine::ensure_plugin().unwrap();
    let plugin = plugin.to_str().unwrap();
    // A cache of this test's own, so that runs elsewhere do not add entries.
    let cache = dir.path().join("cache");
    let check = || {
        let out = Command::new(BIN)
            .args(["check", "--plugin", plugin, "examples/requests/good.json"])
            .current_dir(workspace())
            .env(engine::CACHE_ENV, &cache)
            .output()
            .expect("the binary runs");
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    };
    let entries = || -> Vec<PathBuf> {
        std::fs::read_dir(&cache)
            .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default()
    };

    check();
    let added = entries();
    assert_eq!(added.len(), 1, "one cache entry: {added:?}");
    let entry = &added[0];
    assert_eq!(entry.extension().and_then(|x| x.to_str()), Some("cwasm"));
    let compiled = std::fs::read(entry).unwrap();
    assert!(
        compiled.starts_with(b"\x7fELF"),
        "wasmtime's compiled-code format"
    );
    let written = std::fs::metadata(entry).unwrap().modified().unwrap();

    check();
    assert_eq!(
        std::fs::metadata(entry).unwrap().modified().unwrap(),
        written,
        "loaded, not rewritten"
    );
    assert_eq!(entries().len(), 1);

    std::fs::write(entry, b"not machine code").unwrap();
    check();
    assert!(
        std::fs::read(entry).unwrap().starts_with(b"\x7fELF"),
        "rewritten"
    );
}
