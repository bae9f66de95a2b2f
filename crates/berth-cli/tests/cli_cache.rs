//! The `berth` binary's blob-info cache against the real registry: on by
//! default in `$XDG_CACHE_HOME/berth`, off with `--no-cache`, and a corrupt
//! cache file is a warning on stderr, not a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

/// Runs `berth` with a private home and cache directory, no terminal.
fn berth(home: &Path, cache_home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("XDG_CACHE_HOME", cache_home)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("berth runs")
}

fn report(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn counts(report: &serde_json::Value) -> (u64, u64) {
    (
        report["blobs_mounted"].as_u64().expect("mounted"),
        report["blobs_transferred"].as_u64().expect("transferred"),
    )
}

fn uploads_dir(registry: &Registry, repository: &str) -> PathBuf {
    registry
        .storage()
        .join("docker/registry/v2/repositories")
        .join(repository)
        .join("_uploads")
}

#[test]
fn the_cache_is_on_by_default_and_off_with_no_cache() {
    let registry = Registry::start(Auth::None).expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let cache_home = tmp.path().join("xdg-cache");
    std::fs::create_dir_all(&home).expect("home");
    let src = tmp.path().join("src");
    write_layout(
        &src,
        "v1",
        &[TestImage::new("linux/amd64", &[20_000, 500], 71)],
    )
    .expect("layout");
    let src = src.to_str().expect("path");
    let cache_file = cache_home.join("berth").join("blob-info.json");

    let first = report(&berth(
        &home,
        &cache_home,
        &["push", "--json", src, &format!("{host}/one:v1")],
    ));
    assert_eq!(counts(&first), (0, 3));
    assert!(
        cache_file.is_file(),
        "the cache lives in $XDG_CACHE_HOME/berth"
    );

    // --no-cache: neither read (an upload) nor written.
    let before = std::fs::read(&cache_file).expect("cache");
    let off = report(&berth(
        &home,
        &cache_home,
        &[
            "push",
            "--no-cache",
            "--json",
            src,
            &format!("{host}/off:v1"),
        ],
    ));
    assert_eq!(counts(&off), (0, 3));
    assert!(uploads_dir(&registry, "off").is_dir());
    assert_eq!(std::fs::read(&cache_file).expect("cache"), before);

    // By default: mounted from `one`, no upload session in `two`.
    let second = report(&berth(
        &home,
        &cache_home,
        &["push", "--json", src, &format!("{host}/two:v1")],
    ));
    assert_eq!(counts(&second), (3, 0));
    assert!(!uploads_dir(&registry, "two").exists());

    // A corrupt cache file: a warning, the push goes on, the file mended.
    std::fs::write(&cache_file, b"\x00 not a cache").expect("corrupt");
    let out = berth(
        &home,
        &cache_home,
        &["push", src, &format!("{host}/three:v1")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning:") && stderr.contains("blob-info.json"),
        "{stderr}"
    );
    let mended: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cache_file).expect("cache")).expect("valid");
    assert_eq!(mended["format"], "berth-blob-info-cache");
}
