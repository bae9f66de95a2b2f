//! The hostile-registry suite: berth against registries that cut, lie,
//! flood, stall and redirect. The real registry runs behind
//! `berth_testkit`'s fault-injecting proxy; where no real registry would
//! misbehave that way (an index of indexes of indexes, a `Link` that loops
//! or points elsewhere, a token realm over plain http, a TLS front that
//! redirects to plain http) a small hand-written server on 127.0.0.1 plays
//! the registry.
//!
//! Each case asserts what berth must do: a bounded, typed error or a
//! verified success, nothing at a final path that does not hash to its
//! name, no temporary left behind, no credential sent where it does not
//! belong. Each case then records a row: the fault, how many times it was
//! injected, what berth did, what was lost. Run with
//! `BERTH_WRITE_RELIABILITY=1` (as `cargo xtask reliability` does), the
//! suite writes `RELIABILITY.md` at the repository root from those rows and
//! the last full fuzz run (`fuzz/last-run.json`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth::manifest::{Digester, Platform};
use berth::protocol::StaticCredentials;
use berth::protocol::auth::{Credentials, Secret};
use berth::protocol::redirect::RedirectError;
use berth::protocol::retry::RetryPolicy;
use berth::reference::{Digest, Reference};
use berth::{Client, Error, ErrorKind, Layout, MAX_INDEX_DEPTH, MAX_RESUMES, PullOptions};
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, pseudo_random, temporaries, write_layout};
use berth_testkit::proxy::{Fault, FaultProxy, Recorded, Rule, basic_authorization};
use berth_testkit::{Auth, Registry};

type ProtocolError = berth::protocol::Error;

// ---------------------------------------------------------------------
// Clients, images, references.

/// Retries as the default policy (3), with short backoffs so storms end
/// quickly (`Retry-After` is still honoured as sent).
fn quick_retries() -> RetryPolicy {
    RetryPolicy::default().with_backoff(Duration::from_millis(10), Duration::from_millis(40))
}

fn transport() -> HyperTransport {
    HyperTransport::builder().build().expect("transport")
}

fn client() -> Client<HyperTransport> {
    Client::builder().retry(quick_retries()).build(transport())
}

fn credentials(host: &str, user: &str, password: &str) -> Arc<StaticCredentials> {
    Arc::new(StaticCredentials::new().with(
        host,
        Credentials::Basic {
            username: user.into(),
            password: Secret::new(password),
        },
    ))
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
    manifest: Digest,
    layers: Vec<Digest>,
    sizes: Vec<usize>,
}

impl Pushed {
    /// A fresh directory for a pull.
    fn out(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn bytes(&self, digest: &Digest) -> Vec<u8> {
        std::fs::read(self.src.join("blobs/sha256").join(digest.encoded())).expect("source blob")
    }

    /// Every blob of the image, manifest included.
    fn blob_count(&self) -> usize {
        2 + self.layers.len()
    }
}

async fn push(
    c: &Client<HyperTransport>,
    host: &str,
    repo_tag: &str,
    sizes: &[usize],
    seed: u64,
) -> Pushed {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let top =
        write_layout(&src, "v", &[TestImage::new("linux/amd64", sizes, seed)]).expect("layout");
    c.push(&src, &r(&format!("{host}/{repo_tag}")))
        .await
        .expect("push to the registry");
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(src.join("blobs/sha256").join(top.digest.encoded())).expect("manifest"),
    )
    .expect("manifest json");
    let digest = |v: &serde_json::Value| Digest::parse(v.as_str().expect("digest")).expect("ok");
    let layers: Vec<Digest> = m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| digest(&l["digest"]))
        .collect();
    Pushed {
        manifest: top.digest,
        layers,
        sizes: sizes.to_vec(),
        tmp,
        src,
    }
}

// ---------------------------------------------------------------------
// What reached the disk.

/// Asserts that nothing was lost or corrupted at `dir`: `index.json`
/// parses, every file under `blobs/` hashes to its name, no temporary is
/// left. Returns how many blobs were checked.
fn nothing_lost(dir: &Path) -> usize {
    if !dir.join("oci-layout").exists() {
        assert!(
            !dir.join("blobs").exists(),
            "blobs/ without an oci-layout at {}",
            dir.display()
        );
        return 0;
    }
    let layout = Layout::open(dir).expect("the layout opens");
    layout.index().expect("index.json parses");
    let n = layout
        .verify()
        .expect("every file under blobs/ hashes to its name");
    assert!(
        temporaries(dir).is_empty(),
        "temporaries left in {}: {:?}",
        dir.display(),
        temporaries(dir)
    );
    n
}

/// The manifests `index.json` names.
fn named(dir: &Path) -> usize {
    Layout::open(dir)
        .and_then(|l| l.index())
        .map_or(0, |i| i.manifests.len())
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

fn fired(proxy: &FaultProxy) -> usize {
    proxy.fired().iter().sum()
}

/// A small seeded random source (splitmix64): the same rounds every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

// ---------------------------------------------------------------------
// RELIABILITY.md

struct Row {
    order: u32,
    fault: String,
    injected: usize,
    behaviour: String,
    lost: String,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

/// Records a case's row (after its assertions passed); with
/// `BERTH_WRITE_RELIABILITY=1`, rewrites `RELIABILITY.md` with every row
/// recorded so far (the last case to finish writes them all).
fn record(order: u32, fault: &str, injected: usize, behaviour: &str, lost: &str) {
    assert!(injected > 0, "the fault was never injected: {fault}");
    let mut rows = ROWS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    rows.push(Row {
        order,
        fault: fault.to_owned(),
        injected,
        behaviour: behaviour.to_owned(),
        lost: lost.to_owned(),
    });
    rows.sort_by_key(|r| r.order);
    if std::env::var("BERTH_WRITE_RELIABILITY").is_ok_and(|v| v == "1") {
        let path = repo_root().join("RELIABILITY.md");
        std::fs::write(&path, report(&rows)).expect("writing RELIABILITY.md");
    }
}

fn lost_nothing(blobs: usize) -> String {
    format!("nothing ({blobs} blobs verified, no temporaries)")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn report(rows: &[Row]) -> String {
    let mut s = String::from(
        "# Reliability\n\n\
         Generated by `cargo xtask reliability`: the hostile-registry suite \
         (`crates/berth/tests/hostile.rs`, run with `BERTH_WRITE_RELIABILITY=1`) \
         and the last full fuzz run (`cargo xtask fuzz`, recorded in \
         `fuzz/last-run.json`). Do not edit by hand.\n\n\
         ## Hostile registries\n\n\
         The real registry (CNCF distribution) behind a fault-injecting proxy, \
         or a hand-written hostile server on 127.0.0.1 where no real registry \
         misbehaves that way. Every row is a test that passed: berth's \
         behaviour is asserted, not just observed. \"Lost\" is checked on \
         disk after each run: every file under `blobs/` hashes to its name, \
         `index.json` parses, no temporary is left under `DIR/.berth/`.\n\n\
         | fault | injected | what berth did | lost |\n\
         |---|---:|---|---|\n",
    );
    let mut total = 0;
    for row in rows {
        total += row.injected;
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&row.fault),
            row.injected,
            cell(&row.behaviour),
            cell(&row.lost)
        ));
    }
    s.push_str(&format!(
        "\n{} faults injected in {} cases; lost: nothing.\n\n",
        total,
        rows.len()
    ));
    s.push_str(&fuzz_section());
    s
}

