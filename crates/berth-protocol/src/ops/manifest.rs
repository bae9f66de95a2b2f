//! Manifests: resolve (HEAD, falling back to GET), get (verified against
//! its digest), put (the returned digest checked), delete (a tag resolved to
//! its digest first).

use std::fmt;

use berth_manifest::{Descriptor, Limits, Manifest, MediaType};
use berth_reference::{Digest, Reference};
use bytes::Bytes;
use http::response::Parts;
use http::{HeaderValue, Method, StatusCode, header};

use super::{content_length, header_str, repo_scope};
use crate::error::{Error, Subject};
use crate::exchange::{Exchange, Machine, Next, Steps, operation};
use crate::op::{Context, RequestBody};

/// Every manifest media type berth reads, for `Accept` (a plain list: GCR
/// mis-parses `q=` weights).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.artifact.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/vnd.docker.distribution.manifest.v1+json";

/// A manifest named by tag or by digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ManifestRef {
    /// A tag.
    Tag(String),
    /// A digest.
    Digest(Digest),
}

impl ManifestRef {
    /// The digest when the reference has one, else its tag, else `latest`.
    pub fn of(reference: &Reference) -> ManifestRef {
        match (reference.digest(), reference.tag()) {
            (Some(d), _) => ManifestRef::Digest(d.clone()),
            (None, Some(t)) => ManifestRef::Tag(t.to_owned()),
            (None, None) => ManifestRef::Tag(berth_reference::DEFAULT_TAG.to_owned()),
        }
    }

    fn subject(&self) -> Subject {
        match self {
            ManifestRef::Tag(_) => Subject::Tag,
            ManifestRef::Digest(_) => Subject::Manifest,
        }
    }
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(t) => f.write_str(t),
            ManifestRef::Digest(d) => d.fmt(f),
        }
    }
}

/// Where a manifest lives: registry, repository and tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManifestAddress {
    /// The registry (`docker.io`).
    pub domain: String,
    /// The repository path (`library/ubuntu`).
    pub name: String,
    /// The tag or digest.
    pub reference: ManifestRef,
}

impl ManifestAddress {
    /// The address of a parsed reference.
    pub fn of(reference: &Reference) -> ManifestAddress {
        ManifestAddress {
            domain: reference.domain().to_owned(),
            name: reference.path().to_owned(),
            reference: ManifestRef::of(reference),
        }
    }

    fn exchange(
        &self,
        method: Method,
        actions: &[&str],
        cx: &mut Context<'_>,
    ) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.domain);
        Ok(Exchange::new(
            &endpoint,
            method,
            &format!("/v2/{}/manifests/{}", self.name, self.reference),
            self.reference.subject(),
            vec![repo_scope(&self.name, actions)?],
        )?
        .header(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT)))
    }
}

fn content_type(parts: &Parts) -> Option<&str> {
    header_str(&parts.headers, header::CONTENT_TYPE)
}

/// The media type `Content-Type` states, without parameters.
fn stated_media_type(parts: &Parts) -> Option<MediaType> {
    let stated = MediaType::new(content_type(parts)?);
    let essence = stated.essence();
    (!essence.is_empty()).then(|| MediaType::new(&essence))
}

/// A failed check of content against its digest: a mismatch names both
/// digests; anything else is content that could not be checked.
fn verify_failure(what: &'static str, e: berth_manifest::VerifyError) -> Error {
    match e {
        berth_manifest::VerifyError::DigestMismatch { expected, actual } => {
            Error::DigestMismatch { expected, actual }
        }
        other => Error::invalid(what, other),
    }
}

fn header_digest(parts: &Parts) -> Result<Option<Digest>, Error> {
    match header_str(&parts.headers, "docker-content-digest") {
        None => Ok(None),
        Some(v) => Digest::parse_any_algorithm(v.trim())
            .map(Some)
            .map_err(|e| Error::invalid("Docker-Content-Digest header", e)),
    }
}

