//! Pushing a blob: a cross-repository mount when the caller knows a source
//! repository, else an upload session, sent whole (one `PUT`) or in chunks
//! (`PATCH` with `Content-Range`, then `PUT`), resumed after a failed chunk
//! by asking the session's status.

use berth_reference::Digest;
use http::response::Parts;
use http::{HeaderValue, Method, StatusCode, Uri, header};

use super::{header_str, repo_scope};
use crate::endpoint::Endpoint;
use crate::error::{Error, Subject};
use crate::exchange::{Exchange, Machine, Next, Steps, encode_component, operation};
use crate::op::{Context, RequestBody};
use crate::redirect::resolve;

/// How a blob is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadPolicy {
    /// Blobs up to this size go in one `PUT`; larger ones in chunks.
    /// `u64::MAX` sends everything whole.
    pub monolithic_max: u64,
    /// The chunk size berth prefers.
    pub chunk_size: u64,
    /// The largest chunk the registry takes (GHCR: 4 MiB).
    pub max_chunk: Option<u64>,
}

impl Default for UploadPolicy {
    fn default() -> Self {
        UploadPolicy {
            monolithic_max: u64::MAX,
            chunk_size: 8 * 1024 * 1024,
            max_chunk: None,
        }
    }
}

impl UploadPolicy {
    /// Every blob in chunks of `chunk_size` (at most `max_chunk`).
    pub fn chunked(chunk_size: u64, max_chunk: Option<u64>) -> Self {
        UploadPolicy {
            monolithic_max: 0,
            chunk_size: chunk_size.max(1),
            max_chunk,
        }
    }

    /// The size of the next chunk, given the registry's minimum.
    fn chunk(&self, min: Option<u64>) -> u64 {
        let mut size = self.chunk_size.max(min.unwrap_or(0)).max(1);
        if let Some(max) = self.max_chunk {
            size = size.min(max.max(1));
        }
        size
    }
}

/// How a push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// The registry mounted the blob from another repository: no bytes sent.
    Mounted,
    /// The blob was uploaded.
    Uploaded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    Mount,
    Chunk { offset: u64, len: u64 },
    Status,
    Finish,
    Whole,
}

pub(crate) struct PushBlobSteps {
    domain: String,
    name: String,
    digest: Digest,
    size: u64,
    mount_from: Option<String>,
    policy: UploadPolicy,
    endpoint: Option<Endpoint>,
    location: Option<Uri>,
    min_chunk: Option<u64>,
    stage: Stage,
    resumes: u32,
}

/// How many times one push asks for its session's status after a failed
/// chunk before giving up.
const MAX_RESUMES: u32 = 5;

impl PushBlobSteps {
    fn endpoint(&self) -> Result<&Endpoint, Error> {
        self.endpoint
            .as_ref()
            .ok_or(Error::Misuse("push without endpoint"))
    }

    fn scopes(&self) -> Result<Vec<berth_auth::Scope>, Error> {
        let mut scopes = vec![repo_scope(&self.name, &["pull", "push"])?];
        if let Some(from) = &self.mount_from {
            scopes.push(repo_scope(from, &["pull"])?);
        }
        Ok(scopes)
    }

    /// Reads `Location` (relative to the request) and the chunk minimum.
    fn take_location(&mut self, ex: &Exchange, parts: &Parts) -> Result<(), Error> {
        let location = header_str(&parts.headers, header::LOCATION)
            .ok_or_else(|| Error::invalid("upload response", "no Location header"))?;
        let uri = resolve(ex.uri(), location).ok_or_else(|| {
            Error::invalid(
                "upload Location",
                format!("not a URL: {:?}", crate::error::redact_url_text(location)),
            )
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(Error::invalid("upload Location", "not http(s)"));
        }
        self.location = Some(uri);
        if let Some(min) =
            header_str(&parts.headers, "oci-chunk-min-length").and_then(|v| v.trim().parse().ok())
        {
            self.min_chunk = Some(min);
        }
        Ok(())
    }

    fn location_with(&self, extra: &str) -> Result<Uri, Error> {
        let base = self
            .location
            .as_ref()
            .ok_or(Error::Misuse("upload without location"))?;
        let mut s = base.to_string();
        if !extra.is_empty() {
            s.push(if base.query().is_some() { '&' } else { '?' });
            s.push_str(extra);
        }
        s.parse().map_err(|e| Error::invalid("upload Location", e))
    }

    fn octet_stream(ex: Exchange, len: u64) -> Exchange {
        ex.header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )
        .header(header::CONTENT_LENGTH, HeaderValue::from(len))
    }