fn fuzz_section() -> String {
    let mut s = String::from("## Fuzzing\n\n");
    let path = repo_root().join("fuzz/last-run.json");
    let Some(run) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        s.push_str(
            "No full fuzz run is recorded yet: run `cargo xtask fuzz` (every \
             target, 60 s each by default), then `cargo xtask reliability \
             --no-fuzz`.\n",
        );
        return s;
    };
    let seconds = run["seconds_per_target"].as_u64().unwrap_or(0);
    s.push_str(&format!(
        "The last full run (`cargo xtask fuzz --seconds {seconds}`: every \
         cargo-fuzz target in `fuzz/`, from its corpus and seeds) finished \
         {} UTC with no crash. `cargo xtask ci` runs each target for a short \
         smoke period; every crash ever found is replayed by `cargo test` \
         (`tests/fuzz_regressions.rs` in `berth-reference` and `berth-auth`).\n\n\
         | target | seconds | executions | executions/s | corpus | new units | peak RSS (MB) |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        run["finished_utc"].as_str().unwrap_or("(unknown)")
    ));
    let mut total_execs = 0;
    let mut total_seconds = 0;
    for t in run["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let n = |k: &str| t[k].as_u64().unwrap_or(0);
        total_execs += n("execs");
        total_seconds += n("seconds");
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            t["target"].as_str().unwrap_or("?"),
            n("seconds"),
            n("execs"),
            n("execs_per_second"),
            n("corpus"),
            n("new_units"),
            n("peak_rss_mb")
        ));
    }
    s.push_str(&format!(
        "\n{total_execs} executions in {total_seconds} s of fuzzing.\n"
    ));
    s
}

// ---------------------------------------------------------------------
// A hostile server: one request per connection, answered by a route.

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn not_found() -> Reply {
        Reply::new(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
        .header("Content-Type", "application/json")
    }
}

type Route = dyn Fn(&Seen) -> Reply + Send + Sync;

struct HostileServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl HostileServer {
    fn start(route: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> HostileServer {
        Self::start_with(None, Arc::new(route))
    }

    /// Serves https with `tls` (every connection), else plain http.
    fn start_with(tls: Option<Arc<rustls::ServerConfig>>, route: Arc<Route>) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = conn else { continue };
                let (route, seen, tls) = (route.clone(), seen2.clone(), tls.clone());
                std::thread::spawn(move || serve(stream, tls, &*route, &seen));
            }
        });
        HostileServer {
            addr,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    route: &Route,
    seen: &Mutex<Vec<Seen>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    match tls {
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut tls_stream = rustls::StreamOwned::new(conn, stream);
            exchange(&mut tls_stream, route, seen);
            tls_stream.conn.send_close_notify();
            let _ = tls_stream.flush();
        }
        None => {
            let mut plain = stream;
            exchange(&mut plain, route, seen);
            let _ = plain.shutdown(Shutdown::Write);
            // Let the client read the answer before the close.
            let mut sink = [0u8; 1024];
            let _ = plain.set_read_timeout(Some(Duration::from_millis(200)));
            while matches!(plain.read(&mut sink), Ok(n) if n > 0) {}
        }
    }
}

/// Reads one request head, answers it.
fn exchange(stream: &mut (impl Read + Write), route: &Route, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(&mut *stream);
    // A TLS ClientHello on the plain-http server (a client trying https
    // first): close, so it falls back to http.
    if reader.fill_buf().map_or(true, |b| b.first() == Some(&0x16)) {
        return;
    }
    let mut lines = Vec::new();
    let mut budget = 64 * 1024usize;
    loop {
        let mut line = String::new();
        match (&mut reader).take(budget as u64).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(n) => budget = budget.saturating_sub(n),
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
        if budget == 0 {
            return;
        }
    }
    let Some(first) = lines.first() else { return };
    let mut parts = first.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return;
    };
    let request = Seen {
        method: method.to_owned(),
        target: target.to_owned(),
        headers: lines[1..]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect(),
    };
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(request.clone());
    let reply = route(&request);
    drop(reader);
    let mut head = format!("HTTP/1.1 {} Hostile\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.body.len()
    ));
    let _ = stream.write_all(head.as_bytes());
    if request.method != "HEAD" {
        let _ = stream.write_all(&reply.body);
    }
    let _ = stream.flush();
}

// ---------------------------------------------------------------------
// The cases.

