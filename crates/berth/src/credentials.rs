//! Credentials as Docker and podman find them.
//!
//! Sources, in order; the first that has the registry wins:
//! 1. explicit credentials given in code (or on the command line), then
//!    token sources given in code (credentials made at run time, see
//!    [`berth_protocol::token_source`]);
//! 2. `$REGISTRY_AUTH_FILE`, else `${XDG_RUNTIME_DIR}/containers/auth.json`;
//! 3. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
//!
//! Within one file, Docker's order: `credHelpers` for the registry, then
//! `credsStore`, then `auths`. A helper is the program
//! `docker-credential-<name>`, run with `get` and the server URL on stdin,
//! answering `{"Username": ..., "Secret": ...}`. A file that does not exist
//! holds no entries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use berth_auth::{CredentialSource, Credentials, DockerConfig, Secret, docker_auth_key};
use berth_protocol::endpoint::canonical_registry;
use berth_protocol::{CredentialError, CredentialProvider, TokenSourceCredentials};

use crate::error::Error;
use crate::process::run_bounded;

/// The credential files to read, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialFiles {
    /// The files, first wins.
    pub files: Vec<PathBuf>,
}

impl CredentialFiles {
    /// The conventional files, from the environment (`REGISTRY_AUTH_FILE`,
    /// `XDG_RUNTIME_DIR`, `DOCKER_CONFIG`, `HOME`). The caller decides to
    /// call this; the library reads no environment on its own.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var_os(k).map(PathBuf::from))
    }

    /// The conventional files, with `var` standing in for the environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<PathBuf>) -> Self {
        let mut files = Vec::new();
        match var("REGISTRY_AUTH_FILE") {
            Some(f) => files.push(f),
            None => {
                if let Some(run) = var("XDG_RUNTIME_DIR") {
                    files.push(run.join("containers/auth.json"));
                }
            }
        }
        match var("DOCKER_CONFIG") {
            Some(d) => files.push(d.join("config.json")),
            None => {
                if let Some(home) = var("HOME") {
                    files.push(home.join(".docker/config.json"));
                }
            }
        }
        CredentialFiles { files }
    }

    /// The Docker config file `berth login` writes: the last file (Docker's
    /// own), or `~/.docker/config.json`.
    pub fn docker_config(&self) -> Option<&Path> {
        self.files
            .iter()
            .rev()
            .find(|f| f.ends_with("config.json"))
            .map(PathBuf::as_path)
    }
}

/// A [`CredentialProvider`] over explicit credentials and credential files,
/// running credential helpers as needed (their answers are cached for the
/// client's life).
pub struct DockerCredentials {
    explicit: HashMap<String, Credentials>,
    token_sources: Vec<Arc<TokenSourceCredentials>>,
    files: CredentialFiles,
    /// Each registry's lookup, done once: its credentials, or the error
    /// that stopped it.
    cache: Mutex<HashMap<String, Result<Option<Credentials>, String>>>,
    /// Where `docker-credential-*` programs are looked up (`None`: `PATH`).
    helper_dir: Option<PathBuf>,
    /// How long a helper may run.
    helper_timeout: Duration,
    /// Errors met while looking (a broken file, a failing helper).
    errors: Mutex<Vec<String>>,
}

