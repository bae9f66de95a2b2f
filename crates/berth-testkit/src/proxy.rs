//! A fault-injecting HTTP/1.1 reverse proxy for tests: it listens on
//! 127.0.0.1:0 in front of a registry, forwards every request (method,
//! target, headers, body; both ways streamed), records what it saw, and
//! breaks the exchanges that a [`Rule`] names: a body cut after N bytes, a
//! status instead of the answer, a flipped byte, a redirect elsewhere, a
//! stalled or throttled body, a silent server, a `Content-Length` that
//! lies, a body without end, a huge response head, a body swapped for
//! other bytes.
//!
//! It is deliberately plain: blocking `std::net`, one thread per
//! connection (at most [`MAX_CONNECTIONS`] at once), one request per
//! connection (every response says `Connection: close`), a new upstream
//! connection per request. Every read and write has a timeout, so no
//! thread outlives a test by more than [`IO_TIMEOUT`].
//!
//! Response bodies reach the client either with the upstream
//! `Content-Length` or, when the upstream sent chunks, de-chunked and
//! delimited by the close: either way body offsets in rules are offsets in
//! the body of that one response.
//!
//! ```no_run
//! use berth_testkit::proxy::{Fault, FaultProxy, Rule};
//! let registry = berth_testkit::Registry::start(berth_testkit::Auth::None)?;
//! let proxy = FaultProxy::start(
//!     registry.addr(),
//!     vec![Rule::new("GET", "/manifests/", Fault::status(503)).times(2)],
//! )?;
//! println!("talk to {} instead of {}", proxy.host(), registry.host());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The most connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// Every socket read and write gives up after this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request or response head read (bytes).
pub const MAX_HEAD: usize = 64 * 1024;
/// The byte a [`Fault::Corrupt`] XORs into the body.
pub const CORRUPT_MASK: u8 = 0xff;

const BUF: usize = 64 * 1024;

/// What a rule does to the exchange it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Forward, but close the connection after `after` bytes of the
    /// response body (the head is sent whole).
    Cut {
        /// Body bytes sent before the cut.
        after: u64,
    },
    /// Answer this status (with these headers and a small JSON error body)
    /// instead of forwarding.
    Status {
        /// The status code.
        code: u16,
        /// Extra headers (`Retry-After`, ...).
        headers: Vec<(String, String)>,
    },
    /// Forward, but XOR the body byte at `offset` with [`CORRUPT_MASK`].
    Corrupt {
        /// The body offset (in this response's body).
        offset: u64,
    },
    /// Answer `307 Temporary Redirect` to `base` followed by the request's
    /// own target (path and query), without forwarding.
    Redirect {
        /// `http://127.0.0.1:PORT`, no trailing slash.
        base: String,
    },
    /// Forward `after` body bytes, then send nothing more for `stall`
    /// (or until the proxy is dropped), then close.
    Stall {
        /// Body bytes sent before the stall.
        after: u64,
        /// How long to hold the connection silent.
        stall: Duration,
    },
    /// Read the request, then answer nothing at all for `stall` (or until
    /// the proxy is dropped), then close: a server that never responds.
    Hold {
        /// How long to stay silent.
        stall: Duration,
    },
    /// Wait `by` after reading the request's head, then forward it: a
    /// registry slow to answer (as one that syncs each blob to disk before
    /// answering its upload).
    Delay {
        /// How long the request waits.
        by: Duration,
    },
    /// Forward, but send the body `chunk` bytes at a time with `pause`
    /// between: a slow registry.
    Throttle {
        /// Body bytes per burst (at least 1).
        chunk: u64,
        /// The pause after each burst.
        pause: Duration,
    },
    /// Forward, but announce `Content-Length` as the true length plus
    /// `delta` (less when negative, never below 0) and send the true body
    /// whole, then close. Responses without a `Content-Length` are
    /// forwarded untouched.
    LyingLength {
        /// Added to the true length.
        delta: i64,
    },
    /// Forward the head without its length, then the body, then
    /// pseudo-random bytes until the client goes away, the proxy stops or
    /// `limit` body bytes in all were sent.
    Endless {
        /// The most body bytes sent (a bound for the proxy, not a hint).
        limit: u64,
    },
    /// Forward, adding `bytes` of extra header lines to the response head
    /// (`x-filler-N`, [`FILLER_LINE`] bytes of value each).
    HugeHeaders {
        /// Bytes of header values added.
        bytes: usize,
    },
    /// Forward the upstream head (status and headers) but send `body`
    /// instead of the upstream body, with a `Content-Length` to match:
    /// wrong bytes under the right headers.
    ReplaceBody {
        /// The bytes sent.
        body: Vec<u8>,
    },
}

