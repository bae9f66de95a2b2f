//! `berth --token-command REGISTRY=COMMAND` against the real registry:
//! credentials from a command's output, in Google's convention.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

/// Runs `berth` with a private, empty Docker config and no terminal.
fn berth(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("berth runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_token_command_logs_in_and_a_failing_one_exits_4_naming_it() {
    let registry = Registry::start(Auth::Htpasswd {
        user: "oauth2accesstoken".into(),
        password: "ya29.cli".into(),
    })
    .expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let src = tmp.path().join("src");
    write_layout(&src, "v", &[TestImage::new("linux/amd64", &[1000], 41)]).expect("layout");
    let reference = format!("{host}/gcr/app:v");

    let good = format!("{host}=printf 'ya29.cli\\n600\\n'");
    let out = berth(
        &home,
        &[
            "push",
            src.to_str().expect("path"),
            &reference,
            "--token-command",
            &good,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = berth(&home, &["--token-command", &good, "tags", &reference]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");

    let bad = format!("{host}=echo 'token expired, run login' >&2; exit 7");
    let out = berth(&home, &["tags", &reference, "--token-command", &bad]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unauthorized")
            && err.contains("token expired, run login")
            && err.contains("exit 7")
            && err.contains(&host),
        "{err}"
    );

    let out = berth(
        &home,
        &["tags", &reference, "--token-command", "no-equals-sign"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
