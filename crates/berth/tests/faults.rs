//! The client against the real registry behind a fault-injecting proxy
//! (`berth_testkit::proxy`): cut connections, corrupted bytes, 503s and
//! 429s, redirects to storage on another host, interrupted pulls. Each test
//! looks at what reached the disk and at what the proxy saw.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth::manifest::{Digester, Platform};
use berth::protocol::StaticCredentials;
use berth::protocol::auth::{Credentials, Secret};
use berth::reference::Reference;
use berth::{Client, ErrorKind, Layout, PullOptions, Report};
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, temporaries, write_layout};
use berth_testkit::proxy::{CORRUPT_MASK, Fault, FaultProxy, Recorded, Rule, basic_authorization};
use berth_testkit::{Auth, Registry};

fn client() -> Client<HyperTransport> {
    Client::builder().build(HyperTransport::builder().build().expect("transport"))
}

fn basic_client(host: &str, user: &str, password: &str) -> Client<HyperTransport> {
    let creds = StaticCredentials::new().with(
        host,
        Credentials::Basic {
            username: user.into(),
            password: Secret::new(password),
        },
    );
    Client::builder()
        .credentials(Arc::new(creds))
        .build(HyperTransport::builder().build().expect("transport"))
}

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

fn opts() -> PullOptions {
    PullOptions::platform(Platform::host())
}

/// An image pushed straight to the registry (not through any proxy).
struct Pushed {
    tmp: tempfile::TempDir,
    src: PathBuf,
    /// `sha256:...` of each layer, in order.
    layers: Vec<String>,
    config: String,
}

impl Pushed {
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    fn hex(digest: &str) -> &str {
        digest.strip_prefix("sha256:").expect("a sha256 digest")
    }

    /// The source bytes of a blob.
    fn bytes(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.src.join("blobs/sha256").join(Self::hex(digest))).expect("source blob")
    }
}

async fn push(
    c: &Client<HyperTransport>,
    registry_host: &str,
    repo_tag: &str,
    sizes: &[usize],
    seed: u64,
) -> Pushed {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top =
        write_layout(&src, "v", &[TestImage::new("linux/amd64", sizes, seed)]).expect("layout");
    c.push(&src, &r(&format!("{registry_host}/{repo_tag}")))
        .await
        .expect("push to the registry");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(src.join("blobs/sha256").join(top.digest.encoded())).expect("manifest"),
    )
    .expect("manifest json");
    let layers = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect();
    let config = manifest["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_owned();
    Pushed {
        tmp,
        src,
        layers,
        config,
    }
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256").join(Pushed::hex(digest))
}

fn ranges(requests: &[Recorded]) -> Vec<Option<String>> {
    requests
        .iter()
        .map(|q| q.header("range").map(str::to_owned))
        .collect()
}

