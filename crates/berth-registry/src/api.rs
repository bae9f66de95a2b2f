//! The distribution API: routing, and one handler per endpoint.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use base64::Engine as _;
use berth_manifest::{
    Descriptor, Digester, ImageIndex, MANIFEST_SIZE_LIMIT, Manifest, MediaType, ParsedManifest,
};
use berth_protocol::ErrorCode;
use berth_reference::Digest;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::faults::{Applied, Faults};
use crate::names::{RepoName, TagName, UploadId, parse_digest};
use crate::sessions::Sessions;
use crate::storage::{Append, Finish, Store, StoredManifest};

/// The realm in `WWW-Authenticate: Basic realm="..."`.
pub(crate) const REALM: &str = "berth-registry";

/// Uploads are appended to storage in pieces of at most this size.
const APPEND_BUFFER: usize = 1024 * 1024;

/// The most entries one listing page holds when `n` is not given.
const DEFAULT_PAGE: usize = 1000;

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) basic: Option<(String, String)>,
    pub(crate) faults: Faults,
    pub(crate) sessions: Sessions,
}

/// A response being built.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

impl Reply {
    fn new(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: HeaderMap::new(),
            body: body::empty(),
        }
    }

    /// Adds a header; a value that is not visible ASCII (never the case
    /// for the validated names used here) is left out.
    fn header(mut self, name: &'static str, value: impl AsRef<str>) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.headers.insert(HeaderName::from_static(name), v);
        }
        self
    }

    fn json(self, bytes: Vec<u8>) -> Reply {
        let len = bytes.len();
        let mut r = self
            .header("content-type", "application/json")
            .header("content-length", len.to_string());
        r.body = body::full(bytes);
        r
    }

    fn body(mut self, body: Body) -> Reply {
        self.body = body;
        self
    }

    fn into_response(self) -> Response<Body> {
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

fn error_reply(err: &ApiError) -> Reply {
    let mut r = Reply::new(err.status).json(err.body());
    if err.code == ErrorCode::Unauthorized {
        r = r.header("www-authenticate", format!("Basic realm=\"{REALM}\""));
    }
    r
}

/// Answers one request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let applied = shared.faults.apply(req.method(), &path_and_query);
    let reply = if let Some((status, retry_after)) = applied.status {
        fault_status(status, retry_after)
    } else if !authorized(&shared, req.headers()) {
        error_reply(&ApiError::new(
            ErrorCode::Unauthorized,
            "authentication required",
        ))
    } else {
        match dispatch(&shared, req, &applied).await {
            Ok(reply) => reply,
            Err(err) => error_reply(&err),
        }
    };
    let mut reply = reply.header("docker-distribution-api-version", "registry/2.0");
    reply.body = body::shape(reply.body, &applied);
    reply.into_response()
}

fn fault_status(status: StatusCode, retry_after: Option<u64>) -> Reply {
    let code = match status {
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::TooManyRequests,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::NOT_FOUND => ErrorCode::NameUnknown,
        s if s.is_server_error() => ErrorCode::Unavailable,
        _ => ErrorCode::Unknown,
    };
    let err = ApiError::new(code, "fault injected").with_status(status);
    let mut r = error_reply(&err);
    if let Some(secs) = retry_after {
        r = r.header("retry-after", secs.to_string());
    }
    r
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some((user, password)) = &shared.basic else {
        return true;
    };
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
        return false;
    };
    let expected = format!("{user}:{password}");
    // Compare every byte, whatever the first difference.
    decoded.len() == expected.len()
        && decoded
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Base,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
    Unknown,
}

fn route(path: &str) -> Target {
    if path == "/v2/" || path == "/v2" {
        return Target::Base;
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Target::Unknown;
    };
    if rest == "_catalog" {
        return Target::Catalog;
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name = |k: usize| segs[..n - k].join("/");
    let last = segs[n - 1].to_owned();
    if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        return if last.is_empty() {
            Target::UploadStart(name(3))
        } else {
            Target::Upload(name(3), last)
        };
    }
    if n < 3 {
        return Target::Unknown;
    }
    match (segs[n - 2], segs[n - 1]) {
        ("blobs", "uploads") => Target::UploadStart(name(2)),
        ("tags", "list") => Target::Tags(name(2)),
        ("manifests", _) => Target::Manifest(name(2), last),
        ("blobs", _) => Target::Blob(name(2), last),
        ("referrers", _) => Target::Referrers(name(2), last),
        _ => Target::Unknown,
    }
}

fn unsupported(method: &Method) -> ApiError {
    ApiError::new(
        ErrorCode::Unsupported,
        format!("{method} is not supported here"),
    )
}

