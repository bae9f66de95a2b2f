//! A scripted transport: each expected request, in order, with its canned
//! answer. It implements both the async and the blocking transport traits,
//! and a simulated clock whose sleep only moves time forward, so a test
//! runs a whole conversation with no sockets and no sleeping.
#![allow(dead_code, unreachable_pub)] // shared by several test binaries

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use berth_protocol::TransportError;
use berth_protocol::driver::{
    BlockingRuntime, BlockingTransport, OutgoingBody, Runtime, Transport,
};
use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderMap, Method};

/// What the transport saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// Marked as carrying a blob's bytes.
    pub blob_transfer: bool,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

enum Reply {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        cut_after: Option<usize>,
    },
    Fail(&'static str),
}

struct Expect {
    method: Method,
    url: String,
    reply: Reply,
}

/// The script.
#[derive(Default)]
pub struct Script {
    steps: Mutex<VecDeque<Expect>>,
    seen: Mutex<Vec<Seen>>,
}

/// One expected request being described.
pub struct On<'s> {
    script: &'s mut Script,
    method: Method,
    url: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    cut_after: Option<usize>,
    fail: Option<&'static str>,
}

impl<'s> On<'s> {
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn body(mut self, b: impl AsRef<[u8]>) -> Self {
        self.body = b.as_ref().to_vec();
        self
    }
    /// The body breaks after this many bytes.
    pub fn cut_after(mut self, n: usize) -> Self {
        self.cut_after = Some(n);
        self
    }
    /// The connection fails before any response.
    pub fn fail(mut self, why: &'static str) -> Self {
        self.fail = Some(why);
        self
    }
    pub fn done(self) -> &'s mut Script {
        let reply = match self.fail {
            Some(why) => Reply::Fail(why),
            None => Reply::Response {
                status: self.status,
                headers: self.headers,
                body: self.body,
                cut_after: self.cut_after,
            },
        };
        self.script
            .steps
            .get_mut()
            .expect("lock")
            .push_back(Expect {
                method: self.method,
                url: self.url,
                reply,
            });
        self.script
    }
}

impl Script {
    pub fn new() -> Self {
        Self::default()
    }

