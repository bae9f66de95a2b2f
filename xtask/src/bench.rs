//! `cargo xtask bench`: end-to-end pulls, pushes and copies of the standard
//! images against the real registry (CNCF distribution) on loopback, berth
//! beside its peers in the same run: `skopeo copy`, the Rust `oci-client`
//! crate (a small harness in `benches/peers/oci-client`, an excluded Cargo
//! project), and the floor (the same blobs fetched in parallel with curl
//! into sha256sum). Then many small operations: N tags resolved to digests.
//!
//! Each figure is the median of several runs with the min and max; wall
//! time, CPU time and peak RSS of the client come from GNU time, the
//! registry's CPU time from /proc.
//!
//! Before those, the parser layers: `cargo bench -p berth-benches` (divan),
//! whose tables this reads back (the median column) to compute how many
//! times faster berth is than each peer crate on the same inputs in the same
//! run. The pairs compared, and the targets, are in [`PARSER_LAYERS`].
//!
//! Writes BENCHMARKS.md and its plots (`docs/bench/*.svg`); `--quick` writes
//! `target/BENCHMARKS-quick.md` and `target/bench-quick/*.svg` with smaller
//! images and shorter parser benches. `--parsers-only` runs only the parser
//! benches and writes their section to `target/BENCHMARKS-parsers.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

const MIB: usize = 1024 * 1024;

/// The client issue's targets, as ratios measured in one run: (index
/// of the image in the run, operation, peer, how many times faster than
/// the peer berth must be). Push (c) need only be no slower.
const RATIO_TARGETS: &[(usize, Op, &str, f64)] = &[
    (0, Op::Pull, SKOPEO, 2.5),
    (0, Op::Pull, OCI_CLIENT, 1.5),
    (1, Op::Pull, SKOPEO, 1.8),
    (1, Op::Pull, OCI_CLIENT, 1.2),
    (2, Op::Pull, SKOPEO, 5.0),
    (2, Op::Pull, OCI_CLIENT, 2.0),
    (0, Op::Push, SKOPEO, 2.0),
    (1, Op::Push, SKOPEO, 2.0),
    (2, Op::Push, SKOPEO, 1.0),
];
/// Every berth pull's and push's peak RSS stays under this (MiB).
const TARGET_RSS_MIB: f64 = 32.0;

struct Image {
    name: &'static str,
    slug: &'static str,
    layers: Vec<usize>,
}

impl Image {
    fn bytes(&self) -> usize {
        self.layers.iter().sum()
    }

    fn largest_layer(&self) -> usize {
        self.layers.iter().copied().max().unwrap_or(0)
    }
}

#[derive(Clone, Copy, Default)]
struct Sample {
    wall: f64,
    cpu: f64,
    server_cpu: f64,
    rss_kib: u64,
}

#[derive(Clone, Copy)]
struct Stats {
    wall: f64,
    min_wall: f64,
    max_wall: f64,
    cpu: f64,
    server_cpu: f64,
    max_rss_kib: u64,
}

impl Stats {
    fn rss_mib(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn stats(samples: &[Sample]) -> Stats {
    let walls: Vec<f64> = samples.iter().map(|s| s.wall).collect();
    Stats {
        wall: median(walls.clone()),
        min_wall: walls.iter().copied().fold(f64::INFINITY, f64::min),
        max_wall: walls.iter().copied().fold(0.0, f64::max),
        cpu: median(samples.iter().map(|s| s.cpu).collect()),
        server_cpu: median(samples.iter().map(|s| s.server_cpu).collect()),
        max_rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
    }
}

/// What a row measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Pull,
    PullTls,
    Push,
    Copy,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Pull => "pull",
            Op::PullTls => "pull (TLS)",
            Op::Push => "push",
            Op::Copy => "copy",
        }
    }
}

const BERTH: &str = "berth";
const OCI_CLIENT: &str = "oci-client";
const SKOPEO: &str = "skopeo";
const FLOOR: &str = "floor";
/// The loopback transfer alone: the blobs fetched with curl to /dev/null.
const TRANSFER: &str = "transfer";
const TOOLS: [&str; 5] = [BERTH, OCI_CLIENT, SKOPEO, FLOOR, TRANSFER];

struct Row {
    op: Op,
    tool: &'static str,
    stats: Stats,
}

/// CPU ticks (user + system) of the given processes together.
fn ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&p| cpu_ticks(p)).sum()
}

/// user + system CPU ticks of a process, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3; utime 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The pid of a testkit registry: the process whose command line names its
/// config file (next to its storage directory).
fn registry_pid(registry: &Registry) -> Option<u32> {
    let config = registry.storage().parent()?.join("config.yml");
    let config = config.to_str()?.to_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        cmdline.split('\0').any(|a| a == config).then_some(pid)
    })
}

struct Runner {
    work: PathBuf,
    /// Clock ticks per second (for /proc CPU times).
    tick: f64,
    /// The berth CLI: every run of it gets `--no-cache`, or its
    /// blob-location cache would turn pushes and copies into mounts of
    /// what earlier runs sent.
    berth: PathBuf,
}

impl Runner {
    /// Runs a command under GNU time; returns what it measured, with the
    /// CPU time the given registries spent meanwhile.
    fn timed(&self, program: &Path, args: &[&str], servers: &[u32]) -> Result<Sample> {
        let out_file = self.work.join("time.txt");
        let err_file = self.work.join("stderr.txt");
        // Write back what earlier runs left dirty (pulled files, blobs the
        // registries received) first, so no run pays for another's writeback.
        let synced = Command::new("sync").status().context("running sync")?;
        if !synced.success() {
            bail!("sync failed: {synced}");
        }
        let before = ticks(servers);
        let status = Command::new("/usr/bin/time")
            .arg("-o")
            .arg(&out_file)
            .args(["-f", "%e %U %S %M"])
            .arg(program)
            .args((program == self.berth).then_some("--no-cache"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_file)?)
            .status()
            .context("/usr/bin/time (Debian package `time`) is needed")?;
        let server_cpu = ticks(servers).saturating_sub(before) as f64 / self.tick;
        let text = std::fs::read_to_string(&out_file)?;
        if !status.success() {
            let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
            let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
            bail!(
                "{} {} failed: {text}\n{}",
                program.display(),
                args.join(" "),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let line = text.lines().last().unwrap_or("");
        let v: Vec<&str> = line.split_whitespace().collect();
        if v.len() != 4 {
            bail!("unexpected GNU time output: {text:?}");
        }
        Ok(Sample {
            wall: v[0].parse()?,
            cpu: v[1].parse::<f64>()? + v[2].parse::<f64>()?,
            server_cpu,
            rss_kib: v[3].parse()?,
        })
    }
}

fn fresh(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let s = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&s).trim().to_owned()
        })
        .unwrap_or_default()
}

/// The blob digests of a layout's image: config first, then the layers.
fn blob_digests(layout: &Path) -> Result<Vec<String>> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let top = index["manifests"][0]["digest"]
        .as_str()
        .context("index.json names no manifest")?;
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(
        layout
            .join("blobs/sha256")
            .join(top.trim_start_matches("sha256:")),
    )?)?;
    let layers = manifest["layers"]
        .as_array()
        .context("manifest has no layers")?;
    std::iter::once(&manifest["config"])
        .chain(layers)
        .map(|d| {
            Ok(d["digest"]
                .as_str()
                .context("descriptor without digest")?
                .to_owned())
        })
        .collect()
}

/// The URLs of an image's blobs.
fn blob_urls(base: &str, repo: &str, digests: &[String]) -> Vec<String> {
    digests
        .iter()
        .map(|d| format!("{base}/v2/{repo}/blobs/{d}"))
        .collect()
}

/// The floor: every blob fetched with curl into sha256sum, 8 at a time.
fn floor_script(urls: &[String], curl_opts: &str) -> String {
    format!(
        "printf '%s\\n' {} | xargs -P 8 -I{{}} sh -c 'curl -sf {curl_opts} {{}} | sha256sum >/dev/null'",
        urls.join(" ")
    )
}

/// The transfer alone: one curl fetching every blob to /dev/null, 8 at a
/// time over reused HTTP/1.1 connections (over TLS, curl would otherwise
/// multiplex every blob on one HTTP/2 connection, one core decrypting it
/// all, where berth gives each blob in flight an HTTP/1.1 connection of
/// its own).
fn transfer_script(urls: &[String], curl_opts: &str) -> String {
    let each: Vec<String> = urls.iter().map(|u| format!("-o /dev/null {u}")).collect();
    format!(
        "curl -sf --http1.1 --parallel --parallel-max 8 {curl_opts} {}",
        each.join(" ")
    )
}

