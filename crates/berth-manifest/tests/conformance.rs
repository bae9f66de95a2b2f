//! Runs every document of `tests/data/conformance/` (the image-spec's own
//! schema tests and specification examples) through berth-manifest.
//!
//! Valid documents must parse and keep their digest; invalid ones must be
//! refused with a reason, and for most of them berth also names the field
//! at fault (the `FIELD_PATHS` table: berth's own expectation, not the
//! peer's). Cases berth deliberately answers differently are listed, with
//! the reason, in `tests/data/divergences.json`; a listed case that starts
//! agreeing with the spec fails the run, so the list stays true.

use std::collections::BTreeMap;

use berth_manifest::{
    Descriptor, Digest, Digester, ImageConfig, Manifest, ManifestError, MediaType, OciLayout,
};
use serde_json::Value;

fn data_dir() -> String {
    format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"))
}

fn json(path: &str) -> Value {
    let path = format!("{}/{path}", data_dir());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An independent sha256 (ring called directly), to check berth's.
fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Where berth reports the problem of each invalid schema case
/// (file, index) -> field path.
const FIELD_PATHS: &[(&str, usize, &str)] = &[
    ("manifest.json", 0, "config.mediaType"),
    ("manifest.json", 2, "layers[0].size"),
    ("manifest.json", 8, "subject"),
    ("manifest.json", 9, "layers[0].digest"),
    ("index.json", 0, "manifests[0].mediaType"),
    ("index.json", 1, "manifests[0].size"),
    ("index.json", 2, "manifests[0].digest"),
    ("index.json", 3, "manifests[0].platform.architecture"),
    ("index.json", 4, "manifests[0].mediaType"),
    ("index.json", 5, "manifests[0].mediaType"),
    ("index.json", 11, "subject"),
    ("descriptor.json", 2, "mediaType"),
    ("descriptor.json", 3, "mediaType"),
    ("descriptor.json", 4, "mediaType"),
    ("descriptor.json", 5, "mediaType"),
    ("descriptor.json", 7, "mediaType"),
    ("descriptor.json", 8, "mediaType"),
    ("descriptor.json", 9, "size"),
    ("descriptor.json", 10, "size"),
    ("descriptor.json", 11, "digest"),
    ("descriptor.json", 12, "digest"),
    ("descriptor.json", 13, "digest"),
    ("descriptor.json", 14, "digest"),
    ("descriptor.json", 15, "digest"),
    ("descriptor.json", 17, "urls[0]"),
    ("descriptor.json", 19, "artifactType"),
    ("descriptor.json", 26, "digest"),
    ("descriptor.json", 29, "data"),
    ("descriptor.json", 30, "size"),
    ("config.json", 0, "os"),
    ("config.json", 1, "variant"),
    ("config.json", 2, "config.User"),
    ("config.json", 3, "history"),
    ("config.json", 4, "os"),
    ("config.json", 5, "os"),
    ("config.json", 9, "config.Env[0]"),
];

/// The Go test's preprocessing of Docker documents: Docker media types
/// replaced by OCI ones.
fn preprocess(doc: &str) -> String {
    doc.replace(
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
    .replace(
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
    .replace(
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )
    .replace(
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.oci.image.config.v1+json",
    )
}

/// Parses `doc` the way the case's validator says; `Ok` with what was
/// checked, `Err` with berth's refusal.
fn parse(validator: &str, doc: &[u8]) -> Result<(), ManifestError> {
    match validator {
        "application/vnd.oci.image.manifest.v1+json"
        | "application/vnd.oci.image.index.v1+json" => {
            let m = Manifest::from_bytes(doc, Some(validator))?;
            assert_eq!(m.media_type().as_str(), validator);
            assert_eq!(m.raw(), doc, "the bytes are kept");
            assert_eq!(
                m.digest().to_string(),
                sha256(doc),
                "digest of the exact bytes"
            );
            m.verify(&m.digest())
                .expect("verifies against its own digest");
            Ok(())
        }
        "application/vnd.oci.descriptor.v1+json" => {
            let d = Descriptor::from_slice(doc)?;
            if d.data.is_some() {
                d.decoded_data()
                    .expect("embedded data matches digest and size");
            }
            Ok(())
        }
        "application/vnd.oci.image.config.v1+json" => ImageConfig::from_slice(doc).map(drop),
        "application/vnd.oci.layout.header.v1+json" => OciLayout::from_slice(doc).map(drop),
        other => panic!("no validator for {other}"),
    }
}

fn check_schema_case(file: &str, index: usize, case: &Value) -> Result<String, String> {
    let doc = case["doc"].as_str().expect("doc");
    let validator = case["validator"].as_str().expect("validator");
    let valid = case["valid"].as_bool().expect("valid");
    if let Some(digest) = case.get("digest").and_then(Value::as_str) {
        // Backwards compatibility: the unmodified Docker document keeps its
        // digest, parses with its kind sniffed, and the OCI-swapped one
        // validates as OCI.
        if sha256(doc.as_bytes()) != digest || Digester::sha256_of(doc.as_bytes()) != digest {
            return Err(format!("digest of the document is not {digest}"));
        }
        if validator != "application/vnd.oci.image.config.v1+json" {
            let m = Manifest::from_bytes(doc.as_bytes(), None)
                .map_err(|e| format!("sniffed parse: {e}"))?;
            if m.digest() != digest {
                return Err("sniffed parse changed the digest".into());
            }
            if !m.media_type().is_docker() {
                return Err(format!("sniffed as {}", m.media_type()));
            }
        }
        let swapped = preprocess(doc);
        return match (parse(validator, swapped.as_bytes()), valid) {
            (Ok(()), true) => Ok("valid".into()),
            (Err(e), true) => Err(format!("refused a valid document: {e}")),
            (Ok(()), false) => Err("accepted an invalid document".into()),
            (Err(e), false) => Ok(e.to_string()),
        };
    }
    match (parse(validator, doc.as_bytes()), valid) {
        (Ok(()), true) => Ok("valid".into()),
        (Err(e), true) => Err(format!("refused a valid document: {e}")),
        (Ok(()), false) => Err(format!("accepted an invalid document ({})", case["note"])),
        (Err(e), false) => {
            let reason = e.to_string();
            if reason.len() < 10 {
                return Err(format!("refusal without a reason: {reason:?}"));
            }
            if let Some((_, _, path)) = FIELD_PATHS
                .iter()
                .find(|(f, i, _)| *f == file && *i == index)
                && e.path() != Some(path)
            {
                return Err(format!("expected the refusal to name {path}, got {reason}"));
            }
            if case.get("doc_is_not_json").is_some() && !matches!(e, ManifestError::Syntax { .. }) {
                return Err(format!("not JSON, but refused as {reason}"));
            }
            Ok(reason)
        }
    }
}

fn check_example(entry: &Value) -> Result<String, String> {
    let file = entry["file"].as_str().expect("file");
    let bytes = std::fs::read(format!("{}/conformance/examples/{file}", data_dir()))
        .map_err(|e| e.to_string())?;
    let want = entry["sha256_of_file"].as_str().expect("sha256_of_file");
    if sha256(&bytes) != want || Digester::sha256_of(&bytes) != want {
        return Err(format!("{file}: digest is not {want}"));
    }
    let media_type = entry["mediaType"].as_str().expect("mediaType");
    parse(media_type, &bytes).map_err(|e| format!("{file}: {e}"))?;
    if media_type == MediaType::OCI_MANIFEST.as_str() || media_type == MediaType::OCI_INDEX.as_str()
    {
        // Also without a Content-Type: the sniffed kind is the same and the
        // digest is unchanged.
        let m = Manifest::from_bytes(&bytes, None).map_err(|e| format!("{file} sniffed: {e}"))?;
        if m.media_type().as_str() != media_type || m.digest() != want {
            return Err(format!(
                "{file}: sniffed as {} with {}",
                m.media_type(),
                m.digest()
            ));
        }
    }
    Ok("valid".into())
}

fn check_digest_example(example: &Value) -> Result<String, String> {
    let text = example["digest"].as_str().expect("digest");
    let d = Digest::parse_any_algorithm(text).map_err(|e| format!("{text}: {e}"))?;
    let registered = example["registered"].as_bool().expect("registered");
    if d.known_algorithm().is_some() != registered {
        return Err(format!(
            "{text}: registered is {registered} in the spec, berth says {}",
            !registered
        ));
    }
    Ok("valid".into())
}

#[test]
fn image_spec_vectors() {
    let divergences = json("divergences.json");
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for d in divergences.as_array().expect("a list") {
        let key = d["case"].as_str().expect("case").to_owned();
        let reason = d["reason"].as_str().unwrap_or("");
        assert!(reason.len() > 40, "divergence {key} needs a reason");
        expected.insert(key, reason.to_owned());
    }

    let mut results: Vec<(String, Result<String, String>)> = Vec::new();
    for file in [
        "manifest.json",
        "index.json",
        "descriptor.json",
        "config.json",
        "layout.json",
    ] {
        let cases = json(&format!("conformance/{file}"));
        for (i, case) in cases.as_array().expect("a list").iter().enumerate() {
            results.push((format!("{file}#{i}"), check_schema_case(file, i, case)));
        }
    }
    for entry in json("conformance/examples/catalog.json")
        .as_array()
        .expect("a list")
    {
        let key = format!("examples/{}", entry["file"].as_str().expect("file"));
        results.push((key, check_example(entry)));
    }
    let digests = json("conformance/examples/digests.json");
    for example in digests["examples"].as_array().expect("a list") {
        let text = example["digest"].as_str().expect("digest");
        if text.ends_with("...") {
            continue; // Truncated in the spec's table; not a digest.
        }
        results.push((
            format!("digests.json|{text}"),
            check_digest_example(example),
        ));
    }

    let mut unexpected = Vec::new();
    let mut now_agree = Vec::new();
    let (mut agree, mut diverge, mut refused) = (0, 0, 0);
    for (key, result) in &results {
        match (result, expected.contains_key(key)) {
            (Ok(reason), false) => {
                agree += 1;
                if reason != "valid" {
                    refused += 1;
                    println!("refused as the spec says: {key}: {reason}");
                }
            }
            (Ok(_), true) => now_agree.push(key.clone()),
            (Err(msg), true) => {
                diverge += 1;
                println!("listed divergence: {key}: {msg}");
            }
            (Err(msg), false) => unexpected.push(format!("{key}: {msg}")),
        }
    }
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !results.iter().any(|(r, _)| r == *k))
        .collect();
    println!(
        "image-spec conformance: {agree} agree ({refused} refused with a reason), {diverge} listed divergences, {} cases",
        results.len()
    );
    assert!(
        unexpected.is_empty(),
        "cases that fail:\n{}",
        unexpected.join("\n")
    );
    assert!(
        now_agree.is_empty(),
        "listed divergences that now agree (remove them from divergences.json):\n{}",
        now_agree.join("\n")
    );
    assert!(
        missing.is_empty(),
        "divergences naming no case: {missing:?}"
    );
    assert!(results.len() > 80, "every vector runs");
}

#[test]
fn empty_descriptor_from_the_spec() {
    let digests = json("conformance/examples/digests.json");
    let empty = &digests["empty_json"];
    let content = empty["content"].as_str().expect("content").as_bytes();
    let d = Descriptor::empty();
    assert_eq!(
        Digester::sha256_of(content),
        empty["digest"].as_str().expect("digest")
    );
    assert_eq!(d.digest, empty["digest"].as_str().expect("digest"));
    assert_eq!(Some(d.size), empty["size"].as_u64());
    assert_eq!(d.data.as_deref(), empty["data_base64"].as_str());
    assert_eq!(
        d.media_type.as_str(),
        empty["mediaType"].as_str().expect("mediaType")
    );
    assert_eq!(
        d.decoded_data().expect("verifies").as_deref(),
        Some(content)
    );

    // The spec's example of the empty config, parsed from its file.
    let bytes = std::fs::read(format!(
        "{}/conformance/examples/manifest-empty-config.json",
        data_dir()
    ))
    .expect("file");
    assert_eq!(Descriptor::from_slice(&bytes).expect("valid"), d);
}
