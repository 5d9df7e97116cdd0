//! `oci build` as a library call: plugin file in, OCI layout (and tarball) out.
//!
//! Kept separate from the CLI so tests can build twice and compare digests
//! without parsing output.

use super::digest::sha256_digest;
use super::image::{build, Image, ImageMeta, Variant};
use super::layout::{layout_files, tarball, write_dir};
use super::reproducible::source_date_epoch;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Inputs of a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The module to package.
    pub plugin: PathBuf,
    /// Layout directory to write.
    pub out: PathBuf,
    /// Optional tarball of the layout.
    pub tar: Option<PathBuf>,
    /// Variants to include (first one is the default for `push`).
    pub variants: Vec<Variant>,
    /// Ref name of the compat image in the layout; the wasm variant gets `<tag>-wasm`.
    pub tag: String,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// SHA-256 (hex) of the packaged module.
    pub plugin_sha256: String,
    /// Size of the packaged module.
    pub plugin_size: u64,
    /// The images, in the order of `BuildOptions::variants`.
    pub images: Vec<(String, Image)>,
    /// Tarball path, digest and size, when one was asked for.
    pub tarball: Option<(PathBuf, String, u64)>,
}

/// The layout ref name of `variant` for `tag`.
pub fn ref_name(tag: &str, variant: Variant) -> String {
    match variant {
        Variant::Compat => tag.to_string(),
        Variant::Wasm => format!("{tag}-wasm"),
    }
}

/// Refuses a tag a registry would refuse (the OCI distribution spec's
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`), kept to 123 characters so that the
/// wasm variant's `<tag>-wasm` is one too: better at `build` than at `push`.
pub fn check_tag(tag: &str) -> Result<()> {
    let ok = (1..=123).contains(&tag.len())
        && tag.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphanumeric() || b == b'_' || (i > 0 && (b == b'.' || b == b'-'))
        });
    if !ok {
        bail!(
            "tag {tag:?} is not an image tag (letters, digits, `_`, and after the first character `.` and `-`; at most 123 characters)"
        );
    }
    Ok(())
}

/// Builds the images and writes the layout (and tarball).
pub fn build_layout(opts: &BuildOptions) -> Result<BuildReport> {
    check_tag(&opts.tag)?;
    if let Some(tar) = opts.tar.as_deref().filter(|t| t.is_dir()) {
        // Found before the layout is written, not after.
        bail!(
            "--tar {} is a directory; name the tarball file",
            tar.display()
        );
    }
    let wasm = read_plugin(&opts.plugin)?;
    let created = source_date_epoch()?;
    let meta = ImageMeta {
        version: opts.tag.clone(),
        created,
    };
    let mut images = Vec::new();
    for &variant in &opts.variants {
        images.push((ref_name(&opts.tag, variant), build(variant, &wasm, &meta)?));
    }
    let named: Vec<(&Image, String)> = images.iter().map(|(n, i)| (i, n.clone())).collect();
    let files = layout_files(&named)?;
    write_dir(&opts.out, &files)?;
    let tarball = match &opts.tar {
        None => None,
        Some(path) => {
            let bytes = tarball(&files, created.unwrap_or(0))?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some((path.clone(), sha256_digest(&bytes), bytes.len() as u64))
        }
    };
    Ok(BuildReport {
        plugin_sha256: super::digest::sha256_hex(&wasm),
        plugin_size: wasm.len() as u64,
        images,
        tarball,
    })
}

/// Reads the module, with a hint on how to produce it when it is missing.
pub fn read_plugin(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read plugin {}", path.display()))
}
