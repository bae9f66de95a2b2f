//! Blobs: `HEAD`, `GET` (streamed to the caller, following redirects to
//! storage without credentials), `DELETE`.

use berth_reference::Digest;
use bytes::Bytes;
use http::response::Parts;
use http::{HeaderValue, Method, StatusCode, Uri, header};

use super::{content_length, header_str, repo_scope};
use crate::endpoint::{Endpoint, Scheme};
use crate::error::{Error, Subject, redact_url};
use crate::exchange::{Exchange, Machine, Next, Steps, operation};
use crate::op::Context;

/// What a `HEAD` of a blob said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// `Content-Length`, if sent.
    pub size: Option<u64>,
    /// `Docker-Content-Digest`, if sent (Docker Hub sends none for blobs).
    pub digest: Option<String>,
}

pub(crate) struct HeadBlobSteps {
    domain: String,
    name: String,
    digest: Digest,
}

impl Steps for HeadBlobSteps {
    type Output = Option<BlobInfo>;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        Exchange::new(
            &endpoint,
            Method::HEAD,
            &format!("/v2/{}/blobs/{}", self.name, self.digest),
            Subject::Blob,
            vec![repo_scope(&self.name, &["pull"])?],
        )
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Self::Output>, Error> {
        match parts.status {
            s if s.is_success() => Ok(Next::Done(Some(BlobInfo {
                size: content_length(&parts.headers),
                digest: header_str(&parts.headers, "docker-content-digest").map(str::to_owned),
            }))),
            StatusCode::NOT_FOUND => Ok(Next::Done(None)),
            _ => Ok(Next::Fail(parts)),
        }
    }
}

operation!(
    /// `HEAD /v2/<name>/blobs/<digest>`: `Some` when the blob exists, `None`
    /// on 404.
    HeadBlob,
    HeadBlobSteps,
    Option<BlobInfo>
);

impl HeadBlob {
    /// Whether `digest` is in repository `name` of registry `domain`.
    pub fn new(domain: &str, name: &str, digest: &Digest) -> HeadBlob {
        HeadBlob(Machine::new(HeadBlobSteps {
            domain: domain.to_owned(),
            name: name.to_owned(),
            digest: digest.clone(),
        }))
    }
}

/// The head of a blob response whose body the caller now reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobResponse {
    /// The first byte of the body within the blob: the offset asked for
    /// when the registry honoured `Range` (206), else 0.
    pub offset: u64,
    /// `Content-Length` of this body, if sent. Not trusted: verify the size
    /// while reading.
    pub length: Option<u64>,
}

pub(crate) struct GetBlobSteps {
    domain: String,
    name: String,
    digest: Digest,
    offset: u64,
}

impl Steps for GetBlobSteps {
    type Output = BlobResponse;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        let mut ex = Exchange::new(
            &endpoint,
            Method::GET,
            &format!("/v2/{}/blobs/{}", self.name, self.digest),
            Subject::Blob,
            vec![repo_scope(&self.name, &["pull"])?],
        )?;
        if self.offset > 0 {
            ex = ex.header(header::RANGE, range_header(self.offset));
        }
        Ok(ex)
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Self::Output>, Error> {
        blob_head(&parts, self.offset).map_or(Ok(Next::Fail(parts)), |r| r.map(Next::Done))
    }
}

/// What a blob GET's head means: `None` for an error status (the caller
/// fails with it), else where the body starts.
fn blob_head(parts: &Parts, offset: u64) -> Option<Result<BlobResponse, Error>> {
    match parts.status {
        StatusCode::OK => Some(Ok(BlobResponse {
            offset: 0,
            length: content_length(&parts.headers),
        })),
        StatusCode::PARTIAL_CONTENT => {
            // The range must start where we asked.
            let start = header_str(&parts.headers, header::CONTENT_RANGE)
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split_once('-'))
                .and_then(|(s, _)| s.trim().parse::<u64>().ok());
            if start != Some(offset) {
                return Some(Err(Error::invalid(
                    "Content-Range",
                    format!("asked for bytes from {offset}, got {start:?}"),
                )));
            }
            Some(Ok(BlobResponse {
                offset,
                length: content_length(&parts.headers),
            }))
        }
        _ => None,
    }
}

fn range_header(offset: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes={offset}-")).expect("digits are a valid header")
}

operation!(
    /// `GET /v2/<name>/blobs/<digest>`, from `offset` with `Range` when
    /// resuming. Finishes with the response head; the caller reads the body
    /// (the current response's) and verifies it.
    GetBlob,
    GetBlobSteps,
    BlobResponse
);

