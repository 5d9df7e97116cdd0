//! `bench`: the plugin's cost measured through the real wasm, next to native
//! serde_json on the same bytes, in the same run.

use anyhow::{bail, Context as _, Result};
use json_sanitizer_host::workload::{api_body, permissive_config, streamed_json_chunks};
use json_sanitizer_host::{Clock, Request, SerdeInWasm, Verdict, Vm};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Plugin `.wasm` (default: build the workspace plugin).
    #[arg(long, value_name = "W")]
    plugin: Option<PathBuf>,
    /// Directory of JSON files to measure (default: `../shared/corpus` from the workspace root).
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Plugin configuration (default: streaming, generous limits).
    #[arg(long, value_name = "F")]
    config: Option<PathBuf>,
    /// Minimum measuring time per row, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    time_ms: u64,
}

const CHUNK: usize = 64 << 10;

/// Median and fastest of a set of timings.
fn summarize(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[0])
}

/// Runs each of `runs` in turn, round after round, until `budget` is spent
/// (at least 5 rounds), and returns the median and fastest time of each.
/// Alternating means a noisy neighbour slows every run alike, so ratios
/// between them stay meaningful; on a shared machine the fastest run is the
/// least disturbed one, the median the typical one.
fn rounds(
    budget: Duration,
    runs: &mut [&mut dyn FnMut() -> Result<()>],
) -> Result<Vec<(Duration, Duration)>> {
    for run in runs.iter_mut() {
        run()?; // warm-up
    }
    let start = Instant::now();
    let mut samples = vec![Vec::new(); runs.len()];
    let mut done = 0;
    while done < 5 || (start.elapsed() < budget && done < 10_000) {
        for (run, times) in runs.iter_mut().zip(&mut samples) {
            let t = Instant::now();
            run()?;
            times.push(t.elapsed());
        }
        done += 1;
    }
    Ok(samples.into_iter().map(summarize).collect())
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn request(body: &[u8]) -> Request {
    Request::post("/bench")
        .content_type("application/json")
        .body_chunked(body, CHUNK)
}

fn through_wasm(vm: &mut Vm, req: &Request) -> Result<()> {
    let o = vm.send(req)?;
    if let Some(t) = o.trap {
        bail!("plugin trapped: {t}");
    }
    Ok(())
}

/// Runs the benchmark and prints its tables.
pub fn run(a: BenchArgs) -> Result<i32> {
    let module = super::plugin(a.plugin.as_deref())?;
    let (config, config_name) = match &a.config {
        Some(p) => (super::config(Some(p))?, p.display().to_string()),
        None => (
            permissive_config().into_bytes(),
            "(bench's own: streaming, generous limits)".to_string(),
        ),
    };
    let budget = Duration::from_millis(a.time_ms);
    let (_host, mut vms) = super::start(module.clone(), &config, &config_name, Clock::real(), 1)?;
    let vm = &mut vms[0];
    // Built from the workspace: a binary run elsewhere goes without it.
    let mut serde_wasm = SerdeInWasm::start()
        .map_err(|e| eprintln!("note: no serde_json-in-wasm column ({e:#})"))
        .ok();

    let corpus = a
        .corpus
        .clone()
        .unwrap_or_else(|| json_sanitizer_host::engine::workspace_root().join("../shared/corpus"));
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    match std::fs::read_dir(&corpus) {
        Ok(rd) => {
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for f in files {
                let b = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                inputs.push((name, b));
            }
        }
        Err(e) => eprintln!(
            "note: corpus {} not read ({e}); generated bodies only",
            corpus.display()
        ),
    }
    for (name, n) in [
        ("generated 1 KiB", 1 << 10),
        ("generated 64 KiB", 64 << 10),
        ("generated 10 MB", 10_000_000),
    ] {
        inputs.push((name.to_string(), api_body(n)));
    }

    json_sanitizer_host::outln!(
        "Throughput (64 KiB chunks; wasm = headers + body + end through the plugin; \
         native = serde_json natively; serde wasm = serde_json compiled to wasm in the \
         same engine; the three runs alternate)"
    )?;
    json_sanitizer_host::outln!(
        "  {:<20} {:>10} {:>10} {:>12} {:>8} {:>11} {:>16} {:>8}  verdict",
        "input",
        "bytes",
        "wasm MB/s",
        "native MB/s",
        "ratio",
        "best ratio",
        "serde wasm MB/s",
        "ratio"
    )?;
    for (name, body) in &inputs {
        let req = request(body);
        let o = vm.send(&req)?;
        if let Some(t) = &o.trap {
            bail!("plugin trapped on {name}: {t}");
        }
        let verdict = match o.summary().verdict {
            Verdict::Pass => "pass".to_string(),
            Verdict::Reject => format!(
                "reject ({})",
                o.summary().violation.unwrap_or_else(|| "?".into())
            ),
        };
        let mut wasm = || through_wasm(vm, &req);
        let mut native = || {
            // Timed whether it parses or not: an invalid file is a `reject`
            // row, measured all the same.
            let _ = serde_baseline::is_json(std::hint::black_box(body));
            Ok(())
        };
        let times = match serde_wasm.as_mut() {
            Some(baseline) => {
                let placed = baseline.place(body)?;
                if baseline.validate(placed)? != serde_baseline::is_json(body) {
                    bail!("serde_json in wasm and natively disagree on {name}");
                }
                let mut in_wasm = || baseline.validate(placed).map(drop);
                rounds(budget * 3, &mut [&mut wasm, &mut native, &mut in_wasm])?
            }
            None => rounds(budget * 2, &mut [&mut wasm, &mut native])?,
        };
        let [(w, w_best), (n, n_best)] = [times[0], times[1]];
        let (wm, nm) = (mbps(body.len(), w), mbps(body.len(), n));
        let best_ratio = n_best.as_secs_f64() / w_best.as_secs_f64();
        // The third contender, when there is one, is serde_json in wasm.
        let serde_wasm_columns = match times.get(2) {
            Some(&(sw, _)) => {
                let swm = mbps(body.len(), sw);
                format!("{swm:>16.1} {:>7.2}x", wm / swm)
            }
            None => format!("{:>16} {:>8}", "-", "-"),
        };
        json_sanitizer_host::outln!(
            "  {:<20} {:>10} {:>10.1} {:>12.1} {:>7.2}x {:>10.2}x {serde_wasm_columns}  {verdict}",
            name,
            body.len(),
            wm,
            nm,
            wm / nm,
            best_ratio,
        )?;
    }

    json_sanitizer_host::outln!()?;
    json_sanitizer_host::outln!(
        "Per request (1 KiB body, one chunk, headers + body + end, batches of 1000)"
    )?;
    let small = request(&api_body(1 << 10)).with_content_length();
    let mut batch = || {
        for _ in 0..1000 {
            through_wasm(vm, &small)?;
        }
        Ok(())
    };
    let (median, best) = rounds(budget, &mut [&mut batch])?[0];
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / 1000.0;
    json_sanitizer_host::outln!(
        "  median {:.2} µs/request, best batch {:.2} µs/request",
        per_request(median),
        per_request(best)
    )?;

    json_sanitizer_host::outln!()?;
    json_sanitizer_host::outln!(
        "Guest linear memory, fresh VM, hold_bytes 0 (streaming must not grow it)"
    )?;
    let (_h2, mut fresh) = super::start(
        module,
        &permissive_config().into_bytes(),
        "bench",
        Clock::real(),
        1,
    )?;
    let vm = &mut fresh[0];
    through_wasm(vm, &request(&api_body(1 << 10)))?;
    let after_small = vm.memory_size();
    let big = Request::post("/bench")
        .content_type("application/json")
        .chunks(streamed_json_chunks(100_000_000, CHUNK));
    let o = vm.send(&big)?;
    if let Some(t) = &o.trap {
        bail!("plugin trapped on the 100 MB body: {t}");
    }
    let after_big = vm.memory_size();
    json_sanitizer_host::outln!("  after 1 KiB body:        {after_small:>12} bytes")?;
    json_sanitizer_host::outln!(
        "  after 100 MB streamed:   {after_big:>12} bytes  ({}, {} forwarded)",
        if after_big == after_small {
            "equal"
        } else {
            "GREW"
        },
        o.forwarded_bytes
    )?;
    Ok(0)
}
