//! `Manifest::from_bytes` on arbitrary bytes, with a Content-Type chosen from
//! the known list or made up, under a size limit the input also picks: no
//! panic; a body over the limit is refused; an accepted body keeps its bytes
//! and digest, and its parsed value serialises to bytes that parse back to
//! the same value.
#![no_main]

use berth_manifest::{
    Descriptor, Digester, ImageConfig, Limits, Manifest, ManifestError, MediaType, ParsedManifest,
    Platform,
};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.artifact.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
    "text/plain; charset=utf-8",
    "application/octet-stream",
    "",
];

fn reserialised(parsed: &ParsedManifest) -> Option<Vec<u8>> {
    let raw = match parsed {
        ParsedManifest::Image(m) => m.to_raw(),
        ParsedManifest::Index(m) => m.to_raw(),
        ParsedManifest::Docker(m) => m.to_raw(),
        ParsedManifest::DockerList(m) => m.to_raw(),
        _ => return None,
    };
    Some(
        raw.expect("a value that passed validation serialises")
            .bytes,
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (content_type, rest): (Option<String>, &[u8]) = match usize::from(selector) {
        i if i < CONTENT_TYPES.len() => (Some(CONTENT_TYPES[i].to_owned()), rest),
        255 => (None, rest),
        _ => {
            let Some((&len, rest)) = rest.split_first() else {
                return;
            };
            let len = usize::from(len % 64).min(rest.len());
            (
                Some(String::from_utf8_lossy(&rest[..len]).into_owned()),
                &rest[len..],
            )
        }
    };
    let (limit, body) = match rest {
        [a, b, body @ ..] => (u64::from(u16::from_le_bytes([*a, *b])) * 4, body),
        _ => return,
    };
    let limits = Limits::default().with_manifest(limit);
    let result = Manifest::from_bytes_with_limits(body, content_type.as_deref(), &limits);
    let len = u64::try_from(body.len()).expect("fits");
    if len > limit {
        assert!(
            matches!(result, Err(ManifestError::TooLarge { .. })),
            "{} bytes over a {limit} limit accepted",
            len
        );
    }
    match result {
        Ok(m) => {
            assert_eq!(m.raw(), body);
            assert_eq!(m.digest(), Digester::sha256_of(body));
            m.verify(&m.digest())
                .expect("verifies against its own digest");
            assert_eq!(m.descriptor().size, len);
            assert!(m.media_type().is_manifest_or_index());
            let _ = m.select(&Platform::new("linux", "amd64"));
            if let Some(bytes) = reserialised(m.parsed()) {
                let again = Manifest::from_bytes(&bytes, Some(m.media_type().as_str()))
                    .expect("a re-serialised manifest parses");
                assert_eq!(
                    again.parsed(),
                    m.parsed(),
                    "serialise -> parse keeps the value"
                );
                assert_eq!(
                    reserialised(again.parsed()).as_deref(),
                    Some(&bytes[..]),
                    "serialising is stable"
                );
            }
            if let ParsedManifest::Schema1(s) = m.parsed() {
                let _ = s.payload(m.raw());
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let _ = e.path();
        }
    }
    // The other entry points on the same bytes.
    let _ = Descriptor::from_slice(body);
    let _ = ImageConfig::from_slice(body);
    if let Some(ct) = &content_type {
        let _ = MediaType::new(ct).check_grammar();
        if let Ok(p) = ct.parse::<Platform>() {
            assert_eq!(p.to_string().parse::<Platform>().as_ref(), Ok(&p));
            let _ = p.normalized().compatible();
        }
    }
});