/// After a manifest GET's head: fail on an error status, refuse a declared
/// size over the limit, else read the body (the driver stops at the limit
/// whatever `Content-Length` said).
fn read_manifest_body<T>(parts: Parts, limits: &Limits) -> Result<Next<T>, Error> {
    if !parts.status.is_success() {
        return Ok(Next::Fail(parts));
    }
    let limit = limits.manifest;
    if content_length(&parts.headers).is_some_and(|n| n > limit) {
        return Err(Error::TooLarge {
            what: "manifest",
            limit,
        });
    }
    Ok(Next::ReadBody(
        parts,
        usize::try_from(limit).unwrap_or(usize::MAX),
    ))
}

/// A fetched manifest: the exact bytes, parsed, and their digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The manifest, its bytes exactly as received.
    pub manifest: Manifest,
    /// Its digest (of those bytes; for signed schema 1, of the payload, as
    /// registries name it).
    pub digest: Digest,
}

impl FetchedManifest {
    /// A descriptor for it.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.manifest.media_type().clone(),
            self.digest.clone(),
            self.manifest.size(),
        )
    }
}

/// Checks a fetched manifest against the digest it was asked for, or the
/// one the registry named.
fn verify_manifest(
    body: Bytes,
    parts: &Parts,
    reference: &ManifestRef,
    limits: &Limits,
) -> Result<FetchedManifest, Error> {
    let manifest = Manifest::from_vec_with_limits(Vec::from(body), content_type(parts), limits)
        .map_err(|e| Error::invalid("manifest", e))?;
    let named = header_digest(parts)?;
    let expected = match reference {
        ManifestRef::Digest(d) => Some(d.clone()),
        ManifestRef::Tag(_) => named,
    };
    let digest = match expected {
        Some(expected) => {
            manifest
                .verify(&expected)
                .map_err(|e| verify_failure("manifest", e))?;
            expected
        }
        None => manifest.digest(),
    };
    Ok(FetchedManifest { manifest, digest })
}

pub(crate) struct GetManifestSteps {
    address: ManifestAddress,
    limits: Limits,
}

impl Steps for GetManifestSteps {
    type Output = FetchedManifest;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        self.address.exchange(Method::GET, &["pull"], cx)
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<FetchedManifest>, Error> {
        read_manifest_body(parts, &self.limits)
    }

    fn on_body(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        body: Bytes,
        _cx: &mut Context<'_>,
    ) -> Result<Next<FetchedManifest>, Error> {
        verify_manifest(body, &parts, &self.address.reference, &self.limits).map(Next::Done)
    }
}

operation!(
    /// `GET /v2/<name>/manifests/<reference>` with every manifest type in
    /// `Accept`; the body is read up to the size limit and verified against
    /// the reference's digest, or the `Docker-Content-Digest` header for a
    /// tag.
    GetManifest,
    GetManifestSteps,
    FetchedManifest
);

impl GetManifest {
    /// Fetches the manifest at `address`.
    pub fn new(address: ManifestAddress) -> GetManifest {
        Self::with_limits(address, Limits::default())
    }

    /// Fetches with these size limits.
    pub fn with_limits(address: ManifestAddress, limits: Limits) -> GetManifest {
        GetManifest(Machine::new(GetManifestSteps { address, limits }))
    }
}

pub(crate) struct ResolveSteps {
    address: ManifestAddress,
    limits: Limits,
    head: bool,
    /// Asking the blob store, after the manifest store had no such digest.
    in_blobs: bool,
}