impl std::fmt::Debug for DockerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerCredentials")
            .field("explicit", &self.explicit.keys().collect::<Vec<_>>())
            .field("token_sources", &self.token_sources)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl DockerCredentials {
    /// Credentials from these files.
    pub fn new(files: CredentialFiles) -> Self {
        DockerCredentials {
            explicit: HashMap::new(),
            token_sources: Vec::new(),
            files,
            cache: Mutex::new(HashMap::new()),
            helper_dir: None,
            helper_timeout: HELPER_TIMEOUT,
            errors: Mutex::new(Vec::new()),
        }
    }

    /// Explicit credentials for a registry, before any file.
    pub fn with(mut self, registry: &str, credentials: Credentials) -> Self {
        self.explicit
            .insert(canonical_registry(registry).to_owned(), credentials);
        self
    }

    /// Credentials made at run time for the registries `source` names,
    /// after explicit credentials and before any file.
    pub fn with_token_source(mut self, source: TokenSourceCredentials) -> Self {
        self.token_sources.push(Arc::new(source));
        self
    }

    /// Looks for credential helpers in `dir` instead of `PATH`.
    pub fn helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// How long a credential helper may run before it is killed and the
    /// lookup fails ([`HELPER_TIMEOUT`] unless set).
    pub fn helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    /// Problems met while looking up credentials. Through
    /// [`CredentialProvider::credentials_at`] (as a client asks) each is
    /// also an error of the request that needed the credentials.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn note(&self, problem: String) {
        if let Ok(mut e) = self.errors.lock() {
            e.push(problem);
        }
    }

    /// Looks `registry` up now, reporting problems as errors.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>, Error> {
        let registry = canonical_registry(registry);
        if let Some(c) = self.explicit.get(registry) {
            return Ok(Some(c.clone()));
        }
        for file in &self.files.files {
            let bytes = match std::fs::read(file) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(file, e)),
            };
            let config = DockerConfig::parse(&bytes)
                .map_err(|e| Error::Credentials(format!("{}: {e}", file.display())))?;
            let source = config
                .lookup(registry, "")
                .map_err(|e| Error::Credentials(format!("{}: {e}", file.display())))?;
            match source {
                CredentialSource::None => continue,
                CredentialSource::Inline(c) => return Ok(Some(c)),
                // A helper that has nothing for the registry leaves the
                // search to the next file.
                CredentialSource::Helper(name) | CredentialSource::Store(name) => {
                    if let Some(c) = self.run_helper(&name, registry)? {
                        return Ok(Some(c));
                    }
                }
                other => {
                    return Err(Error::Credentials(format!(
                        "{}: unsupported source {other:?}",
                        file.display()
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Runs `docker-credential-<name> get` for `registry`.
    fn run_helper(&self, name: &str, registry: &str) -> Result<Option<Credentials>, Error> {
        let program = format!("docker-credential-{name}");
        let program = match &self.helper_dir {
            Some(dir) => dir.join(&program),
            None => PathBuf::from(&program),
        };
        let server = if registry == "docker.io" {
            docker_auth_key(registry)
        } else {
            registry.to_owned()
        };
        let out = run_helper_within(&program, "get", &server, self.helper_timeout)?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            // Docker's helpers say "credentials not found in native keychain".
            if text.contains("credentials not found")
                || String::from_utf8_lossy(&out.stderr).contains("credentials not found")
            {
                return Ok(None);
            }
            return Err(Error::Credentials(format!(
                "{} get failed ({}): {}",
                program.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let answer: Answer = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::Credentials(format!(
                "{} answered something that is not its JSON: {e}",
                program.display()
            ))
        })?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        // Docker's convention: the user `<token>` means an identity token.
        Ok(Some(if answer.username == "<token>" {
            Credentials::IdentityToken(Secret::new(answer.secret))
        } else {
            Credentials::Basic {
                username: answer.username,
                password: Secret::new(answer.secret),
            }
        }))
    }
}

/// How long a credential helper may take before it is killed and the
/// lookup fails (a helper waiting on a prompt nobody answers).
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// The most bytes read from a credential helper's stdout or stderr.
const MAX_HELPER_OUTPUT: u64 = 64 * 1024;

/// Runs a credential helper (`docker-credential-<name>`) with `action`
/// (`get`, `store`, `erase`) and `input` on its stdin; its output. A helper
/// that exits without reading its input is answered by its exit status, not
/// by the closed pipe; one still running after [`HELPER_TIMEOUT`] is killed.
pub fn run_credential_helper(
    program: &Path,
    action: &str,
    input: &str,
) -> Result<std::process::Output, Error> {
    run_helper_within(program, action, input, HELPER_TIMEOUT)
}

fn run_helper_within(
    program: &Path,
    action: &str,
    input: &str,
    timeout: Duration,
) -> Result<std::process::Output, Error> {
    let done = run_bounded(
        Command::new(program).arg(action),
        Some(input.as_bytes().to_vec()),
        timeout,
        MAX_HELPER_OUTPUT,
    )
    .map_err(|e| Error::Credentials(format!("{} {action}: {e}", program.display())))?;
    Ok(std::process::Output {
        status: done.status,
        stdout: done.stdout,
        stderr: done.stderr,
    })
}

impl CredentialProvider for DockerCredentials {
    fn credentials_at(
        &self,
        registry: &str,
        now: SystemTime,
        margin: Duration,
    ) -> Result<Option<Credentials>, CredentialError> {
        let registry = canonical_registry(registry);
        if let Some(c) = self.explicit.get(registry) {
            return Ok(Some(c.clone()));
        }
        if let Some(source) = self.token_sources.iter().find(|s| s.answers_for(registry)) {
            return source.credentials_at(registry, now, margin);
        }
        self.looked_up(registry)
            .map_err(|detail| CredentialError::new("the credential lookup", detail))
    }

    fn credentials(&self, registry: &str) -> Option<Credentials> {
        let key = canonical_registry(registry).to_owned();
        if !self.explicit.contains_key(&key)
            && let Some(source) = self.token_sources.iter().find(|s| s.answers_for(&key))
        {
            return source.credentials(&key);
        }
        // The error is kept in errors().
        self.looked_up(&key).unwrap_or(None)
    }
}

impl DockerCredentials {
    /// The lookup of `registry` in the files, done once per registry; an
    /// error (a broken file, a failing helper) is also noted in
    /// [`errors`](Self::errors).
    fn looked_up(&self, registry: &str) -> Result<Option<Credentials>, String> {
        let key = canonical_registry(registry);
        if let Ok(cache) = self.cache.lock()
            && let Some(hit) = cache.get(key)
        {
            return hit.clone();
        }
        let found = self.lookup(key).map_err(|e| e.to_string());
        if let Err(e) = &found {
            self.note(e.clone());
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key.to_owned(), found.clone());
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conventional_files_in_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| PathBuf::from(v))
            }
        };
        let f = CredentialFiles::from_lookup(env(&[("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/u")]));
        assert_eq!(
            f.files,
            [
                PathBuf::from("/run/u/containers/auth.json"),
                PathBuf::from("/h/.docker/config.json")
            ]
        );
        let f = CredentialFiles::from_lookup(env(&[
            ("HOME", "/h"),
            ("REGISTRY_AUTH_FILE", "/a.json"),
            ("DOCKER_CONFIG", "/d"),
        ]));
        assert_eq!(
            f.files,
            [PathBuf::from("/a.json"), PathBuf::from("/d/config.json")]
        );
        assert_eq!(f.docker_config(), Some(Path::new("/d/config.json")));
    }
}
