//! `demo`: the example configurations against the example requests, and the
//! breaker tripping and recovering on a virtual clock, as readable tables.

use anyhow::{Context as _, Result};
use json_sanitizer_host::clock::MANUAL_EPOCH_MS;
use json_sanitizer_host::oci::reproducible::gzip;
use json_sanitizer_host::workload::{big_json, nested_arrays};
use json_sanitizer_host::{Clock, Outcome, Request, Vm};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Plugin `.wasm` (default: build the workspace plugin).
    #[arg(long, value_name = "W")]
    plugin: Option<PathBuf>,
    /// Directory holding the configurations and `requests/` (default: the workspace's `examples/`).
    #[arg(long, value_name = "DIR")]
    examples: Option<PathBuf>,
}

const CONFIGS: [&str; 4] = [
    "default.json",
    "strict-api.json",
    "report-only.json",
    "per-route.json",
];

/// One demo request: a label and how to build it.
struct Case {
    label: String,
    req: Request,
}

fn json_post(path: &str, body: &[u8]) -> Request {
    post_as(path, "application/json", body)
}

/// A POST of `body` as `content_type`, with its length.
fn post_as(path: &str, content_type: &str, body: &[u8]) -> Request {
    Request::post(path)
        .content_type(content_type)
        .body(body)
        .with_content_length()
}

fn cases(dir: &std::path::Path) -> Result<Vec<Case>> {
    let rq = dir.join("requests");
    let file = |name: &str| -> Result<Vec<u8>> {
        let p = rq.join(name);
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    };
    let big = big_json(3 << 20);
    let v = vec![
        Case {
            label: "good.json".into(),
            req: json_post("/api/orders", &file("good.json")?),
        },
        Case {
            label: "too-deep.json".into(),
            req: json_post("/api/orders", &file("too-deep.json")?),
        },
        Case {
            label: "malformed.json".into(),
            req: json_post("/api/orders", &file("malformed.json")?),
        },
        Case {
            label: "duplicate-key.json".into(),
            req: json_post("/api/orders", &file("duplicate-key.json")?),
        },
        Case {
            label: "case-duplicate.json".into(),
            req: json_post("/api/orders", &file("case-duplicate.json")?),
        },
        Case {
            label: "big-integer.json".into(),
            req: json_post("/api/orders", &file("big-integer.json")?),
        },
        Case {
            label: "lone-surrogate.json".into(),
            req: json_post("/api/orders", &file("lone-surrogate.json")?),
        },
        Case {
            label: "trailing-garbage.json".into(),
            req: json_post("/api/orders", &file("trailing-garbage.json")?),
        },
        Case {
            label: "not-json.txt (text/plain)".into(),
            req: post_as("/api/orders", "text/plain", &file("not-json.txt")?),
        },
        Case {
            label: "duplicate-key.json as text".into(),
            req: post_as("/api/orders", "text/plain", &file("duplicate-key.json")?),
        },
        Case {
            label: "events.ndjson to /api/events".into(),
            req: post_as(
                "/api/events",
                "application/x-ndjson",
                &file("events.ndjson")?,
            ),
        },
        Case {
            label: "good.json, gzipped".into(),
            req: json_post("/api/orders", &gzip(&file("good.json")?)?)
                .header("content-encoding", "gzip"),
        },
        Case {
            label: "duplicate-key.json, gzipped".into(),
            req: json_post("/api/orders", &gzip(&file("duplicate-key.json")?)?)
                .header("content-encoding", "gzip"),
        },
        Case {
            label: "gzip bomb: 64 MiB in 64 KiB".into(),
            req: json_post("/api/orders", &gzip(&vec![b' '; 64 << 20])?)
                .header("content-encoding", "gzip")
                .chunk_size(64 << 10),
        },
        Case {
            label: "3 MiB, content-length".into(),
            req: json_post("/api/orders", &big).chunk_size(64 << 10),
        },
        Case {
            label: "3 MiB, streamed, no length".into(),
            req: Request::post("/api/orders")
                .content_type("application/json")
                .body_chunked(&big, 64 << 10),
        },
        Case {
            label: "200-deep, 1-byte chunks".into(),
            req: Request::post("/api/orders")
                .content_type("application/json")
                .body_chunked(nested_arrays(200), 1),
        },
        Case {
            label: "good.json to /upload".into(),
            req: json_post("/upload", &file("good.json")?),
        },
    ];
    Ok(v)
}

fn row(prefix: &str, label: &str, o: &Outcome, note: &str) -> Result<()> {
    let s = o.summary();
    let verdict = match s.verdict {
        json_sanitizer_host::Verdict::Pass => "pass",
        json_sanitizer_host::Verdict::Reject => "reject",
    };
    let status = s.status.map_or("-".to_string(), |x| x.to_string());
    let violation = s.violation.unwrap_or_else(|| "-".into());
    let time = fmt_time(o.elapsed);
    json_sanitizer_host::outln!(
        "  {prefix}{label:<30} {verdict:<7} {status:<6} {violation:<24} {time:>9}  {note}"
    )?;
    Ok(())
}