impl GetBlob {
    /// Fetches `digest` from repository `name` of registry `domain`,
    /// starting at byte `offset` (0 for the whole blob).
    pub fn new(domain: &str, name: &str, digest: &Digest, offset: u64) -> GetBlob {
        GetBlob(Machine::new(GetBlobSteps {
            domain: domain.to_owned(),
            name: name.to_owned(),
            digest: digest.clone(),
            offset,
        }))
    }
}

/// The schemes a foreign layer's URL may use.
const FOREIGN_SCHEMES: [&str; 2] = ["http", "https"];

/// Checks a foreign layer's URL: absolute http(s), no credentials in it,
/// no fragment (as registries validate them).
pub fn foreign_url(url: &str) -> Result<Uri, Error> {
    let bad = |why: &str| Error::invalid("foreign layer URL", format!("{}: {why}", redact(url)));
    if url.contains('#') {
        return Err(bad("has a fragment"));
    }
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some(s) if FOREIGN_SCHEMES.iter().any(|f| s.eq_ignore_ascii_case(f)) => {}
        _ => return Err(bad("only http and https are fetched")),
    }
    match uri.authority() {
        None => return Err(bad("no host")),
        Some(a) if a.as_str().contains('@') => return Err(bad("credentials in the URL")),
        Some(_) => {}
    }
    Ok(uri)
}

fn redact(url: &str) -> String {
    url.parse::<Uri>()
        .map_or_else(|_| url.chars().take(200).collect(), |u| redact_url(&u))
}

pub(crate) struct GetForeignBlobSteps {
    uri: Uri,
    offset: u64,
}

impl Steps for GetForeignBlobSteps {
    type Output = BlobResponse;

    fn first(&mut self, _cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let scheme = if self.uri.scheme_str() == Some("https") {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let authority = self.uri.authority().map_or("", |a| a.as_str()).to_owned();
        // Not a registry: an endpoint of its own, so that nothing the
        // session holds for a registry applies to it.
        let endpoint = Endpoint {
            registry: String::new(),
            scheme,
            authority,
            skip_tls_verify: false,
        };
        let mut ex = Exchange::with_uri(
            &endpoint,
            Method::GET,
            self.uri.clone(),
            Subject::Blob,
            Vec::new(),
        )
        .anonymous();
        if self.offset > 0 {
            ex = ex.header(header::RANGE, range_header(self.offset));
        }
        Ok(ex)
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Self::Output>, Error> {
        blob_head(&parts, self.offset).map_or(Ok(Next::Fail(parts)), |r| r.map(Next::Done))
    }
}

operation!(
    /// `GET` of a foreign layer from one of its descriptor's `urls`: any
    /// http(s) server, never sent the credentials or tokens of any
    /// registry, from `offset` with `Range` when resuming. Finishes with the
    /// response head; the caller reads and verifies the body as for
    /// [`GetBlob`].
    GetForeignBlob,
    GetForeignBlobSteps,
    BlobResponse
);

impl GetForeignBlob {
    /// Fetches from `url` (checked with [`foreign_url`]) starting at byte
    /// `offset`.
    pub fn new(url: &str, offset: u64) -> Result<GetForeignBlob, Error> {
        Ok(GetForeignBlob(Machine::new(GetForeignBlobSteps {
            uri: foreign_url(url)?,
            offset,
        })))
    }
}

pub(crate) struct DeleteBlobSteps {
    domain: String,
    name: String,
    digest: Digest,
}

impl Steps for DeleteBlobSteps {
    type Output = ();

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        Exchange::new(
            &endpoint,
            Method::DELETE,
            &format!("/v2/{}/blobs/{}", self.name, self.digest),
            Subject::Blob,
            vec![repo_scope(&self.name, &["delete"])?],
        )
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<()>, Error> {
        if parts.status.is_success() {
            Ok(Next::Done(()))
        } else {
            Ok(Next::Fail(parts))
        }
    }

    fn on_body(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _body: Bytes,
        _cx: &mut Context<'_>,
    ) -> Result<Next<()>, Error> {
        Ok(Next::Fail(parts))
    }
}

operation!(
    /// `DELETE /v2/<name>/blobs/<digest>`.
    DeleteBlob,
    DeleteBlobSteps,
    ()
);

impl DeleteBlob {
    /// Deletes `digest` from repository `name` of registry `domain`.
    pub fn new(domain: &str, name: &str, digest: &Digest) -> DeleteBlob {
        DeleteBlob(Machine::new(DeleteBlobSteps {
            domain: domain.to_owned(),
            name: name.to_owned(),
            digest: digest.clone(),
        }))
    }
}