impl Steps for ResolveSteps {
    type Output = Descriptor;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        self.address.exchange(Method::HEAD, &["pull"], cx)
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        cx: &mut Context<'_>,
    ) -> Result<Next<Descriptor>, Error> {
        if self.in_blobs {
            return blob_descriptor(parts, &self.address.reference);
        }
        // A digest the manifest store does not know may be any blob
        // (containerd's resolver asks `blobs/` next).
        if not_a_manifest(parts.status)
            && let ManifestRef::Digest(digest) = &self.address.reference
        {
            self.in_blobs = true;
            let endpoint = cx.session.endpoint(&self.address.domain);
            return Ok(Next::Then(Exchange::new(
                &endpoint,
                Method::HEAD,
                &format!("/v2/{}/blobs/{digest}", self.address.name),
                Subject::Blob,
                vec![repo_scope(&self.address.name, &["pull"])?],
            )?));
        }
        if self.head {
            let digest = header_digest(&parts)?;
            let media_type = content_type(&parts).map(MediaType::new);
            match (
                parts.status,
                digest,
                media_type,
                content_length(&parts.headers),
            ) {
                (s, Some(digest), Some(media_type), Some(size)) if s.is_success() => {
                    if let ManifestRef::Digest(asked) = &self.address.reference
                        && *asked != digest
                    {
                        return Err(Error::mismatch(asked.clone(), digest));
                    }
                    return Ok(Next::Done(Descriptor::new(media_type, digest, size)));
                }
                // HEAD refused (405), answered without a digest, or a 403
                // with no body (as containerd sees): fetch the manifest.
                (s, ..)
                    if s.is_success()
                        || s == StatusCode::METHOD_NOT_ALLOWED
                        || s == StatusCode::FORBIDDEN =>
                {
                    self.head = false;
                    return Ok(Next::Then(self.address.exchange(
                        Method::GET,
                        &["pull"],
                        cx,
                    )?));
                }
                _ => return Ok(Next::Fail(parts)),
            }
        }
        read_manifest_body(parts, &self.limits)
    }

    fn on_body(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        body: Bytes,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Descriptor>, Error> {
        verify_manifest(body, &parts, &self.address.reference, &self.limits)
            .map(|m| Next::Done(m.descriptor()))
    }
}

/// A descriptor for a blob from its `HEAD`: the size must be stated and a
/// stated digest must be the one asked for; without a `Content-Type` the
/// type is `application/octet-stream`.
fn blob_descriptor(parts: Parts, asked: &ManifestRef) -> Result<Next<Descriptor>, Error> {
    if !parts.status.is_success() {
        return Ok(Next::Fail(parts));
    }
    let ManifestRef::Digest(asked) = asked else {
        return Err(Error::Misuse("the blob store is asked by digest only"));
    };
    if let Some(named) = header_digest(&parts)?
        && named != *asked
    {
        return Err(Error::mismatch(asked.clone(), named));
    }
    let size = content_length(&parts.headers)
        .ok_or_else(|| Error::invalid("blob HEAD", "no Content-Length to size the descriptor"))?;
    let media_type =
        stated_media_type(&parts).unwrap_or_else(|| MediaType::from_static(OCTET_STREAM));
    Ok(Next::Done(Descriptor::new(media_type, asked.clone(), size)))
}

/// Whether the manifest store's answer for a digest means "not a manifest
/// here": 404, or the 500 that CNCF distribution gives (after its retries)
/// for a digest it holds as a blob but cannot read as a manifest. Either
/// way the blob store is asked next.
fn not_a_manifest(status: StatusCode) -> bool {
    status == StatusCode::NOT_FOUND || status == StatusCode::INTERNAL_SERVER_ERROR
}

/// The media type of content whose type nobody stated.
pub const OCTET_STREAM: &str = "application/octet-stream";

operation!(
    /// Resolves a tag (or checks a digest) to a descriptor: `HEAD` first
    /// (Docker Hub does not count it against the pull limit), then `GET`
    /// when HEAD is refused or answers without `Docker-Content-Digest`. A
    /// digest the manifest store does not have is looked up in the blob
    /// store next, as containerd's resolver does, so any content can be
    /// resolved by digest.
    Resolve,
    ResolveSteps,
    Descriptor
);

impl Resolve {
    /// Resolves `address`.
    pub fn new(address: ManifestAddress) -> Resolve {
        Resolve(Machine::new(ResolveSteps {
            address,
            limits: Limits::default(),
            head: true,
            in_blobs: false,
        }))
    }
}

pub(crate) struct PutManifestSteps {
    address: ManifestAddress,
    media_type: MediaType,
    bytes: Bytes,
    digest: Digest,
}

impl Steps for PutManifestSteps {
    type Output = Digest;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.address.domain);
        let content_type = HeaderValue::from_str(self.media_type.as_str())
            .map_err(|_| Error::Misuse("a media type that is not a valid header value"))?;
        Ok(Exchange::new(
            &endpoint,
            Method::PUT,
            &format!(
                "/v2/{}/manifests/{}",
                self.address.name, self.address.reference
            ),
            self.address.reference.subject(),
            vec![repo_scope(&self.address.name, &["pull", "push"])?],
        )?
        .header(header::CONTENT_TYPE, content_type)
        .body(RequestBody::Bytes(self.bytes.clone())))
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Digest>, Error> {
        if !parts.status.is_success() {
            return Ok(Next::Fail(parts));
        }
        if let Some(returned) = header_digest(&parts)?
            && returned != self.digest
        {
            return Err(Error::mismatch(self.digest.clone(), returned));
        }
        Ok(Next::Done(self.digest.clone()))
    }
}

