//! The release plugin in V8, the runtime Envoy and Istio run it in by
//! default, next to serde_json in V8 and native serde_json.
//!
//! ```text
//! cargo run --release -p json-sanitizer-host --example v8_bench [-- --ms N]
//! ```
//!
//! The goals are measured through the wasmtime harness (`json-sanitizer-host
//! bench`), whose Cranelift code is not what production runs. This builds the
//! plugin and `host-test/serde-baseline` for `wasm32-wasip1` (as the harness
//! does), writes the generated API bodies and the bench configuration under
//! `target/v8-bench/`, and starts `host-test/v8/bench.mjs`, a minimal
//! proxy-wasm host, under Node.js for each input. Rounds alternate: the
//! plugin in V8, serde_json in V8, then serde_json natively in this process,
//! each about 10 ms, for N ms per input (default 1500); the table gives
//! medians. Needs `node` (Debian: `nodejs`) on `PATH`.

use anyhow::{bail, Context as _, Result};
use json_sanitizer_host::engine;
use json_sanitizer_host::workload::{api_body, permissive_config};
use serde::Deserialize;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The Node.js binary, found on `PATH`.
const NODE: &str = "node";

/// Body chunk size, as in `json-sanitizer-host bench`.
const CHUNK: usize = 64 << 10;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

/// `bench.mjs`'s first line: the verdicts on its input.
#[derive(Deserialize)]
struct Verdicts {
    verdict: String,
    serde_verdict: String,
}

/// Nanoseconds per pass over the rounds of one contender.
#[derive(Default)]
struct Times(Vec<f64>);

impl Times {
    fn median(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
    }

    fn best(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ms: u64 = match args.as_slice() {
        [] => 1500,
        [flag, n] if flag == "--ms" => n.parse().context("--ms takes milliseconds")?,
        _ => bail!("usage: v8_bench [--ms MILLISECONDS]"),
    };
    check_node()?;
    let plugin = engine::ensure_plugin()?;
    let serde = engine::ensure_serde_baseline()?;
    let root = engine::workspace_root();
    let script = root.join("host-test/v8/bench.mjs");
    let dir = engine::target_dir().join("v8-bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let config = dir.join("config.json");
    std::fs::write(&config, permissive_config())?;

    let mut inputs: Vec<PathBuf> = ["canada", "citm_catalog", "twitter"]
        .iter()
        .map(|name| root.join(format!("../shared/corpus/{name}.json")))
        .filter(|p| p.exists())
        .collect();
    for (name, len) in [
        ("api_1k", 1 << 10),
        ("api_64k", 64 << 10),
        ("api_10mb", 10_000_000),
    ] {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, api_body(len))?;
        inputs.push(path);
    }

    println!(
        "The release plugin in V8 ({}; a minimal proxy-wasm host, headers + body in 64 KiB \
         chunks + end), serde_json in V8, native serde_json; medians of alternating rounds",
        node_version()
    );
    println!(
        "  {:<18} {:>10} {:>9} {:>12} {:>7} {:>12} {:>7} {:>11}  verdict",
        "input", "bytes", "V8 MB/s", "serde V8", "ratio", "serde native", "ratio", "best ratio"
    );
    for input in &inputs {
        let bytes = std::fs::read(input)?;
        let mut v8 = V8::start(&script, &plugin, &serde, &config, input)?;
        let verdicts = &v8.verdicts;
        if (verdicts.serde_verdict == "pass") != serde_baseline::is_json(&bytes) {
            bail!(
                "serde_json in V8 and natively disagree on {}",
                input.display()
            );
        }
        // Every input is valid JSON within the bench configuration's limits.
        if verdicts.verdict != verdicts.serde_verdict {
            bail!(
                "the plugin in V8 says {} and serde_json says {} on {}",
                verdicts.verdict,
                verdicts.serde_verdict,
                input.display()
            );
        }
        let verdict = verdicts.verdict.clone();
        let [plugin_v8, serde_v8, native] = rounds(&mut v8, &bytes, Duration::from_millis(ms))?;
        let mbps = |ns: f64| bytes.len() as f64 / ns * 1e3;
        let name = input.file_name().unwrap_or_default().to_string_lossy();
        println!(
            "  {:<18} {:>10} {:>9.1} {:>12.1} {:>6.2}x {:>12.1} {:>6.2}x {:>10.2}x  {}",
            name,
            bytes.len(),
            mbps(plugin_v8.median()),
            mbps(serde_v8.median()),
            serde_v8.median() / plugin_v8.median(),
            mbps(native.median()),
            native.median() / plugin_v8.median(),
            native.best() / plugin_v8.best(),
            verdict,
        );
    }
    Ok(())
}

/// Alternating rounds of about 10 ms each: the plugin in V8, serde_json in
/// V8, serde_json natively; at least 11 of each, for `budget`.
fn rounds(v8: &mut V8, bytes: &[u8], budget: Duration) -> Result<[Times; 3]> {
    let native = |n: u32| {
        let t = Instant::now();
        for _ in 0..n {
            let _ = serde_baseline::is_json(std::hint::black_box(bytes));
        }
        t.elapsed().as_nanos() as f64 / f64::from(n)
    };
    // Passes per round, from one timed pass each (after a warm-up).
    let per_round = |ns: f64| (10e6 / ns.max(1.0)).clamp(1.0, 1e6) as u32;
    v8.time("plugin", 3)?;
    v8.time("serde", 3)?;
    let reps = [
        per_round(v8.time("plugin", 1)?),
        per_round(v8.time("serde", 1)?),
        per_round(native(1)),
    ];
    let mut times: [Times; 3] = Default::default();
    let start = Instant::now();
    while times[0].0.len() < 11 || start.elapsed() < budget {
        times[0].0.push(v8.time("plugin", reps[0])?);
        times[1].0.push(v8.time("serde", reps[1])?);
        times[2].0.push(native(reps[2]));
    }
    Ok(times)
}

/// Fails with what to install when `node` is not on `PATH`.
fn check_node() -> Result<()> {
    match Command::new(NODE).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => bail!("node not found on PATH: install Node.js (Debian: apt-get install nodejs) to run the V8 bench"),
    }
}

