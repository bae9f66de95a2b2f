//! Memory: a 1 GiB single-layer pull keeps the process's peak RSS far below
//! the size of the blob (CONTRACT: "peak RSS under 64 MiB for a 1 GiB
//! pull", measured from the process).
//!
//! Generating and pushing the image holds the whole layer in memory, so the
//! pull runs in a child process: this test binary again, running only
//! [`pull_child`] (selected with `--exact`, told what to pull by
//! environment variables). The child prints its own `VmHWM` (peak resident
//! set) from `/proc/self/status` when the pull is done; the parent asserts
//! on it.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::manifest::Platform;
use berth::reference::Reference;
use berth::{Client, Layout, PullOptions};
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

/// Set in the child: the reference to pull.
const CHILD_REFERENCE: &str = "BERTH_MEMORY_CHILD_REFERENCE";
/// Set in the child: the layout directory to pull into.
const CHILD_DIR: &str = "BERTH_MEMORY_CHILD_DIR";
/// What the child prints before its peak RSS in KiB.
const MARKER: &str = "BERTH_CHILD_VMHWM_KB=";

const LAYER: usize = 1 << 30;
const LIMIT_KB: u64 = 64 * 1024;
/// The longest the child may take before it is killed.
const CHILD_DEADLINE: Duration = Duration::from_secs(240);

fn client() -> Client<HyperTransport> {
    Client::builder().build(HyperTransport::builder().build().expect("transport"))
}

/// `VmHWM` of `/proc/self/status`, in KiB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}

/// The child's part: runs only when the parent set the variables (it is a
/// no-op in an ordinary `cargo test` run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_child() {
    let (Ok(reference), Ok(dir)) = (std::env::var(CHILD_REFERENCE), std::env::var(CHILD_DIR))
    else {
        return;
    };
    let reference = Reference::parse_normalized(&reference).expect("reference");
    let before = peak_rss_kb();
    let started = Instant::now();
    let report = client()
        .pull(
            &reference,
            Path::new(&dir),
            &PullOptions::platform(Platform::host()),
        )
        .await
        .expect("the child's pull");
    let took = started.elapsed();
    let peak = peak_rss_kb();
    println!(
        "child: pulled {} bytes in {took:?}; VmHWM {before} KiB before the pull",
        report.bytes
    );
    println!("{MARKER}{peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_pull_keeps_peak_rss_under_64_mib() {
    if std::env::var_os(CHILD_REFERENCE).is_some() {
        return; // never nest
    }
    let registry = Registry::start(Auth::None).expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");

    let t = Instant::now();
    let top =
        write_layout(&src, "big", &[TestImage::new("linux/amd64", &[LAYER], 31)]).expect("layout");
    println!("wrote the 1 GiB layout in {:?}", t.elapsed());
    let reference = format!("{}/memory/big:v1", registry.host());
    let t = Instant::now();
    let pushed = client()
        .push(
            &src,
            &Reference::parse_normalized(&reference).expect("reference"),
        )
        .await
        .expect("push");
    println!("pushed {} bytes in {:?}", pushed.bytes, t.elapsed());
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(src.join("blobs/sha256").join(top.digest.encoded())).expect("manifest"),
    )
    .expect("manifest json");
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .to_owned();
    let config_size = manifest["config"]["size"].as_u64().expect("config size");
    assert_eq!(
        pushed.bytes,
        LAYER as u64 + config_size,
        "the layer and the config were uploaded"
    );
    // Free the disk before the pull writes its own copy.
    std::fs::remove_dir_all(&src).expect("remove the source layout");

    let out = tmp.path().join("out");
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = Command::new(exe)
        .args(["--exact", "pull_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_REFERENCE, &reference)
        .env(CHILD_DIR, &out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > CHILD_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child's pull took over {CHILD_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = reader.join().expect("the reader");
    print!("{text}");
    assert!(status.success(), "the child failed ({status}): {text}");
    let peak_kb: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(MARKER))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("the child did not report its peak RSS: {text}"));
    println!(
        "peak RSS of the process pulling 1 GiB: {peak_kb} KiB ({:.1} MiB; limit {} MiB)",
        peak_kb as f64 / 1024.0,
        LIMIT_KB / 1024
    );
    assert!(
        peak_kb < LIMIT_KB,
        "peak RSS {peak_kb} KiB during a 1 GiB pull, over {LIMIT_KB} KiB"
    );

    // And the pull was real: the layout names the image and holds the layer.
    let layout = Layout::open(&out).expect("layout");
    assert_eq!(
        layout.manifest_for(Some("v1")).expect("index.json").digest,
        top.digest
    );
    let layer_path = out
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    assert_eq!(
        std::fs::metadata(&layer_path).expect("the layer").len(),
        LAYER as u64
    );
    let t = Instant::now();
    assert_eq!(layout.verify().expect("verifies"), 3);
    println!("verified the pulled layout in {:?}", t.elapsed());
}