async fn dispatch(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    applied: &Applied,
) -> Result<Reply, ApiError> {
    let method = req.method().clone();
    let target = route(req.uri().path());
    let query = Query::parse(req.uri().query());
    match target {
        Target::Base => match method {
            Method::GET | Method::HEAD => Ok(Reply::new(StatusCode::OK).json(b"{}".to_vec())),
            _ => Err(unsupported(&method)),
        },
        Target::Catalog => match method {
            Method::GET => catalog(shared, &query).await,
            _ => Err(unsupported(&method)),
        },
        Target::Unknown => Err(ApiError::new(
            ErrorCode::NameUnknown,
            format!("no such endpoint: {}", req.uri().path()),
        )),
        Target::Tags(name) => {
            let repo = RepoName::parse(&name)?;
            match method {
                Method::GET => tags(shared, &repo, &query).await,
                _ => Err(unsupported(&method)),
            }
        }
        Target::Manifest(name, reference) => {
            let repo = RepoName::parse(&name)?;
            let reference = ManifestReference::parse(&reference)?;
            match method {
                Method::GET => get_manifest(shared, &repo, &reference, true).await,
                Method::HEAD => get_manifest(shared, &repo, &reference, false).await,
                Method::PUT => put_manifest(shared, &repo, &reference, req).await,
                Method::DELETE => delete_manifest(shared, &repo, &reference).await,
                _ => Err(unsupported(&method)),
            }
        }
        Target::Blob(name, digest) => {
            let repo = RepoName::parse(&name)?;
            let digest = parse_digest(&digest)?;
            match method {
                Method::GET => get_blob(shared, &repo, &digest, req.headers(), applied).await,
                Method::HEAD => head_blob(shared, &repo, &digest).await,
                Method::DELETE => delete_blob(shared, &repo, &digest).await,
                _ => Err(unsupported(&method)),
            }
        }
        Target::UploadStart(name) => {
            let repo = RepoName::parse(&name)?;
            match method {
                Method::POST => start_upload(shared, &repo, &query, req).await,
                _ => Err(unsupported(&method)),
            }
        }
        Target::Upload(name, id) => {
            let repo = RepoName::parse(&name)?;
            let id = UploadId::parse(&id)?;
            match method {
                Method::GET => upload_status(shared, &repo, &id).await,
                Method::PATCH => patch_upload(shared, &repo, &id, req).await,
                Method::PUT => put_upload(shared, &repo, &id, &query, req).await,
                Method::DELETE => cancel_upload(shared, &repo, &id).await,
                _ => Err(unsupported(&method)),
            }
        }
        Target::Referrers(name, digest) => {
            let repo = RepoName::parse(&name)?;
            let digest = parse_digest(&digest)?;
            match method {
                Method::GET => referrers(shared, &repo, &digest, &query).await,
                _ => Err(unsupported(&method)),
            }
        }
    }
}

/// Runs a storage call on a blocking thread.
async fn blocking<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&dyn Store) -> io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = Arc::clone(&shared.store);
    match tokio::task::spawn_blocking(move || f(&*store)).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::storage(&io::Error::other(e))),
    }
}

/// Query parameters, percent-decoded.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let Some(q) = query else {
            return Query::default();
        };
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Listings

/// One page of `entries` (sorted) after `last`, at most `n`; and whether
/// more follow.
fn page<'a>(
    entries: &'a [String],
    query: &Query,
) -> Result<(&'a [String], Option<usize>, bool), ApiError> {
    let n = match query.get("n") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            ApiError::new(
                ErrorCode::PaginationNumberInvalid,
                format!("invalid page size n={v:?}"),
            )
        })?),
    };
    let start = match query.get("last") {
        Some(last) if !last.is_empty() => entries.partition_point(|e| e.as_str() <= last),
        _ => 0,
    };
    let rest = &entries[start..];
    let take = n.unwrap_or(DEFAULT_PAGE).min(rest.len());
    let more = take < rest.len() && n != Some(0);
    Ok((
        &rest[..take],
        n.or(Some(DEFAULT_PAGE)).filter(|_| more),
        more,
    ))
}

fn with_link(reply: Reply, base: &str, n: Option<usize>, last: Option<&String>) -> Reply {
    match (n, last) {
        (Some(n), Some(last)) => reply.header(
            "link",
            format!("<{base}?n={n}&last={}>; rel=\"next\"", percent_encode(last)),
        ),
        _ => reply,
    }
}

async fn tags(shared: &Shared, repo: &RepoName, query: &Query) -> Result<Reply, ApiError> {
    let r = repo.clone();
    let Some(tags) = blocking(shared, move |s| s.tags(&r)).await? else {
        return Err(ApiError::new(
            ErrorCode::NameUnknown,
            format!("repository {repo} not known"),
        ));
    };
    let (entries, n, more) = page(&tags, query)?;
    let body = serde_json::json!({ "name": repo.as_str(), "tags": entries });
    let reply = Reply::new(StatusCode::OK).json(serde_json::to_vec(&body).unwrap_or_default());
    Ok(with_link(
        reply,
        &format!("/v2/{repo}/tags/list"),
        n,
        entries.last().filter(|_| more),
    ))
}

