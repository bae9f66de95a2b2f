//! Conversations with the registry over HTTP, on both storages: berth's own
//! protocol ops (over berth-hyper) for what a client does, raw requests for
//! the headers and the refusals.

mod support;

use berth_manifest::{Descriptor, Digester, ImageIndex, ImageManifest, Manifest, MediaType};
use berth_protocol::ops::{
    DeleteManifest, GetBlob, GetManifest, HeadBlob, ListReferrers, ListTags, ManifestAddress,
    ManifestRef, PushBlob, PushOutcome, Resolve, UploadPolicy,
};
use berth_protocol::{Error, ErrorCode};
use berth_registry::{Auth, REALM};
use berth_testkit::image::pseudo_random;
use bytes::Bytes;
use http::{Method, StatusCode};
use support::*;

fn address(c: &Client, repo: &str, reference: ManifestRef) -> ManifestAddress {
    ManifestAddress {
        domain: c.domain.clone(),
        name: repo.to_owned(),
        reference,
    }
}

fn registry_code(err: &Error) -> Option<ErrorCode> {
    match err {
        Error::Registry(r) => r.diagnostics.first().map(|d| d.code.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_monolithic_and_chunked_then_pull() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let v2 = c.raw(Method::GET, "/v2/", &[], Bytes::new()).await;
        assert_eq!(v2.status, StatusCode::OK);
        assert_eq!(
            v2.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );

        let whole = pseudo_random(70_000, 1);
        let chunked = pseudo_random(25_000, 2);
        let d1 = c
            .push_blob("team/app", &whole, UploadPolicy::default())
            .await;
        let d2 = c
            .push_blob("team/app", &chunked, UploadPolicy::chunked(4096, None))
            .await;
        for (d, bytes) in [(&d1, &whole), (&d2, &chunked)] {
            let (info, _) = c
                .run(&mut HeadBlob::new(&c.domain, "team/app", d), None)
                .await
                .expect("head");
            assert_eq!(info.expect("present").size, Some(bytes.len() as u64));
            let (resp, body) = c
                .run(&mut GetBlob::new(&c.domain, "team/app", d, 0), None)
                .await
                .expect("get");
            assert_eq!(resp.offset, 0);
            let got = read_all(body.expect("body")).await.expect("read");
            assert_eq!(&got, bytes, "{kind:?}");
        }
        // Resumed from an offset: 206 from there.
        let (resp, body) = c
            .run(&mut GetBlob::new(&c.domain, "team/app", &d1, 1000), None)
            .await
            .expect("ranged get");
        assert_eq!(resp.offset, 1000);
        assert_eq!(
            read_all(body.expect("body")).await.expect("read"),
            &whole[1000..]
        );
        // Another repository does not see them.
        let (info, _) = c
            .run(&mut HeadBlob::new(&c.domain, "other", &d1), None)
            .await
            .expect("head");
        assert!(info.is_none(), "not linked there");
        if kind == Kind::Disk {
            assert_eq!(fx.blob_files().len(), 2);
            assert_eq!(fx.tmp_files(), 0, "no partial uploads left");
        }
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_out_of_order_or_repeated_are_refused_with_416() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let blob = pseudo_random(300, 3);
        let digest = Digester::sha256_of(&blob);
        let start = c
            .raw(Method::POST, "/v2/chunky/blobs/uploads/", &[], Bytes::new())
            .await;
        assert_eq!(start.status, StatusCode::ACCEPTED);
        let location = start.header("location").expect("location").to_owned();
        let uuid = start.header("docker-upload-uuid").expect("uuid").to_owned();
        assert!(location.ends_with(&uuid));
        assert_eq!(
            start.header("range"),
            None,
            "an empty session claims no byte"
        );

        let patch = |range: &'static str, bytes: Vec<u8>| {
            let (c, location) = (&c, location.clone());
            async move {
                c.raw(
                    Method::PATCH,
                    &location,
                    &[
                        ("content-range", range),
                        ("content-type", "application/octet-stream"),
                    ],
                    bytes,
                )
                .await
            }
        };
        let first = patch("0-99", blob[..100].to_vec()).await;
        assert_eq!(first.status, StatusCode::ACCEPTED);
        assert_eq!(first.header("range"), Some("0-99"));
        assert_eq!(first.header("docker-upload-uuid"), Some(uuid.as_str()));
        assert!(first.header("location").is_some());
        // Repeated.
        let again = patch("0-99", blob[..100].to_vec()).await;
        assert_eq!(again.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(again.code(), "BLOB_UPLOAD_INVALID");
        assert_eq!(again.header("range"), Some("0-99"));
        // Skipping ahead.
        let ahead = patch("200-299", blob[200..].to_vec()).await;
        assert_eq!(ahead.status, StatusCode::RANGE_NOT_SATISFIABLE);
        // The session is intact.
        let status = c.raw(Method::GET, &location, &[], Bytes::new()).await;
        assert_eq!(status.status, StatusCode::NO_CONTENT);
        assert_eq!(status.header("range"), Some("0-99"));
        let second = patch("100-199", blob[100..200].to_vec()).await;
        assert_eq!(second.header("range"), Some("0-199"));
        // A closing PUT with a chunk out of place says where the session
        // stands too.
        let misplaced = c
            .raw(
                Method::PUT,
                &format!("{location}?digest={digest}"),
                &[("content-range", "100-199")],
                blob[100..200].to_vec(),
            )
            .await;
        assert_eq!(misplaced.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(misplaced.header("range"), Some("0-199"));
        assert_eq!(misplaced.header("docker-upload-uuid"), Some(uuid.as_str()));
        // The last chunk with the closing PUT.
        let done = c
            .raw(
                Method::PUT,
                &format!("{location}?digest={digest}"),
                &[("content-range", "200-299")],
                blob[200..].to_vec(),
            )
            .await;
        assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
        assert_eq!(
            done.header("docker-content-digest"),
            Some(digest.to_string().as_str())
        );
        assert_eq!(
            done.header("location"),
            Some(format!("/v2/chunky/blobs/{digest}").as_str())
        );
        let got = c
            .raw(
                Method::GET,
                &format!("/v2/chunky/blobs/{digest}"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(&got.body[..], &blob[..]);
        // The session is gone.
        let gone = c.raw(Method::GET, &location, &[], Bytes::new()).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        assert_eq!(gone.code(), "BLOB_UPLOAD_UNKNOWN");

        // Cancel.
        let start = c
            .raw(Method::POST, "/v2/chunky/blobs/uploads/", &[], Bytes::new())
            .await;
        let location = start.header("location").expect("location").to_owned();
        let cancel = c.raw(Method::DELETE, &location, &[], Bytes::new()).await;
        assert_eq!(cancel.status, StatusCode::NO_CONTENT);
        let gone = c.raw(Method::GET, &location, &[], Bytes::new()).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        assert_eq!(fx.tmp_files(), 0);
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_sessions_are_capped_and_abandoned_ones_expire() {
    for kind in KINDS {
        // At most two sessions; none expires in this part.
        let fx = Fixture::start_built(kind, |b| {
            b.max_uploads(2)
                .upload_idle_timeout(std::time::Duration::from_secs(3600))
        })
        .await;
        let c = Client::new(&fx.host()).await;
        let start = || c.raw(Method::POST, "/v2/capped/blobs/uploads/", &[], Bytes::new());
        let a = start().await;
        let b = start().await;
        assert_eq!(
            (a.status, b.status),
            (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
        );
        let third = start().await;
        assert_eq!(
            third.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{:?}",
            third.body
        );
        assert_eq!(third.code(), "TOOMANYREQUESTS");
        // A monolithic upload needs a session too.
        let blob = pseudo_random(100, 9);
        let digest = Digester::sha256_of(&blob);
        let monolithic = || async {
            c.raw(
                Method::POST,
                &format!("/v2/capped/blobs/uploads/?digest={digest}"),
                &[("content-type", "application/octet-stream")],
                blob.clone(),
            )
            .await
        };
        let mono = monolithic().await;
        assert_eq!(mono.status, StatusCode::TOO_MANY_REQUESTS);
        // A session cancelled, or finished, makes room.
        let a_location = a.header("location").expect("location").to_owned();
        let cancel = c.raw(Method::DELETE, &a_location, &[], Bytes::new()).await;
        assert_eq!(cancel.status, StatusCode::NO_CONTENT);
        let mono = monolithic().await;
        assert_eq!(mono.status, StatusCode::CREATED, "{:?}", mono.body);
        assert_eq!(start().await.status, StatusCode::ACCEPTED);
        assert_eq!(start().await.status, StatusCode::TOO_MANY_REQUESTS);
        fx.registry.stop().await;

        // Sessions expire as soon as they are idle: starting one drops
        // the others, with what they held.
        let fx =
            Fixture::start_built(kind, |b| b.upload_idle_timeout(std::time::Duration::ZERO)).await;
        let c = Client::new(&fx.host()).await;
        let old = c
            .raw(Method::POST, "/v2/idle/blobs/uploads/", &[], Bytes::new())
            .await;
        let old_location = old.header("location").expect("location").to_owned();
        let patch = c
            .raw(
                Method::PATCH,
                &old_location,
                &[("content-range", "0-99")],
                blob.clone(),
            )
            .await;
        assert_eq!(patch.status, StatusCode::ACCEPTED);
        assert_eq!(patch.header("range"), Some("0-99"));
        let new = c
            .raw(Method::POST, "/v2/idle/blobs/uploads/", &[], Bytes::new())
            .await;
        assert_eq!(new.status, StatusCode::ACCEPTED);
        let gone = c.raw(Method::GET, &old_location, &[], Bytes::new()).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        assert_eq!(gone.code(), "BLOB_UPLOAD_UNKNOWN");
        // The new session works, and on disk only its file is left.
        let new_location = new.header("location").expect("location").to_owned();
        let done = c
            .raw(
                Method::PUT,
                &format!("{new_location}?digest={digest}"),
                &[],
                blob.clone(),
            )
            .await;
        assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
        assert_eq!(fx.tmp_files(), 0);
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_digest_is_refused_and_nothing_is_stored() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let blob = b"some bytes".to_vec();
        let wrong = Digester::sha256_of(b"other bytes");
        // Monolithic POST.
        let r = c
            .raw(
                Method::POST,
                &format!("/v2/app/blobs/uploads/?digest={wrong}"),
                &[("content-type", "application/octet-stream")],
                blob.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "DIGEST_INVALID");
        // Session then PUT.
        let start = c
            .raw(Method::POST, "/v2/app/blobs/uploads/", &[], Bytes::new())
            .await;
        let location = start.header("location").expect("location").to_owned();
        let r = c
            .raw(
                Method::PUT,
                &format!("{location}?digest={wrong}"),
                &[],
                blob.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "DIGEST_INVALID");
        let detail = &r.json()["errors"][0]["detail"];
        assert_eq!(detail["expected"], wrong.to_string());
        assert_eq!(detail["actual"], Digester::sha256_of(&blob).to_string());
        // A digest that is not one.
        let r = c
            .raw(
                Method::POST,
                "/v2/app/blobs/uploads/?digest=sha256:abc",
                &[],
                blob.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "DIGEST_INVALID");
        for d in [&wrong, &Digester::sha256_of(&blob)] {
            let head = c
                .raw(
                    Method::HEAD,
                    &format!("/v2/app/blobs/{d}"),
                    &[],
                    Bytes::new(),
                )
                .await;
            assert_eq!(head.status, StatusCode::NOT_FOUND);
        }
        assert!(fx.blob_files().is_empty(), "{:?}", fx.blob_files());
        assert_eq!(fx.tmp_files(), 0);
        // And the right digest goes through.
        let right = Digester::sha256_of(&blob);
        let r = c
            .raw(
                Method::POST,
                &format!("/v2/app/blobs/uploads/?digest={right}"),
                &[],
                blob.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        if kind == Kind::Disk {
            assert_eq!(fx.blob_files(), vec![right.to_string()]);
        }
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_mount_across_repositories() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let blob = pseudo_random(5000, 4);
        let digest = c
            .push_blob("src/repo", &blob, UploadPolicy::default())
            .await;
        let source = Bytes::from(blob.clone());
        let mut op = PushBlob::new(
            &c.domain,
            "dst/repo",
            &digest,
            5000,
            UploadPolicy::default(),
        )
        .mount_from("src/repo");
        let (outcome, _) = c.run(&mut op, Some(&source)).await.expect("mount");
        assert_eq!(outcome, PushOutcome::Mounted);
        let got = c
            .raw(
                Method::GET,
                &format!("/v2/dst/repo/blobs/{digest}"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(&got.body[..], &blob[..]);
        // From a repository without it: an upload session starts instead.
        let r = c
            .raw(
                Method::POST,
                &format!("/v2/third/blobs/uploads/?mount={digest}&from=nowhere"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert!(r.header("location").is_some());
        // The fallback through the op uploads.
        let mut op = PushBlob::new(&c.domain, "fourth", &digest, 5000, UploadPolicy::default())
            .mount_from("nowhere");
        let (outcome, _) = c.run(&mut op, Some(&source)).await.expect("upload");
        assert_eq!(outcome, PushOutcome::Uploaded);
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_put_get_head_and_refusals() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        // A manifest whose blobs are missing.
        let config = b"{}".to_vec();
        let config_d = Digester::sha256_of(&config);
        let layer = pseudo_random(2000, 5);
        let layer_d = Digester::sha256_of(&layer);
        let image = ImageManifest::new(
            Descriptor::new(MediaType::OCI_CONFIG, config_d.clone(), 2),
            vec![Descriptor::new(MediaType::OCI_LAYER_TAR, layer_d, 2000)],
        )
        .to_raw()
        .expect("raw");
        let manifest =
            Manifest::from_bytes(&image.bytes, Some(MediaType::OCI_MANIFEST.as_str())).expect("m");
        let err = c
            .put_manifest("app", ManifestRef::Tag("v1".into()), &manifest)
            .await
            .expect_err("blobs missing");
        assert_eq!(
            registry_code(&err),
            Some(ErrorCode::ManifestBlobUnknown),
            "{err:?}"
        );
        c.push_blob("app", &config, UploadPolicy::default()).await;
        let err = c
            .put_manifest("app", ManifestRef::Tag("v1".into()), &manifest)
            .await
            .expect_err("layer still missing");
        assert_eq!(registry_code(&err), Some(ErrorCode::ManifestBlobUnknown));
        c.push_blob("app", &layer, UploadPolicy::default()).await;

        // Now it goes in, raw, to see the headers.
        let put = c
            .raw(
                Method::PUT,
                "/v2/app/manifests/v1",
                &[("content-type", MediaType::OCI_MANIFEST.as_str())],
                image.bytes.clone(),
            )
            .await;
        assert_eq!(put.status, StatusCode::CREATED);
        assert_eq!(
            put.header("docker-content-digest"),
            Some(image.digest.to_string().as_str())
        );
        assert_eq!(
            put.header("location"),
            Some(format!("/v2/app/manifests/{}", image.digest).as_str())
        );
        for path in [
            "/v2/app/manifests/v1".to_owned(),
            format!("/v2/app/manifests/{}", image.digest),
        ] {
            for method in [Method::GET, Method::HEAD] {
                let r = c.raw(method.clone(), &path, &[], Bytes::new()).await;
                assert_eq!(r.status, StatusCode::OK);
                assert_eq!(
                    r.header("content-type"),
                    Some(MediaType::OCI_MANIFEST.as_str())
                );
                assert_eq!(
                    r.header("docker-content-digest"),
                    Some(image.digest.to_string().as_str())
                );
                assert_eq!(
                    r.header("content-length"),
                    Some(image.bytes.len().to_string().as_str()),
                    "{method} {path}"
                );
                if method == Method::GET {
                    assert_eq!(&r.body[..], &image.bytes[..]);
                } else {
                    assert!(r.body.is_empty());
                }
            }
        }
        // Through the ops: resolve (HEAD) and get (GET) verify the digest.
        let (desc, _) = c
            .run(
                &mut Resolve::new(address(&c, "app", ManifestRef::Tag("v1".into()))),
                None,
            )
            .await
            .expect("resolve");
        assert_eq!(desc.digest, image.digest);
        let (fetched, _) = c
            .run(
                &mut GetManifest::new(address(&c, "app", ManifestRef::Tag("v1".into()))),
                None,
            )
            .await
            .expect("get");
        assert_eq!(fetched.manifest.raw(), &image.bytes[..]);

        // By digest: the digest must be the body's.
        let wrong = Digester::sha256_of(b"x");
        let r = c
            .raw(
                Method::PUT,
                &format!("/v2/app/manifests/{wrong}"),
                &[("content-type", MediaType::OCI_MANIFEST.as_str())],
                image.bytes.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "DIGEST_INVALID");
        let r = c
            .raw(
                Method::PUT,
                &format!("/v2/app/manifests/{}", image.digest),
                &[("content-type", MediaType::OCI_MANIFEST.as_str())],
                image.bytes.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        // Not a manifest.
        let r = c
            .raw(
                Method::PUT,
                "/v2/app/manifests/bad",
                &[("content-type", MediaType::OCI_MANIFEST.as_str())],
                b"{not json".to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "MANIFEST_INVALID");
        // Too large: 413.
        let mut big = image.bytes.clone();
        big.truncate(big.len() - 1);
        big.extend(std::iter::repeat_n(b' ', 4 * 1024 * 1024));
        big.push(b'}');
        let r = c
            .raw(
                Method::PUT,
                "/v2/app/manifests/big",
                &[("content-type", MediaType::OCI_MANIFEST.as_str())],
                big,
            )
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.code(), "MANIFEST_INVALID");
        // An index whose child is missing; then present.
        let other = ImageManifest::new(
            Descriptor::new(MediaType::OCI_CONFIG, config_d.clone(), 2),
            vec![],
        )
        .to_raw()
        .expect("raw");
        let index = ImageIndex::new(vec![image.descriptor.clone(), other.descriptor.clone()])
            .to_raw()
            .expect("index");
        let index_m =
            Manifest::from_bytes(&index.bytes, Some(MediaType::OCI_INDEX.as_str())).expect("i");
        let err = c
            .put_manifest("app", ManifestRef::Tag("multi".into()), &index_m)
            .await
            .expect_err("child missing");
        assert_eq!(registry_code(&err), Some(ErrorCode::ManifestBlobUnknown));
        let other_m =
            Manifest::from_bytes(&other.bytes, Some(MediaType::OCI_MANIFEST.as_str())).expect("m");
        c.put_manifest("app", ManifestRef::Digest(other.digest.clone()), &other_m)
            .await
            .expect("child by digest");
        let d = c
            .put_manifest("app", ManifestRef::Tag("multi".into()), &index_m)
            .await
            .expect("index");
        assert_eq!(d, index.digest);
        let r = c
            .raw(Method::HEAD, "/v2/app/manifests/multi", &[], Bytes::new())
            .await;
        assert_eq!(
            r.header("content-type"),
            Some(MediaType::OCI_INDEX.as_str())
        );

        // Unknowns.
        let r = c
            .raw(Method::GET, "/v2/app/manifests/nope", &[], Bytes::new())
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
        );
        let r = c
            .raw(Method::GET, "/v2/nothing/manifests/v1", &[], Bytes::new())
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
        );
        let r = c
            .raw(Method::GET, "/v2/app/blobs/sha256:abc", &[], Bytes::new())
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
        );
        let r = c
            .raw(
                Method::GET,
                &format!("/v2/app/blobs/{wrong}"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
        );
        let r = c
            .raw(Method::POST, "/v2/app/manifests/v1", &[], Bytes::new())
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
        );
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_ranges() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let blob = pseudo_random(200_000, 6);
        let d = c.push_blob("r", &blob, UploadPolicy::default()).await;
        let path = format!("/v2/r/blobs/{d}");
        let whole = c.raw(Method::GET, &path, &[], Bytes::new()).await;
        assert_eq!(whole.status, StatusCode::OK);
        assert_eq!(whole.header("accept-ranges"), Some("bytes"));
        assert_eq!(
            whole.header("docker-content-digest"),
            Some(d.to_string().as_str())
        );
        assert_eq!(&whole.body[..], &blob[..]);
        let r = c
            .raw(
                Method::GET,
                &path,
                &[("range", "bytes=10-19")],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.header("content-range"), Some("bytes 10-19/200000"));
        assert_eq!(r.header("content-length"), Some("10"));
        assert_eq!(&r.body[..], &blob[10..20]);
        let r = c
            .raw(
                Method::GET,
                &path,
                &[("range", "bytes=150000-")],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            r.header("content-range"),
            Some("bytes 150000-199999/200000")
        );
        assert_eq!(&r.body[..], &blob[150_000..]);
        let r = c
            .raw(
                Method::GET,
                &path,
                &[("range", "bytes=200000-")],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.header("content-range"), Some("bytes */200000"));
        // A range that breaks the grammar is ignored: the whole blob.
        let r = c
            .raw(
                Method::GET,
                &path,
                &[("range", "bytes=20-10")],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], &blob[..]);
        let h = c.raw(Method::HEAD, &path, &[], Bytes::new()).await;
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.header("content-length"), Some("200000"));
        assert!(h.body.is_empty());
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_catalog_page_in_lexical_order() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let m = c.push_image("lib/app", "latest", 1).await;
        for tag in ["v2", "10", "v10", "2", "B", "a", "1.0"] {
            c.put_manifest("lib/app", ManifestRef::Tag(tag.into()), &m)
                .await
                .expect("tag");
        }
        let sorted = ["1.0", "10", "2", "B", "a", "latest", "v10", "v2"];
        let all = c
            .raw(Method::GET, "/v2/lib/app/tags/list", &[], Bytes::new())
            .await;
        assert_eq!(all.json()["name"], "lib/app");
        assert_eq!(all.json()["tags"], serde_json::json!(sorted));
        assert_eq!(all.header("link"), None);

        let p1 = c
            .raw(Method::GET, "/v2/lib/app/tags/list?n=3", &[], Bytes::new())
            .await;
        assert_eq!(p1.json()["tags"], serde_json::json!(["1.0", "10", "2"]));
        assert_eq!(
            p1.header("link"),
            Some("</v2/lib/app/tags/list?n=3&last=2>; rel=\"next\"")
        );
        let p2 = c
            .raw(
                Method::GET,
                "/v2/lib/app/tags/list?n=3&last=2",
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(p2.json()["tags"], serde_json::json!(["B", "a", "latest"]));
        let p3 = c
            .raw(
                Method::GET,
                "/v2/lib/app/tags/list?n=3&last=latest",
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(p3.json()["tags"], serde_json::json!(["v10", "v2"]));
        assert_eq!(p3.header("link"), None, "the last page has no Link");
        // `last` need not be a tag.
        let r = c
            .raw(
                Method::GET,
                "/v2/lib/app/tags/list?last=b",
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.json()["tags"], serde_json::json!(["latest", "v10", "v2"]));
        let r = c
            .raw(Method::GET, "/v2/lib/app/tags/list?n=x", &[], Bytes::new())
            .await;
        assert_eq!(r.code(), "PAGINATION_NUMBER_INVALID");
        // The op follows the Links.
        let (tags, _) = c
            .run(
                &mut ListTags::paged(&c.domain, "lib/app", Some(2), None),
                None,
            )
            .await
            .expect("list");
        assert_eq!(tags, sorted);
        let r = c
            .raw(Method::GET, "/v2/missing/tags/list", &[], Bytes::new())
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
        );

        // The catalog.
        for repo in ["zeta", "alpha/one", "alpha"] {
            c.push_image(repo, "t", 2).await;
        }
        let cat = c.raw(Method::GET, "/v2/_catalog", &[], Bytes::new()).await;
        assert_eq!(
            cat.json()["repositories"],
            serde_json::json!(["alpha", "alpha/one", "lib/app", "zeta"])
        );
        let p1 = c
            .raw(Method::GET, "/v2/_catalog?n=2", &[], Bytes::new())
            .await;
        assert_eq!(
            p1.json()["repositories"],
            serde_json::json!(["alpha", "alpha/one"])
        );
        assert_eq!(
            p1.header("link"),
            Some("</v2/_catalog?n=2&last=alpha%2Fone>; rel=\"next\"")
        );
        let p2 = c
            .raw(
                Method::GET,
                "/v2/_catalog?n=2&last=alpha%2Fone",
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(
            p2.json()["repositories"],
            serde_json::json!(["lib/app", "zeta"])
        );
        assert_eq!(p2.header("link"), None);
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_are_listed_and_filtered() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let image = c.push_image("app", "v1", 3).await;
        let subject = image.descriptor();
        let empty = c.push_blob("app", b"{}", UploadPolicy::default()).await;
        let sig_blob = c
            .push_blob("app", b"signature", UploadPolicy::default())
            .await;
        let mut digests = Vec::new();
        for (ty, note) in [
            ("application/vnd.example.sig", "signed"),
            ("application/vnd.example.sbom", "sbom"),
        ] {
            let mut a = ImageManifest::artifact(
                MediaType::new(ty),
                vec![Descriptor::new(
                    MediaType::new("application/octet-stream"),
                    sig_blob.clone(),
                    9,
                )],
            )
            .with_subject(subject.clone())
            .with_annotation("note", note);
            a.config = Descriptor::new(MediaType::OCI_EMPTY, empty.clone(), 2);
            let raw = a.to_raw().expect("artifact");
            let put = c
                .raw(
                    Method::PUT,
                    &format!("/v2/app/manifests/{}", raw.digest),
                    &[("content-type", MediaType::OCI_MANIFEST.as_str())],
                    raw.bytes.clone(),
                )
                .await;
            assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
            assert_eq!(
                put.header("oci-subject"),
                Some(subject.digest.to_string().as_str())
            );
            digests.push(raw.digest);
        }
        let all = c
            .raw(
                Method::GET,
                &format!("/v2/app/referrers/{}", subject.digest),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(all.status, StatusCode::OK);
        assert_eq!(
            all.header("content-type"),
            Some(MediaType::OCI_INDEX.as_str())
        );
        assert_eq!(all.header("oci-filters-applied"), None);
        let index = ImageIndex::from_slice(&all.body).expect("an index");
        assert_eq!(index.manifests.len(), 2);
        for d in &index.manifests {
            assert!(digests.contains(&d.digest));
            assert!(d.artifact_type.is_some());
            assert!(d.annotations.contains_key("note"));
        }
        let filtered = c
            .raw(
                Method::GET,
                &format!(
                    "/v2/app/referrers/{}?artifactType=application%2Fvnd.example.sbom",
                    subject.digest
                ),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
        let index = ImageIndex::from_slice(&filtered.body).expect("an index");
        assert_eq!(index.manifests.len(), 1);
        assert_eq!(index.manifests[0].digest, digests[1]);
        assert_eq!(index.manifests[0].annotations["note"], "sbom");
        // The op.
        let (found, _) = c
            .run(
                &mut ListReferrers::new(
                    &c.domain,
                    "app",
                    &subject.digest,
                    Some(MediaType::new("application/vnd.example.sig")),
                ),
                None,
            )
            .await
            .expect("referrers");
        assert!(found.api);
        assert_eq!(found.descriptors.len(), 1);
        assert_eq!(found.descriptors[0].digest, digests[0]);
        // A subject with none: an empty index.
        let none = c
            .raw(
                Method::GET,
                &format!("/v2/app/referrers/{}", digests[0]),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(
            ImageIndex::from_slice(&none.body)
                .expect("index")
                .manifests
                .len(),
            0
        );
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let m = c.push_image("app", "v1", 4).await;
        c.put_manifest("app", ManifestRef::Tag("v2".into()), &m)
            .await
            .expect("tag");
        // A tag: the manifest stays.
        let r = c
            .raw(Method::DELETE, "/v2/app/manifests/v2", &[], Bytes::new())
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let tags = c
            .raw(Method::GET, "/v2/app/tags/list", &[], Bytes::new())
            .await;
        assert_eq!(tags.json()["tags"], serde_json::json!(["v1"]));
        // The manifest: its tags go with it.
        c.run(
            &mut DeleteManifest::new(address(&c, "app", ManifestRef::Digest(m.digest()))),
            None,
        )
        .await
        .expect("delete");
        for path in [
            "/v2/app/manifests/v1".to_owned(),
            format!("/v2/app/manifests/{}", m.digest()),
        ] {
            let r = c.raw(Method::GET, &path, &[], Bytes::new()).await;
            assert_eq!(
                (r.status, r.code().as_str()),
                (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
            );
        }
        let tags = c
            .raw(Method::GET, "/v2/app/tags/list", &[], Bytes::new())
            .await;
        assert_eq!(tags.json()["tags"], serde_json::json!([]));
        let r = c
            .raw(
                Method::DELETE,
                &format!("/v2/app/manifests/{}", m.digest()),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // A blob.
        let layer = &m.layers()[0].digest;
        let r = c
            .raw(
                Method::DELETE,
                &format!("/v2/app/blobs/{layer}"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let r = c
            .raw(
                Method::HEAD,
                &format!("/v2/app/blobs/{layer}"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c
            .raw(
                Method::DELETE,
                &format!("/v2/app/blobs/{layer}"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
        );
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_traversal_names_are_refused() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let d = Digester::sha256_of(b"x");
        for name in [
            "../../etc",
            "a/../b",
            "..",
            "a/./b",
            "%2e%2e/x",
            "A/b",
            "a//b",
            "_layers",
        ] {
            for (method, path) in [
                (Method::GET, format!("/v2/{name}/manifests/latest")),
                (Method::PUT, format!("/v2/{name}/manifests/latest")),
                (Method::GET, format!("/v2/{name}/tags/list")),
                (Method::GET, format!("/v2/{name}/blobs/{d}")),
                (Method::POST, format!("/v2/{name}/blobs/uploads/")),
                (
                    Method::POST,
                    format!("/v2/{name}/blobs/uploads/?digest={d}"),
                ),
                (
                    Method::POST,
                    format!("/v2/x/blobs/uploads/?mount={d}&from={name}"),
                ),
            ] {
                let r = c
                    .raw(method.clone(), &path, &[], Bytes::from_static(b"x"))
                    .await;
                if path.starts_with("/v2/x/") {
                    // A bad `from` is no mount: an upload starts in `x`.
                    assert_eq!(r.status, StatusCode::ACCEPTED, "{method} {path}");
                    continue;
                }
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {path}");
                assert_eq!(r.code(), "NAME_INVALID", "{method} {path}");
            }
        }
        let r = c
            .raw(Method::GET, "/v2/app/manifests/..", &[], Bytes::new())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = c
            .raw(
                Method::GET,
                "/v2/app/blobs/uploads/..%2f..%2fx",
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        if let Some(dir) = &fx.dir {
            // Nothing was written beside the store.
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .expect("dir")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert_eq!(names, ["store"]);
            assert!(!dir.path().join("store/repositories/etc").exists());
        }
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth() {
    for kind in KINDS {
        let fx = Fixture::start_with(kind, Auth::basic("alice", "s3cret")).await;
        let anon = Client::new(&fx.host()).await;
        let r = anon.raw(Method::GET, "/v2/", &[], Bytes::new()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.code(), "UNAUTHORIZED");
        assert_eq!(
            r.header("www-authenticate"),
            Some(format!("Basic realm=\"{REALM}\"").as_str())
        );
        // "alice:wrong" and "bob:s3cret".
        for token in ["YWxpY2U6d3Jvbmc=", "Ym9iOnMzY3JldA=="] {
            let r = anon
                .raw(
                    Method::GET,
                    "/v2/_catalog",
                    &[("authorization", &format!("Basic {token}"))],
                    Bytes::new(),
                )
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let r = anon
            .raw(
                Method::GET,
                "/v2/",
                &[("authorization", "Basic YWxpY2U6czNjcmV0")],
                Bytes::new(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        // berth's session answers the challenge.
        let c = Client::basic(&fx.host(), "alice", "s3cret").await;
        let m = c.push_image("private", "v1", 5).await;
        let (desc, _) = c
            .run(
                &mut Resolve::new(address(&c, "private", ManifestRef::Tag("v1".into()))),
                None,
            )
            .await
            .expect("resolve");
        assert_eq!(desc.digest, m.digest());
        let wrong = Client::basic(&fx.host(), "alice", "nope").await;
        let err = wrong
            .run(
                &mut Resolve::new(address(&wrong, "private", ManifestRef::Tag("v1".into()))),
                None,
            )
            .await
            .expect_err("refused");
        let refused = match &err {
            Error::Unauthorized { .. } => true,
            Error::Registry(r) => r.status == StatusCode::UNAUTHORIZED,
            _ => false,
        };
        assert!(refused, "{err:?}");
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_storage_survives_a_restart_and_stop_closes_the_port() {
    let dir = tempfile::tempdir().expect("tmp");
    let start = || async {
        berth_registry::Registry::builder()
            .storage(berth_registry::Storage::disk(dir.path()))
            .start()
            .await
            .expect("start")
    };
    let reg = start().await;
    let c = Client::new(&reg.host()).await;
    let m = c.push_image("keep/me", "v1", 6).await;
    let addr = reg.addr();
    reg.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "stopped"
    );

    let reg = start().await;
    let c = Client::new(&reg.host()).await;
    let (fetched, _) = c
        .run(
            &mut GetManifest::new(address(&c, "keep/me", ManifestRef::Tag("v1".into()))),
            None,
        )
        .await
        .expect("served after a restart");
    assert_eq!(fetched.manifest.raw(), m.raw());
    let cat = c.raw(Method::GET, "/v2/_catalog", &[], Bytes::new()).await;
    assert_eq!(cat.json()["repositories"], serde_json::json!(["keep/me"]));
    // Dropping stops it too.
    let addr = reg.addr();
    drop(reg);
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "dropped");
}
