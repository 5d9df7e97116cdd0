//! OCI wasm image tooling: build the plugin image reproducibly, push it to any
//! registry, pull it back verified.
//!
//! This is how the filter reaches Istio (`WasmPlugin.spec.url: oci://…`) and
//! Envoy Gateway without Docker on the build machine: `oci build` writes an
//! OCI image layout (and a tarball of it) whose manifest digest depends only
//! on `plugin.wasm`; `oci push` uploads that exact manifest; `oci pull`
//! fetches an image, checks every digest and extracts `plugin.wasm`.

pub mod auth;
pub mod digest;
pub mod image;
pub mod layout;
pub mod package;
pub mod registry;
pub mod reproducible;

use anyhow::{bail, Context, Result};
use image::Variant;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of the `oci` subcommand.
#[derive(Debug, clap::Args)]
pub struct OciCommand {
    /// What to do.
    #[command(subcommand)]
    pub action: OciAction,
}

/// The `oci` actions.
#[derive(Debug, clap::Subcommand)]
pub enum OciAction {
    /// Package plugin.wasm as an OCI image layout (and tarball), reproducibly.
    Build(BuildArgs),
    /// Push an image from an OCI layout to a registry.
    Push(PushArgs),
    /// Pull an image, verify every digest and extract plugin.wasm.
    Pull(PullArgs),
    /// Verify an OCI layout and describe the images in it.
    Inspect(InspectArgs),
}

/// Which variants `oci build` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuildVariant {
    /// Single tar+gzip layer (Istio, Envoy Gateway, any registry).
    Compat,
    /// Two `application/vnd.module.wasm.*` layers.
    Wasm,
    /// Both, in one layout (`<tag>` and `<tag>-wasm`).
    Both,
}

/// Arguments of `oci build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The module to package [default: the release build, built if missing].
    #[arg(long, value_name = "WASM")]
    pub plugin: Option<PathBuf>,
    /// OCI image layout directory to write (replaced if it is already a layout).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Also write the layout as a tarball (oci-archive).
    #[arg(long, value_name = "FILE")]
    pub tar: Option<PathBuf>,
    /// Image variant(s) to build.
    #[arg(long, value_enum, default_value = "compat")]
    pub variant: BuildVariant,
    /// Ref name of the image in the layout [default: the crate version].
    #[arg(long)]
    pub tag: Option<String>,
}

/// How to reach and authenticate to a registry (shared by push and pull).
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Use plain HTTP instead of HTTPS (local registries only).
    #[arg(long, alias = "insecure-http")]
    pub plain_http: bool,
    /// Accept invalid TLS certificates.
    #[arg(long)]
    pub insecure: bool,
    /// Registry user name (else the docker config is used).
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Registry password or token (prefer --password-stdin: arguments are visible in `ps`).
    #[arg(long, short = 'p', conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Docker config file with credentials [default: $DOCKER_CONFIG/config.json or ~/.docker/config.json].
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
}

/// Arguments of `oci push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// OCI image layout written by `oci build`.
    #[arg(long, value_name = "DIR")]
    pub layout: PathBuf,
    /// Target reference, e.g. `ghcr.io/acme/json-sanitizer:0.1.0`.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Variant to push when the layout holds several [default: compat].
    #[arg(long, value_enum, conflicts_with = "name")]
    pub variant: Option<Variant>,
    /// Ref name of the image in the layout to push.
    #[arg(long)]
    pub name: Option<String>,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `oci pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Reference to pull, by tag or `@sha256:` digest.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Directory to write `plugin.wasm` and the pulled image (as an OCI layout under `image/`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `oci inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// OCI image layout directory.
    #[arg(value_name = "DIR")]
    pub layout: PathBuf,
}

/// Runs the `oci` subcommand; returns the process exit code.
pub fn run(cmd: OciCommand) -> Result<i32> {
    match cmd.action {
        OciAction::Build(a) => run_build(a),
        OciAction::Push(a) => run_push(a),
        OciAction::Pull(a) => run_pull(a),
        OciAction::Inspect(a) => run_inspect(a),
    }
}

fn run_build(a: BuildArgs) -> Result<i32> {
    // Without --plugin, package the release build, (re)building it when
    // missing or stale, so the image always matches the sources.
    let plugin = match a.plugin {
        Some(p) => p,
        None => crate::ensure_plugin()?,
    };
    let variants = match a.variant {
        BuildVariant::Compat => vec![Variant::Compat],
        BuildVariant::Wasm => vec![Variant::Wasm],
        BuildVariant::Both => vec![Variant::Compat, Variant::Wasm],
    };
    let report = package::build_layout(&package::BuildOptions {
        plugin: plugin.clone(),
        out: a.out.clone(),
        tar: a.tar,
        variants,
        tag: a
            .tag
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string()),
    })?;
    crate::outln!(
        "plugin   {}  {} bytes  sha256:{}",
        plugin.display(),
        report.plugin_size,
        report.plugin_sha256
    )?;
    for (name, img) in &report.images {
        print_image(name, img)?;
    }
    crate::outln!("layout   {}", a.out.display())?;
    if let Some((path, digest, size)) = &report.tarball {
        crate::outln!("tarball  {}  {size} bytes  {digest}", path.display())?;
    }
    Ok(0)
}