async fn catalog(shared: &Shared, query: &Query) -> Result<Reply, ApiError> {
    let repos: Vec<String> = blocking(shared, |s| s.repositories())
        .await?
        .into_iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    let (entries, n, more) = page(&repos, query)?;
    let body = serde_json::json!({ "repositories": entries });
    let reply = Reply::new(StatusCode::OK).json(serde_json::to_vec(&body).unwrap_or_default());
    Ok(with_link(
        reply,
        "/v2/_catalog",
        n,
        entries.last().filter(|_| more),
    ))
}

// ---------------------------------------------------------------------------
// Manifests

#[derive(Debug, Clone)]
enum ManifestReference {
    Tag(TagName),
    Digest(Digest),
}

impl ManifestReference {
    fn parse(s: &str) -> Result<ManifestReference, ApiError> {
        if s.contains(':') {
            Ok(ManifestReference::Digest(parse_digest(s)?))
        } else {
            Ok(ManifestReference::Tag(TagName::parse(s)?))
        }
    }
}

async fn not_found(shared: &Shared, repo: &RepoName, code: ErrorCode, what: String) -> ApiError {
    let r = repo.clone();
    match blocking(shared, move |s| s.repository_exists(&r)).await {
        Ok(false) => ApiError::new(
            ErrorCode::NameUnknown,
            format!("repository {repo} not known"),
        ),
        _ => ApiError::new(code, what),
    }
}

async fn resolve(
    shared: &Shared,
    repo: &RepoName,
    reference: &ManifestReference,
) -> Result<(Digest, StoredManifest), ApiError> {
    let digest = match reference {
        ManifestReference::Digest(d) => Some(d.clone()),
        ManifestReference::Tag(t) => {
            let (r, t) = (repo.clone(), t.clone());
            blocking(shared, move |s| s.resolve_tag(&r, &t)).await?
        }
    };
    let found = match digest {
        Some(d) => {
            let (r, d2) = (repo.clone(), d.clone());
            blocking(shared, move |s| s.manifest(&r, &d2))
                .await?
                .map(|m| (d, m))
        }
        None => None,
    };
    match found {
        Some(found) => Ok(found),
        None => {
            let what = match reference {
                ManifestReference::Tag(t) => format!("manifest {repo}:{t} not known"),
                ManifestReference::Digest(d) => format!("manifest {repo}@{d} not known"),
            };
            Err(not_found(shared, repo, ErrorCode::ManifestUnknown, what).await)
        }
    }
}

async fn get_manifest(
    shared: &Shared,
    repo: &RepoName,
    reference: &ManifestReference,
    with_body: bool,
) -> Result<Reply, ApiError> {
    let (digest, manifest) = resolve(shared, repo, reference).await?;
    let reply = Reply::new(StatusCode::OK)
        .header("content-type", &manifest.media_type)
        .header("docker-content-digest", digest.to_string())
        .header("etag", format!("\"{digest}\""))
        .header("content-length", manifest.bytes.len().to_string());
    Ok(if with_body {
        reply.body(body::full(manifest.bytes))
    } else {
        reply
    })
}

/// How much of a refused request body is read and dropped before the
/// answer, so that the client sees the answer rather than a broken pipe.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Reads and drops what is left of a body, up to [`DRAIN_LIMIT`] bytes.
async fn drain(body: &mut Incoming) {
    let mut seen = 0u64;
    while seen <= DRAIN_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => {
                seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => return,
        }
    }
}

/// Reads a request body of at most `limit` bytes; `None` when larger.
async fn read_limited(body: Incoming, limit: u64) -> Result<Option<Bytes>, ApiError> {
    let mut body = body;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(ErrorCode::Unknown, format!("reading the body: {e}"))
                .with_status(StatusCode::BAD_REQUEST)
        })?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > limit {
                drain(&mut body).await;
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::ManifestInvalid,
        format!("the manifest is larger than {MANIFEST_SIZE_LIMIT} bytes"),
    )
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// The blobs and manifests a manifest names that must be in the
/// repository before it.
fn references(m: &Manifest) -> (Vec<&Descriptor>, Vec<&Descriptor>) {
    let mut blobs: Vec<&Descriptor> = m.config().into_iter().collect();
    // Foreign layers live elsewhere (their `urls`).
    blobs.extend(
        m.layers()
            .iter()
            .filter(|l| l.urls.is_empty() || !l.media_type.is_foreign()),
    );
    (blobs, m.manifests().iter().collect())
}

