//! The berth transport: moves the requests that
//! [`berth_protocol`] decides on, over a pooled hyper 1 client with rustls
//! (ring provider).
//!
//! - HTTP/1.1 and HTTP/2, chosen by ALPN; connections are pooled and
//!   reused across requests and registries (one client for every host),
//!   with a configurable idle timeout; TCP_NODELAY. Blob bytes (requests
//!   marked [`berth_protocol::BlobTransfer`]) travel on HTTP/1.1
//!   connections of their own, one per concurrent transfer; everything
//!   else shares HTTP/2 where the server offers it.
//! - Request bodies are sent as given: bytes, or a stream passed through
//!   chunk by chunk. Response bodies are a [`ResponseBody`] stream that
//!   yields data frames as they arrive, never the whole body at once.
//! - Timeouts: connect (TCP, proxy tunnel and TLS handshake), response head,
//!   and read-idle on the body (a stalled body becomes an error).
//! - TLS: webpki roots plus the system store plus extra CA files; per-host
//!   CAs and client certificates, given directly or read from `certs.d`
//!   directories (Docker's and Podman's layout, when asked for); skipping
//!   verification only for hosts named insecure.
//! - HTTP proxies, chosen by the caller ([`ProxyConfig`]).
//!
//! It makes no protocol decisions: no redirects are followed, no request is
//! retried once it may have reached the server, no credentials are added.
//! Those belong to [`berth_protocol`]. (The pool may replay a request that
//! never left because a pooled connection had just closed.)
//!
//! Failures are [`berth_protocol::TransportError`]s that carry a
//! [`TransportFailure`]: its kind, and a message that names the host and
//! what to do. A refused certificate says `certificate` and why.
//!
//! The transport runs on Tokio: send requests and read bodies inside a
//! Tokio runtime. [`TokioRuntime`] is the clock and sleep for
//! [`berth_protocol::driver::drive`].
//!
//! ```
//! use std::time::Duration;
//! use berth_hyper::{HyperTransport, ProxyConfig, TokioRuntime};
//!
//! let transport = HyperTransport::builder()
//!     .connect_timeout(Duration::from_secs(10))
//!     .read_idle_timeout(Duration::from_secs(60))
//!     // Reads /etc/docker/certs.d and /etc/containers/certs.d (when they
//!     // exist) for per-host CAs and client certificates.
//!     .certs_d(true)
//!     // Docker's `--insecure-registry`: no certificate verification for
//!     // this host and port only.
//!     .insecure_host("registry.internal:5000")
//!     .proxy(ProxyConfig::new().with_no_proxy("internal"))
//!     .build()?;
//! for warning in transport.warnings() {
//!     eprintln!("warning: {warning}");
//! }
//! // Hand `transport` and `TokioRuntime` to `berth_protocol::driver::drive`.
//! let _runtime = TokioRuntime;
//! # Ok::<(), berth_hyper::BuildError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod body;
mod connect;
mod error;
mod proxy;
mod tls;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_protocol::driver::{OutgoingBody, Runtime, Transport};
use berth_protocol::{BlobTransfer, TransportError};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::GaiResolver;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub use body::ResponseBody;
pub use error::{BuildError, FailureKind, TransportFailure};
pub use proxy::ProxyConfig;

use body::{RequestBody, Waiting};
use connect::{Connector, PinnedResolver, ProxyConnector};
use proxy::{ProxyRules, Route};
use tls::{Identity, Pem, TlsSettings};

/// The `certs.d` roots read when lookup is on and no others are given:
/// Docker's, then Podman's (containers/image).
pub const DEFAULT_CERTS_D_ROOTS: [&str; 2] = ["/etc/docker/certs.d", "/etc/containers/certs.d"];

/// The default connect timeout (TCP, proxy tunnel and TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default wait for a response head once the request is sent.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);
/// The default longest silence inside a response body.
pub const DEFAULT_READ_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most an HTTP/1.1 connection reads at once (hyper's default is
/// about 400 KiB).
const HTTP1_MAX_BUF: usize = 1 << 20;

/// HTTP/2 flow control: how much one stream may have in flight. The
/// protocol's default of 64 KiB makes a blob arrive one round trip per
/// 64 KiB; blobs are large and each is read as fast as it comes.
const HTTP2_STREAM_WINDOW: u32 = 4 << 20;

/// HTTP/2 flow control for a whole connection (blobs share one).
const HTTP2_CONNECTION_WINDOW: u32 = 16 << 20;

/// The default time an unused pooled connection is kept.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A [`Transport`] over a pooled hyper client with rustls. Cheap to clone:
/// clones share the pool.
#[derive(Clone)]
pub struct HyperTransport {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<Connector, RequestBody>,
    /// For requests marked [`berth_protocol::BlobTransfer`] when HTTP/2
    /// is offered: a pool of HTTP/1.1 connections, so concurrent blobs
    /// each get a connection (and a server-side writer) of their own.
    blobs: Option<Client<Connector, RequestBody>>,
    rules: Arc<ProxyRules>,
    connect_timeout: Duration,
    response_timeout: Duration,
    read_idle_timeout: Duration,
    warnings: Vec<String>,
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("response_timeout", &self.inner.response_timeout)
            .field("read_idle_timeout", &self.inner.read_idle_timeout)
            .field("proxy", &self.inner.rules)
            .finish_non_exhaustive()
    }
}

