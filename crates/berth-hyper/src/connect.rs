//! Connectors: TCP (direct or through a proxy), then TLS with the config
//! for the host, all under the connect timeout.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower_service::Service;

use crate::error::{BoxError, FailureKind, TransportFailure, classify_connect};
use crate::proxy::{Proxy, ProxyRules, Route};
use crate::tls::{HTTPS_PORT, site_key};

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// The most a proxy's answer to `CONNECT` may hold.
const MAX_CONNECT_RESPONSE: usize = 16 * 1024;

/// A TCP connection, direct or to a proxy; `proxied` when requests on it
/// go to the proxy in absolute form.
#[derive(Debug)]
pub(crate) struct ProxyStream {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for ProxyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// Name resolution: the system resolver, except for host names pinned to
/// addresses by the caller.
#[derive(Debug, Clone)]
pub(crate) struct PinnedResolver {
    pub(crate) pins: Arc<HashMap<String, Vec<std::net::IpAddr>>>,
    pub(crate) system: GaiResolver,
}

impl Service<Name> for PinnedResolver {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = io::Error;
    type Future = BoxFuture<Self::Response, io::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        if let Some(ips) = self.pins.get(&name.as_str().to_ascii_lowercase()) {
            // The connector puts the URL's port on these.
            let addrs: Vec<_> = ips
                .iter()
                .map(|ip| std::net::SocketAddr::new(*ip, 0))
                .collect();
            return Box::pin(std::future::ready(Ok(addrs.into_iter())));
        }
        let resolving = self.system.call(name);
        Box::pin(async move { Ok(resolving.await?.collect::<Vec<_>>().into_iter()) })
    }
}

pub(crate) type TcpConnector = HttpConnector<PinnedResolver>;

/// TCP to the destination, or to the proxy that route says.
#[derive(Debug, Clone)]
pub(crate) struct ProxyConnector {
    pub(crate) tcp: TcpConnector,
    pub(crate) rules: Arc<ProxyRules>,
}

impl Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = BoxFuture<ProxyStream, BoxError>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // A fresh clone of the TCP connector is used per call; it is
        // always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let route = self.rules.route(&dst);
        let mut tcp = self.tcp.clone();
        Box::pin(async move {
            match route {
                Route::Direct => {
                    let io = tcp.call(dst).await?;
                    Ok(ProxyStream { io, proxied: false })
                }
                Route::Forward(proxy) => {
                    let io = to_proxy(&mut tcp, &proxy).await?;
                    Ok(ProxyStream { io, proxied: true })
                }
                Route::Tunnel(proxy) => {
                    let io = to_proxy(&mut tcp, &proxy).await?;
                    let host = dst.host().unwrap_or_default();
                    let port = dst.port_u16().unwrap_or(443);
                    let target = format!("{host}:{port}");
                    let stream = tunnel(io.into_inner(), &target, &proxy).await?;
                    Ok(ProxyStream {
                        io: TokioIo::new(stream),
                        proxied: false,
                    })
                }
            }
        })
    }
}

async fn to_proxy(tcp: &mut TcpConnector, proxy: &Proxy) -> Result<TokioIo<TcpStream>, BoxError> {
    tcp.call(proxy.uri.clone()).await.map_err(|e| {
        let inner = classify_connect(&proxy.authority, Box::new(e));
        let message = format!("the proxy is unreachable: {}", inner.message());
        Box::new(TransportFailure::new(FailureKind::Proxy, message).with_source(inner)) as BoxError
    })
}

/// An HTTP `CONNECT` handshake to `target` (`host:port`) over `stream`.
async fn tunnel(mut stream: TcpStream, target: &str, proxy: &Proxy) -> Result<TcpStream, BoxError> {
    let failure =
        |message: String| Box::new(TransportFailure::new(FailureKind::Proxy, message)) as BoxError;
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = proxy
        .auth
        .as_ref()
        .and_then(|a: &HeaderValue| a.to_str().ok())
    {
        head.push_str("Proxy-Authorization: ");
        head.push_str(auth);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let io_failure = |e: io::Error| {
        Box::new(
            TransportFailure::new(
                FailureKind::Proxy,
                format!(
                    "the proxy {} broke the CONNECT to {target}: {e}",
                    proxy.authority
                ),
            )
            .with_source(e),
        ) as BoxError
    };
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(io_failure)?;

    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut chunk).await.map_err(io_failure)?;
        if n == 0 {
            return Err(failure(format!(
                "the proxy {} closed the connection during the CONNECT to {target}",
                proxy.authority
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_CONNECT_RESPONSE {
            return Err(failure(format!(
                "the proxy {} sent an oversized answer to CONNECT",
                proxy.authority
            )));
        }
    };
    if end != buf.len() {
        return Err(failure(format!(
            "the proxy {} sent data after its answer to CONNECT",
            proxy.authority
        )));
    }
    let status_line = buf
        .split(|&b| b == b'\r')
        .next()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) if status_line.starts_with("HTTP/1.") => Ok(stream),
        Some(407) => Err(failure(format!(
            "the proxy {} wants credentials (407 Proxy Authentication Required): put \
             user:password in the proxy URL",
            proxy.authority
        ))),
        _ => Err(failure(format!(
            "the proxy {} refused the CONNECT to {target}: {status_line}",
            proxy.authority
        ))),
    }
}

type Tls = HttpsConnector<ProxyConnector>;

/// The connector the pooled client uses: picks the TLS config by host
/// (client certificates are per host), bounds the whole connect (TCP,
/// tunnel, handshake) by the connect timeout, and turns failures into
/// [`TransportFailure`]s.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) default: Tls,
    /// By site, `host:port` ([`site_key`]).
    pub(crate) per_site: Arc<HashMap<String, Tls>>,
    /// `*.domain` insecure entries' domains, and their connector.
    pub(crate) insecure_wildcards: Option<(Arc<[String]>, Tls)>,
    pub(crate) timeout: Duration,
}

impl Connector {
    /// The TLS connector for a URL's site.
    fn tls_for(&self, dst: &Uri) -> &Tls {
        let Some(host) = dst.host() else {
            return &self.default;
        };
        let port = dst.port_u16().unwrap_or(match dst.scheme_str() {
            Some("http") => 80,
            _ => HTTPS_PORT,
        });
        let key = site_key(&format!("{host}:{port}"), port);
        if let Some(tls) = self.per_site.get(&key) {
            return tls;
        }
        if let Some((domains, tls)) = &self.insecure_wildcards {
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if domains
                .iter()
                .any(|d| berth_protocol::endpoint::is_subdomain(bare, d))
            {
                return tls;
            }
        }
        &self.default
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field(
                "sites_with_settings",
                &self.per_site.keys().collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Service<Uri> for Connector {
    type Response = MaybeHttpsStream<ProxyStream>;
    type Error = TransportFailure;
    type Future = BoxFuture<Self::Response, TransportFailure>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let authority = dst
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let mut tls = self.tls_for(&dst).clone();
        let timeout = self.timeout;
        let connecting = tls.call(dst);
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(e)) => Err(classify_connect(&authority, e)),
                Err(_) => Err(TransportFailure::new(
                    FailureKind::ConnectTimeout,
                    format!(
                        "connecting to {authority} timed out after {} ms (TCP, proxy and TLS \
                         handshake)",
                        timeout.as_millis()
                    ),
                )),
            }
        })
    }
}
