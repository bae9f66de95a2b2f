//! The client: registry operations over the protocol core and a transport.

use std::collections::HashSet;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use berth_manifest::{Descriptor, Limits, Manifest, MediaType, Platform};
use berth_protocol::driver::{BlobSource, OutgoingBody, Runtime, Transport, drive};
use berth_protocol::endpoint::{EndpointPolicy, canonical_registry};
use berth_protocol::ops::{
    BlobResponse, Catalog, Content, DeleteManifest, FetchedManifest, GetBlob, GetContent,
    GetForeignBlob, GetManifest, HeadBlob, ListReferrers, ListTags, ManifestAddress, ManifestRef,
    Ping, PushBlob, PushOutcome, PutManifest, Referrers, Resolve, Store, UploadPolicy,
};
use berth_protocol::retry::RetryPolicy;
use berth_protocol::{CredentialProvider, Operation, Session, TransportError};
use berth_reference::{Digest, Reference};
use bytes::Bytes;
use futures_core::Stream;

use crate::error::Error;
use crate::progress::{Event, Progress};

/// The clock and sleep the client gives the protocol core: tokio's.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Runtime for TokioClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}

/// How many blobs move at once by default. Measured on 2 cores against a
/// registry on loopback: 4 keeps both cores busy hashing and copying without
/// the registry falling behind.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Settings for a [`Client`].
pub struct ClientBuilder {
    credentials: Arc<dyn CredentialProvider>,
    endpoints: EndpointPolicy,
    concurrency: usize,
    upload: UploadPolicy,
    retry: RetryPolicy,
    user_agent: String,
    limits: Limits,
    progress: Option<Progress>,
    registries: Option<berth_protocol::mirror::Registries>,
    cookies: Option<Arc<dyn berth_protocol::CookieJar>>,
    allow_nondistributable: bool,
    blob_info_cache: Option<crate::cache::BlobInfoCache>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints)
            .field("concurrency", &self.concurrency)
            .field("upload", &self.upload)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            credentials: Arc::new(berth_protocol::Anonymous),
            endpoints: EndpointPolicy::new(),
            concurrency: DEFAULT_CONCURRENCY,
            upload: UploadPolicy::default(),
            retry: RetryPolicy::default(),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_owned(),
            limits: Limits::default(),
            progress: None,
            registries: None,
            cookies: Some(Arc::new(crate::cookies::HostCookieJar::new())),
            allow_nondistributable: false,
            blob_info_cache: None,
        }
    }
}

