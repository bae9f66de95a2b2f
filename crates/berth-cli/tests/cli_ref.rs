//! `berth ref`, run as a user runs it.

use std::process::Command;

fn berth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("berth runs")
}

#[test]
fn prints_the_normalised_form() {
    let out = berth(&["ref", "ubuntu"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "docker.io/library/ubuntu:latest\n"
    );
    assert!(out.stderr.is_empty());

    let out = berth(&[
        "ref",
        "ghcr.io/org/app@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ghcr.io/org/app@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n",
        "a digest reference gets no default tag"
    );
}

#[test]
fn json_gives_the_parts() {
    for args in [
        &["ref", "--json", "localhost:5000/team/app:v2"][..],
        &["--json", "ref", "localhost:5000/team/app:v2"],
    ] {
        let out = berth(args);
        assert!(out.status.success(), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        assert_eq!(v["reference"], "localhost:5000/team/app:v2");
        assert_eq!(v["domain"], "localhost:5000");
        assert_eq!(v["path"], "team/app");
        assert_eq!(v["tag"], "v2");
        assert_eq!(v["digest"], serde_json::Value::Null);
        assert_eq!(v["familiar"], "localhost:5000/team/app:v2");
    }
    let out = berth(&["ref", "--json", "redis"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["familiar"], "redis:latest");
}

#[test]
fn an_invalid_reference_is_a_usage_error_naming_rule_and_byte() {
    let out = berth(&["ref", "docker.io/Library/ubuntu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("repository path must be lowercase at byte 10"),
        "{err}"
    );
}
