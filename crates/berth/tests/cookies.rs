//! Cookies against the real registry behind a proxy that pins sessions
//! with a cookie, as load balancers do: berth sends the cookie back to the
//! host that set it, and to no other.

use berth::manifest::Platform;
use berth::reference::Reference;
use berth::{Client, Layout, PullOptions};
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::proxy::{Fault, FaultProxy, Recorded, Rule};
use berth_testkit::{Auth, Registry};

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

fn transport() -> HyperTransport {
    HyperTransport::builder().build().expect("transport")
}

/// A registry with one image pushed straight to it (not through a proxy);
/// the layout it came from.
async fn registry_with_image() -> (Registry, tempfile::TempDir, berth::reference::Digest) {
    let registry = Registry::start(Auth::None).expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top = write_layout(
        &src,
        "v1",
        &[TestImage::new("linux/amd64", &[200_000, 3_000], 21)],
    )
    .expect("layout");
    Client::builder()
        .build(transport())
        .push(&src, &r(&format!("{}/pinned/app:v1", registry.host())))
        .await
        .expect("push");
    (registry, tmp, top.digest)
}

fn cookie_of(req: &Recorded) -> Option<&str> {
    req.header("cookie")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_through_a_cookie_pinning_load_balancer_completes() {
    let (registry, tmp, digest) = registry_with_image().await;
    let proxy = FaultProxy::builder(registry.addr())
        .pin_cookie()
        .start()
        .expect("proxy");
    let pinned = proxy.pinned_cookie().expect("pinning").to_owned();
    let out = tmp.path().join("out");
    let report = Client::builder()
        .build(transport())
        .pull(
            &r(&format!("{}/pinned/app:v1", proxy.host())),
            &out,
            &PullOptions::platform(Platform::host()),
        )
        .await
        .expect("a pull through the pinning proxy");
    assert_eq!(report.digest.as_ref(), Some(&digest));
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        4
    );
    let seen = proxy.requests();
    assert!(
        seen.len() >= 5,
        "ping, manifest, config, two layers: {seen:?}"
    );
    assert_eq!(
        cookie_of(&seen[0]),
        None,
        "nothing set before the first answer"
    );
    for req in &seen[1..] {
        assert_eq!(
            cookie_of(req),
            Some(pinned.as_str()),
            "{} {} without the cookie",
            req.method,
            req.target
        );
    }
    assert!(
        seen.iter().all(|r| r.status != Some(403)),
        "nothing refused: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cookies_the_pinning_proxy_refuses_the_pull() {
    let (registry, tmp, _) = registry_with_image().await;
    let proxy = FaultProxy::builder(registry.addr())
        .pin_cookie()
        .start()
        .expect("proxy");
    let e = Client::builder()
        .cookies(false)
        .build(transport())
        .pull(
            &r(&format!("{}/pinned/app:v1", proxy.host())),
            &tmp.path().join("out"),
            &PullOptions::platform(Platform::host()),
        )
        .await
        .expect_err("the proxy refuses requests without its cookie");
    assert!(e.to_string().contains("403"), "{e}");
    let seen = proxy.requests();
    assert!(seen.iter().all(|r| cookie_of(r).is_none()), "{seen:?}");
    assert!(seen.iter().any(|r| r.status == Some(403)), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_do_not_follow_a_redirect_to_another_host() {
    let (registry, tmp, digest) = registry_with_image().await;
    // Blob downloads are sent on to "storage": another proxy, on another
    // port, in front of the same registry.
    let storage = FaultProxy::start(registry.addr(), vec![]).expect("storage");
    let proxy = FaultProxy::builder(registry.addr())
        .pin_cookie()
        .rule(Rule::get("/blobs/", Fault::redirect(storage.url())).always())
        .start()
        .expect("proxy");
    let pinned = proxy.pinned_cookie().expect("pinning").to_owned();
    let report = Client::builder()
        .build(transport())
        .pull(
            &r(&format!("{}/pinned/app:v1", proxy.host())),
            &tmp.path().join("out"),
            &PullOptions::platform(Platform::host()),
        )
        .await
        .expect("pull");
    assert_eq!(report.digest.as_ref(), Some(&digest));
    let redirected = proxy.requests_matching("GET", "/blobs/");
    assert!(!redirected.is_empty());
    for req in &redirected {
        assert_eq!(
            (req.status, cookie_of(req)),
            (Some(307), Some(pinned.as_str()))
        );
    }
    let at_storage = storage.requests_matching("GET", "/blobs/");
    assert_eq!(at_storage.len(), redirected.len(), "{at_storage:?}");
    for req in &at_storage {
        assert_eq!(
            cookie_of(req),
            None,
            "the registry's cookie went to storage"
        );
        assert_eq!(req.status, Some(200));
    }
}
