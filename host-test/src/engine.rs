//! Building the plugin, and compiling it once: the process-wide wasmtime
//! engine, the in-process module cache and the on-disk compiled-code cache.

use anyhow::{anyhow, bail, Context as _, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use wasmtime::{Config, Engine, Module, OptLevel};

/// How often the background thread advances the engine epoch. Guest calls get
/// a deadline in these ticks, which bounds runaway guest code at the cost of
/// one load-and-compare per loop iteration (fuel would cost far more).
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Environment variable naming a prebuilt plugin; set, it disables the build.
pub const WASM_ENV: &str = "JSON_SANITIZER_WASM";

/// Environment variable naming the compiled-code cache directory, for a
/// read-only checkout or a cache kept apart (tests use one of their own).
pub const CACHE_ENV: &str = "JSON_SANITIZER_HOST_CACHE";

/// The workspace root (the crate lives in `<root>/host-test`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory for the workspace (`CARGO_TARGET_DIR` wins).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// Where `cargo build --profile wasm --target wasm32-wasip1` leaves the plugin.
pub fn plugin_path() -> PathBuf {
    wasm_artefact(PLUGIN)
}

/// Where the same build leaves `package`'s module.
fn wasm_artefact(package: &str) -> PathBuf {
    target_dir()
        .join("wasm32-wasip1")
        .join("wasm")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// The plugin's package.
const PLUGIN: &str = "json-sanitizer";

/// The package of the serde_json baseline module (`host-test/serde-baseline`).
const SERDE_BASELINE: &str = "serde-baseline";

/// Returns the plugin `.wasm`, building it first if needed.
///
/// `JSON_SANITIZER_WASM` names an explicit file and skips the build.
/// Otherwise, once per process, makes sure the `wasm32-wasip1` target is
/// installed and runs `cargo build --profile wasm --target wasm32-wasip1 -p
/// json-sanitizer` in the workspace, with [`remap_cargo_home_config`]; cargo
/// decides whether anything is stale, so tests, `demo` and `just build` share
/// one artefact. This is safe inside `cargo test`/`cargo run`: cargo releases
/// the target-dir lock before it runs the binary. Cargo's output is shown
/// only when the build fails.
pub fn ensure_plugin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(WASM_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("{WASM_ENV}={} is not a file", p.display());
        }
        return Ok(p);
    }
    static BUILT: Built = OnceLock::new();
    build_once(&BUILT, PLUGIN)
}

/// Returns serde_json's validation compiled to wasm (see
/// `host-test/serde-baseline`), building it like [`ensure_plugin`] builds
/// the plugin: the same target and profile, so `bench` can set serde_json
/// against the inspector in the same engine.
pub fn ensure_serde_baseline() -> Result<PathBuf> {
    static BUILT: Built = OnceLock::new();
    build_once(&BUILT, SERDE_BASELINE)
}

/// The outcome of one package's build, kept for the life of the process
/// (the error as text, so every caller gets it).
type Built = OnceLock<std::result::Result<PathBuf, String>>;

