//! What went wrong on the wire, in words a person can act on.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The TCP connection could not be made: refused, unreachable, or the
    /// name did not resolve.
    Connect,
    /// Connecting (TCP, the proxy tunnel and the TLS handshake) took longer
    /// than the connect timeout.
    ConnectTimeout,
    /// The proxy could not be reached, refused the tunnel or wants
    /// credentials.
    Proxy,
    /// A certificate was refused: the server's (not trusted, expired, not
    /// valid for the name) or ours (the server wants a client certificate
    /// or did not accept the one sent).
    Certificate,
    /// Another TLS failure: no common protocol version, or a server that
    /// does not speak TLS on that port.
    Tls,
    /// The response head did not arrive within the response timeout.
    ResponseTimeout,
    /// The response body sent nothing for longer than the read-idle
    /// timeout.
    ReadIdleTimeout,
    /// The request body made no progress for longer than the read-idle
    /// timeout (the server stopped taking it).
    UploadStalled,
    /// The connection broke, or the peer spoke bad HTTP.
    Http,
    /// The request could not be sent as given: a URL without a host or with
    /// an unknown scheme, an upload stream that failed or did not match its
    /// declared length.
    Request,
}

/// A transport failure: its kind and a message that names the host, what
/// happened and, where there is one, what to do. It travels inside
/// [`berth_protocol::TransportError`]; find it with
/// [`TransportFailure::find`].
///
/// Its `Display` is the message alone; [`source`](StdError::source) keeps
/// the underlying error for a verbose cause chain.
#[derive(Debug)]
pub struct TransportFailure {
    kind: FailureKind,
    message: String,
    source: Option<BoxError>,
}

