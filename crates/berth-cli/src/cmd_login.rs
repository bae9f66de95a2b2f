//! `berth login` and `berth logout`: credentials in the Docker config, or
//! in its credential helper when it names one.

use std::io::{Read, Write};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use berth::protocol::auth::{Credentials, DockerConfig, Secret, docker_auth_key};
use berth::protocol::endpoint::canonical_registry;
use berth::{Client, CredentialFiles, DockerCredentials};
use berth_hyper::HyperTransport;

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

fn write_config(path: &std::path::Path, config: &DockerConfig) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.berth-tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&config.to_json())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).ok();
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The helper the config names for this registry, if any.
fn helper_for(config: &DockerConfig, registry: &str) -> Option<String> {
    config
        .cred_helpers()
        .find(|(k, _)| canonical_registry(k) == registry)
        .map(|(_, v)| v.to_owned())
        .or_else(|| config.creds_store().map(str::to_owned))
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
    let mut transport = HyperTransport::builder().certs_d(true);
    let mut builder = Client::builder().credentials(Arc::new(provider));
    for host in &g.insecure {
        transport = transport.insecure_host(host.clone());
        builder = builder.insecure_registry(host.clone());
    }
    if let Some(ca) = &g.ca_file {
        transport = transport.extra_ca_file(ca.clone());
    }
    let client = builder.build(transport.build().context("cannot set up TLS")?);
    client.check_login(&registry).await?;

    let path = config_path(&files)?;
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
