//! `berth pull` interrupted with Ctrl-C (SIGINT) mid-transfer: it exits
//! with 130, leaves a valid OCI layout and no temporary, and the next pull
//! completes from what the first one finished.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use berth::Layout;
use berth_testkit::image::{TestImage, temporaries, write_layout};
use berth_testkit::proxy::{Fault, FaultProxy, Rule};
use berth_testkit::{Auth, Registry};

const LAYER: usize = 16 * 1024 * 1024;

/// `berth` with a private Docker config, no terminal, stderr to a file.
fn berth(home: &Path, args: &[&str], stderr: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).expect("stderr file"));
    cmd
}

/// Waits for the child, at most `limit` (then kills it and fails).
fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("berth did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every blob under `blobs/` hashes to its name and `index.json` parses
/// (or the layout was not created yet); returns the blobs checked.
fn valid_layout(dir: &Path) -> usize {
    if !dir.join("oci-layout").exists() {
        assert!(!dir.join("blobs").exists(), "blobs/ without oci-layout");
        return 0;
    }
    let layout = Layout::open(dir).expect("the layout opens");
    layout.index().expect("index.json parses");
    layout
        .verify()
        .expect("every file under blobs/ hashes to its name")
}

#[test]
fn ctrl_c_mid_pull_leaves_a_valid_layout_and_the_next_pull_completes() {
    let registry = Registry::start(Auth::None).expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let src = tmp.path().join("src");
    write_layout(
        &src,
        "v1",
        &[TestImage::new("linux/amd64", &[LAYER, LAYER, LAYER], 61)],
    )
    .expect("layout");
    let log = tmp.path().join("stderr");
    let pushed = berth(
        &home,
        &[
            "push",
            src.to_str().expect("path"),
            &format!("{}/big/app:v1", registry.host()),
        ],
        &log,
    )
    .status()
    .expect("berth runs");
    assert!(
        pushed.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // A slow registry: blobs come 64 kB every 10 ms.
    let proxy = FaultProxy::start(
        registry.addr(),
        vec![
            Rule::get(
                "/blobs/sha256:",
                Fault::throttle(64 * 1024, Duration::from_millis(10)),
            )
            .always(),
        ],
    )
    .expect("proxy");
    let reference = format!("{}/big/app:v1", proxy.host());
    let out = tmp.path().join("out");
    let out_arg = out.to_str().expect("path");

    let mut child = berth(&home, &["pull", &reference, out_arg], &log)
        .spawn()
        .expect("berth runs");
    // Wait (bounded) until a layer is mid-transfer: a temporary exists and
    // some of the bytes went out.
    let started = Instant::now();
    while !(temporaries(&out).iter().any(|t| t.starts_with("tmp-"))
        && proxy.body_bytes_sent() > 2 * 1024 * 1024)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the pull never got going: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "berth ended before the interrupt: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = wait(&mut child, Duration::from_secs(30));
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "{status:?}: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    // A valid layout, no temporary, no manifest named, not every layer.
    let kept = valid_layout(&out);
    assert!(
        temporaries(&out).is_empty(),
        "temporaries left: {:?}",
        temporaries(&out)
    );
    assert!(
        kept < 4,
        "the pull was interrupted before the end ({kept} blobs)"
    );
    let index = Layout::open(&out).and_then(|l| l.index()).expect("index");
    assert!(index.manifests.is_empty(), "nothing named yet");

    // The next pull completes, fetching only what is missing.
    proxy.clear_rules();
    let before = proxy.request_count();
    let status = berth(&home, &["pull", &reference, out_arg], &log)
        .status()
        .expect("berth runs");
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(valid_layout(&out), 5, "manifest, config and three layers");
    assert!(
        temporaries(&out).is_empty(),
        "temporaries left: {:?}",
        temporaries(&out)
    );
    let index = Layout::open(&out).and_then(|l| l.index()).expect("index");
    assert_eq!(index.manifests.len(), 1);
    let fetched_again = proxy.requests()[before..]
        .iter()
        .filter(|q| q.target.contains("/blobs/sha256:"))
        .count();
    assert_eq!(
        fetched_again,
        4 - kept,
        "only the blobs the first run had not finished"
    );
}
