//! berth's project automation, run as `cargo xtask <command>`.
//!
//! - `ci`: everything CI checks, in order: formatting, clippy, tests, docs,
//!   the dependency rules between layers, and a fuzz smoke run.
//! - `fuzz [--seconds N] [TARGET...]`: runs cargo-fuzz targets.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

mod bench;
mod demo;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        print_help();
        bail!("no command given");
    };
    match cmd.as_str() {
        "ci" => ci(rest),
        "fuzz" => fuzz_command(rest),
        "demo" => demo::run(&root()),
        "bench" => bench::run(&root(), rest.iter().any(|a| a == "--quick")),
        "registry" => registry(rest),
        "help" | "--help" | "-h" => {
            print_help();
            Ok(())
        }
        other => {
            print_help();
            bail!("unknown command `{other}`")
        }
    }
}

fn print_help() {
    eprintln!(
        "usage: cargo xtask <command>\n\n\
         commands:\n  \
         demo                        start a registry, push a sample, pull/inspect/copy it with berth\n  \
         ci                          fmt, clippy, tests, docs, layer checks, fuzz smoke\n  \
         fuzz [--seconds N] [T...]   run cargo-fuzz targets (all by default, 60 s each)\n  \
         bench [--quick]             pull/push/copy/resolve vs skopeo, oci-client and a curl floor; writes BENCHMARKS.md\n  \
         registry start [--htpasswd USER:PASS]   run the real registry on 127.0.0.1 until Ctrl-C\n"
    );
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Runs a command in the workspace root, failing with its name when it fails.
fn run(step: &str, cmd: &mut Command) -> Result<()> {
    let started = Instant::now();
    eprintln!("\n==> {step}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("could not start `{step}`"))?;
    eprintln!(
        "<== {step}: {status} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        bail!("step failed: {step}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ci(args: &[String]) -> Result<()> {
    let fuzz_seconds = parse_seconds(args)?.unwrap_or(5);
    let started = Instant::now();
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--check"]),
    )?;
    run(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run("cargo test", cargo().args(["test", "--workspace"]))?;
    run(
        "cargo doc",
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-Dwarnings"),
    )?;
    check_unsafe()?;
    check_layers()?;
    fuzz(&[], fuzz_seconds)?;
    eprintln!(
        "\nci: all steps passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cargo xtask registry start`: the real registry on 127.0.0.1 with a
/// free port and a temporary storage directory, as the tests start it,
/// until interrupted (stopping it removes the storage).
fn registry(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("start") => {}
        Some("stop") => {
            eprintln!(
                "a registry started with `cargo xtask registry start` stops with Ctrl-C (it runs in the foreground)"
            );
            return Ok(());
        }
        _ => bail!("usage: cargo xtask registry start [--htpasswd USER:PASS]"),
    }
    let auth = match args.iter().position(|a| a == "--htpasswd") {
        Some(i) => {
            let pair = args.get(i + 1).context("--htpasswd needs USER:PASS")?;
            let (user, password) = pair.split_once(':').context("--htpasswd needs USER:PASS")?;
            berth_testkit::Auth::Htpasswd {
                user: user.into(),
                password: password.into(),
            }
        }
        None => berth_testkit::Auth::None,
    };
    let registry = berth_testkit::Registry::start(auth).context("starting the registry")?;
    println!("{}", registry.host());
    eprintln!(
        "registry at http://{} (storage {}); Ctrl-C stops it",
        registry.host(),
        registry.storage().display()
    );
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn parse_seconds(args: &[String]) -> Result<Option<u64>> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seconds" {
            let v = it.next().context("--seconds needs a number")?;
            return Ok(Some(v.parse().context("--seconds needs a whole number")?));
        }
    }
    Ok(None)
}

/// Every `unsafe` block and `unsafe impl` in the crates' sources must carry a
/// `// SAFETY:` comment on one of the three lines above it.
fn check_unsafe() -> Result<()> {
    eprintln!("\n==> unsafe audit");
    let mut bad = Vec::new();
    let mut files = Vec::new();
    collect_rs(&root().join("crates"), &mut files)?;
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            // What needs a reason: an `unsafe` block and an `unsafe impl`.
            // An `unsafe fn` declares a contract (its `# Safety` doc); the
            // blocks that call it carry the reason.
            let words: Vec<&str> = code
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .filter(|w| !w.is_empty())
                .collect();
            let needs_reason = words.windows(2).any(|w| w[0] == "unsafe" && w[1] == "impl")
                || code.contains("unsafe {")
                || code.trim_end().ends_with("unsafe");
            if !needs_reason {
                continue;
            }
            let explained = lines[i.saturating_sub(3)..=i]
                .iter()
                .any(|l| l.contains("SAFETY:"));
            if !explained {
                bad.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    if !bad.is_empty() {
        bail!(
            "`unsafe` without a `// SAFETY:` comment:\n{}",
            bad.join("\n")
        );
    }
    eprintln!("<== unsafe audit: {} files, all explained", files.len());
    Ok(())
}

/// The protocol core stays free of I/O: no runtime, HTTP stack or socket
/// crate in its dependency tree, and no sockets, files, environment, clock
/// or sleeping in its source (tests included).
fn check_layers() -> Result<()> {
    eprintln!("\n==> layer rules");
    let out = cargo()
        .current_dir(root())
        .args([
            "tree",
            "-p",
            "berth-protocol",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .context("could not run cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    const FORBIDDEN_CRATES: &[&str] = &[
        "tokio",
        "hyper",
        "hyper-util",
        "mio",
        "socket2",
        "reqwest",
        "async-std",
        "smol",
        "rustls",
    ];
    let bad: Vec<&str> = tree
        .lines()
        .filter(|l| {
            FORBIDDEN_CRATES
                .iter()
                .any(|c| l.split_whitespace().next() == Some(*c))
        })
        .collect();
    if !bad.is_empty() {
        bail!("berth-protocol depends on I/O crates: {}", bad.join(", "));
    }
    const FORBIDDEN_CODE: &[&str] = &[
        "std::net::TcpStream",
        "std::net::TcpListener",
        "std::net::UdpSocket",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "std::fs",
        "std::env",
        "Instant::now",
        "SystemTime::now",
        "thread::sleep",
        "tokio::",
    ];
    let mut files = Vec::new();
    collect_rs(&root().join("crates/berth-protocol/src"), &mut files)?;
    let mut found = Vec::new();
    for file in &files {
        for (i, line) in std::fs::read_to_string(file)?.lines().enumerate() {
            if let Some(p) = FORBIDDEN_CODE.iter().find(|p| line.contains(*p)) {
                found.push(format!("{}:{}: {p}", file.display(), i + 1));
            }
        }
    }
    if !found.is_empty() {
        bail!(
            "berth-protocol's source does I/O or reads the clock:\n{}",
            found.join("\n")
        );
    }
    eprintln!(
        "<== layer rules: berth-protocol has {} crates in its tree, none of them I/O; {} source files clean",
        tree.lines().count(),
        files.len()
    );
    Ok(())
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn fuzz_command(args: &[String]) -> Result<()> {
    let seconds = parse_seconds(args)?.unwrap_or(60);
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seconds" {
            it.next();
        } else {
            targets.push(a.clone());
        }
    }
    fuzz(&targets, seconds)
}

/// The cargo-fuzz targets declared in `fuzz/Cargo.toml`.
fn fuzz_targets() -> Result<Vec<String>> {
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml"))?;
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(v) = line.strip_prefix("name") {
            let v = v
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            names.push(v.to_owned());
        }
    }
    Ok(names)
}

/// Runs each target for `seconds`, starting from its seed corpus in
/// `fuzz/seeds/<target>/` when there is one. A crash fails the run and
/// leaves the input in `fuzz/artifacts/<target>/`.
fn fuzz(only: &[String], seconds: u64) -> Result<()> {
    let have_cargo_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_cargo_fuzz {
        bail!("cargo-fuzz is not installed: run `cargo install cargo-fuzz`");
    }
    let targets = fuzz_targets()?;
    for t in only {
        if !targets.contains(t) {
            bail!("no fuzz target `{t}` (have: {})", targets.join(", "));
        }
    }
    let fuzz_dir = root().join("fuzz");
    for target in targets
        .iter()
        .filter(|t| only.is_empty() || only.contains(t))
    {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let mut cmd = cargo();
        cmd.current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", target.as_str()])
            .arg(&corpus);
        let seeds = fuzz_dir.join("seeds").join(target);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
        ]);
        let step = format!("fuzz {target} for {seconds} s");
        eprintln!("\n==> {step}");
        let status = cmd
            .status()
            .with_context(|| format!("could not start `{step}`"))?;
        if !status.success() {
            bail!("fuzz target `{target}` failed: see fuzz/artifacts/{target}/");
        }
    }
    Ok(())
}
