//! Drivers: loops that run an [`Operation`] over a transport. The core does
//! not care how bytes move; these two show it.
//!
//! - [`drive`]: async, for any executor. The caller gives a [`Transport`]
//!   and a [`Runtime`] (its clock and its sleep); nothing here names an
//!   executor.
//! - [`drive_blocking`]: the same loop over a [`BlockingTransport`].
//!
//! Both read bodies the operation asks for up to its limit, feed upload
//! ranges from a [`BlobSource`], and hand the last response's body to the
//! caller when the operation finishes with one unread (a blob).

use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Context as TaskContext;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use crate::error::Error;
use crate::op::{Action, Context, Operation, RequestBody, TransportError};
use crate::session::Session;

/// A request body as a transport sends it.
pub enum OutgoingBody {
    /// No body.
    Empty,
    /// These bytes.
    Bytes(Bytes),
    /// A stream of `len` bytes (a blob range from the caller).
    Stream {
        /// The bytes.
        stream: Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>,
        /// How many bytes the stream yields.
        len: u64,
    },
}

impl std::fmt::Debug for OutgoingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutgoingBody::Empty => f.write_str("Empty"),
            OutgoingBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            OutgoingBody::Stream { len, .. } => write!(f, "Stream({len} bytes)"),
        }
    }
}

/// Where upload ranges come from: a file, a buffer, another registry.
pub trait BlobSource: Send + Sync {
    /// Bytes `offset .. offset + len` of the blob being uploaded.
    fn range(&self, offset: u64, len: u64) -> Result<OutgoingBody, TransportError>;
}

impl BlobSource for Bytes {
    fn range(&self, offset: u64, len: u64) -> Result<OutgoingBody, TransportError> {
        let start =
            usize::try_from(offset).map_err(|_| TransportError::new("offset out of range"))?;
        let end = usize::try_from(offset.saturating_add(len))
            .map_err(|_| TransportError::new("range too large"))?;
        if end > self.len() || start > end {
            return Err(TransportError::new(format!(
                "range {offset}+{len} beyond a blob of {} bytes",
                self.len()
            )));
        }
        Ok(OutgoingBody::Bytes(self.slice(start..end)))
    }
}

/// Sends requests, asynchronously, on any executor.
pub trait Transport: Send + Sync {
    /// A response body: a stream of chunks.
    type Body: Stream<Item = Result<Bytes, TransportError>> + Send + Unpin;

    /// Sends one request; resolves with the response head and its body.
    fn send(
        &self,
        request: http::Request<OutgoingBody>,
    ) -> impl Future<Output = Result<http::Response<Self::Body>, TransportError>> + Send;
}

/// The caller's clock and sleep (the core keeps neither).
pub trait Runtime: Send + Sync {
    /// The time now.
    fn now(&self) -> SystemTime;
    /// Waits `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;
}

fn outgoing(
    request: crate::op::Request,
    blobs: Option<&dyn BlobSource>,
) -> Result<http::Request<OutgoingBody>, TransportError> {
    let (head, body) = request.into_parts();
    let body = match body {
        RequestBody::Empty => OutgoingBody::Empty,
        RequestBody::Bytes(b) => OutgoingBody::Bytes(b),
        RequestBody::Blob { offset, len } => match blobs {
            Some(source) => source.range(offset, len)?,
            None => {
                return Err(TransportError::new(
                    "the operation uploads a blob but no blob source was given",
                ));
            }
        },
    };
    Ok(http::Request::from_parts(head, body))
}