    /// The exchange that sends the bytes from `offset` on: the whole blob,
    /// the next chunk, or the closing `PUT`.
    fn send_from(&mut self, offset: u64) -> Result<Exchange, Error> {
        let endpoint = self.endpoint()?.clone();
        let scopes = self.scopes()?;
        if offset == 0 && self.size <= self.policy.monolithic_max {
            self.stage = Stage::Whole;
            let uri = self.location_with(&format!(
                "digest={}",
                encode_component(&self.digest.to_string())
            ))?;
            let ex = Exchange::with_uri(&endpoint, Method::PUT, uri, Subject::Upload, scopes).body(
                RequestBody::Blob {
                    offset: 0,
                    len: self.size,
                },
            );
            return Ok(Self::octet_stream(ex, self.size));
        }
        if offset >= self.size {
            self.stage = Stage::Finish;
            let uri = self.location_with(&format!(
                "digest={}",
                encode_component(&self.digest.to_string())
            ))?;
            let ex = Exchange::with_uri(&endpoint, Method::PUT, uri, Subject::Upload, scopes);
            return Ok(Self::octet_stream(ex, 0));
        }
        let len = self.policy.chunk(self.min_chunk).min(self.size - offset);
        self.stage = Stage::Chunk { offset, len };
        let uri = self.location_with("")?;
        let range =
            HeaderValue::from_str(&format!("{}-{}", offset, offset + len - 1)).expect("digits");
        let ex = Exchange::with_uri(&endpoint, Method::PATCH, uri, Subject::Upload, scopes)
            .header(header::CONTENT_RANGE, range)
            .body(RequestBody::Blob { offset, len });
        Ok(Self::octet_stream(ex, len))
    }

    /// The end of the uploaded range from a `Range: 0-N` header.
    fn range_end(parts: &Parts) -> Result<Option<u64>, Error> {
        let Some(range) = header_str(&parts.headers, header::RANGE) else {
            return Ok(None);
        };
        let range = range.trim().trim_start_matches("bytes=");
        let (start, end) = range
            .split_once('-')
            .ok_or_else(|| Error::invalid("upload Range header", format!("{range:?}")))?;
        let (start, end) = (start.trim().parse::<u64>(), end.trim().parse::<u64>());
        match (start, end) {
            (Ok(0), Ok(end)) => Ok(Some(end)),
            _ => Err(Error::invalid("upload Range header", format!("{range:?}"))),
        }
    }
}

impl Steps for PushBlobSteps {
    type Output = PushOutcome;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        let mut path = format!("/v2/{}/blobs/uploads/", self.name);
        self.stage = Stage::Start;
        if let Some(from) = &self.mount_from {
            // Quay wants `from` with every `mount`.
            path.push_str(&format!(
                "?mount={}&from={}",
                encode_component(&self.digest.to_string()),
                encode_component(from)
            ));
            self.stage = Stage::Mount;
        }
        let ex = Exchange::new(
            &endpoint,
            Method::POST,
            &path,
            Subject::Upload,
            self.scopes()?,
        )?
        .header(header::CONTENT_LENGTH, HeaderValue::from(0u64))
        .retryable(true);
        self.endpoint = Some(endpoint);
        Ok(ex)
    }

    fn on_head(
        &mut self,
        ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<PushOutcome>, Error> {
        let status = parts.status;
        match self.stage {
            Stage::Mount if status == StatusCode::CREATED => Ok(Next::Done(PushOutcome::Mounted)),
            // 202 to a mount: the registry started an upload instead.
            Stage::Start | Stage::Mount if status == StatusCode::ACCEPTED => {
                self.take_location(ex, &parts)?;
                Ok(Next::Then(self.send_from(0)?))
            }
            // ECR answers a chunk with 201 instead of 202.
            Stage::Chunk { offset, len }
                if status == StatusCode::ACCEPTED || status == StatusCode::CREATED =>
            {
                self.take_location(ex, &parts)?;
                let next = match Self::range_end(&parts)? {
                    Some(end) if end.checked_add(1) != Some(offset + len) => {
                        return Err(Error::invalid(
                            "upload Range header",
                            format!(
                                "after bytes {offset}-{} the registry holds 0-{end}",
                                offset + len - 1
                            ),
                        ));
                    }
                    _ => offset + len,
                };
                Ok(Next::Then(self.send_from(next)?))
            }
            Stage::Status if status == StatusCode::NO_CONTENT || status.is_success() => {
                self.take_location(ex, &parts).or_else(|_| {
                    if self.location.is_some() {
                        Ok(())
                    } else {
                        Err(Error::invalid("upload status", "no Location"))
                    }
                })?;
                let next = match Self::range_end(&parts)? {
                    None => 0,
                    Some(end) => end.checked_add(1).ok_or_else(|| {
                        Error::invalid(
                            "upload Range header",
                            "the registry holds more than the blob",
                        )
                    })?,
                };
                if next > self.size {
                    return Err(Error::invalid(
                        "upload Range header",
                        "the registry holds more than the blob",
                    ));
                }
                if next == 0 {
                    // Nothing kept: send from the start, in chunks.
                    self.policy.monolithic_max = 0;
                }
                Ok(Next::Then(self.send_from(next)?))
            }
            Stage::Whole | Stage::Finish
                if status == StatusCode::CREATED || status.is_success() =>
            {
                if let Some(d) = header_str(&parts.headers, "docker-content-digest")
                    && let Ok(d) = Digest::parse_any_algorithm(d.trim())
                    && d != self.digest
                {
                    return Err(Error::mismatch(self.digest.clone(), d));
                }
                Ok(Next::Done(PushOutcome::Uploaded))
            }
            // A chunk out of order: ask where the session stands.
            Stage::Chunk { .. }
                if status == StatusCode::RANGE_NOT_SATISFIABLE && self.resumes < MAX_RESUMES =>
            {
                self.resume()
            }
            _ => Ok(Next::Fail(parts)),
        }
    }

    fn on_unreachable(
        &mut self,
        error: Error,
        _cx: &mut Context<'_>,
    ) -> Result<Next<PushOutcome>, Error> {
        // A chunk that failed on the way: ask the session how much arrived.
        match self.stage {
            Stage::Chunk { .. } if self.resumes < MAX_RESUMES => self.resume(),
            _ => Err(error),
        }
    }
}

