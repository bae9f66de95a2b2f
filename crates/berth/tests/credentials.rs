//! Credential files and helpers, found as Docker and podman find them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth::protocol::CredentialProvider;
use berth::protocol::auth::Credentials;
use berth::{CredentialFiles, DockerCredentials};

fn basic(c: Option<Credentials>) -> Option<(String, String)> {
    match c? {
        Credentials::Basic { username, password } => Some((username, password.expose().to_owned())),
        other => panic!("not basic: {other:?}"),
    }
}

fn helper(dir: &Path, name: &str, script: &str) {
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn first_file_that_has_the_registry_wins_and_helpers_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let auth_json = tmp.path().join("auth.json");
    let config_json = tmp.path().join("config.json");
    // podman's file: quay.io only ("dTE6cDE=" is "u1:p1").
    std::fs::write(&auth_json, r#"{"auths":{"quay.io":{"auth":"dTE6cDE="}}}"#).expect("write");
    // Docker's file: Hub under its historical key, a helper for ghcr.io.
    std::fs::write(
        &config_json,
        r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"},"quay.io":{"auth":"bG9zZXI6eA=="}},
            "credHelpers":{"ghcr.io":"gh"}}"#,
    )
    .expect("write");
    helper(
        tmp.path(),
        "gh",
        r#"read server; [ "$1" = get ] && [ "$server" = ghcr.io ] && echo '{"Username":"gh-user","Secret":"gh-token"}'"#,
    );
    helper(
        tmp.path(),
        "store",
        r#"read server; echo "credentials not found in native keychain"; exit 1"#,
    );
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec![auth_json, config_json],
    })
    .helper_dir(tmp.path());

    assert_eq!(
        basic(creds.credentials("quay.io")),
        Some(("u1".into(), "p1".into())),
        "auth.json comes first"
    );
    assert_eq!(
        basic(creds.credentials("ghcr.io")),
        Some(("gh-user".into(), "gh-token".into())),
        "credHelpers"
    );
    assert_eq!(
        basic(creds.credentials("registry-1.docker.io")),
        Some(("hub".into(), "hubpw".into())),
        "Hub aliases"
    );
    assert_eq!(creds.credentials("other.example"), None);
    assert!(creds.errors().is_empty(), "{:?}", creds.errors());
}

#[test]
fn a_creds_store_answers_for_every_registry_as_docker_does() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config_json = tmp.path().join("config.json");
    // With a store, Docker ignores the inline entry (kept as a marker).
    std::fs::write(
        &config_json,
        r#"{"auths":{"r.example":{"auth":"aWdub3JlZDp4"}},"credsStore":"store"}"#,
    )
    .expect("write");
    helper(
        tmp.path(),
        "store",
        r#"read server; case "$server" in r.example) echo '{"Username":"<token>","Secret":"refresh"}';; *) echo "credentials not found in native keychain"; exit 1;; esac"#,
    );
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec![config_json],
    })
    .helper_dir(tmp.path());
    assert!(
        matches!(creds.credentials("r.example"), Some(Credentials::IdentityToken(t)) if t.expose() == "refresh"),
        "the store's answer, and <token> means an identity token"
    );
    assert_eq!(
        creds.credentials("other.example"),
        None,
        "not found in the store: anonymous, no error"
    );
    assert!(creds.errors().is_empty(), "{:?}", creds.errors());
}

#[test]
fn explicit_credentials_come_first_and_missing_files_hold_nothing() {
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec!["/nonexistent/config.json".into()],
    })
    .with(
        "docker.io",
        Credentials::Basic {
            username: "me".into(),
            password: berth::protocol::auth::Secret::new("pw"),
        },
    );
    assert_eq!(
        basic(creds.credentials("index.docker.io")),
        Some(("me".into(), "pw".into()))
    );
    assert_eq!(creds.credentials("quay.io"), None);
    assert!(creds.errors().is_empty());
}

