//! Blobs: `HEAD`, `GET` (streamed to the caller, following redirects to
//! storage without credentials), `DELETE`.

use berth_reference::Digest;
use bytes::Bytes;
use http::response::Parts;
use http::{HeaderValue, Method, StatusCode, header};

use super::{content_length, header_str, repo_scope};
use crate::error::{Error, Subject};
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
            let range = HeaderValue::from_str(&format!("bytes={}-", self.offset))
                .expect("digits are a valid header");
            ex = ex.header(header::RANGE, range);
        }
        Ok(ex)
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Self::Output>, Error> {
        match parts.status {
            StatusCode::OK => Ok(Next::Done(BlobResponse {
                offset: 0,
                length: content_length(&parts.headers),
            })),
            StatusCode::PARTIAL_CONTENT => {
                // The range must start where we asked.
                let start = header_str(&parts.headers, header::CONTENT_RANGE)
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split_once('-'))
                    .and_then(|(s, _)| s.trim().parse::<u64>().ok());
                if start != Some(self.offset) {
                    return Err(Error::invalid(
                        "Content-Range",
                        format!("asked for bytes from {}, got {start:?}", self.offset),
                    ));
                }
                Ok(Next::Done(BlobResponse {
                    offset: self.offset,
                    length: content_length(&parts.headers),
                }))
            }
            _ => Ok(Next::Fail(parts)),
        }
    }
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
