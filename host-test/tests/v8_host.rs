//! The V8 bench's proxy-wasm host (`host-test/v8/bench.mjs`) drives the real
//! plugin: its verdicts are the plugin's own (a duplicate key serde_json
//! accepts is refused with 400), it answers its timing commands, and every
//! failure is one line on stderr with exit status 2.
//!
//! Node.js is installed from Debian's `nodejs` package when `node` is not on
//! `PATH` (as `oci_registry.rs` installs its registry); the test fails with
//! the reason when that is impossible.

use json_sanitizer_host::engine;
use json_sanitizer_host::workload::{api_body, permissive_config};
use std::path::Path;
use std::process::{Command, Output};

mod process;
use process::output_with_stdin;

/// The Node.js binary, found on `PATH`.
const NODE: &str = "node";

/// Installs Node.js from Debian when `node` is not on `PATH`.
fn ensure_node() {
    let works = || {
        Command::new(NODE)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Err(e) = process::install_debian_package("nodejs", works) {
        panic!("node is missing: {e}; install Node.js to run this test");
    }
}

/// Runs `bench.mjs` on `body` with `config`, feeding `commands` on stdin.
fn run(config: &str, body: &[u8], commands: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("config.json");
    let body_path = dir.path().join("body.json");
    std::fs::write(&config_path, config).expect("write config");
    std::fs::write(&body_path, body).expect("write body");
    let plugin = engine::ensure_plugin().expect("plugin builds");
    let serde = engine::ensure_serde_baseline().expect("serde baseline builds");
    let script = engine::workspace_root().join("host-test/v8/bench.mjs");
    ensure_node();
    output_with_stdin(
        Command::new(NODE)
            .arg(&script)
            .arg("--plugin")
            .arg(&plugin)
            .arg("--serde")
            .arg(&serde)
            .arg("--config")
            .arg(&config_path)
            .args(["--chunk", "100"])
            .arg(&body_path),
        commands.as_bytes(),
    )
}

fn first_line(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_valid_body_passes_and_each_command_prints_a_time() {
    let body = api_body(4 << 10);
    let out = run(&permissive_config(), &body, "plugin 2\nserde 3\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let verdicts = first_line(&out);
    assert_eq!(verdicts["bytes"], body.len());
    assert_eq!(verdicts["verdict"], "pass");
    assert_eq!(verdicts["status"], serde_json::Value::Null);
    assert_eq!(verdicts["serde_verdict"], "pass");
    let text = String::from_utf8_lossy(&out.stdout);
    let times: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| l.parse().expect("a time in ns"))
        .collect();
    assert_eq!(times.len(), 2, "{text}");
    assert!(times.iter().all(|&t| t > 0.0), "{times:?}");
}

#[test]
fn the_verdict_is_the_plugins_not_serde_jsons() {
    // serde_json accepts a duplicate key; the plugin (default `reject`)
    // refuses it, and says so in its problem+json reply.
    let out = run(&permissive_config(), br#"{"a":1,"\u0061":2}"#, "");
    assert!(out.status.success(), "{}", stderr(&out));
    let verdicts = first_line(&out);
    assert_eq!(verdicts["verdict"], "reject");
    assert_eq!(verdicts["status"], 400);
    assert_eq!(verdicts["serde_verdict"], "pass");
}

#[test]
fn failures_are_one_line_and_exit_2() {
    let bad_config = r#"{"limits": {"max_depth": "deep"}}"#;
    let out = run(bad_config, b"{}", "");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: configuration refused"), "{err}");
    assert!(err.contains("limits.max_depth"), "{err}");

    let out = run(&permissive_config(), b"{}", "fly 3\n");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown command `fly 3`"), "{err}");
}

#[test]
fn a_missing_argument_is_a_usage_error() {
    let script = engine::workspace_root().join("host-test/v8/bench.mjs");
    ensure_node();
    let out = Command::new(NODE)
        .arg(&script)
        .arg(Path::new("body.json"))
        .output()
        .expect("node runs");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error: usage: bench.mjs"), "{err}");
}