fn node_version() -> String {
    let out = Command::new(NODE)
        .args([
            "-p",
            "`Node.js ${process.version}, V8 ${process.versions.v8}`",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => "Node.js".to_string(),
    }
}

/// `bench.mjs` running on one input, waiting for commands.
struct V8 {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    verdicts: Verdicts,
}

impl V8 {
    fn start(
        script: &Path,
        plugin: &Path,
        serde: &Path,
        config: &Path,
        input: &Path,
    ) -> Result<Self> {
        let mut child = Command::new(NODE)
            .arg(script)
            .arg("--plugin")
            .arg(plugin)
            .arg("--serde")
            .arg(serde)
            .arg("--config")
            .arg(config)
            .args(["--chunk", &CHUNK.to_string()])
            .arg(input)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting node")?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("node's stdin and stdout were not piped");
        };
        let mut stdout = BufReader::new(stdout);
        let first = read_line(&mut stdout, input)?;
        let verdicts = serde_json::from_str(&first)
            .with_context(|| format!("reading bench.mjs output `{first}`"))?;
        Ok(Self {
            child,
            stdin,
            stdout,
            verdicts,
        })
    }

    /// Nanoseconds per pass of `contender` over `n` passes.
    fn time(&mut self, contender: &str, n: u32) -> Result<f64> {
        writeln!(self.stdin, "{contender} {n}").context("writing to bench.mjs")?;
        self.stdin.flush()?;
        let line = read_line(&mut self.stdout, Path::new(contender))?;
        line.trim()
            .parse()
            .with_context(|| format!("bench.mjs answered `{line}` to `{contender} {n}`"))
    }
}

impl Drop for V8 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line from `bench.mjs`; its end (it failed: its stderr has said why)
/// is an error.
fn read_line(stdout: &mut BufReader<ChildStdout>, what: &Path) -> Result<String> {
    let mut line = String::new();
    if stdout.read_line(&mut line)? == 0 {
        bail!("bench.mjs stopped on {}", what.display());
    }
    Ok(line)
}