impl ClientBuilder {
    /// Where credentials come from (default: none).
    pub fn credentials(mut self, credentials: Arc<dyn CredentialProvider>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Names a registry insecure (`HOST[:PORT]`, that port only): plain
    /// http allowed. Certificates are the transport's to skip: name the
    /// host to it too.
    pub fn insecure_registry(mut self, authority: impl Into<String>) -> Self {
        self.endpoints = self.endpoints.insecure(authority);
        self
    }

    /// How many blobs move at once (at least 1). An upload counts until
    /// the last byte of its body is sent: as many again may be waiting
    /// for the registry to answer, so the next body goes while the
    /// registry writes the last one out.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How blobs are uploaded (whole, or in chunks).
    pub fn upload_policy(mut self, policy: UploadPolicy) -> Self {
        self.upload = policy;
        self
    }

    /// The retry policy for every request.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The `User-Agent`.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Size limits for manifests and configs.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Mirrors and blocked registries (registries.conf): pulls try the
    /// mirrors first, in order, each with its own credentials only.
    /// Entries marked insecure may use plain http; to skip their
    /// certificate checks too, name them to the transport
    /// ([`crate::mirrors::insecure_hosts`]), as the `berth` command does.
    pub fn registries(mut self, registries: berth_protocol::mirror::Registries) -> Self {
        for host in crate::mirrors::insecure_hosts(&registries) {
            self.endpoints = self.endpoints.insecure(host);
        }
        self.registries = Some(registries);
        self
    }

    /// Remembers where blobs were seen, in a cache that several processes
    /// may share, and mounts blobs from other repositories of the same
    /// registry instead of uploading them (see [`crate::cache`]). Off
    /// unless set: the library opens no file on its own; the `berth`
    /// command turns it on in [`crate::BlobInfoCache::default_dir`] unless
    /// given `--no-cache`.
    pub fn blob_info_cache(mut self, cache: crate::cache::BlobInfoCache) -> Self {
        self.blob_info_cache = Some(cache);
        self
    }

    /// Whether push and copy upload non-distributable (foreign) layers.
    /// Off by default, as skopeo: such layers stay at their `urls`, and the
    /// manifest still names them there.
    pub fn allow_nondistributable(mut self, yes: bool) -> Self {
        self.allow_nondistributable = yes;
        self
    }

    /// Keeps cookies (on by default): each host's `Set-Cookie` goes back
    /// to that host only, for registries behind load balancers that pin
    /// sessions. `false` sends and keeps none.
    pub fn cookies(mut self, enabled: bool) -> Self {
        self.cookies = enabled.then(|| {
            Arc::new(crate::cookies::HostCookieJar::new()) as Arc<dyn berth_protocol::CookieJar>
        });
        self
    }

    /// Keeps cookies in `jar` instead of a jar of the client's own.
    pub fn cookie_jar(mut self, jar: Arc<dyn berth_protocol::CookieJar>) -> Self {
        self.cookies = Some(jar);
        self
    }

    /// Receives progress events.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The client, over `transport`.
    pub fn build<T: Transport>(self, transport: T) -> Client<T> {
        let mut session = Session::new(self.credentials, self.endpoints, seed())
            .with_retry(self.retry)
            .with_user_agent(self.user_agent);
        if let Some(jar) = self.cookies {
            session = session.with_cookie_jar(jar);
        }
        Client {
            inner: Arc::new(Inner {
                transport,
                session: Mutex::new(session),
                pinged: Mutex::new(HashSet::new()),
                concurrency: self.concurrency,
                upload: self.upload,
                limits: self.limits,
                progress: self.progress,
                registries: self.registries,
                allow_nondistributable: self.allow_nondistributable,
                blob_info_cache: self.blob_info_cache,
            }),
        }
    }
}

fn seed() -> u64 {
    // Only jitter: the low 64 bits of the nanoseconds are plenty.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    u64::try_from(nanos & u128::from(u64::MAX)).unwrap_or(0) ^ u64::from(std::process::id())
}

struct Inner<T> {
    transport: T,
    session: Mutex<Session>,
    pinged: Mutex<HashSet<String>>,
    concurrency: usize,
    upload: UploadPolicy,
    limits: Limits,
    progress: Option<Progress>,
    registries: Option<berth_protocol::mirror::Registries>,
    allow_nondistributable: bool,
    blob_info_cache: Option<crate::cache::BlobInfoCache>,
}

/// A registry client: cheap to clone, safe to share across tasks.
pub struct Client<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Client<T> {
    fn clone(&self) -> Self {
        Client {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("concurrency", &self.inner.concurrency)
            .finish_non_exhaustive()
    }
}

impl Client<()> {
    /// Settings for a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
}

impl<T: Transport> Client<T> {
    /// How many blobs move at once.
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// Whether a blob stays out of pushes and copies: a non-distributable
    /// layer, unless the client was told to upload those.
    pub(crate) fn leaves_behind(&self, descriptor: &Descriptor) -> bool {
        descriptor.media_type.is_foreign() && !self.inner.allow_nondistributable
    }

    pub(crate) fn emit(&self, event: Event) {
        if let Some(p) = &self.inner.progress {
            p.emit(event);
        }
    }

    /// The blob-info cache, when the client has one.
    pub fn blob_info_cache(&self) -> Option<&crate::cache::BlobInfoCache> {
        self.inner.blob_info_cache.as_ref()
    }

    /// Runs an operation; the registry is pinged first, once, to choose its
    /// endpoint (https, or http for loopback and insecure hosts) and learn
    /// its challenge.
    pub(crate) async fn run<O: Operation>(
        &self,
        domain: &str,
        mut op: O,
        blobs: Option<&dyn BlobSource>,
    ) -> Result<(O::Output, Option<T::Body>), Error> {
        self.ensure_ping(domain).await?;
        Ok(drive(
            &mut op,
            &self.inner.session,
            &self.inner.transport,
            &TokioClock,
            blobs,
        )
        .await?)
    }