    /// Expects `method url` next (the URL exactly, query included).
    pub fn on(&mut self, method: &str, url: &str) -> On<'_> {
        On {
            script: self,
            method: method.parse().expect("method"),
            url: url.to_owned(),
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
            cut_after: None,
            fail: None,
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// Whether every expected request was made.
    pub fn finished(&self) -> bool {
        self.steps.lock().expect("lock").is_empty()
    }

    fn answer(
        &self,
        request: http::Request<OutgoingBody>,
    ) -> Result<http::Response<Chunks>, TransportError> {
        let (head, body) = request.into_parts();
        let body = match body {
            OutgoingBody::Empty => Vec::new(),
            OutgoingBody::Bytes(b) => b.to_vec(),
            OutgoingBody::Stream { mut stream, .. } => {
                let mut out = Vec::new();
                futures_executor::block_on(std::future::poll_fn(|cx| {
                    loop {
                        match stream.as_mut().poll_next(cx) {
                            Poll::Ready(Some(Ok(c))) => out.extend_from_slice(&c),
                            Poll::Ready(Some(Err(e))) => panic!("blob source failed: {e}"),
                            Poll::Ready(None) => return Poll::Ready(()),
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                }));
                out
            }
        };
        let url = head.uri.to_string();
        self.seen.lock().expect("lock").push(Seen {
            method: head.method.clone(),
            url: url.clone(),
            headers: head.headers.clone(),
            body,
            blob_transfer: head
                .extensions
                .get::<berth_protocol::BlobTransfer>()
                .is_some(),
        });
        let expect = self
            .steps
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or_else(|| {
                panic!(
                    "unexpected request {} {url}: the script has ended",
                    head.method
                )
            });
        assert_eq!(
            (&head.method, url.as_str()),
            (&expect.method, expect.url.as_str()),
            "request out of script"
        );
        match expect.reply {
            Reply::Fail(why) => Err(TransportError::new(why)),
            Reply::Response {
                status,
                headers,
                body,
                cut_after,
            } => {
                let mut b = http::Response::builder().status(status);
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                Ok(b.body(Chunks::new(body, cut_after)).expect("response"))
            }
        }
    }
}

/// A response body in small chunks, optionally cut.
pub struct Chunks {
    data: Vec<u8>,
    pos: usize,
    cut_after: Option<usize>,
}

impl Chunks {
    fn new(data: Vec<u8>, cut_after: Option<usize>) -> Self {
        Chunks {
            data,
            pos: 0,
            cut_after,
        }
    }

    fn next_piece(&mut self) -> Option<Result<Bytes, TransportError>> {
        let end_ok = self
            .cut_after
            .unwrap_or(self.data.len())
            .min(self.data.len());
        if self.pos >= end_ok {
            if self.cut_after.is_some_and(|c| c < self.data.len()) {
                self.cut_after = None;
                self.pos = self.data.len();
                return Some(Err(TransportError::new("connection reset")));
            }
            return None;
        }
        let n = (end_ok - self.pos).min(1000);
        let piece = Bytes::copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Some(Ok(piece))
    }

    /// The whole body, as the caller of a blob reads it.
    pub fn read_all(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut out = Vec::new();
        while let Some(piece) = self.next_piece() {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }
}

impl Stream for Chunks {
    type Item = Result<Bytes, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.next_piece())
    }
}

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end_ok = self
            .cut_after
            .unwrap_or(self.data.len())
            .min(self.data.len());
        if self.pos >= end_ok {
            if self.cut_after.is_some_and(|c| c < self.data.len()) {
                self.cut_after = None;
                self.pos = self.data.len();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset",
                ));
            }
            return Ok(0);
        }
        let n = (end_ok - self.pos).min(buf.len()).min(1000);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Transport for Script {
    type Body = Chunks;
    fn send(
        &self,
        request: http::Request<OutgoingBody>,
    ) -> impl Future<Output = Result<http::Response<Chunks>, TransportError>> + Send {
        std::future::ready(self.answer(request))
    }
}

impl BlockingTransport for Script {
    type Body = Chunks;
    fn send(
        &self,
        request: http::Request<OutgoingBody>,
    ) -> Result<http::Response<Chunks>, TransportError> {
        self.answer(request)
    }
}

/// Simulated time: `sleep` moves the clock forward and records the wait.
pub struct SimClock {
    now: Mutex<SystemTime>,
    waits: Mutex<Vec<Duration>>,
}

impl SimClock {
    pub fn at(secs: u64) -> Self {
        SimClock {
            now: Mutex::new(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
            waits: Mutex::new(Vec::new()),
        }
    }
    pub fn advance(&self, d: Duration) {
        *self.now.lock().expect("lock") += d;
    }
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().expect("lock").clone()
    }
    fn slept(&self, d: Duration) {
        self.waits.lock().expect("lock").push(d);
        self.advance(d);
    }
}

impl Runtime for SimClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().expect("lock")
    }
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        self.slept(d);
        std::future::ready(())
    }
}

impl BlockingRuntime for SimClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().expect("lock")
    }
    fn sleep(&self, d: Duration) {
        self.slept(d);
    }
}

/// sha256 of `data`, as a digest, computed with berth-manifest's Digester.
pub fn sha256(data: &[u8]) -> berth_reference::Digest {
    let mut d = berth_manifest::Digester::sha256();
    d.update(data);
    d.finish()
}

/// The simulated start time the tests share (2023-11-14).
pub const T0: u64 = 1_700_000_000;

/// Runs `op` to its end over `script` with the blocking driver.
pub fn run<O: berth_protocol::Operation>(
    op: &mut O,
    session: &mut berth_protocol::Session,
    script: &Script,
    clock: &SimClock,
) -> Result<O::Output, berth_protocol::Error> {
    berth_protocol::driver::drive_blocking(op, session, script, clock, None).map(|(out, _)| out)
}
