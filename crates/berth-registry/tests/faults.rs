//! Fault injection: each fault as a raw client sees it, rules changed
//! while the registry runs, and berth's protocol ops retrying through
//! them.

mod support;

use berth_manifest::Digester;
use berth_protocol::ops::{GetManifest, ManifestAddress, ManifestRef, UploadPolicy};
use berth_registry::{Fault, FaultRule, Faults, Registry};
use berth_testkit::image::pseudo_random;
use bytes::Bytes;
use http::{Method, StatusCode};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_for_the_first_k_matching_requests() {
    let faults = Faults::new();
    let registry = Registry::builder()
        .faults(faults.clone())
        .start()
        .await
        .expect("start");
    let c = Client::new(&registry.host()).await;
    let blob = pseudo_random(1000, 1);
    let d = c.push_blob("app", &blob, UploadPolicy::default()).await;
    let path = format!("/v2/app/blobs/{d}");

    faults.add(FaultRule::new("GET", "/blobs/", Fault::status(503)).times(2));
    faults.add(FaultRule::new(
        "HEAD",
        "/blobs/",
        Fault::too_many_requests(3),
    ));
    for _ in 0..2 {
        let r = c.raw(Method::GET, &path, &[], Bytes::new()).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.code(), "UNAVAILABLE");
    }
    let r = c.raw(Method::GET, &path, &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &blob[..]);
    let r = c.raw(Method::HEAD, &path, &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(
        c.raw(Method::HEAD, &path, &[], Bytes::new()).await.status,
        StatusCode::OK
    );
    // Other methods and paths were never touched.
    assert_eq!(faults.fired(), 3);
    assert_eq!(registry.faults().rules().len(), 2);
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_cut_slowed_and_corrupted_and_ranges_ignored() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let c = Client::new(&fx.host()).await;
        let blob = pseudo_random(150_000, 2);
        let d = c.push_blob("app", &blob, UploadPolicy::default()).await;
        let path = format!("/v2/app/blobs/{d}");
        let faults = fx.registry.faults();

        // Cut after 1000 bytes: the body ends early, with an error.
        faults.add(FaultRule::new("GET", "/blobs/", Fault::Cut { after: 1000 }));
        let r = c.raw(Method::GET, &path, &[], Bytes::new()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-length"), Some("150000"));
        assert!(r.body_failed, "{kind:?}");
        assert_eq!(&r.body[..], &blob[..1000]);
        // Once only.
        let r = c.raw(Method::GET, &path, &[], Bytes::new()).await;
        assert!(!r.body_failed);
        assert_eq!(&r.body[..], &blob[..]);

        // One byte flipped: same length, another digest.
        faults.add(FaultRule::new(
            "GET",
            &d.to_string(),
            Fault::Corrupt { offset: 70_000 },
        ));
        let r = c.raw(Method::GET, &path, &[], Bytes::new()).await;
        assert_eq!(r.body.len(), blob.len());
        assert_ne!(Digester::sha256_of(&r.body), d);
        let diff: Vec<usize> = (0..blob.len()).filter(|&i| r.body[i] != blob[i]).collect();
        assert_eq!(diff, [70_000]);
        // Past the end: the last byte.
        faults.add(FaultRule::new(
            "GET",
            "/blobs/",
            Fault::Corrupt { offset: 10_000_000 },
        ));
        let r = c.raw(Method::GET, &path, &[], Bytes::new()).await;
        let diff: Vec<usize> = (0..blob.len()).filter(|&i| r.body[i] != blob[i]).collect();
        assert_eq!(diff, [blob.len() - 1]);

        // Range ignored: 200 and the whole blob.
        faults.add(FaultRule::new("GET", "/blobs/", Fault::IgnoreRange));
        let r = c
            .raw(Method::GET, &path, &[("range", "bytes=100-")], Bytes::new())
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], &blob[..]);
        let r = c
            .raw(Method::GET, &path, &[("range", "bytes=100-")], Bytes::new())
            .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);

        // Slowed: 20 000 bytes at 100 000 bytes/s is served whole, in
        // slices (no time is asserted).
        let small = pseudo_random(20_000, 3);
        let sd = c.push_blob("app", &small, UploadPolicy::default()).await;
        faults.add(
            FaultRule::new(
                "GET",
                "/blobs/",
                Fault::Slow {
                    bytes_per_second: 100_000,
                },
            )
            .always(),
        );
        let r = c
            .raw(
                Method::GET,
                &format!("/v2/app/blobs/{sd}"),
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(&r.body[..], &small[..]);
        assert_eq!(faults.rules().last().expect("rule").fired(), 1);
        faults.clear();
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_retries_through_5xx_and_cut_manifests() {
    let fx = Fixture::start(Kind::Memory).await;
    let c = Client::new(&fx.host()).await;
    let m = c.push_image("app", "v1", 1).await;
    fx.registry
        .faults()
        .add(FaultRule::new("GET", "/manifests/v1", Fault::status(503)).times(2));
    fx.registry.faults().add(FaultRule::new(
        "GET",
        "/manifests/v1",
        Fault::Cut { after: 5 },
    ));
    let address = ManifestAddress {
        domain: c.domain.clone(),
        name: "app".into(),
        reference: ManifestRef::Tag("v1".into()),
    };
    let (fetched, _) = c
        .run(&mut GetManifest::new(address), None)
        .await
        .expect("retried to success");
    assert_eq!(fetched.manifest.raw(), m.raw());
    assert_eq!(fx.registry.faults().fired(), 3, "503 twice, then one cut");
    fx.registry.stop().await;
}
