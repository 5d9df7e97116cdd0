//! The two wasm image formats proxies understand, built from one `plugin.wasm`.
//!
//! * **compat** — an ordinary OCI image: one `tar+gzip` layer holding
//!   `plugin.wasm` at its root, an OCI image config for `wasm`/`wasip1`, and the
//!   manifest annotation `module.wasm.image/variant=compat`. Istio, Envoy
//!   Gateway and plain container tooling (skopeo, crane, podman) accept it; it
//!   is the default.
//! * **wasm** — Solo's "oci" variant: a `application/vnd.module.wasm.config.v1+json`
//!   runtime config and the raw module as `application/vnd.module.wasm.content.layer.v1+wasm`.
//!   Istio requires exactly these two *layers*; the runtime config is also
//!   the manifest config, as Solo's `wasme` wrote it, so readers of either
//!   convention find it.
//!
//! Reading goes through [`classify`] and [`extract_plugin`], which accept
//! both, and check structure before trusting any content.

use super::digest::{sha256_digest, verify};
use super::reproducible::{canonical_json, gzip, rfc3339, tar, TarEntry};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{
    Arch, Descriptor, Digest, ImageConfigurationBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, Os, RootFsBuilder,
};
use std::collections::HashMap;
use std::io::Read;
use std::str::FromStr;

/// Layer media type of the compat variant.
pub const COMPAT_LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker's equivalent compat layer type, accepted when reading.
pub const DOCKER_LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Media type of the raw module layer in the wasm variant.
pub const WASM_CONTENT_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// Media type of the runtime config in the wasm variant.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.module.wasm.config.v1+json";
/// OCI image config media type (compat variant's manifest config).
pub const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker schema 2 manifest media type, accepted when reading.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Manifest annotation that marks the compat variant (Solo's spec; crun and
/// Istio look for it).
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
/// Name of the module inside the compat layer; Istio looks for exactly this.
pub const PLUGIN_FILE: &str = "plugin.wasm";
/// Name given to the runtime config layer of the wasm variant.
pub const RUNTIME_CONFIG_FILE: &str = "runtime-config.json";
/// The proxy-wasm root id the plugin registers; advertised in the runtime config.
pub const ROOT_ID: &str = "json_sanitizer";
/// Largest module we will extract: far above the plugin's size (goal 150 KB),
/// small enough that a hostile image (or a gzip bomb) cannot exhaust memory.
pub const MAX_PLUGIN_BYTES: u64 = 64 << 20;

/// Which image format to build or found when reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// One tar+gzip layer with `plugin.wasm` (the default; what Istio documents).
    Compat,
    /// Two layers with `application/vnd.module.wasm.*` media types.
    Wasm,
}

impl Variant {
    /// Short name used in output and in layout tags.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Compat => "compat",
            Variant::Wasm => "wasm",
        }
    }
}

/// A content-addressed blob with the media type it is referenced by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Media type used in the descriptor that points at this blob.
    pub media_type: String,
    /// Raw content.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl Blob {
    /// Wraps `bytes`, computing the digest once.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        let digest = sha256_digest(&bytes);
        Blob {
            media_type: media_type.to_string(),
            bytes,
            digest,
        }
    }

    fn descriptor(&self, annotations: &[(&str, &str)]) -> Result<Descriptor> {
        let mut d = Descriptor::new(
            MediaType::from(self.media_type.as_str()),
            self.bytes.len() as u64,
            Digest::from_str(&self.digest).map_err(|e| anyhow!("digest {}: {e}", self.digest))?,
        );
        if !annotations.is_empty() {
            d.set_annotations(Some(to_map(annotations)));
        }
        Ok(d)
    }
}

/// A complete image: manifest plus every blob it references.
#[derive(Debug, Clone)]
pub struct Image {
    /// Format of this image.
    pub variant: Variant,
    /// Manifest bytes exactly as stored and pushed (their digest is the image digest).
    pub manifest: Blob,
    /// The blob the manifest's `config` descriptor names.
    pub config: Blob,
    /// Layer blobs in manifest order.
    pub layers: Vec<Blob>,
}