/// One core's SHA-256 through berth's digester (ring), in bytes per
/// second: the median of 5 hashes of 64 MiB in memory.
fn sha256_speed() -> f64 {
    // SHA-256 takes as long whatever the bytes are.
    let data = vec![0x5a_u8; 64 * MIB];
    let times = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(berth_manifest::Digester::sha256_of(std::hint::black_box(
                &data,
            )));
            t.elapsed().as_secs_f64()
        })
        .collect();
    data.len() as f64 / median(times)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn build(root: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "berth-cli",
            "--bin",
            "berth",
            "-p",
            "berth-benches",
            "--bin",
            "resolve_many",
        ])
        .status()?;
    if !status.success() {
        bail!("building berth failed");
    }
    // The oci-client peer brings reqwest and its own hyper: it is a Cargo
    // project of its own, excluded from the workspace, built only here.
    let manifest = root.join("benches/peers/oci-client/Cargo.toml");
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--release", "--manifest-path"])
        .arg(&manifest)
        .status()?;
    if !status.success() {
        bail!("building the oci-client peer failed");
    }
    Ok((
        root.join("target/release/berth"),
        root.join("target/release/resolve_many"),
        root.join("benches/peers/oci-client/target/release/oci-client-peer"),
    ))
}

/// The commit measured, and whether the work tree had changes on top.
fn berth_commit(root: &Path) -> String {
    let commit = output("git", &["-C", s(root), "rev-parse", "--short=12", "HEAD"]);
    let dirty = !output("git", &["-C", s(root), "status", "--porcelain"]).is_empty();
    if dirty {
        format!("{commit} (with uncommitted changes in the work tree)")
    } else {
        commit
    }
}

