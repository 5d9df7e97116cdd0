//! OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) on disk and
//! as a tarball.
//!
//! The layout is the hand-off format between `oci build` and `oci push` (and
//! what `skopeo copy oci:DIR …` / `oci-archive:FILE` read), so a release can be
//! built once, inspected, and pushed later to any registry. Reading verifies
//! every blob against its digest: a corrupt or edited layout is refused, never
//! pushed.

use super::digest::{parse_sha256, verify};
use super::image::{classify, parse_manifest, Blob, Image, Variant, MANIFEST_MEDIA_TYPE};
use super::reproducible::{canonical_json, tar, TarEntry};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageIndexBuilder, MediaType};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Annotation naming a manifest inside a layout (`oci:DIR:NAME` in skopeo).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Largest `index.json` or manifest we read: these are a few hundred bytes;
/// the bound keeps a hostile file from exhausting memory.
const MAX_JSON_BYTES: u64 = 4 << 20;

/// Largest blob we read from a layout.
const MAX_BLOB_BYTES: u64 = 256 << 20;

/// The files of a layout, path → content, in a deterministic order.
pub type LayoutFiles = BTreeMap<String, Vec<u8>>;

/// Lays out `images` (each with its ref name) as layout files.
pub fn layout_files(images: &[(&Image, String)]) -> Result<LayoutFiles> {
    let mut files = LayoutFiles::new();
    files.insert(
        "oci-layout".to_string(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    let mut manifests = Vec::new();
    for (image, name) in images {
        for blob in std::iter::once(&image.manifest).chain(image.blobs()) {
            let hex = parse_sha256(&blob.digest)?;
            files.insert(format!("blobs/sha256/{hex}"), blob.bytes.clone());
        }
        let mut d = Descriptor::new(
            MediaType::ImageManifest,
            image.manifest.bytes.len() as u64,
            Digest::from_str(&image.manifest.digest).map_err(|e| anyhow!("{e}"))?,
        );
        d.set_annotations(Some(HashMap::from([(
            REF_NAME_ANNOTATION.to_string(),
            name.clone(),
        )])));
        manifests.push(d);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()?;
    files.insert("index.json".to_string(), canonical_json(&index)?);
    Ok(files)
}

/// Writes layout files into `dir`, replacing a previous layout there but
/// refusing to write into a non-empty directory that is not one (so a typo in
/// `--out` cannot scatter blobs into, say, the source tree).
pub fn write_dir(dir: &Path, files: &LayoutFiles) -> Result<()> {
    if dir.exists() {
        let is_layout = dir.join("oci-layout").is_file();
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
        if !is_layout && !empty {
            bail!(
                "{} exists, is not empty and is not an OCI layout; refusing to write there",
                dir.display()
            );
        }
        if is_layout {
            let blobs = dir.join("blobs");
            if blobs.exists() {
                std::fs::remove_dir_all(&blobs)
                    .with_context(|| format!("cannot clear {}", blobs.display()))?;
            }
        }
    }
    for (path, bytes) in files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&full, bytes).with_context(|| format!("cannot write {}", full.display()))?;
    }
    Ok(())
}

/// The layout as one deterministic tar (the `oci-archive` format): same files,
/// same bytes.
pub fn tarball(files: &LayoutFiles, mtime: u64) -> Result<Vec<u8>> {
    let mut entries = vec![
        TarEntry::Dir("blobs".to_string()),
        TarEntry::Dir("blobs/sha256".to_string()),
    ];
    entries.extend(files.iter().map(|(p, b)| TarEntry::File(p.clone(), b)));
    tar(&entries, mtime)
}

/// A layout opened for reading.
#[derive(Debug)]
pub struct Layout {
    root: PathBuf,
    index: ImageIndex,
}

/// One manifest listed in a layout's index.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its `org.opencontainers.image.ref.name`, if any.
    pub name: Option<String>,
    /// The index descriptor.
    pub descriptor: Descriptor,
}