impl PushBlobSteps {
    fn resume(&mut self) -> Result<Next<PushOutcome>, Error> {
        self.resumes += 1;
        self.stage = Stage::Status;
        let uri = self.location_with("")?;
        let endpoint = self.endpoint()?.clone();
        Ok(Next::Then(Exchange::with_uri(
            &endpoint,
            Method::GET,
            uri,
            Subject::Upload,
            self.scopes()?,
        )))
    }
}

operation!(
    /// Pushes one blob: mount from `mount_from` when given (falling back to
    /// an upload on 202), else start an upload and send the bytes whole or
    /// in chunks. The driver supplies [`RequestBody::Blob`] ranges. Check
    /// first with [`super::HeadBlob`] whether the blob is already there.
    PushBlob,
    PushBlobSteps,
    PushOutcome
);

impl PushBlob {
    /// Pushes the blob `digest` of `size` bytes to repository `name` of
    /// registry `domain`.
    pub fn new(
        domain: &str,
        name: &str,
        digest: &Digest,
        size: u64,
        policy: UploadPolicy,
    ) -> PushBlob {
        PushBlob(Machine::new(PushBlobSteps {
            domain: domain.to_owned(),
            name: name.to_owned(),
            digest: digest.clone(),
            size,
            mount_from: None,
            policy,
            endpoint: None,
            location: None,
            min_chunk: None,
            stage: Stage::Start,
            resumes: 0,
        }))
    }

    /// Mounts from repository `from` of the same registry first.
    pub fn mount_from(mut self, from: &str) -> PushBlob {
        self.0.steps_mut().mount_from = Some(from.to_owned());
        self
    }
}

pub(crate) struct CancelUploadSteps {
    domain: String,
    name: String,
    location: Uri,
}

impl Steps for CancelUploadSteps {
    type Output = ();

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        Ok(Exchange::with_uri(
            &endpoint,
            Method::DELETE,
            self.location.clone(),
            Subject::Upload,
            vec![repo_scope(&self.name, &["pull", "push"])?],
        ))
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<()>, Error> {
        if parts.status.is_success() || parts.status == StatusCode::NOT_FOUND {
            Ok(Next::Done(()))
        } else {
            Ok(Next::Fail(parts))
        }
    }
}

operation!(
    /// `DELETE` of an upload session (its `Location`).
    CancelUpload,
    CancelUploadSteps,
    ()
);

impl CancelUpload {
    /// Cancels the upload at `location` in repository `name`.
    pub fn new(domain: &str, name: &str, location: Uri) -> CancelUpload {
        CancelUpload(Machine::new(CancelUploadSteps {
            domain: domain.to_owned(),
            name: name.to_owned(),
            location,
        }))
    }
}