/// Builds `package` the first time it is asked for, then answers from `built`.
fn build_once(built: &Built, package: &str) -> Result<PathBuf> {
    built
        .get_or_init(|| build_wasm(package).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Builds `package` of the workspace for wasm with the plugin's profile.
fn build_wasm(package: &str) -> Result<PathBuf> {
    ensure_wasm_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(&cargo);
    build.current_dir(workspace_root()).args([
        "build",
        "--profile",
        "wasm",
        "--target",
        "wasm32-wasip1",
        "-p",
        package,
    ]);
    if let Some(config) = cargo_home().as_deref().and_then(remap_cargo_home_config) {
        build.args(["--config", &config]);
    }
    let out = build
        .output()
        .with_context(|| format!("running {}", Path::new(&cargo).display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first_error = stderr
            .lines()
            .find(|l| l.trim_start().starts_with("error"))
            .unwrap_or_else(|| stderr.lines().last().unwrap_or("no output"));
        bail!(
            "building {package} for wasm failed ({}): {}",
            out.status,
            first_error.trim()
        );
    }
    let path = wasm_artefact(package);
    if !path.is_file() {
        bail!(
            "cargo built {package} but {} does not exist",
            path.display()
        );
    }
    Ok(path)
}

/// Where cargo keeps its registry: `CARGO_HOME` (relative to the current
/// directory, as cargo reads it), or `.cargo` in the home directory (cargo's
/// own default).
pub fn cargo_home() -> Option<PathBuf> {
    match std::env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => Some(std::path::absolute(home).ok()?),
        _ => std::env::home_dir().map(|home| home.join(".cargo")),
    }
}

/// Where the plugin's build writes `CARGO_HOME`: the crates' source paths
/// that panic messages carry are rewritten to start here instead.
pub const REMAPPED_CARGO_HOME: &str = "/cargo";

/// The `cargo --config` value that makes the plugin's bytes independent of
/// the machine that builds it, or `None` for a `cargo_home` that is not
/// UTF-8.
///
/// Panic locations in the dependencies embed their source paths, which
/// start with `CARGO_HOME` (`/root/.cargo/registry/src/...`); the same
/// commit built by CI and on a laptop would differ in those bytes, and so in
/// the sha256 that an Istio `WasmPlugin` pins. Remapping the prefix to
/// [`REMAPPED_CARGO_HOME`] removes the difference. `--config` adds the flag
/// to the `rustflags` of `.cargo/config.toml` rather than replacing them; a
/// `RUSTFLAGS` set by the user still replaces both, as cargo documents.
/// `just build` passes the same value, so the two builds share one
/// artefact instead of invalidating each other.
pub fn remap_cargo_home_config(cargo_home: &Path) -> Option<String> {
    let flag = format!(
        "--remap-path-prefix={}={REMAPPED_CARGO_HOME}",
        cargo_home.to_str()?
    );
    // A JSON string is a valid TOML basic string (same escapes).
    let quoted = serde_json::to_string(&flag).ok()?;
    Some(format!("target.wasm32-wasip1.rustflags=[{quoted}]"))
}

fn ensure_wasm_target() -> Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .current_dir(workspace_root())
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success()
        && Path::new(&sysroot)
            .join("lib/rustlib/wasm32-wasip1")
            .is_dir()
    {
        return Ok(());
    }
    let st = Command::new("rustup")
        .current_dir(workspace_root())
        .args(["target", "add", "wasm32-wasip1"])
        .output()
        .context("running rustup target add wasm32-wasip1")?;
    if !st.status.success() {
        bail!(
            "rustup target add wasm32-wasip1 failed: {}",
            String::from_utf8_lossy(&st.stderr).trim()
        );
    }
    Ok(())
}

/// The process-wide engine: Cranelift at full optimisation, epoch
/// interruption on, and a background thread advancing the epoch every
/// [`EPOCH_TICK`]. One engine lets every VM share compiled code.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config).expect("wasmtime engine configuration is valid");
        let ticker = engine.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            })
            .expect("spawning the epoch thread");
        engine
    })
}

type Digest32 = [u8; 32];

fn digest32(bytes: &[u8]) -> Digest32 {
    let mut out = [0u8; 32];
    out.copy_from_slice(Sha256::digest(bytes).as_slice());
    out
}

fn memory_cache() -> &'static Mutex<HashMap<Digest32, Module>> {
    static CACHE: OnceLock<Mutex<HashMap<Digest32, Module>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Feeds `Hash` output into SHA-256 so wasmtime's compatibility hash becomes
/// a stable file-name component.
struct ShaHasher(Sha256);

impl std::hash::Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes(d.as_slice()[..8].try_into().unwrap_or([0; 8]))
    }
}

fn cache_key(bytes: &[u8]) -> (Digest32, String) {
    use std::hash::Hash;
    let content = digest32(bytes);
    let mut h = ShaHasher(Sha256::new());
    h.0.update(content);
    h.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    engine().precompile_compatibility_hash().hash(&mut h);
    let full = h.0.finalize();
    let hex: String = full
        .as_slice()
        .iter()
        .take(20)
        .map(|b| format!("{b:02x}"))
        .collect();
    (content, hex)
}