impl Image {
    /// All blobs except the manifest, deduplicated (the wasm variant uses its
    /// runtime config as both config and layer).
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut out: Vec<&Blob> = vec![&self.config];
        for layer in &self.layers {
            if !out.iter().any(|b| b.digest == layer.digest) {
                out.push(layer);
            }
        }
        out
    }

    /// Total bytes a registry stores for this image (manifest included).
    pub fn total_size(&self) -> u64 {
        self.manifest.bytes.len() as u64
            + self
                .blobs()
                .iter()
                .map(|b| b.bytes.len() as u64)
                .sum::<u64>()
    }
}

/// Metadata stamped into the image; everything else derives from the module.
#[derive(Debug, Clone)]
pub struct ImageMeta {
    /// `org.opencontainers.image.version`.
    pub version: String,
    /// Seconds since the epoch for `created` fields; `None` leaves them out
    /// (see [`super::reproducible::source_date_epoch`]).
    pub created: Option<u64>,
}

/// Builds one variant from the module bytes; same inputs, same bytes.
pub fn build(variant: Variant, wasm: &[u8], meta: &ImageMeta) -> Result<Image> {
    check_wasm_module(wasm)?;
    match variant {
        Variant::Compat => build_compat(wasm, meta),
        Variant::Wasm => build_wasm(wasm, meta),
    }
}

/// Rejects input that is not a WebAssembly binary module, so a wrong
/// `--plugin` path fails at build time and not in a proxy.
pub fn check_wasm_module(wasm: &[u8]) -> Result<()> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        bail!("plugin is not a WebAssembly module (missing \\0asm magic)");
    }
    if wasm[4..8] != [1, 0, 0, 0] {
        bail!("plugin is not a core WebAssembly module (version field is not 1; components are not loadable by proxy-wasm hosts)");
    }
    if wasm.len() as u64 > MAX_PLUGIN_BYTES {
        bail!("plugin is larger than {MAX_PLUGIN_BYTES} bytes");
    }
    Ok(())
}

fn common_annotations(meta: &ImageMeta) -> Vec<(&'static str, String)> {
    let mut a = vec![
        (
            "org.opencontainers.image.title",
            "json-sanitizer".to_string(),
        ),
        (
            "org.opencontainers.image.description",
            "proxy-wasm filter that inspects JSON request bodies".to_string(),
        ),
        ("org.opencontainers.image.version", meta.version.clone()),
        (
            "org.opencontainers.image.licenses",
            "Apache-2.0".to_string(),
        ),
    ];
    if let Some(t) = meta.created {
        a.push(("org.opencontainers.image.created", rfc3339(t)));
    }
    a
}

fn build_compat(wasm: &[u8], meta: &ImageMeta) -> Result<Image> {
    let layer_tar = tar(
        &[TarEntry::File(PLUGIN_FILE.to_string(), wasm)],
        meta.created.unwrap_or(0),
    )?;
    let diff_id = sha256_digest(&layer_tar);
    let layer = Blob::new(COMPAT_LAYER_MEDIA_TYPE, gzip(&layer_tar)?);

    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![diff_id])
        .build()?;
    let mut config = ImageConfigurationBuilder::default()
        .architecture(Arch::Wasm)
        .os(Os::Other("wasip1".to_string()))
        .rootfs(rootfs);
    if let Some(t) = meta.created {
        config = config.created(rfc3339(t));
    }
    let config = Blob::new(IMAGE_CONFIG_MEDIA_TYPE, canonical_json(&config.build()?)?);

    let mut annotations = common_annotations(meta);
    annotations.push((VARIANT_ANNOTATION, "compat".to_string()));
    let manifest = manifest_blob(&config, &[&layer], &[&[]], &annotations)?;
    Ok(Image {
        variant: Variant::Compat,
        manifest,
        config,
        layers: vec![layer],
    })
}