    async fn ensure_ping(&self, domain: &str) -> Result<(), Error> {
        let registry = canonical_registry(domain).to_owned();
        if self
            .inner
            .pinged
            .lock()
            .map_err(|_| Error::Usage("client lock poisoned".into()))?
            .contains(&registry)
        {
            return Ok(());
        }
        let mut ping = {
            let session = self
                .inner
                .session
                .lock()
                .map_err(|_| Error::Usage("client lock poisoned".into()))?;
            Ping::new(&session, domain)
        };
        drive(
            &mut ping,
            &self.inner.session,
            &self.inner.transport,
            &TokioClock,
            None,
        )
        .await?;
        self.inner
            .pinged
            .lock()
            .map_err(|_| Error::Usage("client lock poisoned".into()))?
            .insert(registry);
        Ok(())
    }

    /// Where to pull `reference` from, in order: the mirrors the
    /// registries configuration names for it, then the registry itself.
    pub fn pull_sources(&self, reference: &Reference) -> Result<Vec<Reference>, Error> {
        match &self.inner.registries {
            None => Ok(vec![reference.clone()]),
            Some(r) => r
                .pull_sources(reference)
                .map(|sources| sources.into_iter().map(|s| s.reference).collect())
                .map_err(|e| match e {
                    berth_protocol::mirror::SourceError::Blocked => {
                        Error::Protocol(berth_protocol::Error::Blocked {
                            reference: reference.to_string(),
                        })
                    }
                    other => Error::Usage(format!("registries configuration: {other:?}")),
                }),
        }
    }

    /// Runs `attempt` on each pull source until one succeeds; when all
    /// fail, one error lists every attempt.
    pub(crate) async fn try_sources<'a, R>(
        &'a self,
        reference: &Reference,
        attempt: impl Fn(Reference) -> Attempt<'a, R>,
    ) -> Result<R, Error> {
        let sources = self.pull_sources(reference)?;
        if sources.len() == 1 {
            return attempt(sources.into_iter().next().expect("one source")).await;
        }
        let mut failures = Vec::new();
        for source in sources {
            let name = source.to_string();
            match attempt(source).await {
                Ok(r) => return Ok(r),
                Err(e) => failures.push((name, e)),
            }
        }
        Err(Error::AllSourcesFailed(failures))
    }

    /// The descriptor a reference points to (HEAD, falling back to GET).
    pub async fn resolve(&self, reference: &Reference) -> Result<Descriptor, Error> {
        self.try_sources(reference, |r| {
            Box::pin(async move {
                let (d, _) = self
                    .run(r.domain(), Resolve::new(ManifestAddress::of(&r)), None)
                    .await?;
                Ok(d)
            })
        })
        .await
    }

    /// The manifest a reference points to, verified, exactly as the
    /// registry sent it.
    pub async fn manifest(&self, reference: &Reference) -> Result<FetchedManifest, Error> {
        self.try_sources(reference, |r| {
            Box::pin(async move { self.manifest_at(ManifestAddress::of(&r)).await })
        })
        .await
    }

    pub(crate) async fn manifest_at(
        &self,
        address: ManifestAddress,
    ) -> Result<FetchedManifest, Error> {
        let domain = address.domain.clone();
        let (m, _) = self
            .run(
                &domain,
                GetManifest::with_limits(address, self.inner.limits),
                None,
            )
            .await?;
        Ok(m)
    }