/// Cuts at random offsets of blob and manifest bodies, round after round:
/// within the budget berth resumes (blobs, with `Range` from the last byte
/// received) or retries (manifests) and verifies; beyond it, a clean
/// `Interrupted` error, and the next pull completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_at_random_offsets_resume_or_fail_cleanly() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let big_size = 3 * 1024 * 1024;
    let image = push(&c, &registry.host(), "cut/app:v", &[big_size, 50_000], 41).await;
    let big = image.layers[0].to_string();
    let manifest_len = image.bytes(&image.manifest).len() as u64;
    let proxy = FaultProxy::start(registry.addr(), vec![]).expect("proxy");
    let reference = r(&format!("{}/cut/app:v", proxy.host()));

    let mut rng = Rng(0xbe27_0001);
    let (mut injected, mut resumed, mut failed, mut blobs) = (0, 0, 0, 0);
    for round in 0..8 {
        proxy.clear_rules();
        // 1..=7 cuts of the big layer, each within 300 kB of where that
        // response starts (7 x 300 kB stay inside the 3 MiB layer).
        let cuts: Vec<u64> = (0..rng.range(1, 7))
            .map(|_| rng.range(1, 300_000))
            .collect();
        for &at in &cuts {
            proxy.add_rule(Rule::get(&format!("/blobs/{big}"), Fault::cut(at)));
        }
        // And 0..=2 cuts of the manifest (retried: 3 retries per request).
        for _ in 0..rng.range(0, 2) {
            proxy.add_rule(Rule::get(
                "/manifests/",
                Fault::cut(rng.range(1, manifest_len - 1)),
            ));
        }
        let before = proxy.requests_matching("GET", &big).len();
        let out = image.out(&format!("round-{round}"));
        let result = c.pull(&reference, &out, &opts()).await;
        let gets = proxy.requests_matching("GET", &big)[before..].to_vec();
        injected += fired(&proxy);
        if cuts.len() <= MAX_RESUMES as usize {
            let report = result.unwrap_or_else(|e| panic!("round {round}, cuts {cuts:?}: {e}"));
            assert_eq!(report.blobs_transferred, 3, "{report:?}");
            // Each resume asks from the last byte received.
            let mut expected = vec![None];
            let mut at = 0;
            for cut in &cuts {
                at += cut;
                expected.push(Some(format!("bytes={at}-")));
            }
            assert_eq!(ranges(&gets), expected, "round {round}");
            assert_eq!(nothing_lost(&out), image.blob_count());
            assert!(
                std::fs::read(out.join("blobs/sha256").join(image.layers[0].encoded()))
                    .expect("the layer")
                    == image.bytes(&image.layers[0]),
                "byte for byte"
            );
            resumed += 1;
        } else {
            match result {
                Err(Error::Interrupted(detail)) => {
                    assert!(detail.contains(&big), "{detail}");
                }
                other => {
                    panic!("round {round}, cuts {cuts:?}: expected Interrupted, got {other:?}")
                }
            }
            assert_eq!(gets.len(), 1 + MAX_RESUMES as usize, "{:?}", ranges(&gets));
            assert!(
                !out.join("blobs/sha256")
                    .join(image.layers[0].encoded())
                    .exists()
            );
            nothing_lost(&out);
            assert_eq!(named(&out), 0, "nothing named in index.json");
            // The next pull completes from what is there.
            proxy.clear_rules();
            let report = c.pull(&reference, &out, &opts()).await.expect("next pull");
            assert!(report.blobs_skipped >= 1, "{report:?}");
            assert_eq!(nothing_lost(&out), image.blob_count());
            failed += 1;
        }
        blobs += image.blob_count();
    }
    assert!(resumed > 0 && failed > 0, "the seed gives both outcomes");
    record(
        1,
        "Body cut at a random offset (seeded; 8 rounds of 1-7 cuts of a 3 MiB layer and 0-2 of its manifest)",
        injected,
        &format!(
            "{resumed} pulls resumed each cut with `Range` from the last byte received (manifests retried) and verified; \
             {failed} pulls with more cuts than the budget ({MAX_RESUMES} resumes) failed with `Interrupted`, nothing named, \
             and the next pull completed from the blobs already there"
        ),
        &lost_nothing(blobs),
    );
}

/// Wrong bytes for a blob and for a manifest: refused, and the error names
/// both digests; nothing lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_are_refused_with_both_digests() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let a = push(&c, &registry.host(), "wrong/a:v", &[400_000, 3_000], 42).await;
    let b = push(&c, &registry.host(), "wrong/b:v", &[5_000], 43).await;
    let layer = a.layers[0].to_string();
    let other_bytes = pseudo_random(a.sizes[0], 4242);
    let other_digest = Digester::sha256_of(&other_bytes);
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![
            Rule::get(&format!("/blobs/{layer}"), Fault::replace_body(other_bytes)).always(),
            Rule::get(
                "/v2/wrong/b/manifests/",
                Fault::replace_body(a.bytes(&a.manifest)),
            )
            .always(),
        ],
    )
    .expect("proxy");

    // The blob: same length, other bytes.
    let out = a.out("blob");
    let e = c
        .pull(&r(&format!("{}/wrong/a:v", proxy.host())), &out, &opts())
        .await
        .expect_err("wrong blob bytes");
    match &e {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected.as_ref(), &a.layers[0]);
            assert_eq!(actual.as_ref(), &other_digest);
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("digest mismatch")
            && text.contains(&layer)
            && text.contains(&other_digest.to_string()),
        "{text}"
    );
    assert_eq!(e.kind(), ErrorKind::Integrity);
    let gets = proxy.requests_matching("GET", &layer);
    assert_eq!(
        ranges(&gets),
        [None, None],
        "one retry from scratch, no more"
    );
    assert!(
        !out.join("blobs/sha256")
            .join(a.layers[0].encoded())
            .exists()
    );
    let mut blobs = nothing_lost(&out);
    assert_eq!(named(&out), 0);

    // The manifest: b's tag answers with a's manifest under b's
    // Docker-Content-Digest; b's digest answers with a's bytes.
    for (name, reference) in [
        ("by tag", format!("{}/wrong/b:v", proxy.host())),
        (
            "by digest",
            format!("{}/wrong/b@{}", proxy.host(), b.manifest),
        ),
    ] {
        let out = b.out(name);
        let e = c
            .pull(&r(&reference), &out, &opts())
            .await
            .expect_err("wrong manifest bytes");
        match &e {
            Error::Protocol(ProtocolError::DigestMismatch { expected, actual }) => {
                assert_eq!(expected.as_ref(), &b.manifest, "{name}");
                assert_eq!(actual.as_ref(), &a.manifest, "{name}");
            }
            other => panic!("{name}: expected a digest mismatch, got {other:?}"),
        }
        let text = e.to_string();
        assert!(
            text.contains(&b.manifest.to_string()) && text.contains(&a.manifest.to_string()),
            "{text}"
        );
        assert_eq!(e.kind(), ErrorKind::Integrity);
        blobs += nothing_lost(&out);
        assert_eq!(named(&out), 0);
    }
    record(
        2,
        "Wrong bytes for a blob (same length) and for a manifest (by tag and by digest)",
        fired(&proxy),
        "Refused: `DigestMismatch` naming the expected and the received digest; a blob is fetched once more from scratch, then the error",
        &format!(
            "nothing ({blobs} blobs verified; the wrong bytes never reached blobs/, nothing named)"
        ),
    );
}

