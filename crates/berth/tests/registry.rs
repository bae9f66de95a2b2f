//! The client against the real registry (CNCF distribution on 127.0.0.1)
//! and the real skopeo: push, pull, copy, multi-platform, auth, errors.

use std::sync::Arc;

use berth::manifest::Platform;
use berth::protocol::StaticCredentials;
use berth::protocol::auth::{Credentials, Secret};
use berth::{Client, ErrorKind, Layout, PullOptions};
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry, skopeo};

mod suite;

use suite::{client, index_json, r};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_round_trips_byte_for_byte() {
    let registry = Registry::start(Auth::None).expect("registry");
    suite::push_then_pull_round_trips_byte_for_byte(&registry.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_platform_indexes_one_platform_or_all() {
    let registry = Registry::start(Auth::None).expect("registry");
    suite::multi_platform_indexes_one_platform_or_all(&registry.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reads_what_berth_pushes_and_the_other_way_round() {
    let registry = Registry::start(Auth::None).expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let images = [
        TestImage::new("linux/amd64", &[50_000, 7], 11),
        TestImage::new("linux/arm64/v8", &[60_000], 12),
    ];
    let top = write_layout(&src, "x", &images).expect("layout");
    let c = client();
    let host = registry.host();

    // berth pushes; skopeo copies back byte for byte.
    c.push(&src, &r(&format!("{host}/from-berth:x")))
        .await
        .expect("push");
    let back = tmp.path().join("back");
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!("docker://{host}/from-berth:x"),
        &format!("oci:{}:x", back.display()),
    ])
    .expect("skopeo copies what berth pushed");
    let back_index = index_json(&back);
    assert_eq!(back_index["manifests"][0]["digest"], top.digest.to_string());
    for dir in [&src, &back] {
        assert!(dir.join("blobs/sha256").join(top.digest.encoded()).exists());
    }

    // skopeo pushes; berth pulls and verifies.
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:x", src.display()),
        &format!("docker://{host}/from-skopeo:y"),
    ])
    .expect("skopeo pushes");
    let out = tmp.path().join("out");
    let report = c
        .pull(
            &r(&format!("{host}/from-skopeo:y")),
            &out,
            &PullOptions::all_platforms(),
        )
        .await
        .expect("berth pulls");
    assert_eq!(report.digest.as_ref(), Some(&top.digest));
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        3 + 3 + 1 + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mounts_within_a_registry_and_streams_between_two() {
    let a = Registry::start(Auth::None).expect("registry a");
    let b = Registry::start(Auth::None).expect("registry b");
    suite::copy_mounts_within_a_registry_and_streams_between_two(&a.host(), &b.host()).await;
    // Mounting stored nothing new: only the pushed blobs are in a's storage.
    assert_eq!(
        a.stored_blobs(),
        3 + 1,
        "config, two layers and the manifest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_right_wrong_and_no_credentials() {
    let registry = Registry::start(Auth::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    })
    .expect("registry");
    suite::basic_auth_with_right_wrong_and_no_credentials(&registry.host(), "alice", "s3cret")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_things_are_typed_not_found_errors() {
    let registry = Registry::start(Auth::None).expect("registry");
    suite::missing_things_are_typed_not_found_errors(&registry.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_delete_list_and_catalog() {
    let registry = Registry::start(Auth::None).expect("registry");
    suite::tag_delete_list_and_catalog(&registry.host()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_from_a_token_server_the_registry_trusts() {
    let registry = Registry::start(Auth::Token {
        user: "tok".into(),
        password: "en".into(),
    })
    .expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top =
        write_layout(&src, "v", &[TestImage::new("linux/amd64", &[2000], 41)]).expect("layout");
    let host = registry.host();
    let with = |password: &str| {
        let creds = StaticCredentials::new().with(
            &host,
            Credentials::Basic {
                username: "tok".into(),
                password: Secret::new(password),
            },
        );
        Client::builder()
            .credentials(Arc::new(creds))
            .build(HyperTransport::builder().build().expect("transport"))
    };
    let reference = r(&format!("{host}/t/app:v"));
    let c = with("en");
    let report = c.push(&src, &reference).await.expect("push with a token");
    assert_eq!(report.digest.as_ref(), Some(&top.digest));
    let out = tmp.path().join("out");
    c.pull(&reference, &out, &PullOptions::platform(Platform::host()))
        .await
        .expect("pull with a token");
    let served = registry.token_server().expect("token mode").requests();
    // One client reuses its tokens: pulling again asks for no new token.
    c.pull(&reference, &out, &PullOptions::platform(Platform::host()))
        .await
        .expect("pull again");
    assert_eq!(
        registry.token_server().expect("token mode").requests(),
        served,
        "tokens are cached per scope"
    );

    let e = with("wrong").tags(&reference).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    let e = client().tags(&reference).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_trusted_through_certs_d() {
    let registry = Registry::start_tls(Auth::None).expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let host = registry.host();
    let certs_d = tmp.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(&host)).expect("certs.d");
    std::fs::write(
        certs_d.join(&host).join("ca.crt"),
        registry.ca_pem().expect("tls"),
    )
    .expect("ca.crt");
    let src = tmp.path().join("src");
    let top =
        write_layout(&src, "v", &[TestImage::new("linux/amd64", &[3000], 51)]).expect("layout");
    let reference = r(&format!("{host}/secure/app:v"));

    let trusting = Client::builder().build(
        HyperTransport::builder()
            .certs_d_roots([certs_d])
            .build()
            .expect("transport"),
    );
    let report = trusting
        .push(&src, &reference)
        .await
        .expect("push over TLS");
    assert_eq!(report.digest.as_ref(), Some(&top.digest));
    assert_eq!(
        trusting.resolve(&reference).await.expect("resolve").digest,
        top.digest
    );

    // Without the CA: a certificate error, and no fallback to plain http
    // for a host that serves TLS.
    let e = client().resolve(&reference).await.unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_conf_mirrors_first_then_the_registry_and_blocked_prefixes() {
    let primary = Registry::start(Auth::None).expect("primary");
    let mirror = Registry::start(Auth::None).expect("mirror");
    suite::registries_conf_mirrors_first_then_the_registry_and_blocked_prefixes(
        &primary.host(),
        &mirror.host(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_pulls_into_one_layout() {
    let registry = Registry::start(Auth::None).expect("registry");
    suite::thirty_two_concurrent_pulls_into_one_layout(&registry.host()).await;
}