operation!(
    /// `PUT /v2/<name>/manifests/<tag or digest>` with the manifest's exact
    /// bytes; the digest the registry returns must be the bytes' own.
    PutManifest,
    PutManifestSteps,
    Digest
);

impl PutManifest {
    /// Puts `manifest` at `address` (by tag, or by its own digest).
    pub fn new(address: ManifestAddress, manifest: &Manifest) -> PutManifest {
        let digest = manifest.digest();
        PutManifest(Machine::new(PutManifestSteps {
            address,
            media_type: manifest.media_type().clone(),
            bytes: Bytes::copy_from_slice(manifest.raw()),
            digest,
        }))
    }
}

pub(crate) struct DeleteManifestSteps {
    address: ManifestAddress,
    digest: Option<Digest>,
}

impl DeleteManifestSteps {
    fn delete(&self, digest: &Digest, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let endpoint = cx.session.endpoint(&self.address.domain);
        // Quay needs the `*` scope to delete, as containers/image asks.
        Exchange::new(
            &endpoint,
            Method::DELETE,
            &format!("/v2/{}/manifests/{digest}", self.address.name),
            Subject::Manifest,
            vec![repo_scope(&self.address.name, &["*"])?],
        )
    }
}

impl Steps for DeleteManifestSteps {
    type Output = Digest;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        match &self.address.reference {
            ManifestRef::Digest(d) => {
                self.digest = Some(d.clone());
                self.delete(d, cx)
            }
            ManifestRef::Tag(_) => self.address.exchange(Method::HEAD, &["pull"], cx),
        }
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        cx: &mut Context<'_>,
    ) -> Result<Next<Digest>, Error> {
        if !parts.status.is_success() {
            return Ok(Next::Fail(parts));
        }
        match &self.digest {
            Some(d) => Ok(Next::Done(d.clone())),
            None => {
                let digest = header_digest(&parts)?.ok_or_else(|| {
                    Error::invalid(
                        "manifest HEAD",
                        "no Docker-Content-Digest header to delete by",
                    )
                })?;
                let next = self.delete(&digest, cx)?;
                self.digest = Some(digest);
                Ok(Next::Then(next))
            }
        }
    }
}

operation!(
    /// Deletes a manifest by digest; a tag is first resolved to its digest,
    /// as containers/image does (registries delete by digest only).
    DeleteManifest,
    DeleteManifestSteps,
    Digest
);

impl DeleteManifest {
    /// Deletes the manifest at `address`; the result is the digest deleted.
    pub fn new(address: ManifestAddress) -> DeleteManifest {
        DeleteManifest(Machine::new(DeleteManifestSteps {
            address,
            digest: None,
        }))
    }
}

/// Where content lives in a repository: the manifest store
/// (`/manifests/`) or the blob store (`/blobs/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Store {
    /// `/v2/<name>/manifests/<digest>`.
    Manifests,
    /// `/v2/<name>/blobs/<digest>`.
    Blobs,
}

impl Store {
    fn path(self) -> &'static str {
        match self {
            Store::Manifests => "manifests",
            Store::Blobs => "blobs",
        }
    }

    fn subject(self) -> Subject {
        match self {
            Store::Manifests => Subject::Manifest,
            Store::Blobs => Subject::Blob,
        }
    }

    /// The order to ask the stores in for content of this media type, as
    /// containerd's fetcher does: manifests and indexes from the manifest
    /// store and then the blob store; anything else from the blob store
    /// only.
    pub fn order_for(media_type: &MediaType) -> &'static [Store] {
        if media_type.is_manifest_or_index() {
            &[Store::Manifests, Store::Blobs]
        } else {
            &[Store::Blobs]
        }
    }
}

