//! Content-Type handling, sniffing, size limits, and bad input: every
//! refusal is a typed error naming the field and the problem.

use berth_manifest::{
    Descriptor, Digester, ImageIndex, ImageManifest, Limits, Manifest, ManifestError, MediaType,
    Platform,
};

const CONFIG: &str = r#"{"mediaType":"application/vnd.oci.image.config.v1+json","size":1470,"digest":"sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b"}"#;

fn layer(digest: &str) -> String {
    format!(
        r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":100,"digest":"{digest}"}}"#
    )
}

fn good_digest(i: usize) -> String {
    format!("sha256:{:064x}", i + 1)
}

fn oci_manifest(layers: &[String], media_type: Option<&str>) -> String {
    let mt = media_type
        .map(|t| format!(r#""mediaType":"{t}","#))
        .unwrap_or_default();
    format!(
        r#"{{"schemaVersion":2,{mt}"config":{CONFIG},"layers":[{}]}}"#,
        layers.join(",")
    )
}

#[test]
fn bad_layer_digest_names_the_field() {
    let mut layers: Vec<String> = (0..5).map(|i| layer(&good_digest(i))).collect();
    layers[3] = layer("sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb06");
    let body = oci_manifest(&layers, Some("application/vnd.oci.image.manifest.v1+json"));
    let err = Manifest::from_bytes(body.as_bytes(), None).unwrap_err();
    assert_eq!(err.path(), Some("layers[3].digest"));
    assert_eq!(
        err.to_string(),
        "layers[3].digest: sha256 digest must be 64 hex characters, found 61"
    );

    layers[3] = layer("sha512:abcd");
    let body = oci_manifest(&layers, None);
    let err = Manifest::from_bytes(
        body.as_bytes(),
        Some("application/vnd.oci.image.manifest.v1+json"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "layers[3].digest: sha512 digest must be 128 hex characters, found 4"
    );
}

#[test]
fn field_errors_from_the_decoder_and_the_validator() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"schemaVersion":3,"config":CONFIG,"layers":[]}"#,
            "schemaVersion",
            "must be 2, found 3",
        ),
        (
            r#"{"schemaVersion":"2","config":CONFIG,"layers":[]}"#,
            "schemaVersion",
            "invalid type",
        ),
        (
            r#"{"schemaVersion":2,"config":CONFIG}"#,
            "layers",
            "required field is missing",
        ),
        (
            r#"{"schemaVersion":2,"config":CONFIG,"layers":[{"mediaType":"a/b","size":1.5,"digest":"sha256:x"}]}"#,
            "layers[0].size",
            "expected u64",
        ),
        (
            r#"{"schemaVersion":2,"config":CONFIG,"layers":[],"annotations":{"a":1}}"#,
            "annotations.a",
            "expected a string",
        ),
        (
            r#"{"schemaVersion":2,"config":CONFIG,"layers":[],"subject":{"mediaType":"a/b","size":1}}"#,
            "subject.digest",
            "required field is missing",
        ),
        (
            r#"{"schemaVersion":2,"config":CONFIG,"layers":[{"mediaType":"a/b","size":1,"digest":"sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b","urls":["https://ok/x","no scheme"]}]}"#,
            "layers[0].urls[1]",
            "not a URI",
        ),
        (
            r#"{"schemaVersion":2,"config":CONFIG,"layers":[{"mediaType":"a/b","size":3,"digest":"sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b","data":"e30="}]}"#,
            "layers[0].data",
            "decodes to 2 bytes but size is 3",
        ),
        (
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":CONFIG,"layers":[]}"#,
            "",
            "",
        ),
    ];
    for (doc, path, problem) in cases {
        let doc = doc.replace("CONFIG", CONFIG);
        let err = Manifest::from_bytes(doc.as_bytes(), Some(MediaType::OCI_MANIFEST.as_str()))
            .unwrap_err();
        if path.is_empty() {
            assert!(
                matches!(err, ManifestError::MediaTypeMismatch { .. }),
                "{doc}: {err}"
            );
            continue;
        }
        assert_eq!(err.path(), Some(*path), "{doc}: {err}");
        assert!(err.to_string().contains(problem), "{doc}: {err}");
    }
}

#[test]
fn syntax_errors_have_a_position() {
    let err = Manifest::from_bytes(b"{\n  \"schemaVersion\": 2,\n  oops", None).unwrap_err();
    let ManifestError::Syntax { line, column, .. } = err else {
        panic!("a syntax error: {err}");
    };
    assert_eq!((line, column), (3, 3));
    assert!(matches!(
        Manifest::from_bytes(b"", None),
        Err(ManifestError::Syntax { .. })
    ));
    assert!(matches!(
        Manifest::from_bytes(&[0xff, 0xfe, b'{'], None),
        Err(ManifestError::Syntax { .. })
    ));
    assert!(matches!(
        Manifest::from_bytes(b"{\"schemaVersion\":2,\"mediaType\":\"\xff\"}", None),
        Err(ManifestError::Syntax { .. })
    ));
}