#[test]
fn a_failing_helper_is_reported_not_trusted() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config_json = tmp.path().join("config.json");
    std::fs::write(&config_json, r#"{"credHelpers":{"r.example":"broken"}}"#).expect("write");
    helper(tmp.path(), "broken", "echo boom >&2; exit 3");
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec![config_json],
    })
    .helper_dir(tmp.path());
    assert_eq!(creds.credentials("r.example"), None);
    let errors = creds.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("docker-credential-broken") && e.contains("boom")),
        "{errors:?}"
    );
}

/// A helper with nothing for the registry is not the end of the search:
/// the next file may have it.
#[test]
fn a_helper_that_has_nothing_leaves_the_search_to_the_next_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let auth_json = tmp.path().join("auth.json");
    let config_json = tmp.path().join("config.json");
    std::fs::write(&auth_json, r#"{"credsStore":"empty"}"#).expect("write");
    std::fs::write(&config_json, r#"{"auths":{"quay.io":{"auth":"dTE6cDE="}}}"#).expect("write");
    helper(
        tmp.path(),
        "empty",
        r#"read server; echo "credentials not found in native keychain"; exit 1"#,
    );
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec![auth_json, config_json],
    })
    .helper_dir(tmp.path());
    assert_eq!(
        basic(creds.credentials("quay.io")),
        Some(("u1".into(), "p1".into()))
    );
    assert!(creds.errors().is_empty(), "{:?}", creds.errors());
}

/// A file that cannot be read as a credential file, or a helper that hangs,
/// fails the lookup with an error that names it, rather than letting the
/// client go on anonymously and be told only "authentication required".
#[test]
fn a_broken_file_or_a_hung_helper_is_an_error_of_the_lookup() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broken = tmp.path().join("auth.json");
    let config_json = tmp.path().join("config.json");
    std::fs::write(&broken, r#"{"auths":{"quay.io":"#).expect("write");
    std::fs::write(&config_json, r#"{"auths":{"quay.io":{"auth":"dTE6cDE="}}}"#).expect("write");
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec![broken.clone(), config_json.clone()],
    });
    let now = std::time::SystemTime::now();
    let margin = std::time::Duration::ZERO;
    let e = creds
        .credentials_at("quay.io", now, margin)
        .expect_err("a broken file");
    assert!(e.to_string().contains(&broken.display().to_string()), "{e}");

    let hung = tmp.path().join("hung.json");
    std::fs::write(&hung, r#"{"credHelpers":{"quay.io":"hung"}}"#).expect("write");
    helper(tmp.path(), "hung", "exec sleep 30");
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec![hung, config_json],
    })
    .helper_dir(tmp.path())
    .helper_timeout(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let e = creds
        .credentials_at("quay.io", now, margin)
        .expect_err("a hung helper");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let shown = e.to_string();
    assert!(
        shown.contains("docker-credential-hung") && shown.contains("did not finish"),
        "{shown}"
    );
    // Asked again, the answer is the one already found.
    let again = creds
        .credentials_at("quay.io", now, margin)
        .expect_err("still an error");
    assert_eq!(again.to_string(), shown);
    assert_eq!(creds.errors().len(), 1, "{:?}", creds.errors());
}

#[test]
fn what_login_writes_is_what_lookup_reads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("config.json");
    let mut config = berth::protocol::auth::DockerConfig::new();
    let key = berth::protocol::auth::docker_auth_key("127.0.0.1:5000");
    config.set_credentials(
        &key,
        &Credentials::Basic {
            username: "bob".into(),
            password: berth::protocol::auth::Secret::new("pw"),
        },
    );
    std::fs::write(&path, config.to_json()).expect("write");
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec![path.clone()],
    });
    assert_eq!(
        basic(creds.credentials("127.0.0.1:5000")),
        Some(("bob".into(), "pw".into())),
        "{}\n{:?}",
        std::fs::read_to_string(&path).expect("read"),
        creds.errors()
    );
}