/// `Content-Length` that lies, both ways, on blobs and manifests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_content_lengths_are_bounded_and_typed() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(&c, &registry.host(), "lies/app:v", &[500_000, 2_000], 44).await;
    let layer = image.layers[0].to_string();
    let proxy = FaultProxy::start(registry.addr(), vec![]).expect("proxy");
    let reference = r(&format!("{}/lies/app:v", proxy.host()));
    let mut injected = 0;
    let mut blobs = 0;

    // A blob announced 100 kB short, twice: the short bodies end early,
    // berth resumes from where each ended and verifies.
    proxy.add_rule(Rule::get(&layer, Fault::lying_length(-100_000)).times(2));
    let out = image.out("short-twice");
    c.pull(&reference, &out, &opts())
        .await
        .expect("resumed past the short lengths");
    // The first body stops 100 kB short; the resumed one is announced
    // empty; the third is honest.
    assert_eq!(
        ranges(&proxy.requests_matching("GET", &layer)),
        [
            None,
            Some("bytes=400000-".to_owned()),
            Some("bytes=400000-".to_owned())
        ]
    );
    blobs += nothing_lost(&out);
    injected += fired(&proxy);

    // Announced short every time: bounded resumes, then `Interrupted`.
    proxy.clear_rules();
    proxy.add_rule(Rule::get(&layer, Fault::lying_length(-100_000)).always());
    let before = proxy.requests_matching("GET", &layer).len();
    let out = image.out("short-always");
    match c.pull(&reference, &out, &opts()).await {
        Err(Error::Interrupted(_)) => {}
        other => panic!("expected Interrupted, got {other:?}"),
    }
    assert_eq!(
        proxy.requests_matching("GET", &layer).len() - before,
        1 + MAX_RESUMES as usize
    );
    blobs += nothing_lost(&out);
    injected += fired(&proxy);

    // A blob announced longer than it is: every byte arrives, then the
    // connection closes early. The bytes hash to the digest: accepted.
    proxy.clear_rules();
    proxy.add_rule(Rule::get(&layer, Fault::lying_length(1_000)).always());
    let out = image.out("long-always");
    c.pull(&reference, &out, &opts())
        .await
        .expect("every byte arrived and verified");
    blobs += nothing_lost(&out);
    injected += fired(&proxy);

    // A manifest announced longer: the body ends early every time; the
    // request is retried (3 retries), then a transport error.
    proxy.clear_rules();
    proxy.add_rule(Rule::get("/manifests/", Fault::lying_length(50)).always());
    let out = image.out("manifest-long");
    let e = c
        .pull(&reference, &out, &opts())
        .await
        .expect_err("a manifest body that never completes");
    assert!(
        matches!(e, Error::Protocol(ProtocolError::Transport { .. })),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Network);
    assert_eq!(fired(&proxy), 4, "the first try and 3 retries");
    blobs += nothing_lost(&out);
    injected += fired(&proxy);

    // A manifest announced shorter: berth reads what was announced, which
    // is not a manifest.
    proxy.clear_rules();
    proxy.add_rule(Rule::get("/manifests/", Fault::lying_length(-10)).always());
    let out = image.out("manifest-short");
    let e = c
        .pull(&reference, &out, &opts())
        .await
        .expect_err("a truncated manifest");
    assert!(
        matches!(
            e,
            Error::Protocol(ProtocolError::InvalidResponse {
                what: "manifest",
                ..
            })
        ),
        "{e:?}"
    );
    blobs += nothing_lost(&out);
    assert_eq!(named(&out), 0);
    injected += fired(&proxy);

    record(
        3,
        "Lying `Content-Length`: a blob announced shorter (twice, then always) and longer; a manifest announced longer and shorter",
        injected,
        "Short blob bodies resumed with `Range` and verified (always short: `Interrupted` after the resume budget); \
         a long announcement accepted once every byte arrived and hashed to the digest; a manifest that never completes: \
         `Transport` after 3 retries; a truncated manifest: `InvalidResponse`",
        &lost_nothing(blobs),
    );
}

/// A body without end, a head of a megabyte, a manifest over the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_responses_are_cut_off_with_typed_errors() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(&c, &registry.host(), "big/app:v", &[200_000, 2_000], 45).await;
    let layer = image.layers[0].to_string();
    let proxy = FaultProxy::start(registry.addr(), vec![]).expect("proxy");
    let reference = r(&format!("{}/big/app:v", proxy.host()));
    let mut injected = 0;
    let mut blobs = 0;
    let mut behaviour = Vec::new();

    // An endless blob: refused once it passes its size.
    proxy.add_rule(Rule::get(&layer, Fault::endless()).always());
    let out = image.out("endless-blob");
    let sent_before = proxy.body_bytes_sent();
    let e = c
        .pull(&reference, &out, &opts())
        .await
        .expect_err("endless");
    assert!(matches!(e, Error::Verify(_)), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Integrity);
    let sent = proxy.body_bytes_sent() - sent_before;
    assert!(
        sent < 64 * 1024 * 1024,
        "berth stopped reading: {sent} bytes were sent"
    );
    assert_eq!(proxy.requests_matching("GET", &layer).len(), 1);
    blobs += nothing_lost(&out);
    injected += fired(&proxy);
    behaviour.push(format!(
        "an endless blob: `Verify` (size) once past its {} bytes, reading stopped (the server got {} MiB out)",
        image.sizes[0],
        sent.div_ceil(1024 * 1024)
    ));

    // An endless manifest: cut at the manifest limit.
    proxy.clear_rules();
    proxy.add_rule(Rule::get("/manifests/", Fault::endless()).always());
    let out = image.out("endless-manifest");
    let e = c
        .pull(&reference, &out, &opts())
        .await
        .expect_err("endless");
    assert!(
        matches!(e, Error::Protocol(ProtocolError::TooLarge { .. })),
        "{e:?}"
    );
    assert_eq!(fired(&proxy), 1, "not retried");
    blobs += nothing_lost(&out);
    injected += fired(&proxy);
    behaviour.push("an endless manifest: `TooLarge` at the 4 MiB limit, not retried".into());

    // A 5 MiB manifest with an honest length: refused before reading.
    proxy.clear_rules();
    let huge = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{{"x":"{}"}}}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    proxy.add_rule(Rule::get("/manifests/", Fault::replace_body(huge)).always());
    let out = image.out("huge-manifest");
    let e = c.pull(&reference, &out, &opts()).await.expect_err("huge");
    assert!(
        matches!(
            e,
            Error::Protocol(ProtocolError::TooLarge {
                what: "manifest",
                ..
            })
        ),
        "{e:?}"
    );
    blobs += nothing_lost(&out);
    injected += fired(&proxy);
    behaviour.push("a 5 MiB manifest: `TooLarge` from its `Content-Length`, before reading".into());

    // A response head of 1 MiB: the transport refuses it; retried, then a
    // transport error.
    proxy.clear_rules();
    proxy.add_rule(Rule::get("/manifests/", Fault::huge_headers(1024 * 1024)).always());
    let out = image.out("huge-headers");
    let e = c
        .pull(&reference, &out, &opts())
        .await
        .expect_err("huge head");
    assert!(
        matches!(e, Error::Protocol(ProtocolError::Transport { .. })),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Network);
    assert_eq!(fired(&proxy), 4, "the first try and 3 retries");
    blobs += nothing_lost(&out);
    injected += fired(&proxy);
    behaviour.push("a 1 MiB response head: `Transport` error after 3 retries".into());

    record(
        4,
        "Endless bodies (blob, manifest), a 5 MiB manifest, 1 MiB of response headers",
        injected,
        &behaviour.join("; "),
        &lost_nothing(blobs),
    );
}

