//! `cargo xtask bench`: pulls and pushes of standard images against the
//! real registry on loopback, berth beside skopeo in the same run, and the
//! floor (the same blobs fetched in parallel with curl into sha256sum).
//! Each figure is the median of several runs with the min and max; wall
//! time, CPU time and peak RSS come from GNU time. Writes BENCHMARKS.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

const MIB: usize = 1024 * 1024;

struct Image {
    name: &'static str,
    layers: Vec<usize>,
}

#[derive(Clone, Copy, Default)]
struct Sample {
    wall: f64,
    cpu: f64,
    rss_kib: u64,
}

struct Stats {
    median: Sample,
    min_wall: f64,
    max_wall: f64,
    max_rss_kib: u64,
}

fn stats(mut samples: Vec<Sample>) -> Stats {
    samples.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    Stats {
        median: samples[samples.len() / 2],
        min_wall: samples[0].wall,
        max_wall: samples[samples.len() - 1].wall,
        max_rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
    }
}

/// Runs a command under GNU time; returns what it measured.
fn timed(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Sample> {
    let out_file = std::env::temp_dir().join(format!("berth-bench-time-{}", std::process::id()));
    let status = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(&out_file)
        .args(["-f", "%e %U %S %M"])
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("/usr/bin/time (Debian package `time`) is needed")?;
    let text = std::fs::read_to_string(&out_file)?;
    if !status.success() {
        bail!("{program} {} failed: {text}", args.join(" "));
    }
    let line = text.lines().last().unwrap_or("");
    let v: Vec<&str> = line.split_whitespace().collect();
    if v.len() != 4 {
        bail!("unexpected GNU time output: {text:?}");
    }
    Ok(Sample {
        wall: v[0].parse()?,
        cpu: v[1].parse::<f64>()? + v[2].parse::<f64>()?,
        rss_kib: v[3].parse()?,
    })
}

fn fresh(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

/// The blob URLs of a layout's image (for the curl floor).
fn blob_urls(layout: &Path, host: &str, repo: &str) -> Result<Vec<String>> {
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
            let digest = d["digest"].as_str().context("descriptor without digest")?;
            Ok(format!("http://{host}/v2/{repo}/blobs/{digest}"))
        })
        .collect()
}