fn statuses(requests: &[Recorded]) -> Vec<Option<u16>> {
    requests.iter().map(|q| q.status).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_mid_blob_resumes_with_range_from_the_last_byte_received() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(
        &c,
        &registry.host(),
        "cut/app:v",
        &[6 * 1024 * 1024, 100_000],
        21,
    )
    .await;
    let big = &image.layers[0];
    let path = format!("/blobs/{big}");
    // Three cuts in a row at different offsets of the same 6 MiB layer:
    // each rule fires once, in order.
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![
            Rule::get(&path, Fault::cut(1_000_000)),
            Rule::get(&path, Fault::cut(2_500_000)),
            Rule::get(&path, Fault::cut(777)),
        ],
    )
    .expect("proxy");

    let out = image.out();
    let report = c
        .pull(&r(&format!("{}/cut/app:v", proxy.host())), &out, &opts())
        .await
        .expect("the pull resumes");
    assert_eq!(report.blobs_transferred, 3, "{report:?}");
    assert_eq!(proxy.fired(), [1, 1, 1], "every cut happened");

    let gets = proxy.requests_matching("GET", &path);
    assert_eq!(
        ranges(&gets),
        [
            None,
            Some("bytes=1000000-".into()),
            Some("bytes=3500000-".into()),
            Some("bytes=3500777-".into())
        ],
        "each resume asks for the bytes from the last one received"
    );
    assert_eq!(
        statuses(&gets),
        [Some(200), Some(206), Some(206), Some(206)]
    );

    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        4
    );
    assert!(
        std::fs::read(blob_path(&out, big)).expect("the layer") == image.bytes(big),
        "byte for byte"
    );
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_corrupted_every_time_is_an_integrity_error_and_never_lands() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(
        &c,
        &registry.host(),
        "bad/app:v",
        &[2 * 1024 * 1024, 50_000],
        22,
    )
    .await;
    let bad = &image.layers[0];
    let offset = 1_234_567;
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![Rule::get(&format!("/blobs/{bad}"), Fault::corrupt(offset)).always()],
    )
    .expect("proxy");

    let out = image.out();
    let e = c
        .pull(&r(&format!("{}/bad/app:v", proxy.host())), &out, &opts())
        .await
        .unwrap_err();
    let text = e.to_string();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{text}");
    assert!(text.contains("digest mismatch"), "{text}");
    let mut corrupted = image.bytes(bad);
    corrupted[usize::try_from(offset).expect("small")] ^= CORRUPT_MASK;
    let actual = Digester::sha256_of(&corrupted).to_string();
    assert!(
        text.contains(bad.as_str()),
        "names the expected digest: {text}"
    );
    assert!(
        text.contains(&actual),
        "names the digest received ({actual}): {text}"
    );

    // Tried twice (the one retry from scratch), then given up.
    let gets = proxy.requests_matching("GET", &format!("/blobs/{bad}"));
    assert_eq!(ranges(&gets), [None, None], "{gets:?}");

    // On disk: not the bad blob, no temporaries, and whatever is under
    // blobs/ hashes to its name.
    assert!(
        !blob_path(&out, bad).exists(),
        "the corrupted blob must not land in blobs/"
    );
    assert!(
        temporaries(&out).is_empty(),
        "temporaries left: {:?}",
        temporaries(&out)
    );
    Layout::open(&out)
        .expect("layout")
        .verify()
        .expect("what is there verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_corrupted_once_is_fetched_again_from_scratch() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(
        &c,
        &registry.host(),
        "once/app:v",
        &[1024 * 1024, 4_000],
        23,
    )
    .await;
    let bad = &image.layers[0];
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![Rule::get(&format!("/blobs/{bad}"), Fault::corrupt(500_000))],
    )
    .expect("proxy");

    let out = image.out();
    let report = c
        .pull(&r(&format!("{}/once/app:v", proxy.host())), &out, &opts())
        .await
        .expect("the retry succeeds");
    assert_eq!(report.blobs_transferred, 3, "{report:?}");
    let gets = proxy.requests_matching("GET", &format!("/blobs/{bad}"));
    assert_eq!(
        ranges(&gets),
        [None, None],
        "the retry starts from byte 0: {gets:?}"
    );
    assert_eq!(proxy.fired(), [1]);
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        4
    );
    assert!(std::fs::read(blob_path(&out, bad)).expect("the layer") == image.bytes(bad));
    assert!(temporaries(&out).is_empty(), "{:?}", temporaries(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_503s_then_success_are_retried() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(&c, &registry.host(), "flaky/app:v", &[10_000], 24).await;
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![Rule::get("/manifests/", Fault::status(503)).times(2)],
    )
    .expect("proxy");

    let out = image.out();
    let report: Report = c
        .pull(&r(&format!("{}/flaky/app:v", proxy.host())), &out, &opts())
        .await
        .expect("pull");
    assert!(report.digest.is_some());
    let gets = proxy.requests_matching("GET", "/manifests/");
    assert_eq!(statuses(&gets), [Some(503), Some(503), Some(200)]);
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_honoured() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(&c, &registry.host(), "busy/app:v", &[10_000], 25).await;
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![Rule::get(
            "/manifests/",
            Fault::status_with(429, &[("Retry-After", "1")]),
        )],
    )
    .expect("proxy");

    let out = image.out();
    c.pull(&r(&format!("{}/busy/app:v", proxy.host())), &out, &opts())
        .await
        .expect("pull");
    let gets = proxy.requests_matching("GET", "/manifests/");
    assert_eq!(statuses(&gets), [Some(429), Some(200)]);
    let waited = gets[1].at.duration_since(gets[0].at);
    println!("the client waited {waited:?} after the 429");
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured, but the retry came after {waited:?}"
    );
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_storm_fails_clearly_within_the_retry_budget() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(&c, &registry.host(), "down/app:v", &[10_000], 26).await;
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![Rule::get("/manifests/", Fault::status(503)).always()],
    )
    .expect("proxy");

    let out = image.out();
    let e = c
        .pull(&r(&format!("{}/down/app:v", proxy.host())), &out, &opts())
        .await
        .unwrap_err();
    let text = e.to_string();
    println!("kind {:?}: {text}", e.kind());
    assert!(text.contains("503"), "the error names the status: {text}");
    assert!(
        matches!(e.kind(), ErrorKind::Other | ErrorKind::Network),
        "a server failure is neither not-found, auth, usage nor integrity: {:?}: {text}",
        e.kind()
    );
    // The default policy: the first attempt and 3 retries, no more.
    let gets = proxy.requests_matching("GET", "/manifests/");
    assert_eq!(gets.len(), 4, "{:?}", statuses(&gets));
    // Nothing was named in index.json.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).expect("index.json"))
            .expect("json");
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_redirected_to_storage_on_another_host_gets_no_credentials() {
    let (user, password) = ("alice", "s3cret");
    let registry = Registry::start(Auth::Htpasswd {
        user: user.into(),
        password: password.into(),
    })
    .expect("registry");
    let image = push(
        &basic_client(&registry.host(), user, password),
        &registry.host(),
        "private/app:v",
        &[300_000, 2_000],
        27,
    )
    .await;

    // "Storage": another host (port) that serves the real bytes by asking
    // the registry with credentials of its own, and records what it got.
    let storage = FaultProxy::builder(registry.addr())
        .upstream_header("authorization", &basic_authorization(user, password))
        .start()
        .expect("storage");
    // The registry's front: every blob GET is redirected to storage.
    let front = FaultProxy::start(
        registry.addr(),
        vec![Rule::get("/blobs/sha256:", Fault::redirect(storage.url())).always()],
    )
    .expect("front");

    let c = basic_client(&front.host(), user, password);
    let out = image.out();
    let report = c
        .pull(
            &r(&format!("{}/private/app:v", front.host())),
            &out,
            &opts(),
        )
        .await
        .expect("pull");
    assert_eq!(report.blobs_transferred, 3, "{report:?}");
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        4
    );

    // The registry got the credentials...
    let manifests = front.requests_matching("GET", "/manifests/");
    assert!(!manifests.is_empty());
    assert!(
        manifests.iter().all(|q| q
            .header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))),
        "{manifests:?}"
    );
    assert!(manifests.iter().any(|q| q.status == Some(200)));
    let redirected = front.requests_matching("GET", "/blobs/sha256:");
    assert_eq!(
        redirected.len(),
        3,
        "config and two layers, each redirected once"
    );
    assert!(redirected.iter().all(|q| q.status == Some(307)));
    // ...and storage, on another port, never did.
    let seen = storage.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for q in &seen {
        assert!(q.target.contains("/blobs/sha256:"), "{q:?}");
        assert!(
            !q.has_header("authorization"),
            "credentials followed a redirect to another host: {q:?}"
        );
        assert_eq!(q.status, Some(200), "{q:?}");
    }
    for digest in [&image.config, &image.layers[0], &image.layers[1]] {
        assert!(
            seen.iter().any(|q| q.target.contains(digest.as_str())),
            "storage served {digest}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_pull_leaves_a_valid_layout_and_the_next_one_reuses_it() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(
        &c,
        &registry.host(),
        "slow/app:v",
        &[4 * 1024 * 1024, 200_000, 300_000],
        28,
    )
    .await;
    let big = image.layers[0].clone();
    // The big layer stalls after 1 MB (for longer than the test waits).
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![
            Rule::get(
                &format!("/blobs/{big}"),
                Fault::stall(1_000_000, Duration::from_secs(30)),
            )
            .always(),
        ],
    )
    .expect("proxy");
    let reference = r(&format!("{}/slow/app:v", proxy.host()));
    let out = image.out();
    let small: Vec<String> = vec![
        image.config.clone(),
        image.layers[1].clone(),
        image.layers[2].clone(),
    ];

    // Pull until the small blobs are in and the big one is stalled, then
    // drop the pull (bounded: 30 s at most).
    let ready = async {
        for _ in 0..600 {
            let stalled = proxy.fired().first().copied().unwrap_or(0) > 0;
            if stalled && small.iter().all(|d| blob_path(&out, d).exists()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the pull did not reach the stalled layer in 30 s");
    };
    let options = opts();
    tokio::select! {
        r = c.pull(&reference, &out, &options) => panic!("the pull should stall, it ended with {r:?}"),
        () = ready => {}
    }
    // The pull future is dropped here, mid-blob.

    let layout = Layout::open(&out).expect("layout");
    assert_eq!(
        layout.verify().expect("every file under blobs/ verifies"),
        3,
        "config and two small layers"
    );
    assert!(
        !blob_path(&out, &big).exists(),
        "the unfinished layer is not in blobs/"
    );
    assert!(
        temporaries(&out).is_empty(),
        "temporaries left: {:?}",
        temporaries(&out)
    );

    proxy.clear_rules();
    let before = proxy.request_count();
    let report = c
        .pull(&reference, &out, &opts())
        .await
        .expect("the second pull completes");
    assert_eq!(
        (report.blobs_transferred, report.blobs_skipped),
        (1, 3),
        "{report:?}"
    );
    let again: Vec<Recorded> = proxy.requests()[before..].to_vec();
    for d in &small {
        assert!(
            !again.iter().any(|q| q.target.contains(d.as_str())),
            "{d} was fetched again"
        );
    }
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        5
    );
    assert!(std::fs::read(blob_path(&out, &big)).expect("the layer") == image.bytes(&big));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_cut_every_time_fails_after_bounded_resumes_and_leaves_a_valid_layout() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(
        &c,
        &registry.host(),
        "broken/app:v",
        &[2 * 1024 * 1024, 20_000],
        29,
    )
    .await;
    let big = image.layers[0].clone();
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![Rule::get(&format!("/blobs/{big}"), Fault::cut(100_000)).always()],
    )
    .expect("proxy");
    let reference = r(&format!("{}/broken/app:v", proxy.host()));
    let out = image.out();

    let e = c.pull(&reference, &out, &opts()).await.unwrap_err();
    println!("kind {:?}: {e}", e.kind());
    let gets = proxy.requests_matching("GET", &format!("/blobs/{big}"));
    assert_eq!(
        gets.len(),
        1 + berth::MAX_RESUMES as usize,
        "{:?}",
        ranges(&gets)
    );
    // Every resume continued from where the last stopped.
    for (i, q) in gets.iter().enumerate().skip(1) {
        assert_eq!(
            q.header("range"),
            Some(format!("bytes={}-", i * 100_000).as_str())
        );
    }
    Layout::open(&out)
        .expect("layout")
        .verify()
        .expect("every file under blobs/ verifies");
    assert!(!blob_path(&out, &big).exists());
    assert!(
        temporaries(&out).is_empty(),
        "temporaries left: {:?}",
        temporaries(&out)
    );

    proxy.clear_rules();
    let report = c
        .pull(&reference, &out, &opts())
        .await
        .expect("the next pull completes");
    assert_eq!(
        report.blobs_transferred + report.blobs_skipped,
        3,
        "{report:?}"
    );
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        4
    );
}