async fn put_manifest(
    shared: &Shared,
    repo: &RepoName,
    reference: &ManifestReference,
    mut req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    if content_length(req.headers()).is_some_and(|n| n > MANIFEST_SIZE_LIMIT) {
        drain(req.body_mut()).await;
        return Err(too_large());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(bytes) = read_limited(req.into_body(), MANIFEST_SIZE_LIMIT).await? else {
        return Err(too_large());
    };
    let manifest = Manifest::from_bytes(&bytes, content_type.as_deref())
        .map_err(|e| ApiError::new(ErrorCode::ManifestInvalid, format!("invalid manifest: {e}")))?;
    let digest = match reference {
        ManifestReference::Digest(expected) => {
            let mut d = Digester::for_digest(expected)
                .map_err(|e| ApiError::new(ErrorCode::DigestInvalid, e.to_string()))?;
            d.update(&bytes);
            let actual = d.finish();
            if &actual != expected {
                return Err(ApiError::new(
                    ErrorCode::DigestInvalid,
                    format!("the manifest's digest is {actual}, not {expected}"),
                )
                .with_detail(serde_json::json!({
                    "expected": expected.to_string(),
                    "actual": actual.to_string(),
                })));
            }
            actual
        }
        ManifestReference::Tag(_) => Digester::sha256_of(&bytes),
    };
    let (blobs, manifests) = references(&manifest);
    let blobs: Vec<Digest> = blobs.into_iter().map(|d| d.digest.clone()).collect();
    let children: Vec<Digest> = manifests.into_iter().map(|d| d.digest.clone()).collect();
    let r = repo.clone();
    let missing = blocking(shared, move |s| {
        for d in &blobs {
            if s.blob_size(&r, d)?.is_none() {
                return Ok(Some(("blob", d.clone())));
            }
        }
        for d in &children {
            if s.manifest(&r, d)?.is_none() {
                return Ok(Some(("manifest", d.clone())));
            }
        }
        Ok(None)
    })
    .await?;
    if let Some((kind, d)) = missing {
        return Err(ApiError::new(
            ErrorCode::ManifestBlobUnknown,
            format!("the manifest names {kind} {d}, which is not in {repo}"),
        )
        .with_detail(serde_json::json!({ "digest": d.to_string() })));
    }
    let stored = StoredManifest {
        media_type: manifest.media_type().as_str().to_owned(),
        bytes,
    };
    let tag = match reference {
        ManifestReference::Tag(t) => Some(t.clone()),
        ManifestReference::Digest(_) => None,
    };
    let (r, d) = (repo.clone(), digest.clone());
    blocking(shared, move |s| {
        s.put_manifest(&r, &d, &stored, tag.as_ref())
    })
    .await?;
    let mut reply = Reply::new(StatusCode::CREATED)
        .header("location", format!("/v2/{repo}/manifests/{digest}"))
        .header("docker-content-digest", digest.to_string())
        .header("content-length", "0");
    if let Some(subject) = manifest.subject() {
        reply = reply.header("oci-subject", subject.digest.to_string());
    }
    Ok(reply)
}

async fn delete_manifest(
    shared: &Shared,
    repo: &RepoName,
    reference: &ManifestReference,
) -> Result<Reply, ApiError> {
    let r = repo.clone();
    let deleted = match reference.clone() {
        ManifestReference::Digest(d) => {
            blocking(shared, move |s| s.delete_manifest(&r, &d)).await?
        }
        ManifestReference::Tag(t) => blocking(shared, move |s| s.delete_tag(&r, &t)).await?,
    };
    if !deleted {
        return Err(not_found(
            shared,
            repo,
            ErrorCode::ManifestUnknown,
            format!("manifest {repo} {reference:?} not known"),
        )
        .await);
    }
    Ok(Reply::new(StatusCode::ACCEPTED).header("content-length", "0"))
}

// ---------------------------------------------------------------------------
// Blobs

fn blob_unknown(repo: &RepoName, digest: &Digest) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUnknown,
        format!("blob {digest} not known in {repo}"),
    )
}

/// A `Range: bytes=a-b` (or `a-`, or `-n`) over a blob of `size` bytes:
/// `Ok(None)` for no range, or one this server ignores (several ranges, or
/// one that breaks the grammar: RFC 9110 says to answer as if there were
/// none); `Err` when a valid range cannot be satisfied (416).
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if a.is_empty() {
        // A suffix: the last n bytes.
        if !digits(b) {
            return Ok(None);
        }
        // More digits than a u64 holds ask for more than any blob has.
        let n: u64 = b.parse().unwrap_or(u64::MAX);
        if n == 0 || size == 0 {
            return Err(());
        }
        return Ok(Some((size.saturating_sub(n), size - 1)));
    }
    if !digits(a) || !(b.is_empty() || digits(b)) {
        return Ok(None);
    }
    let start: u64 = a.parse().unwrap_or(u64::MAX);
    let last: u64 = if b.is_empty() {
        u64::MAX
    } else {
        b.parse().unwrap_or(u64::MAX)
    };
    if last < start {
        // Invalid by the grammar, so ignored, not refused.
        return Ok(None);
    }
    if start >= size {
        return Err(());
    }
    Ok(Some((start, last.min(size - 1))))
}

