//! Real-world shapes (`tests/data/fixtures/`): each parses, with concrete
//! values checked.

use berth_manifest::{
    Descriptor, Digester, ImageConfig, Manifest, MediaType, ParsedManifest, Platform, VerifyError,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn platform(s: &str) -> Platform {
    s.parse().expect("valid platform")
}

fn short(d: &Descriptor) -> String {
    d.digest.encoded()[..12].to_owned()
}

#[test]
fn docker_hub_manifest_list() {
    let bytes = fixture("docker-hub-manifest-list.json");
    let m = Manifest::from_bytes(
        &bytes,
        Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    )
    .expect("parses");
    assert_eq!(m.media_type(), &MediaType::DOCKER_MANIFEST_LIST);
    assert!(m.is_index());
    assert_eq!(m.manifests().len(), 11);
    assert_eq!(m.digest(), Digester::sha256_of(&bytes));
    let ParsedManifest::DockerList(list) = m.parsed() else {
        panic!("a Docker list");
    };
    assert_eq!(list.schema_version, 2);
    assert!(
        list.manifests
            .iter()
            .all(|d| d.media_type == MediaType::DOCKER_MANIFEST && d.size >= 525)
    );

    let pick = |p: &str| m.select(&platform(p)).map(short);
    assert_eq!(pick("linux/amd64").as_deref(), Some("d2c94e258dcb"));
    assert_eq!(pick("linux/x86_64").as_deref(), Some("d2c94e258dcb"));
    assert_eq!(
        pick("linux/amd64/v3").as_deref(),
        Some("d2c94e258dcb"),
        "v3 runs v1"
    );
    assert_eq!(pick("linux/386").as_deref(), Some("1b0c6b0f3d1e"));
    assert_eq!(pick("linux/arm64").as_deref(), Some("7e9b6e7ba284"));
    assert_eq!(pick("linux/aarch64/v8").as_deref(), Some("7e9b6e7ba284"));
    assert_eq!(
        pick("linux/arm").as_deref(),
        Some("6b4e7c1d2c6f"),
        "arm is arm/v7"
    );
    assert_eq!(pick("linux/arm/v7").as_deref(), Some("6b4e7c1d2c6f"));
    assert_eq!(
        pick("linux/arm/v6").as_deref(),
        Some("0f0a6f8b5c0f"),
        "v6 runs v5, not v7"
    );
    assert_eq!(pick("linux/armel").as_deref(), Some("0f0a6f8b5c0f"));
    assert_eq!(pick("linux/s390x").as_deref(), Some("1d1b3a7b0e6d"));
    assert_eq!(
        pick("windows(10.0.17763.6000)/amd64").as_deref(),
        Some("b7c8d9e0f1a2")
    );
    assert_eq!(
        pick("windows(10.0.20348.2700)/amd64").as_deref(),
        Some("a6a1d1c2a86b")
    );
    assert_eq!(pick("darwin/arm64"), None);

    let windows = &list.manifests[9];
    assert_eq!(
        windows
            .platform
            .as_ref()
            .and_then(|p| p.os_version.as_deref()),
        Some("10.0.20348.2340")
    );

    // skopeo copy --format oci: the list's entry types swap; back again is
    // the same list.
    let oci = list.to_oci().expect("converts");
    assert!(
        oci.manifests
            .iter()
            .all(|d| d.media_type == MediaType::OCI_MANIFEST)
    );
    assert_eq!(&oci.to_docker().expect("converts back"), list);
    let raw = list.to_raw().expect("valid");
    assert_eq!(
        Manifest::from_bytes(&raw.bytes, None)
            .expect("reparses")
            .parsed(),
        m.parsed()
    );
}

#[test]
fn ghcr_index_with_attestations() {
    let bytes = fixture("ghcr-oci-index-attestations.json");
    // GHCR once ignored Accept and answered with a generic type: sniffed.
    let m = Manifest::from_bytes(&bytes, Some("application/octet-stream")).expect("parses");
    assert_eq!(m.media_type(), &MediaType::OCI_INDEX);
    let ParsedManifest::Index(index) = m.parsed() else {
        panic!("an OCI index");
    };
    assert_eq!(index.manifests.len(), 6);
    let attestations: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.is_unknown_platform())
        .collect();
    assert_eq!(attestations.len(), 3);
    for a in &attestations {
        assert_eq!(
            a.annotations["vnd.docker.reference.type"],
            "attestation-manifest"
        );
        assert_eq!(a.size, 840);
    }
    // Each attestation names the image it attests.
    assert_eq!(
        attestations[0].annotations["vnd.docker.reference.digest"],
        index.manifests[0].digest.to_string()
    );
    assert_eq!(
        index.annotations["org.opencontainers.image.version"],
        "1.4.2"
    );
    assert_eq!(index.annotations.len(), 6);

    let pick = |p: &str| index.select(&platform(p)).map(short);
    assert_eq!(pick("linux/amd64").as_deref(), Some("3f1a8a3b6d9c"));
    assert_eq!(
        pick("linux/arm64/v8").as_deref(),
        Some("9a8b7c6d5e4f"),
        "arm64 entry without variant is v8"
    );
    assert_eq!(pick("linux/arm/v7").as_deref(), Some("4c5d6e7f8a9b"));
    assert_eq!(pick("linux/arm/v6"), None, "v6 cannot run v7");
    assert_eq!(
        pick("unknown/unknown"),
        None,
        "attestations are never picked"
    );
    assert_eq!(pick("linux/ppc64le"), None);
    // An arm64 machine prefers its own image to a 32-bit one.
    assert!(
        platform("linux/arm64")
            .rank(&platform("linux/arm/v7"))
            .is_some()
    );
    assert_eq!(pick("linux/arm64").as_deref(), Some("9a8b7c6d5e4f"));

    // Converting to a Docker list keeps the attestation entries (as OCI
    // manifests swapped to Docker's type) and drops the index annotations.
    let list = index.to_docker().expect("converts");
    assert_eq!(list.manifests.len(), 6);
    assert!(
        list.manifests
            .iter()
            .all(|d| d.media_type == MediaType::DOCKER_MANIFEST)
    );
}

