//! Foreign (non-distributable) layers against the real registry: fetched
//! from the URLs their descriptor names, served here by a small HTTP server
//! of the test's own on 127.0.0.1, with no registry credentials sent there;
//! a wrong byte from a URL refused; the registry as the fallback; push and
//! copy leave such layers at their URLs unless told otherwise.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use berth::manifest::{Descriptor, Digester, ImageConfig, ImageManifest, MediaType};
use berth::protocol::StaticCredentials;
use berth::protocol::auth::{Credentials, Secret};
use berth::reference::Reference;
use berth::{Client, ErrorKind, Event, Layout, Progress, PullOptions};
use berth_hyper::HyperTransport;
use berth_testkit::image::pseudo_random;
use berth_testkit::{Auth, Registry};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

/// One request the file server saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
}

/// Serves one file at `/layer` (and 404 elsewhere), one connection at a
/// time, recording every request; with `corrupt` set, the body's first
/// byte is flipped.
struct FileServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    corrupt: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    fn start(body: Vec<u8>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let corrupt = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, corrupt, stop) = (seen.clone(), corrupt.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let _ = serve(conn, &body, &seen, corrupt.load(Ordering::SeqCst));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        FileServer {
            addr,
            seen,
            corrupt,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn gets_of(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    body: &[u8],
    seen: &Mutex<Vec<Seen>>,
    corrupt: bool,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?).take(64 * 1024);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_owned());
        }
    }
    seen.lock().expect("lock").push(Seen {
        path: path.clone(),
        authorization,
    });
    let mut conn = conn;
    if path == "/layer" {
        let mut bytes = body.to_vec();
        if corrupt && let Some(b) = bytes.first_mut() {
            *b ^= 0xff;
        }
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            bytes.len()
        )?;
        conn.write_all(&bytes)?;
    } else {
        conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
    }
    conn.flush()
}

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

fn write_blob(dir: &Path, bytes: &[u8]) -> berth::reference::Digest {
    let digest = Digester::sha256_of(bytes);
    let path = dir.join("blobs/sha256").join(digest.encoded());
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, bytes).expect("write blob");
    digest
}

/// An OCI layout of one image: a config, an ordinary layer and a
/// non-distributable layer whose `urls` are `urls`. Returns the manifest
/// descriptor and the foreign layer's descriptor.
fn foreign_image(dir: &Path, foreign: &[u8], urls: &[String]) -> (Descriptor, Descriptor) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let plain = pseudo_random(40_000, 7);
    let plain_d = Descriptor::new(MediaType::OCI_LAYER_TAR, write_blob(dir, &plain), 40_000);
    let mut foreign_d = Descriptor::new(
        MediaType::OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
        write_blob(dir, foreign),
        foreign.len() as u64,
    );
    for u in urls {
        foreign_d = foreign_d.with_url(u.clone());
    }
    let mut config = ImageConfig::new(&"windows/amd64".parse().expect("platform"));
    config.rootfs.diff_ids = vec![plain_d.digest.clone(), foreign_d.digest.clone()];
    let config_bytes = serde_json::to_vec(&config).expect("config");
    let config_d = Descriptor::new(
        MediaType::OCI_CONFIG,
        write_blob(dir, &config_bytes),
        config_bytes.len() as u64,
    );
    let raw = ImageManifest::new(config_d, vec![foreign_d.clone(), plain_d])
        .to_raw()
        .expect("manifest");
    write_blob(dir, &raw.bytes);
    let named = raw
        .descriptor
        .clone()
        .with_annotation("org.opencontainers.image.ref.name", "v1");
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&berth::manifest::ImageIndex::new(vec![named])).expect("index"),
    )
    .expect("index.json");
    (raw.descriptor, foreign_d)
}

fn client(host: &str, allow: bool, events: &Arc<Mutex<Vec<Event>>>) -> Client<HyperTransport> {
    let creds = StaticCredentials::new().with(
        host,
        Credentials::Basic {
            username: USER.into(),
            password: Secret::new(PASSWORD),
        },
    );
    let sink = events.clone();
    Client::builder()
        .credentials(Arc::new(creds))
        .allow_nondistributable(allow)
        .progress(Progress::new(move |e| sink.lock().expect("lock").push(e)))
        .build(HyperTransport::builder().build().expect("transport"))
}

