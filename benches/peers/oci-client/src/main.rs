//! The `oci-client` crate as a benchmark peer, driven by `cargo xtask bench`.
//!
//! ```text
//! oci-client-peer [--ca-file FILE] pull REF DIR        blobs streamed to DIR/blobs/sha256/
//! oci-client-peer [--ca-file FILE] push DIR REF        an OCI layout's image, streamed from files
//! oci-client-peer [--ca-file FILE] resolve-many PREFIX N   resolve PREFIX0 .. PREFIX{N-1}, one client
//! ```
//!
//! Plain HTTP is used for `127.0.0.1:*` and `localhost:*` registries unless
//! `--ca-file` is given (then HTTPS, trusting that CA). Everything is done
//! the way oci-client's own examples do it: `pull_image_manifest`, then
//! `pull_blob` into a tokio file for each blob (16 at a time, the crate's
//! default download concurrency); `push_blob_stream` (monolithic, from a
//! file stream) for each blob, then `push_manifest_raw`; `fetch_manifest_digest`
//! (HEAD) for each tag, sequentially, on one client.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

const CONCURRENCY: usize = oci_client::client::DEFAULT_MAX_CONCURRENT_DOWNLOAD;

/// One client for `reference`'s registry. `monolithic`: push each blob in
/// one PUT streamed from its file (oci-client's chunked stream push sends
/// many PATCHes of its chunk size instead).
fn client(reference: &str, ca: Option<&Path>, monolithic: bool) -> Result<Client> {
    let registry = reference.split('/').next().unwrap_or_default().to_owned();
    let mut config = ClientConfig {
        use_monolithic_push: monolithic,
        ..ClientConfig::default()
    };
    match ca {
        Some(ca) => {
            config.protocol = ClientProtocol::Https;
            config.extra_root_certificates = vec![Certificate {
                encoding: CertificateEncoding::Pem,
                data: std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?,
            }];
        }
        None => config.protocol = ClientProtocol::HttpsExcept(vec![registry]),
    }
    Ok(Client::new(config))
}

async fn pull(client: &Client, reference: &Reference, dir: &Path) -> Result<()> {
    let (manifest, digest) = client
        .pull_image_manifest(reference, &RegistryAuth::Anonymous)
        .await?;
    let blobs = dir.join("blobs/sha256");
    tokio::fs::create_dir_all(&blobs).await?;
    let descriptors: Vec<OciDescriptor> = std::iter::once(manifest.config.clone())
        .chain(manifest.layers.iter().cloned())
        .collect();
    stream::iter(descriptors.iter())
        .map(|d| {
            let path = blobs.join(d.digest.trim_start_matches("sha256:"));
            async move {
                let file = tokio::fs::File::create(&path).await?;
                client.pull_blob(reference, d, file).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await?;
    tokio::fs::write(
        blobs.join(digest.trim_start_matches("sha256:")),
        serde_json::to_vec(&manifest)?,
    )
    .await?;
    Ok(())
}

async fn push(client: &Client, dir: &Path, reference: &Reference) -> Result<()> {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json"))?)?;
    let top = &index["manifests"][0];
    let digest = top["digest"]
        .as_str()
        .context("index.json names no manifest")?;
    let media_type = top["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_owned();
    let blob_path = |d: &str| -> PathBuf {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let raw = std::fs::read(blob_path(digest))?;
    let manifest: serde_json::Value = serde_json::from_slice(&raw)?;
    let mut blobs = vec![(
        manifest["config"]["digest"]
            .as_str()
            .context("no config")?
            .to_owned(),
        manifest["config"]["size"]
            .as_u64()
            .context("no config size")?,
    )];
    for l in manifest["layers"].as_array().context("no layers")? {
        blobs.push((
            l["digest"]
                .as_str()
                .context("layer without digest")?
                .to_owned(),
            l["size"].as_u64().context("layer without size")?,
        ));
    }
    stream::iter(blobs)
        .map(|(digest, size)| {
            let path = blob_path(&digest);
            async move {
                let file = tokio::fs::File::open(&path).await?;
                let body = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
                    .map_err(|e| oci_client::errors::OciDistributionError::IoError(e));
                client
                    .push_blob_stream(reference, body, &digest, Some(size))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(oci_client::client::DEFAULT_MAX_CONCURRENT_UPLOAD)
        .try_collect::<()>()
        .await?;
    client
        .push_manifest_raw(reference, raw, media_type.parse()?)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut ca = None;
    if args.first().map(String::as_str) == Some("--ca-file") && args.len() > 1 {
        ca = Some(PathBuf::from(args.remove(1)));
        args.remove(0);
    }
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["pull", r, dir] => {
            let c = client(r, ca.as_deref(), false)?;
            pull(&c, &r.parse()?, Path::new(dir)).await
        }
        ["push", dir, r] => {
            let c = client(r, ca.as_deref(), true)?;
            push(&c, Path::new(dir), &r.parse()?).await
        }
        ["resolve-many", prefix, n] => {
            let n: usize = n.parse()?;
            let c = client(prefix, ca.as_deref(), false)?;
            for i in 0..n {
                let r: Reference = format!("{prefix}{i}").parse()?;
                let d = c
                    .fetch_manifest_digest(&r, &RegistryAuth::Anonymous)
                    .await?;
                if !d.starts_with("sha256:") {
                    bail!("{r}: unexpected digest {d}");
                }
            }
            Ok(())
        }
        _ => bail!(
            "usage: oci-client-peer [--ca-file FILE] pull REF DIR | push DIR REF | resolve-many PREFIX N"
        ),
    }
}
