//! Properties: serialise -> parse -> serialise is byte-identical for
//! generated manifests and indexes; platform strings round-trip; a digest
//! over any chunking equals the one-shot digest.

use std::collections::BTreeMap;

use berth_manifest::{
    Descriptor, Digest, Digester, DockerManifest, DockerManifestList, ImageIndex, ImageManifest,
    Manifest, MediaType, ParsedManifest, Platform, Verifier,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

fn digest() -> impl Strategy<Value = Digest> {
    prop_oneof![
        4 => proptest::array::uniform32(any::<u8>()).prop_map(|b| Digest::from_sha256(&b)),
        1 => vec(any::<u8>(), 64).prop_map(|b| Digest::from_sha512(&b.try_into().expect("64 bytes"))),
        1 => ("x[a-z0-9]{0,5}([+._-][a-z0-9]{1,4}){0,2}", "[a-zA-Z0-9=_-]{1,40}")
            .prop_map(|(a, e)| Digest::parse_any_algorithm(&format!("{a}:{e}")).expect("grammar-valid")),
    ]
}

fn media_type() -> impl Strategy<Value = MediaType> {
    prop_oneof![
        Just(MediaType::OCI_LAYER_TAR_GZIP),
        Just(MediaType::OCI_LAYER_TAR_ZSTD),
        Just(MediaType::OCI_CONFIG),
        Just(MediaType::DOCKER_LAYER),
        Just(MediaType::OCI_EMPTY),
        "[a-z][a-z0-9.+-]{0,15}/[a-z0-9][a-z0-9.+_-]{0,30}".prop_map(|s| MediaType::new(&s)),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z0-9./_-]{0,20}", "\\PC{0,10}"]
}

fn platform() -> impl Strategy<Value = Platform> {
    (
        "[a-z0-9_.-]{1,8}",
        "[a-z0-9_.-]{1,8}",
        option::of("[a-z0-9_.-]{1,4}"),
        option::of("[0-9]{1,2}(\\.[0-9]{1,5}){0,3}"),
        vec("[a-z0-9]{1,6}", 0..3),
        vec("[a-z0-9]{1,6}", 0..3),
    )
        .prop_map(|(os, arch, variant, os_version, os_features, features)| {
            let mut p = Platform::new(os, arch);
            p.variant = variant.map(Into::into);
            p.os_version = os_version;
            p.os_features = os_features;
            p.features = features;
            p
        })
}

fn descriptor() -> impl Strategy<Value = Descriptor> {
    (
        media_type(),
        digest(),
        any::<u64>(),
        vec("https://[a-z]{1,10}\\.example/[a-z0-9/]{0,10}", 0..3),
        btree_map(text(), text(), 0..3),
        option::of(vec(any::<u8>(), 0..40)),
        option::of(platform()),
        option::of(media_type()),
    )
        .prop_map(
            |(mt, digest, size, urls, annotations, data, platform, artifact_type)| {
                let mut d = Descriptor::new(mt, digest, size);
                d.urls = urls;
                d.annotations = annotations;
                if let Some(bytes) = data {
                    d.size = u64::try_from(bytes.len()).expect("small");
                    d = d.with_data(&bytes);
                }
                d.platform = platform.map(Box::new);
                d.artifact_type = artifact_type;
                d
            },
        )
}

fn annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(text(), text(), 0..4)
}

fn image_manifest() -> impl Strategy<Value = ImageManifest> {
    (
        any::<bool>(),
        option::of(media_type()),
        descriptor(),
        vec(descriptor(), 0..6),
        option::of(descriptor()),
        annotations(),
    )
        .prop_map(
            |(with_type, artifact_type, config, layers, subject, annotations)| {
                let mut m = ImageManifest::new(config, layers);
                if !with_type {
                    m.media_type = None;
                }
                m.artifact_type = artifact_type;
                m.subject = subject;
                m.annotations = annotations;
                m
            },
        )
}

