//! The real `skopeo` against berth-registry: copies to it and from it,
//! multi-platform, digests preserved, on both storages, with Basic auth,
//! and from one berth-registry to another.

mod support;

use std::path::Path;

use berth_manifest::Digester;
use berth_registry::{Auth, Fault, FaultRule};
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::skopeo;
use bytes::Bytes;
use http::{Method, StatusCode};
use support::*;

/// Runs skopeo off the runtime's threads (it blocks while the registry
/// serves).
async fn run(args: Vec<String>) -> std::io::Result<String> {
    tokio::time::timeout(
        std::time::Duration::from_secs(300),
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            skopeo(&args)
        }),
    )
    .await
    .expect("skopeo in time")
    .expect("joined")
}

fn index_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
        .expect("json")
}

/// Every blob of `src` is in `dst`, byte for byte.
fn same_blobs(src: &Path, dst: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(src.join("blobs/sha256")).expect("blobs") {
        let entry = entry.expect("entry");
        let theirs = std::fs::read(dst.join("blobs/sha256").join(entry.file_name()))
            .unwrap_or_else(|_| panic!("{:?} missing", entry.file_name()));
        assert_eq!(theirs, std::fs::read(entry.path()).expect("read"));
        n += 1;
    }
    n
}

fn images() -> Vec<TestImage> {
    vec![
        TestImage::new("linux/amd64", &[300_000, 5_000, 1], 1),
        TestImage::new("linux/arm64/v8", &[200_000], 2),
        TestImage::new("linux/arm/v7", &[70_000, 10], 3),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_multi_platform_to_and_from_berth_registry() {
    for kind in KINDS {
        let fx = Fixture::start(kind).await;
        let host = fx.host();
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("src");
        let top = write_layout(&src, "multi", &images()).expect("layout");

        run(vec![
            "--insecure-policy".into(),
            "copy".into(),
            "--all".into(),
            "--preserve-digests".into(),
            "--dest-tls-verify=false".into(),
            format!("oci:{}:multi", src.display()),
            format!("docker://{host}/team/multi:v1"),
        ])
        .await
        .expect("skopeo pushes to berth-registry");

        let raw = run(vec![
            "inspect".into(),
            "--raw".into(),
            "--tls-verify=false".into(),
            format!("docker://{host}/team/multi:v1"),
        ])
        .await
        .expect("inspect");
        assert_eq!(Digester::sha256_of(raw.as_bytes()), top.digest, "{kind:?}");
        let tags = run(vec![
            "list-tags".into(),
            "--tls-verify=false".into(),
            format!("docker://{host}/team/multi"),
        ])
        .await
        .expect("list-tags");
        let tags: serde_json::Value = serde_json::from_str(&tags).expect("json");
        assert_eq!(tags["Tags"], serde_json::json!(["v1"]));

        let back = tmp.path().join("back");
        run(vec![
            "--insecure-policy".into(),
            "copy".into(),
            "--all".into(),
            "--preserve-digests".into(),
            "--src-tls-verify=false".into(),
            format!("docker://{host}/team/multi:v1"),
            format!("oci:{}:multi", back.display()),
        ])
        .await
        .expect("skopeo pulls from berth-registry");
        assert_eq!(
            index_json(&back)["manifests"][0]["digest"],
            top.digest.to_string()
        );
        // 3 manifests + index + 3 configs + 6 layers.
        assert_eq!(same_blobs(&src, &back), 13);
        assert_eq!(same_blobs(&back, &src), 13);
        if kind == Kind::Disk {
            assert_eq!(fx.blob_files().len(), 13);
            assert_eq!(fx.tmp_files(), 0);
        }
        fx.registry.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_between_two_berth_registries_with_basic_auth() {
    let from = Fixture::start(Kind::Memory).await;
    let to = Fixture::start_with(Kind::Disk, Auth::basic("alice", "s3cret")).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top = write_layout(&src, "multi", &images()).expect("layout");
    run(vec![
        "--insecure-policy".into(),
        "copy".into(),
        "--all".into(),
        "--preserve-digests".into(),
        "--dest-tls-verify=false".into(),
        format!("oci:{}:multi", src.display()),
        format!("docker://{}/a:1", from.host()),
    ])
    .await
    .expect("push");

    // No credentials: refused.
    let err = run(vec![
        "--insecure-policy".into(),
        "copy".into(),
        "--all".into(),
        "--src-tls-verify=false".into(),
        "--dest-tls-verify=false".into(),
        "--dest-no-creds".into(),
        format!("docker://{}/a:1", from.host()),
        format!("docker://{}/b:1", to.host()),
    ])
    .await
    .expect_err("unauthorized");
    assert!(
        err.to_string().to_lowercase().contains("unauthorized") || err.to_string().contains("401"),
        "{err}"
    );
    run(vec![
        "--insecure-policy".into(),
        "copy".into(),
        "--all".into(),
        "--preserve-digests".into(),
        "--src-tls-verify=false".into(),
        "--dest-tls-verify=false".into(),
        "--dest-creds".into(),
        "alice:s3cret".into(),
        format!("docker://{}/a:1", from.host()),
        format!("docker://{}/b:1", to.host()),
    ])
    .await
    .expect("copy between registries");
    let raw = run(vec![
        "inspect".into(),
        "--raw".into(),
        "--tls-verify=false".into(),
        "--creds".into(),
        "alice:s3cret".into(),
        format!("docker://{}/b:1", to.host()),
    ])
    .await
    .expect("inspect");
    assert_eq!(Digester::sha256_of(raw.as_bytes()), top.digest);
    assert_eq!(to.blob_files().len(), 13);
    from.registry.stop().await;
    to.registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_retries_through_injected_faults() {
    let fx = Fixture::start(Kind::Memory).await;
    let host = fx.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top =
        write_layout(&src, "one", &[TestImage::new("linux/amd64", &[50_000], 7)]).expect("layout");
    run(vec![
        "--insecure-policy".into(),
        "copy".into(),
        "--preserve-digests".into(),
        "--dest-tls-verify=false".into(),
        format!("oci:{}:one", src.display()),
        format!("docker://{host}/f:1"),
    ])
    .await
    .expect("push");
    // A corrupted layer: skopeo's verification catches it.
    let c = Client::new(&host).await;
    let manifest = c
        .raw(
            Method::GET,
            &format!("/v2/f/manifests/{}", top.digest),
            &[],
            Bytes::new(),
        )
        .await;
    let manifest: serde_json::Value = manifest.json();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer")
        .to_owned();
    fx.registry.faults().add(
        FaultRule::new(
            "GET",
            &format!("/blobs/{layer}"),
            Fault::Corrupt { offset: 100 },
        )
        .always(),
    );
    let out = tmp.path().join("bad");
    let err = run(vec![
        "--insecure-policy".into(),
        "copy".into(),
        "--src-tls-verify=false".into(),
        format!("docker://{host}/f:1"),
        format!("oci:{}:one", out.display()),
    ])
    .await
    .expect_err("corrupted bytes are refused");
    assert!(
        err.to_string()
            .to_lowercase()
            .contains("digest did not match"),
        "{err}"
    );
    // Faults cleared while running: the copy goes through.
    fx.registry.faults().clear();
    let r = c
        .raw(
            Method::GET,
            &format!("/v2/f/blobs/{layer}"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(Digester::sha256_of(&r.body).to_string(), layer);
    let out = tmp.path().join("good");
    run(vec![
        "--insecure-policy".into(),
        "copy".into(),
        "--preserve-digests".into(),
        "--src-tls-verify=false".into(),
        format!("docker://{host}/f:1"),
        format!("oci:{}:one", out.display()),
    ])
    .await
    .expect("copy");
    assert_eq!(same_blobs(&src, &out), 3);
    fx.registry.stop().await;
}
