//! `replay`: a JSONL scenario on a virtual clock, one JSON result per request.

use anyhow::{bail, Context as _, Result};
use json_sanitizer_host::clock::MANUAL_EPOCH_MS;
use json_sanitizer_host::{Clock, Request, Verdict};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Arguments of `replay`.
#[derive(clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    plugin: super::PluginArgs,
    /// Worker VMs sharing shared data and metrics.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    workers: u64,
    /// Scenario: one request per line (`-` = stdin).
    #[arg(value_name = "SCENARIO.jsonl")]
    scenario: String,
}

/// One scenario line.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    /// Milliseconds since the start of the scenario; the clock jumps there.
    at_ms: Option<u64>,
    /// Worker VM index.
    #[serde(default)]
    worker: usize,
    method: Option<String>,
    path: Option<String>,
    authority: Option<String>,
    /// `source.address` property (`ip:port`).
    source_address: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
    body_file: Option<String>,
    chunks: Option<Vec<usize>>,
    trailers: Option<BTreeMap<String, String>>,
    /// The upstream's response starts once this many body bytes went up.
    early_response_after: Option<u64>,
    /// That response's status (default 200; 101 answers a WebSocket
    /// handshake).
    response_status: Option<u16>,
}

#[derive(serde::Serialize)]
struct Line {
    line: usize,
    verdict: Verdict,
    status: Option<u32>,
    violation: Option<String>,
    headers: BTreeMap<String, String>,
    body: Option<String>,
    forwarded_bytes: u64,
    upstream_reset: bool,
}

/// Runs `replay`; 0 all pass, 1 any rejected.
pub fn run(a: ReplayArgs) -> Result<i32> {
    let (text, base) = if a.scenario == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
        (s, PathBuf::from("."))
    } else {
        let p = Path::new(&a.scenario);
        let s = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        (s, p.parent().map(Path::to_path_buf).unwrap_or_default())
    };
    let workers = a.workers as usize;
    let mut steps = Vec::new();
    let mut last_ms = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        // serde would also take a struct written as an array of its fields.
        if !raw.trim_start().starts_with('{') {
            bail!("{}:{n}: a scenario line is a JSON object", a.scenario);
        }
        let step: Step =
            serde_json::from_str(raw).with_context(|| format!("{}:{n}", a.scenario))?;
        if let Some(at) = step.at_ms {
            if at < last_ms {
                bail!(
                    "{}:{n}: at_ms {at} is before the previous line's {last_ms}; the clock only goes forward",
                    a.scenario
                );
            }
            // The clock counts nanoseconds in a u64.
            let in_range = MANUAL_EPOCH_MS
                .checked_add(at)
                .and_then(|ms| ms.checked_mul(1_000_000));
            if in_range.is_none() {
                bail!("{}:{n}: at_ms {at} is beyond the clock's range", a.scenario);
            }
            last_ms = at;
        }
        if step.worker >= workers {
            bail!(
                "{}:{n}: worker {} but only --workers {workers}",
                a.scenario,
                step.worker
            );
        }
        let req = request(&step, &base).with_context(|| format!("{}:{n}", a.scenario))?;
        steps.push((n, step.at_ms, step.worker, req));
    }

    let clock = Clock::manual();
    let (_host, mut vms) = a.plugin.start(clock.clone(), workers)?;
    let mut out = Vec::new();
    let mut rejected = false;
    let mut explained = false;
    for (n, at_ms, worker, req) in steps {
        if let Some(at) = at_ms {
            clock.set_ms(MANUAL_EPOCH_MS + at);
        }
        for vm in vms.iter_mut() {
            vm.fire_due_ticks()?;
        }
        let o = vms[worker].send(&req)?;
        if let Some(t) = &o.trap {
            bail!("{}:{n}: plugin trapped: {t}", a.scenario);
        }
        if o.stalled {
            let at = format!("{}:{n}", a.scenario);
            a.plugin.explain_pause(&at, &mut explained);
        }
        let s = o.summary();
        rejected |= s.verdict == Verdict::Reject;
        let reply = o.reply();
        let line = Line {
            line: n,
            verdict: s.verdict,
            status: s.status,
            violation: s.violation,
            headers: reply
                .map(|r| r.headers.iter().cloned().collect())
                .unwrap_or_default(),
            body: reply.map(|r| r.body_text()),
            forwarded_bytes: o.forwarded_bytes,
            upstream_reset: o.upstream_reset,
        };
        serde_json::to_writer(&mut out, &line)?;
        out.push(b'\n');
    }
    super::print_all(&out)?;
    Ok(i32::from(rejected))
}

fn request(s: &Step, base: &Path) -> Result<Request> {
    let body = match (&s.body, &s.body_file) {
        (Some(_), Some(_)) => bail!("give either body or body_file, not both"),
        (Some(b), None) => b.as_bytes().to_vec(),
        (None, Some(f)) => {
            let p = base.join(f);
            std::fs::read(&p).with_context(|| format!("reading body_file {}", p.display()))?
        }
        (None, None) => Vec::new(),
    };
    // The same checks as `check`'s options: what no client could send is a
    // mistake in the scenario, not a request to judge.
    let field = |name: &str, value: &Option<String>, parse: fn(&str) -> Result<String, String>| {
        value
            .as_deref()
            .map(parse)
            .transpose()
            .map_err(|problem| anyhow::anyhow!("{name}: {problem}"))
    };
    let method = field("method", &s.method, super::parse_method)?;
    let path = field("path", &s.path, super::parse_path)?;
    let authority = field("authority", &s.authority, super::parse_authority)?;
    let source = field(
        "source_address",
        &s.source_address,
        super::parse_source_address,
    )?;
    let mut req = Request::new(
        method.as_deref().unwrap_or("POST"),
        path.as_deref().unwrap_or("/"),
    );
    if let Some(a) = &authority {
        req = req.authority(a);
    }
    if let Some(src) = &source {
        req = req.property("source.address", src);
    }
    for (k, v) in &s.headers {
        if let Some(problem) = super::header_problem(&k.to_ascii_lowercase(), v) {
            bail!("headers: {problem}");
        }
        req = req.header(k, v);
    }
    req = match &s.chunks {
        None => req.body(&body),
        Some(sizes) => {
            let total = sizes.iter().try_fold(0usize, |sum, &n| sum.checked_add(n));
            if total.is_none_or(|total| total > body.len()) {
                bail!("chunks add up to more than the body's {} bytes", body.len());
            }
            let mut chunks = Vec::new();
            let mut at = 0;
            for &n in sizes {
                chunks.push(&body[at..at + n]);
                at += n;
            }
            if at < body.len() {
                chunks.push(&body[at..]);
            }
            req.chunks(chunks)
        }
    };
    if let Some(n) = s.early_response_after {
        req = req.early_response_after(n);
    }
    if let Some(status) = s.response_status {
        if !(100..=599).contains(&status) {
            bail!("response_status: {status} is not an HTTP status");
        }
        if status < 200 && status != 101 {
            bail!(
                "response_status: Envoy hands no informational response ({status}) to the plugin"
            );
        }
        if s.early_response_after.is_none() {
            bail!("response_status needs early_response_after (when the upstream answers)");
        }
        req.response_status = status;
    }
    if let Some(t) = &s.trailers {
        for (k, v) in t {
            if let Some(problem) = super::header_problem(&k.to_ascii_lowercase(), v) {
                bail!("trailers: {problem}");
            }
            req = req.trailer(k, v);
        }
    }
    Ok(req)
}