/// The value length of each header line [`Fault::HugeHeaders`] adds.
pub const FILLER_LINE: usize = 8 * 1024;

impl Fault {
    /// [`Fault::Cut`].
    pub fn cut(after: u64) -> Fault {
        Fault::Cut { after }
    }

    /// [`Fault::Status`] with no extra headers.
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            headers: Vec::new(),
        }
    }

    /// [`Fault::Status`] with headers (`[("Retry-After", "1")]`).
    pub fn status_with(code: u16, headers: &[(&str, &str)]) -> Fault {
        Fault::Status {
            code,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// [`Fault::Corrupt`].
    pub fn corrupt(offset: u64) -> Fault {
        Fault::Corrupt { offset }
    }

    /// [`Fault::Redirect`] to `base` (`http://127.0.0.1:PORT`).
    pub fn redirect(base: impl Into<String>) -> Fault {
        Fault::Redirect {
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    /// [`Fault::Stall`].
    pub fn stall(after: u64, stall: Duration) -> Fault {
        Fault::Stall { after, stall }
    }

    /// [`Fault::Hold`].
    pub fn hold(stall: Duration) -> Fault {
        Fault::Hold { stall }
    }

    /// [`Fault::Delay`].
    pub fn delay(by: Duration) -> Fault {
        Fault::Delay { by }
    }

    /// [`Fault::Throttle`].
    pub fn throttle(chunk: u64, pause: Duration) -> Fault {
        Fault::Throttle {
            chunk: chunk.max(1),
            pause,
        }
    }

    /// [`Fault::LyingLength`].
    pub fn lying_length(delta: i64) -> Fault {
        Fault::LyingLength { delta }
    }

    /// [`Fault::Endless`] with a limit of 1 GiB.
    pub fn endless() -> Fault {
        Fault::Endless { limit: 1 << 30 }
    }

    /// [`Fault::HugeHeaders`].
    pub fn huge_headers(bytes: usize) -> Fault {
        Fault::HugeHeaders { bytes }
    }

    /// [`Fault::ReplaceBody`].
    pub fn replace_body(body: impl Into<Vec<u8>>) -> Fault {
        Fault::ReplaceBody { body: body.into() }
    }
}

/// A fault for the requests whose method and target match: the first K
/// of them ([`Rule::times`], 1 by default), or all ([`Rule::always`]).
///
/// Rules are tried in order; the first one that matches and has firings
/// left fires (and uses one up). A request no rule fires for is forwarded
/// untouched.
#[derive(Debug)]
pub struct Rule {
    method: String,
    path_contains: String,
    times: Option<usize>,
    fired: AtomicUsize,
    fault: Fault,
}

impl Rule {
    /// A rule for `method` (`"GET"`; `"*"` or `""` for any) and targets
    /// containing `path_contains`, firing once.
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> Rule {
        Rule {
            method: method.to_ascii_uppercase(),
            path_contains: path_contains.to_owned(),
            times: Some(1),
            fired: AtomicUsize::new(0),
            fault,
        }
    }

    /// [`Rule::new`] for `GET`.
    pub fn get(path_contains: &str, fault: Fault) -> Rule {
        Rule::new("GET", path_contains, fault)
    }

    /// Fires for the first `k` matching requests.
    pub fn times(mut self, k: usize) -> Rule {
        self.times = Some(k);
        self
    }

    /// Fires for every matching request.
    pub fn always(mut self) -> Rule {
        self.times = None;
        self
    }

    /// The fault.
    pub fn fault(&self) -> &Fault {
        &self.fault
    }

    /// How many times it fired.
    pub fn fired(&self) -> usize {
        self.fired.load(Ordering::SeqCst)
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        (self.method.is_empty() || self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && target.contains(&self.path_contains)
    }

    /// Uses one firing if any is left.
    fn take(&self) -> bool {
        match self.times {
            None => {
                self.fired.fetch_add(1, Ordering::SeqCst);
                true
            }
            Some(k) => self
                .fired
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < k).then_some(n + 1)
                })
                .is_ok(),
        }
    }
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Every header, names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// When its head had been read.
    pub at: Instant,
    /// The fault that fired for it, if any.
    pub fault: Option<Fault>,
    /// The status the client was sent (`None`: none was, or not yet).
    pub status: Option<u16>,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` was sent.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    rules: Mutex<Vec<Arc<Rule>>>,
    inject: Vec<(String, String)>,
    log: Mutex<Vec<Recorded>>,
    stop: AtomicBool,
    active: AtomicUsize,
    body_bytes: AtomicU64,
    faults: AtomicUsize,
    /// Cookie pinning: the `lb=<value>` cookie every forwarded response
    /// sets, and whether it has been given out yet.
    cookie: Option<String>,
    cookie_issued: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Settings for a [`FaultProxy`] beyond its rules.
#[derive(Debug)]
pub struct FaultProxyBuilder {
    upstream: SocketAddr,
    rules: Vec<Rule>,
    inject: Vec<(String, String)>,
    pin_cookie: bool,
}

impl FaultProxyBuilder {
    /// Pins sessions with a cookie, as a load balancer does: every
    /// forwarded response sets `lb=<random>`; once the first has, a
    /// request without that cookie is refused with 403 (no rule fires for
    /// it).
    pub fn pin_cookie(mut self) -> Self {
        self.pin_cookie = true;
        self
    }

    /// Adds a rule (after those already given).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Sets header `name` on every request forwarded upstream, replacing
    /// the client's (a "storage" server that holds its own credentials for
    /// the registry behind it). Recorded headers are the client's.
    pub fn upstream_header(mut self, name: &str, value: &str) -> Self {
        self.inject
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start(self) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: self.upstream,
            rules: Mutex::new(self.rules.into_iter().map(Arc::new).collect()),
            inject: self.inject,
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            body_bytes: AtomicU64::new(0),
            faults: AtomicUsize::new(0),
            cookie: self.pin_cookie.then(|| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                format!("lb={nanos:08x}{:04x}", addr.port())
            }),
            cookie_issued: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &accept_shared))?;
        Ok(FaultProxy {
            addr,
            shared,
            accept: Some(accept),
        })
    }
}

/// A running fault-injecting proxy; stopped when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` with `rules`.
    pub fn start(upstream: SocketAddr, rules: Vec<Rule>) -> io::Result<FaultProxy> {
        FaultProxy::builder(upstream).rules(rules).start()
    }

    /// Settings for a proxy in front of `upstream`.
    pub fn builder(upstream: SocketAddr) -> FaultProxyBuilder {
        FaultProxyBuilder {
            upstream,
            rules: Vec::new(),
            inject: Vec::new(),
            pin_cookie: false,
        }
    }

    /// `127.0.0.1:PORT`, as a reference's domain.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `lb=<value>` cookie a pinning proxy sets
    /// ([`FaultProxyBuilder::pin_cookie`]).
    pub fn pinned_cookie(&self) -> Option<&str> {
        self.shared.cookie.as_deref()
    }

    /// `http://127.0.0.1:PORT` (for [`Fault::redirect`]).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a rule after the current ones.
    pub fn add_rule(&self, rule: Rule) {
        lock(&self.shared.rules).push(Arc::new(rule));
    }

    /// Removes every rule: from now on everything is forwarded untouched.
    pub fn clear_rules(&self) {
        lock(&self.shared.rules).clear();
    }

    /// How many times each rule fired, in order.
    pub fn fired(&self) -> Vec<usize> {
        lock(&self.shared.rules).iter().map(|r| r.fired()).collect()
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.log).clone()
    }

    /// The requests whose method is `method` (`"*"` for any) and whose
    /// target contains `path_contains`.
    pub fn requests_matching(&self, method: &str, path_contains: &str) -> Vec<Recorded> {
        lock(&self.shared.log)
            .iter()
            .filter(|r| {
                (method == "*" || r.method.eq_ignore_ascii_case(method))
                    && r.target.contains(path_contains)
            })
            .cloned()
            .collect()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// How many faults fired.
    pub fn faults_fired(&self) -> usize {
        self.shared.faults.load(Ordering::SeqCst)
    }

    /// Response body bytes sent to clients.
    pub fn body_bytes_sent(&self) -> u64 {
        self.shared.body_bytes.load(Ordering::SeqCst)
    }

    /// Connections being served now.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }
}

impl FaultProxyBuilder {
    /// Adds these rules (after those already given).
    pub fn rules(mut self, rules: Vec<Rule>) -> Self {
        self.rules.extend(rules);
        self
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = conn else { continue };
        // Bounded: wait for a slot (connections end within IO_TIMEOUT).
        let started = Instant::now();
        while shared.active.load(Ordering::SeqCst) >= MAX_CONNECTIONS
            && started.elapsed() < IO_TIMEOUT * 4
        {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        let conn_shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || {
                let _ = serve(stream, &conn_shared);
                conn_shared.active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A parsed message head.
struct Head {
    first: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn framing(&self) -> io::Result<Framing> {
        if self
            .get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return Ok(Framing::Chunked);
        }
        match self.get("content-length") {
            Some(v) => v
                .trim()
                .parse()
                .map(Framing::Length)
                .map_err(|_| bad(format!("bad Content-Length {v:?}"))),
            None => Ok(Framing::None),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    /// No length: for a request, no body; for a response, until the close.
    None,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_line(r: &mut impl BufRead, budget: &mut usize) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the connection",
        ));
    }
    if n > *budget || line.last() != Some(&b'\n') {
        return Err(bad("a head line too long or unterminated"));
    }
    *budget -= n;
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| bad("a head that is not UTF-8"))
}

fn read_head(r: &mut impl BufRead) -> io::Result<Head> {
    let mut budget = MAX_HEAD;
    let first = read_line(r, &mut budget)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("a bad header line {line:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    Ok(Head { first, headers })
}

/// Reads a chunked body, yielding the data.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut budget = MAX_HEAD;
            let line = read_line(&mut self.inner, &mut budget)?;
            let size = line.split(';').next().unwrap_or("").trim();
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| bad(format!("a bad chunk size {line:?}")))?;
            if self.left == 0 {
                // Trailers, up to the empty line.
                while !read_line(&mut self.inner, &mut budget)?.is_empty() {}
                self.done = true;
                return Ok(0);
            }
        }
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a chunked body ended early",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut budget = 2;
            if !read_line(&mut self.inner, &mut budget)?.is_empty() {
                return Err(bad("no CRLF after a chunk"));
            }
        }
        Ok(n)
    }
}

