//! Shared test helpers: a CA and certificates made at test time (rcgen), a
//! temporary certs.d, and a small hyper server on 127.0.0.1 that counts its
//! TCP connections and records the HTTP versions and client certificates
//! it saw.
#![allow(dead_code, unreachable_pub)] // shared by several test binaries

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_hyper::{HyperTransport, ResponseBody};
use berth_protocol::TransportError;
use berth_protocol::driver::{OutgoingBody, Transport};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The longest any single step of a test may take.
pub const STEP: Duration = Duration::from_secs(20);

/// A certificate and its key, as PEM and DER.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

/// A test CA with a server certificate (localhost, registry.test,
/// 127.0.0.1, ::1) and a client certificate, both signed by it.
pub struct Pki {
    pub ca: Issued,
    pub server: Issued,
    pub client: Issued,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "berth-hyper test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");

        let server_key = KeyPair::generate().expect("server key");
        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "registry.test".to_owned()])
                .expect("server params");
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server_params
            .subject_alt_names
            .push(SanType::IpAddress("::1".parse().expect("ip")));
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("server cert");

        let client_key = KeyPair::generate().expect("client key");
        let mut client_params =
            CertificateParams::new(Vec::<String>::new()).expect("client params");
        client_params
            .distinguished_name
            .push(DnType::CommonName, "berth-hyper test client");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params
            .signed_by(&client_key, &ca_cert, &ca_key)
            .expect("client cert");

        let issued = |cert: rcgen::Certificate, key: KeyPair| Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        };
        Pki {
            ca: issued(ca_cert, ca_key),
            server: issued(server_cert, server_key),
            client: issued(client_cert, client_key),
        }
    }

    /// A server TLS config offering h2 and http/1.1; with
    /// `require_client_cert`, only clients with a certificate from this CA
    /// get through.
    pub fn server_config(&self, require_client_cert: bool) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions");
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca.cert_der.clone()).expect("CA root");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server.key_der.clone()));
        let mut config = builder
            .with_single_cert(vec![self.server.cert_der.clone()], key)
            .expect("server cert");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "berth-hyper-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `<root>/<authority>/<name>`.
    pub fn write(&self, authority: &str, name: &str, contents: &str) {
        let dir = self.0.join(authority);
        std::fs::create_dir_all(&dir).expect("certs.d host dir");
        std::fs::write(dir.join(name), contents).expect("certs.d file");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub type Body = BoxBody<Bytes, io::Error>;
type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
pub type Handler = Arc<dyn Fn(Request<Incoming>) -> HandlerFuture + Send + Sync>;

/// Makes a handler from an async closure.
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A response with this status and body.
pub fn reply(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(full(body))
        .expect("response")
}

/// A server on 127.0.0.1, plain or TLS, serving HTTP/1.1 and HTTP/2.
pub struct Server {
    pub addr: SocketAddr,
    /// TCP connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// TLS handshakes in which the client presented a certificate.
    pub client_certs: Arc<AtomicUsize>,
    /// The HTTP version of every request.
    pub versions: Arc<Mutex<Vec<Version>>>,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(tls: Option<Arc<ServerConfig>>, handler: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let client_certs = Arc::new(AtomicUsize::new(0));
        let versions = Arc::new(Mutex::new(Vec::new()));
        let (c, cc, v) = (connections.clone(), client_certs.clone(), versions.clone());
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (handler, tls, cc, v) = (handler.clone(), tls.clone(), cc.clone(), v.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        v.lock().expect("lock").push(req.version());
                        let response = handler(req);
                        async move { Ok::<_, Infallible>(response.await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(config) => {
                            let Ok(stream) =
                                tokio_rustls::TlsAcceptor::from(config).accept(tcp).await
                            else {
                                return;
                            };
                            if stream.get_ref().1.peer_certificates().is_some() {
                                cc.fetch_add(1, Ordering::SeqCst);
                            }
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        Server {
            addr,
            connections,
            client_certs,
            versions,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn versions(&self) -> Vec<Version> {
        self.versions.lock().expect("lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A transport that trusts only what a test gives it (no system roots).
pub fn builder() -> berth_hyper::HyperTransportBuilder {
    HyperTransport::builder()
        .system_roots(false)
        .connect_timeout(Duration::from_secs(10))
        .response_timeout(Duration::from_secs(20))
}

/// Sends `method url` with `body`, bounded by [`STEP`].
pub async fn send(
    transport: &HyperTransport,
    method: &str,
    url: &str,
    body: OutgoingBody,
) -> Result<Response<ResponseBody>, TransportError> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .expect("request");
    tokio::time::timeout(STEP, transport.send(request))
        .await
        .expect("the request finished in time")
}

pub async fn get(
    transport: &HyperTransport,
    url: &str,
) -> Result<Response<ResponseBody>, TransportError> {
    send(transport, "GET", url, OutgoingBody::Empty).await
}

/// Reads a body to its end: the bytes and how many chunks they came in.
pub async fn read_all(body: &mut ResponseBody) -> Result<(Vec<u8>, usize), TransportError> {
    let mut out = Vec::new();
    let mut chunks = 0;
    loop {
        let next = tokio::time::timeout(STEP, body.next())
            .await
            .expect("the body finished in time");
        match next {
            Some(Ok(chunk)) => {
                chunks += 1;
                out.extend_from_slice(&chunk);
            }
            Some(Err(e)) => return Err(e),
            None => return Ok((out, chunks)),
        }
    }
}

/// The whole error chain as text.
pub fn error_text(e: &TransportError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&*e.source);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A deterministic pattern of `len` bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i % 251).expect("below 251"))
        .collect()
}

/// sha256 as lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
