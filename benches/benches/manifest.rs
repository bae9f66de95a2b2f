//! berth-manifest: digests against ring called directly, and manifest /
//! index parsing against the `oci-spec` crate's types, on the same bytes in
//! the same run.
//!
//! `cargo bench -p berth-benches --bench manifest`
//!
//! Targets, reported by `cargo xtask bench` from the medians: sha256 through
//! `Digester` within 5% of `ring::digest::digest`; parsing at least 1.5x
//! oci-spec.

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Duration;

use berth_benches::corpus::Lcg;
use berth_manifest::{
    Descriptor, Digest, Digester, ImageIndex, ImageManifest, Manifest, MediaType, Platform,
};
use divan::Bencher;
use divan::counter::{BytesCount, BytesFormat};

fn digest(g: &mut Lcg) -> Digest {
    Digest::parse(&format!("sha256:{}", g.hex(64))).expect("valid digest")
}

/// A 100-layer image manifest as BuildKit writes one: layer descriptors
/// with sizes, a few with annotations, and manifest annotations.
fn build_manifest_100_layers() -> Vec<u8> {
    let mut g = Lcg::new(7);
    let config = Descriptor::new(MediaType::OCI_CONFIG, digest(&mut g), 7023);
    let layers = (0..100)
        .map(|i| {
            let mut d = Descriptor::new(
                if i % 10 == 9 {
                    MediaType::OCI_LAYER_TAR_ZSTD
                } else {
                    MediaType::OCI_LAYER_TAR_GZIP
                },
                digest(&mut g),
                u64::try_from(g.below(50_000_000)).expect("fits"),
            );
            if i % 25 == 0 {
                d = d.with_annotation(
                    "org.opencontainers.image.title",
                    format!("layer-{i}.tar.gz"),
                );
            }
            d
        })
        .collect();
    ImageManifest::new(config, layers)
        .with_annotation("org.opencontainers.image.created", "2024-11-05T09:41:27Z")
        .with_annotation(
            "org.opencontainers.image.source",
            "https://github.com/example-org/webservice",
        )
        .to_raw()
        .expect("valid")
        .bytes
}

/// A 50-entry index: platforms with variants and OS versions, and
/// attestation entries with their annotations.
fn build_index_50_entries() -> Vec<u8> {
    let mut g = Lcg::new(11);
    let platforms = [
        "linux/amd64",
        "linux/arm64/v8",
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/386",
        "linux/ppc64le",
        "linux/s390x",
        "linux/riscv64",
        "linux/mips64le",
        "windows(10.0.17763.5576)/amd64",
    ];
    let manifests = (0..50)
        .map(|i| {
            let d = Descriptor::new(
                MediaType::OCI_MANIFEST,
                digest(&mut g),
                u64::try_from(500 + g.below(2000)).expect("fits"),
            );
            if i % 2 == 1 {
                let target = digest(&mut g).to_string();
                d.with_platform(Platform::new("unknown", "unknown"))
                    .with_annotation("vnd.docker.reference.digest", target)
                    .with_annotation("vnd.docker.reference.type", "attestation-manifest")
            } else {
                d.with_platform(
                    platforms[(i / 2) % platforms.len()]
                        .parse()
                        .expect("valid platform"),
                )
            }
        })
        .collect();
    ImageIndex::new(manifests)
        .with_annotation(
            "org.opencontainers.image.revision",
            "8e1c2d0b6f4a5e3c9d7b1a2f0e4c6d8b9a7f5e3c",
        )
        .to_raw()
        .expect("valid")
        .bytes
}

/// The 100-layer manifest, checked once: both sides accept it and agree on
/// what it holds.
static MANIFEST: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let manifest = build_manifest_100_layers();
    let ours = ImageManifest::from_slice(&manifest).expect("berth parses the manifest");
    let theirs: oci_spec::image::ImageManifest =
        serde_json::from_slice(&manifest).expect("oci-spec parses the manifest");
    assert_eq!(ours.layers.len(), theirs.layers().len());
    assert_eq!(ours.layers[42].size, theirs.layers()[42].size());
    manifest
});

/// The 50-entry index, checked the same way.
static INDEX: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let index = build_index_50_entries();
    let ours = ImageIndex::from_slice(&index).expect("berth parses the index");
    let theirs: oci_spec::image::ImageIndex =
        serde_json::from_slice(&index).expect("oci-spec parses the index");
    assert_eq!(ours.manifests.len(), theirs.manifests().len());
    index
});

/// 64 MiB of deterministic bytes, checked once: berth's digest is ring's.
static BLOB: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let len = 64 * 1024 * 1024;
    let mut g = Lcg::new(3);
    let buf: Vec<u8> = (0..len)
        .map(|_| u8::try_from(g.below(256)).expect("a byte"))
        .collect();
    let ring_hex: String = ring::digest::digest(&ring::digest::SHA256, &buf)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        Digester::sha256_of(&buf).encoded(),
        ring_hex,
        "same digest as ring"
    );
    buf
});

