//! `check`: one verdict per file, as JSON lines.

use anyhow::{bail, Context as _, Result};
use json_sanitizer_host::{Clock, Request, Verdict};
use std::io::{Read, Write};

/// Arguments of `check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    plugin: super::PluginArgs,
    /// Content-Type header sent with each body (empty: none).
    #[arg(long, value_name = "T", default_value = "application/json")]
    content_type: String,
    /// Send the body in chunks of N bytes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    chunk: Option<u64>,
    /// Do not send a content-length header.
    #[arg(long)]
    no_content_length: bool,
    /// Request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Request method (per-route rules may match on it).
    #[arg(long, value_name = "M", default_value = "POST")]
    method: String,
    /// Request `:authority` (per-route rules may match on it).
    #[arg(long, value_name = "A", default_value = "localhost")]
    authority: String,
    /// Another request header, `name: value` (repeatable), e.g. the API key
    /// a breaker scope reads.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Files to send (`-` = stdin).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
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
    // RFC 9110's token characters.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("`{name}` is not a header name"));
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(format!("the value of `{name}` holds CR, LF or NUL"));
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
    let bodies = a
        .files
        .iter()
        .map(|f| read_input(f).map(|b| (f.as_str(), b)))
        .collect::<Result<Vec<_>>>()?;
    let (_host, mut vms) = a.plugin.start(Clock::real(), 1)?;
    let vm = &mut vms[0];
    let mut rejected = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (file, body) in bodies {
        let mut req = Request::new(&a.method, &a.path)
            .authority(&a.authority)
            .body(&body);
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
        }
        let o = vm.send(&req)?;
        if let Some(t) = &o.trap {
            bail!("plugin trapped on {file}: {t}");
        }
        let s = o.summary();
        rejected |= s.verdict == Verdict::Reject;
        let line = Line {
            file,
            verdict: s.verdict,
            status: s.status,
            violation: s.violation,
            offset: s.offset,
            limit: s.limit,
        };
        serde_json::to_writer(&mut out, &line)?;
        writeln!(out)?;
    }
    Ok(i32::from(rejected))
}

fn read_input(f: &str) -> Result<Vec<u8>> {
    if f == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .context("reading stdin")?;
        Ok(b)
    } else {
        std::fs::read(f).with_context(|| format!("reading {f}"))
    }
}