/// The column titles above [`row`]s with the same `prefix` column.
fn header(prefix: &str) -> Result<()> {
    json_sanitizer_host::outln!(
        "  {prefix}{:<30} {:<7} {:<6} {:<24} {:>9}  note",
        "request",
        "verdict",
        "status",
        "violation",
        "time"
    )?;
    Ok(())
}

fn fmt_time(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn note(o: &Outcome) -> String {
    let mut n = Vec::new();
    if let Some(r) = &o.host_reply {
        n.push(format!("host reply ({})", r.details));
    }
    if o.upstream_reset {
        n.push(format!("upstream reset after {} body B", o.forwarded_bytes));
    } else if o.local_reply.is_some() && o.forwarded_bytes == 0 {
        n.push("nothing forwarded".into());
    }
    if o.reply().is_none()
        && o.logs
            .iter()
            .any(|l| l.level >= json_sanitizer_host::LogLevel::Warn)
    {
        n.push("logged".into());
    }
    if o.reply().is_none() {
        // Report mode: what Envoy's access log would show for the request
        // that went through.
        if let Some(kind) = o.filter_state("wasm.json_sanitizer.violation") {
            n.push(format!("access log: would reject, {kind}"));
        }
    }
    if o.stalled {
        n.push("STALLED".into());
    }
    if let Some(t) = &o.trap {
        n.push(format!("TRAP: {t}"));
    }
    n.join(", ")
}

fn send(vm: &mut Vm, req: &Request) -> Result<Outcome> {
    vm.send(req)
}

/// Runs the demo; exit code 0 unless something could not run.
pub fn run(a: DemoArgs) -> Result<i32> {
    let dir = a.examples.clone().unwrap_or_else(super::examples_dir);
    let module = super::plugin(a.plugin.as_deref())?;
    let cases = cases(&dir)?;
    for name in CONFIGS {
        let path = dir.join(name);
        json_sanitizer_host::outln!("== {name} ==")?;
        let Ok(config) = std::fs::read(&path) else {
            json_sanitizer_host::outln!("  (missing {}, skipped)\n", path.display())?;
            continue;
        };
        header("")?;
        for c in &cases {
            // A fresh proxy per request, so one request's breaker state
            // (shared data) does not decide the next row.
            let (_host, mut vms) = super::start(module.clone(), &config, name, Clock::real(), 1)?;
            let o = send(&mut vms[0], &c.req)?;
            row("", &c.label, &o, &note(&o))?;
        }
        json_sanitizer_host::outln!()?;
    }
    breaker(&dir, &module)?;
    Ok(0)
}

/// Trip → 503 + Retry-After → half-open probe → closed, on a manual clock.
fn breaker(dir: &std::path::Path, module: &wasmtime::Module) -> Result<()> {
    json_sanitizer_host::outln!(
        "== breaker (default.json + consecutive_failures 3, open 30 s; virtual clock) =="
    )?;
    let base = std::fs::read(dir.join("default.json")).unwrap_or_else(|_| b"{}".to_vec());
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&base).context("default.json is not JSON")?;
    if !cfg.is_object() {
        cfg = serde_json::json!({});
    }
    cfg["breaker"] =
        serde_json::json!({"enabled": true, "consecutive_failures": 3, "open_seconds": 30});
    let config = serde_json::to_vec(&cfg)?;
    let clock = Clock::manual();
    let (_host, mut vms) = super::start(
        module.clone(),
        &config,
        "default.json + breaker",
        clock.clone(),
        1,
    )?;
    let good = std::fs::read(dir.join("requests/good.json"))
        .unwrap_or_else(|_| br#"{"ok":true}"#.to_vec());
    let bad =
        std::fs::read(dir.join("requests/malformed.json")).unwrap_or_else(|_| b"{,}".to_vec());
    let steps: [(u64, &str, &[u8]); 8] = [
        (0, "good", &good),
        (1_000, "malformed #1", &bad),
        (2_000, "malformed #2", &bad),
        (3_000, "malformed #3 (trips)", &bad),
        (4_000, "good while open", &good),
        (20_000, "good while open", &good),
        (33_000, "good: half-open probe", &good),
        (34_000, "good: closed again", &good),
    ];
    header(&format!("{:<8} ", "t"))?;
    for (at, label, body) in steps {
        clock.set_ms(MANUAL_EPOCH_MS + at);
        vms[0].fire_due_ticks()?;
        let o = send(&mut vms[0], &json_post("/api/orders", body))?;
        let retry = o
            .reply()
            .and_then(|r| r.header("retry-after"))
            .map(|v| format!("Retry-After: {v}"))
            .unwrap_or_default();
        let mut n = note(&o);
        if !retry.is_empty() {
            n = if n.is_empty() {
                retry
            } else {
                format!("{retry}, {n}")
            };
        }
        let t = format!("+{:.0}s", at as f64 / 1000.0);
        row(&format!("{t:<8} "), label, &o, &n)?;
    }
    json_sanitizer_host::outln!()?;
    Ok(())
}