/// An index of an index of an index...: followed to `MAX_INDEX_DEPTH`,
/// then a typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_indexes_are_followed_to_a_bounded_depth() {
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    // Ten levels, built from the bottom (an empty index) up.
    let mut docs: Vec<(String, Vec<u8>)> = Vec::new();
    for _ in 0..10 {
        let child = docs.last().map(|(d, bytes)| {
            format!(
                r#"{{"mediaType":"{INDEX}","digest":"{d}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}"#,
                bytes.len()
            )
        });
        let bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[{}]}}"#,
            child.unwrap_or_default()
        )
        .into_bytes();
        docs.push((Digester::sha256_of(&bytes).to_string(), bytes));
    }
    docs.reverse();
    let digests: Vec<String> = docs.iter().map(|(d, _)| d.clone()).collect();
    let served = Arc::new(Mutex::new(0usize));
    let count = served.clone();
    let server = HostileServer::start(move |q| {
        if q.target == "/v2/" {
            return Reply::new(200, "{}");
        }
        let Some(reference) = q.target.strip_prefix("/v2/deep/app/manifests/") else {
            return Reply::not_found();
        };
        let found = if reference == "v1" {
            docs.first()
        } else {
            docs.iter().find(|(d, _)| d == reference)
        };
        match found {
            Some((digest, bytes)) => {
                *count.lock().expect("count") += 1;
                Reply::new(200, bytes.clone())
                    .header("Content-Type", INDEX)
                    .header("Docker-Content-Digest", digest)
            }
            None => Reply::not_found(),
        }
    });
    let c = client();
    let tmp = tempfile::tempdir().expect("tmp");
    let reference = r(&format!("127.0.0.1:{}/deep/app:v1", server.port()));
    let mut blobs = 0;
    for (name, options) in [("all", PullOptions::all_platforms()), ("one", opts())] {
        let out = tmp.path().join(name);
        let e = c
            .pull(&reference, &out, &options)
            .await
            .expect_err("nested too deep");
        match &e {
            Error::Verify(detail) => assert!(detail.contains("nested deeper"), "{detail}"),
            other => panic!("{name}: expected Verify, got {other:?}"),
        }
        blobs += nothing_lost(&out);
        assert_eq!(named(&out), 0);
    }
    let gets = server
        .seen()
        .iter()
        .filter(|q| q.method == "GET" && q.target.contains("/manifests/"))
        .count();
    // Each pull reads the top, then at most MAX_INDEX_DEPTH + 1 levels.
    assert!(
        gets <= 2 * (MAX_INDEX_DEPTH + 2),
        "{gets} manifest requests for two pulls"
    );
    // Levels below the limit are never asked for (the deepest pull, for
    // one platform, starts one level down).
    for deeper in &digests[MAX_INDEX_DEPTH + 2..] {
        assert!(
            !server
                .seen()
                .iter()
                .any(|q| q.target.contains(deeper.as_str())),
            "{deeper} is below the limit"
        );
    }
    let injected = *served.lock().expect("count");
    record(
        5,
        "Index of index of index ... (10 levels; pulled for every platform and for one)",
        injected,
        &format!(
            "Followed to depth {MAX_INDEX_DEPTH}, then `Verify` (\"indexes nested deeper than {MAX_INDEX_DEPTH}\"); \
             {gets} manifest requests for both pulls"
        ),
        &lost_nothing(blobs),
    );
}

