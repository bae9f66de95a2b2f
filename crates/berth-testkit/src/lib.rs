//! Test support for berth: the real registry (CNCF distribution, Debian's
//! `docker-registry`) started on 127.0.0.1 with a port and a storage
//! directory of its own, stopped and cleaned up when dropped.
//!
//! ```no_run
//! let registry = berth_testkit::Registry::start(berth_testkit::Auth::None)?;
//! println!("registry at {}", registry.host());
//! # Ok::<(), std::io::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod image;
pub mod pki;
pub mod proxy;
pub mod token;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registry binary, as Debian installs it.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How the registry authenticates clients.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// Open: no credentials needed.
    None,
    /// HTTP Basic from an htpasswd file with this one user.
    Htpasswd {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// Bearer tokens from a token server started beside the registry
    /// ([`token::TokenServer`]), which knows this one user.
    Token {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

/// A running registry.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    log: PathBuf,
    tls: Option<pki::Pki>,
    token: Option<token::TokenServer>,
}

/// Whether the registry binary is installed.
pub fn available() -> bool {
    Path::new(REGISTRY_BIN).exists()
}

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Registry {
    /// Starts a registry with `auth`, waits until it answers, and returns
    /// it. Fails if it does not answer within 20 seconds.
    // Callers build the mode inline: `Registry::start(Auth::None)`.
    #[allow(clippy::needless_pass_by_value)]
    pub fn start(auth: Auth) -> io::Result<Registry> {
        Self::start_with(&auth, false)
    }

    /// As [`Registry::start`], serving TLS with a certificate from a CA
    /// made for it ([`Registry::ca_pem`]): for `127.0.0.1` and `localhost`.
    #[allow(clippy::needless_pass_by_value)]
    pub fn start_tls(auth: Auth) -> io::Result<Registry> {
        Self::start_with(&auth, true)
    }

    fn start_with(auth: &Auth, tls: bool) -> io::Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let auth_section = match auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let hash = bcrypt::hash(password, 5).map_err(io::Error::other)?;
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, format!("{user}:{hash}\n"))?;
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token { .. } => String::new(),
        };
        let pki = pki::Pki::new().map_err(io::Error::other)?;
        let mut token_server = None;
        let auth_section = match auth {
            Auth::Token { user, password } => {
                let bundle = dir.path().join("token-signer.pem");
                std::fs::write(&bundle, &pki.token_signer.cert_pem)?;
                let server = token::TokenServer::start(
                    user,
                    password,
                    &pki.token_signer.key_der,
                    &pki.token_signer.cert_der,
                    Duration::from_secs(300),
                )?;
                let section = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.realm(),
                    token::SERVICE,
                    token::ISSUER,
                    bundle.display()
                );
                token_server = Some(server);
                section
            }
            _ => auth_section,
        };
        let tls_section = if tls {
            let cert = dir.path().join("server.pem");
            let key = dir.path().join("server.key");
            std::fs::write(&cert, &pki.server.cert_pem)?;
            std::fs::write(&key, &pki.server.key_pem)?;
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            )
        } else {
            String::new()
        };
        // The registry refuses foreign layers' URLs unless allowed: allow
        // test servers on loopback.
        // Another process may take the port between our probe and the
        // registry's bind: try a few ports.
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nvalidation:\n  manifests:\n    urls:\n      allow:\n        - '^https?://127\\.0\\.0\\.1(:[0-9]+)?/'\nhttp:\n  addr: {addr}\n  secret: berth-test-secret\n{tls_section}{auth_section}",
                    storage.display()
                ),
            )?;
            let log = dir.path().join("registry.log");
            let err_path = dir.path().join("registry.err");
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log)?)
                .stderr(std::fs::File::create(&err_path)?)
                .spawn()?;
            match wait_ready(&mut child, addr, tls, Duration::from_secs(20)) {
                Ok(()) => {
                    return Ok(Registry {
                        child,
                        addr,
                        dir,
                        log,
                        tls: tls.then_some(pki),
                        token: token_server,
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
                    last_err = format!(
                        "{e}: {}",
                        stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                    );
                    if !stderr.contains("address already in use") {
                        break;
                    }
                }
            }
        }
        Err(io::Error::other(format!(
            "the registry did not start: {last_err}"
        )))
    }

    /// `127.0.0.1:PORT`, as a reference's domain.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The storage directory (`docker/registry/v2/...` below it).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// How many blob data files the storage holds (to see whether an upload
    /// happened).
    pub fn stored_blobs(&self) -> usize {
        fn walk(p: &Path, n: &mut usize) {
            if let Ok(entries) = std::fs::read_dir(p) {
                for e in entries.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path, n);
                    } else if path.file_name().is_some_and(|f| f == "data") {
                        *n += 1;
                    }
                }
            }
        }
        let mut n = 0;
        walk(&self.storage().join("docker/registry/v2/blobs"), &mut n);
        n
    }

    /// The CA that signed the TLS certificate (PEM), when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|p| p.ca.cert_pem.as_str())
    }

    /// The token server, in token mode.
    pub fn token_server(&self) -> Option<&token::TokenServer> {
        self.token.as_ref()
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(child: &mut Child, addr: SocketAddr, tls: bool, within: Duration) -> io::Result<()> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "the registry exited with {status}"
            )));
        }
        // Over TLS a listening socket is the sign: it binds after reading
        // its certificate.
        let ready = if tls {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        } else {
            matches!(http_status(addr, "GET", "/v2/"), Ok(200 | 401))
        };
        if ready {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "the registry did not answer in time",
    ))
}

/// A bare HTTP/1.0 request on loopback, for readiness checks: the status.
pub fn http_status(addr: SocketAddr, method: &str, path: &str) -> io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf)?;
    let head = std::str::from_utf8(&buf[..n]).map_err(io::Error::other)?;
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP answer: {head:?}")))
}

/// Runs `skopeo` with these arguments (no TLS verification for the
/// loopback registries tests start); its output, or an error with stderr.
pub fn skopeo(args: &[&str]) -> io::Result<String> {
    let out = Command::new("skopeo")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "skopeo {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_starts_answers_and_stops() {
        if !available() {
            panic!("{REGISTRY_BIN} is not installed: .ci/run installs docker-registry");
        }
        let r = Registry::start(Auth::None).expect("starts");
        assert_eq!(http_status(r.addr(), "GET", "/v2/").expect("answers"), 200);
        let addr = r.addr();
        drop(r);
        assert!(http_status(addr, "GET", "/v2/").is_err(), "stopped");
        let r = Registry::start(Auth::Htpasswd {
            user: "u".into(),
            password: "p".into(),
        })
        .expect("starts");
        assert_eq!(http_status(r.addr(), "GET", "/v2/").expect("answers"), 401);
    }
}