impl Layout {
    /// Opens `dir`, checking `oci-layout` and parsing `index.json`.
    pub fn open(dir: &Path) -> Result<Layout> {
        let marker = read_bounded(&dir.join("oci-layout"), MAX_JSON_BYTES)
            .with_context(|| format!("{} is not an OCI image layout", dir.display()))?;
        let marker: serde_json::Value =
            serde_json::from_slice(&marker).context("oci-layout is not valid JSON")?;
        match marker.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some("1.0.0") => {}
            other => bail!("unsupported OCI layout version {other:?}"),
        }
        let index = read_bounded(&dir.join("index.json"), MAX_JSON_BYTES)?;
        let index: ImageIndex =
            serde_json::from_slice(&index).context("index.json is not a valid OCI image index")?;
        Ok(Layout {
            root: dir.to_path_buf(),
            index,
        })
    }

    /// The manifests listed in `index.json`.
    pub fn entries(&self) -> Vec<Entry> {
        self.index
            .manifests()
            .iter()
            .map(|d| Entry {
                name: d
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME_ANNOTATION).cloned()),
                descriptor: d.clone(),
            })
            .collect()
    }

    /// Reads a blob and verifies its size and digest.
    pub fn read_blob(&self, digest: &str, size: u64) -> Result<Vec<u8>> {
        let hex = parse_sha256(digest)?;
        if size > MAX_BLOB_BYTES {
            bail!("blob {digest} is {size} bytes, above the {MAX_BLOB_BYTES}-byte limit");
        }
        let path = self.root.join("blobs").join("sha256").join(hex);
        let bytes = read_bounded(&path, size)?;
        verify(&format!("blob {digest}"), &bytes, digest, Some(size))?;
        Ok(bytes)
    }

    /// Loads and verifies one image: its manifest and every blob it names.
    pub fn load(&self, entry: &Entry) -> Result<Image> {
        let d = &entry.descriptor;
        let mt = d.media_type().to_string();
        if mt != MANIFEST_MEDIA_TYPE {
            bail!(
                "index entry {} has media type {mt}; only image manifests are supported",
                d.digest()
            );
        }
        let manifest_bytes = self.read_blob(d.digest().as_ref(), d.size())?;
        let manifest = parse_manifest(&manifest_bytes)?;
        let variant = classify(&manifest)?;
        let load = |d: &Descriptor| -> Result<Blob> {
            let bytes = self.read_blob(d.digest().as_ref(), d.size())?;
            Ok(Blob {
                media_type: d.media_type().to_string(),
                bytes,
                digest: d.digest().to_string(),
            })
        };
        Ok(Image {
            variant,
            manifest: Blob {
                media_type: MANIFEST_MEDIA_TYPE.to_string(),
                digest: d.digest().to_string(),
                bytes: manifest_bytes,
            },
            config: load(manifest.config())?,
            layers: manifest
                .layers()
                .iter()
                .map(load)
                .collect::<Result<Vec<_>>>()?,
        })
    }

    /// Picks the image to push: by ref name if given, else by variant (compat
    /// when the layout holds several and none is asked for).
    pub fn select(&self, name: Option<&str>, variant: Option<Variant>) -> Result<Image> {
        let entries = self.entries();
        if entries.is_empty() {
            bail!("layout {} lists no manifests", self.root.display());
        }
        if let Some(name) = name {
            let entry = entries
                .iter()
                .find(|e| e.name.as_deref() == Some(name))
                .ok_or_else(|| anyhow!("layout has no manifest named {name:?}"))?;
            return self.load(entry);
        }
        let want = variant.unwrap_or(Variant::Compat);
        let mut found = Vec::new();
        for entry in &entries {
            let image = self.load(entry)?;
            if entries.len() == 1 && variant.is_none() {
                return Ok(image);
            }
            if image.variant == want {
                found.push(image);
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => bail!("layout has no {} image", want.name()),
            _ => bail!(
                "layout has several {} images; choose one by name",
                want.name()
            ),
        }
    }
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!("{} is larger than expected ({limit} bytes)", path.display());
    }
    Ok(bytes)
}
