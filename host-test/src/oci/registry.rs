//! Push to and pull from OCI registries (the distribution protocol is
//! `oci-client`'s; this module decides what to send and what to trust).
//!
//! Push sends the manifest bytes exactly as built, so the digest printed by
//! `oci build` is the digest in the registry (and the one to pin). Pull
//! trusts nothing it has not hashed: the manifest against the registry's
//! digest and the reference's, every blob against its descriptor.

use super::auth::Credentials;
use super::digest::verify;
use super::image::{
    classify, extract_plugin, parse_manifest, plugin_layer, Blob, Image,
    DOCKER_MANIFEST_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
};
use anyhow::{anyhow, bail, Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

/// Largest blob accepted from a registry; the plugin is ~100 KB.
pub const MAX_PULL_BLOB_BYTES: u64 = 128 << 20;

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Speak plain HTTP (local test registries, `localhost:5000`).
    pub plain_http: bool,
    /// Accept any TLS certificate (self-signed internal registries).
    pub insecure: bool,
    /// Who we are.
    pub credentials: Credentials,
    /// Bound on the whole operation, so a stuck registry cannot hang CI.
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            plain_http: false,
            insecure: false,
            credentials: Credentials::Anonymous,
            timeout: Duration::from_secs(300),
        }
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// Digest of the pushed manifest, as confirmed by the registry.
    pub manifest_digest: String,
    /// `registry/repository@sha256:…`: the immutable reference to deploy.
    pub pinned: String,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
}

/// A verified image pulled from a registry.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Digest of the manifest.
    pub manifest_digest: String,
    /// `registry/repository@sha256:…`.
    pub pinned: String,
    /// The image with all its blobs.
    pub image: Image,
    /// The extracted module.
    pub plugin: Vec<u8>,
}

/// Parses an image reference (`host[:port]/repo[:tag][@sha256:…]`).
/// Repository names are lowercase (OCI distribution spec); one with capitals
/// would be sent on as written and refused by the registry.
pub fn parse_reference(reference: &str) -> Result<Reference> {
    let parsed = reference
        .parse::<Reference>()
        .map_err(|e| anyhow!("invalid image reference {reference:?}: {e}"))?;
    if parsed.repository().bytes().any(|b| b.is_ascii_uppercase()) {
        bail!(
            "invalid image reference {reference:?}: repository names are lowercase ({:?})",
            parsed.repository()
        );
    }
    Ok(parsed)
}

/// The registry host[:port] of a reference, for credential look-up.
pub fn registry_of(reference: &str) -> Result<String> {
    Ok(parse_reference(reference)?.resolve_registry().to_string())
}

/// Pushes `image` to `reference` and checks the registry now serves our digest.
pub fn push(image: &Image, reference: &str, opts: &RegistryOptions) -> Result<PushReport> {
    let reference = parse_reference(reference)?;
    if let Some(d) = reference.digest() {
        if d != image.manifest.digest {
            bail!(
                "reference pins {d} but the image's manifest digest is {}",
                image.manifest.digest
            );
        }
    }
    block_on(opts, async {
        let client = client(opts);
        let auth = registry_auth(&opts.credentials);
        client
            .auth(&reference, &auth, RegistryOperation::Push)
            .await
            // The client's message alone says "error sending request", not
            // why: the error's chain (`{:#}`) carries the cause.
            .with_context(|| format!("{}: could not authenticate", reference.resolve_registry()))?;

        let (mut uploaded, mut skipped) = (0, 0);
        for blob in image.blobs() {
            let exists = client
                .blob_exists(&reference, &blob.digest)
                .await
                .with_context(|| reference.whole())?;
            if exists {
                skipped += 1;
                continue;
            }
            client
                .push_blob(&reference, blob.bytes.clone(), &blob.digest)
                .await
                .with_context(|| format!("pushing blob {}", blob.digest))?;
            uploaded += 1;
        }
        let content_type = http::HeaderValue::from_str(&image.manifest.media_type)
            .context("manifest media type is not a valid header value")?;
        client
            .push_manifest_raw(&reference, image.manifest.bytes.clone(), content_type)
            .await
            .context("pushing manifest")?;

        let served = client
            .fetch_manifest_digest(&reference, &auth)
            .await
            .context("reading back the manifest digest")?;
        if served != image.manifest.digest {
            bail!(
                "registry serves {served} for {} but we pushed {}",
                reference.whole(),
                image.manifest.digest
            );
        }
        Ok(PushReport {
            pinned: pinned(&reference, &served),
            manifest_digest: served,
            uploaded,
            skipped,
        })
    })
}