/// Directory of the on-disk compiled-code cache: `$JSON_SANITIZER_HOST_CACHE`,
/// else `json-sanitizer-host-cache` in the target directory.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os(CACHE_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => target_dir().join("json-sanitizer-host-cache"),
    }
}

/// Compiles (or fetches) the module in the file at `path`.
///
/// Compiled once per process; across processes the machine code is kept in
/// [`cache_dir`] under a name derived from the wasm bytes and the engine's
/// compatibility hash, written atomically (temp file + rename), so repeated
/// CLI runs and test binaries skip Cranelift. A corrupt or incompatible cache
/// file is ignored and rewritten.
pub fn load_module(path: &Path) -> Result<Module> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading plugin {}", path.display()))?;
    let (content, name) = cache_key(&bytes);
    if let Some(m) = memory_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&content)
    {
        return Ok(m.clone());
    }
    let dir = cache_dir();
    let file = dir.join(format!("{name}.cwasm"));
    let module = match file.is_file().then(|| {
        // SAFETY: the file was produced by `Module::serialize` of this same
        // engine configuration (its name includes the compatibility hash),
        // written atomically by this function; wasmtime still validates the
        // header and refuses incompatible artefacts.
        unsafe { Module::deserialize_file(engine(), &file) }
    }) {
        Some(Ok(m)) => m,
        _ => {
            let m = Module::new(engine(), &bytes).map_err(|e| {
                let text = String::from_utf8_lossy(&bytes);
                if bytes.starts_with(b"\0asm") {
                    anyhow!("compiling {}: {e:#}", path.display())
                } else if text.trim_start().starts_with(['(', ';']) {
                    // WAT text with a mistake: where it is, in full.
                    anyhow!("{} as WAT text: {e:#}", path.display())
                } else {
                    // Taken as WAT text, whose parser's message alone
                    // ("expected `(`") does not say what is wrong.
                    anyhow!(
                        "{} is not a wasm module (no \\0asm header), nor WAT text: {}",
                        path.display(),
                        format!("{e:#}").lines().next().unwrap_or_default()
                    )
                }
            })?;
            if let Ok(ser) = m.serialize() {
                let _ = write_atomically(&dir, &file, &ser);
            }
            m
        }
    };
    memory_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(content, module.clone());
    Ok(module)
}

fn write_atomically(dir: &Path, file: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("module"),
        std::process::id()
    ));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Compiles a module from wasm bytes or WAT text, cached in memory only
/// (for small test guests; the plugin goes through [`load_module`]).
pub fn module_from_bytes(bytes: impl AsRef<[u8]>) -> Result<Module> {
    let bytes = bytes.as_ref();
    let content = digest32(bytes);
    let mut cache = memory_cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = cache.get(&content) {
        return Ok(m.clone());
    }
    let m = Module::new(engine(), bytes).map_err(|e| anyhow!("compiling module: {e:#}"))?;
    cache.insert(content, m.clone());
    Ok(m)
}

/// The plugin module: [`ensure_plugin`] then [`load_module`].
pub fn plugin_module() -> Result<Module> {
    load_module(&ensure_plugin()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remap_flag_is_quoted_as_toml_whatever_the_path() {
        assert_eq!(
            remap_cargo_home_config(Path::new("/root/.cargo")).as_deref(),
            Some(r#"target.wasm32-wasip1.rustflags=["--remap-path-prefix=/root/.cargo=/cargo"]"#)
        );
        assert_eq!(
            remap_cargo_home_config(Path::new(r#"/home/a "b"\c/.cargo"#)).as_deref(),
            Some(
                r#"target.wasm32-wasip1.rustflags=["--remap-path-prefix=/home/a \"b\"\\c/.cargo=/cargo"]"#
            )
        );
    }
}