/// Pagination: a `Link` loop, a `Link` to another host, a `Link` to
/// another name of the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_loops_and_foreign_links_are_refused() {
    let elsewhere = HostileServer::start(|_| Reply::new(200, r#"{"tags":["stolen"]}"#));
    let elsewhere_port = elsewhere.port();
    let hostile_links = Arc::new(Mutex::new(0usize));
    let count = hostile_links.clone();
    let server = HostileServer::start(move |q| {
        let page = |tag: &str, next: Option<String>| {
            let reply = Reply::new(200, format!(r#"{{"name":"x","tags":["{tag}"]}}"#))
                .header("Content-Type", "application/json");
            match next {
                Some(link) => {
                    *count.lock().expect("count") += 1;
                    reply.header("Link", &format!("<{link}>; rel=\"next\""))
                }
                None => reply,
            }
        };
        let port = q
            .header("host")
            .and_then(|h| h.rsplit_once(':'))
            .map_or("0", |(_, p)| p)
            .to_owned();
        match q.target.as_str() {
            "/v2/" => Reply::new(200, "{}"),
            "/v2/loop/app/tags/list" => page("a", Some("/v2/loop/app/tags/list?last=a&n=1".into())),
            "/v2/loop/app/tags/list?last=a&n=1" => {
                page("b", Some("/v2/loop/app/tags/list?last=b&n=1".into()))
            }
            "/v2/loop/app/tags/list?last=b&n=1" => {
                page("c", Some("/v2/loop/app/tags/list?last=a&n=1".into()))
            }
            "/v2/away/app/tags/list" => page(
                "a",
                Some(format!(
                    "http://127.0.0.1:{elsewhere_port}/v2/away/app/tags/list?last=a"
                )),
            ),
            "/v2/alias/app/tags/list" => page(
                "a",
                Some(format!(
                    "http://localhost:{port}/v2/alias/app/tags/list?last=a"
                )),
            ),
            _ => Reply::not_found(),
        }
    });
    let c = client();
    let host = format!("127.0.0.1:{}", server.port());

    let e = c
        .tags(&r(&format!("{host}/loop/app")))
        .await
        .expect_err("a loop");
    match &e {
        Error::Protocol(ProtocolError::InvalidResponse { what, detail }) => {
            assert_eq!(*what, "Link header");
            assert!(detail.contains("loops"), "{detail}");
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
    let loop_gets = server
        .seen()
        .iter()
        .filter(|q| q.target.starts_with("/v2/loop/"))
        .count();
    assert_eq!(loop_gets, 3, "each page once, then the loop is seen");

    for repo in ["away", "alias"] {
        let e = c
            .tags(&r(&format!("{host}/{repo}/app")))
            .await
            .expect_err("a foreign link");
        match &e {
            Error::Protocol(ProtocolError::InvalidResponse { what, detail }) => {
                assert_eq!(*what, "Link header");
                assert!(detail.contains("another host"), "{detail}");
            }
            other => panic!("{repo}: expected InvalidResponse, got {other:?}"),
        }
    }
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    assert!(
        !server
            .seen()
            .iter()
            .any(|q| q.target.contains("last=a") && !q.target.starts_with("/v2/loop/")),
        "the foreign links were not followed"
    );
    let injected = *hostile_links.lock().expect("count");
    record(
        6,
        "Pagination `Link` loop (a -> b -> c -> a); `Link` to another host; `Link` to another name of the same port",
        injected,
        "The loop: `InvalidResponse` (\"pagination loops\") after each page once; foreign links: `InvalidResponse` \
         (\"another host\") with no request sent there",
        "nothing (no partial listing returned)",
    );
}

/// 503 and 429 storms: backoff within the retry budget, `Retry-After`
/// honoured, then success or an error that names the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_of_503_and_429_end_in_success_or_a_clear_error() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(&c, &registry.host(), "storm/app:v", &[20_000], 46).await;
    let proxy = FaultProxy::start(registry.addr(), vec![]).expect("proxy");
    let reference = r(&format!("{}/storm/app:v", proxy.host()));
    let mut injected = 0;
    let mut blobs = 0;

    // Passing storms: 503 x 3 on the manifest, 429 (Retry-After: 1) x 2
    // on every blob.
    proxy.add_rule(Rule::get("/manifests/", Fault::status(503)).times(3));
    proxy.add_rule(
        Rule::get(
            "/blobs/sha256:",
            Fault::status_with(429, &[("Retry-After", "1")]),
        )
        .times(2),
    );
    let out = image.out("passing");
    let started = Instant::now();
    c.pull(&reference, &out, &opts())
        .await
        .expect("the storm passes within the budget");
    println!("the passing storm took {:?}", started.elapsed());
    assert_eq!(
        statuses(&proxy.requests_matching("GET", "/manifests/")),
        [Some(503), Some(503), Some(503), Some(200)]
    );
    assert_eq!(proxy.fired(), [3, 2]);
    blobs += nothing_lost(&out);
    injected += fired(&proxy);

    // Endless storms: the first try and 3 retries, then the status.
    for (code, headers) in [(503, vec![]), (429, vec![("Retry-After", "1")])] {
        proxy.clear_rules();
        proxy.add_rule(Rule::get("/manifests/", Fault::status_with(code, &headers)).always());
        let out = image.out(&format!("endless-{code}"));
        let e = c
            .pull(&reference, &out, &opts())
            .await
            .expect_err("an endless storm");
        match &e {
            Error::Protocol(ProtocolError::Registry(re)) => {
                assert_eq!(re.status.as_u16(), code);
                assert!(re.is_temporary());
            }
            other => panic!("expected the registry's {code}, got {other:?}"),
        }
        assert!(e.to_string().contains(&code.to_string()), "{e}");
        assert_eq!(fired(&proxy), 4, "the first try and 3 retries");
        blobs += nothing_lost(&out);
        assert_eq!(named(&out), 0);
        injected += fired(&proxy);
    }
    record(
        7,
        "429 / 503 storms: 503 x 3 on the manifest and 429 (`Retry-After: 1`) x 2 on each blob; then endless 503 and endless 429",
        injected,
        "Passing storms: retried with backoff, waiting out `Retry-After`, then the pull succeeded; endless storms: \
         the first try and 3 retries, then the registry's status as a typed, temporary `Registry` error",
        &lost_nothing(blobs),
    );
}

/// Redirects to another host, and from a public name to loopback:
/// credentials stay with the registry; the pull succeeds from storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_elsewhere_get_no_credentials() {
    let (user, password) = ("alice", "s3cret");
    let registry = Registry::start(Auth::Htpasswd {
        user: user.into(),
        password: password.into(),
    })
    .expect("registry");
    let direct = Client::builder()
        .credentials(credentials(&registry.host(), user, password))
        .build(transport());
    let image = push(
        &direct,
        &registry.host(),
        "private/app:v",
        &[300_000, 2_000],
        47,
    )
    .await;
    // "Storage": another host that serves the bytes with credentials of
    // its own.
    let storage = FaultProxy::builder(registry.addr())
        .upstream_header("authorization", &basic_authorization(user, password))
        .start()
        .expect("storage");
    let front = FaultProxy::start(
        registry.addr(),
        vec![Rule::get("/blobs/sha256:", Fault::redirect(storage.url())).always()],
    )
    .expect("front");
    let mut blobs = 0;
    let mut pulls = 0;

    // By the front's own address, and by a public name that resolves to
    // it (the redirect then goes from that name to a loopback address).
    let named_host = format!("registry.test:{}", front.addr().port());
    for (host, c) in [
        (
            front.host(),
            Client::builder()
                .credentials(credentials(&front.host(), user, password))
                .retry(quick_retries())
                .build(transport()),
        ),
        (
            named_host.clone(),
            Client::builder()
                .credentials(credentials(&named_host, user, password))
                .insecure_registry(named_host.clone())
                .retry(quick_retries())
                .build(
                    HyperTransport::builder()
                        .resolve("registry.test", [127, 0, 0, 1].into())
                        .build()
                        .expect("transport"),
                ),
        ),
    ] {
        let out = image.out(&format!("via-{}", host.replace(':', "-")));
        let report = c
            .pull(&r(&format!("{host}/private/app:v")), &out, &opts())
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(report.blobs_transferred, 3, "{report:?}");
        blobs += nothing_lost(&out);
        pulls += 1;
    }
    let manifests = front.requests_matching("GET", "/manifests/");
    assert!(
        manifests
            .iter()
            .any(|q| q.status == Some(200) && q.header("authorization").is_some()),
        "the registry got the credentials: {manifests:?}"
    );
    let seen = storage.requests();
    assert_eq!(seen.len(), 3 * pulls, "{seen:?}");
    for q in &seen {
        assert!(
            !q.has_header("authorization"),
            "credentials followed a redirect: {q:?}"
        );
        assert_eq!(q.status, Some(200));
    }
    assert!(
        seen.iter().all(|q| q
            .header("host")
            .is_some_and(|h| h.starts_with("127.0.0.1:"))),
        "{seen:?}"
    );
    record(
        8,
        "Blob GETs redirected to storage on another host, and from a public name (`registry.test`) to a loopback address",
        fired(&front),
        &format!(
            "Followed without `Authorization` ({} storage requests, none with credentials); the registry alone got them; both pulls verified",
            seen.len()
        ),
        &lost_nothing(blobs),
    );
}

/// A bearer realm over plain http on a host not named insecure gets no
/// credentials; named insecure, it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_realm_over_plain_http_gets_no_credentials() {
    let (user, password) = ("bob", "hunter2");
    let token = HostileServer::start(|_| {
        Reply::new(
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#,
        )
        .header("Content-Type", "application/json")
    });
    let realm = format!("http://token.test:{}/token", token.port());
    let registry = HostileServer::start(move |_| {
        Reply::new(
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}"#,
        )
        .header("Content-Type", "application/json")
        .header(
            "WWW-Authenticate",
            &format!(r#"Bearer realm="{realm}",service="hostile""#),
        )
    });
    let registry_host = format!("registry.test:{}", registry.port());
    let token_host = format!("token.test:{}", token.port());
    let reference = r(&format!("{registry_host}/private/app:v"));
    let make = |trust_realm: bool| {
        let mut b = Client::builder()
            .credentials(credentials(&registry_host, user, password))
            .insecure_registry(registry_host.clone())
            .retry(quick_retries());
        if trust_realm {
            b = b.insecure_registry(token_host.clone());
        }
        b.build(
            HyperTransport::builder()
                .resolve("registry.test", [127, 0, 0, 1].into())
                .resolve("token.test", [127, 0, 0, 1].into())
                .build()
                .expect("transport"),
        )
    };

    let e = make(false)
        .manifest(&reference)
        .await
        .expect_err("no token");
    assert_eq!(e.kind(), ErrorKind::Auth, "{e:?}");
    assert!(e.to_string().contains("registry.test"), "{e}");
    let asked = token.seen();
    assert!(!asked.is_empty(), "the realm was asked (anonymously)");
    assert!(
        asked.iter().all(|q| q.header("authorization").is_none()),
        "credentials went to a plain-http realm: {asked:?}"
    );
    let anonymous = asked.len();

    // The control: the realm named insecure gets them.
    make(true)
        .manifest(&reference)
        .await
        .expect_err("the token server refuses anyway");
    let asked = token.seen();
    assert!(
        asked[anonymous..]
            .iter()
            .any(|q| q.header("authorization") == Some(&basic_authorization(user, password))),
        "{asked:?}"
    );
    // The registry itself (Bearer) never saw the password.
    assert!(
        registry.seen().iter().all(|q| !q
            .header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))),
        "{:?}",
        registry.seen()
    );
    record(
        9,
        "Bearer token realm over plain http (`http://token.test`, not loopback, not named insecure)",
        anonymous,
        "Asked the realm anonymously (no `Authorization`), then `Unauthorized` naming the registry; the control \
         (the realm named insecure) did send the credentials",
        "nothing (no credential left for the realm)",
    );
}

