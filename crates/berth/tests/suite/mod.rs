//! Client scenarios every registry must pass: run against the real CNCF
//! distribution registry (`registry.rs`) and against berth's own
//! (`embedded.rs`). Where the two differ, the real one is right.

use std::path::Path;

use berth::manifest::Platform;
use berth::reference::Reference;
use std::sync::Arc;

use berth::protocol::StaticCredentials;
use berth::protocol::auth::{Credentials, Secret};
use berth::{Client, ErrorKind, Layout, PullOptions};
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, write_layout};

pub(crate) fn client() -> Client<HyperTransport> {
    Client::builder().build(HyperTransport::builder().build().expect("transport"))
}

pub(crate) fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

pub(crate) fn index_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
        .expect("json")
}

/// Run by `registry.rs` and `embedded.rs` alike.
pub(crate) async fn push_then_pull_round_trips_byte_for_byte(host: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top = write_layout(
        &src,
        "v1",
        &[TestImage::new("linux/amd64", &[300_000, 5_000, 1], 1)],
    )
    .expect("layout");
    let c = client();
    let dst_ref = r(&format!("{}/team/app:v1", host.to_owned()));
    let pushed = c.push(&src, &dst_ref).await.expect("push");
    assert_eq!(
        pushed.digest.as_ref(),
        Some(&top.digest),
        "digests never change on the way"
    );
    assert_eq!(pushed.blobs_transferred, 4, "config and three layers");

    let out = tmp.path().join("out");
    let pulled = c
        .pull(&dst_ref, &out, &PullOptions::platform(Platform::host()))
        .await
        .expect("pull");
    assert_eq!(pulled.digest.as_ref(), Some(&top.digest));
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        5
    );
    let index = index_json(&out);
    assert_eq!(index["manifests"][0]["digest"], top.digest.to_string());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    assert!(
        !out.join(".berth")
            .read_dir()
            .expect("dir")
            .any(|e| e.expect("entry").file_name() != "index.lock"),
        "no temporary files left"
    );

    // A second pull skips every blob.
    let again = c
        .pull(&dst_ref, &out, &PullOptions::platform(Platform::host()))
        .await
        .expect("pull");
    assert_eq!((again.blobs_transferred, again.blobs_skipped), (0, 4));
    // A second push finds every blob there.
    let again = c.push(&src, &dst_ref).await.expect("push");
    assert_eq!((again.blobs_transferred, again.blobs_skipped), (0, 4));
}

/// Run by `registry.rs` and `embedded.rs` alike.
pub(crate) async fn multi_platform_indexes_one_platform_or_all(host: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let images = [
        TestImage::new("linux/amd64", &[10_000], 1),
        TestImage::new("linux/arm64/v8", &[20_000], 2),
        TestImage::new("linux/arm/v7", &[30_000], 3),
    ];
    let top = write_layout(&src, "multi", &images).expect("layout");
    let c = client();
    let reference = r(&format!("{}/multi:latest", host.to_owned()));
    c.push(&src, &reference).await.expect("push");
    assert_eq!(
        c.resolve(&reference).await.expect("resolve").digest,
        top.digest
    );

    // One platform: the index names the arm64 manifest.
    let arm = tmp.path().join("arm");
    let platform: Platform = "linux/arm64".parse().expect("platform");
    let report = c
        .pull(&reference, &arm, &PullOptions::platform(platform))
        .await
        .expect("pull");
    assert_ne!(report.digest.as_ref(), Some(&top.digest));
    let config = c
        .config(&reference, &"linux/arm64".parse().expect("platform"))
        .await
        .expect("config");
    let config: serde_json::Value = serde_json::from_slice(&config).expect("config json");
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("arm64"))
    );

    // All platforms: the index itself, and every manifest under it.
    let all = tmp.path().join("all");
    let report = c
        .pull(&reference, &all, &PullOptions::all_platforms())
        .await
        .expect("pull");
    assert_eq!(report.digest.as_ref(), Some(&top.digest));
    assert_eq!(report.manifests, 4);
    assert_eq!(
        Layout::open(&all)
            .expect("layout")
            .verify()
            .expect("verifies"),
        3 * 3 + 1
    );

    // No such platform: a typed error listing what there is.
    let e = c
        .platform_manifest(&reference, &"windows/amd64".parse().expect("platform"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("linux/arm64"), "{e}");
}