    /// The image manifest for `platform`: the reference's own manifest when
    /// it is one, else the index's best match (never an `unknown/unknown`
    /// attestation entry).
    pub async fn platform_manifest(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<FetchedManifest, Error> {
        self.try_sources(reference, |r| {
            Box::pin(async move { self.platform_manifest_from(&r, platform).await })
        })
        .await
    }

    /// [`Client::platform_manifest`] from one source.
    pub(crate) async fn platform_manifest_from(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<FetchedManifest, Error> {
        let top = self.manifest_at(ManifestAddress::of(reference)).await?;
        let Some(chosen) = choose_platform(&top, platform)? else {
            return Ok(top);
        };
        self.manifest_at(ManifestAddress {
            domain: reference.domain().to_owned(),
            name: reference.path().to_owned(),
            reference: ManifestRef::Digest(chosen),
        })
        .await
    }

    /// The manifest for `platform` under `top`, a manifest the caller has
    /// already fetched for `reference`: `top` itself unless it is an index,
    /// else the index entry's manifest, fetched by digest (from the
    /// reference's sources, as [`Client::manifest`] fetches).
    pub async fn pick_platform(
        &self,
        reference: &Reference,
        top: FetchedManifest,
        platform: &Platform,
    ) -> Result<FetchedManifest, Error> {
        match choose_platform(&top, platform)? {
            None => Ok(top),
            Some(chosen) => self.manifest(&reference.clone().with_digest(chosen)).await,
        }
    }

    /// The image configuration (its bytes, verified) for `platform`.
    pub async fn config(&self, reference: &Reference, platform: &Platform) -> Result<Bytes, Error> {
        self.try_sources(reference, |r| {
            Box::pin(async move { self.config_from(&r, platform).await })
        })
        .await
    }

    async fn config_from(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Bytes, Error> {
        let m = self.platform_manifest_from(reference, platform).await?;
        let config = m.manifest.config().cloned().ok_or_else(|| {
            Error::Usage(format!(
                "{reference} is a {} with no config",
                m.manifest.media_type()
            ))
        })?;
        if config.size > self.inner.limits.config {
            return Err(Error::Verify(format!(
                "config of {} bytes is over the limit of {}",
                config.size, self.inner.limits.config
            )));
        }
        let mut out = Vec::new();
        self.fetch_blob(reference.domain(), reference.path(), &config, |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
        Ok(Bytes::from(out))
    }

    /// Streams a blob to `sink`, verified as it arrives; a dropped
    /// connection resumes with `Range` from the last byte received (which
    /// was already hashed). `sink` sees each byte once.
    ///
    /// Where the bytes come from follows the descriptor: a manifest or
    /// index from the manifest store and then the blob store; a foreign
    /// layer from its `urls` in order (http(s) only, no registry
    /// credentials sent there) and then the registry. A source that fails
    /// before `sink` saw a byte is followed by the next; once `sink` has
    /// bytes, its failure is the error (use a restartable sink, as
    /// [`Client::pull`] does, to fall back after that too).
    pub async fn fetch_blob(
        &self,
        domain: &str,
        name: &str,
        descriptor: &Descriptor,
        sink: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut sink = FnSink {
            write: sink,
            written: false,
        };
        self.fetch_blob_into(domain, name, descriptor, &mut sink)
            .await
    }

    /// [`Client::fetch_blob`] into a sink that can start again.
    pub(crate) async fn fetch_blob_into<S: BlobSink>(
        &self,
        domain: &str,
        name: &str,
        descriptor: &Descriptor,
        sink: &mut S,
    ) -> Result<(), Error> {
        if descriptor.media_type.is_manifest_or_index()
            && descriptor.size <= self.inner.limits.manifest
        {
            let (content, _) = self
                .run(
                    domain,
                    GetContent::new(
                        domain,
                        name,
                        &descriptor.digest,
                        Store::order_for(&descriptor.media_type),
                        self.inner.limits,
                    )
                    // The sink keeps these bytes under the descriptor's
                    // digest, so they must be its bytes.
                    .byte_for_byte(),
                    None,
                )
                .await?;
            if content.bytes.len() as u64 != descriptor.size {
                return Err(Error::Verify(format!(
                    "{}: {} bytes where the descriptor says {}",
                    descriptor.digest,
                    content.bytes.len(),
                    descriptor.size
                )));
            }
            sink.write(&content.bytes)?;
            self.emit(Event::BlobProgress {
                digest: descriptor.digest.clone(),
                done: descriptor.size,
                total: descriptor.size,
            });
            return Ok(());
        }
        for url in &descriptor.urls {
            match self
                .stream_blob(Origin::Url(url), descriptor, &mut *sink)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.emit(Event::SourceFailed {
                        digest: descriptor.digest.clone(),
                        source: redact(url),
                        reason: e.to_string(),
                    });
                    if !sink.restart()? {
                        return Err(e);
                    }
                }
            }
        }
        self.stream_blob(Origin::Registry { domain, name }, descriptor, sink)
            .await
    }

    /// Streams a blob from one origin into `sink`, verified, resuming a
    /// cut body from the last byte received.
    async fn stream_blob<S: BlobSink>(
        &self,
        origin: Origin<'_>,
        descriptor: &Descriptor,
        sink: &mut S,
    ) -> Result<(), Error> {
        let mut verifier =
            berth_manifest::Verifier::new(descriptor.digest.clone(), descriptor.size)
                .map_err(|e| Error::verify(&descriptor.digest, e))?;
        let mut received: u64 = 0;
        let mut resumes = 0u32;
        loop {
            let (head, body) = match origin {
                Origin::Registry { domain, name } => {
                    self.run(
                        domain,
                        GetBlob::new(domain, name, &descriptor.digest, received),
                        None,
                    )
                    .await?
                }
                Origin::Url(url) => {
                    self.run_unregistered(GetForeignBlob::new(url, received)?)
                        .await?
                }
            };
            let mut body =
                body.ok_or_else(|| Error::Usage("the blob response had no body".into()))?;
            // A server that ignored Range sends from 0: skip what we have.
            let mut skip = received - head.offset;
            let outcome = loop {
                match next_chunk(&mut body).await {
                    None => break Ok(()),
                    Some(Err(e)) => break Err(e),
                    Some(Ok(chunk)) => {
                        let mut chunk = &chunk[..];
                        if skip > 0 {
                            let n = usize::try_from(skip).unwrap_or(usize::MAX).min(chunk.len());
                            chunk = &chunk[n..];
                            skip -= n as u64;
                        }
                        if chunk.is_empty() {
                            continue;
                        }
                        verifier
                            .update(chunk)
                            .map_err(|e| Error::verify(&descriptor.digest, e))?;
                        sink.write(chunk)?;
                        received += chunk.len() as u64;
                        self.emit(Event::BlobProgress {
                            digest: descriptor.digest.clone(),
                            done: received,
                            total: descriptor.size,
                        });
                    }
                }
            };
            match outcome {
                // Every byte arrived. A connection that broke after the
                // last one (a `Content-Length` that overstates the body)
                // changes nothing: the digest decides, and a resume from
                // the end would ask for a range past it.
                Ok(()) | Err(_) if received == descriptor.size => {
                    return verifier
                        .finish()
                        .map_err(|e| Error::verify(&descriptor.digest, e));
                }
                Ok(()) => {
                    // The body ended early without an error: a cut too.
                    resumes += 1;
                }
                Err(_) => resumes += 1,
            }
            if resumes > MAX_RESUMES {
                return Err(Error::Interrupted(format!(
                    "blob {} from {origin} stopped at byte {received} of {} on {resumes} attempts",
                    descriptor.digest, descriptor.size
                )));
            }
            self.emit(Event::BlobResumed {
                digest: descriptor.digest.clone(),
                from: received,
            });
        }
    }

    /// Runs an operation that talks to no registry (a foreign layer's
    /// URL): no ping, no registry endpoint.
    async fn run_unregistered<O: Operation>(
        &self,
        mut op: O,
    ) -> Result<(O::Output, Option<T::Body>), Error> {
        Ok(drive(
            &mut op,
            &self.inner.session,
            &self.inner.transport,
            &TokioClock,
            None,
        )
        .await?)
    }

    /// Where a copy reads a blob: a foreign layer's first URL that answers
    /// (skipping `skip`), else the registry. The body is not verified here:
    /// the destination registry checks the digest of what it is sent.
    pub(crate) async fn copy_source<'d>(
        &self,
        src: &Reference,
        d: &'d Descriptor,
        skip: &[&str],
    ) -> Result<(BlobResponse, Option<T::Body>, Option<&'d str>), Error> {
        for url in d.urls.iter().filter(|u| !skip.contains(&u.as_str())) {
            let tried = match GetForeignBlob::new(url, 0) {
                Ok(op) => self.run_unregistered(op).await,
                Err(e) => Err(e.into()),
            };
            match tried {
                Ok((head, body)) => return Ok((head, body, Some(url))),
                Err(e) => self.emit(Event::SourceFailed {
                    digest: d.digest.clone(),
                    source: redact(url),
                    reason: e.to_string(),
                }),
            }
        }
        let (head, body) = self
            .blob_response(src.domain(), src.path(), &d.digest)
            .await?;
        Ok((head, body, None))
    }

    /// Small content by digest from the stores in `stores` order (for
    /// content of unknown type: [`Store::Manifests`] then
    /// [`Store::Blobs`], as containerd asks), verified against the digest.
    /// At most the larger of the manifest and config size limits is read.
    pub async fn content(&self, reference: &Reference, stores: &[Store]) -> Result<Content, Error> {
        let digest = reference
            .digest()
            .cloned()
            .ok_or_else(|| Error::Usage(format!("{reference} names no digest")))?;
        let limits = self.inner.limits;
        let limits = limits.with_manifest(limits.manifest.max(limits.config));
        self.try_sources(reference, |r| {
            let digest = digest.clone();
            Box::pin(async move {
                let op = GetContent::new(r.domain(), r.path(), &digest, stores, limits);
                let (c, _) = self.run(r.domain(), op, None).await?;
                Ok(c)
            })
        })
        .await
    }

    /// Checks that the registry accepts the client's credentials for it.
    pub async fn check_login(&self, domain: &str) -> Result<(), Error> {
        self.run(domain, berth_protocol::ops::CheckAuth::new(domain), None)
            .await?;
        Ok(())
    }

    /// What a `HEAD` of a blob says (`None`: not there).
    pub async fn head_blob(
        &self,
        domain: &str,
        name: &str,
        digest: &Digest,
    ) -> Result<Option<berth_protocol::ops::BlobInfo>, Error> {
        let (info, _) = self
            .run(domain, HeadBlob::new(domain, name, digest), None)
            .await?;
        Ok(info)
    }

    /// Whether a blob exists in a repository.
    pub async fn blob_exists(
        &self,
        domain: &str,
        name: &str,
        digest: &Digest,
    ) -> Result<bool, Error> {
        let (info, _) = self
            .run(domain, HeadBlob::new(domain, name, digest), None)
            .await?;
        Ok(info.is_some())
    }

    /// Pushes a blob from `source` (exists check first; mounted from
    /// `mount_from` when given and possible, else from a repository of the
    /// same registry the blob-info cache names and a `HEAD` confirms; a
    /// mount the registry refuses becomes an upload). With a cache, where
    /// the blob now is gets recorded.
    pub async fn push_blob(
        &self,
        domain: &str,
        name: &str,
        descriptor: &Descriptor,
        source: &dyn BlobSource,
        mount_from: Option<&str>,
    ) -> Result<BlobPush, Error> {
        let pushed = self
            .push_blob_once(domain, name, descriptor, source, mount_from)
            .await?;
        self.cache_seen(domain, name, [&descriptor.digest]);
        Ok(pushed)
    }

    async fn push_blob_once(
        &self,
        domain: &str,
        name: &str,
        descriptor: &Descriptor,
        source: &dyn BlobSource,
        mount_from: Option<&str>,
    ) -> Result<BlobPush, Error> {
        if self.blob_exists(domain, name, &descriptor.digest).await? {
            self.emit(Event::BlobSkipped {
                digest: descriptor.digest.clone(),
            });
            return Ok(BlobPush::Existed);
        }
        let cached = match mount_from {
            Some(_) => None,
            None => {
                self.cached_mount_source(domain, name, &descriptor.digest)
                    .await
            }
        };
        let mount_from = mount_from.or(cached.as_deref());
        let mut op = PushBlob::new(
            domain,
            name,
            &descriptor.digest,
            descriptor.size,
            self.inner.upload,
        );
        if let Some(from) = mount_from {
            op = op.mount_from(from);
        }
        let (outcome, _) = self.run(domain, op, Some(source)).await?;
        Ok(match outcome {
            PushOutcome::Mounted => {
                self.emit(Event::BlobMounted {
                    digest: descriptor.digest.clone(),
                });
                BlobPush::Mounted
            }
            PushOutcome::Uploaded => BlobPush::Uploaded,
        })
    }

    /// Puts a manifest at a tag or digest; returns its digest.
    pub async fn put_manifest(
        &self,
        domain: &str,
        name: &str,
        at: ManifestRef,
        manifest: &Manifest,
    ) -> Result<Digest, Error> {
        let address = ManifestAddress {
            domain: domain.to_owned(),
            name: name.to_owned(),
            reference: at,
        };
        let (d, _) = self
            .run(domain, PutManifest::new(address, manifest), None)
            .await?;
        Ok(d)
    }

    /// Points `tag` (in the same repository) at the manifest `reference`
    /// names.
    pub async fn tag(&self, reference: &Reference, tag: &str) -> Result<Digest, Error> {
        berth_reference::grammar::check_tag(tag)
            .map_err(|e| Error::Usage(format!("invalid tag {tag:?}: {e}")))?;
        let m = self.manifest(reference).await?;
        self.put_manifest(
            reference.domain(),
            reference.path(),
            ManifestRef::Tag(tag.to_owned()),
            &m.manifest,
        )
        .await
    }

    /// Deletes the manifest a reference names (a tag is resolved to its
    /// digest first); returns the digest deleted.
    pub async fn delete(&self, reference: &Reference) -> Result<Digest, Error> {
        let (d, _) = self
            .run(
                reference.domain(),
                DeleteManifest::new(ManifestAddress::of(reference)),
                None,
            )
            .await?;
        Ok(d)
    }

    /// Every tag of a repository.
    pub async fn tags(&self, repository: &Reference) -> Result<Vec<String>, Error> {
        let (t, _) = self
            .run(
                repository.domain(),
                ListTags::new(repository.domain(), repository.path()),
                None,
            )
            .await?;
        Ok(t)
    }

    /// Every repository of a registry.
    pub async fn catalog(&self, domain: &str) -> Result<Vec<String>, Error> {
        let (c, _) = self.run(domain, Catalog::new(domain, None), None).await?;
        Ok(c)
    }

    /// The manifests that refer to `reference`'s manifest.
    pub async fn referrers(
        &self,
        reference: &Reference,
        artifact_type: Option<MediaType>,
    ) -> Result<Referrers, Error> {
        let subject = match reference.digest() {
            Some(d) => d.clone(),
            None => self.resolve(reference).await?.digest,
        };
        let op = ListReferrers::new(
            reference.domain(),
            reference.path(),
            &subject,
            artifact_type,
        );
        let (r, _) = self.run(reference.domain(), op, None).await?;
        Ok(r)
    }

    /// The streamed body of a blob, for callers that write it themselves
    /// (the CLI's `blob`): verified by [`Client::fetch_blob`].
    pub async fn blob_response(
        &self,
        domain: &str,
        name: &str,
        digest: &Digest,
    ) -> Result<(BlobResponse, Option<T::Body>), Error> {
        self.run(domain, GetBlob::new(domain, name, digest, 0), None)
            .await
    }
}

/// Where a blob's bytes come from.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    /// The registry's blob store.
    Registry { domain: &'a str, name: &'a str },
    /// A foreign layer's URL.
    Url(&'a str),
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Registry { domain, name } => write!(f, "{domain}/{name}"),
            Origin::Url(url) => f.write_str(&redact(url)),
        }
    }
}