impl HyperTransport {
    /// Settings for a transport, starting from the defaults: webpki and
    /// system roots, no certs.d lookup, no insecure host, no proxy.
    pub fn builder() -> HyperTransportBuilder {
        HyperTransportBuilder::default()
    }

    /// What the build noticed but did not refuse (system certificates that
    /// could not be loaded), for the caller to show.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }
}

impl Transport for HyperTransport {
    type Body = ResponseBody;

    fn send(
        &self,
        request: http::Request<OutgoingBody>,
    ) -> impl Future<Output = Result<http::Response<ResponseBody>, TransportError>> + Send {
        self.inner.send(request)
    }
}

impl Inner {
    async fn send(
        &self,
        request: http::Request<OutgoingBody>,
    ) -> Result<http::Response<ResponseBody>, TransportError> {
        let (mut parts, body) = request.into_parts();
        let authority: Arc<str> = match (parts.uri.scheme_str(), parts.uri.authority()) {
            (Some("http" | "https"), Some(a)) => {
                // Never show credentials a URL may carry.
                a.as_str().rsplit('@').next().unwrap_or_default().into()
            }
            (scheme, _) => {
                let message = format!(
                    "cannot send a request to a URL with scheme {} and host {}: only http:// and \
                     https:// URLs with a host are supported",
                    scheme.unwrap_or("(none)"),
                    parts.uri.host().unwrap_or("(none)"),
                );
                return Err(TransportError::new(TransportFailure::new(
                    FailureKind::Request,
                    message,
                )));
            }
        };
        if let Route::Forward(proxy) = self.rules.route(&parts.uri)
            && let Some(auth) = proxy.auth
        {
            parts
                .headers
                .insert(http::header::PROXY_AUTHORIZATION, auth);
        }
        let body = RequestBody::new(body, self.connect_timeout);
        let clock = body.clock();
        let request = http::Request::from_parts(parts, body);
        let client = match &self.blobs {
            Some(blobs) if request.extensions().get::<BlobTransfer>().is_some() => blobs,
            _ => &self.client,
        };
        let mut sending = client.request(request);
        // The head is due `response_timeout` after the body is sent; while
        // the body is being sent, it must keep moving (read-idle timeout).
        let response = loop {
            let (deadline, waiting) = clock.deadline(self.response_timeout, self.read_idle_timeout);
            // While uploading, look again at least once per idle period:
            // progress moves the deadline, the connect allowance ends early.
            let wake = match waiting {
                Waiting::Upload => {
                    deadline.min(tokio::time::Instant::now() + self.read_idle_timeout)
                }
                Waiting::Head => deadline,
            };
            match tokio::time::timeout_at(wake, &mut sending).await {
                Ok(Ok(response)) => break response,
                Ok(Err(e)) => {
                    return Err(TransportError::new(error::classify_request(&authority, e)));
                }
                Err(_) => {
                    let (deadline, waiting) =
                        clock.deadline(self.response_timeout, self.read_idle_timeout);
                    if tokio::time::Instant::now() < deadline {
                        continue; // the upload moved on meanwhile
                    }
                    let failure = match waiting {
                        Waiting::Head => TransportFailure::new(
                            FailureKind::ResponseTimeout,
                            format!(
                                "no response from {authority} within {} ms of sending the \
                                 request (the response timeout)",
                                self.response_timeout.as_millis()
                            ),
                        ),
                        Waiting::Upload => TransportFailure::new(
                            FailureKind::UploadStalled,
                            format!(
                                "the upload to {authority} stalled: nothing was sent for {} ms \
                                 (the read-idle timeout)",
                                self.read_idle_timeout.as_millis()
                            ),
                        ),
                    };
                    return Err(TransportError::new(failure));
                }
            }
        };
        let (head, incoming) = response.into_parts();
        Ok(http::Response::from_parts(
            head,
            ResponseBody::new(incoming, self.read_idle_timeout, authority),
        ))
    }
}