#[test]
fn content_type_picks_the_kind_and_the_body_must_agree() {
    let body = oci_manifest(
        &[layer(&good_digest(0))],
        Some("application/vnd.oci.image.manifest.v1+json"),
    );
    for ct in [
        None,
        Some(""),
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/json"),
        Some("application/octet-stream"),
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("Application/VND.OCI.image.manifest.v1+json ; charset=utf-8"),
    ] {
        let m = Manifest::from_bytes(body.as_bytes(), ct).unwrap_or_else(|e| panic!("{ct:?}: {e}"));
        assert_eq!(m.media_type(), &MediaType::OCI_MANIFEST, "{ct:?}");
        assert_eq!(m.raw(), body.as_bytes());
    }
    for ct in [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ] {
        match Manifest::from_bytes(body.as_bytes(), Some(ct)) {
            Err(ManifestError::MediaTypeMismatch { content_type, body }) => {
                assert_eq!(content_type, ct);
                assert_eq!(body, MediaType::OCI_MANIFEST.as_str());
            }
            other => panic!("{ct}: {other:?}"),
        }
    }
    assert_eq!(
        Manifest::from_bytes(body.as_bytes(), Some("application/vnd.example+json")).unwrap_err(),
        ManifestError::UnsupportedMediaType("application/vnd.example+json".into())
    );
    assert_eq!(
        Manifest::from_bytes(b"{}", None).unwrap_err(),
        ManifestError::UnknownKind
    );
    assert_eq!(
        Manifest::from_bytes(b"{\"schemaVersion\":2}", None).unwrap_err(),
        ManifestError::UnknownKind
    );
}

#[test]
fn sniffing_without_media_type() {
    // OCI before 1.0.2 had no mediaType: an index by its manifests, an image
    // by its config, Docker by its config's type.
    let index = br#"{"schemaVersion":2,"manifests":[]}"#;
    assert_eq!(
        Manifest::from_bytes(index, None)
            .expect("index")
            .media_type(),
        &MediaType::OCI_INDEX
    );
    let image = oci_manifest(&[], None);
    assert_eq!(
        Manifest::from_bytes(image.as_bytes(), None)
            .expect("image")
            .media_type(),
        &MediaType::OCI_MANIFEST
    );
    let unsigned = br#"{"schemaVersion":1,"name":"a","tag":"b","architecture":"amd64","fsLayers":[],"history":[]}"#;
    assert_eq!(
        Manifest::from_bytes(unsigned, None)
            .expect("schema1")
            .media_type(),
        &MediaType::DOCKER_SCHEMA1
    );
    let artifact = br#"{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"application/vnd.example.sbom","blobs":[]}"#;
    let m = Manifest::from_bytes(artifact, None).expect("artifact manifest");
    assert_eq!(m.media_type(), &MediaType::OCI_ARTIFACT_MANIFEST);
    assert_eq!(
        m.parsed(),
        &berth_manifest::ParsedManifest::Artifact(berth_manifest::ArtifactManifest::new(
            MediaType::new("application/vnd.example.sbom"),
            vec![]
        ))
    );
    assert_eq!(
        m.descriptor().artifact_type.as_ref().map(MediaType::as_str),
        Some("application/vnd.example.sbom")
    );
}

#[test]
fn size_limits_are_enforced_before_and_while_reading() {
    let body = oci_manifest(
        &(0..40).map(|i| layer(&good_digest(i))).collect::<Vec<_>>(),
        None,
    );
    let len = u64::try_from(body.len()).expect("small");
    let tight = Limits::default().with_manifest(len - 1);
    assert_eq!(
        Manifest::from_bytes_with_limits(body.as_bytes(), None, &tight).unwrap_err(),
        ManifestError::TooLarge {
            size: len,
            limit: len - 1
        }
    );
    assert!(
        Manifest::from_bytes_with_limits(
            body.as_bytes(),
            None,
            &Limits::default().with_manifest(len)
        )
        .is_ok()
    );

    // A reader that never ends is cut at the limit.
    let endless = std::io::repeat(b' ');
    match Manifest::read_from(endless, None, &Limits::default().with_manifest(1024)) {
        Err(ManifestError::TooLarge { size, limit }) => {
            assert_eq!(limit, 1024);
            assert!(size > 1024 && size < 1024 + 64 * 1024, "read {size} bytes");
        }
        other => panic!("{other:?}"),
    }
    let m = Manifest::read_from(body.as_bytes(), None, &Limits::default()).expect("fits");
    assert_eq!(m.raw(), body.as_bytes());

    // The default is 4 MiB.
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    assert!(matches!(
        Manifest::from_bytes(&huge, None),
        Err(ManifestError::TooLarge { limit: 4194304, .. })
    ));
    assert!(
        Limits::default()
            .check_manifest_size(4 * 1024 * 1024)
            .is_ok()
    );
}

