//! Signatures where containers/image (skopeo, podman) finds them: cosign
//! `.sig` attachments and Sigstore bundles in the real registry (CNCF
//! distribution on 127.0.0.1), lookaside stores over `file://` and over
//! http (a small server here that records what reached it), and the
//! OpenShift signature extension (a small server imitating it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth::manifest::{Descriptor, Digester, Manifest, MediaType};
use berth::protocol::StaticCredentials;
use berth::protocol::auth::{Credentials, Secret};
use berth::protocol::ops::ManifestRef;
use berth::reference::{Digest, Reference};
use berth::signatures::{
    BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, MAX_LOOKASIDE_SIGNATURES,
    MAX_SIGNATURE_SIZE, SIGNATURE_ANNOTATION, SIGSTORE_BUNDLE_ARTIFACT_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE, lookaside_path, sigstore_tag,
};
use berth::{Client, Error, ErrorKind};
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};
use bytes::Bytes;

fn client() -> Client<HyperTransport> {
    Client::builder().build(HyperTransport::builder().build().expect("transport"))
}

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

/// Pushes a one-platform image to `<registry>/<repo>:v1`; its reference
/// and manifest digest.
async fn push_image(
    c: &Client<HyperTransport>,
    registry: &Registry,
    repo: &str,
    seed: u64,
) -> (Reference, Digest) {
    let tmp = tempfile::tempdir().expect("tmp");
    let top = write_layout(
        tmp.path(),
        "v1",
        &[TestImage::new("linux/amd64", &[1000], seed)],
    )
    .expect("layout");
    let reference = r(&format!("{}/{repo}:v1", registry.host()));
    c.push(tmp.path(), &reference).await.expect("push");
    (reference, top.digest)
}

/// Pushes `bytes` as a blob of `repo`; its descriptor.
async fn push_blob(
    c: &Client<HyperTransport>,
    reference: &Reference,
    bytes: &[u8],
    media_type: MediaType,
) -> Descriptor {
    let d = Descriptor::new(media_type, Digester::sha256_of(bytes), bytes.len() as u64);
    c.push_blob(
        reference.domain(),
        reference.path(),
        &d,
        &Bytes::copy_from_slice(bytes),
        None,
    )
    .await
    .expect("push blob");
    d
}

/// Puts `json` (an OCI manifest or index) at `at` in the reference's
/// repository; its digest.
async fn put(
    c: &Client<HyperTransport>,
    reference: &Reference,
    at: ManifestRef,
    json: &serde_json::Value,
) -> Digest {
    let bytes = serde_json::to_vec(json).expect("json");
    let media_type = json["mediaType"].as_str().expect("media type").to_owned();
    let manifest = Manifest::from_vec(bytes, Some(&media_type)).expect("manifest");
    c.put_manifest(reference.domain(), reference.path(), at, &manifest)
        .await
        .expect("put manifest")
}

/// An OCI image manifest with the empty config and these layers.
async fn oci_manifest(
    c: &Client<HyperTransport>,
    reference: &Reference,
    layers: &[Descriptor],
    extra: &[(&str, serde_json::Value)],
) -> serde_json::Value {
    let config = push_blob(c, reference, b"{}", MediaType::OCI_EMPTY).await;
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layers,
    });
    for (k, v) in extra {
        m[*k] = v.clone();
    }
    m
}