/// A TLS registry that redirects to plain http: refused, nothing sent
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_https_to_http_is_refused() {
    let (user, password) = ("carol", "pa55");
    let plain = HostileServer::start(|_| Reply::new(200, "{}"));
    let plain_port = plain.port();
    let pki = berth_testkit::pki::Pki::new().expect("pki");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(
            pki.server.cert_der.clone(),
        )],
        rustls::pki_types::PrivateKeyDer::Pkcs8(pki.server.key_der.clone().into()),
    )
    .expect("server certificate");
    let expected = basic_authorization(user, password);
    let tls = HostileServer::start_with(
        Some(Arc::new(config)),
        Arc::new(move |q: &Seen| {
            if q.target == "/v2/" && q.header("authorization") != Some(expected.as_str()) {
                return Reply::new(401, "{}").header("WWW-Authenticate", r#"Basic realm="x""#);
            }
            if q.target == "/v2/" {
                return Reply::new(200, "{}");
            }
            Reply::new(307, "").header(
                "Location",
                &format!("http://127.0.0.1:{plain_port}{}", q.target),
            )
        }),
    );
    let host = format!("localhost:{}", tls.port());
    let c = Client::builder()
        .credentials(credentials(&host, user, password))
        .retry(quick_retries())
        .build(
            HyperTransport::builder()
                .webpki_roots(false)
                .system_roots(false)
                .extra_ca_pem(pki.ca.cert_pem.clone())
                .build()
                .expect("transport"),
        );
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let e = c
        .pull(&r(&format!("{host}/private/app:v")), &out, &opts())
        .await
        .expect_err("a downgrade");
    match &e {
        Error::Protocol(ProtocolError::Redirect(RedirectError::Downgrade { to })) => {
            assert!(to.starts_with("http://127.0.0.1:"), "{to}");
        }
        other => panic!("expected a refused downgrade, got {other:?}"),
    }
    assert!(plain.seen().is_empty(), "{:?}", plain.seen());
    let redirected = tls
        .seen()
        .iter()
        .filter(|q| q.target.contains("/manifests/"))
        .count();
    assert!(
        tls.seen().iter().any(|q| q.target.contains("/manifests/")
            && q.header("authorization") == Some(basic_authorization(user, password).as_str())),
        "the TLS registry did get the credentials: {:?}",
        tls.seen()
    );
    let blobs = nothing_lost(&out);
    record(
        10,
        "Redirect from https to plain http (a TLS registry answering 307 to `http://127.0.0.1`)",
        redirected,
        "Refused: `Redirect(Downgrade)`; no request reached the http URL",
        &lost_nothing(blobs),
    );
}

/// A slow registry: read and response timeouts fire, the resume budget
/// bounds a stalled blob, and the client's slots and connections are free
/// for the next pull.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_registry_times_out_and_frees_its_slots() {
    let registry = Registry::start(Auth::None).expect("registry");
    let image = push(
        &client(),
        &registry.host(),
        "slow/app:v",
        &[300_000, 300_000, 300_000, 300_000],
        48,
    )
    .await;
    let proxy = FaultProxy::start(registry.addr(), vec![]).expect("proxy");
    let reference = r(&format!("{}/slow/app:v", proxy.host()));
    let concurrency = 2;
    let c = Client::builder()
        .concurrency(concurrency)
        .retry(quick_retries())
        .build(
            HyperTransport::builder()
                .read_idle_timeout(Duration::from_millis(800))
                .response_timeout(Duration::from_millis(800))
                .build()
                .expect("transport"),
        );
    let mut injected = 0;
    let mut blobs = 0;

    // Every blob stalls after 10 kB, longer than the test: each slot is
    // held by a stalled transfer until its read timeout fires.
    proxy.add_rule(
        Rule::get(
            "/blobs/sha256:",
            Fault::stall(10_000, Duration::from_secs(60)),
        )
        .always(),
    );
    let out = image.out("stalled-bodies");
    match c.pull(&reference, &out, &opts()).await {
        Err(Error::Interrupted(detail)) => {
            // 10 kB more on each of the first try and the 5 resumes.
            let at = 10_000 * (1 + MAX_RESUMES);
            assert!(
                detail.contains(&format!("stopped at byte {at} ")),
                "{detail}"
            )
        }
        other => panic!("expected Interrupted after the resumes, got {other:?}"),
    }
    blobs += nothing_lost(&out);
    injected += fired(&proxy);

    // A registry that never answers the manifest: the response timeout
    // fires on each try.
    proxy.clear_rules();
    proxy.add_rule(Rule::get("/manifests/", Fault::hold(Duration::from_secs(60))).always());
    let out = image.out("silent");
    let e = c
        .pull(&reference, &out, &opts())
        .await
        .expect_err("no answer");
    assert!(
        matches!(e, Error::Protocol(ProtocolError::Transport { .. })),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Network);
    assert_eq!(fired(&proxy), 4, "the first try and 3 retries");
    blobs += nothing_lost(&out);
    injected += fired(&proxy);

    // The registry recovers: the same client pulls everything with the
    // same slots.
    proxy.clear_rules();
    let out = image.out("recovered");
    let report = c
        .pull(&reference, &out, &opts())
        .await
        .expect("the slots are free");
    assert_eq!(report.blobs_transferred, 5, "{report:?}");
    blobs += nothing_lost(&out);
    record(
        11,
        "A slow registry: every blob stalls after 10 kB (concurrency 2, read-idle timeout 0.8 s); the manifest never answered (response timeout 0.8 s)",
        injected,
        &format!(
            "Stalled bodies: the read timeout fired on each try, {MAX_RESUMES} resumes, then `Interrupted`; silence: \
             `Transport` after 3 retries; then the same client ({concurrency} slots) pulled the image whole"
        ),
        &lost_nothing(blobs),
    );
}