fn main() {
    // Throughput in MiB/s, as the end-to-end benches report it.
    // At least half a second per bench, so a bench of microseconds takes
    // thousands of samples and its median holds on a busy machine; divan's
    // options on the command line (`--min-time`, `--sample-count`...) win.
    divan::Divan::default()
        .min_time(Duration::from_millis(500))
        .bytes_format(BytesFormat::Binary)
        .config_with_args()
        .main();
}

/// Parsing a 100-layer image manifest.
#[divan::bench_group]
mod manifest_100_layers {
    use super::*;

    fn bytes() -> &'static [u8] {
        &MANIFEST
    }

    #[divan::bench]
    fn berth_image_manifest_from_slice(bencher: Bencher<'_, '_>) {
        let manifest = bytes();
        bencher.counter(BytesCount::of_slice(manifest)).bench(|| {
            ImageManifest::from_slice(black_box(manifest))
                .map(|m| m.layers.len())
                .unwrap_or(0)
        });
    }

    /// Through the media-type dispatch a client uses.
    #[divan::bench]
    fn berth_manifest_from_bytes(bencher: Bencher<'_, '_>) {
        let manifest = bytes();
        bencher.counter(BytesCount::of_slice(manifest)).bench(|| {
            Manifest::from_bytes(black_box(manifest), Some(MediaType::OCI_MANIFEST.as_str()))
                .map(|m| m.layers().len())
                .unwrap_or(0)
        });
    }

    #[divan::bench]
    fn oci_spec_image_manifest(bencher: Bencher<'_, '_>) {
        let manifest = bytes();
        bencher.counter(BytesCount::of_slice(manifest)).bench(|| {
            serde_json::from_slice::<oci_spec::image::ImageManifest>(black_box(manifest))
                .map(|m| m.layers().len())
                .unwrap_or(0)
        });
    }
}

/// Parsing a 50-entry image index.
#[divan::bench_group]
mod index_50_entries {
    use super::*;

    fn bytes() -> &'static [u8] {
        &INDEX
    }

    #[divan::bench]
    fn berth_image_index_from_slice(bencher: Bencher<'_, '_>) {
        let index = bytes();
        bencher.counter(BytesCount::of_slice(index)).bench(|| {
            ImageIndex::from_slice(black_box(index))
                .map(|m| m.manifests.len())
                .unwrap_or(0)
        });
    }

    /// Through the media-type dispatch a client uses.
    #[divan::bench]
    fn berth_manifest_from_bytes(bencher: Bencher<'_, '_>) {
        let index = bytes();
        bencher.counter(BytesCount::of_slice(index)).bench(|| {
            Manifest::from_bytes(black_box(index), Some(MediaType::OCI_INDEX.as_str()))
                .map(|m| m.manifests().len())
                .unwrap_or(0)
        });
    }

    #[divan::bench]
    fn oci_spec_image_index(bencher: Bencher<'_, '_>) {
        let index = bytes();
        bencher.counter(BytesCount::of_slice(index)).bench(|| {
            serde_json::from_slice::<oci_spec::image::ImageIndex>(black_box(index))
                .map(|m| m.manifests().len())
                .unwrap_or(0)
        });
    }
}

/// SHA-256 of 64 MiB: berth's `Digester` against `ring::digest::digest`.
/// One iteration takes tens of milliseconds, so fewer samples than divan's
/// default 100 still give a steady median.
#[divan::bench_group(sample_count = 15)]
mod sha256_64_mib {
    use super::*;

    fn blob() -> &'static [u8] {
        &BLOB
    }

    #[divan::bench]
    fn ring_digest(bencher: Bencher<'_, '_>) {
        let buf = blob();
        bencher
            .counter(BytesCount::of_slice(buf))
            .bench(|| ring::digest::digest(&ring::digest::SHA256, black_box(buf)).as_ref()[0]);
    }

    #[divan::bench]
    fn berth_digester_one_update(bencher: Bencher<'_, '_>) {
        let buf = blob();
        bencher.counter(BytesCount::of_slice(buf)).bench(|| {
            let mut d = Digester::sha256();
            d.update(black_box(buf));
            d.finish()
        });
    }

    /// As a blob stream arrives: 64 KiB at a time.
    #[divan::bench]
    fn berth_digester_64k_chunks(bencher: Bencher<'_, '_>) {
        let buf = blob();
        bencher.counter(BytesCount::of_slice(buf)).bench(|| {
            let mut d = Digester::sha256();
            for chunk in black_box(buf).chunks(64 * 1024) {
                d.update(chunk);
            }
            d.finish()
        });
    }
}