/// A URL as it may be shown: no credentials, no query values.
pub(crate) fn redact(url: &str) -> String {
    url.parse::<http::Uri>().map_or_else(
        |_| "(invalid URL)".to_owned(),
        |u| berth_protocol::redact_url(&u),
    )
}

/// Where a streamed blob goes: each byte written once, in order.
pub(crate) trait BlobSink {
    /// The next bytes.
    fn write(&mut self, chunk: &[u8]) -> Result<(), Error>;
    /// Discards everything written so the blob can come again from its
    /// first byte; `false` when this sink cannot.
    fn restart(&mut self) -> Result<bool, Error>;
}

/// A caller's closure: restartable only while it has seen nothing.
struct FnSink<F> {
    write: F,
    written: bool,
}

impl<F: FnMut(&[u8]) -> Result<(), Error>> BlobSink for FnSink<F> {
    fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.written |= !chunk.is_empty();
        (self.write)(chunk)
    }

    fn restart(&mut self) -> Result<bool, Error> {
        Ok(!self.written)
    }
}

impl BlobSink for crate::layout::TempBlob {
    fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        crate::layout::TempBlob::write(self, chunk)
    }

    fn restart(&mut self) -> Result<bool, Error> {
        crate::layout::TempBlob::restart(self).map(|()| true)
    }
}