/// The version of a package in a Cargo.lock.
fn locked_version(lock: &Path, package: &str) -> String {
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let needle = format!("name = \"{package}\"\n");
    text.find(&needle)
        .and_then(|i| {
            text[i + needle.len()..]
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .map(|v| v.trim_end_matches('"').to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

/// The block order of free page reporting, where a virtio balloon device
/// takes the reports (feature bit 5, `VIRTIO_BALLOON_F_REPORTING`).
fn page_reporting_order() -> Option<u32> {
    let reporting = std::fs::read_dir("/sys/bus/virtio/drivers/virtio_balloon")
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("virtio"))
        .any(|e| {
            std::fs::read_to_string(e.path().join("features"))
                .is_ok_and(|f| f.as_bytes().get(5) == Some(&b'1'))
        });
    if !reporting {
        return None;
    }
    std::fs::read_to_string("/sys/module/page_reporting/parameters/page_reporting_order")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!(
        "{cpu}, {cores} cores, {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        output("uname", &["-r"])
    )
}

struct Seeded {
    layout: PathBuf,
    repo: String,
    digests: Vec<String>,
}

pub(crate) fn run(root: &Path, quick: bool) -> Result<()> {
    if std::env::args().any(|a| a == "--parsers-only") {
        return run_parsers_only(root, quick);
    }
    let started = Instant::now();
    let (berth, resolve_many, peer) = build(root)?;
    // The parser benches first, while no registry is running.
    let parsers = run_parser_benches(root, quick)?;
    let skopeo_version = output("skopeo", &["--version"]);
    if skopeo_version.is_empty() {
        bail!("skopeo is not installed (Debian package `skopeo`)");
    }
    let skopeo = PathBuf::from("/usr/bin/skopeo");
    let sh = PathBuf::from("/bin/sh");
    let registry_version = output(berth_testkit::REGISTRY_BIN, &["--version"]);
    let peer_lock = root.join("benches/peers/oci-client/Cargo.lock");
    let oci_client_version = locked_version(&peer_lock, "oci-client");
    let reqwest_version = locked_version(&peer_lock, "reqwest");
    let curl_version = output("curl", &["--version"])
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let rustc_version = output("rustc", &["--version"]);
    let commit = berth_commit(root);

    // Runs per figure. The full run keeps to well under 20 minutes on 2 cores.
    let runs = if quick { 3 } else { 5 };
    let tag_count: usize = if quick { 100 } else { 500 };
    let tag_runs = 3;
    let images = if quick {
        vec![
            Image {
                name: "8 x 8 MiB",
                slug: "8x8MiB",
                layers: vec![8 * MIB; 8],
            },
            Image {
                name: "64 x 128 KiB",
                slug: "64x128KiB",
                layers: vec![128 * 1024; 64],
            },
            Image {
                name: "1 x 128 MiB",
                slug: "1x128MiB",
                layers: vec![128 * MIB],
            },
        ]
    } else {
        vec![
            Image {
                name: "8 x 64 MiB",
                slug: "8x64MiB",
                layers: vec![64 * MIB; 8],
            },
            Image {
                name: "64 x 1 MiB",
                slug: "64x1MiB",
                layers: vec![MIB; 64],
            },
            Image {
                name: "1 x 1 GiB",
                slug: "1x1GiB",
                layers: vec![1024 * MIB],
            },
        ]
    };

    let work: PathBuf = root.join("target/bench-work");
    fresh(&work)?;
    std::fs::create_dir_all(&work)?;
    // Source, copy destination, and TLS registries.
    let src = Registry::start(Auth::None).context("starting the registry")?;
    let dst = Registry::start(Auth::None).context("starting the second registry")?;
    let tls = Registry::start_tls(Auth::None).context("starting the TLS registry")?;
    let pid = |r: &Registry| registry_pid(r).context("cannot find the registry's process");
    let (src_pid, dst_pid, tls_pid) = (pid(&src)?, pid(&dst)?, pid(&tls)?);
    let tick: f64 = output("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0);
    let runner = Runner {
        work: work.clone(),
        tick,
        berth: berth.clone(),
    };
    let (src_host, dst_host, tls_host) = (src.host(), dst.host(), tls.host());
    let cert_dir = work.join("certs");
    std::fs::create_dir_all(&cert_dir)?;
    let ca_file = cert_dir.join("ca.crt");
    std::fs::write(&ca_file, tls.ca_pem().context("TLS registry without a CA")?)?;
    let ca = s(&ca_file);
    let cache = Path::new("/var/lib/containers/cache/blob-info-cache-v1.boltdb");
    let clear_skopeo_cache = || {
        let _ = std::fs::remove_file(cache);
    };
    // What the TLS registry negotiates with a client that offers h2.
    let tls_protocol = match output(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "--http2",
            "--cacert",
            ca,
            "-w",
            "%{http_version}",
            &format!("https://{tls_host}/v2/"),
        ],
    )
    .as_str()
    {
        "2" => "HTTP/2".to_owned(),
        "1.1" => "HTTP/1.1".to_owned(),
        other => format!("unknown ({other:?})"),
    };

    let mut per_image: Vec<Vec<Row>> = Vec::new();
    // How fast the floor's sha256sum hashes (a cached layer file of the
    // first image), to read the floor by.
    let mut sha256sum_speed = f64::NAN;
    // And how fast one core hashes with ring, for the bound.
    let hash_speed = sha256_speed();
    for (n, image) in images.iter().enumerate() {
        eprintln!("==> {} ({:.2?} so far)", image.name, started.elapsed());
        let layout = work.join(format!("image-{n}"));
        write_layout(
            &layout,
            "v1",
            &[TestImage::new("linux/amd64", &image.layers, 100 + n as u64)],
        )?;
        let seeded = Seeded {
            digests: blob_digests(&layout)?,
            layout,
            repo: format!("bench/img{n}"),
        };
        let reference = format!("{src_host}/{}:v1", seeded.repo);
        if n == 0 {
            let layer = seeded
                .layout
                .join("blobs/sha256")
                .join(seeded.digests[1].trim_start_matches("sha256:"));
            let script = format!("sha256sum {} >/dev/null", layer.display());
            let samples = (0..3)
                .map(|_| runner.timed(&sh, &["-c", &script], &[]))
                .collect::<Result<Vec<_>>>()?;
            sha256sum_speed = image.layers[0] as f64 / MIB as f64 / stats(&samples).wall;
        }
        runner.timed(
            &berth,
            &[
                "push",
                "-q",
                s(&seeded.layout),
                &reference,
                "--insecure-registry",
                &src_host,
            ],
            &[],
        )?;
        let mut samples: Vec<(Op, &'static str, Vec<Sample>)> = Vec::new();
        let mut record = |op: Op, tool: &'static str, sample: Sample| match samples
            .iter_mut()
            .find(|(o, t, _)| *o == op && *t == tool)
        {
            Some((_, _, v)) => v.push(sample),
            None => samples.push((op, tool, vec![sample])),
        };
        let out = work.join("out");
        let urls = blob_urls(&format!("http://{src_host}"), &seeded.repo, &seeded.digests);
        let (floor, transfer) = (floor_script(&urls, ""), transfer_script(&urls, ""));
        // Pulls; the tools take turns within each run.
        for _ in 0..runs {
            fresh(&out)?;
            let args = [
                "pull",
                "-q",
                &reference,
                s(&out),
                "--insecure-registry",
                &src_host,
            ];
            record(Op::Pull, BERTH, runner.timed(&berth, &args, &[src_pid])?);
            fresh(&out)?;
            let args = ["pull", &reference, s(&out)];
            record(
                Op::Pull,
                OCI_CLIENT,
                runner.timed(&peer, &args, &[src_pid])?,
            );
            fresh(&out)?;
            clear_skopeo_cache();
            let args = [
                "copy",
                "-q",
                "--src-tls-verify=false",
                &format!("docker://{reference}"),
                &format!("oci:{}:v1", out.display()),
            ];
            record(Op::Pull, SKOPEO, runner.timed(&skopeo, &args, &[src_pid])?);
            record(
                Op::Pull,
                FLOOR,
                runner.timed(&sh, &["-c", &floor], &[src_pid])?,
            );
            record(
                Op::Pull,
                TRANSFER,
                runner.timed(&sh, &["-c", &transfer], &[src_pid])?,
            );
        }
        fresh(&out)?;
        // Pushes, each to a fresh repository.
        for run in 0..runs {
            let dest = format!("{src_host}/push/berth{n}-{run}:v1");
            let args = [
                "push",
                "-q",
                s(&seeded.layout),
                &dest,
                "--insecure-registry",
                &src_host,
            ];
            record(Op::Push, BERTH, runner.timed(&berth, &args, &[src_pid])?);
            let dest = format!("{src_host}/push/oci{n}-{run}:v1");
            let args = ["push", s(&seeded.layout), &dest];
            record(
                Op::Push,
                OCI_CLIENT,
                runner.timed(&peer, &args, &[src_pid])?,
            );
            clear_skopeo_cache();
            let args = [
                "copy",
                "-q",
                "--preserve-digests",
                "--dest-tls-verify=false",
                &format!("oci:{}:v1", seeded.layout.display()),
                &format!("docker://{src_host}/push/skopeo{n}-{run}:v1"),
            ];
            record(Op::Push, SKOPEO, runner.timed(&skopeo, &args, &[src_pid])?);
        }
        // Copies from one registry to another (blobs stream through the
        // client; within one registry they would be mounted instead).
        for run in 0..runs {
            let dest = format!("{dst_host}/copy/berth{n}-{run}:v1");
            let args = [
                "copy",
                "-q",
                &reference,
                &dest,
                "--insecure-registry",
                &src_host,
                "--insecure-registry",
                &dst_host,
            ];
            record(
                Op::Copy,
                BERTH,
                runner.timed(&berth, &args, &[src_pid, dst_pid])?,
            );
            clear_skopeo_cache();
            let args = [
                "copy",
                "-q",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{reference}"),
                &format!("docker://{dst_host}/copy/skopeo{n}-{run}:v1"),
            ];
            record(
                Op::Copy,
                SKOPEO,
                runner.timed(&skopeo, &args, &[src_pid, dst_pid])?,
            );
        }
        // The first image over TLS too.
        if n == 0 {
            let tls_ref = format!("{tls_host}/{}:v1", seeded.repo);
            runner.timed(
                &berth,
                &["push", "-q", s(&seeded.layout), &tls_ref, "--ca-file", ca],
                &[],
            )?;
            let urls = blob_urls(
                &format!("https://{tls_host}"),
                &seeded.repo,
                &seeded.digests,
            );
            let opts = format!("--cacert {ca}");
            let (floor, transfer) = (floor_script(&urls, &opts), transfer_script(&urls, &opts));
            for _ in 0..runs {
                fresh(&out)?;
                let args = ["pull", "-q", &tls_ref, s(&out), "--ca-file", ca];
                record(Op::PullTls, BERTH, runner.timed(&berth, &args, &[tls_pid])?);
                fresh(&out)?;
                let args = ["--ca-file", ca, "pull", &tls_ref, s(&out)];
                record(
                    Op::PullTls,
                    OCI_CLIENT,
                    runner.timed(&peer, &args, &[tls_pid])?,
                );
                fresh(&out)?;
                clear_skopeo_cache();
                let args = [
                    "copy",
                    "-q",
                    "--src-cert-dir",
                    s(&cert_dir),
                    &format!("docker://{tls_ref}"),
                    &format!("oci:{}:v1", out.display()),
                ];
                record(
                    Op::PullTls,
                    SKOPEO,
                    runner.timed(&skopeo, &args, &[tls_pid])?,
                );
                record(
                    Op::PullTls,
                    FLOOR,
                    runner.timed(&sh, &["-c", &floor], &[tls_pid])?,
                );
                record(
                    Op::PullTls,
                    TRANSFER,
                    runner.timed(&sh, &["-c", &transfer], &[tls_pid])?,
                );
            }
            fresh(&out)?;
        }
        fresh(&seeded.layout)?;
        let rows: Vec<Row> = samples
            .into_iter()
            .map(|(op, tool, v)| Row {
                op,
                tool,
                stats: stats(&v),
            })
            .collect();
        for r in &rows {
            eprintln!(
                "    {:<11} {:<10} {:>7.2} s  {:>8.1} MiB/s  cpu {:>6.2} s  registry cpu {:>6.2} s  rss {:>6.1} MiB",
                r.op.label(),
                r.tool,
                r.stats.wall,
                image.bytes() as f64 / MIB as f64 / r.stats.wall,
                r.stats.cpu,
                r.stats.server_cpu,
                r.stats.rss_mib()
            );
        }
        per_image.push(rows);
    }

    // Many small operations: N tags of one small image resolved to digests.
    eprintln!(
        "==> resolving {tag_count} tags ({:.2?} so far)",
        started.elapsed()
    );
    let small = work.join("small");
    write_layout(&small, "v1", &[TestImage::new("linux/amd64", &[1024], 7)])?;
    let prefix = format!("{src_host}/bench/tags:t");
    runner.timed(
        &berth,
        &[
            "push",
            "-q",
            s(&small),
            &format!("{prefix}0"),
            "--insecure-registry",
            &src_host,
        ],
        &[],
    )?;
    let tag_script = format!(
        "i=1; while [ $i -lt {tag_count} ]; do {} tag -q {prefix}0 t$i --insecure-registry {src_host} >/dev/null || exit 1; i=$((i+1)); done",
        berth.display()
    );
    runner.timed(&sh, &["-c", &tag_script], &[])?;
    let loop_script = |cmd: &str| {
        format!(
            "i=0; while [ $i -lt {tag_count} ]; do {cmd} >/dev/null || exit 1; i=$((i+1)); done"
        )
    };
    let berth_loop = loop_script(&format!(
        "{} digest -q {prefix}$i --insecure-registry {src_host}",
        berth.display()
    ));
    let skopeo_loop = loop_script(&format!(
        "skopeo inspect --raw --tls-verify=false docker://{prefix}$i"
    ));
    let count = tag_count.to_string();
    let mut resolve: Vec<(&'static str, &'static str, Vec<Sample>)> = vec![
        (
            BERTH,
            "one client (pooled connection, one ping), sequential `resolve` = HEAD each (`resolve_many`, the berth library)",
            Vec::new(),
        ),
        (
            OCI_CLIENT,
            "one client, sequential `fetch_manifest_digest` (HEAD)",
            Vec::new(),
        ),
        ("berth CLI", "a `berth digest` process per tag", Vec::new()),
        (
            SKOPEO,
            "a `skopeo inspect --raw` process per tag (skopeo has no batch mode)",
            Vec::new(),
        ),
    ];
    for _ in 0..tag_runs {
        resolve[0]
            .2
            .push(runner.timed(&resolve_many, &[&prefix, &count], &[src_pid])?);
        resolve[1]
            .2
            .push(runner.timed(&peer, &["resolve-many", &prefix, &count], &[src_pid])?);
        resolve[2]
            .2
            .push(runner.timed(&sh, &["-c", &berth_loop], &[src_pid])?);
        resolve[3]
            .2
            .push(runner.timed(&sh, &["-c", &skopeo_loop], &[src_pid])?);
    }
    let resolve: Vec<(&str, &str, Stats)> = resolve
        .into_iter()
        .map(|(t, how, v)| (t, how, stats(&v)))
        .collect();
    for (t, _, st) in &resolve {
        eprintln!(
            "    {t:<10} {:>7.2} s  {:>8.0} ops/s  cpu {:>6.2} s  rss {:>6.1} MiB",
            st.wall,
            tag_count as f64 / st.wall,
            st.cpu,
            st.rss_mib()
        );
    }
    drop((src, dst, tls));
    let _ = fresh(&work);

    // The report.
    let date = output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let command = if quick {
        "cargo xtask bench --quick"
    } else {
        "cargo xtask bench"
    };
    let (md_path, plot_dir, plot_rel) = if quick {
        (
            root.join("target/BENCHMARKS-quick.md"),
            root.join("target/bench-quick"),
            "bench-quick",
        )
    } else {
        (
            root.join("BENCHMARKS.md"),
            root.join("docs/bench"),
            "docs/bench",
        )
    };
    std::fs::create_dir_all(&plot_dir)?;

    let find = |rows: &[Row], op: Op, tool: &str| {
        rows.iter()
            .find(|r| r.op == op && r.tool == tool)
            .map(|r| r.stats)
    };
    let wall = |rows: &[Row], op: Op, tool: &str| find(rows, op, tool).map_or(f64::NAN, |s| s.wall);
    // How many times faster berth is than `tool` at `op` (peer wall / berth wall).
    let speedup = |rows: &[Row], op: Op, tool: &str| wall(rows, op, tool) / wall(rows, op, BERTH);
    // The bound for a pull: the longer of the loopback transfer and one
    // core's SHA-256 of the largest layer (each blob is hashed in order,
    // on one core). Returns (transfer, hash, bound) in seconds.
    let bound = |rows: &[Row], op: Op, image: &Image| {
        let transfer = wall(rows, op, TRANSFER);
        let hash = image.largest_layer() as f64 / hash_speed;
        (transfer, hash, transfer.max(hash))
    };
    // The cores: what berth and the registry serving it spent in CPU time
    // cannot take less wall time than that spread over every core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let busy = |rows: &[Row], op: Op| {
        find(rows, op, BERTH).map_or((f64::NAN, f64::NAN), |s| (s.cpu, s.server_cpu))
    };
    let spread = |rows: &[Row], op: Op| {
        let (client, server) = busy(rows, op);
        (client + server) / cores as f64
    };

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `{command}` on {date}; the run took {:.1} minutes. Every number in this file comes from that run; none is typed by hand. `cargo xtask bench` regenerates this file and its plots; `cargo xtask bench --quick` runs the same harness with smaller images in a few minutes and writes `target/BENCHMARKS-quick.md`.\n",
        started.elapsed().as_secs_f64() / 60.0,
    );

    // Headline.
    let first = &per_image[0];
    let img0 = &images[0];
    let pull_vs_skopeo = speedup(first, Op::Pull, SKOPEO);
    let pull_vs_oci = speedup(first, Op::Pull, OCI_CLIENT);
    let pull_vs_floor = wall(first, Op::Pull, BERTH) / wall(first, Op::Pull, FLOOR);
    let pull_vs_bound = wall(first, Op::Pull, BERTH) / bound(first, Op::Pull, img0).2;
    let max_pull_rss = per_image
        .iter()
        .flat_map(|rows| rows.iter())
        .filter(|r| r.tool == BERTH && matches!(r.op, Op::Pull | Op::PullTls))
        .map(|r| r.stats.rss_mib())
        .fold(0.0, f64::max);
    let max_rss = per_image
        .iter()
        .flat_map(|rows| rows.iter())
        .filter(|r| r.tool == BERTH && r.op != Op::Copy)
        .map(|r| r.stats.rss_mib())
        .fold(0.0, f64::max);
    let resolve_wall = |tool: &str| {
        resolve
            .iter()
            .find(|(t, _, _)| *t == tool)
            .map_or(f64::NAN, |(_, _, s)| s.wall)
    };
    let mut headline = vec![format!(
        "Pull of {} ({:.0} MiB/s): **{pull_vs_skopeo:.2}x skopeo**, **{pull_vs_oci:.2}x oci-client**; it takes {pull_vs_bound:.2}x the time of the bound (the loopback transfer alone, or one core's SHA-256 of the largest layer where that is longer) and {pull_vs_floor:.2}x that of the curl | sha256sum floor.",
        img0.name,
        img0.bytes() as f64 / MIB as f64 / wall(first, Op::Pull, BERTH),
    )];
    for (image, rows) in images.iter().zip(&per_image) {
        headline.push(format!(
            "{}: pull {:.2}x skopeo / {:.2}x oci-client ({:.2}x the bound's time, {:.2}x the cores'); push {:.2}x skopeo / {:.2}x oci-client; copy {:.2}x skopeo.",
            image.name,
            speedup(rows, Op::Pull, SKOPEO),
            speedup(rows, Op::Pull, OCI_CLIENT),
            wall(rows, Op::Pull, BERTH) / bound(rows, Op::Pull, image).2,
            wall(rows, Op::Pull, BERTH) / spread(rows, Op::Pull),
            speedup(rows, Op::Push, SKOPEO),
            speedup(rows, Op::Push, OCI_CLIENT),
            speedup(rows, Op::Copy, SKOPEO),
        ));
    }
    headline.push(format!(
        "Peak RSS of every berth pull: at most {max_pull_rss:.1} MiB ({} image included).",
        images[2].name
    ));
    headline.push(format!(
        "Resolving {tag_count} tags with one client: {:.0} ops/s, {:.1}x oci-client; {:.0}x skopeo's process-per-tag loop.",
        tag_count as f64 / resolve_wall(BERTH),
        resolve_wall(OCI_CLIENT) / resolve_wall(BERTH),
        resolve_wall(SKOPEO) / resolve_wall(BERTH),
    ));
    headline.push(parser_headline(&parsers)?);
    let _ = writeln!(md, "## Headline\n");
    for h in &headline {
        let _ = writeln!(md, "- {h}");
    }

    // Targets.
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let _ = writeln!(md, "\n## Targets\n");
    if quick {
        let _ = writeln!(
            md,
            "A quick run: the end-to-end targets are for the full images; the {} image stands in for 8 x 64 MiB here. The parser benches run with a shorter minimum time per bench.\n",
            img0.name
        );
    }
    let _ = writeln!(md, "| target | measured | |");
    let _ = writeln!(md, "|---|---:|---|");
    for &(i, op, tool, at_least) in RATIO_TARGETS {
        let ratio = speedup(&per_image[i], op, tool);
        let _ = writeln!(
            md,
            "| {} of {} at least {at_least}x as fast as {tool} | {ratio:.2}x | {} |",
            op.label(),
            images[i].name,
            met(ratio >= at_least)
        );
    }
    let _ = writeln!(
        md,
        "| peak RSS of every berth pull and push under {TARGET_RSS_MIB:.0} MiB | {max_rss:.1} MiB | {} |",
        met(max_rss < TARGET_RSS_MIB)
    );
    for row in parser_target_rows(&parsers)? {
        let _ = writeln!(md, "{row}");
    }

    // Method.
    let _ = writeln!(md, "\n## Setup and method\n");
    let _ = writeln!(
        md,
        "- Machine: {} — registries, clients and the floor share these cores; the registry's CPU time is in its own column.",
        machine()
    );
    if let Some(order) = page_reporting_order() {
        let _ = writeln!(
            md,
            "  - This kernel reports free memory to its host (free page reporting, blocks of 2^{order} pages), which may then take the memory back: the first write to a page it took back faults in the host. Pulls write every byte into fresh page cache, so a pull's system time, and with it its wall time, can vary from run to run with how much of that memory the host had taken back; the min – max columns show the spread."
        );
    }
    let _ = writeln!(
        md,
        "- Registry: {registry_version} (CNCF distribution, Debian `docker-registry`), three instances on 127.0.0.1 with storage on local disk: the source (plain HTTP), a second one as the destination of copies (plain HTTP), and one serving TLS from a CA made for the run (negotiated with curl offering h2: {tls_protocol})."
    );
    let _ = writeln!(md, "- Versions:");
    let _ = writeln!(
        md,
        "  - berth: git {commit}, release build, {rustc_version}; the `berth` CLI (default concurrency {}), and for the tag resolution the berth library in `benches/src/bin/resolve_many.rs`. Over TLS its transport offers h2 and http/1.1 by ALPN, and sends blob bytes over HTTP/1.1 connections of their own, one per concurrent blob. Each pulled blob is synced to disk (`fsync`) before it is renamed into place, as containers/image does; oci-client's harness writes without syncing, so its pulled files can be deleted before the kernel ever writes them back.",
        berth_concurrency(root)
    );
    let _ = writeln!(
        md,
        "  - {skopeo_version}: `skopeo copy` (docker:// to oci: for pulls, oci: to docker:// with `--preserve-digests` for pushes, docker:// to docker:// for copies); its blob-info cache is removed before each run. berth runs with `--no-cache` for the same reason."
    );
    let _ = writeln!(
        md,
        "  - oci-client {oci_client_version} (reqwest {reqwest_version}, rustls with the ring provider, HTTP/1.1 only as oci-client builds reqwest): `benches/peers/oci-client`, an excluded Cargo project. Pull: `pull_image_manifest`, then `pull_blob` of every blob into a tokio file, 16 at a time (its default download concurrency). Push: `push_blob_stream` of every blob from its file (monolithic PUT, 16 at a time), then `push_manifest_raw`. oci-client has no registry-to-registry copy: no copy rows for it."
    );
    let _ = writeln!(
        md,
        "  - floor: {curl_version} — the image's blobs fetched 8 at a time with `curl` into `sha256sum` (no files written): the cost of moving and hashing the bytes, nothing else."
    );
    let _ = writeln!(
        md,
        "  - transfer: the same blobs fetched by one `curl --http1.1 --parallel --parallel-max 8` to /dev/null, its connections reused (HTTP/1.1, as berth moves blob bytes): the loopback transfer alone, no hashing, no process per blob."
    );
    let _ = writeln!(
        md,
        "- The bound for a pull: the longer of the transfer's median wall time and one core's SHA-256 of the image's largest layer (a blob is hashed in order, so on one core), at the {:.0} MiB/s berth's digester (ring) hashed 64 MiB in memory at the start of this run. No client reaches it: it leaves out what the registry, the transfer and the hashing take from each other on 2 shared cores, and everything else a pull does (writing and syncing the files, HTTP). berth's time over the bound is under each table.",
        hash_speed / MIB as f64
    );
    let _ = writeln!(
        md,
        "- The cores: berth's CPU time and the registry's while serving it (both medians), spread over all {cores} cores, is the least wall time that work can take on this machine however it is scheduled. Where berth's time is close to it, a faster pull needs less CPU (in berth or in the registry), not more parallelism. It is under each pull table."
    );
    let _ = writeln!(
        md,
        "- Each figure: median of {runs} runs ({tag_runs} for tag resolution) with min – max of the wall time; the tools take turns within each run. Pulls go to a fresh directory, pushes and copies to a fresh repository each run, and before each timed run `sync` writes back what earlier runs left dirty, so no run pays for another's writeback. Wall time, client CPU (user + system) and peak RSS come from GNU time (for the floor, the transfer and process-per-tag loops, RSS is the largest single process); registry CPU is the registries' user + system time during the run, from /proc. Throughput is the image's layer bytes over the median wall time. The ratios are the peer's median wall time over berth's (above 1: berth is faster)."
    );
    let _ = writeln!(
        md,
        "- Reading the floor: registry, client and floor share 2 cores. On pulls the registry serves blob files with little CPU (see its column); on pushes and copies it hashes every byte it receives, so the client's share of the 2 cores matters less than the registry's. The floor forks a curl and a sha256sum per blob, and coreutils' sha256sum hashed a cached {} layer at {sha256sum_speed:.0} MiB/s in this run, while berth hashes with ring (SHA extensions where the CPU has them): a client that streams, hashes and writes in one process can come in under the floor, and berth does. The floor bounds what the registry and the loopback can deliver to simple tools, not what a client can do.",
        images[0].name.split(" x ").nth(1).unwrap_or("")
    );

    // Tables and plots.
    let _ = writeln!(md, "\n## Results");
    for (image, rows) in images.iter().zip(&per_image) {
        let mib = image.bytes() as f64 / MIB as f64;
        let _ = writeln!(md, "\n### {} ({mib:.0} MiB)\n", image.name);
        let svg = format!("{}.svg", image.slug);
        plot(
            &plot_dir.join(&svg),
            &format!("{}: throughput, MiB/s (median, min-max)", image.name),
            mib,
            rows,
        )?;
        let _ = writeln!(md, "![{} throughput]({plot_rel}/{svg})\n", image.name);
        let _ = writeln!(
            md,
            "| operation | tool | median wall | min – max | throughput | client CPU | registry CPU | peak RSS | berth vs this (its time / berth's) |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for op in [Op::Pull, Op::PullTls, Op::Push, Op::Copy] {
            for tool in TOOLS {
                let Some(st) = find(rows, op, tool) else {
                    continue;
                };
                let ratio = match tool {
                    BERTH => "—".to_owned(),
                    FLOOR | TRANSFER => {
                        format!("{:.2}x its time", wall(rows, op, BERTH) / st.wall)
                    }
                    _ => format!("{:.2}x", st.wall / wall(rows, op, BERTH)),
                };
                let tool_label = match tool {
                    FLOOR => "floor (curl \\| sha256sum)",
                    TRANSFER => "transfer (curl > /dev/null)",
                    _ => tool,
                };
                let _ = writeln!(
                    md,
                    "| {} | {tool_label} | {:.2} s | {:.2} – {:.2} s | {:.0} MiB/s | {:.2} s | {:.2} s | {:.1} MiB | {ratio} |",
                    op.label(),
                    st.wall,
                    st.min_wall,
                    st.max_wall,
                    mib / st.wall,
                    st.cpu,
                    st.server_cpu,
                    st.rss_mib(),
                );
            }
        }
        let _ = writeln!(md);
        for op in [Op::Pull, Op::PullTls] {
            if find(rows, op, TRANSFER).is_none() {
                continue;
            }
            let (transfer, hash, b) = bound(rows, op, image);
            let largest = image.largest_layer();
            let largest = if largest >= MIB {
                format!("{} MiB", largest / MIB)
            } else {
                format!("{} KiB", largest / 1024)
            };
            let _ = writeln!(
                md,
                "- Bound for a {}: the longer of the transfer ({transfer:.3} s) and one core's SHA-256 of the largest layer ({largest}: {hash:.3} s) is {b:.3} s; berth takes **{:.2}x** that.",
                op.label(),
                wall(rows, op, BERTH) / b
            );
            let (client, server) = busy(rows, op);
            let _ = writeln!(
                md,
                "- The cores: berth used {client:.2} s of CPU and the registry {server:.2} s serving it; on {cores} cores that takes at least {:.3} s, and berth takes **{:.2}x** that.",
                spread(rows, op),
                wall(rows, op, BERTH) / spread(rows, op)
            );
        }
    }

    let _ = writeln!(md, "\n### Resolving {tag_count} tags to digests\n");
    let _ = writeln!(
        md,
        "One small image under {tag_count} tags in the source registry; each tool resolves all of them, sequentially."
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| tool | how | median wall | min – max | ops/s | client CPU | registry CPU | peak RSS | berth (one client) vs this |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (tool, how, st) in &resolve {
        let ratio = if *tool == BERTH {
            "—".to_owned()
        } else {
            format!("{:.1}x", st.wall / resolve_wall(BERTH))
        };
        let _ = writeln!(
            md,
            "| {tool} | {how} | {:.2} s | {:.2} – {:.2} s | {:.0} | {:.2} s | {:.2} s | {:.1} MiB | {ratio} |",
            st.wall,
            st.min_wall,
            st.max_wall,
            tag_count as f64 / st.wall,
            st.cpu,
            st.server_cpu,
            st.rss_mib(),
        );
    }

    let _ = writeln!(md);
    md.push_str(&parser_section(root, &parsers)?);

    std::fs::write(&md_path, md)?;
    print_parser_ratios(&parsers)?;
    eprintln!("\nHeadline:");
    for h in &headline {
        eprintln!("- {h}");
    }
    eprintln!(
        "wrote {} and {} in {:.1} minutes",
        md_path.display(),
        plot_dir.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// berth's default blob concurrency, read from its source.
fn berth_concurrency(root: &Path) -> String {
    std::fs::read_to_string(root.join("crates/berth/src/client.rs"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("pub const DEFAULT_CONCURRENCY: usize = "))
        .map_or_else(|| "?".into(), |v| v.trim_end_matches(';').to_owned())
}

/// One SVG: throughput per operation (groups) and tool (bars), median with
/// a min – max whisker.
fn plot(path: &Path, title: &str, mib: f64, rows: &[Row]) -> Result<()> {
    use plotters::prelude::*;

    let ops: Vec<Op> = [Op::Pull, Op::PullTls, Op::Push, Op::Copy]
        .into_iter()
        .filter(|op| rows.iter().any(|r| r.op == *op))
        .collect();
    let colors = [
        RGBColor(0xd9, 0x5f, 0x02),
        RGBColor(0x1b, 0x9e, 0x77),
        RGBColor(0x75, 0x70, 0xb3),
        RGBColor(0x99, 0x99, 0x99),
        RGBColor(0xcc, 0xcc, 0xcc),
    ];
    let top = rows
        .iter()
        .map(|r| mib / r.stats.min_wall)
        .fold(0.0, f64::max)
        * 1.2;
    let root = SVGBackend::new(path, (900, 460)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plotting {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..ops.len() as f64, 0.0..top)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_max_light_lines(1)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("MiB/s")
        .draw()
        .map_err(|e| err(&e))?;
    let width = 0.8 / TOOLS.len() as f64;
    for (t, (tool, color)) in TOOLS.iter().zip(colors).enumerate() {
        let bars: Vec<(f64, &Row)> = ops
            .iter()
            .enumerate()
            .filter_map(|(g, op)| {
                let row = rows.iter().find(|r| r.op == *op && r.tool == *tool)?;
                Some((g as f64 + 0.1 + width * t as f64, row))
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        chart
            .draw_series(bars.iter().map(|(x, r)| {
                Rectangle::new(
                    [(*x, 0.0), (x + width * 0.9, mib / r.stats.wall)],
                    color.filled(),
                )
            }))
            .map_err(|e| err(&e))?
            .label(*tool)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart
            .draw_series(bars.iter().map(|(x, r)| {
                let mid = x + width * 0.45;
                PathElement::new(
                    vec![(mid, mib / r.stats.max_wall), (mid, mib / r.stats.min_wall)],
                    BLACK.stroke_width(1),
                )
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(bars.iter().map(|(x, r)| {
                Text::new(
                    format!("{:.0}", mib / r.stats.wall),
                    (*x, mib / r.stats.min_wall + top * 0.03),
                    ("sans-serif", 11).into_font(),
                )
            }))
            .map_err(|e| err(&e))?;
    }
    for (g, op) in ops.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(g as f64 + 0.45, 0.0));
        root.draw(&Text::new(
            op.label(),
            (px - 20, py + 10),
            ("sans-serif", 15).into_font(),
        ))
        .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The parser layers: `cargo bench -p berth-benches`, read back from divan's
// tables.

/// The bench targets of `benches/benches/`, each printing one divan table.
const PARSER_BENCHES: [&str; 3] = ["reference", "auth", "manifest"];

/// A bench as divan's table shows it.
#[derive(Debug, Clone, PartialEq)]
struct DivanBench {
    /// Its path in divan's tree, from the bench target down, joined with `/`
    /// (`auth/parse/berth_parse_challenges/ecr`).
    path: String,
    /// The median time of one iteration, as divan prints it (`69.35 µs`).
    median: String,
    /// The same, in nanoseconds.
    median_ns: f64,
    /// The median throughput, as divan prints it (`14.41 Mitem/s`), when the
    /// bench counts items or bytes.
    throughput: Option<String>,
}

/// A time as divan prints it (`69.35 µs`), in nanoseconds.
fn divan_duration_ns(text: &str) -> Option<f64> {
    let (value, unit) = text.trim().split_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let scale = match unit {
        "ps" => 1e-3,
        "ns" => 1.0,
        "µs" | "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        _ => return None,
    };
    Some(value * scale)
}

/// Reads divan's tables out of a bench run's standard output.
///
/// Every row of a table has six columns separated by `│`: the tree with the
/// name and the fastest time, then slowest, median, mean, samples and iters.
/// The tree draws its branches with `│` too, so the columns are split from
/// the right. A name at the left edge is a bench target; deeper names follow
/// `├─ ` or `╰─ `, three characters per level. A name with a time after it
/// is a bench (a leaf); one without is a group, or a bench run over `args`.
/// A row with no name under a bench is that bench's throughput (or, with an
/// allocation profiler, its allocations). Anything else (cargo's lines,
/// blank lines) is not a row and is skipped.
fn parse_divan(output: &str) -> Result<Vec<DivanBench>> {
    let mut benches: Vec<DivanBench> = Vec::new();
    let mut path: Vec<&str> = Vec::new();
    // Whether the last named row was a bench, whose throughput may follow.
    let mut after_leaf = false;
    for line in output.lines() {
        let columns: Vec<&str> = line.rsplitn(6, '│').collect();
        let [_iters, _samples, _mean, median, _slowest, tree] = columns[..] else {
            continue;
        };
        let median = median.trim();
        let branch = tree.rfind("├─ ").or_else(|| tree.rfind("╰─ "));
        let (depth, named) = match branch {
            Some(at) => {
                let start = at + "├─ ".len();
                (tree[..start].chars().count() / 3, &tree[start..])
            }
            None if !tree.starts_with([' ', '│']) => (0, tree),
            None => {
                // A row under a bench: its throughput in the median column.
                if after_leaf
                    && median.ends_with("/s")
                    && let Some(last) = benches.last_mut()
                {
                    last.throughput.get_or_insert_with(|| median.to_owned());
                }
                continue;
            }
        };
        let mut words = named.split_whitespace();
        let Some(name) = words.next() else {
            bail!("a row of divan's table without a name: {line:?}");
        };
        path.truncate(depth);
        path.push(name);
        // The top row names the bench target and the columns.
        after_leaf = depth > 0 && words.next().is_some();
        if after_leaf {
            let median_ns = divan_duration_ns(median)
                .with_context(|| format!("divan's median {median:?} in {line:?}"))?;
            benches.push(DivanBench {
                path: path.join("/"),
                median: median.to_owned(),
                median_ns,
                throughput: None,
            });
        }
    }
    Ok(benches)
}

/// A berth bench and the peer bench it is measured against, in the same run
/// on the same inputs, named by their paths in divan's tree.
struct Comparison {
    /// What berth does, as the report shows it.
    berth_label: &'static str,
    berth: &'static str,
    /// What the peer does.
    peer_label: &'static str,
    peer: &'static str,
    /// Whether the layer's target applies to this comparison.
    targeted: bool,
}

/// One parser layer and its peer crate.
struct ParserLayer {
    name: &'static str,
    /// The peer crate, for its version from Cargo.lock.
    peer_crate: &'static str,
    /// What one iteration of these benches does.
    inputs: &'static str,
    /// The smallest peer-over-berth ratio every targeted comparison must
    /// reach, and the target in words.
    target: (f64, &'static str),
    comparisons: &'static [Comparison],
}

const PARSER_LAYERS: &[ParserLayer] = &[
    ParserLayer {
        name: "references",
        peer_crate: "oci-spec",
        inputs: "one iteration parses the same 1,000 varied references (`berth_benches::corpus::references`)",
        target: (
            50.0,
            "reference parsing (`Reference::parse_normalized`) at least 50x oci-spec",
        ),
        comparisons: &[
            Comparison {
                berth_label: "`Reference::parse_normalized`",
                berth: "reference/berth_parse_normalized",
                peer_label: "`distribution::Reference::from_str`",
                peer: "reference/oci_spec_from_str",
                targeted: true,
            },
            Comparison {
                berth_label: "`Reference::parse` (owned)",
                berth: "reference/berth_parse_owned",
                peer_label: "`distribution::Reference::from_str`",
                peer: "reference/oci_spec_from_str",
                targeted: false,
            },
            Comparison {
                berth_label: "`ReferenceRef::parse` (borrowed)",
                berth: "reference/berth_reference_ref_parse",
                peer_label: "`distribution::Reference::from_str`",
                peer: "reference/oci_spec_from_str",
                targeted: false,
            },
        ],
    },
    ParserLayer {
        name: "challenges",
        peer_crate: "http-auth",
        inputs: "one iteration parses one `WWW-Authenticate` header as Docker Hub, GHCR or ECR sends it; the last row parses all three and reads realm, service and scope",
        target: (
            3.0,
            "challenge parsing (`parse_challenges`) at least 3x http-auth on every input",
        ),
        comparisons: &[
            Comparison {
                berth_label: "`parse_challenges`, Docker Hub",
                berth: "auth/parse/berth_parse_challenges/docker-hub",
                peer_label: "`parse_challenges`, Docker Hub",
                peer: "auth/parse/http_auth_parse_challenges/docker-hub",
                targeted: true,
            },
            Comparison {
                berth_label: "`parse_challenges`, GHCR",
                berth: "auth/parse/berth_parse_challenges/ghcr",
                peer_label: "`parse_challenges`, GHCR",
                peer: "auth/parse/http_auth_parse_challenges/ghcr",
                targeted: true,
            },
            Comparison {
                berth_label: "`parse_challenges`, ECR",
                berth: "auth/parse/berth_parse_challenges/ecr",
                peer_label: "`parse_challenges`, ECR",
                peer: "auth/parse/http_auth_parse_challenges/ecr",
                targeted: true,
            },
            Comparison {
                berth_label: "`parse_challenges_into` (reused `Vec`), Docker Hub",
                berth: "auth/parse/berth_parse_challenges_into/docker-hub",
                peer_label: "`parse_challenges`, Docker Hub",
                peer: "auth/parse/http_auth_parse_challenges/docker-hub",
                targeted: false,
            },
            Comparison {
                berth_label: "`parse_challenges_into` (reused `Vec`), GHCR",
                berth: "auth/parse/berth_parse_challenges_into/ghcr",
                peer_label: "`parse_challenges`, GHCR",
                peer: "auth/parse/http_auth_parse_challenges/ghcr",
                targeted: false,
            },
            Comparison {
                berth_label: "`parse_challenges_into` (reused `Vec`), ECR",
                berth: "auth/parse/berth_parse_challenges_into/ecr",
                peer_label: "`parse_challenges`, ECR",
                peer: "auth/parse/http_auth_parse_challenges/ecr",
                targeted: false,
            },
            Comparison {
                berth_label: "all three, parse + realm/service/scope",
                berth: "auth/parse_and_read_params/berth",
                peer_label: "all three, parse + realm/service/scope",
                peer: "auth/parse_and_read_params/http_auth",
                targeted: false,
            },
        ],
    },
    ParserLayer {
        name: "manifests and indexes",
        peer_crate: "oci-spec",
        inputs: "one iteration parses a 100-layer OCI image manifest or a 50-entry OCI index (built by the bench, the same bytes for both sides); oci-spec's types through serde_json",
        target: (
            1.5,
            "manifest and index parsing at least 1.5x oci-spec on every input",
        ),
        comparisons: &[
            Comparison {
                berth_label: "`ImageManifest::from_slice`, 100 layers",
                berth: "manifest/manifest_100_layers/berth_image_manifest_from_slice",
                peer_label: "`image::ImageManifest`, 100 layers",
                peer: "manifest/manifest_100_layers/oci_spec_image_manifest",
                targeted: true,
            },
            Comparison {
                berth_label: "`Manifest::from_bytes`, 100 layers",
                berth: "manifest/manifest_100_layers/berth_manifest_from_bytes",
                peer_label: "`image::ImageManifest`, 100 layers",
                peer: "manifest/manifest_100_layers/oci_spec_image_manifest",
                targeted: true,
            },
            Comparison {
                berth_label: "`ImageIndex::from_slice`, 50 entries",
                berth: "manifest/index_50_entries/berth_image_index_from_slice",
                peer_label: "`image::ImageIndex`, 50 entries",
                peer: "manifest/index_50_entries/oci_spec_image_index",
                targeted: true,
            },
            Comparison {
                berth_label: "`Manifest::from_bytes`, 50 entries",
                berth: "manifest/index_50_entries/berth_manifest_from_bytes",
                peer_label: "`image::ImageIndex`, 50 entries",
                peer: "manifest/index_50_entries/oci_spec_image_index",
                targeted: true,
            },
        ],
    },
    ParserLayer {
        name: "sha256",
        peer_crate: "ring",
        inputs: "one iteration hashes the same 64 MiB of bytes",
        target: (
            0.95,
            "sha256 through berth's `Digester` within 5% of ring's raw digest",
        ),
        comparisons: &[
            Comparison {
                berth_label: "`Digester`, one update",
                berth: "manifest/sha256_64_mib/berth_digester_one_update",
                peer_label: "`digest::digest`",
                peer: "manifest/sha256_64_mib/ring_digest",
                targeted: true,
            },
            Comparison {
                berth_label: "`Digester`, 64 KiB updates",
                berth: "manifest/sha256_64_mib/berth_digester_64k_chunks",
                peer_label: "`digest::digest`",
                peer: "manifest/sha256_64_mib/ring_digest",
                targeted: true,
            },
        ],
    },
];

/// What one run of the parser benches measured.
struct ParserReport {
    benches: Vec<DivanBench>,
    /// The arguments given to the bench binaries (divan's options).
    divan_args: Vec<&'static str>,
    /// How many runs of the benches the figures are the middle of.
    passes: usize,
}

impl ParserReport {
    fn bench(&self, path: &str) -> Result<&DivanBench> {
        self.benches
            .iter()
            .find(|b| b.path == path)
            .with_context(|| {
                format!("divan's output has no bench `{path}`: was it renamed in benches/benches/?")
            })
    }

    /// The comparison's benches and how many times faster berth is (the
    /// peer's median over berth's).
    fn ratio(&self, c: &Comparison) -> Result<(&DivanBench, &DivanBench, f64)> {
        let (ours, peer) = (self.bench(c.berth)?, self.bench(c.peer)?);
        Ok((ours, peer, peer.median_ns / ours.median_ns))
    }

    /// Every ratio of a layer, lowest and highest, and the lowest of the
    /// targeted ones.
    fn layer_ratios(&self, layer: &ParserLayer) -> Result<(f64, f64, f64)> {
        let (mut low, mut high, mut targeted) = (f64::INFINITY, 0.0_f64, f64::INFINITY);
        for c in layer.comparisons {
            let (_, _, r) = self.ratio(c)?;
            low = low.min(r);
            high = high.max(r);
            if c.targeted {
                targeted = targeted.min(r);
            }
        }
        Ok((low, high, targeted))
    }
}

/// How many times the parser benches run (once with `--quick`). Noise on a
/// shared machine comes in bursts of seconds, longer than one bench's half
/// second, so one run can catch a burst in berth's bench and not in its
/// peer's, or the other way round; each bench's figure is the middle of its
/// runs' medians.
const PARSER_PASSES: usize = 3;

/// Runs the parser benches (divan, in the bench profile) [`PARSER_PASSES`]
/// times and reads their tables back. Their output goes on to the terminal
/// as it comes.
fn run_parser_benches(root: &Path, quick: bool) -> Result<ParserReport> {
    let passes = if quick { 1 } else { PARSER_PASSES };
    // Divan's options after `--`: plain tables, and with `--quick` a tenth
    // of the benches' half-second minimum each.
    let mut divan_args = vec!["--color", "never"];
    if quick {
        divan_args.extend(["--min-time", "0.05"]);
    }
    let mut runs = Vec::with_capacity(passes);
    for pass in 1..=passes {
        eprintln!("==> parser benches, pass {pass} of {passes}");
        runs.push(parse_divan(&run_cargo_bench(root, &divan_args)?)?);
    }
    let report = ParserReport {
        benches: middle_of_runs(runs)?,
        divan_args,
        passes,
    };
    // Every comparison must find its two benches before anything is written.
    for layer in PARSER_LAYERS {
        report.layer_ratios(layer)?;
    }
    Ok(report)
}

/// One `cargo bench -p berth-benches` of [`PARSER_BENCHES`], echoed to the
/// terminal; its standard output.
fn run_cargo_bench(root: &Path, divan_args: &[&str]) -> Result<String> {
    use std::io::BufRead as _;

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["bench", "-p", "berth-benches"];
    for bench in PARSER_BENCHES {
        args.extend(["--bench", bench]);
    }
    args.push("--");
    args.extend(divan_args);
    eprintln!("==> cargo {}", args.join(" "));
    let mut child = Command::new(&cargo)
        .current_dir(root)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("running cargo bench")?;
    let mut output = String::new();
    let stdout = child.stdout.take().context("cargo bench's stdout")?;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        eprintln!("{line}");
        output.push_str(&line);
        output.push('\n');
    }
    if !child.wait()?.success() {
        bail!("cargo bench -p berth-benches failed");
    }
    Ok(output)
}

/// Each bench of the first run, as the run whose median is the middle one
/// of all runs' medians for it (the lower middle for an even count) shows
/// it. Every run must have every bench.
fn middle_of_runs(mut runs: Vec<Vec<DivanBench>>) -> Result<Vec<DivanBench>> {
    let Some(first) = runs.first() else {
        bail!("no run of the parser benches");
    };
    let paths: Vec<String> = first.iter().map(|b| b.path.clone()).collect();
    let mut middle = Vec::with_capacity(paths.len());
    for path in paths {
        let mut found = Vec::with_capacity(runs.len());
        for (i, run) in runs.iter_mut().enumerate() {
            let at = run
                .iter()
                .position(|b| b.path == path)
                .with_context(|| format!("run {} of the parser benches has no `{path}`", i + 1))?;
            found.push(run.swap_remove(at));
        }
        found.sort_by(|a, b| a.median_ns.total_cmp(&b.median_ns));
        middle.push(found.swap_remove((found.len() - 1) / 2));
    }
    Ok(middle)
}

/// The ratios for the terminal, as the benches printed them before they ran
/// on divan.
fn print_parser_ratios(report: &ParserReport) -> Result<()> {
    eprintln!("\nParsers (the peer's median over berth's; above 1: berth is faster):");
    for layer in PARSER_LAYERS {
        for c in layer.comparisons {
            let (_, _, r) = report.ratio(c)?;
            eprintln!(
                "  {r:>7.2}x  {}: berth {} vs {} {}",
                layer.name, c.berth_label, layer.peer_crate, c.peer_label
            );
        }
        let (_, _, worst) = report.layer_ratios(layer)?;
        let (min, what) = layer.target;
        eprintln!(
            "  target: {what}: {} (worst {worst:.2}x)",
            if worst >= min { "met" } else { "NOT met" }
        );
    }
    Ok(())
}

/// The headline line for the parsers: each layer's range of ratios.
fn parser_headline(report: &ParserReport) -> Result<String> {
    let mut parts = Vec::new();
    for layer in PARSER_LAYERS {
        let (low, high, _) = report.layer_ratios(layer)?;
        let range = if format!("{low:.1}") == format!("{high:.1}") {
            format!("{low:.1}x")
        } else {
            format!("{low:.1}x–{high:.1}x")
        };
        parts.push(format!("{} {range} {}", layer.name, layer.peer_crate));
    }
    Ok(format!(
        "Parsers, berth vs the peer crate on the same inputs in the same `cargo bench` runs: {}.",
        parts.join("; ")
    ))
}

/// The parsers' rows of the targets table.
fn parser_target_rows(report: &ParserReport) -> Result<Vec<String>> {
    PARSER_LAYERS
        .iter()
        .map(|layer| {
            let (_, _, worst) = report.layer_ratios(layer)?;
            let (min, what) = layer.target;
            let met = if worst >= min { "met" } else { "**not met**" };
            let targeted = layer.comparisons.iter().filter(|c| c.targeted).count();
            let measured = if targeted > 1 {
                format!("worst {worst:.2}x")
            } else {
                format!("{worst:.2}x")
            };
            Ok(format!("| {what} | {measured} | {met} |"))
        })
        .collect()
}

/// The parser section of the report: how it was measured, then a table per
/// layer.
fn parser_section(root: &Path, report: &ParserReport) -> Result<String> {
    let lock = root.join("Cargo.lock");
    let mut md = String::new();
    let _ = writeln!(md, "## Parsers\n");
    let (how_often, times) = match report.passes {
        1 => (
            "once".to_owned(),
            "Times are divan's medians of one iteration;".to_owned(),
        ),
        n => (
            format!("{n} times"),
            format!(
                "Each time is the middle of the {n} runs' medians of one iteration (noise on this machine comes in bursts of seconds, which can hit a bench in one run and its peer in another);"
            ),
        ),
    };
    let _ = writeln!(
        md,
        "`cargo bench -p berth-benches` (divan {}; run as `cargo bench -p berth-benches {}-- {}`, {how_often}, before the registries start): each berth bench and its peer's are sibling bench functions on the same inputs in the same run (`benches/benches/`). {times} the throughput is divan's at that median. The ratio is the peer's time over berth's (above 1: berth is faster).",
        locked_version(&lock, "divan"),
        PARSER_BENCHES
            .iter()
            .map(|b| format!("--bench {b} "))
            .collect::<String>(),
        report.divan_args.join(" "),
    );
    for layer in PARSER_LAYERS {
        let _ = writeln!(
            md,
            "\n### {} vs {} {}\n",
            layer.name,
            layer.peer_crate,
            locked_version(&lock, layer.peer_crate)
        );
        let _ = writeln!(md, "{}.\n", capitalised(layer.inputs));
        let _ = writeln!(
            md,
            "| berth | median | throughput | {} | median | throughput | berth vs {} |",
            layer.peer_crate, layer.peer_crate
        );
        let _ = writeln!(md, "|---|---:|---:|---|---:|---:|---:|");
        for c in layer.comparisons {
            let (ours, peer, r) = report.ratio(c)?;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {r:.2}x |",
                c.berth_label,
                ours.median,
                ours.throughput.as_deref().unwrap_or("—"),
                c.peer_label,
                peer.median,
                peer.throughput.as_deref().unwrap_or("—"),
            );
        }
    }
    Ok(md)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `cargo xtask bench --parsers-only`: the parser benches alone, no
/// registries; writes `target/BENCHMARKS-parsers.md`.
fn run_parsers_only(root: &Path, quick: bool) -> Result<()> {
    let started = Instant::now();
    let report = run_parser_benches(root, quick)?;
    print_parser_ratios(&report)?;
    let date = output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks: parsers\n");
    let _ = writeln!(
        md,
        "Generated by `cargo xtask bench --parsers-only{}` on {date}: the parser section of BENCHMARKS.md alone. Machine: {}; berth at git {}, {}.\n",
        if quick { " --quick" } else { "" },
        machine(),
        berth_commit(root),
        output("rustc", &["--version"]),
    );
    let _ = writeln!(md, "- {}\n", parser_headline(&report)?);
    let _ = writeln!(md, "| target | measured | |");
    let _ = writeln!(md, "|---|---:|---|");
    for row in parser_target_rows(&report)? {
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md);
    md.push_str(&parser_section(root, &report)?);
    let path = root.join("target/BENCHMARKS-parsers.md");
    std::fs::write(&path, md)?;
    eprintln!(
        "wrote {} in {:.1} minutes",
        path.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table as divan 0.1 prints it: groups, benches over `args`, and
    /// throughput rows.
    const TABLE: &str = "\
     Running benches/auth.rs (target/release/deps/auth-1599c930235dd5e4)
auth                               fastest       │ slowest       │ median        │ mean          │ samples │ iters
├─ parse                                         │               │               │               │         │
│  ├─ berth_parse_challenges                     │               │               │               │         │
│  │  ├─ docker-hub                200.5 ns      │ 3.955 µs      │ 239.5 ns      │ 279.7 ns      │ 100     │ 100
│  │  ╰─ ghcr                      165.4 ns      │ 8.629 µs      │ 205.2 ns      │ 281 ns        │ 100     │ 1600
│  ╰─ http_auth_parse_challenges                 │               │               │               │         │
│     ╰─ ghcr                      1.046 µs      │ 20.73 µs      │ 1.056 µs      │ 1.311 µs      │ 100     │ 200
╰─ parse_and_read_params                         │               │               │               │         │
   ├─ berth                        1.511 µs      │ 4.135 µs      │ 1.582 µs      │ 1.62 µs       │ 100     │ 100
   │                               1.984 Mitem/s │ 725.4 Kitem/s │ 1.895 Mitem/s │ 1.851 Mitem/s │         │
   ╰─ http_auth                    3.404 µs      │ 4.205 µs      │ 3.464 µs      │ 3.477 µs      │ 100     │ 100
                                   881.1 Kitem/s │ 713.3 Kitem/s │ 865.9 Kitem/s │ 862.8 Kitem/s │         │

reference                     fastest       │ slowest       │ median        │ mean          │ samples │ iters
├─ berth_parse_normalized     68.38 µs      │ 139.8 µs      │ 69.35 µs      │ 73.79 µs      │ 100     │ 100
│                             14.62 Mitem/s │ 7.151 Mitem/s │ 14.41 Mitem/s │ 13.55 Mitem/s │         │
╰─ oci_spec_from_str          3.87 ms       │ 5.802 ms      │ 4.041 ms      │ 4.203 ms      │ 100     │ 100
";

    #[test]
    fn reads_divan_tables() {
        let benches = parse_divan(TABLE).expect("parses");
        let got: Vec<(&str, &str, Option<&str>)> = benches
            .iter()
            .map(|b| (b.path.as_str(), b.median.as_str(), b.throughput.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "auth/parse/berth_parse_challenges/docker-hub",
                    "239.5 ns",
                    None
                ),
                ("auth/parse/berth_parse_challenges/ghcr", "205.2 ns", None),
                (
                    "auth/parse/http_auth_parse_challenges/ghcr",
                    "1.056 µs",
                    None
                ),
                (
                    "auth/parse_and_read_params/berth",
                    "1.582 µs",
                    Some("1.895 Mitem/s")
                ),
                (
                    "auth/parse_and_read_params/http_auth",
                    "3.464 µs",
                    Some("865.9 Kitem/s")
                ),
                (
                    "reference/berth_parse_normalized",
                    "69.35 µs",
                    Some("14.41 Mitem/s")
                ),
                ("reference/oci_spec_from_str", "4.041 ms", None),
            ]
        );
        let ns: Vec<f64> = benches.iter().map(|b| b.median_ns).collect();
        let want = [239.5, 205.2, 1056.0, 1582.0, 3464.0, 69_350.0, 4_041_000.0];
        for (got, want) in ns.iter().zip(want) {
            assert!((got - want).abs() < want * 1e-9, "{got} != {want}");
        }
    }

    #[test]
    fn each_bench_is_its_middle_run() {
        let bench = |path: &str, median: &str| DivanBench {
            path: path.into(),
            median: median.into(),
            median_ns: divan_duration_ns(median).expect("a time"),
            throughput: None,
        };
        let runs = vec![
            vec![bench("a", "9 µs"), bench("b", "2 ms")],
            vec![bench("b", "3 ms"), bench("a", "1 µs")],
            vec![bench("a", "5 µs"), bench("b", "1 ms")],
        ];
        let middle = middle_of_runs(runs).expect("every run has every bench");
        let got: Vec<(&str, &str)> = middle
            .iter()
            .map(|b| (b.path.as_str(), b.median.as_str()))
            .collect();
        assert_eq!(got, [("a", "5 µs"), ("b", "2 ms")]);

        let one = middle_of_runs(vec![vec![bench("a", "7 ns")]]).expect("one run");
        assert_eq!(one[0].median, "7 ns");
        let missing = vec![vec![bench("a", "1 ns")], vec![bench("c", "1 ns")]];
        assert!(middle_of_runs(missing).is_err());
        assert!(middle_of_runs(Vec::new()).is_err());
    }

    #[test]
    fn reads_divan_times() {
        assert_eq!(divan_duration_ns("250 ps"), Some(0.25));
        assert_eq!(divan_duration_ns("2 s"), Some(2e9));
        assert_eq!(divan_duration_ns("12 parsecs"), None);
        assert_eq!(divan_duration_ns("fast"), None);
    }
}