fn payload_for(reference: &Reference, digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference.name()},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstore_signatures_come_back_byte_for_byte() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let (image, digest) = push_image(&c, &registry, "team/app", 1).await;

    // No `.sig` tag: no signatures, not an error.
    assert!(
        c.sigstore_signatures(&image)
            .await
            .expect("none")
            .is_empty()
    );

    let payload = payload_for(&image, &digest);
    let first = push_blob(&c, &image, &payload, SIMPLE_SIGNING_MEDIA_TYPE)
        .await
        .with_annotation(SIGNATURE_ANNOTATION, "MEUCIQDsig1==")
        .with_annotation(CERTIFICATE_ANNOTATION, "-----BEGIN CERTIFICATE-----\nx\n")
        .with_annotation(CHAIN_ANNOTATION, "-----BEGIN CERTIFICATE-----\ny\n")
        .with_annotation(BUNDLE_ANNOTATION, r#"{"SignedEntryTimestamp":"z"}"#)
        .with_annotation("org.example/other", "kept");
    let second_payload = b"{\"critical\":{},\"optional\":{\"n\":2}}\n".to_vec();
    let second = push_blob(&c, &image, &second_payload, SIMPLE_SIGNING_MEDIA_TYPE)
        .await
        .with_annotation(SIGNATURE_ANNOTATION, "MEQCIFsig2");
    let sig = oci_manifest(&c, &image, &[first.clone(), second.clone()], &[]).await;
    assert_eq!(
        sigstore_tag(&digest),
        format!("sha256-{}.sig", digest.encoded())
    );
    put(&c, &image, ManifestRef::Tag(sigstore_tag(&digest)), &sig).await;

    for reference in [
        image.clone(),
        image.clone().name_only().with_digest(digest.clone()),
    ] {
        let found = c.sigstore_signatures(&reference).await.expect("signatures");
        assert_eq!(found.len(), 2, "{reference}");
        assert_eq!(found[0].payload, payload, "byte for byte");
        assert_eq!(found[0].layer, first);
        assert!(found[0].is_simple_signing());
        assert_eq!(found[0].signature.as_deref(), Some("MEUCIQDsig1=="));
        assert_eq!(
            found[0].certificate.as_deref(),
            Some("-----BEGIN CERTIFICATE-----\nx\n")
        );
        assert_eq!(
            found[0].chain.as_deref(),
            Some("-----BEGIN CERTIFICATE-----\ny\n")
        );
        assert_eq!(
            found[0].bundle.as_deref(),
            Some(r#"{"SignedEntryTimestamp":"z"}"#)
        );
        assert_eq!(
            found[0]
                .layer
                .annotations
                .get("org.example/other")
                .map(String::as_str),
            Some("kept")
        );
        assert_eq!(found[1].payload, second_payload);
        assert_eq!(found[1].signature.as_deref(), Some("MEQCIFsig2"));
        assert_eq!(
            (&found[1].certificate, &found[1].chain, &found[1].bundle),
            (&None, &None, &None)
        );
    }

    // Another image (now at the same tag) has no signatures.
    let (other, _) = push_image(&c, &registry, "team/app", 2).await;
    assert!(
        c.sigstore_signatures(&other)
            .await
            .expect("none")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sig_manifests_are_typed_errors() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let (image, digest) = push_image(&c, &registry, "team/bad", 3).await;
    let tag = ManifestRef::Tag(sigstore_tag(&digest));
    let payload = payload_for(&image, &digest);
    let good = push_blob(&c, &image, &payload, SIMPLE_SIGNING_MEDIA_TYPE).await;

    // A layer whose size is one byte short of its blob: an integrity error.
    let short = Descriptor::new(
        SIMPLE_SIGNING_MEDIA_TYPE,
        good.digest.clone(),
        good.size - 1,
    )
    .with_annotation(SIGNATURE_ANNOTATION, "c2ln");
    let m = oci_manifest(&c, &image, &[short], &[]).await;
    put(&c, &image, tag.clone(), &m).await;
    let e = c
        .sigstore_signatures(&image)
        .await
        .expect_err("short layer");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");

    // A layer that claims more than the payload limit is refused before a
    // byte of it is read.
    let huge = push_blob(
        &c,
        &image,
        &vec![b'x'; usize::try_from(MAX_SIGNATURE_SIZE).expect("fits") + 1],
        SIMPLE_SIGNING_MEDIA_TYPE,
    )
    .await;
    let m = oci_manifest(&c, &image, &[huge], &[]).await;
    put(&c, &image, tag.clone(), &m).await;
    let e = c.sigstore_signatures(&image).await.expect_err("huge layer");
    assert!(
        matches!(
            e,
            Error::Protocol(berth::protocol::Error::TooLarge { limit, .. }) if limit == MAX_SIGNATURE_SIZE
        ),
        "{e:?}"
    );

    // A `.sig` tag that is an index, not an image manifest.
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [],
    });
    put(&c, &image, tag.clone(), &index).await;
    let e = c.sigstore_signatures(&image).await.expect_err("index");
    assert!(
        matches!(
            e,
            Error::Protocol(berth::protocol::Error::InvalidResponse { .. })
        ),
        "{e:?}"
    );

    // A layer without the signature annotation is returned, as
    // containers/image returns it; the verifier rejects it later.
    let m = oci_manifest(&c, &image, &[good], &[]).await;
    put(&c, &image, tag, &m).await;
    let found = c.sigstore_signatures(&image).await.expect("signatures");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].payload, payload);
    assert_eq!(found[0].signature, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstore_bundles_are_found_through_the_referrers_tag_schema() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let (image, digest) = push_image(&c, &registry, "team/bundled", 4).await;
    assert!(c.sigstore_bundles(&image).await.expect("none").is_empty());

    // distribution 2.8 has no referrers API: the pusher keeps the
    // `sha256-<hex>` index of the tag schema itself.
    let subject = c.resolve(&image).await.expect("resolve");
    let bundle_blob = push_blob(
        &c,
        &image,
        br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#,
        SIGSTORE_BUNDLE_ARTIFACT_TYPE,
    )
    .await;
    let sbom_blob = push_blob(
        &c,
        &image,
        br#"{"spdxVersion":"SPDX-2.3"}"#,
        MediaType::new("application/spdx+json"),
    )
    .await;
    let mut descriptors = Vec::new();
    for (tag, blob, artifact_type) in [
        ("bundle", bundle_blob, SIGSTORE_BUNDLE_ARTIFACT_TYPE),
        ("sbom", sbom_blob, MediaType::new("application/spdx+json")),
    ] {
        let m = oci_manifest(
            &c,
            &image,
            &[blob],
            &[
                (
                    "artifactType",
                    serde_json::json!(artifact_type.as_str().to_owned()),
                ),
                ("subject", serde_json::json!(subject)),
            ],
        )
        .await;
        let size = serde_json::to_vec(&m).expect("json").len() as u64;
        let d = put(&c, &image, ManifestRef::Tag(tag.to_owned()), &m).await;
        descriptors.push(
            Descriptor::new(MediaType::OCI_MANIFEST, d, size).with_artifact_type(artifact_type),
        );
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descriptors,
    });
    put(
        &c,
        &image,
        ManifestRef::Tag(format!("sha256-{}", digest.encoded())),
        &index,
    )
    .await;

    let found = c.sigstore_bundles(&image).await.expect("bundles");
    assert_eq!(found, vec![descriptors[0].clone()]);
}

