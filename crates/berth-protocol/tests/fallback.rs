//! Content whose store is unknown (the manifest store, then the blob
//! store, as containerd's resolver asks), and foreign layers fetched from
//! their own URLs without any registry's credentials. Scripted: no sockets,
//! time simulated.

mod support;

use std::sync::Arc;

use berth_auth::{Credentials, Secret};
use berth_manifest::{Limits, MediaType};
use berth_protocol::endpoint::EndpointPolicy;
use berth_protocol::ops::{
    GetContent, GetForeignBlob, ListTags, ManifestAddress, ManifestRef, OCTET_STREAM, Resolve,
    Store, foreign_url,
};
use berth_protocol::{Error, Operation, Session, StaticCredentials};
use support::{Script, SimClock, T0, sha256};

/// Runs `op` at the shared start time.
fn run<O: Operation>(
    op: &mut O,
    session: &mut Session,
    script: &Script,
) -> Result<O::Output, Error> {
    support::run(op, session, script, &SimClock::at(T0))
}

fn by_digest(digest: &berth_reference::Digest) -> ManifestAddress {
    ManifestAddress {
        domain: "r.example".into(),
        name: "a".into(),
        reference: ManifestRef::Digest(digest.clone()),
    }
}

#[test]
fn a_digest_the_manifest_store_lacks_resolves_from_the_blob_store() {
    let config = br#"{"architecture":"amd64"}"#;
    let d = sha256(config);
    let mut s = Script::new();
    s.on("HEAD", &format!("https://r.example/v2/a/manifests/{d}"))
        .status(404)
        .done()
        .on("HEAD", &format!("https://r.example/v2/a/blobs/{d}"))
        .header("content-length", &config.len().to_string())
        .header("content-type", "application/octet-stream")
        .header("docker-content-digest", &d.to_string())
        .done();
    let mut session = Session::anonymous();
    let desc = run(&mut Resolve::new(by_digest(&d)), &mut session, &s).expect("resolved");
    assert_eq!(desc.digest, d);
    assert_eq!(desc.size, config.len() as u64);
    assert_eq!(desc.media_type.as_str(), OCTET_STREAM);
    assert!(s.finished());
}

#[test]
fn the_blob_store_must_size_and_name_the_blob_truly() {
    let d = sha256(b"x");
    let other = sha256(b"y");
    let mut s = Script::new();
    s.on("HEAD", &format!("https://r.example/v2/a/manifests/{d}"))
        .status(404)
        .done()
        .on("HEAD", &format!("https://r.example/v2/a/blobs/{d}"))
        .header("content-length", "1")
        .header("docker-content-digest", &other.to_string())
        .done();
    let err = run(
        &mut Resolve::new(by_digest(&d)),
        &mut Session::anonymous(),
        &s,
    )
    .expect_err("another digest named");
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");

    let mut s = Script::new();
    s.on("HEAD", &format!("https://r.example/v2/a/manifests/{d}"))
        .status(404)
        .done()
        .on("HEAD", &format!("https://r.example/v2/a/blobs/{d}"))
        .status(404)
        .done();
    let err = run(
        &mut Resolve::new(by_digest(&d)),
        &mut Session::anonymous(),
        &s,
    )
    .expect_err("in neither store");
    assert!(err.not_found().is_some(), "{err:?}");
    assert!(s.finished());
}

#[test]
fn a_tag_is_never_looked_up_in_the_blob_store() {
    let mut s = Script::new();
    s.on("HEAD", "https://r.example/v2/a/manifests/v1")
        .status(404)
        .done();
    let err = run(
        &mut Resolve::new(ManifestAddress {
            domain: "r.example".into(),
            name: "a".into(),
            reference: ManifestRef::Tag("v1".into()),
        }),
        &mut Session::anonymous(),
        &s,
    )
    .expect_err("no such tag");
    assert!(err.not_found().is_some(), "{err:?}");
    assert_eq!(s.seen().len(), 1);
}