pub(crate) fn run(root: &Path, quick: bool) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", "berth-cli"])
        .status()?;
    if !status.success() {
        bail!("building berth failed");
    }
    let berth = root.join("target/release/berth");
    let skopeo_version = Command::new("skopeo")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if skopeo_version.is_empty() {
        bail!("skopeo is not installed (Debian package `skopeo`)");
    }
    let registry_version = Command::new(berth_testkit::REGISTRY_BIN)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let runs = if quick { 3 } else { 5 };
    let images = if quick {
        vec![
            Image {
                name: "8 x 8 MiB",
                layers: vec![8 * MIB; 8],
            },
            Image {
                name: "64 x 128 KiB",
                layers: vec![128 * 1024; 64],
            },
            Image {
                name: "1 x 128 MiB",
                layers: vec![128 * MIB],
            },
        ]
    } else {
        vec![
            Image {
                name: "8 x 64 MiB",
                layers: vec![64 * MIB; 8],
            },
            Image {
                name: "64 x 1 MiB",
                layers: vec![MIB; 64],
            },
            Image {
                name: "1 x 1 GiB",
                layers: vec![1024 * MIB],
            },
        ]
    };
    let work: PathBuf = root.join("target/bench-work");
    fresh(&work)?;
    std::fs::create_dir_all(&work)?;
    let registry = Registry::start(Auth::None).context("starting the registry")?;
    let host = registry.host();
    let insecure = ["--insecure-registry", host.as_str()];
    let cache = Path::new("/var/lib/containers/cache/blob-info-cache-v1.boltdb");

    let mut table = String::new();
    let mut headline = Vec::new();
    for (n, image) in images.iter().enumerate() {
        eprintln!("==> {}", image.name);
        let layout = work.join(format!("image-{n}"));
        write_layout(
            &layout,
            "v1",
            &[TestImage::new("linux/amd64", &image.layers, 100 + n as u64)],
        )?;
        let repo = format!("bench/img{n}");
        let reference = format!("{host}/{repo}:v1");
        let status = Command::new(&berth)
            .args(["push", "-q"])
            .arg(&layout)
            .arg(&reference)
            .args(insecure)
            .status()?;
        if !status.success() {
            bail!("seeding the registry failed");
        }
        let mut results: Vec<(String, Stats)> = Vec::new();
        // Pulls.
        let out = work.join("out");
        let mut berth_pull = Vec::new();
        let mut skopeo_pull = Vec::new();
        let mut floor = Vec::new();
        let urls = blob_urls(&layout, &host, &repo)?;
        let floor_script = format!(
            "printf '%s\\n' {} | xargs -P 8 -I{{}} sh -c 'curl -sf {{}} | sha256sum >/dev/null'",
            urls.join(" ")
        );
        for _ in 0..runs {
            fresh(&out)?;
            berth_pull.push(timed(
                berth.to_str().unwrap_or("berth"),
                &[
                    "pull",
                    "-q",
                    &reference,
                    out.to_str().unwrap_or("out"),
                    "--insecure-registry",
                    &host,
                ],
                &[],
            )?);
            fresh(&out)?;
            let _ = std::fs::remove_file(cache);
            skopeo_pull.push(timed(
                "skopeo",
                &[
                    "copy",
                    "-q",
                    "--src-tls-verify=false",
                    &format!("docker://{reference}"),
                    &format!("oci:{}:v1", out.display()),
                ],
                &[],
            )?);
            floor.push(timed("sh", &["-c", &floor_script], &[])?);
        }
        results.push(("pull berth".into(), stats(berth_pull)));
        results.push(("pull skopeo".into(), stats(skopeo_pull)));
        results.push((
            "pull floor (curl | sha256sum, 8 parallel)".into(),
            stats(floor),
        ));
        // Pushes, each to a fresh repository.
        let mut berth_push = Vec::new();
        let mut skopeo_push = Vec::new();
        for run in 0..runs {
            berth_push.push(timed(
                berth.to_str().unwrap_or("berth"),
                &[
                    "push",
                    "-q",
                    layout.to_str().unwrap_or("layout"),
                    &format!("{host}/push/berth{n}-{run}:v1"),
                    "--insecure-registry",
                    &host,
                ],
                &[],
            )?);
            let _ = std::fs::remove_file(cache);
            skopeo_push.push(timed(
                "skopeo",
                &[
                    "copy",
                    "-q",
                    "--preserve-digests",
                    "--dest-tls-verify=false",
                    &format!("oci:{}:v1", layout.display()),
                    &format!("docker://{host}/push/skopeo{n}-{run}:v1"),
                ],
                &[],
            )?);
        }
        results.push(("push berth".into(), stats(berth_push)));
        results.push(("push skopeo".into(), stats(skopeo_push)));

        let _ = writeln!(table, "\n### {}\n", image.name);
        let _ = writeln!(
            table,
            "| what | median wall | min – max | CPU (user+sys) | peak RSS |"
        );
        let _ = writeln!(table, "|---|---:|---:|---:|---:|");
        for (what, s) in &results {
            let _ = writeln!(
                table,
                "| {what} | {:.2} s | {:.2} – {:.2} s | {:.2} s | {:.1} MiB |",
                s.median.wall,
                s.min_wall,
                s.max_wall,
                s.median.cpu,
                s.max_rss_kib as f64 / 1024.0
            );
        }
        let get = |name: &str| {
            results
                .iter()
                .find(|(w, _)| w == name)
                .map(|(_, s)| s.median.wall)
                .unwrap_or(f64::NAN)
        };
        let pull_ratio = get("pull skopeo") / get("pull berth");
        let push_ratio = get("push skopeo") / get("push berth");
        let floor_ratio = get("pull berth") / get("pull floor (curl | sha256sum, 8 parallel)");
        let _ = writeln!(
            table,
            "\nberth pulls {pull_ratio:.2}x as fast as skopeo and pushes {push_ratio:.2}x as fast; its pull takes {floor_ratio:.2}x the floor's time."
        );
        headline.push(format!(
            "{}: pull {pull_ratio:.2}x skopeo, push {push_ratio:.2}x skopeo",
            image.name
        ));
        eprintln!(
            "    pull {pull_ratio:.2}x skopeo, push {push_ratio:.2}x skopeo, pull at {floor_ratio:.2}x the floor"
        );
    }
    drop(registry);
    let _ = fresh(&work);

    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let command = if quick {
        "cargo xtask bench --quick"
    } else {
        "cargo xtask bench"
    };
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `{command}` on {date}. Every number below comes from that run; none is typed by hand.\n"
    );
    let _ = writeln!(
        md,
        "- Machine: {cpu}, {cores} cores (registry and client share them)."
    );
    let _ = writeln!(
        md,
        "- Registry: {registry_version} on 127.0.0.1 (plain HTTP), storage on local disk."
    );
    let _ = writeln!(
        md,
        "- Peer: {skopeo_version} (`skopeo copy`, `--preserve-digests` on push, blob-info cache removed before each run)."
    );
    let _ = writeln!(
        md,
        "- Floor: the image's blobs fetched 8 at a time with curl into sha256sum."
    );
    let _ = writeln!(
        md,
        "- Each figure: median of {runs} runs, fresh output directory and fresh destination repository each run; wall time, CPU time and peak RSS from GNU time.\n"
    );
    let _ = writeln!(md, "## Headline\n");
    for h in &headline {
        let _ = writeln!(md, "- {h}");
    }
    let _ = writeln!(md, "\n## Results");
    md.push_str(&table);
    let path = if quick {
        root.join("target/BENCHMARKS-quick.md")
    } else {
        root.join("BENCHMARKS.md")
    };
    std::fs::write(&path, md)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