fn write_signatures(store: &Path, repository: &str, digest: &Digest, signatures: &[&[u8]]) {
    for (i, s) in signatures.iter().enumerate() {
        let path = store.join(lookaside_path(repository, digest, i + 1));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, s).expect("write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookaside_directory_is_read_in_order_until_the_first_gap() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let (image, digest) = push_image(&c, &registry, "team/app", 5).await;
    let store = tempfile::tempdir().expect("tmp");
    let base = format!("file://{}/", store.path().display());

    // Nothing there yet: no signatures.
    assert!(
        c.lookaside_signatures(&base, &image)
            .await
            .expect("none")
            .is_empty()
    );

    // The path holds the repository without the registry host, as
    // containers/image lays it out.
    write_signatures(
        store.path(),
        "team/app",
        &digest,
        &[b"\x00first signature", b"second"],
    );
    std::fs::write(
        store
            .path()
            .join(lookaside_path("team/app", &digest, 4).as_str()),
        b"after a gap: never read",
    )
    .expect("write");
    assert!(
        store
            .path()
            .join(format!("team/app@sha256={}/signature-1", digest.encoded()))
            .is_file()
    );
    for reference in [
        image.clone(),
        image.clone().name_only().with_digest(digest.clone()),
    ] {
        let found = c
            .lookaside_signatures(&base, &reference)
            .await
            .expect("read");
        assert_eq!(
            found,
            vec![b"\x00first signature".to_vec(), b"second".to_vec()]
        );
    }

    // Too large a signature file is an error, not a truncation.
    let (big_image, big_digest) = push_image(&c, &registry, "team/big", 6).await;
    let big = vec![0u8; usize::try_from(MAX_SIGNATURE_SIZE).expect("fits") + 1];
    write_signatures(store.path(), "team/big", &big_digest, &[&big]);
    let e = c
        .lookaside_signatures(&base, &big_image)
        .await
        .expect_err("too large");
    assert!(
        matches!(e, Error::Protocol(berth::protocol::Error::TooLarge { .. })),
        "{e:?}"
    );

    // Bad store URLs are usage errors.
    for bad in ["ftp://x/y", "file://host/dir", "sigstore"] {
        let e = c
            .lookaside_signatures(bad, &image)
            .await
            .expect_err("bad base");
        assert_eq!(e.kind(), ErrorKind::Usage, "{bad}: {e}");
    }
}

/// What a test server answers.
enum Body {
    Bytes(Vec<u8>),
    /// 200 with no length, bytes until the client goes away (at most
    /// 256 MiB).
    Endless,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Answer {
    fn new(status: u16, body: &[u8]) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Body::Bytes(body.to_vec()),
        }
    }

    fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A request as the test server saw it: method, path, headers (names in
/// lower case).
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
}

/// A tiny HTTP/1.1 server on 127.0.0.1: one request per connection, every
/// socket with timeouts, at most 1000 connections, for at most two
/// minutes. TLS client hellos are closed at once (the client's https
/// attempt on a loopback host then falls back to http).
struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    fn start(route: impl Fn(&str) -> Answer + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let route = Arc::new(route);
        let thread = {
            let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut served = 0;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && served < 1000 {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            served += 1;
                            let (seen, route) = (Arc::clone(&seen), Arc::clone(&route));
                            std::thread::spawn(move || serve(stream, &seen, &*route));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        TestServer {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, seen: &Mutex<Vec<Seen>>, route: &dyn Fn(&str) -> Answer) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.first() == Some(&0x16) || head.len() > 64 * 1024 {
            return; // a TLS handshake, or no HTTP at all
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    seen.lock().expect("lock").push(Seen {
        path: path.clone(),
        headers,
    });
    let answer = route(&path);
    let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", answer.status);
    for (k, v) in &answer.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    match answer.body {
        Body::Bytes(b) => {
            if !answer
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            {
                out.push_str(&format!("Content-Length: {}\r\n", b.len()));
            }
            out.push_str("\r\n");
            let _ = stream.write_all(out.as_bytes());
            let _ = stream.write_all(&b);
        }
        Body::Endless => {
            out.push_str("\r\n");
            let _ = stream.write_all(out.as_bytes());
            let chunk = vec![b'j'; 64 * 1024];
            for _ in 0..4096 {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    }
    let _ = stream.flush();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookaside_server_gets_no_credentials() {
    let registry = Registry::start(Auth::None).expect("registry");
    let (image, digest) = push_image(&client(), &registry, "team/app", 7).await;
    let prefix = format!("/sigs/team/app@sha256={}/signature-", digest.encoded());
    let server = TestServer::start(move |path| match path.strip_prefix(prefix.as_str()) {
        Some("1") => Answer::new(200, b"\x00one").header("Content-Type", "text/html"),
        Some("2") => Answer::new(200, b"two"),
        _ => Answer::new(404, b"not here"),
    });

    // Credentials for the registry, and even for the store's own host:
    // none of them go to the store.
    let credentials = StaticCredentials::new()
        .with(
            &registry.host(),
            Credentials::Basic {
                username: "user".into(),
                password: Secret::new("registry-password"),
            },
        )
        .with(
            &server.host(),
            Credentials::Basic {
                username: "user".into(),
                password: Secret::new("store-password"),
            },
        );
    let c = Client::builder()
        .credentials(Arc::new(credentials))
        .build(HyperTransport::builder().build().expect("transport"));
    let found = c
        .lookaside_signatures(&format!("http://{}/sigs/", server.host()), &image)
        .await
        .expect("lookaside");
    assert_eq!(found, vec![b"\x00one".to_vec(), b"two".to_vec()]);

    let seen = server.seen();
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        (1..=3)
            .map(|i| format!("/sigs/team/app@sha256={}/signature-{i}", digest.encoded()))
            .collect::<Vec<_>>()
    );
    for s in &seen {
        assert!(
            !s.headers.iter().any(|(k, _)| k == "authorization"),
            "credentials reached the lookaside store: {s:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_lookaside_server_is_bounded() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let (image, digest) = push_image(&c, &registry, "team/app", 8).await;
    let rest = format!("/team/app@sha256={}/signature-", digest.encoded());
    let server = TestServer::start(move |path| {
        let (mode, tail) = path
            .get(1..)
            .and_then(|p| p.split_once('/'))
            .unwrap_or(("", ""));
        let index = format!("/{tail}")
            .strip_prefix(rest.as_str())
            .and_then(|i| i.parse::<usize>().ok());
        match (mode, index) {
            (_, None) => Answer::new(404, b""),
            ("endless", Some(_)) => Answer {
                status: 200,
                headers: Vec::new(),
                body: Body::Endless,
            },
            ("claims-huge", Some(_)) => Answer {
                status: 200,
                headers: vec![("Content-Length".into(), "1073741824".into())],
                body: Body::Bytes(Vec::new()),
            },
            ("forbidden", Some(_)) => Answer::new(403, b"{\"errors\":[]}"),
            ("junk", Some(1)) => Answer::new(200, b"\xff\xfe<html>not a signature"),
            ("redirect", Some(i)) => {
                Answer::new(302, b"").header("Location", &format!("/junk{rest}{i}"))
            }
            ("many", Some(_)) => Answer::new(200, b"s"),
            _ => Answer::new(404, b""),
        }
    });
    let base = |mode: &str| format!("http://{}/{mode}", server.host());

    let e = c
        .lookaside_signatures(&base("endless"), &image)
        .await
        .expect_err("endless");
    assert!(
        matches!(
            e,
            Error::Protocol(berth::protocol::Error::TooLarge { limit, .. }) if limit == MAX_SIGNATURE_SIZE
        ),
        "{e:?}"
    );
    let e = c
        .lookaside_signatures(&base("claims-huge"), &image)
        .await
        .expect_err("huge");
    assert!(
        matches!(e, Error::Protocol(berth::protocol::Error::TooLarge { .. })),
        "{e:?}"
    );
    let e = c
        .lookaside_signatures(&base("forbidden"), &image)
        .await
        .expect_err("403");
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");

    // Junk is returned as the store holds it: verifying is the caller's job.
    let junk = b"\xff\xfe<html>not a signature".to_vec();
    assert_eq!(
        c.lookaside_signatures(&base("junk"), &image)
            .await
            .expect("junk"),
        vec![junk.clone()]
    );
    assert_eq!(
        c.lookaside_signatures(&base("redirect"), &image)
            .await
            .expect("redirected"),
        vec![junk]
    );

    // A store that never ends its list is stopped.
    let before = server.seen().len();
    let e = c
        .lookaside_signatures(&base("many"), &image)
        .await
        .expect_err("many");
    assert!(
        matches!(
            e,
            Error::Protocol(berth::protocol::Error::InvalidResponse { .. })
        ),
        "{e:?}"
    );
    assert_eq!(server.seen().len() - before, MAX_LOOKASIDE_SIGNATURES + 1);

    // Plain http to a host that is not loopback is refused before any
    // request leaves.
    let e = c
        .lookaside_signatures("http://signatures.example/sigs", &image)
        .await
        .expect_err("plain http");
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signature_extension_is_read_where_the_registry_serves_it() {
    let digest: Digest = "sha256:8d7fe3e157e56648ab790794970fbdfe82c84af79e807443b98df92c822a9b9b"
        .parse()
        .expect("digest");
    let list = format!(
        r#"{{"signatures":[
            {{"schemaVersion":2,"type":"atomic","name":"{digest}@a","content":"aGVsbG8="}},
            {{"schemaVersion":2,"type":"other","name":"{digest}@b","content":"eA=="}},
            {{"schemaVersion":2,"type":"atomic","name":"{digest}@c","content":"AAEC/w=="}}
        ]}}"#
    );
    let extension_path = format!("/extensions/v2/myns/personal/signatures/{digest}");
    let expected_path = extension_path.clone();
    let server = TestServer::start(move |path| match path {
        "/v2/" => Answer::new(200, b"{}")
            .header("Docker-Distribution-API-Version", "registry/2.0")
            .header("X-Registry-Supports-Signatures", "1"),
        p if p == extension_path => {
            Answer::new(200, list.as_bytes()).header("Content-Type", "application/json")
        }
        _ => Answer::new(404, b"{\"errors\":[{\"code\":\"NAME_UNKNOWN\"}]}"),
    });
    let c = client();
    let reference = r(&format!("{}/myns/personal@{digest}", server.host()));
    let found = c.extension_signatures(&reference).await.expect("extension");
    assert_eq!(found, Some(vec![b"hello".to_vec(), vec![0u8, 1, 2, 255]]));
    assert!(server.seen().iter().any(|s| s.path == expected_path));

    // The real registry does not serve it.
    let registry = Registry::start(Auth::None).expect("registry");
    let (image, _) = push_image(&c, &registry, "team/app", 9).await;
    assert_eq!(c.extension_signatures(&image).await.expect("none"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_signature_extension_is_a_typed_error() {
    let digest: Digest = "sha256:8d7fe3e157e56648ab790794970fbdfe82c84af79e807443b98df92c822a9b9b"
        .parse()
        .expect("digest");
    let server = TestServer::start(move |path| match path {
        "/v2/" => Answer::new(200, b"{}").header("X-Registry-Supports-Signatures", "1"),
        p if p.starts_with("/extensions/v2/junk/") => Answer::new(200, b"<html>no</html>"),
        p if p.starts_with("/extensions/v2/endless/") => Answer {
            status: 200,
            headers: Vec::new(),
            body: Body::Endless,
        },
        _ => Answer::new(404, b""),
    });
    let c = client();
    let e = c
        .extension_signatures(&r(&format!("{}/junk/x@{digest}", server.host())))
        .await
        .expect_err("junk");
    assert!(
        matches!(
            e,
            Error::Protocol(berth::protocol::Error::InvalidResponse { .. })
        ),
        "{e:?}"
    );
    let e = c
        .extension_signatures(&r(&format!("{}/endless/x@{digest}", server.host())))
        .await
        .expect_err("endless");
    assert!(
        matches!(e, Error::Protocol(berth::protocol::Error::TooLarge { .. })),
        "{e:?}"
    );
    let e = c
        .extension_signatures(&r(&format!("{}/missing/x@{digest}", server.host())))
        .await
        .expect_err("404");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}