/// Run by `registry.rs` and `embedded.rs` alike.
pub(crate) async fn missing_things_are_typed_not_found_errors(host: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    write_layout(&src, "v", &[TestImage::new("linux/amd64", &[10], 4)]).expect("layout");
    let c = client();
    let host = host.to_owned();
    c.push(&src, &r(&format!("{host}/here:v")))
        .await
        .expect("push");
    for missing in [format!("{host}/here:nope"), format!("{host}/nowhere:v")] {
        let e = c.manifest(&r(&missing)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{missing}: {e}");
    }
    let e = c
        .manifest(&r(&format!("{host}/here@sha256:{}", "0".repeat(64))))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    // Nothing listens here: a network error naming the address.
    let port = berth_testkit::free_port().expect("port");
    let e = c
        .manifest(&r(&format!("127.0.0.1:{port}/x:y")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}

/// Run by `registry.rs` and `embedded.rs` alike.
pub(crate) async fn tag_delete_list_and_catalog(host: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top = write_layout(&src, "v", &[TestImage::new("linux/amd64", &[10], 4)]).expect("layout");
    let c = client();
    let host = host.to_owned();
    let reference = r(&format!("{host}/lib/app:v1"));
    c.push(&src, &reference).await.expect("push");
    assert_eq!(c.tag(&reference, "v2").await.expect("tag"), top.digest);
    let mut tags = c.tags(&reference).await.expect("tags");
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
    assert_eq!(c.catalog(&host).await.expect("catalog"), ["lib/app"]);
    assert_eq!(
        c.delete(&r(&format!("{host}/lib/app:v2")))
            .await
            .expect("delete"),
        top.digest
    );
    let e = c.manifest(&reference).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::NotFound,
        "deleting by digest removes every tag of it: {e}"
    );
}

/// Run by `registry.rs` and `embedded.rs` alike: the registry at `host`
/// requires Basic auth for `user` / `password`.
pub(crate) async fn basic_auth_with_right_wrong_and_no_credentials(
    host: &str,
    user: &str,
    password: &str,
) {
    let host = host.to_owned();
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    write_layout(&src, "v", &[TestImage::new("linux/amd64", &[1000], 9)]).expect("layout");
    let with = |user: &str, password: &str| {
        let creds = StaticCredentials::new().with(
            &host,
            Credentials::Basic {
                username: user.into(),
                password: Secret::new(password),
            },
        );
        Client::builder()
            .credentials(Arc::new(creds))
            .build(HyperTransport::builder().build().expect("transport"))
    };
    let reference = r(&format!("{host}/private:v"));
    with(user, password)
        .push(&src, &reference)
        .await
        .expect("push with credentials");
    let tags = with(user, password).tags(&reference).await.expect("tags");
    assert_eq!(tags, ["v"]);

    let e = with(user, "wrong").tags(&reference).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    let e = client().tags(&reference).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(
        e.to_string().contains("authentication required") && e.to_string().contains(&host),
        "{e}"
    );
}

/// Run by `registry.rs` and `embedded.rs` alike: a copy within registry
/// `a` mounts every blob; a copy from `a` to `b` streams them.
pub(crate) async fn copy_mounts_within_a_registry_and_streams_between_two(a: &str, b: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top = write_layout(
        &src,
        "v",
        &[TestImage::new("linux/amd64", &[400_000, 3_000], 5)],
    )
    .expect("layout");
    let c = client();
    c.push(&src, &r(&format!("{}/one:v", a)))
        .await
        .expect("push");

    let report = c
        .copy(
            &r(&format!("{}/one:v", a)),
            &r(&format!("{}/two:v", a)),
            &PullOptions::all_platforms(),
        )
        .await
        .expect("copy within");
    assert_eq!(report.blobs_mounted, 3, "{report:?}");

    let report = c
        .copy(
            &r(&format!("{}/one:v", a)),
            &r(&format!("{}/three:v", b)),
            &PullOptions::all_platforms(),
        )
        .await
        .expect("copy across");
    assert_eq!(report.digest.as_ref(), Some(&top.digest));
    assert_eq!(report.blobs_transferred, 3);
    assert_eq!(
        c.resolve(&r(&format!("{}/three:v", b)))
            .await
            .expect("resolve")
            .digest,
        top.digest
    );
}

/// Run by `registry.rs` and `embedded.rs` alike.
pub(crate) async fn thirty_two_concurrent_pulls_into_one_layout(host: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let host = host.to_owned();
    // Three images that share a base layer (same seed and size: same bytes).
    for (i, extra) in [10_000usize, 20_000, 30_000].iter().enumerate() {
        let dir = tmp.path().join(format!("src{i}"));
        let images = [TestImage {
            seed: 90,
            ..TestImage::new("linux/amd64", &[200_000], 0)
        }];
        write_layout(&dir, "t", &images).expect("layout");
        // A second layer unique to each image.
        let unique = tmp.path().join(format!("u{i}"));
        write_layout(
            &unique,
            "t",
            &[TestImage::new("linux/amd64", &[*extra], 91 + i as u64)],
        )
        .expect("layout");
        client()
            .push(&dir, &r(&format!("{host}/shared/base:{i}")))
            .await
            .expect("push base");
        client()
            .push(&unique, &r(&format!("{host}/shared/img:{i}")))
            .await
            .expect("push img");
    }
    let out = tmp.path().join("one-layout");
    let c = client();
    let pulls = (0..32).map(|n| {
        let (c, out, host) = (c.clone(), out.clone(), host.clone());
        let reference = if n % 2 == 0 {
            format!("{host}/shared/base:{}", n % 3)
        } else {
            format!("{host}/shared/img:{}", n % 3)
        };
        tokio::spawn(async move {
            c.pull(
                &r(&reference),
                &out,
                &PullOptions::platform(Platform::host()),
            )
            .await
            .map(|_| reference)
        })
    });
    let results = futures_util::future::join_all(pulls).await;
    for result in results {
        result.expect("task").expect("every pull succeeds");
    }
    let layout = Layout::open(&out).expect("layout");
    let checked = layout.verify().expect("every blob verifies");
    assert!(checked >= 3 + 3 * 3, "{checked} blobs");
    // index.json names every tag pulled, once each (ref names are tags).
    let index = index_json(&out);
    let names: std::collections::BTreeSet<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|d| {
            d["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(names.len(), 3, "tags 0, 1, 2: {names:?}");
    assert!(
        !out.join(".berth")
            .read_dir()
            .expect("dir")
            .any(|e| e.expect("entry").file_name() != "index.lock")
    );
}

/// Run by `registry.rs` and `embedded.rs` alike: `mirror` serves as a
/// mirror of `primary`.
pub(crate) async fn registries_conf_mirrors_first_then_the_registry_and_blocked_prefixes(
    primary: &str,
    mirror: &str,
) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (p, m) = (primary.to_owned(), mirror.to_owned());
    let original = write_layout(
        &tmp.path().join("a"),
        "v",
        &[TestImage::new("linux/amd64", &[5000], 71)],
    )
    .expect("layout");
    let mirrored = write_layout(
        &tmp.path().join("b"),
        "v",
        &[TestImage::new("linux/amd64", &[6000], 72)],
    )
    .expect("layout");
    client()
        .push(&tmp.path().join("a"), &r(&format!("{p}/team/app:v")))
        .await
        .expect("push to primary");
    let conf = berth::mirrors::parse_registries_conf(&format!(
        "[[registry]]\nprefix = \"{p}/team\"\nlocation = \"{p}/team\"\n\n[[registry.mirror]]\nlocation = \"{m}/cache/team\"\n\n[[registry]]\nprefix = \"{p}/secret\"\nblocked = true\n"
    ))
    .expect("conf");
    let c = Client::builder()
        .registries(conf)
        .build(HyperTransport::builder().build().expect("transport"));
    let reference = r(&format!("{p}/team/app:v"));
    assert_eq!(
        c.pull_sources(&reference)
            .expect("sources")
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [format!("{m}/cache/team/app:v"), format!("{p}/team/app:v")]
    );
    // The mirror lacks it: the registry answers.
    assert_eq!(
        c.resolve(&reference).await.expect("resolve").digest,
        original.digest
    );
    // Once the mirror has something under that name, it answers first.
    client()
        .push(&tmp.path().join("b"), &r(&format!("{m}/cache/team/app:v")))
        .await
        .expect("push to mirror");
    assert_eq!(
        c.resolve(&reference).await.expect("resolve").digest,
        mirrored.digest
    );
    let out = tmp.path().join("out");
    let report = c
        .pull(&reference, &out, &PullOptions::platform(Platform::host()))
        .await
        .expect("pull");
    assert_eq!(report.digest.as_ref(), Some(&mirrored.digest));
    assert_eq!(
        index_json(&out)["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v"
    );
    // Blocked prefixes are refused; a missing image lists every source.
    let e = c.resolve(&r(&format!("{p}/secret/x:v"))).await.unwrap_err();
    assert!(e.to_string().contains("blocked"), "{e}");
    let e = c
        .resolve(&r(&format!("{p}/team/none:v")))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let text = e.to_string();
    assert!(
        text.contains(&m) && text.contains(&p),
        "every source is named: {text}"
    );
}
