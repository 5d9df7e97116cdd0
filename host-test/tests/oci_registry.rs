//! Round trip through a real OCI registry: the CNCF distribution registry
//! (Debian package `docker-registry`) on a loopback port with a temporary
//! storage directory. Push the built image, pull it back, check what Istio
//! would check, and run the pulled plugin in the harness.
//!
//! The registry is installed with apt when missing (CI and dev machines run
//! as root); if that is impossible the test fails and says why.

mod oci_cli;
use json_sanitizer_host::oci::auth::Credentials;
use json_sanitizer_host::oci::digest::sha256_hex;
use json_sanitizer_host::oci::image::{
    Variant, COMPAT_LAYER_MEDIA_TYPE, IMAGE_CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    VARIANT_ANNOTATION, WASM_CONFIG_MEDIA_TYPE, WASM_CONTENT_MEDIA_TYPE,
};
use json_sanitizer_host::oci::layout::Layout;
use json_sanitizer_host::oci::package::{build_layout, BuildOptions};
use json_sanitizer_host::oci::registry::{pull, push, RegistryOptions};
use oci_cli::{layer_media_types, run_cli};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod process;
use process::output_with_stdin;
use std::time::{Duration, Instant};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Makes sure the registry binary exists, installing the Debian package if not.
fn ensure_registry_binary() -> PathBuf {
    let bin = PathBuf::from(REGISTRY_BIN);
    if let Err(e) = process::install_debian_package("docker-registry", || bin.is_file()) {
        panic!("{REGISTRY_BIN} is missing: {e}; install the Debian package docker-registry to run this test");
    }
    bin
}

