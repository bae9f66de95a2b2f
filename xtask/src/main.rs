//! berth's project automation, run as `cargo xtask <command>`.
//!
//! - `ci`: everything CI checks, in order: formatting, clippy, tests, docs,
//!   the dependency rules between layers, and a fuzz smoke run.
//! - `fuzz [--seconds N] [TARGET...]`: runs cargo-fuzz targets; a run of
//!   every target records its time and executions in `fuzz/last-run.json`.
//! - `reliability [--seconds N] [--no-fuzz]`: a full fuzz run, then the
//!   hostile-registry suite with `BERTH_WRITE_RELIABILITY=1`, which writes
//!   `RELIABILITY.md` from its own cases and `fuzz/last-run.json`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

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
        "reliability" => reliability(rest),
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
         fuzz [--seconds N] [T...]   run cargo-fuzz targets (all by default, 60 s each; a run of all records fuzz/last-run.json)\n  \
         reliability [--seconds N] [--no-fuzz]   full fuzz run, then the hostile-registry suite; writes RELIABILITY.md\n  \
         bench [--quick] [--parsers-only]  parsers (divan) and pull/push/copy/resolve vs skopeo, oci-client, a curl floor; writes BENCHMARKS.md\n  \
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
    // The hostile-registry suite (crates/berth/tests/hostile.rs) is part of
    // the workspace's tests: it asserts here, and writes RELIABILITY.md
    // only under `cargo xtask reliability`.
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
        for (line, code) in unexplained_unsafe(&text) {
            bad.push(format!("{}:{line}: {code}", file.display()));
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

/// The `unsafe` blocks and `unsafe impl`s in `text` with no `SAFETY:`
/// comment on their line or the three above: (1-based line, trimmed line).
fn unexplained_unsafe(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut bad = Vec::new();
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
            bad.push((i + 1, line.trim().to_owned()));
        }
    }
    bad
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
    let runs = fuzz(&targets, seconds)?;
    if targets.is_empty() {
        record_fuzz_run(&runs, seconds)?;
    }
    Ok(())
}

/// `cargo xtask reliability`: a full fuzz run (unless `--no-fuzz`), then
/// the hostile-registry suite, which writes `RELIABILITY.md`.
fn reliability(args: &[String]) -> Result<()> {
    if !args.iter().any(|a| a == "--no-fuzz") {
        let seconds = parse_seconds(args)?.unwrap_or(60);
        let runs = fuzz(&[], seconds)?;
        record_fuzz_run(&runs, seconds)?;
    }
    run(
        "hostile-registry suite (writes RELIABILITY.md)",
        cargo()
            .args(["test", "-p", "berth", "--test", "hostile"])
            .env("BERTH_WRITE_RELIABILITY", "1"),
    )?;
    let report = root().join("RELIABILITY.md");
    let text = std::fs::read_to_string(&report)
        .with_context(|| format!("the suite did not write {}", report.display()))?;
    if !text.contains("## Fuzzing") {
        bail!("{} has no fuzzing section", report.display());
    }
    eprintln!("wrote {}", report.display());
    Ok(())
}

/// What one fuzz target's run did, from libFuzzer's final statistics.
#[derive(Debug, Clone, Default, PartialEq)]
struct FuzzRun {
    target: String,
    /// Seconds fuzzed (libFuzzer's `Done N runs in S second(s)`).
    seconds: u64,
    /// Inputs executed (`stat::number_of_executed_units`).
    execs: u64,
    /// Executions per second (`stat::average_exec_per_sec`).
    execs_per_second: u64,
    /// Inputs the run added to the corpus (`stat::new_units_added`).
    new_units: u64,
    /// Peak memory (`stat::peak_rss_mb`).
    peak_rss_mb: u64,
    /// Files in the corpus afterwards.
    corpus: usize,
}

impl FuzzRun {
    /// Reads one line of libFuzzer's output into the statistics.
    fn read_line(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("stat::") {
            let Some((key, value)) = rest.split_once(':') else {
                return;
            };
            let Ok(value) = value.trim().parse::<u64>() else {
                return;
            };
            match key.trim() {
                "number_of_executed_units" => self.execs = value,
                "average_exec_per_sec" => self.execs_per_second = value,
                "new_units_added" => self.new_units = value,
                "peak_rss_mb" => self.peak_rss_mb = value,
                _ => {}
            }
        } else if let Some(rest) = line.strip_prefix("Done ") {
            // `Done 123456 runs in 61 second(s)`
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let [runs, "runs", "in", secs, ..] = words.as_slice() {
                if let Ok(n) = runs.parse() {
                    self.execs = self.execs.max(n);
                }
                if let Ok(s) = secs.parse() {
                    self.seconds = s;
                }
            }
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target,
            "seconds": self.seconds,
            "execs": self.execs,
            "execs_per_second": self.execs_per_second,
            "new_units": self.new_units,
            "peak_rss_mb": self.peak_rss_mb,
            "corpus": self.corpus,
        })
    }
}

