//! Content digests: the only identity an OCI blob has.
//!
//! Everything that crosses a trust boundary (a layout on disk, a registry
//! answer) is checked against the digest that names it before it is used, so
//! a corrupt or substituted blob is an error and never a plugin.

use anyhow::{bail, Result};
use sha2::{Digest as _, Sha256};

/// Lowercase hex SHA-256 of `bytes`: what `sha256sum` prints and what Istio's
/// `WasmPlugin.spec.sha256` pins.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>` of `bytes`: the OCI digest string used in descriptors.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Validates an OCI digest string and returns its hex part.
///
/// Only `sha256` is accepted: it is what every registry and this tool produce,
/// and accepting only well-formed lowercase hex also makes the value safe to
/// use as a file name under `blobs/sha256/`.
pub fn parse_sha256(digest: &str) -> Result<&str> {
    let Some(hex_part) = digest.strip_prefix("sha256:") else {
        bail!("unsupported digest {digest:?}: only sha256 is supported");
    };
    if hex_part.len() != 64
        || !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        bail!("malformed digest {digest:?}: expected sha256:<64 lowercase hex>");
    }
    Ok(hex_part)
}

/// Checks that `bytes` are exactly the content named by `expected` (and, when
/// given, of the declared size); `what` names the blob in the error message.
pub fn verify(what: &str, bytes: &[u8], expected: &str, size: Option<u64>) -> Result<()> {
    parse_sha256(expected)?;
    if let Some(size) = size {
        if bytes.len() as u64 != size {
            bail!(
                "{what}: size mismatch: descriptor says {size} bytes, got {}",
                bytes.len()
            );
        }
    }
    let actual = sha256_digest(bytes);
    if actual != expected {
        bail!("{what}: digest mismatch: expected {expected}, got {actual}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn rejects_bad_digests() {
        assert!(parse_sha256("sha512:00").is_err());
        assert!(parse_sha256("sha256:../../etc/passwd").is_err());
        assert!(parse_sha256(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(parse_sha256(&sha256_digest(b"x")).is_ok());
    }

    #[test]
    fn verify_checks_size_and_content() {
        let d = sha256_digest(b"abc");
        assert!(verify("blob", b"abc", &d, Some(3)).is_ok());
        assert!(verify("blob", b"abc", &d, Some(4)).is_err());
        assert!(verify("blob", b"abd", &d, None).is_err());
    }
}