async fn get_blob(
    shared: &Shared,
    repo: &RepoName,
    digest: &Digest,
    headers: &HeaderMap,
    applied: &Applied,
) -> Result<Reply, ApiError> {
    let (r, d) = (repo.clone(), digest.clone());
    let Some(content) = blocking(shared, move |s| s.blob(&r, &d)).await? else {
        return Err(blob_unknown(repo, digest));
    };
    let size = content.size();
    let range = if applied.ignore_range {
        None
    } else {
        match parse_range(headers, size) {
            Ok(r) => r,
            Err(()) => {
                let err = ApiError::new(
                    ErrorCode::RangeInvalid,
                    format!("the range cannot be satisfied by a blob of {size} bytes"),
                )
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE);
                return Ok(error_reply(&err).header("content-range", format!("bytes */{size}")));
            }
        }
    };
    let reply = Reply::new(StatusCode::OK)
        .header("content-type", "application/octet-stream")
        .header("docker-content-digest", digest.to_string())
        .header("etag", format!("\"{digest}\""))
        .header("accept-ranges", "bytes");
    Ok(match range {
        None => reply
            .header("content-length", size.to_string())
            .body(body::blob(content, 0, size)),
        Some((start, end)) => {
            let len = end - start + 1;
            let mut reply = reply
                .header("content-length", len.to_string())
                .header("content-range", format!("bytes {start}-{end}/{size}"))
                .body(body::blob(content, start, len));
            reply.status = StatusCode::PARTIAL_CONTENT;
            reply
        }
    })
}

async fn head_blob(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<Reply, ApiError> {
    let (r, d) = (repo.clone(), digest.clone());
    let Some(size) = blocking(shared, move |s| s.blob_size(&r, &d)).await? else {
        return Err(blob_unknown(repo, digest));
    };
    Ok(Reply::new(StatusCode::OK)
        .header("content-type", "application/octet-stream")
        .header("docker-content-digest", digest.to_string())
        .header("accept-ranges", "bytes")
        .header("content-length", size.to_string()))
}

async fn delete_blob(shared: &Shared, repo: &RepoName, digest: &Digest) -> Result<Reply, ApiError> {
    let (r, d) = (repo.clone(), digest.clone());
    if !blocking(shared, move |s| s.delete_blob(&r, &d)).await? {
        return Err(blob_unknown(repo, digest));
    }
    Ok(Reply::new(StatusCode::ACCEPTED).header("content-length", "0"))
}

// ---------------------------------------------------------------------------
// Uploads

fn upload_unknown(id: &UploadId) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUploadUnknown,
        format!("no upload session {id}"),
    )
}

/// The headers of an upload session's answers: `Location`,
/// `Docker-Upload-UUID`, and `Range: 0-<last byte>` (left out while the
/// session is empty: `0-0` would claim one byte).
fn session_reply(status: StatusCode, repo: &RepoName, id: &UploadId, size: u64) -> Reply {
    let mut reply = Reply::new(status)
        .header("location", format!("/v2/{repo}/blobs/uploads/{id}"))
        .header("docker-upload-uuid", id.as_str())
        .header("content-length", "0");
    if size > 0 {
        reply = reply.header("range", format!("0-{}", size - 1));
    }
    reply
}

/// Appends the request body to session `id`, from `offset` on; the
/// session's size after.
async fn append_body(
    shared: &Shared,
    repo: &RepoName,
    id: &UploadId,
    offset: u64,
    body: Incoming,
) -> Result<u64, ApiError> {
    let mut body = body;
    let mut size = offset;
    let mut buf = BytesMut::new();
    loop {
        let frame = body.frame().await;
        let done = frame.is_none();
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                // Keep what arrived whole: the client resumes from there.
                if !buf.is_empty() {
                    let _ = append(shared, repo, id, size, buf.split().freeze()).await;
                }
                return Err(ApiError::new(
                    ErrorCode::BlobUploadInvalid,
                    format!("reading the body: {e}"),
                ));
            }
            None => {}
        }
        if (done && !buf.is_empty()) || buf.len() >= APPEND_BUFFER {
            size = append(shared, repo, id, size, buf.split().freeze()).await?;
        }
        if done {
            return Ok(size);
        }
    }
}

async fn append(
    shared: &Shared,
    repo: &RepoName,
    id: &UploadId,
    offset: u64,
    bytes: Bytes,
) -> Result<u64, ApiError> {
    let (r, i) = (repo.clone(), id.clone());
    match blocking(shared, move |s| s.append_upload(&r, &i, offset, &bytes)).await? {
        Append::Appended { size } => Ok(size),
        Append::WrongOffset { size } => Err(out_of_order(offset, size)),
        Append::Unknown => Err(upload_unknown(id)),
    }
}

