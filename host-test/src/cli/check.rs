//! `check`: one verdict per file, as JSON lines.

use anyhow::{bail, Context as _, Result};
use json_sanitizer_host::{Clock, Request, Verdict};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Arguments of `check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    plugin: super::PluginArgs,
    /// Content-Type header sent with each body (empty: none).
    #[arg(long, value_name = "T", default_value = "application/json", value_parser = parse_content_type)]
    content_type: String,
    /// Send the body in chunks of N bytes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    chunk: Option<u64>,
    /// Do not send a content-length header: the body goes as a chunked one
    /// would (an empty file is then an empty body, not none).
    #[arg(long)]
    no_content_length: bool,
    /// Request path (per-route rules match on it).
    #[arg(long, value_name = "P", default_value = "/", value_parser = super::parse_path)]
    path: String,
    /// Request method (per-route rules may match on it).
    #[arg(long, value_name = "M", default_value = "POST", value_parser = super::parse_method)]
    method: String,
    /// Request `:authority` (per-route rules may match on it).
    #[arg(long, value_name = "A", default_value = "localhost", value_parser = super::parse_authority)]
    authority: String,
    /// Another request header, `name: value` (repeatable), e.g. the API key
    /// a breaker scope reads.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Files to send (`-` = stdin, once).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

/// A `content-type` value, or empty for none: no CR, LF or NUL, which no
/// client could send (`-H` refuses them too).
fn parse_content_type(text: &str) -> Result<String, String> {
    match super::header_problem("content-type", text) {
        None => Ok(text.to_string()),
        Some(problem) => Err(problem),
    }
}

/// `name: value`, as curl's `-H` takes it. The headers `check` sets from
/// its own options are refused here, naming the option.
fn parse_header(text: &str) -> Result<(String, String), String> {
    if text.trim_start().starts_with(':') {
        return Err(format!(
            "`{text}`: pseudo-headers have their own options (--method, --path, --authority)"
        ));
    }
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `name: value`"))?;
    let name = name.trim().to_ascii_lowercase();
    if let Some(problem) = super::header_problem(&name, value) {
        return Err(problem);
    }
    let own = match name.as_str() {
        "host" => Some("--authority (Envoy routes on :authority)"),
        "content-type" => Some("--content-type"),
        "content-length" => Some("--no-content-length (it is the file's length)"),
        _ => None,
    };
    if let Some(option) = own {
        return Err(format!("`{name}` is set with {option}"));
    }
    Ok((name, value.trim().to_string()))
}

#[derive(serde::Serialize)]
struct Line<'a> {
    file: &'a str,
    verdict: Verdict,
    status: Option<u32>,
    violation: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

/// Runs `check`; 0 all pass, 1 any rejected.
pub fn run(a: CheckArgs) -> Result<i32> {
    let stdin = Path::new("-");
    if a.files.iter().filter(|f| *f == stdin).count() > 1 {
        bail!("`-` (stdin) is given more than once; it can be read only once");
    }
    let bodies = a
        .files
        .iter()
        .map(|f| read_input(f).map(|b| (f.to_string_lossy(), b)))
        .collect::<Result<Vec<_>>>()?;
    let (_host, mut vms) = a.plugin.start(Clock::real(), 1)?;
    let vm = &mut vms[0];
    let mut rejected = false;
    let mut explained = false;
    let mut out = Vec::new();
    for (file, body) in &bodies {
        let mut req = Request::new(&a.method, &a.path)
            .authority(&a.authority)
            .body(body);
        for (name, value) in &a.headers {
            req = req.header(name, value);
        }
        if !a.content_type.is_empty() {
            req = req.content_type(&a.content_type);
        }
        if let Some(n) = a.chunk {
            req = req.chunk_size(n as usize);
        }
        if !a.no_content_length {
            req = req.with_content_length();
        } else if body.is_empty() {
            // Headers that do not end the stream, then an empty last chunk.
            req = req.chunks([b""]);
        }
        let o = vm.send(&req)?;
        if let Some(t) = &o.trap {
            bail!("plugin trapped on {file}: {t}");
        }
        if o.stalled {
            a.plugin.explain_pause(file, &mut explained);
        }
        let s = o.summary();
        rejected |= s.verdict == Verdict::Reject;
        let line = Line {
            file: file.as_ref(),
            verdict: s.verdict,
            status: s.status,
            violation: s.violation,
            offset: s.offset,
            limit: s.limit,
        };
        serde_json::to_writer(&mut out, &line)?;
        out.push(b'\n');
    }
    super::print_all(&out)?;
    Ok(i32::from(rejected))
}

fn read_input(f: &Path) -> Result<Vec<u8>> {
    if f == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading stdin")?;
        Ok(b)
    } else {
        std::fs::read(f).with_context(|| format!("reading {}", f.display()))
    }
}