/// A body per its framing, as a reader of its data.
fn body_reader<'a, R: BufRead + 'a>(r: R, framing: Framing, until_eof: bool) -> Box<dyn Read + 'a> {
    match framing {
        Framing::Length(n) => Box::new(r.take(n)),
        Framing::Chunked => Box::new(Chunked {
            inner: r,
            left: 0,
            done: false,
        }),
        Framing::None if until_eof => Box::new(r),
        Framing::None => Box::new(io::empty()),
    }
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

fn serve(client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = client.set_nodelay(true);
    let mut out = client.try_clone()?;
    let mut reader = BufReader::with_capacity(BUF, client);
    // A TLS ClientHello (a client trying https first): not for this
    // plain-http proxy; close at once so the client falls back to http.
    if reader.fill_buf().is_ok_and(|b| b.first() == Some(&0x16)) {
        return Ok(());
    }
    let head = match read_head(&mut reader) {
        Ok(h) => h,
        // The wake-up connection of a drop, or a client that gave up.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut parts = head.first.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad(format!("a bad request line {:?}", head.first)));
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    // A pinning proxy refuses requests without its cookie once it has
    // given it out.
    let refused = shared.cookie.as_deref().is_some_and(|pinned| {
        let has = head
            .headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .any(|c| c.trim() == pinned);
        !has && shared.cookie_issued.swap(true, Ordering::SeqCst)
    });
    let fault = if refused {
        None
    } else {
        let rules = lock(&shared.rules);
        rules
            .iter()
            .find(|r| r.matches(&method, &target) && r.take())
            .map(|r| r.fault.clone())
    };
    if fault.is_some() {
        shared.faults.fetch_add(1, Ordering::SeqCst);
    }
    let index = {
        let mut log = lock(&shared.log);
        log.push(Recorded {
            method: method.clone(),
            target: target.clone(),
            headers: head.headers.clone(),
            at: Instant::now(),
            fault: fault.clone(),
            status: None,
        });
        log.len() - 1
    };
    let set_status = |code: u16| {
        if let Some(r) = lock(&shared.log).get_mut(index) {
            r.status = Some(code);
        }
    };
    let request_framing = head.framing()?;
    if let Some(Fault::Delay { by }) = &fault {
        // Then forwarded like any request.
        pause(shared, *by);
    }
    let result = match &fault {
        _ if refused => {
            io::copy(
                &mut body_reader(&mut reader, request_framing, false),
                &mut io::sink(),
            )?;
            set_status(403);
            answer(&mut out, 403, &[])
        }
        Some(Fault::Status { code, headers }) => {
            io::copy(
                &mut body_reader(&mut reader, request_framing, false),
                &mut io::sink(),
            )?;
            set_status(*code);
            answer(&mut out, *code, headers)
        }
        Some(Fault::Redirect { base }) => {
            io::copy(
                &mut body_reader(&mut reader, request_framing, false),
                &mut io::sink(),
            )?;
            set_status(307);
            answer(
                &mut out,
                307,
                &[("Location".to_owned(), format!("{base}{target}"))],
            )
        }
        Some(Fault::Hold { stall }) => {
            io::copy(
                &mut body_reader(&mut reader, request_framing, false),
                &mut io::sink(),
            )?;
            pause(shared, *stall);
            Ok(())
        }
        _ => forward(
            shared,
            &head,
            &method,
            &target,
            request_framing,
            &mut reader,
            &mut out,
            fault.as_ref(),
            &set_status,
        ),
    };
    finish(&mut out);
    result
}

/// A status with a small distribution-style error body.
fn answer(out: &mut TcpStream, code: u16, headers: &[(String, String)]) -> io::Result<()> {
    let body = format!(
        r#"{{"errors":[{{"code":"UNAVAILABLE","message":"fault-proxy injected {code}"}}]}}"#
    );
    let mut head = format!("HTTP/1.1 {code} {}\r\n", reason(code));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

/// Half-closes, then waits (briefly) for the client to close, so no
/// unread byte turns the close into a reset that eats the tail.
fn finish(out: &mut TcpStream) {
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Write);
    let _ = out.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    for _ in 0..64 {
        match out.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn forward(
    shared: &Shared,
    head: &Head,
    method: &str,
    target: &str,
    request_framing: Framing,
    reader: &mut BufReader<TcpStream>,
    out: &mut TcpStream,
    fault: Option<&Fault>,
    set_status: &dyn Fn(u16),
) -> io::Result<()> {
    let up = match TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            set_status(502);
            answer(out, 502, &[])?;
            return Err(e);
        }
    };
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = up.set_nodelay(true);
    let mut up_w = io::BufWriter::with_capacity(BUF, up.try_clone()?);

    // The request: head, then body as it arrives.
    let mut h = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in &head.headers {
        if HOP_BY_HOP.contains(&k.as_str())
            || (request_framing == Framing::Chunked && k == "content-length")
            || shared.inject.iter().any(|(n, _)| n == k)
        {
            continue;
        }
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    for (k, v) in &shared.inject {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    if request_framing == Framing::Chunked {
        h.push_str("transfer-encoding: chunked\r\n");
    }
    h.push_str("connection: close\r\n\r\n");
    up_w.write_all(h.as_bytes())?;
    let mut buf = vec![0u8; BUF];
    {
        let mut body = body_reader(&mut *reader, request_framing, false);
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if request_framing == Framing::Chunked {
                write!(up_w, "{n:x}\r\n")?;
                up_w.write_all(&buf[..n])?;
                up_w.write_all(b"\r\n")?;
            } else {
                up_w.write_all(&buf[..n])?;
            }
        }
        if request_framing == Framing::Chunked {
            up_w.write_all(b"0\r\n\r\n")?;
        }
    }
    up_w.flush()?;
    drop(up_w);

    // The response head (skipping interim 1xx answers).
    let mut up_r = BufReader::with_capacity(BUF, up);
    let (resp, code) = {
        let mut tries = 0;
        loop {
            let resp = read_head(&mut up_r)?;
            let code: u16 = resp
                .first
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| bad(format!("a bad status line {:?}", resp.first)))?;
            tries += 1;
            if (100..200).contains(&code) && code != 101 && tries < 10 {
                continue;
            }
            break (resp, code);
        }
    };
    set_status(code);
    let no_body = method.eq_ignore_ascii_case("HEAD")
        || code == 204
        || code == 304
        || (100..200).contains(&code);
    let framing = if no_body {
        Framing::Length(0)
    } else {
        resp.framing()?
    };
    // What the fault announces instead of the upstream's length.
    let length_line = match (fault, framing) {
        (Some(Fault::LyingLength { delta }), Framing::Length(n)) if !no_body => {
            Some(Some(n.saturating_add_signed(*delta)))
        }
        (Some(Fault::Endless { .. }), _) if !no_body => Some(None),
        (Some(Fault::ReplaceBody { body }), _) if !no_body => Some(Some(body.len() as u64)),
        _ => None,
    };
    let mut h = format!("{}\r\n", resp.first);
    for (k, v) in &resp.headers {
        if HOP_BY_HOP.contains(&k.as_str())
            || (framing == Framing::Chunked && k == "content-length")
            || (length_line.is_some() && k == "content-length")
        {
            continue;
        }
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(Some(n)) = length_line {
        h.push_str(&format!("content-length: {n}\r\n"));
    }
    if let Some(Fault::HugeHeaders { bytes }) = fault {
        let filler = "f".repeat(FILLER_LINE);
        for i in 0..bytes.div_ceil(FILLER_LINE) {
            h.push_str(&format!("x-filler-{i}: {filler}\r\n"));
        }
    }
    if let Some(cookie) = &shared.cookie {
        h.push_str(&format!("set-cookie: {cookie}; Path=/; HttpOnly\r\n"));
    }
    h.push_str("connection: close\r\n\r\n");
    out.write_all(h.as_bytes())?;
    if let Some(Fault::ReplaceBody { body }) = fault
        && !no_body
    {
        out.write_all(body)?;
        shared
            .body_bytes
            .fetch_add(body.len() as u64, Ordering::SeqCst);
        return out.flush();
    }

    // The body, through the fault.
    let (cut_at, corrupt_at, stall) = match fault {
        Some(Fault::Cut { after }) => (Some(*after), None, None),
        Some(Fault::Stall { after, stall }) => (Some(*after), None, Some(*stall)),
        Some(Fault::Corrupt { offset }) => (None, Some(*offset), None),
        _ => (None, None, None),
    };
    let throttle = match fault {
        Some(Fault::Throttle { chunk, pause }) => Some((*chunk, *pause)),
        _ => None,
    };
    let mut body = body_reader(up_r, framing, true);
    let mut sent: u64 = 0;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut want = buf.len();
        if let Some(cut) = cut_at {
            want = want.min(usize::try_from(cut.saturating_sub(sent)).unwrap_or(usize::MAX));
            if want == 0 {
                break;
            }
        }
        if let Some((chunk, _)) = throttle {
            want = want.min(usize::try_from(chunk).unwrap_or(usize::MAX));
        }
        let n = body.read(&mut buf[..want])?;
        if n == 0 {
            if let Some(Fault::Endless { limit }) = fault
                && !no_body
            {
                endless(shared, out, sent, *limit)?;
            }
            return out.flush();
        }
        if let Some(at) = corrupt_at
            && (sent..sent + n as u64).contains(&at)
        {
            let i = usize::try_from(at - sent).unwrap_or(0);
            buf[i] ^= CORRUPT_MASK;
        }
        out.write_all(&buf[..n])?;
        sent += n as u64;
        shared.body_bytes.fetch_add(n as u64, Ordering::SeqCst);
        if let Some((_, gap)) = throttle {
            out.flush()?;
            pause(shared, gap);
        }
    }
    // The cut (after a stall, if asked).
    out.flush()?;
    if let Some(stall) = stall {
        pause(shared, stall);
    }
    Ok(())
}

/// Sleeps for `d`, or until the proxy stops.
fn pause(shared: &Shared, d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d && !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20).min(d));
    }
}

