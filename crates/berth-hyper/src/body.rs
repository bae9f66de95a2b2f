//! Bodies: requests from [`OutgoingBody`], responses as a stream of chunks
//! with a read-idle timeout.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use berth_protocol::TransportError;
use berth_protocol::driver::OutgoingBody;
use bytes::Bytes;
use futures_core::Stream;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::{FailureKind, TransportFailure};

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// When the request body was last pulled and when it was sent in full:
/// the response-head timeout starts once the body is sent (as Go's
/// `ResponseHeaderTimeout`), so a long upload is bounded by its progress,
/// not by the head timeout.
#[derive(Debug)]
pub(crate) struct UploadClock {
    state: Mutex<UploadState>,
}

#[derive(Debug, Clone, Copy)]
struct UploadState {
    /// The last time the body gave hyper data (or the start, plus the
    /// connect allowance).
    last_progress: Instant,
    /// When the last byte was handed over.
    sent_at: Option<Instant>,
}

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// The upload is under way and must keep moving.
    Upload,
    /// The request is sent; the response head is due.
    Head,
}

impl UploadClock {
    /// A clock for a request sent now. The first chunk of a body is due
    /// after the connect allowance.
    pub(crate) fn new(connect_allowance: Duration, empty: bool) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(UploadClock {
            state: Mutex::new(UploadState {
                last_progress: now + connect_allowance,
                sent_at: empty.then_some(now),
            }),
        })
    }

    fn update(&self, f: impl FnOnce(&mut UploadState)) {
        if let Ok(mut state) = self.state.lock() {
            f(&mut state);
        }
    }

    fn progress(&self) {
        // The first chunk also ends the connect allowance.
        self.update(|s| s.last_progress = Instant::now());
    }

    fn sent(&self) {
        self.update(|s| {
            if s.sent_at.is_none() {
                s.sent_at = Some(Instant::now());
            }
        });
    }

    /// The next deadline, and what it is for.
    pub(crate) fn deadline(&self, head: Duration, idle: Duration) -> (Instant, Waiting) {
        let state = match self.state.lock() {
            Ok(state) => *state,
            Err(poisoned) => *poisoned.into_inner(),
        };
        match state.sent_at {
            Some(at) => (at + head, Waiting::Head),
            None => (state.last_progress + idle, Waiting::Upload),
        }
    }
}

/// A request body as hyper sends it: nothing, bytes, or a stream passed
/// through chunk by chunk (never buffered whole).
pub(crate) struct RequestBody {
    inner: RequestInner,
    clock: Arc<UploadClock>,
}

impl RequestBody {
    /// The body, and the clock the response timeout follows.
    pub(crate) fn new(body: OutgoingBody, connect_allowance: Duration) -> Self {
        let empty = match &body {
            OutgoingBody::Empty => true,
            OutgoingBody::Bytes(b) => b.is_empty(),
            OutgoingBody::Stream { len, .. } => *len == 0,
        };
        let inner = match body {
            OutgoingBody::Empty => RequestInner::Empty,
            OutgoingBody::Bytes(b) => RequestInner::Bytes(Some(b)),
            OutgoingBody::Stream { stream, len } => RequestInner::Stream {
                stream,
                remaining: len,
            },
        };
        RequestBody {
            inner,
            clock: UploadClock::new(connect_allowance, empty),
        }
    }

    pub(crate) fn clock(&self) -> Arc<UploadClock> {
        self.clock.clone()
    }
}

enum RequestInner {
    Empty,
    Bytes(Option<Bytes>),
    Stream { stream: ByteStream, remaining: u64 },
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        match &mut this.inner {
            RequestInner::Empty => Poll::Ready(None),
            RequestInner::Bytes(b) => {
                let frame = b
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b)));
                this.clock.sent();
                Poll::Ready(frame)
            }
            RequestInner::Stream { stream, remaining } => match stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let n = chunk.len() as u64;
                    if n > *remaining {
                        return Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the upload stream yielded more bytes than its declared length",
                        ))));
                    }
                    *remaining -= n;
                    this.clock.progress();
                    if *remaining == 0 {
                        this.clock.sent();
                    }
                    Poll::Ready(Some(Ok(Frame::data(chunk))))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) if *remaining > 0 => Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the upload stream ended {remaining} bytes short of its declared length"
                    ),
                )))),
                Poll::Ready(None) => {
                    this.clock.sent();
                    Poll::Ready(None)
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            RequestInner::Empty => true,
            RequestInner::Bytes(b) => b.as_ref().is_none_or(Bytes::is_empty),
            RequestInner::Stream { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            RequestInner::Empty => SizeHint::with_exact(0),
            RequestInner::Bytes(b) => {
                SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            RequestInner::Stream { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

/// A response body: the data frames as they arrive, one chunk each, never
/// the whole body buffered. When no frame arrives for the read-idle
/// timeout while the body is being read, it yields a [`TransportError`]
/// (with `after_response` set) and then ends.
///
/// It must be read inside the Tokio runtime the transport was used in.
pub struct ResponseBody {
    incoming: Incoming,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    armed: bool,
    done: bool,
    authority: Arc<str>,
}

impl ResponseBody {
    pub(crate) fn new(incoming: Incoming, idle: Duration, authority: Arc<str>) -> Self {
        ResponseBody {
            incoming,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            armed: false,
            done: false,
            authority,
        }
    }

    /// The length the server announced (`Content-Length`), when it
    /// announced one: a hint, not to be trusted for allocation.
    pub fn content_length(&self) -> Option<u64> {
        self.incoming.size_hint().exact()
    }

    fn fail(&mut self, failure: TransportFailure) -> Poll<Option<Result<Bytes, TransportError>>> {
        self.done = true;
        let mut error = TransportError::new(failure);
        error.after_response = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("from", &self.authority)
            .field("read_idle_timeout", &self.idle)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Stream for ResponseBody {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.incoming).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // The idle clock runs only while waiting for the peer.
                    this.armed = false;
                    match frame.into_data() {
                        Ok(data) if data.is_empty() => continue,
                        Ok(data) => return Poll::Ready(Some(Ok(data))),
                        // Trailers carry nothing a registry client reads.
                        Err(_) => continue,
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let failure = crate::error::classify_body(&this.authority, e);
                    return this.fail(failure);
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        if !this.armed {
            this.timer.as_mut().reset(Instant::now() + this.idle);
            this.armed = true;
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            let message = format!(
                "the response body from {} stalled: no data for {} ms (the read-idle timeout)",
                this.authority,
                this.idle.as_millis()
            );
            return this.fail(TransportFailure::new(FailureKind::ReadIdleTimeout, message));
        }
        Poll::Pending
    }
}