/// The digest of `top`'s entry for `platform` when `top` is an index
/// (`None` when it is not); an index with no such entry is
/// [`Error::NoMatchingPlatform`], listing what it has.
fn choose_platform(top: &FetchedManifest, platform: &Platform) -> Result<Option<Digest>, Error> {
    if !top.manifest.is_index() {
        return Ok(None);
    }
    let chosen = top
        .manifest
        .select(platform)
        .ok_or_else(|| Error::NoMatchingPlatform {
            wanted: platform.to_string(),
            available: top
                .manifest
                .manifests()
                .iter()
                .filter(|d| !d.is_unknown_platform())
                .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                .collect(),
        })?;
    Ok(Some(chosen.digest.clone()))
}

/// One try of an operation on one pull source.
pub(crate) type Attempt<'a, R> =
    std::pin::Pin<Box<dyn Future<Output = Result<R, Error>> + Send + 'a>>;

/// How a blob push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry had it already.
    Existed,
    /// Mounted from another repository.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// How many times one blob download resumes after a cut before failing.
pub const MAX_RESUMES: u32 = 5;

pub(crate) async fn next_chunk<B: Stream<Item = Result<Bytes, TransportError>> + Unpin>(
    body: &mut B,
) -> Option<Result<Bytes, TransportError>> {
    std::future::poll_fn(|cx: &mut TaskContext<'_>| Pin::new(&mut *body).poll_next(cx)).await
}

/// A blob source over a file: ranges are read in 256 KiB chunks as the
/// transport sends them, never the whole blob at once.
#[derive(Debug, Clone)]
pub struct FileBlob {
    path: std::path::PathBuf,
}

impl FileBlob {
    /// The blob in this file.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        FileBlob { path: path.into() }
    }
}