fn print_image(name: &str, img: &image::Image) -> Result<()> {
    let layers: Vec<String> = img
        .layers
        .iter()
        .map(|l| format!("{} ({} bytes)", l.media_type, l.bytes.len()))
        .collect();
    crate::outln!(
        "{:<8} {name}  manifest {}  {} bytes",
        img.variant.name(),
        img.manifest.digest,
        img.manifest.bytes.len()
    )?;
    crate::outln!(
        "           config {} ({} bytes); layers: {}; total {} bytes",
        img.config.media_type,
        img.config.bytes.len(),
        layers.join(", "),
        img.total_size()
    )?;
    Ok(())
}

fn registry_options(r: &RegistryArgs, reference: &str) -> Result<registry::RegistryOptions> {
    let password = if r.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut s)
            .context("cannot read the password from stdin")?;
        Some(s.trim_end_matches(['\r', '\n']).to_string())
    } else {
        r.password.clone()
    };
    let credentials = auth::resolve(
        &registry::registry_of(reference)?,
        r.username.as_deref(),
        password.as_deref(),
        r.docker_config.as_deref(),
    )?;
    if r.timeout == 0 {
        bail!("--timeout must be at least 1 second");
    }
    Ok(registry::RegistryOptions {
        plain_http: r.plain_http,
        insecure: r.insecure,
        credentials,
        timeout: Duration::from_secs(r.timeout),
    })
}

fn run_push(a: PushArgs) -> Result<i32> {
    let opts = registry_options(&a.registry, &a.reference)?;
    let layout = layout::Layout::open(&a.layout)?;
    let image = layout.select(a.name.as_deref(), a.variant)?;
    let report = registry::push(&image, &a.reference, &opts)?;
    crate::outln!(
        "pushed   {} ({}) to {}",
        report.manifest_digest,
        image.variant.name(),
        a.reference
    )?;
    crate::outln!("pinned   {}", report.pinned)?;
    crate::outln!(
        "blobs    {} uploaded, {} already present",
        report.uploaded,
        report.skipped
    )?;
    Ok(0)
}

fn run_pull(a: PullArgs) -> Result<i32> {
    let opts = registry_options(&a.registry, &a.reference)?;
    let pulled = registry::pull(&a.reference, &opts)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let plugin_path = a.out.join(image::PLUGIN_FILE);
    std::fs::write(&plugin_path, &pulled.plugin)
        .with_context(|| format!("cannot write {}", plugin_path.display()))?;
    let tag = registry::parse_reference(&a.reference)?
        .tag()
        .unwrap_or("latest")
        .to_string();
    let files = layout::layout_files(&[(&pulled.image, tag)])?;
    layout::write_dir(&a.out.join("image"), &files)?;
    crate::outln!(
        "pulled   {} ({})",
        pulled.manifest_digest,
        pulled.image.variant.name()
    )?;
    crate::outln!("pinned   {}", pulled.pinned)?;
    crate::outln!(
        "plugin   {}  {} bytes  sha256:{}",
        plugin_path.display(),
        pulled.plugin.len(),
        digest::sha256_hex(&pulled.plugin)
    )?;
    Ok(0)
}

fn run_inspect(a: InspectArgs) -> Result<i32> {
    let layout = layout::Layout::open(&a.layout)?;
    let entries = layout.entries();
    if entries.is_empty() {
        bail!("layout {} lists no manifests", a.layout.display());
    }
    for entry in &entries {
        let img = layout.load(entry)?;
        let manifest = image::parse_manifest(&img.manifest.bytes)?;
        let (variant, layer) = image::plugin_layer(&manifest)?;
        let layer_blob = img
            .layers
            .iter()
            .find(|b| b.digest == layer.digest().as_ref())
            .context("plugin layer missing")?;
        let wasm = image::extract_plugin(variant, layer, &layer_blob.bytes)?;
        print_image(entry.name.as_deref().unwrap_or("-"), &img)?;
        crate::outln!(
            "           plugin.wasm {} bytes sha256:{}",
            wasm.len(),
            digest::sha256_hex(&wasm)
        )?;
    }
    crate::outln!(
        "verified {} image(s), every blob matches its digest",
        entries.len()
    )?;
    Ok(0)
}