#[test]
fn content_comes_from_whichever_store_has_it_verified() {
    let config = br#"{"architecture":"arm64"}"#;
    let d = sha256(config);
    let mut s = Script::new();
    s.on("GET", &format!("https://r.example/v2/a/manifests/{d}"))
        .status(404)
        .body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#)
        .done()
        .on("GET", &format!("https://r.example/v2/a/blobs/{d}"))
        .header("content-type", "application/octet-stream")
        .body(config)
        .done();
    let got = run(
        &mut GetContent::new(
            "r.example",
            "a",
            &d,
            &[Store::Manifests, Store::Blobs],
            Limits::default(),
        ),
        &mut Session::anonymous(),
        &s,
    )
    .expect("content");
    assert_eq!(&got.bytes[..], config);
    assert_eq!(got.store, Store::Blobs);
    assert_eq!(
        got.media_type.as_ref().map(MediaType::as_str),
        Some(OCTET_STREAM)
    );
    let seen = s.seen();
    assert!(
        seen[0]
            .header("accept")
            .is_some_and(|a| a.contains("manifest")),
        "the manifest store is asked with manifest types"
    );

    // Wrong bytes from the blob store are refused with both digests.
    let mut s = Script::new();
    s.on("GET", &format!("https://r.example/v2/a/blobs/{d}"))
        .body(b"{\"architecture\":\"arm65\"}")
        .done();
    let err = run(
        &mut GetContent::new("r.example", "a", &d, &[Store::Blobs], Limits::default()),
        &mut Session::anonymous(),
        &s,
    )
    .expect_err("wrong bytes");
    match err {
        Error::DigestMismatch { expected, actual } => {
            assert_eq!(*expected, d);
            assert_ne!(*actual, d);
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
}

#[test]
fn content_over_the_limit_is_refused_before_reading() {
    let d = sha256(b"big");
    let mut s = Script::new();
    s.on("GET", &format!("https://r.example/v2/a/blobs/{d}"))
        .header("content-length", "1048577")
        .done();
    let err = run(
        &mut GetContent::new(
            "r.example",
            "a",
            &d,
            &[Store::Blobs],
            Limits::default().with_manifest(1024 * 1024),
        ),
        &mut Session::anonymous(),
        &s,
    )
    .expect_err("too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
}

#[test]
fn store_order_follows_the_media_type() {
    assert_eq!(
        Store::order_for(&MediaType::new(
            "application/vnd.oci.image.manifest.v1+json"
        )),
        &[Store::Manifests, Store::Blobs]
    );
    assert_eq!(
        Store::order_for(&MediaType::new("application/vnd.oci.image.index.v1+json")),
        &[Store::Manifests, Store::Blobs]
    );
    assert_eq!(
        Store::order_for(&MediaType::new("application/vnd.oci.image.config.v1+json")),
        &[Store::Blobs]
    );
}

#[test]
fn foreign_urls_get_no_registry_credentials_even_on_the_registry_s_host() {
    let creds = StaticCredentials::new().with(
        "r.example",
        Credentials::Basic {
            username: "u".into(),
            password: Secret::new("p"),
        },
    );
    let mut session = Session::new(Arc::new(creds), EndpointPolicy::new(), 1);
    let mut s = Script::new();
    // The session learns that r.example takes Basic credentials.
    s.on("GET", "https://r.example/v2/a/tags/list")
        .status(401)
        .header("www-authenticate", r#"Basic realm="r""#)
        .done()
        .on("GET", "https://r.example/v2/a/tags/list")
        .body(r#"{"tags":[]}"#)
        .done()
        .on("GET", "https://r.example/layers/base.tar.gz")
        .status(401)
        .header("www-authenticate", r#"Basic realm="r""#)
        .done()
        .on("GET", "https://cdn.example/base.tar.gz")
        .status(206)
        .header("content-range", "bytes 5-9/10")
        .body("56789")
        .done();
    run(&mut ListTags::new("r.example", "a"), &mut session, &s).expect("tags");
    assert!(s.seen()[1].header("authorization").is_some());

    let err = run(
        &mut GetForeignBlob::new("https://r.example/layers/base.tar.gz", 0).expect("url"),
        &mut session,
        &s,
    )
    .expect_err("a 401 from a foreign URL is final");
    assert!(
        matches!(err, Error::Registry(_) | Error::Unauthorized { .. }),
        "{err:?}"
    );
    let head = run(
        &mut GetForeignBlob::new("https://cdn.example/base.tar.gz", 5).expect("url"),
        &mut session,
        &s,
    )
    .expect("resumed");
    assert_eq!(head.offset, 5);
    let seen = s.seen();
    assert_eq!(seen.len(), 4, "no challenge answered for a foreign URL");
    for foreign in &seen[2..] {
        assert_eq!(foreign.header("authorization"), None, "{}", foreign.url);
    }
    assert_eq!(seen[3].header("range"), Some("bytes=5-"));
}

#[test]
fn foreign_urls_must_be_plain_http_or_https() {
    for bad in [
        "file:///etc/passwd",
        "ftp://cdn.example/layer",
        "https://user:pass@cdn.example/layer",
        "https://cdn.example/layer#frag",
        "/relative/layer",
        "not a url",
    ] {
        match foreign_url(bad) {
            Err(Error::InvalidResponse { what, detail }) => {
                assert_eq!(what, "foreign layer URL");
                assert!(!detail.contains("pass@"), "{detail}");
            }
            other => panic!("{bad}: expected a typed refusal, got {other:?}"),
        }
    }
    assert!(foreign_url("http://127.0.0.1:8080/l").is_ok());
    assert!(foreign_url("HTTPS://cdn.example/l?sig=1").is_ok());
}

#[test]
fn a_500_from_the_manifest_store_for_a_blob_s_digest_asks_the_blob_store() {
    // CNCF distribution answers a manifest GET or HEAD of a digest it holds
    // only as a blob with 500 UNKNOWN (it cannot parse it as a manifest).
    let config = br#"{"os":"linux"}"#;
    let d = sha256(config);
    let mut s = Script::new();
    for _ in 0..4 {
        s.on("GET", &format!("https://r.example/v2/a/manifests/{d}"))
            .status(500)
            .body(r#"{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}"#)
            .done();
    }
    s.on("GET", &format!("https://r.example/v2/a/blobs/{d}"))
        .body(config)
        .done();
    let got = run(
        &mut GetContent::new(
            "r.example",
            "a",
            &d,
            &[Store::Manifests, Store::Blobs],
            Limits::default(),
        ),
        &mut Session::anonymous(),
        &s,
    )
    .expect("from the blob store");
    assert_eq!(&got.bytes[..], config);
    assert!(s.finished());

    let mut s = Script::new();
    for _ in 0..4 {
        s.on("HEAD", &format!("https://r.example/v2/a/manifests/{d}"))
            .status(500)
            .done();
    }
    s.on("HEAD", &format!("https://r.example/v2/a/blobs/{d}"))
        .header("content-length", &config.len().to_string())
        .done();
    let desc = run(
        &mut Resolve::new(by_digest(&d)),
        &mut Session::anonymous(),
        &s,
    )
    .expect("resolved from the blob store");
    assert_eq!(desc.size, config.len() as u64);
    assert!(s.finished());
}
