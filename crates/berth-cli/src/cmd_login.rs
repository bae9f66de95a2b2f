//! `berth login` and `berth logout`: credentials in the Docker config, or
//! in its credential helper when it names one.

use std::io::{Read, Write};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use berth::protocol::auth::{CredentialSource, Credentials, DockerConfig, Secret, docker_auth_key};
use berth::protocol::endpoint::canonical_registry;
use berth::{Client, CredentialFiles, DockerCredentials};

use crate::{Failure, Global};

/// `berth login REGISTRY -u USER --password-stdin`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The registry (`ghcr.io`, `docker.io`, `localhost:5000`).
    #[arg(value_name = "REGISTRY")]
    registry: String,
    /// The user name.
    #[arg(short, long)]
    username: String,
    /// Read the password (or token) from standard input.
    #[arg(long = "password-stdin", required = true)]
    password_stdin: bool,
}

/// `berth logout REGISTRY`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogoutArgs {
    /// The registry.
    #[arg(value_name = "REGISTRY")]
    registry: String,
}

fn config_path(files: &CredentialFiles) -> Result<std::path::PathBuf> {
    files
        .docker_config()
        .map(ToOwned::to_owned)
        .ok_or_else(|| anyhow!("no Docker config location: set DOCKER_CONFIG or HOME"))
}

fn read_config(path: &std::path::Path) -> Result<DockerConfig> {
    match std::fs::read(path) {
        Ok(bytes) => {
            DockerConfig::parse(&bytes).with_context(|| format!("reading {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// How long a login or logout waits for another to finish with the config.
const CONFIG_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Holds the config's directory locked (an advisory `flock`, released when
/// the returned handle drops) so that two logins or logouts at once each
/// read the other's change before writing: read, change and write happen
/// under the lock. The directory, not the file: the file is replaced by a
/// rename, and a lock on the old one would not hold the next writer back.
fn lock_config(path: &std::path::Path) -> Result<std::fs::File> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let handle = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let deadline = std::time::Instant::now() + CONFIG_LOCK_WAIT;
    loop {
        match handle.try_lock() {
            Ok(()) => return Ok(handle),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "{} stayed locked for {} s: another login or logout is updating it",
                dir.display(),
                CONFIG_LOCK_WAIT.as_secs()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", dir.display()));
            }
        }
    }
}

fn write_config(path: &std::path::Path, config: &DockerConfig) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // A name of this process's own, created fresh (never through a link
    // planted at it), so concurrent logins do not write into one file.
    let tmp = path.with_extension(format!("json.berth-tmp.{}", std::process::id()));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", tmp.display()));
        }
        _ => {}
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&config.to_json())?;
            f.sync_all()
        })
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The helper the config names for this registry, if any: the one lookup
/// would run, matched the way lookup matches keys.
fn helper_for(config: &DockerConfig, registry: &str) -> Option<String> {
    match config.lookup(registry, "") {
        Ok(CredentialSource::Helper(name) | CredentialSource::Store(name)) => Some(name),
        _ => None,
    }
}

fn run_helper(helper: &str, action: &str, input: &str) -> Result<()> {
    let program = std::path::PathBuf::from(format!("docker-credential-{helper}"));
    let out = berth::run_credential_helper(&program, action, input)?;
    if !out.status.success() {
        bail!(
            "{} {action} failed: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub(crate) async fn login(a: &LoginArgs, g: &Global) -> Result<(), Failure> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(Failure {
            code: 2,
            error: anyhow!("no password on stdin"),
        });
    }
    let registry = canonical_registry(&a.registry).to_owned();
    let creds = Credentials::Basic {
        username: a.username.clone(),
        password: Secret::new(password.clone()),
    };

    // Check them as docker login does, before storing anything.
    let files = CredentialFiles::from_env();
    let provider =
        DockerCredentials::new(CredentialFiles::default()).with(&registry, creds.clone());
    let mut builder = Client::builder().credentials(Arc::new(provider));
    for host in &g.insecure {
        builder = builder.insecure_registry(host.clone());
    }
    let client = builder.build(crate::cmd_registry::transport(g)?);
    client.check_login(&registry).await?;

    let path = config_path(&files)?;
    let _locked = lock_config(&path)?;
    let mut config = read_config(&path)?;
    let key = docker_auth_key(&registry);
    match helper_for(&config, &registry) {
        Some(helper) => {
            let input =
                serde_json::json!({"ServerURL": key, "Username": a.username, "Secret": password})
                    .to_string();
            run_helper(&helper, "store", &input)?;
        }
        None => {
            config.set_credentials(&key, &creds);
            write_config(&path, &config)?;
        }
    }
    if !g.quiet {
        eprintln!("Login succeeded for {registry}");
    }
    Ok(())
}

pub(crate) async fn logout(a: &LogoutArgs, g: &Global) -> Result<(), Failure> {
    let registry = canonical_registry(&a.registry).to_owned();
    let files = CredentialFiles::from_env();
    let path = config_path(&files)?;
    let _locked = lock_config(&path)?;
    let mut config = read_config(&path)?;
    let key = docker_auth_key(&registry);
    let removed = match helper_for(&config, &registry) {
        Some(helper) => run_helper(&helper, "erase", &key).is_ok(),
        None => false,
    } | config.remove_credentials(&key);
    if !removed {
        return Err(Failure {
            code: 3,
            error: anyhow!("not logged in to {registry}"),
        });
    }
    write_config(&path, &config)?;
    if !g.quiet {
        eprintln!("Removed login credentials for {registry}");
    }
    Ok(())
}
