//! The `berth` binary against the real registry: every command, its
//! output (text and `--json`), and its exit codes.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_testkit::image::{TestImage, write_layout};
use berth_testkit::{Auth, Registry};

/// Runs `berth` with a private Docker config directory and no terminal.
fn berth(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("berth runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("berth finishes")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON on stdout")
}

fn no_escape_codes(out: &Output) {
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !stream.contains(&0x1b),
            "escape codes without a terminal: {}",
            String::from_utf8_lossy(stream)
        );
    }
}

#[test]
fn every_command_against_the_real_registry() {
    let registry = Registry::start(Auth::None).expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let src = tmp.path().join("src");
    let images = [
        TestImage::new("linux/amd64", &[200_000, 100], 21),
        TestImage::new("linux/arm64/v8", &[150_000], 22),
    ];
    let top = write_layout(&src, "1.0", &images).expect("layout");
    let host = registry.host();
    let reference = format!("{host}/demo/app:1.0");

    // push: the digest on stdout, progress on stderr, no escape codes.
    let out = berth(
        &home,
        &["push", src.to_str().expect("path"), &reference],
        None,
    );
    assert_eq!(ok(&out).trim(), top.digest.to_string());
    no_escape_codes(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("blobs transferred"));

    // digest: the digest and a newline, nothing else.
    let out = berth(&home, &["digest", &reference], None);
    assert_eq!(ok(&out), format!("{}\n", top.digest));

    // manifest: the registry's bytes exactly; from an index, this
    // machine's manifest unless --all-platforms.
    let blob = |digest: &str| {
        let hex = digest.strip_prefix("sha256:").expect("sha256");
        std::fs::read(src.join("blobs/sha256").join(hex)).expect("blob")
    };
    let index_raw = blob(&top.digest.to_string());
    let out = berth(&home, &["manifest", &reference, "--all-platforms"], None);
    assert_eq!(ok(&out).as_bytes(), index_raw);
    let index: serde_json::Value = serde_json::from_slice(&index_raw).expect("index json");
    let amd64 = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64")
        .expect("an amd64 entry");
    let amd64_raw = blob(amd64["digest"].as_str().expect("digest"));
    let out = berth(&home, &["manifest", &reference], None);
    if berth::manifest::Platform::host().architecture == "amd64" {
        assert_eq!(ok(&out).as_bytes(), amd64_raw);
    }
    let out = berth(
        &home,
        &["manifest", &reference, "--platform", "linux/amd64"],
        None,
    );
    assert_eq!(ok(&out).as_bytes(), amd64_raw);
    let out = berth(
        &home,
        &["manifest", &reference, "--platform", "linux/arm64"],
        None,
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json manifest");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    // By the index's digest: the same choice, or the index itself.
    let by_digest = format!("{host}/demo/app@{}", top.digest);
    let out = berth(
        &home,
        &["manifest", &by_digest, "--platform", "linux/amd64"],
        None,
    );
    assert_eq!(ok(&out).as_bytes(), amd64_raw);
    let out = berth(&home, &["manifest", &by_digest, "--all-platforms"], None);
    assert_eq!(ok(&out).as_bytes(), index_raw);
    // digest with --platform: that platform's manifest, as crane prints it.
    let out = berth(
        &home,
        &["digest", &reference, "--platform", "linux/amd64"],
        None,
    );
    assert_eq!(
        ok(&out),
        format!("{}\n", amd64["digest"].as_str().expect("digest"))
    );
    // Commands on the whole image refuse --platform instead of ignoring it.
    for args in [
        vec!["delete", &reference, "--platform", "linux/arm64"],
        vec!["tag", &reference, "other", "--platform", "linux/arm64"],
        vec![
            "push",
            src.to_str().expect("path"),
            &reference,
            "--platform",
            "linux/arm64",
        ],
    ] {
        let out = berth(&home, &args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--platform does not apply"), "{args:?}: {err}");
    }
    assert_eq!(
        ok(&berth(&home, &["digest", &reference], None)),
        format!("{}\n", top.digest)
    );

    // config for a platform; global option before the subcommand too.
    let out = berth(
        &home,
        &["--platform", "linux/arm64", "config", &reference],
        None,
    );
    let c: serde_json::Value = serde_json::from_str(&ok(&out)).expect("config json");
    assert_eq!(c["architecture"], "arm64");

    // tags, catalog (text and JSON).
    assert_eq!(ok(&berth(&home, &["tags", &reference], None)), "1.0\n");
    assert_eq!(
        json(&berth(&home, &["tags", "--json", &reference], None)),
        serde_json::json!(["1.0"])
    );
    assert_eq!(
        json(&berth(&home, &["catalog", &host, "--json"], None)),
        serde_json::json!(["demo/app"])
    );

    // inspect: human and JSON.
    let text = ok(&berth(&home, &["inspect", &reference], None));
    assert!(
        text.contains(&top.digest.to_string())
            && text.contains("linux/arm64/v8")
            && text.contains("layers:"),
        "{text}"
    );
    let j = json(&berth(&home, &["inspect", "--json", &reference], None));
    assert_eq!(j["digest"], top.digest.to_string());
    assert_eq!(
        j["layers"].as_array().map(Vec::len),
        Some(2),
        "the host platform's image has two layers"
    );

    // pull one platform; the layout's index names it with the tag.
    let dir = tmp.path().join("pulled");
    let j = json(&berth(
        &home,
        &["pull", "--json", &reference, dir.to_str().expect("path")],
        None,
    ));
    assert_eq!(j["blobs_transferred"], 3);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "1.0"
    );
    // pull all platforms.
    let all = tmp.path().join("all");
    let j = json(&berth(
        &home,
        &[
            "pull",
            &reference,
            all.to_str().expect("path"),
            "--all-platforms",
            "--json",
        ],
        None,
    ));
    assert_eq!(j["digest"], top.digest.to_string());

    // blob REF@DIGEST to stdout, verified.
    let m: serde_json::Value = serde_json::from_slice(
        &berth(
            &home,
            &["manifest", &reference, "--platform", "linux/arm64"],
            None,
        )
        .stdout,
    )
    .expect("json");
    let layer_digest = m["layers"][0]["digest"].as_str().expect("digest");
    let out = berth(
        &home,
        &["blob", &format!("{host}/demo/app@{layer_digest}")],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 150_000);
    assert_eq!(
        berth::manifest::Digester::sha256_of(&out.stdout).to_string(),
        layer_digest
    );
    // A full disk behind stdout is a failure (1), not a usage error (2).
    let full = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["blob", &format!("{host}/demo/app@{layer_digest}")])
        .env("HOME", &home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .stdout(std::fs::File::create("/dev/full").expect("/dev/full"))
        .output()
        .expect("berth runs");
    let err = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{err}");
    assert!(err.contains("standard output"), "{err}");

    // tag, copy (within the registry: mounted), delete.
    assert_eq!(
        ok(&berth(&home, &["tag", &reference, "stable"], None)).trim(),
        top.digest.to_string()
    );
    let copied = format!("{host}/other/app:1.0");
    let j = json(&berth(
        &home,
        &["copy", "--all-platforms", "--json", &reference, &copied],
        None,
    ));
    assert_eq!(j["digest"], top.digest.to_string());
    assert_eq!(j["blobs_mounted"], 5, "{j}");
    assert_eq!(
        ok(&berth(
            &home,
            &["delete", &format!("{host}/demo/app:stable")],
            None
        ))
        .trim(),
        top.digest.to_string()
    );

    // Exit codes: not found 3, usage 2.
    let out = berth(&home, &["digest", &format!("{host}/demo/app:stable")], None);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = berth(&home, &["digest", &format!("{host}/nothing/here:x")], None);
    assert_eq!(out.status.code(), Some(3));
    let out = berth(&home, &["digest", "Not/Valid"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lowercase") && err.contains("byte"), "{err}");
    let out = berth(
        &home,
        &[
            "pull",
            &copied,
            tmp.path().join("x").to_str().expect("path"),
            "--platform",
            "windows/s390x",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "no such platform");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("linux/arm64/v8") && err.lines().count() == 1,
        "one line naming what there is: {err}"
    );
}

#[test]
fn login_logout_and_auth_failures() {
    let registry = Registry::start(Auth::Htpasswd {
        user: "bob".into(),
        password: "hunter2".into(),
    })
    .expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let src = tmp.path().join("src");
    write_layout(&src, "v", &[TestImage::new("linux/amd64", &[1000], 31)]).expect("layout");
    let host = registry.host();
    let reference = format!("{host}/private/app:v");

    // Without credentials: exit 4, saying authentication is required.
    let out = berth(
        &home,
        &["push", src.to_str().expect("path"), &reference],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("authentication required") && err.contains(&host),
        "{err}"
    );

    // Wrong password: refused, nothing stored.
    let out = berth(
        &home,
        &["login", &host, "-u", "bob", "--password-stdin"],
        Some("wrong\n"),
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!home.join(".docker/config.json").exists());

    // Right password: stored in the Docker config, then used.
    ok(&berth(
        &home,
        &["login", &host, "-u", "bob", "--password-stdin"],
        Some("hunter2\n"),
    ));
    let config = std::fs::read_to_string(home.join(".docker/config.json")).expect("config written");
    assert!(
        config.contains(&host) && config.contains("\"auth\""),
        "{config}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join(".docker/config.json"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the config is private to its owner");
    let left: Vec<_> = std::fs::read_dir(home.join(".docker"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["config.json"], "no temporary file left beside it");
    ok(&berth(
        &home,
        &["push", src.to_str().expect("path"), &reference],
        None,
    ));
    assert_eq!(ok(&berth(&home, &["tags", &reference], None)), "v\n");

    // Logout removes them; the registry refuses again.
    ok(&berth(&home, &["logout", &host], None));
    let out = berth(&home, &["tags", &reference], None);
    assert_eq!(out.status.code(), Some(4));
    let out = berth(&home, &["logout", &host], None);
    assert_eq!(out.status.code(), Some(3), "not logged in");

    // A credential file that cannot be read is the error, named, rather
    // than an anonymous request the registry refuses.
    std::fs::write(home.join(".docker/config.json"), "{\"auths\":").expect("write");
    let out = berth(&home, &["tags", &reference], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains(".docker/config.json"), "{err}");
}

#[test]
fn a_logout_waits_while_another_holds_the_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let docker = home.join(".docker");
    std::fs::create_dir_all(&docker).expect("docker dir");
    // Two entries; the logout removes one and must keep what another
    // writer put there meanwhile.
    std::fs::write(
        docker.join("config.json"),
        r#"{"auths":{"a.example":{"auth":"dTpw"},"b.example":{"auth":"dTpw"}}}"#,
    )
    .expect("config");
    let lock = std::fs::File::open(&docker).expect("open dir");
    lock.lock().expect("lock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["logout", "a.example"])
        .env("HOME", &home)
        .env("DOCKER_CONFIG", &docker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth runs");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "logout went ahead while the config was locked"
    );
    // What the lock's holder writes meanwhile.
    std::fs::write(
        docker.join("config.json"),
        r#"{"auths":{"a.example":{"auth":"dTpw"},"b.example":{"auth":"dTpw"},"c.example":{"auth":"dTpw"}}}"#,
    )
    .expect("config");
    lock.unlock().expect("unlock");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(docker.join("config.json")).expect("config");
    assert!(
        !config.contains("a.example")
            && config.contains("b.example")
            && config.contains("c.example"),
        "{config}"
    );
}

#[test]
fn help_documents_exit_codes_and_completions_generate() {
    let tmp = tempfile::tempdir().expect("tmp");
    let help = ok(&berth(tmp.path(), &["--help"], None));
    assert!(
        help.contains("Exit codes")
            && help.contains("3  not found")
            && help.contains("4  authentication"),
        "{help}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&berth(tmp.path(), &["completions", shell], None));
        assert!(script.contains("berth") && script.len() > 500, "{shell}");
    }
    // A password without a user would serve with no auth at all.
    let out = berth(
        tmp.path(),
        &["registry", "serve", "--password-stdin"],
        Some("s3cret\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--user"));
}

/// Quotes a word for `sh -c`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn progress_bars_on_a_terminal_plain_lines_without_one() {
    let registry = Registry::start(Auth::None).expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let src = tmp.path().join("src");
    write_layout(
        &src,
        "v",
        &[TestImage::new("linux/amd64", &[4_000_000, 3_000_000], 61)],
    )
    .expect("layout");
    let reference = format!("{}/tty/app:v", registry.host());
    ok(&berth(
        &home,
        &["push", "-q", src.to_str().expect("path"), &reference],
        None,
    ));

    // In a pseudo-terminal (util-linux `script`), stderr is a terminal:
    // bars with bytes and a rate are drawn.
    let out_dir = tmp.path().join("tty-pull");
    let cmd = format!(
        "{} pull {} {}",
        sh_quote(env!("CARGO_BIN_EXE_berth")),
        sh_quote(&reference),
        sh_quote(out_dir.to_str().expect("path"))
    );
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("HOME", &home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("script runs");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("total") && screen.contains('[') && screen.contains("B/s"),
        "no bars drawn: {screen}"
    );
    assert!(
        screen.contains('\u{1b}'),
        "a terminal gets cursor control codes: {screen}"
    );

    // Without a terminal: plain lines on stderr, no escape codes anywhere,
    // and only the digest on stdout.
    let out = berth(
        &home,
        &[
            "pull",
            &reference,
            tmp.path().join("plain").to_str().expect("path"),
        ],
        None,
    );
    no_escape_codes(&out);
    let stdout = ok(&out);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("started") && stderr.contains("done"),
        "{stderr}"
    );
}

#[test]
fn registry_serve_on_a_free_port_then_push_and_pull_through_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["registry", "serve", "--address", "127.0.0.1:0", "--storage"])
        .arg(tmp.path().join("storage"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("berth registry serve");
    // Killed however the test ends.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().expect("stdout");
    let _server = Server(child);
    let mut host = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut host).expect("address");
    let host = host.trim().to_owned();
    assert!(
        host.starts_with("127.0.0.1:") && !host.ends_with(":0"),
        "{host}"
    );

    let src = tmp.path().join("src");
    let top =
        write_layout(&src, "v1", &[TestImage::new("linux/amd64", &[50_000], 81)]).expect("layout");
    let reference = format!("{host}/served/app:v1");
    assert_eq!(
        ok(&berth(
            &home,
            &["push", "-q", src.to_str().expect("path"), &reference],
            None
        ))
        .trim(),
        top.digest.to_string()
    );
    assert_eq!(
        ok(&berth(&home, &["digest", &reference], None)).trim(),
        top.digest.to_string()
    );
    let out = tmp.path().join("out");
    ok(&berth(
        &home,
        &["pull", "-q", &reference, out.to_str().expect("path")],
        None,
    ));
    assert!(out.join("blobs/sha256").join(top.digest.encoded()).exists());
}

/// Writes an OCI layout holding one artifact manifest that refers to
/// `subject`, and beside it (tag `sha256-<hex>`) the fallback index the
/// tag schema uses where a registry lacks the referrers API.
fn write_referrer(
    dir: &Path,
    subject: &berth::manifest::Descriptor,
    artifact_type: &str,
) -> berth::manifest::Descriptor {
    use berth::manifest::{Descriptor, Digester, ImageIndex, ImageManifest, MediaType};
    let blob = |bytes: &[u8]| {
        let d = Digester::sha256_of(bytes);
        let path = dir.join("blobs/sha256").join(d.encoded());
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(path, bytes).expect("blob");
        d
    };
    std::fs::create_dir_all(dir).expect("layout dir");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    blob(b"{}"); // the empty config the artifact names
    let payload = br#"{"spdxVersion":"SPDX-2.3"}"#;
    let layer = Descriptor::new(
        MediaType::new("application/spdx+json"),
        blob(payload),
        payload.len() as u64,
    );
    let manifest = ImageManifest::artifact(MediaType::new(artifact_type), vec![layer])
        .with_subject(subject.clone());
    let raw = manifest.to_raw().expect("manifest");
    blob(&raw.bytes);
    let referrer = raw
        .descriptor
        .with_artifact_type(MediaType::new(artifact_type));
    let fallback = ImageIndex::new(vec![referrer.clone()])
        .to_raw()
        .expect("index");
    blob(&fallback.bytes);
    let tag = format!("sha256-{}", subject.digest.encoded());
    let index = ImageIndex::new(vec![
        referrer
            .clone()
            .with_annotation("org.opencontainers.image.ref.name", "sbom"),
        fallback
            .descriptor
            .with_annotation("org.opencontainers.image.ref.name", tag.as_str()),
    ]);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index.json");
    referrer
}

#[test]
fn referrers_through_the_api_or_the_tag_schema() {
    let registry = Registry::start(Auth::None).expect("registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let host = registry.host();
    let src = tmp.path().join("src");
    let subject =
        write_layout(&src, "v", &[TestImage::new("linux/amd64", &[1000], 101)]).expect("layout");
    let reference = format!("{host}/with/sbom:v");
    ok(&berth(
        &home,
        &["push", "-q", src.to_str().expect("path"), &reference],
        None,
    ));
    let art = tmp.path().join("art");
    let referrer = write_referrer(&art, &subject, "application/spdx+json");
    // Distribution 2.8 has no referrers API: push the artifact and the
    // fallback index (tag sha256-<hex>), as cosign and oras do.
    ok(&berth(
        &home,
        &[
            "push",
            "-q",
            art.to_str().expect("path"),
            &format!("{host}/with/sbom:sbom"),
        ],
        None,
    ));
    let tag = format!("sha256-{}", subject.digest.encoded());
    ok(&berth(
        &home,
        &[
            "push",
            "-q",
            art.to_str().expect("path"),
            &format!("{host}/with/sbom:{tag}"),
        ],
        None,
    ));

    let j = json(&berth(&home, &["referrers", "--json", &reference], None));
    assert_eq!(j["api"], false, "distribution 2.8 has no referrers API");
    assert_eq!(j["manifests"][0]["digest"], referrer.digest.to_string());
    let text = ok(&berth(
        &home,
        &[
            "referrers",
            &reference,
            "--artifact-type",
            "application/spdx+json",
        ],
        None,
    ));
    assert!(text.contains(&referrer.digest.to_string()), "{text}");
    let text = ok(&berth(
        &home,
        &[
            "referrers",
            &reference,
            "--artifact-type",
            "application/other",
        ],
        None,
    ));
    assert!(text.is_empty(), "filtered out: {text}");
}