async fn next_chunk<B: Stream<Item = Result<Bytes, TransportError>> + Unpin>(
    body: &mut B,
) -> Option<Result<Bytes, TransportError>> {
    std::future::poll_fn(|cx: &mut TaskContext<'_>| Pin::new(&mut *body).poll_next(cx)).await
}

enum Read_ {
    Body(Bytes),
    TooLarge,
    Failed(TransportError),
}

async fn read_limited<B: Stream<Item = Result<Bytes, TransportError>> + Unpin>(
    body: &mut B,
    limit: usize,
) -> Read_ {
    let mut buf = BytesMut::new();
    while let Some(chunk) = next_chunk(body).await {
        match chunk {
            Ok(c) => {
                if buf.len() + c.len() > limit {
                    return Read_::TooLarge;
                }
                buf.extend_from_slice(&c);
            }
            Err(mut e) => {
                e.after_response = true;
                return Read_::Failed(e);
            }
        }
    }
    Read_::Body(buf.freeze())
}

/// One decision of the machine, with the session locked only for it.
fn decide<T, R: Runtime>(
    session: &Mutex<Session>,
    runtime: &R,
    f: impl FnOnce(&mut Context<'_>) -> Result<Action<T>, Error>,
) -> Result<Action<T>, Error> {
    let mut guard = session
        .lock()
        .map_err(|_| Error::Misuse("the session lock is poisoned"))?;
    f(&mut Context::new(&mut guard, runtime.now()))
}

/// The most steps one operation may take: a bound on a registry that keeps
/// the machine going (every step is a request, a wait or a body).
pub const MAX_STEPS: usize = 100_000;

/// Runs `op` to the end over `transport`. Returns its result, and the body
/// of the last response when the operation left it unread (a blob).
///
/// The session lock is held only while the machine decides, never across
/// an await.
pub async fn drive<O, T, R>(
    op: &mut O,
    session: &Mutex<Session>,
    transport: &T,
    runtime: &R,
    blobs: Option<&dyn BlobSource>,
) -> Result<(O::Output, Option<T::Body>), Error>
where
    O: Operation,
    T: Transport,
    R: Runtime,
{
    let mut action = decide(session, runtime, |cx| op.start(cx))?;
    let mut body: Option<T::Body> = None;
    for _ in 0..MAX_STEPS {
        action = match action {
            Action::Done(out) => return Ok((out, body)),
            Action::Send(request) => {
                body = None;
                let sent = match outgoing(request, blobs) {
                    Ok(r) => transport.send(r).await,
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(response) => {
                        let (head, b) = response.into_parts();
                        body = Some(b);
                        decide(session, runtime, |cx| op.on_response(head, cx))?
                    }
                    Err(e) => decide(session, runtime, |cx| op.on_transport_error(e, cx))?,
                }
            }
            Action::ReadBody { limit } => {
                let Some(b) = body.as_mut() else {
                    return Err(Error::Misuse("a body was asked for with no response"));
                };
                let read = read_limited(b, limit).await;
                body = None;
                match read {
                    Read_::Body(bytes) => decide(session, runtime, |cx| op.on_body(bytes, cx))?,
                    Read_::TooLarge => {
                        return Err(Error::TooLarge {
                            what: "response body",
                            limit: limit as u64,
                        });
                    }
                    Read_::Failed(e) => {
                        decide(session, runtime, |cx| op.on_transport_error(e, cx))?
                    }
                }
            }
            Action::Wait(d) => {
                body = None;
                runtime.sleep(d).await;
                decide(session, runtime, |cx| op.on_timeout(cx))?
            }
        };
    }
    Err(Error::Misuse(
        "the operation did not finish within the step limit",
    ))
}

/// Sends requests and blocks until the response head arrives.
pub trait BlockingTransport {
    /// A response body.
    type Body: Read;
    /// Sends one request.
    fn send(
        &self,
        request: http::Request<OutgoingBody>,
    ) -> Result<http::Response<Self::Body>, TransportError>;
}

/// A clock and a sleep for the blocking driver.
pub trait BlockingRuntime {
    /// The time now.
    fn now(&self) -> SystemTime;
    /// Waits `duration`.
    fn sleep(&self, duration: Duration);
}

/// [`drive`] for a blocking transport.
pub fn drive_blocking<O, T, R>(
    op: &mut O,
    session: &mut Session,
    transport: &T,
    runtime: &R,
    blobs: Option<&dyn BlobSource>,
) -> Result<(O::Output, Option<T::Body>), Error>
where
    O: Operation,
    T: BlockingTransport,
    R: BlockingRuntime,
{
    let mut action = op.start(&mut Context::new(session, runtime.now()))?;
    let mut body: Option<T::Body> = None;
    for _ in 0..MAX_STEPS {
        action = match action {
            Action::Done(out) => return Ok((out, body)),
            Action::Send(request) => {
                body = None;
                match outgoing(request, blobs).and_then(|r| transport.send(r)) {
                    Ok(response) => {
                        let (head, b) = response.into_parts();
                        body = Some(b);
                        op.on_response(head, &mut Context::new(session, runtime.now()))?
                    }
                    Err(e) => {
                        op.on_transport_error(e, &mut Context::new(session, runtime.now()))?
                    }
                }
            }
            Action::ReadBody { limit } => {
                let Some(mut b) = body.take() else {
                    return Err(Error::Misuse("a body was asked for with no response"));
                };
                let mut buf = Vec::new();
                let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
                match (&mut b).take(cap).read_to_end(&mut buf) {
                    Ok(n) if n > limit => {
                        return Err(Error::TooLarge {
                            what: "response body",
                            limit: limit as u64,
                        });
                    }
                    Ok(_) => {
                        op.on_body(Bytes::from(buf), &mut Context::new(session, runtime.now()))?
                    }
                    Err(e) => {
                        let mut e = TransportError::new(e);
                        e.after_response = true;
                        op.on_transport_error(e, &mut Context::new(session, runtime.now()))?
                    }
                }
            }
            Action::Wait(d) => {
                body = None;
                runtime.sleep(d);
                op.on_timeout(&mut Context::new(session, runtime.now()))?
            }
        };
    }
    Err(Error::Misuse(
        "the operation did not finish within the step limit",
    ))
}
