//! berth-manifest: digests against ring called directly, and manifest /
//! index parsing against the `oci-spec` crate's types, on the same bytes in
//! the same run.
//!
//! `cargo bench -p berth-benches --bench manifest`
//!
//! Targets: sha256 through `Digester` within 5% of `ring::digest::digest`;
//! parsing at least 1.5x oci-spec.

use std::hint::black_box;

use berth_benches::Bench;
use berth_benches::corpus::Lcg;
use berth_manifest::{
    Descriptor, Digest, Digester, ImageIndex, ImageManifest, Manifest, MediaType, Platform,
};

fn digest(g: &mut Lcg) -> Digest {
    Digest::parse(&format!("sha256:{}", g.hex(64))).expect("valid digest")
}

/// A 100-layer image manifest as BuildKit writes one: layer descriptors
/// with sizes, a few with annotations, and manifest annotations.
fn manifest_100_layers() -> Vec<u8> {
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
fn index_50_entries() -> Vec<u8> {
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

fn digests(bench: &mut Bench) {
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

    let peer = bench.measure("ring::digest::digest sha256 64 MiB", len, || {
        ring::digest::digest(&ring::digest::SHA256, black_box(&buf)).as_ref()[0]
    });
    let whole = bench.measure("berth Digester sha256 64 MiB (one update)", len, || {
        let mut d = Digester::sha256();
        d.update(black_box(&buf));
        d.finish()
    });
    let streamed = bench.measure("berth Digester sha256 64 MiB (64 KiB chunks)", len, || {
        let mut d = Digester::sha256();
        for chunk in black_box(&buf).chunks(64 * 1024) {
            d.update(chunk);
        }
        d.finish()
    });
    bench.throughput(&peer);
    bench.throughput(&whole);
    bench.throughput(&streamed);
    let r1 = bench.ratio(&whole, &peer);
    let r2 = bench.ratio(&streamed, &peer);
    let worst = r1.min(r2);
    println!(
        "manifest-digest/target: Digester within 5% of ring: {} (worst {:.1}%)",
        if worst >= 0.95 { "met" } else { "NOT met" },
        (1.0 - worst) * 100.0
    );
}

fn parsing(bench: &mut Bench) {
    let manifest = manifest_100_layers();
    let index = index_50_entries();
    // Both sides accept both inputs, and agree on what they hold.
    let ours = ImageManifest::from_slice(&manifest).expect("berth parses the manifest");
    let theirs: oci_spec::image::ImageManifest =
        serde_json::from_slice(&manifest).expect("oci-spec parses the manifest");
    assert_eq!(ours.layers.len(), theirs.layers().len());
    assert_eq!(ours.layers[42].size, theirs.layers()[42].size());
    let ours = ImageIndex::from_slice(&index).expect("berth parses the index");
    let theirs: oci_spec::image::ImageIndex =
        serde_json::from_slice(&index).expect("oci-spec parses the index");
    assert_eq!(ours.manifests.len(), theirs.manifests().len());
    println!(
        "manifest-parse/inputs: 100-layer manifest {} bytes, 50-entry index {} bytes",
        manifest.len(),
        index.len()
    );

    let m_ours = bench.measure("berth ImageManifest::from_slice (100 layers)", 1, || {
        ImageManifest::from_slice(black_box(&manifest))
            .map(|m| m.layers.len())
            .unwrap_or(0)
    });
    let m_full = bench.measure("berth Manifest::from_bytes (100 layers)", 1, || {
        Manifest::from_bytes(black_box(&manifest), Some(MediaType::OCI_MANIFEST.as_str()))
            .map(|m| m.layers().len())
            .unwrap_or(0)
    });
    let m_peer = bench.measure("oci-spec ImageManifest (100 layers)", 1, || {
        serde_json::from_slice::<oci_spec::image::ImageManifest>(black_box(&manifest))
            .map(|m| m.layers().len())
            .unwrap_or(0)
    });
    let i_ours = bench.measure("berth ImageIndex::from_slice (50 entries)", 1, || {
        ImageIndex::from_slice(black_box(&index))
            .map(|m| m.manifests.len())
            .unwrap_or(0)
    });
    let i_full = bench.measure("berth Manifest::from_bytes (50 entries)", 1, || {
        Manifest::from_bytes(black_box(&index), Some(MediaType::OCI_INDEX.as_str()))
            .map(|m| m.manifests().len())
            .unwrap_or(0)
    });
    let i_peer = bench.measure("oci-spec ImageIndex (50 entries)", 1, || {
        serde_json::from_slice::<oci_spec::image::ImageIndex>(black_box(&index))
            .map(|m| m.manifests().len())
            .unwrap_or(0)
    });
    let ratios = [
        bench.ratio(&m_ours, &m_peer),
        bench.ratio(&m_full, &m_peer),
        bench.ratio(&i_ours, &i_peer),
        bench.ratio(&i_full, &i_peer),
    ];
    let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "manifest-parse/target: berth parsing at least 1.5x oci-spec: {} (worst {worst:.2}x)",
        if worst >= 1.5 { "met" } else { "NOT met" }
    );
}

fn main() {
    // `cargo bench --bench manifest -- manifest-parse` runs one group.
    let mut parse = Bench::new("manifest-parse");
    if parse.enabled() {
        parsing(&mut parse);
    }
    let mut digest = Bench::new("manifest-digest");
    if digest.enabled() {
        digests(&mut digest);
    }
}