/// Pulls `reference`, verifies the manifest and every blob, and extracts the module.
pub fn pull(reference: &str, opts: &RegistryOptions) -> Result<Pulled> {
    let reference = parse_reference(reference)?;
    block_on(opts, async {
        let client = client(opts);
        let auth = registry_auth(&opts.credentials);
        let (manifest_bytes, digest) = client
            .pull_manifest_raw(
                &reference,
                &auth,
                &[MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE],
            )
            .await
            .with_context(|| format!("pulling manifest of {}", reference.whole()))?;
        let manifest_bytes = manifest_bytes.to_vec();
        // oci-client already compares body, header and reference digests;
        // check again here so the guarantee does not rest on a dependency.
        verify("manifest", &manifest_bytes, &digest, None)?;
        if let Some(pinned) = reference.digest() {
            if pinned != digest {
                bail!("manifest digest {digest} does not match the reference's {pinned}");
            }
        }
        let manifest = parse_manifest(&manifest_bytes)?;
        let variant = classify(&manifest)?;
        let media_type = manifest
            .media_type()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string());

        let fetch = |d: oci_spec::image::Descriptor| {
            let client = &client;
            let reference = &reference;
            async move {
                let digest = d.digest().to_string();
                if d.size() > MAX_PULL_BLOB_BYTES {
                    bail!("blob {digest} is {} bytes, above the limit", d.size());
                }
                let mut out = LimitedBuf::new(d.size());
                client
                    .pull_blob(reference, digest.as_str(), &mut out)
                    .await
                    .with_context(|| format!("pulling blob {digest}"))?;
                verify(&format!("blob {digest}"), &out.buf, &digest, Some(d.size()))?;
                Ok(Blob {
                    media_type: d.media_type().to_string(),
                    bytes: out.buf,
                    digest,
                })
            }
        };

        let config = fetch(manifest.config().clone()).await?;
        let mut layers: Vec<Blob> = Vec::new();
        for d in manifest.layers() {
            match layers
                .iter()
                .chain(std::iter::once(&config))
                .find(|b| b.digest == d.digest().as_ref())
            {
                Some(b) => {
                    let mut b = b.clone();
                    b.media_type = d.media_type().to_string();
                    layers.push(b);
                }
                None => layers.push(fetch(d.clone()).await?),
            }
        }
        let (_, layer) = plugin_layer(&manifest)?;
        let layer_blob = layers
            .iter()
            .find(|b| b.digest == layer.digest().as_ref())
            .ok_or_else(|| anyhow!("plugin layer missing"))?;
        let plugin = extract_plugin(variant, layer, &layer_blob.bytes)?;

        Ok(Pulled {
            pinned: pinned(&reference, &digest),
            manifest_digest: digest.clone(),
            image: Image {
                variant,
                manifest: Blob {
                    media_type,
                    digest,
                    bytes: manifest_bytes,
                },
                config,
                layers,
            },
            plugin,
        })
    })
}

fn pinned(reference: &Reference, digest: &str) -> String {
    format!(
        "{}/{}@{}",
        reference.resolve_registry(),
        reference.repository(),
        digest
    )
}

fn client(opts: &RegistryOptions) -> Client {
    // reqwest is built without a bundled crypto provider (keeps aws-lc and
    // cmake out of the build); install ring once per process. A second call
    // returns Err because one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: if opts.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: opts.insecure,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        // No image indexes: we address single manifests.
        platform_resolver: None,
        ..ClientConfig::default()
    })
}

fn registry_auth(c: &Credentials) -> RegistryAuth {
    match c {
        Credentials::Anonymous => RegistryAuth::Anonymous,
        Credentials::Basic { username, password } => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
        Credentials::Bearer(t) => RegistryAuth::Bearer(t.clone()),
    }
}

/// Runs `fut` to completion on a current-thread runtime, bounded by the
/// options' timeout; the CLI and the tests stay synchronous.
fn block_on<T>(
    opts: &RegistryOptions,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let timeout = opts.timeout;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(async {
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| anyhow!("registry operation timed out after {timeout:?}"))?
    });
    hint_plain_http(result, opts)
}

/// A TLS client that gets plain HTTP back reads a record of an unknown
/// type (rustls: `InvalidContentType`): the usual mistake with a local
/// registry, so the error says what to do.
fn hint_plain_http<T>(result: Result<T>, opts: &RegistryOptions) -> Result<T> {
    result.map_err(|e| {
        if !opts.plain_http && format!("{e:#}").contains("InvalidContentType") {
            e.context("the registry answered TLS with something else; for a plain-HTTP registry, add --plain-http")
        } else {
            e
        }
    })
}

/// An in-memory sink that refuses to grow past the size a descriptor declared,
/// so a misbehaving registry cannot make us buffer without bound.
struct LimitedBuf {
    buf: Vec<u8>,
    limit: u64,
}

impl LimitedBuf {
    fn new(limit: u64) -> Self {
        LimitedBuf {
            buf: Vec::with_capacity(limit.min(MAX_PULL_BLOB_BYTES) as usize),
            limit,
        }
    }
}

impl tokio::io::AsyncWrite for LimitedBuf {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.buf.len() as u64 + data.len() as u64 > self.limit {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "registry sent more than the {} bytes the descriptor declares",
                self.limit
            ))));
        }
        self.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