impl TransportFailure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        TransportFailure {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The message, as `Display` shows it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a certificate was refused (ours or the server's).
    pub fn is_certificate(&self) -> bool {
        self.kind == FailureKind::Certificate
    }

    /// Whether a timeout ran out (connect, response head or read idle).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::ConnectTimeout
                | FailureKind::ResponseTimeout
                | FailureKind::ReadIdleTimeout
        )
    }

    /// The first `TransportFailure` in an error's cause chain (for a
    /// [`berth_protocol::TransportError`], pass its `source`).
    pub fn find<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a TransportFailure> {
        chain(error).find_map(|e| e.downcast_ref::<TransportFailure>())
    }
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for TransportFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// A cause chain that also looks inside `io::Error`s that wrap another
/// error (`io::Error::source` skips the wrapped error itself).
pub(crate) fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn StdError + 'static)| {
        let e: &'a (dyn StdError + 'static) = *e;
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(inner) = io.get_ref()
        {
            return Some(inner as &(dyn StdError + 'static));
        }
        // HTTP/2 keeps its I/O error out of `source()`.
        if let Some(io) = e.downcast_ref::<h2::Error>().and_then(h2::Error::get_io) {
            return Some(io as &(dyn StdError + 'static));
        }
        e.source()
    })
    .take(32)
}

/// Every message in a chain, joined with `: `, skipping repeats.
fn chain_text(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in chain(error) {
        let text = e.to_string();
        if text.is_empty() || parts.last().is_some_and(|last| last.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// A failure from connecting to `authority` (TCP, proxy tunnel, TLS).
pub(crate) fn classify_connect(authority: &str, error: BoxError) -> TransportFailure {
    let error = match error.downcast::<TransportFailure>() {
        Ok(failure) => return *failure,
        Err(e) => e,
    };
    let root: &(dyn StdError + 'static) = &*error;
    if let Some(failure) = TransportFailure::find(root) {
        let (kind, message) = (failure.kind, failure.message.clone());
        return TransportFailure::new(kind, message).with_source(error);
    }
    let tls = chain(root)
        .find_map(|e| e.downcast_ref::<rustls::Error>())
        .map(|tls| describe_tls(authority, tls));
    if let Some((kind, message)) = tls {
        return TransportFailure::new(kind, message).with_source(error);
    }
    let timed_out = chain(root)
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::TimedOut);
    let text = chain_text(root);
    if timed_out {
        return TransportFailure::new(
            FailureKind::ConnectTimeout,
            format!("connecting to {authority} timed out: {text}"),
        )
        .with_source(error);
    }
    TransportFailure::new(
        FailureKind::Connect,
        format!("cannot connect to {authority}: {text}"),
    )
    .with_source(error)
}

/// A failure from the pooled client after connecting, or while sending.
pub(crate) fn classify_request(
    authority: &str,
    error: hyper_util::client::legacy::Error,
) -> TransportFailure {
    let root: &(dyn StdError + 'static) = &error;
    if let Some(failure) = TransportFailure::find(root) {
        let (kind, message) = (failure.kind, failure.message.clone());
        return TransportFailure::new(kind, message).with_source(error);
    }
    let tls = chain(root)
        .find_map(|e| e.downcast_ref::<rustls::Error>())
        .map(|tls| describe_tls(authority, tls));
    if let Some((kind, message)) = tls {
        return TransportFailure::new(kind, message).with_source(error);
    }
    let text = chain_text(root);
    if let Some((kind, message)) = describe_tls_text(authority, &text) {
        return TransportFailure::new(kind, message).with_source(error);
    }
    if error.is_connect() {
        return TransportFailure::new(
            FailureKind::Connect,
            format!("cannot connect to {authority}: {text}"),
        )
        .with_source(error);
    }
    let body_failed = chain(root)
        .filter_map(|e| e.downcast_ref::<hyper::Error>())
        .any(|e| e.is_user());
    let kind = if body_failed {
        FailureKind::Request
    } else {
        FailureKind::Http
    };
    TransportFailure::new(kind, format!("request to {authority} failed: {text}")).with_source(error)
}

/// Words for a rustls error met while talking to `authority`.
pub(crate) fn describe_tls(authority: &str, error: &rustls::Error) -> (FailureKind, String) {
    use rustls::CertificateError as C;
    let trust_hint = format!(
        "trust its CA (certs.d/{authority}/ca.crt or an extra CA file), or name the host insecure"
    );
    let server = |why: String| {
        (
            FailureKind::Certificate,
            format!("the TLS certificate of {authority} was refused: {why}"),
        )
    };
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => server(format!(
                "it is signed by an unknown issuer (not in the trusted roots); {trust_hint}"
            )),
            C::Expired | C::ExpiredContext { .. } => server(format!("it has expired ({cert:?})")),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                server(format!("it is not valid yet ({cert:?}); check the clock"))
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => server(format!(
                "name mismatch: it is not valid for the name being connected to ({cert:?})"
            )),
            C::Revoked => server("it has been revoked".to_owned()),
            C::BadSignature => server("its signature is invalid".to_owned()),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                server("it is not meant for a TLS server (extended key usage)".to_owned())
            }
            C::BadEncoding => server("it is malformed".to_owned()),
            other => server(format!("{other:?}")),
        },
        rustls::Error::AlertReceived(alert) if is_certificate_alert(&format!("{alert:?}")) => {
            refused_client_certificate(authority, &format!("{alert:?}"))
        }
        rustls::Error::InvalidMessage(_) => (
            FailureKind::Tls,
            format!(
                "TLS handshake with {authority} failed: {error} (does the server speak plain \
                 http on this port?)"
            ),
        ),
        other => (
            FailureKind::Tls,
            format!("TLS handshake with {authority} failed: {other}"),
        ),
    }
}

/// TLS alerts a server sends when it does not accept our certificate (or
/// wants one).
fn is_certificate_alert(name: &str) -> bool {
    matches!(
        name,
        "BadCertificate"
            | "UnknownCA"
            | "CertificateRequired"
            | "CertificateUnknown"
            | "CertificateRevoked"
            | "CertificateExpired"
            | "UnsupportedCertificate"
            | "AccessDenied"
    )
}

fn refused_client_certificate(authority: &str, alert: &str) -> (FailureKind, String) {
    (
        FailureKind::Certificate,
        format!(
            "{authority} refused our client certificate (TLS alert {alert}): give a client \
             certificate it accepts (certs.d/{authority}/client.cert and client.key, or the \
             client identity option)"
        ),
    )
}

/// A TLS failure known only by its text: HTTP/2 turns I/O errors into
/// strings, so a rustls alert met after the handshake reaches us as
/// `received fatal alert: <name>`.
fn describe_tls_text(authority: &str, text: &str) -> Option<(FailureKind, String)> {
    if let Some((_, rest)) = text.split_once("received fatal alert: ") {
        let alert: String = rest
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        return Some(if is_certificate_alert(&alert) {
            refused_client_certificate(authority, &alert)
        } else {
            (
                FailureKind::Tls,
                format!("{authority} ended the TLS session (TLS alert {alert})"),
            )
        });
    }
    None
}

/// The transport could not be built from the settings given.
#[derive(Debug)]
pub struct BuildError {
    message: String,
    path: Option<PathBuf>,
    source: Option<BoxError>,
}

impl BuildError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        BuildError {
            message: message.into(),
            path: None,
            source: None,
        }
    }

    pub(crate) fn at(mut self, path: &Path) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The file or directory at fault, if one is.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(path) = &self.path {
            write!(f, " ({})", path.display())?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl StdError for BuildError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// A failure while a response body was read.
pub(crate) fn classify_body(authority: &str, error: hyper::Error) -> TransportFailure {
    let root: &(dyn StdError + 'static) = &error;
    let tls = chain(root)
        .find_map(|e| e.downcast_ref::<rustls::Error>())
        .map(|tls| describe_tls(authority, tls))
        .or_else(|| describe_tls_text(authority, &chain_text(root)));
    if let Some((kind, message)) = tls {
        return TransportFailure::new(kind, message).with_source(error);
    }
    let message = format!(
        "the response body from {authority} was cut off: {}",
        chain_text(root)
    );
    TransportFailure::new(FailureKind::Http, message).with_source(error)
}