/// Writes `fuzz/last-run.json`: when, how long per target, and what each
/// target did. `RELIABILITY.md` quotes it.
fn record_fuzz_run(runs: &[FuzzRun], seconds: u64) -> Result<()> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let record = serde_json::json!({
        "finished_utc": utc_date_time(now),
        "seconds_per_target": seconds,
        "crashes": 0,
        "targets": runs.iter().map(FuzzRun::to_json).collect::<Vec<_>>(),
    });
    let path = root().join("fuzz/last-run.json");
    std::fs::write(&path, serde_json::to_string_pretty(&record)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("recorded the run in {}", path.display());
    Ok(())
}

/// `YYYY-MM-DD HH:MM` (UTC) for seconds since the Unix epoch.
fn utc_date_time(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        secs / 3600,
        (secs % 3600) / 60
    )
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
/// leaves the input in `fuzz/artifacts/<target>/`. Returns what each
/// target did (libFuzzer's output is shown as it comes, and read).
fn fuzz(only: &[String], seconds: u64) -> Result<Vec<FuzzRun>> {
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
    let mut runs = Vec::new();
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
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{step}`"))?;
        let mut stats = FuzzRun {
            target: target.clone(),
            seconds,
            ..FuzzRun::default()
        };
        if let Some(stderr) = child.stderr.take() {
            let mut reader = std::io::BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        eprint!("{text}");
                        stats.read_line(&text);
                    }
                }
            }
        }
        let status = child
            .wait()
            .with_context(|| format!("waiting for `{step}`"))?;
        if !status.success() {
            bail!("fuzz target `{target}` failed: see fuzz/artifacts/{target}/");
        }
        stats.corpus = std::fs::read_dir(&corpus).map_or(0, |d| d.flatten().count());
        eprintln!(
            "<== {step}: {} executions in {} s ({}/s), corpus {}",
            stats.execs, stats.seconds, stats.execs_per_second, stats.corpus
        );
        runs.push(stats);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsafe_block_without_a_reason_is_found() {
        let text = "fn f(p: *const u8) -> u8 {\n    unsafe { *p }\n}\n";
        assert_eq!(unexplained_unsafe(text), [(2, "unsafe { *p }".to_owned())]);
    }

    #[test]
    fn an_unsafe_block_or_impl_with_a_safety_comment_passes() {
        let text = "fn f(p: *const u8) -> u8 {\n    // SAFETY: the caller passes a valid pointer.\n    unsafe { *p }\n}\n\n// SAFETY: no interior mutability.\nunsafe impl Sync for S {}\n";
        assert!(unexplained_unsafe(text).is_empty());
    }

    #[test]
    fn a_reason_too_far_above_does_not_count() {
        let text = "// SAFETY: too far away.\n\n\n\nlet x = unsafe {\n    *p\n};\n";
        assert_eq!(
            unexplained_unsafe(text),
            [(5, "let x = unsafe {".to_owned())]
        );
    }

    #[test]
    fn unsafe_impls_and_trailing_unsafe_need_a_reason() {
        let text = "unsafe impl Send for S {}\nlet y =\n    unsafe\n    { g() };\n";
        assert_eq!(
            unexplained_unsafe(text),
            [
                (1, "unsafe impl Send for S {}".to_owned()),
                (3, "unsafe".to_owned())
            ]
        );
    }

    #[test]
    fn comments_and_unsafe_fn_declarations_are_not_blocks() {
        let text = "// an unsafe { block } in a comment\n/// # Safety\n/// p is valid.\npub unsafe fn g(p: *const u8) {}\n";
        assert!(unexplained_unsafe(text).is_empty());
    }

    #[test]
    fn the_crates_have_no_unexplained_unsafe() {
        let mut files = Vec::new();
        collect_rs(&root().join("crates"), &mut files).expect("the crates' sources");
        assert!(!files.is_empty());
        for file in &files {
            let text = std::fs::read_to_string(file).expect("a source file");
            assert_eq!(
                unexplained_unsafe(&text),
                [],
                "{}: unsafe without a SAFETY: comment",
                file.display()
            );
        }
    }

    #[test]
    fn libfuzzer_final_stats_are_read() {
        let mut run = FuzzRun::default();
        for line in [
            "#524288\tpulse  cov: 1234 ft: 5678 corp: 90/1Mb exec/s: 8738 rss: 60Mb",
            "Done 3521043 runs in 61 second(s)",
            "stat::number_of_executed_units: 3521043",
            "stat::average_exec_per_sec:     57722",
            "stat::new_units_added:          131",
            "stat::slowest_unit_time_sec:    0",
            "stat::peak_rss_mb:              74",
        ] {
            run.read_line(line);
        }
        assert_eq!(
            (
                run.seconds,
                run.execs,
                run.execs_per_second,
                run.new_units,
                run.peak_rss_mb
            ),
            (61, 3_521_043, 57_722, 131, 74)
        );
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(utc_date_time(0), "1970-01-01 00:00");
        assert_eq!(utc_date_time(951_782_400 + 3_660), "2000-02-29 01:01");
        assert_eq!(utc_date_time(1_767_225_600), "2026-01-01 00:00");
    }
}
