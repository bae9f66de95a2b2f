//! Content of unknown type by digest, against the real registry: `berth
//! manifest` of a blob's digest reads the blob store after the manifest
//! store says 404, `berth blob` of a manifest's digest reads the manifest
//! store when the blob store lacks it, and `berth digest` resolves either.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

fn berth(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("berth runs")
}

fn ok(out: &Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.clone()
}

fn blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    std::fs::read(dir.join("blobs/sha256").join(hex)).expect("blob in the layout")
}

#[test]
fn manifest_blob_and_digest_work_on_content_of_either_store() {
    let registry = Registry::start(Auth::None).expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path();
    let src = home.join("src");
    let top =
        write_layout(&src, "v1", &[TestImage::new("linux/amd64", &[3000], 4)]).expect("layout");
    let image = format!("{host}/fallback/img:v1");
    ok(&berth(
        home,
        &["push", src.to_str().expect("utf-8"), &image],
    ));

    let manifest_digest = top.digest.to_string();
    let manifest_bytes = blob(&src, &manifest_digest);
    let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).expect("json");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_owned();
    let config_bytes = blob(&src, &config_digest);

    // A config is no manifest: `manifest` finds it in the blob store.
    let by_config = format!("{host}/fallback/img@{config_digest}");
    assert_eq!(ok(&berth(home, &["manifest", &by_config])), config_bytes);
    // `digest` resolves it the same way.
    assert_eq!(
        String::from_utf8(ok(&berth(home, &["digest", &by_config]))).expect("utf-8"),
        format!("{config_digest}\n")
    );
    // A manifest by digest through `blob`: from whichever store has it.
    let by_manifest = format!("{host}/fallback/img@{manifest_digest}");
    assert_eq!(ok(&berth(home, &["blob", &by_manifest])), manifest_bytes);
    assert_eq!(
        ok(&berth(home, &["manifest", &by_manifest])),
        manifest_bytes
    );

    // In neither store: not found, exit code 3, one line naming it.
    let missing = format!("{host}/fallback/img@sha256:{}", "0".repeat(64));
    for cmd in ["manifest", "blob", "digest"] {
        let out = berth(home, &[cmd, &missing]);
        assert_eq!(out.status.code(), Some(3), "{cmd}: {out:?}");
        assert!(out.stdout.is_empty(), "{cmd}: nothing on stdout");
    }
}