fn source_failures(events: &Mutex<Vec<Event>>) -> Vec<(String, String)> {
    events
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match e {
            Event::SourceFailed { source, reason, .. } => Some((source.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

fn start() -> (Registry, String) {
    let registry = Registry::start(Auth::Htpasswd {
        user: USER.into(),
        password: PASSWORD.into(),
    })
    .expect("registry");
    let host = registry.host();
    (registry, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_layers_stay_at_their_urls_and_are_fetched_from_there_without_credentials() {
    let (_registry, host) = start();
    let foreign = pseudo_random(300_000, 99);
    let server = FileServer::start(foreign.clone());
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let urls = vec![server.url("/gone"), server.url("/layer")];
    let (manifest, layer) = foreign_image(&src, &foreign, &urls);
    let events = Arc::new(Mutex::new(Vec::new()));
    let c = client(&host, false, &events);
    let at = r(&format!("{host}/win/base:v1"));

    let report = c.push(&src, &at).await.expect("push");
    assert_eq!(
        report.digest.as_ref(),
        Some(&manifest.digest),
        "digest kept"
    );
    assert_eq!(report.blobs_left_at_urls, 1);
    assert_eq!(report.blobs_transferred, 2, "config and the ordinary layer");
    assert!(
        !c.blob_exists(&host, "win/base", &layer.digest)
            .await
            .expect("head"),
        "the non-distributable layer was not uploaded"
    );
    let pushed = c.manifest(&at).await.expect("manifest");
    assert_eq!(
        pushed.manifest.layers()[0].urls,
        urls,
        "the manifest still names the URLs"
    );

    let out = tmp.path().join("out");
    c.pull(&at, &out, &PullOptions::all_platforms())
        .await
        .expect("pull fetches the foreign layer from its URL");
    let pulled = std::fs::read(out.join("blobs/sha256").join(layer.digest.encoded()))
        .expect("foreign layer in the layout");
    assert_eq!(pulled, foreign);
    Layout::open(&out)
        .expect("layout")
        .verify()
        .expect("verifies");

    let seen = server.seen();
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        ["/gone", "/layer"],
        "the URLs in order"
    );
    assert!(
        seen.iter().all(|s| s.authorization.is_none()),
        "no credentials to a foreign URL: {seen:?}"
    );
    let failures = source_failures(&events);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].0.ends_with("/gone"), "{failures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_byte_at_the_url_is_refused_and_the_registry_is_the_fallback() {
    let (_registry, host) = start();
    let foreign = pseudo_random(200_000, 5);
    let server = FileServer::start(foreign.clone());
    server.corrupt.store(true, Ordering::SeqCst);
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    let (_, layer) = foreign_image(&src, &foreign, &[server.url("/layer")]);
    let events = Arc::new(Mutex::new(Vec::new()));
    let at = r(&format!("{host}/win/core:v1"));
    client(&host, false, &events)
        .push(&src, &at)
        .await
        .expect("push");

    // The URL serves a wrong byte and the registry does not have the
    // layer: the pull fails, and nothing lands at the layer's final path.
    let out = tmp.path().join("out");
    let err = client(&host, false, &events)
        .pull(&at, &out, &PullOptions::all_platforms())
        .await
        .expect_err("no good source");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        !out.join("blobs/sha256")
            .join(layer.digest.encoded())
            .exists(),
        "a refused layer never reaches its final path"
    );
    Layout::open(&out)
        .expect("layout")
        .verify()
        .expect("verifies");
    let failures = source_failures(&events);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].1.contains("digest mismatch")
            && failures[0].1.contains(&layer.digest.to_string()),
        "refused with the digests named: {failures:?}"
    );

    // Uploaded on request, the layer then comes from the registry when the
    // URL's bytes are wrong.
    let report = client(&host, true, &events)
        .push(&src, &at)
        .await
        .expect("push with non-distributable layers");
    assert_eq!(report.blobs_left_at_urls, 0);
    assert_eq!(report.blobs_transferred, 1, "the foreign layer");
    events.lock().expect("lock").clear();
    let out = tmp.path().join("out2");
    client(&host, false, &events)
        .pull(&at, &out, &PullOptions::all_platforms())
        .await
        .expect("the registry serves the layer");
    assert_eq!(
        std::fs::read(out.join("blobs/sha256").join(layer.digest.encoded())).expect("layer"),
        foreign
    );
    Layout::open(&out)
        .expect("layout")
        .verify()
        .expect("verifies");
    assert_eq!(source_failures(&events).len(), 1, "the URL was tried first");
    assert!(server.seen().iter().all(|s| s.authorization.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_leaves_foreign_layers_unless_allowed_and_then_reads_them_from_their_urls() {
    let (_registry, host) = start();
    let foreign = pseudo_random(150_000, 11);
    let server = FileServer::start(foreign.clone());
    let tmp = tempfile::tempdir().expect("tmp");
    let src_dir = tmp.path().join("src");
    let (manifest, layer) = foreign_image(&src_dir, &foreign, &[server.url("/layer")]);
    let events = Arc::new(Mutex::new(Vec::new()));
    let src = r(&format!("{host}/win/src:v1"));
    client(&host, false, &events)
        .push(&src_dir, &src)
        .await
        .expect("push");

    let c = client(&host, false, &events);
    let dst = r(&format!("{host}/win/dst:v1"));
    let report = c
        .copy(&src, &dst, &PullOptions::all_platforms())
        .await
        .expect("copy");
    assert_eq!(report.blobs_left_at_urls, 1);
    assert_eq!(report.digest.as_ref(), Some(&manifest.digest));
    assert!(
        !c.blob_exists(&host, "win/dst", &layer.digest)
            .await
            .expect("head")
    );
    assert_eq!(server.gets_of("/layer"), 0, "nothing fetched");

    let c = client(&host, true, &events);
    let dst = r(&format!("{host}/win/dst2:v1"));
    let report = c
        .copy(&src, &dst, &PullOptions::all_platforms())
        .await
        .expect("copy with non-distributable layers");
    assert_eq!(report.blobs_left_at_urls, 0);
    assert!(
        c.blob_exists(&host, "win/dst2", &layer.digest)
            .await
            .expect("head"),
        "uploaded from its URL"
    );
    assert_eq!(server.gets_of("/layer"), 1);
    assert!(server.seen().iter().all(|s| s.authorization.is_none()));
}