/// distribution syncs each blob to disk before it answers the request that
/// completes its upload. The concurrency bound counts bodies being sent,
/// not answers awaited: while the registry sits on one blob's answer, the
/// next blobs go up, and the push still ends whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_blob_goes_up_while_the_registry_sits_on_an_answer() {
    let registry = Registry::start(Auth::None).expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    write_layout(
        &src,
        "v",
        &[TestImage::new("linux/amd64", &[40_000, 40_000, 40_000], 31)],
    )
    .expect("layout");
    let hold = Duration::from_millis(1500);
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![Rule::new("PUT", "/blobs/uploads/", Fault::delay(hold)).times(1)],
    )
    .expect("proxy");
    let c = Client::builder()
        .concurrency(1)
        .build(HyperTransport::builder().build().expect("transport"));

    let report = c
        .push(&src, &r(&format!("{}/slow-commit/app:v", proxy.host())))
        .await
        .expect("push");
    assert_eq!(report.blobs_transferred, 4, "{report:?}");

    let puts = proxy.requests_matching("PUT", "/blobs/uploads/");
    assert_eq!(puts.len(), 4, "one upload per blob: {puts:?}");
    let held = puts
        .iter()
        .find(|q| q.fault.is_some())
        .expect("one upload was held");
    let during: Vec<&Recorded> = puts
        .iter()
        .filter(|q| q.fault.is_none() && q.at > held.at && q.at < held.at + hold)
        .collect();
    assert!(
        during.len() >= 2,
        "with 1 slot, the other blobs went up while the registry sat on the first answer: {puts:?}"
    );
    assert!(
        puts.iter().all(|q| q.status == Some(201)),
        "every upload was accepted: {:?}",
        statuses(&puts)
    );

    // What arrived is the image, byte for byte.
    let out = tmp.path().join("out");
    client()
        .pull(
            &r(&format!("{}/slow-commit/app:v", registry.host())),
            &out,
            &opts(),
        )
        .await
        .expect("pull back");
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        5
    );
}
