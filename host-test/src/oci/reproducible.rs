//! Byte-for-byte reproducible archives and JSON.
//!
//! The image digest is what users pin (Istio `sha256`, `@sha256:` references),
//! so building the same `plugin.wasm` twice must give the same digest: every
//! source of variation (timestamps, owners, modes, entry order, gzip header
//! fields, JSON key order) is fixed here, in one place.

use anyhow::{bail, Context, Result};
use flate2::{Compression, GzBuilder};
use serde::Serialize;
use std::io::Write;

/// Fixed gzip level: part of the reproducibility contract (a different level
/// gives different bytes, hence a different layer digest).
pub const GZIP_LEVEL: u32 = 9;

/// Fixed mode of regular files in the archives we write.
pub const FILE_MODE: u32 = 0o644;

/// Fixed mode of directories in the archives we write.
pub const DIR_MODE: u32 = 0o755;

/// The timestamp every archive entry and the image `created` fields use:
/// `SOURCE_DATE_EPOCH` when set (the reproducible-builds convention), else
/// `None`, meaning "epoch 0 in archives, no `created` field in JSON".
pub fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => bail!("SOURCE_DATE_EPOCH: {e}"),
    }
}

/// One entry of a deterministic tar archive.
#[derive(Debug, Clone)]
pub enum TarEntry<'a> {
    /// A directory (path without trailing slash).
    Dir(String),
    /// A regular file and its content.
    File(String, &'a [u8]),
}

impl TarEntry<'_> {
    fn path(&self) -> &str {
        match self {
            TarEntry::Dir(p) | TarEntry::File(p, _) => p,
        }
    }
}

/// Writes `entries` as a ustar archive sorted by path, owned by 0:0 with
/// empty user/group names, fixed modes and the given mtime, so the bytes
/// depend only on the names and contents.
pub fn tar(entries: &[TarEntry<'_>], mtime: u64) -> Result<Vec<u8>> {
    let mut sorted: Vec<&TarEntry<'_>> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path().cmp(b.path()));
    let mut builder = tar::Builder::new(Vec::new());
    for entry in sorted {
        let mut header = tar::Header::new_ustar();
        let (path, data, mode, kind): (String, &[u8], u32, tar::EntryType) = match entry {
            TarEntry::Dir(p) => (format!("{p}/"), &[], DIR_MODE, tar::EntryType::Directory),
            TarEntry::File(p, d) => (p.clone(), d, FILE_MODE, tar::EntryType::Regular),
        };
        header
            .set_path(&path)
            .with_context(|| format!("tar: cannot store path {path:?}"))?;
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_cksum();
        builder
            .append(&header, data)
            .with_context(|| format!("tar: cannot append {path:?}"))?;
    }
    builder.into_inner().context("tar: cannot finish archive")
}

/// Gzips `data` with no file name, mtime 0, OS byte "unknown" and a fixed
/// level, so the output depends only on the input (and the deflate
/// implementation pinned in Cargo.lock).
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(GZIP_LEVEL));
    encoder.write_all(data).context("gzip: write")?;
    encoder.finish().context("gzip: finish")
}

/// Serializes `value` as canonical JSON (sorted keys, no insignificant
/// whitespace): OCI manifests and configs are hashed, and maps such as
/// `annotations` must not come out in hash-map order.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value
        .serialize(&mut ser)
        .context("cannot serialize canonical JSON")?;
    Ok(out)
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`),
/// the format of OCI `created` fields, without pulling in a date crate.
pub fn rfc3339(epoch_seconds: u64) -> String {
    let days = (epoch_seconds / 86_400) as i64;
    let secs = epoch_seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn gzip_has_fixed_header_and_roundtrips() {
        let a = gzip(b"hello").unwrap();
        let b = gzip(b"hello").unwrap();
        assert_eq!(a, b);
        // magic, CM=deflate, FLG=0 (no name/comment), MTIME=0.
        assert_eq!(&a[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        assert_eq!(a[9], 255);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&a[..]), &mut out).unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn tar_is_sorted_and_deterministic() {
        let entries = [
            TarEntry::File("b".into(), b"2"),
            TarEntry::Dir("a".into()),
            TarEntry::File("a/x".into(), b"1"),
        ];
        let t1 = tar(&entries, 0).unwrap();
        let mut rev = entries.to_vec();
        rev.reverse();
        assert_eq!(t1, tar(&rev, 0).unwrap());
        let mut archive = tar::Archive::new(&t1[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a/", "a/x", "b"]);
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let mut m = std::collections::HashMap::new();
        for k in ["z", "a", "m"] {
            m.insert(k.to_string(), 1);
        }
        assert_eq!(canonical_json(&m).unwrap(), br#"{"a":1,"m":1,"z":1}"#);
    }
}