/// A pull dropped at several points (as Ctrl-C or a timeout drops it)
/// leaves a valid layout and no temporary; a temporary of a run that died
/// is removed by the next run; the next pull completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_dropped_mid_transfer_leave_a_valid_layout() {
    let registry = Registry::start(Auth::None).expect("registry");
    let c = client();
    let image = push(
        &c,
        &registry.host(),
        "drop/app:v",
        &[1_500_000, 1_000_000, 200_000],
        49,
    )
    .await;
    // 32 kB every 10 ms per blob: a pull takes at least half a second.
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![
            Rule::get(
                "/blobs/sha256:",
                Fault::throttle(32 * 1024, Duration::from_millis(10)),
            )
            .always(),
        ],
    )
    .expect("proxy");
    let reference = r(&format!("{}/drop/app:v", proxy.host()));
    let out = image.out("out");
    // What a run killed outright leaves: a temporary whose process is gone.
    std::fs::create_dir_all(out.join(".berth")).expect(".berth");
    let leftover = out.join(".berth/tmp-4294967-0-leftover");
    std::fs::write(&leftover, b"partial").expect("leftover");

    let mut dropped = 0;
    for ms in [20, 60, 150, 300, 500] {
        match tokio::time::timeout(Duration::from_millis(ms), c.pull(&reference, &out, &opts()))
            .await
        {
            Err(_elapsed) => dropped += 1,
            Ok(result) => {
                result.expect("a pull that finished in time succeeded");
            }
        }
        // Right after the drop: valid, and no temporary of this process.
        nothing_lost(&out);
        assert!(!leftover.exists(), "the dead run's temporary was removed");
    }
    assert!(
        dropped >= 1,
        "the throttle makes the first pull outlast 20 ms"
    );
    let report = c
        .pull(&reference, &out, &opts())
        .await
        .expect("the next pull completes");
    assert_eq!(
        report.blobs_transferred + report.blobs_skipped,
        image.blob_count() - 1,
        "{report:?}"
    );
    let blobs = nothing_lost(&out);
    assert_eq!(blobs, image.blob_count());
    assert_eq!(named(&out), 1);
    record(
        12,
        "Pull future dropped mid-transfer (timeouts of 20-500 ms on a throttled registry), and a temporary left by a run that died",
        dropped,
        "Each drop left the layout valid with no temporary (unfinished blobs are deleted as they are dropped); \
         the dead run's temporary was removed by the next run; the next pull skipped what was there and completed",
        &lost_nothing(blobs),
    );
}

/// base64url without padding, as JWS writes it.
fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A blob whose descriptor says it is a signed schema 1 manifest, served
/// as one whose rebuilt payload (not its bytes) has the descriptor's
/// digest: the manifest store accepts such a manifest under its payload's
/// name, but a layout names blobs by their bytes, so berth must refuse it
/// rather than store bytes under a digest they do not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_named_by_a_signed_payload_is_refused() {
    const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    const IMAGE: &str = "application/vnd.oci.image.manifest.v1+json";
    // The payload the attacker names the blob after, and the bytes served.
    let payload = b"any bytes the attacker wants under this name".to_vec();
    let digest = Digester::sha256_of(&payload).to_string();
    let protected = base64url(
        format!(
            r#"{{"formatLength":0,"formatTail":"{}","time":"2026-01-01T00:00:00Z"}}"#,
            base64url(&payload)
        )
        .as_bytes(),
    );
    let signed = format!(
        r#"{{"schemaVersion":1,"name":"evil/app","tag":"v1","architecture":"amd64","fsLayers":[],"history":[],"signatures":[{{"header":{{"alg":"ES256"}},"signature":"AAAA","protected":"{protected}"}}]}}"#
    )
    .into_bytes();
    let config =
        r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = Digester::sha256_of(config.as_bytes()).to_string();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{IMAGE}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{SCHEMA1}","digest":"{digest}","size":{}}}]}}"#,
        config.len(),
        signed.len()
    )
    .into_bytes();
    let manifest_digest = Digester::sha256_of(&manifest).to_string();
    let served = Arc::new(Mutex::new(0usize));
    let count = served.clone();
    let (d, cd) = (digest.clone(), config_digest.clone());
    let server = HostileServer::start(move |q| {
        let t = q.target.as_str();
        if t == "/v2/" {
            Reply::new(200, "{}")
        } else if t == "/v2/evil/app/manifests/v1" || t.ends_with(manifest_digest.as_str()) {
            Reply::new(200, manifest.clone())
                .header("Content-Type", IMAGE)
                .header("Docker-Content-Digest", &manifest_digest)
        } else if t.ends_with(d.as_str()) {
            *count.lock().expect("count") += 1;
            Reply::new(200, signed.clone())
                .header("Content-Type", SCHEMA1)
                .header("Docker-Content-Digest", &d)
        } else if t.ends_with(cd.as_str()) {
            Reply::new(200, config).header("Content-Type", "application/octet-stream")
        } else {
            Reply::not_found()
        }
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let reference = r(&format!("127.0.0.1:{}/evil/app:v1", server.port()));
    let e = client()
        .pull(&reference, &out, &opts())
        .await
        .expect_err("bytes that are not the digest's");
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains(&digest), "{e}");
    let blobs = nothing_lost(&out);
    assert!(
        !out.join("blobs/sha256").join(&digest[7..]).exists(),
        "the bytes landed under the payload's digest"
    );
    let injected = *served.lock().expect("count");
    record(
        13,
        "A layer whose descriptor says signed schema 1 manifest, served as one whose payload (not its bytes) has the layer's digest",
        injected,
        "Refused: `Verify` naming the digest; the bytes never reach `blobs/`",
        &lost_nothing(blobs),
    );
}