/// Small content fetched by digest from whichever store had it, verified.
#[derive(Debug, Clone)]
pub struct Content {
    /// The bytes exactly as received.
    pub bytes: Bytes,
    /// `Content-Type`, if the registry sent one.
    pub media_type: Option<MediaType>,
    /// The digest asked for (the bytes verified against it).
    pub digest: Digest,
    /// The store that had it.
    pub store: Store,
}

pub(crate) struct GetContentSteps {
    domain: String,
    name: String,
    digest: Digest,
    stores: Vec<Store>,
    at: usize,
    limits: Limits,
    /// The bytes must have the digest (no schema 1 payload digest).
    exact: bool,
}

impl GetContentSteps {
    fn exchange(&self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        let store = self.stores[self.at];
        let endpoint = cx.session.endpoint(&self.domain);
        let ex = Exchange::new(
            &endpoint,
            Method::GET,
            &format!("/v2/{}/{}/{}", self.name, store.path(), self.digest),
            store.subject(),
            vec![repo_scope(&self.name, &["pull"])?],
        )?;
        Ok(match store {
            Store::Manifests => {
                ex.header(header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT))
            }
            Store::Blobs => ex,
        })
    }
}

impl Steps for GetContentSteps {
    type Output = Content;

    fn first(&mut self, cx: &mut Context<'_>) -> Result<Exchange, Error> {
        if self.stores.is_empty() {
            return Err(Error::Misuse("content fetched from no store"));
        }
        self.exchange(cx)
    }

    fn on_head(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        cx: &mut Context<'_>,
    ) -> Result<Next<Content>, Error> {
        let next_store = match self.stores[self.at] {
            Store::Manifests => not_a_manifest(parts.status),
            Store::Blobs => parts.status == StatusCode::NOT_FOUND,
        };
        if next_store && self.at + 1 < self.stores.len() {
            self.at += 1;
            return Ok(Next::Then(self.exchange(cx)?));
        }
        read_manifest_body(parts, &self.limits)
    }

    fn on_body(
        &mut self,
        _ex: &Exchange,
        parts: Parts,
        body: Bytes,
        _cx: &mut Context<'_>,
    ) -> Result<Next<Content>, Error> {
        let store = self.stores[self.at];
        // From the manifest store, check it as a manifest (a signed schema 1
        // manifest's digest is its payload's) unless asked for the exact
        // bytes; anything else byte for byte.
        let parsed = (store == Store::Manifests && !self.exact)
            .then(|| {
                Manifest::from_vec_with_limits(
                    Vec::from(body.clone()),
                    content_type(&parts),
                    &self.limits,
                )
                .ok()
            })
            .flatten();
        let checked = match parsed {
            Some(m) => m.verify(&self.digest),
            None => berth_manifest::Verifier::verify(&self.digest, body.len() as u64, &body),
        };
        checked.map_err(|e| verify_failure("content", e))?;
        Ok(Next::Done(Content {
            media_type: stated_media_type(&parts),
            bytes: body,
            digest: self.digest.clone(),
            store,
        }))
    }
}

operation!(
    /// Fetches small content by digest from the stores in order, the next
    /// one asked when a store answers 404: a manifest kept only as a blob,
    /// or a blob asked for as a manifest, is found either way. The body is
    /// read up to the manifest size limit and verified against the digest.
    GetContent,
    GetContentSteps,
    Content
);

impl GetContent {
    /// Fetches `digest` from repository `name` of registry `domain`,
    /// asking `stores` in order, reading at most `limits.manifest` bytes.
    pub fn new(
        domain: &str,
        name: &str,
        digest: &Digest,
        stores: &[Store],
        limits: Limits,
    ) -> GetContent {
        GetContent(Machine::new(GetContentSteps {
            domain: domain.to_owned(),
            name: name.to_owned(),
            digest: digest.clone(),
            stores: stores.to_vec(),
            at: 0,
            limits,
            exact: false,
        }))
    }

    /// Verifies the bytes against the digest even from the manifest store,
    /// where a signed schema 1 manifest otherwise passes on its payload's
    /// digest: for content kept under its digest (a blob in a layout).
    pub fn byte_for_byte(mut self) -> GetContent {
        self.0.steps_mut().exact = true;
        self
    }
}
