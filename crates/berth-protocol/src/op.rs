//! The shape every operation shares: a value that hands out [`Action`]s
//! and takes responses, bodies, timeouts and transport errors back.
//!
//! The order of calls, for a driver:
//!
//! 1. [`Operation::start`].
//! 2. On [`Action::Send`]: send the request. Give the response head to
//!    [`Operation::on_response`], or a failure to connect or to send to
//!    [`Operation::on_transport_error`]. Whatever the next action is, the
//!    body of the previous response is no longer wanted unless it is
//!    [`Action::ReadBody`] (drop or drain it).
//! 3. On [`Action::ReadBody`]: read the current response's body, at most
//!    `limit` bytes (more is [`crate::Error::TooLarge`]), and give it to
//!    [`Operation::on_body`]; a failure while reading goes to
//!    [`Operation::on_transport_error`].
//! 4. On [`Action::Wait`]: wait that long, then call
//!    [`Operation::on_timeout`].
//! 5. On [`Action::Done`]: the result. An operation whose result says it
//!    streams (a blob) hands the current response's body to the caller.
//!
//! Every call takes a [`Context`]: the shared [`Session`] and the time now.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::error::Error;
use crate::session::Session;

/// Marks, in its extensions, a request that carries a blob's bytes (a
/// blob download, or an upload's body). A transport may send such
/// requests on connections of their own: berth-hyper sends them over
/// HTTP/1.1, one connection per transfer, because on one multiplexed
/// HTTP/2 connection large bodies queue behind each other's flow-control
/// windows and the server's single writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BlobTransfer;

/// The body of a request the core asks to send.
///
/// Its `Debug` output gives the length of a `Bytes` body, not the bytes:
/// a token request's form carries a password or a refresh token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestBody {
    /// No body.
    Empty,
    /// These bytes (a manifest, a token request form).
    Bytes(Bytes),
    /// Bytes `offset .. offset + len` of the blob the caller is uploading;
    /// the driver supplies them from wherever the blob comes from.
    Blob {
        /// Where the range starts in the blob.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Empty => f.write_str("Empty"),
            RequestBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            RequestBody::Blob { offset, len } => f
                .debug_struct("Blob")
                .field("offset", offset)
                .field("len", len)
                .finish(),
        }
    }
}

impl RequestBody {
    /// The body's length, when known.
    pub fn len(&self) -> u64 {
        match self {
            RequestBody::Empty => 0,
            RequestBody::Bytes(b) => b.len() as u64,
            RequestBody::Blob { len, .. } => *len,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A request the core asks the driver to send.
pub type Request = http::Request<RequestBody>;

/// What an operation wants next.
#[derive(Debug)]
#[must_use]
// A request is the common case; boxing it would cost an allocation a step.
#[allow(clippy::large_enum_variant)]
pub enum Action<T> {
    /// Send this request.
    Send(Request),
    /// Read the current response's body (at most `limit` bytes).
    ReadBody {
        /// The most bytes to read; a longer body is an error.
        limit: usize,
    },
    /// Wait this long, then call `on_timeout`.
    Wait(Duration),
    /// Finished.
    Done(T),
}

impl Action<std::convert::Infallible> {
    /// Gives a step that cannot be final any result type.
    pub(crate) fn cast<U>(self) -> Action<U> {
        match self {
            Action::Send(r) => Action::Send(r),
            Action::ReadBody { limit } => Action::ReadBody { limit },
            Action::Wait(d) => Action::Wait(d),
            Action::Done(never) => match never {},
        }
    }
}

/// What every call gets: the session and the time.
#[derive(Debug)]
pub struct Context<'a> {
    /// The client's session (endpoints, challenges, tokens, policies).
    pub session: &'a mut Session,
    /// The time now, as the driver's clock says.
    pub now: SystemTime,
}

impl<'a> Context<'a> {
    /// A context for one call.
    pub fn new(session: &'a mut Session, now: SystemTime) -> Self {
        Context { session, now }
    }
}

/// A failure to send a request or to read its response.
#[derive(Debug)]
pub struct TransportError {
    /// What happened.
    pub source: Box<dyn std::error::Error + Send + Sync>,
    /// Whether any of the response had arrived (a cut body rather than a
    /// refused connection).
    pub after_response: bool,
}

impl TransportError {
    /// A transport error from any error.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        TransportError {
            source: source.into(),
            after_response: false,
        }
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

/// A registry operation as a state machine. See the module docs for the
/// order of calls.
pub trait Operation {
    /// What the operation produces.
    type Output;

    /// The first action.
    fn start(&mut self, cx: &mut Context<'_>) -> Result<Action<Self::Output>, Error>;

    /// The head of the response to the last request sent.
    fn on_response(
        &mut self,
        response: http::response::Parts,
        cx: &mut Context<'_>,
    ) -> Result<Action<Self::Output>, Error>;

    /// The body asked for with [`Action::ReadBody`].
    fn on_body(&mut self, body: Bytes, cx: &mut Context<'_>)
    -> Result<Action<Self::Output>, Error>;

    /// The wait asked for with [`Action::Wait`] is over.
    fn on_timeout(&mut self, cx: &mut Context<'_>) -> Result<Action<Self::Output>, Error>;

    /// The last request could not be sent, or its response not read.
    fn on_transport_error(
        &mut self,
        error: TransportError,
        cx: &mut Context<'_>,
    ) -> Result<Action<Self::Output>, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_a_token_form_only_by_its_length() {
        let form = "grant_type=password&username=u&password=s3cret&service=r";
        let request = http::Request::post("https://auth.example/token")
            .body(RequestBody::Bytes(Bytes::from_static(form.as_bytes())))
            .expect("request");
        let shown = format!("{:?}", Action::<()>::Send(request));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains(&format!("Bytes({} bytes)", form.len())),
            "{shown}"
        );
    }
}