#[test]
fn schema1_signed() {
    let bytes = fixture("schema1-signed.json");
    let payload_digest = String::from_utf8(fixture("schema1-signed.payload-digest")).expect("text");
    let payload_digest = payload_digest.trim();
    for content_type in [
        Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        None,
        Some("text/plain"),
        Some("application/json; charset=utf-8"),
    ] {
        let m = Manifest::from_bytes(&bytes, content_type).expect("parses");
        assert_eq!(
            m.media_type(),
            &MediaType::DOCKER_SCHEMA1_SIGNED,
            "{content_type:?}"
        );
        let ParsedManifest::Schema1(s) = m.parsed() else {
            panic!("schema 1");
        };
        assert_eq!(
            (s.name.as_str(), s.tag.as_str(), s.architecture.as_str()),
            ("library/alpine", "3.6", "amd64")
        );
        assert_eq!(s.fs_layers.len(), 2);
        assert_eq!(
            s.fs_layers[1].blob_sum.to_string(),
            "sha256:88286f41530e93dffd4b964e1db22ce4939fffa4a4c665dab8591fbab03d4926"
        );
        let v1: serde_json::Value =
            serde_json::from_str(&s.history[1].v1_compatibility).expect("v1 JSON");
        assert_eq!(v1["created"], "2017-06-27T18:42:16.612476016Z");
        assert!(s.is_signed());
        assert_eq!(s.signatures[0].header.alg, "ES256");
        let jwk = s.signatures[0].header.jwk.as_ref().expect("a key");
        assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), ("EC", "P-256"));

        // Registries name it by the payload's digest (signatures removed):
        // the known exception to "digest of the bytes".
        let payload = s.payload(m.raw()).expect("protected header is well-formed");
        assert_eq!(Digester::sha256_of(&payload).to_string(), payload_digest);
        assert!(!payload.windows(10).any(|w| w == b"signatures"));
        m.verify(&payload_digest.parse().expect("digest"))
            .expect("payload digest verifies");
        m.verify(&m.digest()).expect("raw digest verifies");
        let other = Digester::sha256_of(b"other");
        assert!(matches!(
            m.verify(&other),
            Err(VerifyError::DigestMismatch { .. })
        ));
        assert!(m.layers().is_empty() && m.config().is_none());
    }
}