fn out_of_order(start: u64, size: u64) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUploadInvalid,
        format!("the chunk starts at byte {start} but the upload holds {size} bytes"),
    )
    .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
    .with_detail(serde_json::json!({ "start": start, "size": size }))
}

/// The start of a `Content-Range: a-b` (also `bytes a-b`, `bytes=a-b`)
/// and its length; `Err` when malformed.
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            ErrorCode::BlobUploadInvalid,
            format!("invalid Content-Range {v:?}"),
        )
        .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s
        .strip_prefix("bytes=")
        .or_else(|| s.strip_prefix("bytes "))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    // b - a + 1, refused when b < a or when it overflows (0-u64::MAX).
    let len = b
        .checked_sub(a)
        .and_then(|d| d.checked_add(1))
        .ok_or_else(bad)?;
    Ok(Some((a, len)))
}

/// Checks a chunk's `Content-Range` against the session: it must start
/// exactly where the session ends, and agree with `Content-Length`.
/// Returns where the chunk goes.
async fn chunk_offset(
    shared: &Shared,
    repo: &RepoName,
    id: &UploadId,
    headers: &HeaderMap,
) -> Result<u64, ApiError> {
    let (r, i) = (repo.clone(), id.clone());
    let Some(size) = blocking(shared, move |s| s.upload_size(&r, &i)).await? else {
        return Err(upload_unknown(id));
    };
    if let Some((start, len)) = content_range(headers)? {
        if start != size {
            return Err(out_of_order(start, size));
        }
        if content_length(headers).is_some_and(|n| n != len) {
            return Err(ApiError::new(
                ErrorCode::BlobUploadInvalid,
                "Content-Range and Content-Length disagree",
            )
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE));
        }
    }
    Ok(size)
}

async fn finish(
    shared: &Shared,
    repo: &RepoName,
    id: &UploadId,
    digest: &Digest,
) -> Result<Reply, ApiError> {
    let (r, i, d) = (repo.clone(), id.clone(), digest.clone());
    let finished = blocking(shared, move |s| s.finish_upload(&r, &i, &d)).await?;
    // The session is gone whatever the digest turned out to be (unless it
    // is another repository's).
    if finished != Finish::Unknown {
        shared.sessions.closed(id);
    }
    match finished {
        Finish::Stored { .. } => Ok(Reply::new(StatusCode::CREATED)
            .header("location", format!("/v2/{repo}/blobs/{digest}"))
            .header("docker-content-digest", digest.to_string())
            .header("content-length", "0")),
        Finish::Mismatch { actual } => Err(ApiError::new(
            ErrorCode::DigestInvalid,
            format!("the upload's digest is {actual}, not {digest}"),
        )
        .with_detail(serde_json::json!({
            "expected": digest.to_string(),
            "actual": actual.to_string(),
        }))),
        Finish::Unknown => Err(upload_unknown(id)),
    }
}

async fn start_upload(
    shared: &Shared,
    repo: &RepoName,
    query: &Query,
    mut req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    if let Some(mount) = query.get("mount") {
        let digest = match parse_digest(mount) {
            Ok(digest) => digest,
            Err(e) => {
                drain(req.body_mut()).await;
                return Err(e);
            }
        };
        if let Some(from) = query.get("from").and_then(|f| RepoName::parse(f).ok()) {
            let (to, d) = (repo.clone(), digest.clone());
            if blocking(shared, move |s| s.mount_blob(&from, &to, &d)).await? {
                return Ok(Reply::new(StatusCode::CREATED)
                    .header("location", format!("/v2/{repo}/blobs/{digest}"))
                    .header("docker-content-digest", digest.to_string())
                    .header("content-length", "0"));
            }
        }
    }
    // Abandoned sessions go first, then there must be room for this one.
    for (r, i) in shared.sessions.take_expired() {
        let _ = blocking(shared, move |s| s.cancel_upload(&r, &i)).await;
    }
    if let Err(max) = shared.sessions.room() {
        drain(req.body_mut()).await;
        return Err(ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "{max} upload sessions are open; finish or cancel one, or wait for idle ones \
                 to expire"
            ),
        ));
    }
    let r = repo.clone();
    let id = blocking(shared, move |s| s.start_upload(&r)).await?;
    let _busy = shared.sessions.opened(repo, &id);
    if let Some(d) = query.get("digest") {
        // Monolithic: the body is the blob.
        let digest = match parse_digest(d) {
            Ok(digest) => digest,
            Err(e) => {
                shared.sessions.closed(&id);
                let (r, i) = (repo.clone(), id.clone());
                let _ = blocking(shared, move |s| s.cancel_upload(&r, &i)).await;
                drain(req.body_mut()).await;
                return Err(e);
            }
        };
        if let Err(e) = append_body(shared, repo, &id, 0, req.into_body()).await {
            shared.sessions.closed(&id);
            let (r, i) = (repo.clone(), id.clone());
            let _ = blocking(shared, move |s| s.cancel_upload(&r, &i)).await;
            return Err(e);
        }
        return finish(shared, repo, &id, &digest).await;
    }
    Ok(session_reply(StatusCode::ACCEPTED, repo, &id, 0))
}