fn build_wasm(wasm: &[u8], meta: &ImageMeta) -> Result<Image> {
    let runtime_config = serde_json::json!({
        "type": "envoy_proxy",
        "abiVersions": ["proxy_abi_version_0_2_1"],
        "config": { "root_ids": [ROOT_ID] },
    });
    let config = Blob::new(WASM_CONFIG_MEDIA_TYPE, canonical_json(&runtime_config)?);
    let content = Blob::new(WASM_CONTENT_MEDIA_TYPE, wasm.to_vec());
    let manifest = manifest_blob(
        &config,
        &[&config, &content],
        &[
            &[("org.opencontainers.image.title", RUNTIME_CONFIG_FILE)],
            &[("org.opencontainers.image.title", PLUGIN_FILE)],
        ],
        &common_annotations(meta),
    )?;
    Ok(Image {
        variant: Variant::Wasm,
        manifest,
        config: config.clone(),
        layers: vec![config, content],
    })
}

fn manifest_blob(
    config: &Blob,
    layers: &[&Blob],
    layer_annotations: &[&[(&str, &str)]],
    annotations: &[(&str, String)],
) -> Result<Blob> {
    let layer_descriptors = layers
        .iter()
        .zip(layer_annotations)
        .map(|(b, a)| b.descriptor(a))
        .collect::<Result<Vec<_>>>()?;
    let annotations: HashMap<String, String> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor(&[])?)
        .layers(layer_descriptors)
        .annotations(annotations)
        .build()?;
    Ok(Blob::new(MANIFEST_MEDIA_TYPE, canonical_json(&manifest)?))
}

fn to_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parses manifest bytes, refusing indexes and anything that is not an
/// image manifest (a clear error beats a confusing one three steps later).
pub fn parse_manifest(bytes: &[u8]) -> Result<ImageManifest> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).context("manifest is not valid JSON")?;
    if let Some(mt) = value.get("mediaType").and_then(|v| v.as_str()) {
        if mt != MANIFEST_MEDIA_TYPE && mt != DOCKER_MANIFEST_MEDIA_TYPE {
            bail!("unsupported manifest media type {mt:?} (an image index? reference a single image manifest)");
        }
    }
    if value.get("manifests").is_some() {
        bail!("reference points at an image index, not an image manifest");
    }
    serde_json::from_value(value).context("manifest does not follow the OCI image manifest schema")
}

/// Works out which variant a manifest is, by the same rules Istio applies:
/// last layer `tar+gzip` → compat; exactly two layers, one of them the wasm
/// content type → wasm.
pub fn classify(manifest: &ImageManifest) -> Result<Variant> {
    let layers = manifest.layers();
    let Some(last) = layers.last() else {
        bail!("manifest has no layers");
    };
    let last_type = last.media_type().to_string();
    if last_type == COMPAT_LAYER_MEDIA_TYPE || last_type == DOCKER_LAYER_MEDIA_TYPE {
        return Ok(Variant::Compat);
    }
    if layers.len() == 2
        && layers
            .iter()
            .any(|l| l.media_type().to_string() == WASM_CONTENT_MEDIA_TYPE)
    {
        return Ok(Variant::Wasm);
    }
    bail!(
        "manifest is neither a compat wasm image (tar+gzip layer) nor a wasm variant (two layers incl. {WASM_CONTENT_MEDIA_TYPE}); last layer is {last_type}"
    )
}

/// The descriptor of the layer that carries the module.
pub fn plugin_layer(manifest: &ImageManifest) -> Result<(Variant, &Descriptor)> {
    let variant = classify(manifest)?;
    let layers = manifest.layers();
    let layer = match variant {
        Variant::Compat => layers.last(),
        Variant::Wasm => layers
            .iter()
            .find(|l| l.media_type().to_string() == WASM_CONTENT_MEDIA_TYPE),
    }
    .ok_or_else(|| anyhow!("manifest has no plugin layer"))?;
    if layer.size() > MAX_PLUGIN_BYTES * 2 {
        bail!(
            "plugin layer is {} bytes, above the {MAX_PLUGIN_BYTES}-byte limit",
            layer.size()
        );
    }
    Ok((variant, layer))
}

