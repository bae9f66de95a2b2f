//! Test images written as OCI layouts: deterministic pseudo-random layers
//! of any size, one platform or a multi-platform index.

use std::io::{self, Write};
use std::path::Path;

use berth_manifest::{
    Descriptor, Digester, ImageConfig, ImageIndex, ImageManifest, MediaType, Platform,
};
use berth_reference::Digest;

/// One platform's image.
#[derive(Debug, Clone)]
pub struct TestImage {
    /// The platform (`linux/amd64`).
    pub platform: Platform,
    /// Layer sizes in bytes; each layer's bytes come from `seed`.
    pub layer_sizes: Vec<usize>,
    /// Makes the bytes differ between images.
    pub seed: u64,
}

impl TestImage {
    /// An image for `platform` (`"linux/arm64/v8"`) with these layer sizes.
    pub fn new(platform: &str, layer_sizes: &[usize], seed: u64) -> TestImage {
        TestImage {
            platform: platform.parse().expect("a valid platform string"),
            layer_sizes: layer_sizes.to_vec(),
            seed,
        }
    }
}

/// Incompressible deterministic bytes (xorshift), `len` of them.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write_blob(dir: &Path, bytes: &[u8]) -> io::Result<Digest> {
    let digest = Digester::sha256_of(bytes);
    let path = dir.join("blobs").join("sha256").join(digest.encoded());
    std::fs::create_dir_all(path.parent().expect("blobs/sha256"))?;
    std::fs::File::create(&path)?.write_all(bytes)?;
    Ok(digest)
}

/// Writes `images` into an OCI layout at `dir`, named `tag` in
/// `index.json`: one image manifest, or an image index over several.
/// Returns the descriptor `index.json` names.
pub fn write_layout(dir: &Path, tag: &str, images: &[TestImage]) -> io::Result<Descriptor> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut manifests = Vec::new();
    for image in images {
        let mut layers = Vec::new();
        for (i, &size) in image.layer_sizes.iter().enumerate() {
            let bytes = pseudo_random(size, image.seed.wrapping_mul(1000).wrapping_add(i as u64));
            let digest = write_blob(dir, &bytes)?;
            layers.push(Descriptor::new(
                MediaType::OCI_LAYER_TAR,
                digest,
                size as u64,
            ));
        }
        let mut config = ImageConfig::new(&image.platform);
        config.rootfs.diff_ids = layers.iter().map(|l| l.digest.clone()).collect();
        config.created = Some("2026-01-01T00:00:00Z".to_owned());
        let config_bytes = serde_json::to_vec(&config).map_err(io::Error::other)?;
        let config_digest = write_blob(dir, &config_bytes)?;
        let manifest = ImageManifest::new(
            Descriptor::new(
                MediaType::OCI_CONFIG,
                config_digest,
                config_bytes.len() as u64,
            ),
            layers,
        );
        let raw = manifest.to_raw().map_err(io::Error::other)?;
        write_blob(dir, &raw.bytes)?;
        manifests.push(raw.descriptor.with_platform(image.platform.clone()));
    }
    let top = if manifests.len() == 1 {
        manifests.remove(0)
    } else {
        let raw = ImageIndex::new(manifests)
            .to_raw()
            .map_err(io::Error::other)?;
        write_blob(dir, &raw.bytes)?;
        raw.descriptor
    };
    let mut named = top.clone();
    named.platform = None;
    let named = named.with_annotation("org.opencontainers.image.ref.name", tag);
    let index = ImageIndex::new(vec![named]);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).map_err(io::Error::other)?,
    )?;
    Ok(top)
}

/// The files left in an OCI layout's `DIR/.berth/` (berth's temporaries;
/// the index lock is not one): empty after any finished or failed run.
pub fn temporaries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir.join(".berth")) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "index.lock")
            .collect(),
        Err(_) => Vec::new(),
    }
}