/// Settings for a [`HyperTransport`].
///
/// Per-site settings (insecure hosts, CAs, client certificates) are keyed
/// by `host:port`, as Docker keys `certs.d` directories and insecure
/// registries: `reg.example` means port 443 only, and `localhost:5000` and
/// `localhost:5001` are two sites. Each site gets a TLS config of its own,
/// chosen by the connection's host and port.
#[derive(Debug)]
pub struct HyperTransportBuilder {
    connect_timeout: Duration,
    response_timeout: Duration,
    read_idle_timeout: Duration,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    http2: bool,
    pins: HashMap<String, Vec<std::net::IpAddr>>,
    tls: TlsSettings,
    proxy: ProxyConfig,
}

impl Default for HyperTransportBuilder {
    fn default() -> Self {
        HyperTransportBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            read_idle_timeout: DEFAULT_READ_IDLE_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: usize::MAX,
            http2: true,
            pins: HashMap::new(),
            tls: TlsSettings {
                webpki_roots: true,
                native_roots: true,
                ..TlsSettings::default()
            },
            proxy: ProxyConfig::default(),
        }
    }
}

impl HyperTransportBuilder {
    /// The longest a new connection may take: TCP, the proxy tunnel and
    /// the TLS handshake together.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest wait for the response head once the request is sent in
    /// full, its body included (Go's `ResponseHeaderTimeout`). A request
    /// without a body counts from when it is handed over, connecting
    /// included. While a body is being sent, it must keep moving: no
    /// progress for the read-idle timeout (after the connect timeout for
    /// the first chunk) fails the request.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The longest silence while a response body is read (past it the body
    /// yields an error), and while a request body is sent (past it the
    /// request fails).
    pub fn read_idle_timeout(mut self, timeout: Duration) -> Self {
        self.read_idle_timeout = timeout;
        self
    }

    /// How long an unused pooled connection is kept.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections are kept per host (default: no limit).
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// Whether HTTP/2 is offered by ALPN (default: yes). Without it every
    /// connection speaks HTTP/1.1. With it, blob transfers (requests
    /// marked [`berth_protocol::BlobTransfer`]) still go over HTTP/1.1
    /// connections of their own, one per transfer at a time: on one
    /// HTTP/2 connection, concurrent blobs share its flow-control window
    /// and the server's one writer (over TLS on loopback, 8 x 64 MiB took
    /// 1.3 s that way and 0.85 s over HTTP/1.1).
    pub fn http2(mut self, enabled: bool) -> Self {
        self.http2 = enabled;
        self
    }

    /// Whether the Mozilla roots from `webpki-roots` are trusted (default:
    /// yes).
    pub fn webpki_roots(mut self, enabled: bool) -> Self {
        self.tls.webpki_roots = enabled;
        self
    }

    /// Whether the system's trust store is trusted (default: yes). A system
    /// store that cannot be loaded is a warning, not an error.
    pub fn system_roots(mut self, enabled: bool) -> Self {
        self.tls.native_roots = enabled;
        self
    }