/// Pseudo-random bytes after a body, until the client goes away, the proxy
/// stops, or `limit` body bytes in all were sent.
fn endless(shared: &Shared, out: &mut TcpStream, mut sent: u64, limit: u64) -> io::Result<()> {
    let noise = crate::image::pseudo_random(BUF, sent);
    while sent < limit && !shared.stop.load(Ordering::SeqCst) {
        let n = usize::try_from(limit - sent)
            .unwrap_or(usize::MAX)
            .min(noise.len());
        out.write_all(&noise[..n])?;
        sent += n as u64;
        shared.body_bytes.fetch_add(n as u64, Ordering::SeqCst);
    }
    out.flush()
}

/// An `Authorization` value for HTTP Basic.
pub fn basic_authorization(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny upstream that answers every request with its method, target
    /// and body echoed back in chunks.
    fn echo_upstream() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let t = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut served = 0;
            while served < 8 && Instant::now() < deadline {
                let s = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => return,
                };
                served += 1;
                s.set_nonblocking(false).expect("blocking");
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                let mut out = s.try_clone().expect("clone");
                let mut r = BufReader::new(s);
                let Ok(head) = read_head(&mut r) else {
                    continue;
                };
                let mut body = Vec::new();
                body_reader(&mut r, head.framing().expect("framing"), false)
                    .read_to_end(&mut body)
                    .expect("body");
                let mut reply = head.first.clone().into_bytes();
                reply.push(b'\n');
                reply.extend_from_slice(&body);
                let mut msg = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                for c in reply.chunks(1000) {
                    msg.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                    msg.extend_from_slice(c);
                    msg.extend_from_slice(b"\r\n");
                }
                msg.extend_from_slice(b"0\r\n\r\n");
                let _ = out.write_all(&msg);
            }
        });
        (addr, t)
    }

    /// Sends one request; the status, the headers and the body up to the
    /// close.
    fn request(addr: SocketAddr, raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(raw).expect("write");
        let mut r = BufReader::new(s);
        let head = read_head(&mut r).expect("head");
        let code = head
            .first
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("code");
        let mut body = Vec::new();
        let _ = r.read_to_end(&mut body);
        (code, head.headers, body)
    }

    #[test]
    fn forwards_bodies_both_ways_and_records() {
        let (up, _t) = echo_upstream();
        let proxy = FaultProxy::start(up, vec![]).expect("proxy");
        let payload = crate::image::pseudo_random(300_000, 7);
        let mut raw = format!("PUT /v2/x/blobs/uploads/1?digest=d HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nX-Test: yes\r\n\r\n", proxy.host(), payload.len()).into_bytes();
        raw.extend_from_slice(&payload);
        let (code, headers, body) = request(proxy.addr(), &raw);
        assert_eq!(code, 200);
        assert!(
            !headers.iter().any(|(k, _)| k == "transfer-encoding"),
            "de-chunked: {headers:?}"
        );
        let expected_first = b"PUT /v2/x/blobs/uploads/1?digest=d HTTP/1.1\n";
        assert_eq!(&body[..expected_first.len()], expected_first);
        assert!(
            body[expected_first.len()..] == payload[..],
            "the body came back whole"
        );

        // A chunked request body is forwarded too.
        let raw = b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (_, _, body) = request(proxy.addr(), raw);
        assert_eq!(body, b"POST /chunked HTTP/1.1\nabcde");

        let seen = proxy.requests();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].header("x-test"), Some("yes"));
        assert_eq!((seen[0].status, seen[0].fault.as_ref()), (Some(200), None));
        assert_eq!(proxy.request_count(), 2);
    }

    #[test]
    fn rules_fire_k_times_in_order() {
        let (up, _t) = echo_upstream();
        let proxy = FaultProxy::start(
            up,
            vec![
                Rule::get("/a", Fault::status_with(429, &[("Retry-After", "1")])).times(2),
                Rule::get("/a", Fault::cut(6)),
                Rule::get("/a", Fault::corrupt(0)),
                Rule::new("*", "/r", Fault::redirect("http://storage.example/")).always(),
            ],
        )
        .expect("proxy");
        let get = |path: &str| {
            request(
                proxy.addr(),
                format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            )
        };
        for _ in 0..2 {
            let (code, headers, _) = get("/a");
            assert_eq!(code, 429);
            assert!(headers.contains(&("retry-after".into(), "1".into())));
        }
        assert_eq!(get("/a").2, b"GET /a");
        let corrupted = get("/a").2;
        assert_eq!(corrupted[0], b'G' ^ CORRUPT_MASK);
        assert_eq!(&corrupted[1..], b"ET /a HTTP/1.1\n");
        assert_eq!(get("/a").2, b"GET /a HTTP/1.1\n", "no firings left");
        let (code, headers, _) = get("/r?x=1");
        assert_eq!(code, 307);
        assert!(headers.contains(&("location".into(), "http://storage.example/r?x=1".into())));
        assert_eq!(proxy.fired(), [2, 1, 1, 1]);
        assert_eq!(proxy.faults_fired(), 5);
    }

    #[test]
    fn faults_that_reshape_the_response() {
        let (up, _t) = echo_upstream();
        let proxy = FaultProxy::start(
            up,
            vec![
                Rule::get("/endless", Fault::Endless { limit: 100_000 }),
                Rule::get("/huge", Fault::huge_headers(2 * FILLER_LINE)),
                Rule::get("/swap", Fault::replace_body(&b"other bytes"[..])),
                Rule::get("/slow", Fault::throttle(3, Duration::from_millis(1))),
                Rule::get("/silent", Fault::hold(Duration::from_millis(100))),
            ],
        )
        .expect("proxy");
        let get = |path: &str| {
            request(
                proxy.addr(),
                format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            )
        };
        let (code, headers, body) = get("/endless");
        assert_eq!(code, 200);
        assert!(!headers.iter().any(|(k, _)| k == "content-length"));
        assert_eq!(body.len(), 100_000, "the body, then noise up to the limit");
        assert!(body.starts_with(b"GET /endless HTTP/1.1\n"));
        let (_, headers, body) = get("/huge");
        let fillers = headers.iter().filter(|(k, _)| k.starts_with("x-filler-"));
        assert_eq!(fillers.count(), 2);
        assert_eq!(body, b"GET /huge HTTP/1.1\n");
        let (code, headers, body) = get("/swap");
        assert_eq!((code, body.as_slice()), (200, &b"other bytes"[..]));
        assert!(headers.contains(&("content-length".into(), "11".into())));
        assert_eq!(get("/slow").2, b"GET /slow HTTP/1.1\n");
        let mut s = TcpStream::connect(proxy.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(b"GET /silent HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        assert!(all.is_empty(), "no answer at all: {all:?}");
        assert_eq!(proxy.fired(), [1, 1, 1, 1, 1]);
    }

    #[test]
    fn in_front_of_the_real_registry() {
        if !crate::available() {
            panic!(
                "{} is not installed: .ci/run installs docker-registry",
                crate::REGISTRY_BIN
            );
        }
        let registry = crate::Registry::start(crate::Auth::None).expect("registry");
        let proxy = FaultProxy::start(registry.addr(), vec![]).expect("proxy");
        assert_eq!(
            crate::http_status(proxy.addr(), "GET", "/v2/").expect("answers"),
            200
        );
        assert_eq!(
            crate::http_status(proxy.addr(), "GET", "/v2/nothing/tags/list").expect("answers"),
            404
        );
        let seen = proxy.requests();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].status, Some(404));
    }
}