#[test]
fn building_serialises_once() {
    let config = Descriptor::new(MediaType::OCI_CONFIG, Digester::sha256_of(b"config"), 6);
    let layers = vec![Descriptor::new(
        MediaType::OCI_LAYER_TAR_ZSTD,
        Digester::sha256_of(b"layer"),
        5,
    )];
    let m = ImageManifest::new(config, layers)
        .with_annotation("org.opencontainers.image.title", "demo");
    let raw = m.to_raw().expect("valid");
    assert_eq!(raw.digest, Digester::sha256_of(&raw.bytes));
    assert_eq!(raw.descriptor.media_type, MediaType::OCI_MANIFEST);
    assert_eq!(
        raw.descriptor.size,
        u64::try_from(raw.bytes.len()).expect("small")
    );
    assert!(raw.bytes.starts_with(
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":"#
    ));
    let again = m.to_raw().expect("valid");
    assert_eq!(again.bytes, raw.bytes, "canonical bytes are stable");

    let index = ImageIndex::new(vec![
        raw.descriptor
            .clone()
            .with_platform("linux/amd64".parse::<Platform>().expect("platform")),
    ]);
    let iraw = index.to_raw().expect("valid");
    let parsed = Manifest::from_vec(iraw.bytes.clone(), Some(MediaType::OCI_INDEX.as_str()))
        .expect("parses");
    assert_eq!(parsed.digest(), iraw.digest);
    assert_eq!(
        parsed.select(&Platform::new("linux", "amd64")),
        Some(&index.manifests[0])
    );

    // Invalid values are refused before any bytes are made.
    let mut bad = m;
    bad.layers[0].media_type = MediaType::new("not a type");
    assert_eq!(
        bad.to_raw().unwrap_err().path(),
        Some("layers[0].mediaType")
    );

    // The artifact helper follows image-spec 1.1's guidance.
    let art = ImageManifest::artifact(MediaType::new("application/vnd.example.sbom.v1"), vec![])
        .with_subject(raw.descriptor);
    let araw = art.to_raw().expect("valid");
    assert_eq!(
        araw.descriptor
            .artifact_type
            .as_ref()
            .map(MediaType::as_str),
        Some("application/vnd.example.sbom.v1")
    );
    assert_eq!(art.layers, vec![Descriptor::empty()]);
}

#[test]
fn unregistered_algorithms_parse_but_cannot_be_verified() {
    let body = oci_manifest(
        &[layer(
            "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        )],
        None,
    );
    let m = Manifest::from_bytes(body.as_bytes(), None).expect("grammar-valid digests parse");
    let d = &m.layers()[0].digest;
    assert_eq!(d.known_algorithm(), None);
    assert_eq!(
        m.verify(d).unwrap_err(),
        berth_manifest::VerifyError::UnsupportedAlgorithm("multihash+base58".into())
    );
    assert_eq!(
        berth_manifest::Verifier::new(d.clone(), 100)
            .unwrap_err()
            .to_string(),
        "unsupported digest algorithm: multihash+base58"
    );
}

#[test]
fn unknown_media_types_round_trip_untouched() {
    let doc = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.example.thing.v1+json; version=2","digest":"sha256:c86f7763873b6c0aae22d963bab59b4f5debbed6685761b5951584f6efb0633b","size":3}]}"#;
    // A parameter is not in RFC 6838's `type/subtype` grammar.
    assert!(Manifest::from_bytes(doc.as_bytes(), None).is_err());
    let doc = doc.replace("; version=2", "");
    let m = Manifest::from_bytes(doc.as_bytes(), None).expect("parses");
    let ImageIndex { manifests, .. } = match m.parsed() {
        berth_manifest::ParsedManifest::Index(i) => i.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        manifests[0].media_type.as_str(),
        "application/vnd.example.thing.v1+json"
    );
    assert!(!manifests[0].media_type.is_manifest_or_index());
    let raw = ImageIndex::new(manifests).to_raw().expect("valid");
    assert_eq!(String::from_utf8(raw.bytes).expect("utf-8"), doc);
}