    /// Trusts every CA certificate in a PEM file, for every host.
    pub fn extra_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.extra_cas.push(Pem::File(path.into()));
        self
    }

    /// Trusts every CA certificate in PEM text, for every host.
    pub fn extra_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.extra_cas.push(Pem::Bytes(pem.into()));
        self
    }

    /// Trusts the CA certificates in a PEM file for `host[:port]` only (port
    /// 443 when none is written).
    pub fn host_ca_file(mut self, host: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.tls
            .host_cas
            .push((host.into(), Pem::File(path.into())));
        self
    }

    /// Trusts the CA certificates in PEM text for `host[:port]` only (port
    /// 443 when none is written).
    pub fn host_ca_pem(mut self, host: impl Into<String>, pem: impl Into<Vec<u8>>) -> Self {
        self.tls
            .host_cas
            .push((host.into(), Pem::Bytes(pem.into())));
        self
    }

    /// The client certificate (a PEM chain, leaf first) and key presented
    /// to every host that asks for one and has none of its own.
    pub fn client_identity_files(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.identity = Some(Identity {
            cert: Pem::File(cert.into()),
            key: Pem::File(key.into()),
        });
        self
    }

    /// [`client_identity_files`](Self::client_identity_files) from PEM text.
    pub fn client_identity_pem(
        mut self,
        cert: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.identity = Some(Identity {
            cert: Pem::Bytes(cert.into()),
            key: Pem::Bytes(key.into()),
        });
        self
    }

    /// The client certificate and key presented to `host[:port]` (port 443
    /// when none is written); it replaces one found in certs.d for that
    /// site.
    pub fn host_client_identity_files(
        mut self,
        host: impl Into<String>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.host_identities.push((
            host.into(),
            Identity {
                cert: Pem::File(cert.into()),
                key: Pem::File(key.into()),
            },
        ));
        self
    }

    /// [`host_client_identity_files`](Self::host_client_identity_files)
    /// from PEM text.
    pub fn host_client_identity_pem(
        mut self,
        host: impl Into<String>,
        cert: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.host_identities.push((
            host.into(),
            Identity {
                cert: Pem::Bytes(cert.into()),
                key: Pem::Bytes(key.into()),
            },
        ));
        self
    }

    /// Whether `certs.d` directories are read (default: no). With it on and
    /// no roots given, [`DEFAULT_CERTS_D_ROOTS`] are read. For a directory
    /// `<root>/<host[:port]>/`: every `*.crt` is a CA trusted for that
    /// site only (`<host>/` is port 443, as in Docker); `<name>.cert` with
    /// `<name>.key` is the client certificate for that site. Files are read
    /// once, by [`build`](Self::build); a root
    /// that does not exist is skipped.
    pub fn certs_d(mut self, enabled: bool) -> Self {
        self.tls.certs_d = match (enabled, self.tls.certs_d.take()) {
            (false, _) => None,
            (true, Some(roots)) => Some(roots),
            (true, None) => Some(DEFAULT_CERTS_D_ROOTS.iter().map(PathBuf::from).collect()),
        };
        self
    }

    /// Reads these `certs.d` roots (in order) instead of the defaults, and
    /// turns the lookup on.
    pub fn certs_d_roots<P: Into<PathBuf>>(mut self, roots: impl IntoIterator<Item = P>) -> Self {
        self.tls.certs_d = Some(roots.into_iter().map(Into::into).collect());
        self
    }

    /// Names a site insecure: its certificate is not verified at all. An
    /// explicit opt-in, for `HOST[:PORT]` as the user wrote it: that port
    /// only, 443 when none is written (see the type's docs). `*.domain`
    /// covers every subdomain of domain, on every port (a registries.conf
    /// wildcard). Plain http for that host is the protocol core's
    /// decision, not this one.
    pub fn insecure_host(mut self, host: impl Into<String>) -> Self {
        self.tls.insecure_hosts.push(host.into());
        self
    }

    /// Pins a host name to an address, skipping name resolution (like
    /// curl's `--resolve`); the port comes from each URL. Calling it again
    /// for the same host adds an address. TLS still checks the certificate
    /// against the host name.
    pub fn resolve(mut self, host: impl Into<String>, ip: std::net::IpAddr) -> Self {
        let host: String = host.into();
        self.pins
            .entry(host.to_ascii_lowercase())
            .or_default()
            .push(ip);
        self
    }

    /// Which proxies to use (default: none).
    pub fn proxy(mut self, proxy: ProxyConfig) -> Self {
        self.proxy = proxy;
        self
    }

    /// Reads the files named (CA files, client certificates, certs.d) and
    /// builds the transport.
    ///
    /// It needs no running runtime, but the transport must be used inside
    /// a Tokio runtime.
    pub fn build(self) -> Result<HyperTransport, BuildError> {
        let tls = self.tls.build()?;
        let rules = Arc::new(ProxyRules::new(self.proxy)?);

        let resolver = PinnedResolver {
            pins: Arc::new(self.pins),
            system: GaiResolver::new(),
        };
        let mut tcp = HttpConnector::new_with_resolver(resolver);
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(self.connect_timeout));
        let base = ProxyConnector {
            tcp,
            rules: rules.clone(),
        };
        let connector = |http2: bool| {
            let wrap = |config: rustls::ClientConfig| {
                let builder = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_or_http()
                    .enable_http1();
                if http2 {
                    builder.enable_http2().wrap_connector(base.clone())
                } else {
                    builder.wrap_connector(base.clone())
                }
            };
            let per_site: HashMap<_, _> = tls
                .per_site
                .iter()
                .map(|(site, config)| (site.clone(), wrap(config.clone())))
                .collect();
            Connector {
                default: wrap(tls.default.clone()),
                per_site: Arc::new(per_site),
                insecure_wildcards: tls
                    .insecure_wildcards
                    .as_ref()
                    .map(|(domains, config)| (domains.clone().into(), wrap(config.clone()))),
                timeout: self.connect_timeout,
            }
        };
        let client = |http2: bool| {
            Client::builder(TokioExecutor::new())
                .http1_max_buf_size(HTTP1_MAX_BUF)
                .http2_initial_stream_window_size(HTTP2_STREAM_WINDOW)
                .http2_initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
                .pool_idle_timeout(self.pool_idle_timeout)
                .pool_max_idle_per_host(self.pool_max_idle_per_host)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(connector(http2))
        };
        Ok(HyperTransport {
            inner: Arc::new(Inner {
                client: client(self.http2),
                blobs: self.http2.then(|| client(false)),
                rules,
                connect_timeout: self.connect_timeout,
                response_timeout: self.response_timeout,
                read_idle_timeout: self.read_idle_timeout,
                warnings: tls.warnings,
            }),
        })
    }
}

/// The clock and sleep of a Tokio runtime, for
/// [`berth_protocol::driver::drive`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}
