//! The blob-info cache against the real registry (CNCF distribution on
//! 127.0.0.1): a push or copy mounts blobs from the repository the cache
//! remembers, with the registry's own storage as the evidence (an upload
//! session leaves `repositories/<name>/_uploads/`; a mount does not); a
//! stale entry falls back to an upload; a corrupt or foreign cache file is
//! ignored with a warning; two processes share one cache without losing
//! an update.
//!
//! The two-process test runs this test binary twice more, each running only
//! [`cache_writer_process`] (selected with `--exact`, told its directory
//! and name by environment variables).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth::cache::CACHE_FILE;
use berth::manifest::{Descriptor, Digester, Platform};
use berth::protocol::StaticCredentials;
use berth::protocol::auth::{Credentials, Secret};
use berth::reference::{Digest, Reference};
use berth::{BlobInfoCache, Client, Event, Layout, Progress, PullOptions};
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

/// Environment of a [`cache_writer_process`] child: the cache directory.
const CHILD_DIR: &str = "BERTH_CACHE_TEST_DIR";
/// Environment of a child: its name, which its records carry.
const CHILD_NAME: &str = "BERTH_CACHE_TEST_WRITER";
/// Environment of a child: a file to wait for before writing, so that the
/// two children write at the same time.
const CHILD_GO: &str = "BERTH_CACHE_TEST_GO";
/// How many locations each writer records, one update each.
const WRITES: usize = 150;

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

fn plain_client() -> Client<HyperTransport> {
    Client::builder().build(HyperTransport::builder().build().expect("transport"))
}

/// A client with a cache of its own opened in `dir` (nothing else shared
/// with any other client) that keeps every event.
fn cached_client(dir: &Path) -> (Client<HyperTransport>, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let client = Client::builder()
        .blob_info_cache(BlobInfoCache::open(dir).expect("cache"))
        .progress(Progress::new(move |e| {
            sink.lock().expect("events").push(e);
        }))
        .build(HyperTransport::builder().build().expect("transport"));
    (client, events)
}

fn mounted(events: &Mutex<Vec<Event>>) -> usize {
    events
        .lock()
        .expect("events")
        .iter()
        .filter(|e| matches!(e, Event::BlobMounted { .. }))
        .count()
}