async fn upload_status(shared: &Shared, repo: &RepoName, id: &UploadId) -> Result<Reply, ApiError> {
    let _busy = shared.sessions.busy(id);
    let (r, i) = (repo.clone(), id.clone());
    let Some(size) = blocking(shared, move |s| s.upload_size(&r, &i)).await? else {
        return Err(upload_unknown(id));
    };
    Ok(session_reply(StatusCode::NO_CONTENT, repo, id, size))
}

/// The answer to a chunk that was refused: a 416 says where the session
/// stands (`Location`, `Range`), so the client can resume from there;
/// anything else is the plain error.
async fn refused_chunk(
    shared: &Shared,
    repo: &RepoName,
    id: &UploadId,
    e: ApiError,
) -> Result<Reply, ApiError> {
    if e.status != StatusCode::RANGE_NOT_SATISFIABLE {
        return Err(e);
    }
    let (r, i) = (repo.clone(), id.clone());
    let size = blocking(shared, move |s| s.upload_size(&r, &i))
        .await?
        .unwrap_or(0);
    let mut reply = error_reply(&e)
        .header("location", format!("/v2/{repo}/blobs/uploads/{id}"))
        .header("docker-upload-uuid", id.as_str());
    if size > 0 {
        reply = reply.header("range", format!("0-{}", size - 1));
    }
    Ok(reply)
}

async fn patch_upload(
    shared: &Shared,
    repo: &RepoName,
    id: &UploadId,
    mut req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let _busy = shared.sessions.busy(id);
    let offset = match chunk_offset(shared, repo, id, req.headers()).await {
        Ok(offset) => offset,
        Err(e) => {
            drain(req.body_mut()).await;
            return refused_chunk(shared, repo, id, e).await;
        }
    };
    let size = append_body(shared, repo, id, offset, req.into_body()).await?;
    Ok(session_reply(StatusCode::ACCEPTED, repo, id, size))
}

async fn put_upload(
    shared: &Shared,
    repo: &RepoName,
    id: &UploadId,
    query: &Query,
    mut req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let _busy = shared.sessions.busy(id);
    let checked = match query.get("digest") {
        Some(d) => match parse_digest(d) {
            Ok(digest) => chunk_offset(shared, repo, id, req.headers())
                .await
                .map(|offset| (digest, offset)),
            Err(e) => Err(e),
        },
        None => Err(ApiError::new(
            ErrorCode::DigestInvalid,
            "closing an upload needs ?digest=",
        )),
    };
    let (digest, offset) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            // Read what the client sends, so that it sees the answer.
            drain(req.body_mut()).await;
            return refused_chunk(shared, repo, id, e).await;
        }
    };
    append_body(shared, repo, id, offset, req.into_body()).await?;
    finish(shared, repo, id, &digest).await
}

async fn cancel_upload(shared: &Shared, repo: &RepoName, id: &UploadId) -> Result<Reply, ApiError> {
    let (r, i) = (repo.clone(), id.clone());
    if !blocking(shared, move |s| s.cancel_upload(&r, &i)).await? {
        // Another repository's session stays as it was.
        return Err(upload_unknown(id));
    }
    shared.sessions.closed(id);
    Ok(Reply::new(StatusCode::NO_CONTENT))
}

// ---------------------------------------------------------------------------
// Referrers

fn annotations(m: &Manifest) -> BTreeMap<String, String> {
    match m.parsed() {
        ParsedManifest::Image(m) => m.annotations.clone(),
        ParsedManifest::Index(m) => m.annotations.clone(),
        ParsedManifest::Artifact(m) => m.annotations.clone(),
        _ => BTreeMap::new(),
    }
}

fn artifact_type(m: &Manifest) -> Option<MediaType> {
    match m.parsed() {
        ParsedManifest::Image(m) => Some(m.effective_artifact_type().clone()),
        ParsedManifest::Index(m) => m.artifact_type.clone(),
        ParsedManifest::Artifact(m) => Some(m.artifact_type.clone()),
        _ => None,
    }
}

