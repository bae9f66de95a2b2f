//! Starting and stopping a registry.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::api::{Shared, handle};
use crate::error::StartError;
use crate::faults::Faults;
use crate::sessions::{DEFAULT_MAX_UPLOADS, DEFAULT_UPLOAD_IDLE, Sessions};
use crate::storage::Storage;

/// Who may use the registry.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Auth {
    /// Anyone (the default).
    #[default]
    None,
    /// One user with one password, by HTTP Basic auth: every request
    /// without them is answered 401 `UNAUTHORIZED` with
    /// `WWW-Authenticate: Basic realm="berth-registry"`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl Auth {
    /// [`Auth::Basic`] for `user` and `password`.
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// An OCI Distribution registry. Start one with [`Registry::builder`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Registry;

impl Registry {
    /// A builder: in-memory storage, no auth, no faults, bound to
    /// `127.0.0.1:0` unless told otherwise.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }
}

/// How to start a [`Registry`].
#[derive(Debug)]
pub struct RegistryBuilder {
    storage: Storage,
    auth: Auth,
    faults: Faults,
    bind: String,
    max_uploads: usize,
    upload_idle: Duration,
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        RegistryBuilder {
            storage: Storage::memory(),
            auth: Auth::None,
            faults: Faults::new(),
            bind: "127.0.0.1:0".to_owned(),
            max_uploads: DEFAULT_MAX_UPLOADS,
            upload_idle: DEFAULT_UPLOAD_IDLE,
        }
    }
}

impl RegistryBuilder {
    /// Where content is kept.
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// Who may use the registry.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The faults to inject; keep a clone to change them while the
    /// registry runs (or use [`RunningRegistry::faults`]).
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The address to listen on, `ip:port` (`127.0.0.1:0` picks a free
    /// port).
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind = addr.into();
        self
    }

    /// How many upload sessions may be open at once (default
    /// [`DEFAULT_MAX_UPLOADS`]); past it, starting one answers 429
    /// `TOOMANYREQUESTS` until a session finishes, is cancelled or expires.
    pub fn max_uploads(mut self, n: usize) -> Self {
        self.max_uploads = n;
        self
    }

    /// How long an upload session may sit between requests before it is
    /// dropped with what it held (default [`DEFAULT_UPLOAD_IDLE`]). Idle
    /// sessions are dropped when a new one starts; a session is never
    /// dropped while a request is working on it.
    pub fn upload_idle_timeout(mut self, idle: Duration) -> Self {
        self.upload_idle = idle;
        self
    }

    /// Binds, prepares the storage, and serves in a task of the current
    /// Tokio runtime until stopped.
    pub async fn start(self) -> Result<RunningRegistry, StartError> {
        let addr: SocketAddr = self.bind.parse().map_err(|e| StartError::Address {
            addr: self.bind.clone(),
            reason: format!("{e}"),
        })?;
        let store = self.storage.open()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let basic = match self.auth {
            Auth::None => None,
            Auth::Basic { user, password } => Some((user, password)),
        };
        let shared = Arc::new(Shared {
            store,
            basic,
            faults: self.faults.clone(),
            sessions: Sessions::new(self.max_uploads, self.upload_idle),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, shared, stop_rx));
        Ok(RunningRegistry {
            addr: local,
            faults: self.faults,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

/// Accepts connections until told to stop; dropping the set of
/// connections (when this future ends or is dropped) closes them all.
async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors, say: wait a moment, go on.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(handle(shared, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Reap finished connections so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// A registry serving on a socket. Stop it with [`RunningRegistry::stop`];
/// dropping it stops it too.
pub struct RunningRegistry {
    addr: SocketAddr,
    faults: Faults,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for RunningRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningRegistry")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningRegistry {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ip:port`, as a reference's domain names it (`127.0.0.1:41234`).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The base URL, `http://ip:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The faults it applies; changes take effect with the next request.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops listening, closes every connection, and waits until done.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