fn warnings(events: &Mutex<Vec<Event>>) -> Vec<String> {
    events
        .lock()
        .expect("events")
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// Where distribution keeps a repository's upload sessions.
fn uploads_dir(registry: &Registry, repository: &str) -> PathBuf {
    registry
        .storage()
        .join("docker/registry/v2/repositories")
        .join(repository)
        .join("_uploads")
}

/// The config and layers of the image `index.json` names.
fn image_blobs(dir: &Path) -> Vec<Descriptor> {
    let layout = Layout::open(dir).expect("layout");
    let top = layout.manifest_for(None).expect("manifest");
    let bytes = layout.read_blob(&top.digest, 1 << 20).expect("manifest");
    let m = berth::manifest::Manifest::from_vec(bytes, Some(top.media_type.as_str()))
        .expect("manifest parses");
    m.config().into_iter().chain(m.layers()).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_mounts_from_the_repository_the_cache_remembers() {
    let registry = Registry::start(Auth::None).expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top = write_layout(
        &src,
        "v1",
        &[TestImage::new("linux/amd64", &[40_000, 3_000], 61)],
    )
    .expect("layout");
    let blobs = image_blobs(&src);
    assert_eq!(blobs.len(), 3);
    let cache_dir = tmp.path().join("cache");

    let (first, _) = cached_client(&cache_dir);
    let report = first
        .push(&src, &r(&format!("{host}/team/a:v1")))
        .await
        .expect("push to a");
    assert_eq!(report.blobs_transferred, 3);
    assert!(
        uploads_dir(&registry, "team/a").is_dir(),
        "an upload leaves its repository's _uploads directory"
    );
    let stored = registry.stored_blobs();

    // A client that knows nothing of team/a but the cache pushes to b.
    let (second, events) = cached_client(&cache_dir);
    let report = second
        .push(&src, &r(&format!("{host}/team/b:v1")))
        .await
        .expect("push to b");
    assert_eq!(report.digest.as_ref(), Some(&top.digest));
    assert_eq!(
        (report.blobs_mounted, report.blobs_transferred, report.bytes),
        (3, 0, 0),
        "{report:?}"
    );
    assert_eq!(mounted(&events), 3);
    assert!(warnings(&events).is_empty(), "{:?}", warnings(&events));
    assert!(
        !uploads_dir(&registry, "team/b").exists(),
        "the registry started no upload for team/b"
    );
    assert_eq!(registry.stored_blobs(), stored, "nothing new stored");
    for d in &blobs {
        let mut found = second
            .blob_info_cache()
            .expect("cache")
            .candidates(&d.digest, &host);
        found.sort();
        assert_eq!(found, vec!["team/a", "team/b"], "both recorded");
    }

    // Without a cache the same push to c uploads: the evidence tells the
    // two apart.
    let report = plain_client()
        .push(&src, &r(&format!("{host}/team/c:v1")))
        .await
        .expect("push to c");
    assert_eq!((report.blobs_mounted, report.blobs_transferred), (0, 3));
    assert!(uploads_dir(&registry, "team/c").is_dir());

    // What was mounted pulls back whole and verified.
    let out = tmp.path().join("out");
    plain_client()
        .pull(
            &r(&format!("{host}/team/b:v1")),
            &out,
            &PullOptions::platform(Platform::host()),
        )
        .await
        .expect("pull b");
    assert_eq!(
        Layout::open(&out).expect("out").verify().expect("verify"),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_from_another_registry_mounts_from_the_cache() {
    let one = Registry::start(Auth::None).expect("registry one");
    let two = Registry::start(Auth::None).expect("registry two");
    let (h1, h2) = (one.host(), two.host());
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top = write_layout(
        &src,
        "v1",
        &[TestImage::new("linux/amd64", &[30_000, 2_000], 62)],
    )
    .expect("layout");
    let blobs = image_blobs(&src);
    let cache_dir = tmp.path().join("cache");

    plain_client()
        .push(&src, &r(&format!("{h1}/src/app:v1")))
        .await
        .expect("push to one");
    let (seeding, _) = cached_client(&cache_dir);
    seeding
        .push(&src, &r(&format!("{h2}/base:v1")))
        .await
        .expect("push to two");

    let (copier, events) = cached_client(&cache_dir);
    let report = copier
        .copy(
            &r(&format!("{h1}/src/app:v1")),
            &r(&format!("{h2}/dest/app:v1")),
            &PullOptions::platform(Platform::host()),
        )
        .await
        .expect("copy");
    assert_eq!(report.digest.as_ref(), Some(&top.digest));
    assert_eq!(
        (report.blobs_mounted, report.blobs_transferred),
        (3, 0),
        "{report:?}"
    );
    assert_eq!(mounted(&events), 3);
    assert!(!uploads_dir(&two, "dest/app").exists(), "no upload in two");
    assert!(
        uploads_dir(&two, "base").is_dir(),
        "the seeding push uploaded"
    );
    // The copy recorded where it read from, too.
    let cache = copier.blob_info_cache().expect("cache");
    for d in &blobs {
        assert_eq!(cache.candidates(&d.digest, &h1), vec!["src/app"]);
    }
    assert_eq!(
        plain_client()
            .resolve(&r(&format!("{h2}/dest/app:v1")))
            .await
            .expect("resolve")
            .digest,
        top.digest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_records_its_source_and_a_later_push_mounts_from_it_with_tokens() {
    let registry = Registry::start(Auth::Token {
        user: "tok".into(),
        password: "en".into(),
    })
    .expect("registry");
    let host = registry.host();
    let with_token = |cache_dir: Option<&Path>| {
        let creds = StaticCredentials::new().with(
            &host,
            Credentials::Basic {
                username: "tok".into(),
                password: Secret::new("en"),
            },
        );
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let mut builder = Client::builder()
            .credentials(Arc::new(creds))
            .progress(Progress::new(move |e| {
                sink.lock().expect("events").push(e);
            }));
        if let Some(dir) = cache_dir {
            builder = builder.blob_info_cache(BlobInfoCache::open(dir).expect("cache"));
        }
        (
            builder.build(HyperTransport::builder().build().expect("transport")),
            events,
        )
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top =
        write_layout(&src, "v1", &[TestImage::new("linux/amd64", &[12_000], 65)]).expect("layout");
    let blobs = image_blobs(&src);
    let cache_dir = tmp.path().join("cache");
    with_token(None)
        .0
        .push(&src, &r(&format!("{host}/origin/app:v1")))
        .await
        .expect("push without a cache");

    // The pull is what the cache learns from.
    let (puller, _) = with_token(Some(&cache_dir));
    let out = tmp.path().join("out");
    puller
        .pull(
            &r(&format!("{host}/origin/app:v1")),
            &out,
            &PullOptions::platform(Platform::host()),
        )
        .await
        .expect("pull");
    for d in &blobs {
        assert_eq!(
            puller
                .blob_info_cache()
                .expect("cache")
                .candidates(&d.digest, &host),
            vec!["origin/app"]
        );
    }

    // Pushing the pulled layout elsewhere mounts (a token with pull on the
    // source and push on the target).
    let (pusher, events) = with_token(Some(&cache_dir));
    let report = pusher
        .push(&out, &r(&format!("{host}/fork/app:v1")))
        .await
        .expect("push");
    assert_eq!(report.digest.as_ref(), Some(&top.digest));
    assert_eq!(
        (report.blobs_mounted, report.blobs_transferred),
        (2, 0),
        "{report:?}"
    );
    assert_eq!(mounted(&events), 2);
    assert!(!uploads_dir(&registry, "fork/app").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_entry_falls_back_to_an_upload_and_is_forgotten() {
    let registry = Registry::start(Auth::None).expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top =
        write_layout(&src, "v1", &[TestImage::new("linux/amd64", &[9_000], 63)]).expect("layout");
    let blobs = image_blobs(&src);
    let cache_dir = tmp.path().join("cache");
    // The cache claims repositories that never held these blobs.
    let cache = BlobInfoCache::open(&cache_dir).expect("cache");
    for d in &blobs {
        cache
            .record_locations([
                (&d.digest, host.as_str(), "ghost/one"),
                (&d.digest, host.as_str(), "ghost/two"),
                (&d.digest, "elsewhere.example", "other"),
            ])
            .expect("record");
    }

    let (c, events) = cached_client(&cache_dir);
    let report = c
        .push(&src, &r(&format!("{host}/real:v1")))
        .await
        .expect("push despite the stale cache");
    assert_eq!(report.digest.as_ref(), Some(&top.digest));
    assert_eq!(
        (report.blobs_mounted, report.blobs_transferred),
        (0, 2),
        "{report:?}"
    );
    assert_eq!(mounted(&events), 0);
    let reopened = BlobInfoCache::open(&cache_dir).expect("cache");
    for d in &blobs {
        assert_eq!(
            reopened.candidates(&d.digest, &host),
            vec!["real"],
            "the ghosts the registry denied are forgotten"
        );
        assert_eq!(
            reopened.candidates(&d.digest, "elsewhere.example"),
            vec!["other"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_or_foreign_cache_file_is_ignored_with_a_warning() {
    let registry = Registry::start(Auth::None).expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top =
        write_layout(&src, "v1", &[TestImage::new("linux/amd64", &[5_000], 64)]).expect("layout");
    let blobs = image_blobs(&src);
    plain_client()
        .push(&src, &r(&format!("{host}/seed:v1")))
        .await
        .expect("seed push");

    // Each names the seed repository, which a trusting reader would mount
    // from; none may be believed.
    let d = blobs[0].digest.to_string();
    let cases: [(&str, Vec<u8>); 4] = [
        ("garbage", b"\x00\xffnot json at all {{{".to_vec()),
        ("truncated", {
            let whole = format!(
                r#"{{"format":"berth-blob-info-cache","version":1,"locations":[{{"digest":"{d}","registry":"{host}","repository":"seed","seen":1}}]}}"#
            );
            whole.as_bytes()[..whole.len() / 2].to_vec()
        }),
        (
            "foreign",
            format!(r#"{{"version":1,"locations":{{"{d}":["{host}/seed"]}}}}"#).into_bytes(),
        ),
        (
            "future",
            format!(
                r#"{{"format":"berth-blob-info-cache","version":2,"locations":[{{"digest":"{d}","registry":"{host}","repository":"seed","seen":1}}]}}"#
            )
            .into_bytes(),
        ),
    ];
    for (name, bytes) in cases {
        let cache_dir = tmp.path().join(format!("cache-{name}"));
        std::fs::create_dir_all(&cache_dir).expect("dir");
        std::fs::write(cache_dir.join(CACHE_FILE), &bytes).expect("write");
        let (c, events) = cached_client(&cache_dir);
        let report = c
            .push(&src, &r(&format!("{host}/{name}:v1")))
            .await
            .unwrap_or_else(|e| panic!("{name}: push fails: {e}"));
        assert_eq!(report.digest.as_ref(), Some(&top.digest), "{name}");
        assert_eq!(report.blobs_mounted, 0, "{name}: nothing believed");
        let warned = warnings(&events);
        assert!(
            !warned.is_empty() && warned.iter().all(|w| w.contains(CACHE_FILE)),
            "{name}: {warned:?}"
        );
        // Replaced by a valid file with what this push saw.
        let text = std::fs::read(cache_dir.join(CACHE_FILE)).expect("cache file");
        let v: serde_json::Value = serde_json::from_slice(&text).expect("valid JSON now");
        assert_eq!(v["format"], "berth-blob-info-cache", "{name}");
        assert_eq!(v["version"], 1, "{name}");
        let reopened = BlobInfoCache::open(&cache_dir).expect("cache");
        assert_eq!(reopened.candidates(&blobs[0].digest, &host), vec![name]);
        assert!(reopened.take_warnings().is_empty(), "{name}");
    }
}

/// Records [`WRITES`] locations (one locked update each) and a few pairs
/// under its name, then checks that every one of its own is there. Alone
/// it uses a directory of its own; run by
/// [`two_processes_share_one_cache_without_losing_an_update`], the shared
/// one, starting when the go file appears.
#[test]
fn cache_writer_process() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = std::env::var_os(CHILD_DIR).map_or_else(|| tmp.path().join("cache"), PathBuf::from);
    let name = std::env::var(CHILD_NAME).unwrap_or_else(|_| "solo".to_owned());
    if let Some(go) = std::env::var_os(CHILD_GO) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !Path::new(&go).exists() {
            assert!(Instant::now() < deadline, "no go file within 60 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let cache = BlobInfoCache::open(&dir).expect("cache");
    for (i, d) in writer_digests(&name).iter().enumerate() {
        cache
            .record_location(d, "r.example:5000", &format!("{name}/repo{}", i % 7))
            .expect("record");
        if i % 10 == 0 {
            let uncompressed = Digester::sha256_of(format!("{name}-raw-{i}").as_bytes());
            cache.record_pair(d, &uncompressed).expect("pair");
        }
    }
    check_writer(&BlobInfoCache::open(&dir).expect("cache"), &name);
}

fn writer_digests(name: &str) -> Vec<Digest> {
    (0..WRITES)
        .map(|i| Digester::sha256_of(format!("{name}-{i}").as_bytes()))
        .collect()
}

/// Every record the writer `name` made is in `cache`.
fn check_writer(cache: &BlobInfoCache, name: &str) {
    for (i, d) in writer_digests(name).iter().enumerate() {
        assert_eq!(
            cache.candidates(d, "r.example:5000"),
            vec![format!("{name}/repo{}", i % 7)],
            "{name}: location {i}"
        );
        if i % 10 == 0 {
            assert_eq!(
                cache.uncompressed_of(d),
                Some(Digester::sha256_of(format!("{name}-raw-{i}").as_bytes())),
                "{name}: pair {i}"
            );
        }
    }
    assert!(cache.take_warnings().is_empty(), "{name}");
}

#[test]
fn two_processes_share_one_cache_without_losing_an_update() {
    if std::env::var_os(CHILD_DIR).is_some() {
        return; // never nest
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("cache");
    let go = tmp.path().join("go");
    let exe = std::env::current_exe().expect("current_exe");
    let names = ["left", "right"];
    let mut children: Vec<_> = names
        .iter()
        .map(|name| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "cache_writer_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR, &dir)
                .env(CHILD_NAME, name)
                .env(CHILD_GO, &go)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("a child starts")
        })
        .collect();
    std::fs::write(&go, b"go").expect("go file");

    let deadline = Instant::now() + Duration::from_secs(240);
    let mut outcomes = Vec::new();
    for child in &mut children {
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("a writer did not finish within 240 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        outcomes.push(status);
    }
    for (child, status) in children.into_iter().zip(outcomes) {
        let out = child.wait_with_output().expect("output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            status.success() && stdout.contains("1 passed"),
            "writer failed: {status}\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Both writers' records are all there, in one file that parses.
    let cache = BlobInfoCache::open(&dir).expect("cache");
    for name in names {
        check_writer(&cache, name);
    }
    let text = std::fs::read(dir.join(CACHE_FILE)).expect("cache file");
    let v: serde_json::Value = serde_json::from_slice(&text).expect("the file parses");
    let locations = v["locations"].as_array().expect("locations");
    assert_eq!(locations.len(), 2 * WRITES);
    let distinct: HashSet<&str> = locations
        .iter()
        .filter_map(|l| l["digest"].as_str())
        .collect();
    assert_eq!(distinct.len(), 2 * WRITES);
    assert_eq!(
        v["pairs"].as_array().expect("pairs").len(),
        2 * WRITES.div_ceil(10)
    );
}