/// Extracts the module from the verified bytes of its layer.
pub fn extract_plugin(variant: Variant, layer: &Descriptor, layer_bytes: &[u8]) -> Result<Vec<u8>> {
    verify(
        "plugin layer",
        layer_bytes,
        layer.digest().as_ref(),
        Some(layer.size()),
    )?;
    let wasm = match variant {
        Variant::Wasm => layer_bytes.to_vec(),
        Variant::Compat => plugin_from_tar_gz(layer_bytes)?,
    };
    check_wasm_module(&wasm)?;
    Ok(wasm)
}

/// Finds `plugin.wasm` in a gzipped tar (matching on the base name, as Istio
/// does), reading at most [`MAX_PLUGIN_BYTES`].
pub fn plugin_from_tar_gz(gz: &[u8]) -> Result<Vec<u8>> {
    let decoder = flate2::read::GzDecoder::new(gz);
    let mut archive = tar::Archive::new(decoder.take(MAX_PLUGIN_BYTES * 2));
    for entry in archive
        .entries()
        .context("layer is not a gzipped tar archive")?
    {
        let mut entry = entry.context("layer is not a valid gzipped tar archive")?;
        let path = entry.path().context("layer has an unreadable entry name")?;
        if path.file_name().and_then(|n| n.to_str()) != Some(PLUGIN_FILE) {
            continue;
        }
        if !entry.header().entry_type().is_file() {
            bail!("{PLUGIN_FILE} in the layer is not a regular file");
        }
        let size = entry.header().size().context("bad tar header")?;
        if size > MAX_PLUGIN_BYTES {
            bail!("{PLUGIN_FILE} is {size} bytes, above the {MAX_PLUGIN_BYTES}-byte limit");
        }
        let mut out = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut out)
            .context("layer is truncated or corrupt")?;
        return Ok(out);
    }
    bail!("{PLUGIN_FILE} not found in the layer")
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &[u8] = b"\0asm\x01\0\0\0";

    fn meta() -> ImageMeta {
        ImageMeta {
            version: "0.0.0".into(),
            created: None,
        }
    }

    #[test]
    fn compat_roundtrip() {
        let img = build(Variant::Compat, WASM, &meta()).unwrap();
        let m = parse_manifest(&img.manifest.bytes).unwrap();
        assert_eq!(
            m.annotations().as_ref().unwrap()[VARIANT_ANNOTATION],
            "compat"
        );
        let (v, layer) = plugin_layer(&m).unwrap();
        assert_eq!(v, Variant::Compat);
        assert_eq!(
            extract_plugin(v, layer, &img.layers[0].bytes).unwrap(),
            WASM
        );
    }

    #[test]
    fn wasm_variant_roundtrip() {
        let img = build(Variant::Wasm, WASM, &meta()).unwrap();
        let m = parse_manifest(&img.manifest.bytes).unwrap();
        assert_eq!(m.layers().len(), 2);
        assert_eq!(m.config().media_type().to_string(), WASM_CONFIG_MEDIA_TYPE);
        let (v, layer) = plugin_layer(&m).unwrap();
        assert_eq!(v, Variant::Wasm);
        assert_eq!(
            extract_plugin(v, layer, &img.layers[1].bytes).unwrap(),
            WASM
        );
        assert_eq!(img.blobs().len(), 2);
    }

    #[test]
    fn rejects_non_wasm_and_corrupt_layers() {
        assert!(build(Variant::Compat, b"not wasm", &meta()).is_err());
        let img = build(Variant::Compat, WASM, &meta()).unwrap();
        let m = parse_manifest(&img.manifest.bytes).unwrap();
        let (v, layer) = plugin_layer(&m).unwrap();
        let mut bad = img.layers[0].bytes.clone();
        let n = bad.len() / 2;
        bad[n] ^= 0xff;
        assert!(extract_plugin(v, layer, &bad).is_err());
        assert!(plugin_from_tar_gz(b"garbage").is_err());
        assert!(parse_manifest(br#"{"schemaVersion":2,"manifests":[]}"#).is_err());
    }
}