/// A registry process on 127.0.0.1; killed when dropped, even if the test fails.
struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        Self::start_with(None)
    }

    /// A registry that only serves clients who log in with one of the
    /// `htpasswd` lines (bcrypt), as a private company registry would.
    fn start_with(htpasswd: Option<&str>) -> Registry {
        let bin = ensure_registry_binary();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let config = dir.path().join("config.yml");
        let auth = match htpasswd {
            Some(lines) => {
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, lines).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("cannot start docker-registry");
        let mut reg = Registry {
            child,
            port,
            log,
            _dir: dir,
        };
        reg.wait_ready();
        reg
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The blob with `digest` (`sha256:…`) as the registry stores it.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self._dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `GET /v2/` until it answers (200, or 401 when it wants a
    /// login); bounded to 20 s.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited early ({status}):\n{}", self.logs());
            }
            if matches!(http_status(&self.host(), "/v2/"), Some(200 | 401)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry not ready after 20 s:\n{}", self.logs());
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Status code of a plain HTTP/1.0 GET, or None if the server is not answering.
fn http_status(host: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&host.parse().ok()?, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = std::str::from_utf8(&buf[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn plain_http() -> RegistryOptions {
    RegistryOptions {
        plain_http: true,
        credentials: Credentials::Anonymous,
        timeout: Duration::from_secs(60),
        ..RegistryOptions::default()
    }
}

fn plugin() -> PathBuf {
    json_sanitizer_host::ensure_plugin().expect("building the plugin")
}

fn build(out: &Path, plugin: &Path) -> json_sanitizer_host::oci::package::BuildReport {
    build_layout(&BuildOptions {
        plugin: plugin.to_path_buf(),
        out: out.to_path_buf(),
        tar: None,
        variants: vec![Variant::Compat, Variant::Wasm],
        tag: "test".into(),
    })
    .unwrap()
}

#[test]
fn push_pull_round_trip_through_a_real_registry() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let plugin_path = plugin();
    let source = std::fs::read(&plugin_path).unwrap();
    let layout_dir = tmp.path().join("layout");
    let report = build(&layout_dir, &plugin_path);
    let layout = Layout::open(&layout_dir).unwrap();
    let compat = layout.select(None, Some(Variant::Compat)).unwrap();
    let wasm = layout.select(None, Some(Variant::Wasm)).unwrap();
    assert_eq!(compat.manifest.digest, report.images[0].1.manifest.digest);

    let opts = plain_http();
    let repo = format!("{}/acme/json-sanitizer", registry.host());

    // Push both variants; the registry must serve our exact manifest digest.
    let pushed = push(&compat, &format!("{repo}:0.1.0"), &opts).unwrap();
    assert_eq!(pushed.manifest_digest, compat.manifest.digest);
    assert_eq!(pushed.pinned, format!("{repo}@{}", compat.manifest.digest));
    assert_eq!((pushed.uploaded, pushed.skipped), (2, 0));
    let pushed_wasm = push(&wasm, &format!("{repo}:0.1.0-wasm"), &opts).unwrap();
    assert_eq!(pushed_wasm.manifest_digest, wasm.manifest.digest);
    // Pushing again uploads nothing.
    let again = push(&compat, &format!("{repo}:0.1.0"), &opts).unwrap();
    assert_eq!((again.uploaded, again.skipped), (0, 2));

    // Pull the compat image by tag and by digest.
    for reference in [format!("{repo}:0.1.0"), pushed.pinned.clone()] {
        let pulled = pull(&reference, &opts).unwrap();
        assert_eq!(pulled.manifest_digest, compat.manifest.digest);
        assert_eq!(pulled.image.variant, Variant::Compat);
        let m: serde_json::Value = serde_json::from_slice(&pulled.image.manifest.bytes).unwrap();
        assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(m["config"]["mediaType"], IMAGE_CONFIG_MEDIA_TYPE);
        assert_eq!(m["layers"][0]["mediaType"], COMPAT_LAYER_MEDIA_TYPE);
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(m["annotations"][VARIANT_ANNOTATION], "compat");
        assert_eq!(sha256_hex(&pulled.plugin), sha256_hex(&source));
    }

    // The wasm variant.
    let pulled_wasm = pull(&format!("{repo}:0.1.0-wasm"), &opts).unwrap();
    let types = layer_media_types(&pulled_wasm.image.manifest.bytes);
    assert_eq!(types, [WASM_CONFIG_MEDIA_TYPE, WASM_CONTENT_MEDIA_TYPE]);
    assert_eq!(pulled_wasm.plugin, source);

    // Errors, not panics: unknown tag, digest that does not match, wrong scheme.
    assert!(pull(&format!("{repo}:missing"), &opts).is_err());
    let wrong = format!("{repo}@sha256:{}", "0".repeat(64));
    assert!(pull(&wrong, &opts).is_err());
    assert!(push(&compat, &wrong, &opts).is_err());
    let tls = RegistryOptions {
        plain_http: false,
        timeout: Duration::from_secs(20),
        ..plain_http()
    };
    let Err(err) = pull(&format!("{repo}:0.1.0"), &tls) else {
        panic!("TLS to a plain-HTTP registry succeeded");
    };
    assert!(format!("{err:#}").contains("add --plain-http"), "{err:#}");

    // Keep the pulled module for the harness check at the end.
    let pulled = pull(&pushed.pinned, &opts).unwrap();

    // The CLI does the same round trip.
    let cli_out = tmp.path().join("cli-pull");
    assert_eq!(
        run_cli(&[
            "oci",
            "push",
            "--layout",
            layout_dir.to_str().unwrap(),
            &format!("{repo}:cli"),
            "--plain-http",
        ])
        .unwrap(),
        0
    );
    assert_eq!(
        run_cli(&[
            "oci",
            "pull",
            &format!("{repo}:cli"),
            "--out",
            cli_out.to_str().unwrap(),
            "--plain-http",
        ])
        .unwrap(),
        0
    );
    assert_eq!(std::fs::read(cli_out.join("plugin.wasm")).unwrap(), source);
    // The pulled image is kept as a layout that can be pushed again.
    let repulled = Layout::open(&cli_out.join("image")).unwrap();
    assert_eq!(
        repulled.select(None, None).unwrap().manifest.digest,
        compat.manifest.digest
    );

    // Registry down: a clear error within the timeout.
    let host = registry.host();
    drop(registry);
    let started = Instant::now();
    let err = pull(&format!("{host}/acme/json-sanitizer:0.1.0"), &opts).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30), "{err:#}");

    // The module that came back from the registry runs in the harness and
    // rejects a too-deep body.
    assert_deep_body_rejected(&pulled.plugin);
}

fn assert_deep_body_rejected(wasm: &[u8]) {
    use json_sanitizer_host::{module_from_bytes, Host, Request};
    let module = module_from_bytes(wasm).unwrap();
    let host = Host::builder(module).config("{}").build().unwrap();
    let mut vm = host.start_vm().unwrap();
    let body = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let out = vm
        .send(
            &Request::post("/api")
                .content_type("application/json")
                .body(body)
                .with_content_length(),
        )
        .unwrap();
    let reply = out.local_reply.expect("a local reply");
    assert_eq!(reply.status, 400);
    let problem: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(problem["violation"], "too_deep");
    assert_eq!(out.forwarded_bytes, 0);
}

/// A registry that serves a blob whose bytes no longer match its digest (a
/// corrupt disk, a tampering mirror): pull must refuse it, not hand the
/// module to Envoy.
#[test]
fn pull_refuses_a_blob_that_does_not_match_its_digest() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let layout_dir = tmp.path().join("layout");
    build(&layout_dir, &plugin());
    let compat = Layout::open(&layout_dir)
        .unwrap()
        .select(None, Some(Variant::Compat))
        .unwrap();
    let opts = plain_http();
    let reference = format!("{}/acme/tampered:1", registry.host());
    push(&compat, &reference, &opts).unwrap();
    assert!(pull(&reference, &opts).is_ok());

    let manifest: serde_json::Value = serde_json::from_slice(&compat.manifest.bytes).unwrap();
    let layer = registry.blob_file(manifest["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&layer, bytes).unwrap();
    let err = format!("{:#}", pull(&reference, &opts).unwrap_err());
    assert!(err.contains("digest"), "{err}");
}

/// User `ci`, password `s3cret-for-tests`, bcrypt at cost 4 (the registry
/// checks it on every request, so the cheapest cost keeps the test quick).
const HTPASSWD: &str = "ci:$2b$04$A8IW9IaDrU0EWdn2caay9e7cXJfumxHvsMg0FN8MAkCgG0YAXmCNa\n";

/// A registry that wants a login: anonymous pushes are refused; the
/// binary's `--username` with `--password-stdin`, and a docker config named
/// by `--docker-config` or found through `$DOCKER_CONFIG`, get in.
#[test]
fn push_and_pull_log_in_with_flags_or_a_docker_config() {
    use base64::Engine as _;
    let registry = Registry::start_with(Some(HTPASSWD));
    let tmp = tempfile::tempdir().unwrap();
    let layout_dir = tmp.path().join("layout");
    build(&layout_dir, &plugin());
    let layout = layout_dir.to_str().unwrap();
    let repo = format!("{}/private/json-sanitizer", registry.host());
    let oci = |args: &[&str], stdin: &[u8], docker_config_dir: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_json-sanitizer-host"));
        cmd.arg("oci")
            .args(args)
            .env_remove("DOCKER_CONFIG")
            .env("HOME", tmp.path());
        if let Some(dir) = docker_config_dir {
            cmd.env("DOCKER_CONFIG", dir);
        }
        output_with_stdin(&mut cmd, stdin)
    };
    let succeeded = |out: &Output| {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    let tag = format!("{repo}:1");
    let anonymous = oci(
        &["push", "--layout", layout, &tag, "--plain-http"],
        b"",
        None,
    );
    assert_ne!(anonymous.status.code(), Some(0), "anonymous push accepted");
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert_eq!(stderr.lines().count(), 1, "one-line error: {stderr}");

    let login = [
        "push",
        "--layout",
        layout,
        &tag,
        "--plain-http",
        "--username",
        "ci",
        "--password-stdin",
    ];
    let wrong = oci(&login, b"wrong\n", None);
    assert_ne!(wrong.status.code(), Some(0), "a wrong password accepted");
    succeeded(&oci(&login, b"s3cret-for-tests\n", None));

    let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret-for-tests");
    let docker_dir = tmp.path().join("docker");
    std::fs::create_dir(&docker_dir).unwrap();
    let config = docker_dir.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    // The config named by the flag, then found through $DOCKER_CONFIG.
    let by_flag = ["--docker-config", config.to_str().unwrap()];
    for (name, flags, dir) in [
        ("by-flag", &by_flag[..], None),
        ("by-env", &[][..], Some(docker_dir.as_path())),
    ] {
        let out = tmp.path().join(name);
        let mut args = vec!["pull", &tag, "--out", out.to_str().unwrap(), "--plain-http"];
        args.extend(flags);
        succeeded(&oci(&args, b"", dir));
        assert_eq!(
            std::fs::read(out.join("plugin.wasm")).unwrap(),
            std::fs::read(plugin()).unwrap()
        );
    }
}

/// Without a registry: a refused connection says so (not "authentication
/// failed"), and a repository with capitals, which registries refuse, is
/// refused before anything is sent.
#[test]
fn registry_errors_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let report = build(&tmp.path().join("layout"), &plugin());
    let image = &report.images[0].1;
    let nobody = format!("127.0.0.1:{}/json-sanitizer/plugin:1", free_port());
    let e = push(image, &nobody, &plain_http()).unwrap_err();
    let text = format!("{e:#}").to_ascii_lowercase();
    assert!(text.contains("connection refused"), "{text}");
    assert!(!text.contains("authentication failed"), "{text}");
    let e = pull(&nobody, &plain_http()).unwrap_err();
    assert!(
        format!("{e:#}")
            .to_ascii_lowercase()
            .contains("connection refused"),
        "{e:#}"
    );
    for upper in ["Team/plugin:1", "UPPER/x:1"] {
        let e = push(image, upper, &plain_http()).unwrap_err();
        assert!(
            format!("{e:#}").contains("repository names are lowercase"),
            "{e:#}"
        );
    }
    let e = push(image, "127.0.0.1:5000/Team/plugin:1", &plain_http()).unwrap_err();
    assert!(
        format!("{e:#}").contains("invalid reference format"),
        "{e:#}"
    );
}