#[test]
fn artifact_with_subject() {
    let bytes = fixture("artifact-with-subject.json");
    let m = Manifest::from_bytes(&bytes, Some("application/vnd.oci.image.manifest.v1+json"))
        .expect("parses");
    let ParsedManifest::Image(a) = m.parsed() else {
        panic!("an OCI image manifest");
    };
    assert_eq!(
        a.artifact_type.as_ref().map(MediaType::as_str),
        Some("application/vnd.cncf.notary.signature")
    );
    assert_eq!(
        a.effective_artifact_type().as_str(),
        "application/vnd.cncf.notary.signature"
    );
    assert_eq!(a.config, Descriptor::empty());
    assert_eq!(
        a.config.decoded_data().expect("verifies").as_deref(),
        Some(&b"{}"[..])
    );
    assert_eq!(a.layers[0].media_type.as_str(), "application/jose+json");
    assert_eq!(a.layers[0].size, 2118);
    let subject = m.subject().expect("has a subject");
    assert_eq!(subject.size, 1607);
    assert_eq!(short(subject), "3f1a8a3b6d9c");
    assert!(
        a.annotations
            .contains_key("io.cncf.notary.x509chain.thumbprint#S256")
    );
    // Its descriptor, as a referrers list shows it, carries the type.
    let d = m.descriptor();
    assert_eq!(d.artifact_type, a.artifact_type);
    assert_eq!(d.size, u64::try_from(bytes.len()).expect("small"));
    // Docker's format cannot hold it.
    assert!(a.to_docker().is_err());
}

#[test]
fn config_with_null_fields() {
    let bytes = fixture("config-null-fields.json");
    let c = ImageConfig::from_slice(&bytes).expect("tolerates nulls");
    assert_eq!((c.os.as_str(), c.architecture.as_str()), ("linux", "amd64"));
    assert_eq!(c.created.as_deref(), Some("0001-01-01T00:00:00Z"));
    assert!(c.history.is_empty());
    assert!(c.os_features.is_empty());
    assert_eq!(c.rootfs.kind, "layers");
    assert!(c.rootfs.diff_ids.is_empty());
    let rc = c.config.as_ref().expect("runtime config");
    assert!(
        rc.env.is_empty()
            && rc.labels.is_empty()
            && rc.exposed_ports.is_empty()
            && rc.volumes.is_empty()
    );
    assert_eq!(rc.cmd, None);
    assert_eq!(rc.entrypoint, None);
    assert_eq!(rc.user.as_deref(), Some(""));
    assert_eq!(c.platform(), platform("linux/amd64"));
}

#[test]
fn docker_hub_schema2_converts_to_oci() {
    let bytes = fixture("docker-hub-schema2.json");
    let m = Manifest::from_bytes(
        &bytes,
        Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
    )
    .expect("parses");
    assert_eq!(m.media_type(), &MediaType::DOCKER_MANIFEST);
    let ParsedManifest::Docker(d) = m.parsed() else {
        panic!("Docker schema 2");
    };
    assert_eq!(d.layers.len(), 6);
    assert_eq!(
        d.layers.iter().map(|l| l.size).sum::<u64>(),
        29_124_479 + 25_348_599 + 602 + 893 + 666 + 1394
    );
    assert_eq!(d.config.size, 7657);
    let oci = d.to_oci().expect("converts");
    assert_eq!(oci.config.media_type, MediaType::OCI_CONFIG);
    assert_eq!(oci.config.digest, d.config.digest);
    assert!(
        oci.layers
            .iter()
            .all(|l| l.media_type == MediaType::OCI_LAYER_TAR_GZIP)
    );
    let raw = oci.to_raw().expect("valid");
    assert_ne!(
        raw.digest,
        m.digest(),
        "a converted manifest is other bytes"
    );
    let back = Manifest::from_vec(raw.bytes.clone(), None).expect("sniffed as OCI");
    assert_eq!(back.media_type(), &MediaType::OCI_MANIFEST);
    assert_eq!(back.digest(), raw.digest);
    assert_eq!(&oci.to_docker().expect("converts back"), d);
}

#[test]
fn windows_foreign_layers() {
    let bytes = fixture("windows-foreign-layers.json");
    let m = Manifest::from_bytes(&bytes, None).expect("sniffed");
    assert_eq!(m.media_type(), &MediaType::DOCKER_MANIFEST);
    let foreign = &m.layers()[0];
    assert!(foreign.media_type.is_foreign() && foreign.media_type.is_layer());
    assert_eq!(foreign.size, 1_642_287_372);
    assert!(
        foreign.urls[0]
            .starts_with("https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:9038b928")
    );
    assert!(!m.layers()[1].media_type.is_foreign());
    let ParsedManifest::Docker(d) = m.parsed() else {
        panic!("Docker schema 2");
    };
    let oci = d.to_oci().expect("converts");
    assert_eq!(
        oci.layers[0].media_type,
        MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP
    );
    assert_eq!(oci.layers[0].urls, foreign.urls);
}
