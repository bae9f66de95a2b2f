//! `cargo xtask demo`: berth's main job, end to end, on this machine. It
//! starts berth's own registry (`berth registry serve` on 127.0.0.1:0),
//! pushes a generated multi-platform sample image to it, then runs
//! `berth pull` (with progress), `berth inspect` and `berth copy` against
//! it, showing what each printed.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use berth_testkit::image::{TestImage, write_layout};

fn step(berth: &Path, title: &str, args: &[&str]) -> Result<()> {
    eprintln!("\n$ berth {}", args.join(" "));
    let _ = title;
    let status = Command::new(berth)
        .args(args)
        .status()
        .with_context(|| format!("running berth {}", args[0]))?;
    if !status.success() {
        bail!("`berth {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The registry process, killed when dropped.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn run(root: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("==> building berth");
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", "berth-cli"])
        .status()?;
    if !status.success() {
        bail!("building berth failed");
    }
    let berth = root.join("target/release/berth");
    let work = tempfile::Builder::new().prefix("berth-demo-").tempdir()?;
    // berth's own registry on a free port; it prints its address first.
    let mut child = Command::new(&berth)
        .args(["registry", "serve", "--address", "127.0.0.1:0", "--storage"])
        .arg(work.path().join("registry"))
        .stdout(Stdio::piped())
        .spawn()
        .context("starting `berth registry serve`")?;
    let stdout = child.stdout.take().context("the registry's stdout")?;
    let server = Serving(child);
    let mut host = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut host)
        .context("reading the registry's address")?;
    let host = host.trim().to_owned();
    if host.is_empty() {
        bail!("`berth registry serve` printed no address");
    }
    eprintln!(
        "==> berth's registry is serving at http://{host} (storage in a temporary directory)"
    );

    let sample = work.path().join("sample");
    let images = [
        TestImage::new("linux/amd64", &[24 << 20, 8 << 20, 1 << 20], 1),
        TestImage::new("linux/arm64/v8", &[20 << 20, 8 << 20], 2),
        TestImage::new("linux/arm/v7", &[16 << 20], 3),
    ];
    write_layout(&sample, "1.0", &images)?;
    let reference = format!("{host}/demo/sample:1.0");
    let insecure = ["--insecure-registry", host.as_str()];
    eprintln!("==> pushing a three-platform sample image to {reference}");
    step(
        &berth,
        "push",
        &[
            &["push", sample.to_str().unwrap_or("sample"), &reference][..],
            &insecure[..],
        ]
        .concat(),
    )?;

    let pulled = work.path().join("pulled");
    step(
        &berth,
        "pull",
        &[
            &["pull", &reference, pulled.to_str().unwrap_or("pulled")][..],
            &insecure[..],
        ]
        .concat(),
    )?;
    step(
        &berth,
        "inspect",
        &[&["inspect", &reference][..], &insecure[..]].concat(),
    )?;
    let copy = format!("{host}/demo/copy:1.0");
    step(
        &berth,
        "copy",
        &[
            &["copy", "--all-platforms", &reference, &copy][..],
            &insecure[..],
        ]
        .concat(),
    )?;
    step(
        &berth,
        "tags",
        &[&["tags", &copy][..], &insecure[..]].concat(),
    )?;
    eprintln!(
        "\n==> done: {} is an OCI image layout holding the host platform's image; the registry and its storage are removed now",
        pulled.display()
    );
    drop(server);
    Ok(())
}
