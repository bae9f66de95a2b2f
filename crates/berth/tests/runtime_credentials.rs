//! Credentials against the real registry that are found under another
//! spelling of the registry (host aliases), or made at run time by a
//! command (token sources, in Google's `oauth2accesstoken` convention).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth::manifest::Platform;
use berth::protocol::auth::Credentials;
use berth::protocol::{CredentialProvider, TokenSourceCredentials};
use berth::reference::Reference;
use berth::{
    Client, CommandTokenSource, CredentialFiles, DockerCredentials, ErrorKind, Layout, PullOptions,
};
use berth_hyper::HyperTransport;
use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

fn r(s: &str) -> Reference {
    Reference::parse_normalized(s).expect("reference")
}

fn client_with(creds: Arc<dyn CredentialProvider>) -> Client<HyperTransport> {
    Client::builder()
        .credentials(creds)
        .build(HyperTransport::builder().build().expect("transport"))
}

fn config_with_auth(dir: &Path, key: &str, user: &str, password: &str) -> PathBuf {
    let header = berth_testkit::proxy::basic_authorization(user, password);
    let auth = header.strip_prefix("Basic ").expect("a Basic value");
    let path = dir.join(format!(
        "config-{}.json",
        dir.read_dir().expect("dir").count()
    ));
    std::fs::write(
        &path,
        serde_json::json!({ "auths": { key: { "auth": auth } } }).to_string(),
    )
    .expect("write config");
    path
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Pushes a small image to `reference` and pulls it back with `client`.
async fn push_and_pull(client: &Client<HyperTransport>, reference: &Reference, tmp: &Path) {
    let src = tmp.join("src");
    if !src.exists() {
        write_layout(&src, "v1", &[TestImage::new("linux/amd64", &[5_000], 31)]).expect("layout");
    }
    let pushed = client.push(&src, reference).await.expect("push");
    let out = tmp.join(format!("out-{}", reference.path().replace('/', "-")));
    let pulled = client
        .pull(reference, &out, &PullOptions::platform(Platform::host()))
        .await
        .expect("pull");
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(
        Layout::open(&out)
            .expect("layout")
            .verify()
            .expect("verifies"),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_stored_under_an_alias_authenticate_against_the_real_registry() {
    let registry = Registry::start(Auth::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    })
    .expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    // Keys as older `docker login` wrote them (URLs with a scheme and an
    // API path), while references name the registry as `host:port`.
    for (i, key) in [
        format!("http://{host}/v2/"),
        format!("https://{host}"),
        format!("HTTP://{host}/v1/"),
    ]
    .into_iter()
    .enumerate()
    {
        let config = config_with_auth(tmp.path(), &key, "alice", "s3cret");
        let creds = DockerCredentials::new(CredentialFiles {
            files: vec![config],
        });
        assert!(
            matches!(creds.credentials(&host), Some(Credentials::Basic { ref username, .. }) if username == "alice"),
            "{key}: {:?}",
            creds.errors()
        );
        let client = client_with(Arc::new(creds));
        let name = format!("alias{i}");
        push_and_pull(&client, &r(&format!("{host}/{name}/app:v1")), tmp.path()).await;
    }
    // And the wrong password under an alias is refused, so the alias was
    // what authenticated.
    let config = config_with_auth(tmp.path(), &format!("http://{host}/v2/"), "alice", "nope");
    let e = client_with(Arc::new(DockerCredentials::new(CredentialFiles {
        files: vec![config],
    })))
    .tags(&r(&format!("{host}/alias0/app")))
    .await
    .expect_err("wrong password");
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
}

#[test]
fn docker_hub_and_default_port_aliases_find_the_same_entry() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"},
            "myreg.lan:443":{"auth":"dGxzOnB3"},
            "http://plain.lan:80":{"auth":"cGxhaW46cHc="},
            "https://url.lan/v2/":{"auth":"dXJsOnB3"}
        }}"#,
    )
    .expect("write");
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec![config],
    });
    let user = |registry: &str| match creds.credentials(registry) {
        Some(Credentials::Basic { username, .. }) => Some(username),
        _ => None,
    };
    for hub in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "www.docker.io",
    ] {
        assert_eq!(user(hub).as_deref(), Some("hub"), "{hub}");
    }
    for alias in ["myreg.lan", "myreg.lan:443"] {
        assert_eq!(user(alias).as_deref(), Some("tls"), "{alias}");
    }
    for alias in ["plain.lan", "plain.lan:80"] {
        assert_eq!(user(alias).as_deref(), Some("plain"), "{alias}");
    }
    assert_eq!(user("url.lan").as_deref(), Some("url"));
    assert_eq!(
        user("myreg.lan:8443"),
        None,
        "another port is another registry"
    );
    assert!(creds.errors().is_empty(), "{:?}", creds.errors());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_command_answers_the_token_server_in_google_s_convention() {
    // The token server knows one user: Google's, with the access token as
    // its password (what gcr.io and Artifact Registry accept).
    let registry = Registry::start(Auth::Token {
        user: "oauth2accesstoken".into(),
        password: "ya29.from-the-command".into(),
    })
    .expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let calls = tmp.path().join("calls");
    let command = script(
        tmp.path(),
        "print-access-token",
        &format!(
            "echo run >> '{}'\nprintf 'ya29.from-the-command\\n3600\\n'",
            calls.display()
        ),
    );
    let source = CommandTokenSource::new(command.display().to_string(), Vec::<String>::new());
    let creds = TokenSourceCredentials::google(&host, Arc::new(source));
    let client = client_with(Arc::new(creds));
    push_and_pull(&client, &r(&format!("{host}/gcr/app:v1")), tmp.path()).await;
    let runs = std::fs::read_to_string(&calls).expect("the command ran");
    assert_eq!(
        runs.lines().count(),
        1,
        "one token, reused until it expires"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_token_command_beside_docker_config_authenticates_basic() {
    let registry = Registry::start(Auth::Htpasswd {
        user: "oauth2accesstoken".into(),
        password: "tok-json".into(),
    })
    .expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let command = r#"printf '%s' '{"access_token":"tok-json","expires_in":3600}'"#;
    let creds = DockerCredentials::new(CredentialFiles {
        files: vec![tmp.path().join("missing.json")],
    })
    .with_token_source(TokenSourceCredentials::google(
        &host,
        Arc::new(CommandTokenSource::shell(command)),
    ));
    push_and_pull(
        &client_with(Arc::new(creds)),
        &r(&format!("{host}/json/app:v1")),
        tmp.path(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_command_is_an_auth_error_naming_the_command() {
    let registry = Registry::start(Auth::Htpasswd {
        user: "oauth2accesstoken".into(),
        password: "x".into(),
    })
    .expect("registry");
    let host = registry.host();
    let tmp = tempfile::tempdir().expect("tmp");
    let command = script(
        tmp.path(),
        "broken-token",
        "echo 'ERROR: no active account selected' >&2\nexit 1",
    );
    let creds = TokenSourceCredentials::google(
        &host,
        Arc::new(CommandTokenSource::new(
            command.display().to_string(),
            ["--scope", "registry"],
        )),
    );
    let e = client_with(Arc::new(creds))
        .tags(&r(&format!("{host}/any/app")))
        .await
        .expect_err("no token");
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("{} --scope registry", command.display()))
            && text.contains("no active account selected")
            && text.contains("unauthorized")
            && text.contains(&host),
        "{text}"
    );
    assert!(
        matches!(
            &e,
            berth::Error::Protocol(berth::protocol::Error::Credentials { registry, .. }) if *registry == host
        ),
        "{e:?}"
    );

    // A command that prints nothing usable is refused the same way.
    let silent = script(tmp.path(), "silent-token", "exit 0");
    let creds = TokenSourceCredentials::google(
        &host,
        Arc::new(CommandTokenSource::new(
            silent.display().to_string(),
            Vec::<String>::new(),
        )),
    );
    let e = client_with(Arc::new(creds))
        .tags(&r(&format!("{host}/any/app")))
        .await
        .expect_err("no token");
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(
        e.to_string().contains("silent-token") && e.to_string().contains("no token"),
        "{e}"
    );
}