async fn referrers(
    shared: &Shared,
    repo: &RepoName,
    subject: &Digest,
    query: &Query,
) -> Result<Reply, ApiError> {
    let filter = query
        .get("artifactType")
        .filter(|t| !t.is_empty())
        .map(MediaType::new);
    let (r, subject) = (repo.clone(), subject.clone());
    let filter2 = filter.clone();
    let descriptors = blocking(shared, move |s| {
        let mut out = Vec::new();
        for digest in s.manifest_digests(&r)? {
            let Some(stored) = s.manifest(&r, &digest)? else {
                continue;
            };
            let Ok(m) = Manifest::from_bytes(&stored.bytes, Some(&stored.media_type)) else {
                continue;
            };
            if m.subject().is_none_or(|d| d.digest != subject) {
                continue;
            }
            let artifact_type = artifact_type(&m);
            if let Some(want) = &filter2
                && artifact_type.as_ref() != Some(want)
            {
                continue;
            }
            let mut d = Descriptor::new(m.media_type().clone(), digest, m.size());
            d.artifact_type = artifact_type;
            d.annotations = annotations(&m);
            out.push(d);
        }
        Ok(out)
    })
    .await?;
    let index = ImageIndex::new(descriptors);
    let bytes = serde_json::to_vec(&index).unwrap_or_default();
    let mut reply = Reply::new(StatusCode::OK)
        .header("content-type", MediaType::OCI_INDEX.as_str())
        .header("content-length", bytes.len().to_string())
        .body(body::full(bytes));
    if filter.is_some() {
        reply = reply.header("oci-filters-applied", "artifactType");
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let t = |p: &str| route(p);
        assert_eq!(t("/v2/"), Target::Base);
        assert_eq!(t("/v2/_catalog"), Target::Catalog);
        assert_eq!(t("/v2/a/b/tags/list"), Target::Tags("a/b".into()));
        assert_eq!(
            t("/v2/a/manifests/x/manifests/latest"),
            Target::Manifest("a/manifests/x".into(), "latest".into())
        );
        assert_eq!(t("/v2/a/blobs/uploads/"), Target::UploadStart("a".into()));
        assert_eq!(t("/v2/a/blobs/uploads"), Target::UploadStart("a".into()));
        assert_eq!(
            t("/v2/a/blobs/uploads/abc"),
            Target::Upload("a".into(), "abc".into())
        );
        assert_eq!(
            t("/v2/a/blobs/sha256:00"),
            Target::Blob("a".into(), "sha256:00".into())
        );
        assert_eq!(
            t("/v2/../../etc/manifests/x"),
            Target::Manifest("../../etc".into(), "x".into())
        );
        assert_eq!(t("/v2/manifests/x"), Target::Unknown);
        assert_eq!(t("/v3/a/manifests/x"), Target::Unknown);
    }

    #[test]
    fn ranges_and_queries() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_range(&h, 10), Ok(None));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-4"));
        assert_eq!(parse_range(&h, 10), Ok(Some((2, 4))));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-"));
        assert_eq!(parse_range(&h, 10), Ok(Some((2, 9))));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=-3"));
        assert_eq!(parse_range(&h, 10), Ok(Some((7, 9))));
        h.insert(
            header::RANGE,
            HeaderValue::from_static("bytes=2-99999999999999999999999"),
        );
        assert_eq!(parse_range(&h, 10), Ok(Some((2, 9))));
        h.insert(
            header::RANGE,
            HeaderValue::from_static("bytes=-99999999999999999999999"),
        );
        assert_eq!(parse_range(&h, 10), Ok(Some((0, 9))));
        // Valid but unsatisfiable: 416.
        for unsatisfiable in ["bytes=10-", "bytes=10-12", "bytes=-0"] {
            h.insert(header::RANGE, HeaderValue::from_static(unsatisfiable));
            assert_eq!(parse_range(&h, 10), Err(()), "{unsatisfiable}");
        }
        h.insert(header::RANGE, HeaderValue::from_static("bytes=-1"));
        assert_eq!(parse_range(&h, 0), Err(()));
        // Invalid: ignored, the whole blob is served.
        for invalid in [
            "bytes=5-3",
            "bytes=x-1",
            "bytes=1-y",
            "bytes=-",
            "bytes=3",
            "bytes=+1-2",
            "items=0-1",
            "bytes=0-1,3-4",
        ] {
            h.insert(header::RANGE, HeaderValue::from_static(invalid));
            assert_eq!(parse_range(&h, 10), Ok(None), "{invalid}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("5-9"));
        assert_eq!(content_range(&h).expect("valid"), Some((5, 5)));
        for bad in ["9-5", "0-18446744073709551615", "x-1"] {
            h.insert(header::CONTENT_RANGE, HeaderValue::from_static(bad));
            let e = content_range(&h).expect_err(bad);
            assert_eq!(e.status, StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        }
        let q = Query::parse(Some("mount=sha256%3Aab&from=a%2Fb&n=&x"));
        assert_eq!(q.get("mount"), Some("sha256:ab"));
        assert_eq!(q.get("from"), Some("a/b"));
        assert_eq!(q.get("n"), Some(""));
        assert_eq!(percent_encode("a/b:c"), "a%2Fb%3Ac");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