const READ_CHUNK: usize = 256 * 1024;

impl BlobSource for FileBlob {
    fn range(&self, offset: u64, len: u64) -> Result<OutgoingBody, TransportError> {
        let file = crate::layout::open_range(&self.path, offset).map_err(TransportError::new)?;
        let stream = futures_util::stream::unfold((file, len), |(mut file, left)| async move {
            if left == 0 {
                return None;
            }
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            match std::io::Read::read(&mut file, &mut buf) {
                Ok(0) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file is shorter than the blob",
                    )),
                    (file, 0),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
                }
                Err(e) => Some((Err(e), (file, 0))),
            }
        });
        Ok(OutgoingBody::Stream {
            stream: Box::pin(stream),
            len,
        })
    }
}

impl<T: Transport> Client<T> {
    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }
}

/// A stream handed to an upload once: for copies that pipe a download
/// straight into an upload. A retry that asks for it again fails, and the
/// caller copies the blob again from the start.
/// An upload body: a stream of chunks.
pub(crate) type UploadStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

pub(crate) struct OnceStream {
    stream: Mutex<Option<(UploadStream, u64)>>,
}

impl OnceStream {
    pub(crate) fn new(stream: UploadStream, len: u64) -> Self {
        OnceStream {
            stream: Mutex::new(Some((stream, len))),
        }
    }
}