fn image_index() -> impl Strategy<Value = ImageIndex> {
    (
        any::<bool>(),
        option::of(media_type()),
        vec(descriptor(), 0..6),
        option::of(descriptor()),
        annotations(),
    )
        .prop_map(
            |(with_type, artifact_type, manifests, subject, annotations)| {
                let mut m = ImageIndex::new(manifests);
                if !with_type {
                    m.media_type = None;
                }
                m.artifact_type = artifact_type;
                m.subject = subject;
                m.annotations = annotations;
                m
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn image_manifest_round_trips_byte_for_byte(m in image_manifest()) {
        let raw = m.to_raw().expect("generated manifests are valid");
        for ct in [Some(MediaType::OCI_MANIFEST.as_str()), None] {
            let parsed = Manifest::from_bytes(&raw.bytes, ct).expect("parses");
            prop_assert_eq!(parsed.digest(), raw.digest.clone());
            let ParsedManifest::Image(back) = parsed.into_parsed() else {
                panic!("an image manifest");
            };
            prop_assert_eq!(&back, &m);
            prop_assert_eq!(back.to_raw().expect("valid").bytes, raw.bytes.clone());
        }
    }

    #[test]
    fn image_index_round_trips_byte_for_byte(m in image_index()) {
        let raw = m.to_raw().expect("generated indexes are valid");
        for ct in [Some(MediaType::OCI_INDEX.as_str()), None] {
            let parsed = Manifest::from_bytes(&raw.bytes, ct).expect("parses");
            let ParsedManifest::Index(back) = parsed.into_parsed() else {
                panic!("an index");
            };
            prop_assert_eq!(&back, &m);
            prop_assert_eq!(back.to_raw().expect("valid").bytes, raw.bytes.clone());
        }
    }

    #[test]
    fn docker_formats_round_trip_byte_for_byte(config in descriptor(), layers in vec(descriptor(), 0..5)) {
        let m = DockerManifest::new(config, layers.clone());
        let raw = m.to_raw().expect("valid");
        let ParsedManifest::Docker(back) = Manifest::from_bytes(&raw.bytes, None).expect("parses").into_parsed() else {
            panic!("Docker schema 2");
        };
        prop_assert_eq!(back.to_raw().expect("valid").bytes, raw.bytes);

        let list = DockerManifestList::new(layers);
        let raw = list.to_raw().expect("valid");
        let ParsedManifest::DockerList(back) = Manifest::from_bytes(&raw.bytes, None).expect("parses").into_parsed() else {
            panic!("Docker list");
        };
        prop_assert_eq!(back.to_raw().expect("valid").bytes, raw.bytes);
    }

    #[test]
    fn platform_strings_round_trip(mut p in platform()) {
        p.features.clear();
        p.os_features.clear();
        let text = p.to_string();
        let back: Platform = text.parse().expect("formatted platforms parse");
        prop_assert_eq!(&back, &p);
        // Normalising is idempotent, and a platform matches itself unless
        // it is unknown/unknown.
        let n = p.normalized();
        prop_assert_eq!(&n.normalized(), &n);
        prop_assert_eq!(p.matches(&p), !p.is_unknown());
        prop_assert_eq!(p.rank(&n), (!p.is_unknown()).then_some(0));
    }

    #[test]
    fn digester_over_any_chunking_equals_one_shot(
        bytes in vec(any::<u8>(), 0..4096),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let expected = Digester::sha256_of(&bytes);
        let mut d256 = Digester::sha256();
        let mut d512 = Digester::sha512();
        let size = u64::try_from(bytes.len()).expect("small");
        let mut v = Verifier::new(expected.clone(), size).expect("sha256");
        let mut start = 0;
        for &p in points.iter().chain(std::iter::once(&bytes.len())) {
            d256.update(&bytes[start..p]);
            d512.update(&bytes[start..p]);
            v.update(&bytes[start..p]).expect("never more than the size");
            start = p;
        }
        prop_assert_eq!(d256.finish(), expected);
        let mut one = Digester::sha512();
        one.update(&bytes);
        prop_assert_eq!(d512.finish(), one.finish());
        prop_assert!(v.finish().is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512), ct in option::of("[a-z/.+;= -]{0,40}")) {
        if let Ok(m) = Manifest::from_bytes(&bytes, ct.as_deref()) {
            prop_assert_eq!(m.raw(), &bytes[..]);
        }
    }
}