impl BlobSource for OnceStream {
    fn range(&self, offset: u64, len: u64) -> Result<OutgoingBody, TransportError> {
        let taken = self
            .stream
            .lock()
            .map_err(|_| TransportError::new("lock poisoned"))?
            .take();
        match taken {
            Some((stream, total)) if offset == 0 && len == total => {
                Ok(OutgoingBody::Stream { stream, len })
            }
            Some(_) => Err(TransportError::new(
                "a streamed copy can only be sent whole",
            )),
            None => Err(TransportError::new(
                "the streamed copy was already sent once",
            )),
        }
    }
}

/// Adapts a response body into the upload stream type, failing if more or
/// fewer bytes than `len` arrive.
pub(crate) fn body_as_upload<B>(body: B) -> UploadStream
where
    B: Stream<Item = Result<Bytes, TransportError>> + Send + Unpin + 'static,
{
    struct Adapt<B>(B);
    impl<B: Stream<Item = Result<Bytes, TransportError>> + Unpin> Stream for Adapt<B> {
        type Item = Result<Bytes, std::io::Error>;
        fn poll_next(
            mut self: Pin<&mut Self>,
            cx: &mut TaskContext<'_>,
        ) -> Poll<Option<Self::Item>> {
            Pin::new(&mut self.0)
                .poll_next(cx)
                .map(|o| o.map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))))
        }
    }
    Box::pin(Adapt(body))
}
