//! Whole images: pull into an OCI layout, push from one, copy between
//! registries. Multi-platform indexes throughout; digests never change on
//! the way.

use std::path::Path;

use berth_manifest::{Descriptor, Manifest, Platform};
use berth_protocol::driver::Transport;
use berth_protocol::ops::{ManifestAddress, ManifestRef};
use berth_reference::{Digest, Reference};
use futures_util::{StreamExt, TryStreamExt};

use crate::client::{BlobPush, Client, FileBlob, OnceStream, body_as_upload};
use crate::error::Error;
use crate::layout::Layout;
use crate::progress::Event;
use crate::slots::BodySlots;

/// Deepest nesting of indexes followed (an index of indexes of ...).
pub const MAX_INDEX_DEPTH: usize = 4;

/// What to pull.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullOptions {
    /// The platform to pick from an index.
    pub platform: Platform,
    /// Pull the whole index and every manifest under it.
    pub all_platforms: bool,
}

impl PullOptions {
    /// One platform.
    pub fn platform(platform: Platform) -> Self {
        PullOptions {
            platform,
            all_platforms: false,
        }
    }

    /// Every platform.
    pub fn all_platforms() -> Self {
        PullOptions {
            platform: Platform::host(),
            all_platforms: true,
        }
    }
}

/// What a transfer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The digest of the manifest (or index) named at the end.
    pub digest: Option<Digest>,
    /// Blobs transferred.
    pub blobs_transferred: usize,
    /// Blobs already there.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Bytes of blobs transferred.
    pub bytes: u64,
    /// Manifests written or pushed.
    pub manifests: usize,
    /// Non-distributable layers not uploaded: they stay at their `urls`.
    pub blobs_left_at_urls: usize,
}

impl Report {
    fn add(&mut self, other: &Report) {
        self.blobs_transferred += other.blobs_transferred;
        self.blobs_skipped += other.blobs_skipped;
        self.blobs_mounted += other.blobs_mounted;
        self.bytes += other.bytes;
        self.manifests += other.manifests;
        self.blobs_left_at_urls += other.blobs_left_at_urls;
    }

    fn left_at_urls() -> Report {
        Report {
            blobs_left_at_urls: 1,
            ..Report::default()
        }
    }
}

/// The blobs an image manifest names (config first, then layers).
fn blobs_of(m: &Manifest) -> Vec<Descriptor> {
    m.config().into_iter().chain(m.layers()).cloned().collect()
}

impl<T> Client<T>
where
    T: Transport + 'static,
    T::Body: 'static,
{
    /// Pulls `reference` into the OCI layout at `dir`: the platform's
    /// manifest (or, with `all_platforms`, the whole index), its config and
    /// layers, downloaded concurrently, each verified before it is renamed
    /// into `blobs/`; `index.json` then names the manifest with the tag as
    /// `org.opencontainers.image.ref.name`. Blobs already present are
    /// skipped, so an interrupted pull continues where it stopped.
    pub async fn pull(
        &self,
        reference: &Reference,
        dir: &Path,
        options: &PullOptions,
    ) -> Result<Report, Error> {
        let ref_name = reference
            .tag()
            .map(str::to_owned)
            .or_else(|| reference.digest().map(ToString::to_string));
        self.try_sources(reference, |source| {
            let ref_name = ref_name.clone();
            Box::pin(async move {
                self.pull_from(&source, dir, options, ref_name.as_deref())
                    .await
            })
        })
        .await
    }

    /// [`Client::pull`] from one source; `index.json` names it `ref_name`.
    async fn pull_from(
        &self,
        reference: &Reference,
        dir: &Path,
        options: &PullOptions,
        ref_name: Option<&str>,
    ) -> Result<Report, Error> {
        let layout = Layout::create(dir)?;
        let top = self.manifest_at(ManifestAddress::of(reference)).await?;
        let mut report = Report::default();
        let named = if top.manifest.is_index() && !options.all_platforms {
            let chosen = self
                .platform_manifest_from(reference, &options.platform)
                .await?;
            self.pull_tree(
                &layout,
                reference,
                &chosen.manifest,
                &chosen.digest,
                0,
                &mut report,
            )
            .await?;
            chosen.descriptor()
        } else {
            self.pull_tree(
                &layout,
                reference,
                &top.manifest,
                &top.digest,
                0,
                &mut report,
            )
            .await?;
            top.descriptor()
        };
        report.digest = Some(named.digest.clone());
        layout.add_to_index(named, ref_name)?;
        Ok(report)
    }

    fn pull_tree<'a>(
        &'a self,
        layout: &'a Layout,
        reference: &'a Reference,
        manifest: &'a Manifest,
        digest: &'a Digest,
        depth: usize,
        report: &'a mut Report,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(async move {
            if manifest.is_index() {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(Error::Verify(format!(
                        "indexes nested deeper than {MAX_INDEX_DEPTH}"
                    )));
                }
                for child in manifest.manifests() {
                    let fetched = self
                        .manifest_at(ManifestAddress {
                            domain: reference.domain().to_owned(),
                            name: reference.path().to_owned(),
                            reference: ManifestRef::Digest(child.digest.clone()),
                        })
                        .await?;
                    self.pull_tree(
                        layout,
                        reference,
                        &fetched.manifest,
                        &fetched.digest,
                        depth + 1,
                        report,
                    )
                    .await?;
                }
            } else {
                let blobs = blobs_of(manifest);
                let got = self.download_all(layout, reference, &blobs).await?;
                report.add(&got);
                self.cache_seen_blobs(reference.domain(), reference.path(), &blobs);
                self.cache_pairs_from_layout(layout, manifest);
            }
            layout.write_blob_bytes(digest, manifest.raw())?;
            report.manifests += 1;
            self.emit(Event::Manifest {
                digest: digest.clone(),
            });
            Ok(())
        })
    }

    async fn download_all(
        &self,
        layout: &Layout,
        reference: &Reference,
        blobs: &[Descriptor],
    ) -> Result<Report, Error> {
        // Each blob is its own task, so the hashing and writing of
        // several blobs run on every worker thread rather than on the
        // thread polling the pull. Dropping the pull aborts them (the
        // `JoinSet` goes with it); a task notices that only at its next
        // await, so `_remove` deletes their temporaries at once.
        let temporaries = Temporaries::default();
        let _remove = RemoveOnDrop(temporaries.clone());
        let mut tasks = tokio::task::JoinSet::new();
        let mut pending = blobs.iter().cloned();
        let mut total = Report::default();
        loop {
            while tasks.len() < self.concurrency() {
                let Some(d) = pending.next() else { break };
                let (client, layout, reference, temporaries) = (
                    self.clone(),
                    layout.clone(),
                    reference.clone(),
                    temporaries.clone(),
                );
                tasks.spawn(
                    async move { client.download(&layout, &reference, &d, &temporaries).await },
                );
            }
            match tasks.join_next().await {
                None => {
                    temporaries.forget();
                    return Ok(total);
                }
                Some(Ok(report)) => total.add(&report?),
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(Err(e)) => {
                    return Err(Error::Interrupted(format!("a blob download stopped: {e}")));
                }
            }
        }
    }

    /// One blob into the layout, verified; a digest mismatch is retried
    /// once from scratch.
    async fn download(
        &self,
        layout: &Layout,
        reference: &Reference,
        d: &Descriptor,
        temporaries: &Temporaries,
    ) -> Result<Report, Error> {
        if layout.has_blob(&d.digest, d.size) {
            self.emit(Event::BlobSkipped {
                digest: d.digest.clone(),
            });
            return Ok(Report {
                blobs_skipped: 1,
                ..Report::default()
            });
        }
        self.emit(Event::BlobStarted {
            digest: d.digest.clone(),
            size: d.size,
        });
        let mut attempt = 0;
        loop {
            // fetch_blob verifies as the bytes stream; the file need not
            // hash them again.
            let mut temp =
                temporaries.create(|| layout.temp_blob_verified_by_caller(&d.digest, d.size))?;
            let r = self
                .fetch_blob_into(reference.domain(), reference.path(), d, &mut temp)
                .await;
            match r.and_then(|()| temp.commit()) {
                Ok(()) => break,
                Err(e) if e.is_mismatch() && attempt == 0 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
        self.emit(Event::BlobFinished {
            digest: d.digest.clone(),
        });
        Ok(Report {
            blobs_transferred: 1,
            bytes: d.size,
            ..Report::default()
        })
    }

    /// Pushes the image in the OCI layout at `dir` to `reference`: when
    /// `index.json` names one manifest, that one whatever its ref name;
    /// when several, the one whose ref name is the reference's tag. Every
    /// manifest and blob under it goes too, byte for byte.
    pub async fn push(&self, dir: &Path, reference: &Reference) -> Result<Report, Error> {
        let layout = Layout::open(dir)?;
        let top = layout.manifest_for(reference.tag())?;
        let mut report = Report::default();
        let at = match (reference.digest(), reference.tag()) {
            (Some(d), _) => ManifestRef::Digest(d.clone()),
            (None, Some(t)) => ManifestRef::Tag(t.to_owned()),
            (None, None) => ManifestRef::Tag(berth_reference::DEFAULT_TAG.to_owned()),
        };
        let digest = self
            .push_tree(&layout, reference, &top, at, 0, &mut report)
            .await?;
        report.digest = Some(digest);
        Ok(report)
    }

    fn push_tree<'a>(
        &'a self,
        layout: &'a Layout,
        reference: &'a Reference,
        descriptor: &'a Descriptor,
        at: ManifestRef,
        depth: usize,
        report: &'a mut Report,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Digest, Error>> + Send + 'a>> {
        Box::pin(async move {
            let bytes = layout.read_blob(&descriptor.digest, self.limits().manifest)?;
            let manifest = Manifest::from_vec(bytes, Some(descriptor.media_type.as_str()))
                .map_err(|e| Error::layout(&layout.blob_path(&descriptor.digest), e))?;
            if manifest.is_index() {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(Error::Verify(format!(
                        "indexes nested deeper than {MAX_INDEX_DEPTH}"
                    )));
                }
                for child in manifest.manifests() {
                    if !layout.has_blob(&child.digest, child.size) {
                        // A single-platform pull keeps only its platform.
                        return Err(Error::layout(
                            &layout.blob_path(&child.digest),
                            format!(
                                "the index names {} but the layout does not hold it",
                                child.digest
                            ),
                        ));
                    }
                    self.push_tree(
                        layout,
                        reference,
                        child,
                        ManifestRef::Digest(child.digest.clone()),
                        depth + 1,
                        report,
                    )
                    .await?;
                }
            } else {
                let blobs = blobs_of(&manifest);
                let slots = BodySlots::new(self.concurrency());
                let pushed: Vec<Report> = futures_util::stream::iter(blobs)
                    .map(|d| {
                        let slots = &slots;
                        async move {
                            if self.leaves_behind(&d) {
                                return Ok(Report::left_at_urls());
                            }
                            let slot = slots.acquire().await;
                            let file = FileBlob::new(layout.blob_path(&d.digest));
                            let source = slot.source(&file, d.size);
                            let outcome = self
                                .push_blob(reference.domain(), reference.path(), &d, &source, None)
                                .await?;
                            Ok::<_, Error>(match outcome {
                                BlobPush::Existed => Report {
                                    blobs_skipped: 1,
                                    ..Report::default()
                                },
                                BlobPush::Mounted => Report {
                                    blobs_mounted: 1,
                                    ..Report::default()
                                },
                                BlobPush::Uploaded => Report {
                                    blobs_transferred: 1,
                                    bytes: d.size,
                                    ..Report::default()
                                },
                            })
                        }
                    })
                    // As many again waiting for the registry's answer.
                    .buffer_unordered(2 * self.concurrency())
                    .try_collect()
                    .await?;
                for r in &pushed {
                    report.add(r);
                }
                self.cache_pairs_from_layout(layout, &manifest);
            }
            let digest = self
                .put_manifest(reference.domain(), reference.path(), at, &manifest)
                .await?;
            report.manifests += 1;
            self.emit(Event::Manifest {
                digest: digest.clone(),
            });
            Ok(digest)
        })
    }

    /// Copies `src` to `dst`, registry to registry, without touching disk:
    /// the platform's manifest, or with `all_platforms` the whole index.
    /// Blobs the destination has are skipped; on the same registry they are
    /// mounted; otherwise each download streams straight into its upload.
    pub async fn copy(
        &self,
        src: &Reference,
        dst: &Reference,
        options: &PullOptions,
    ) -> Result<Report, Error> {
        let top = self.manifest(src).await?;
        let mut report = Report::default();
        let at = match (dst.digest(), dst.tag()) {
            (Some(d), _) => ManifestRef::Digest(d.clone()),
            (None, Some(t)) => ManifestRef::Tag(t.to_owned()),
            (None, None) => {
                ManifestRef::Tag(src.tag().unwrap_or(berth_reference::DEFAULT_TAG).to_owned())
            }
        };
        let fetched = if top.manifest.is_index() && !options.all_platforms {
            self.platform_manifest(src, &options.platform).await?
        } else {
            top
        };
        let digest = self
            .copy_tree(src, dst, &fetched.manifest, at, 0, &mut report)
            .await?;
        report.digest = Some(digest);
        Ok(report)
    }

    fn copy_tree<'a>(
        &'a self,
        src: &'a Reference,
        dst: &'a Reference,
        manifest: &'a Manifest,
        at: ManifestRef,
        depth: usize,
        report: &'a mut Report,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Digest, Error>> + Send + 'a>> {
        Box::pin(async move {
            if manifest.is_index() {
                if depth >= MAX_INDEX_DEPTH {
                    return Err(Error::Verify(format!(
                        "indexes nested deeper than {MAX_INDEX_DEPTH}"
                    )));
                }
                for child in manifest.manifests() {
                    let fetched = self
                        .manifest_at(ManifestAddress {
                            domain: src.domain().to_owned(),
                            name: src.path().to_owned(),
                            reference: ManifestRef::Digest(child.digest.clone()),
                        })
                        .await?;
                    self.copy_tree(
                        src,
                        dst,
                        &fetched.manifest,
                        ManifestRef::Digest(child.digest.clone()),
                        depth + 1,
                        report,
                    )
                    .await?;
                }
            } else {
                let blobs = blobs_of(manifest);
                let slots = BodySlots::new(self.concurrency());
                let copied: Vec<Report> = futures_util::stream::iter(blobs.iter().cloned())
                    .map(|d| {
                        let slots = &slots;
                        async move { self.copy_blob(src, dst, &d, slots).await }
                    })
                    // As many again waiting for the registry's answer.
                    .buffer_unordered(2 * self.concurrency())
                    .try_collect()
                    .await?;
                for r in &copied {
                    report.add(r);
                }
                // With a cache: the blobs are in both repositories now.
                self.cache_seen_blobs(src.domain(), src.path(), &blobs);
                self.cache_seen_blobs(dst.domain(), dst.path(), &blobs);
            }
            let digest = self
                .put_manifest(dst.domain(), dst.path(), at, manifest)
                .await?;
            report.manifests += 1;
            Ok(digest)
        })
    }

    async fn copy_blob(
        &self,
        src: &Reference,
        dst: &Reference,
        d: &Descriptor,
        slots: &BodySlots,
    ) -> Result<Report, Error> {
        if self.leaves_behind(d) {
            return Ok(Report::left_at_urls());
        }
        if self
            .blob_exists(dst.domain(), dst.path(), &d.digest)
            .await?
        {
            self.emit(Event::BlobSkipped {
                digest: d.digest.clone(),
            });
            return Ok(Report {
                blobs_skipped: 1,
                ..Report::default()
            });
        }
        let same_registry = berth_protocol::endpoint::canonical_registry(src.domain())
            == berth_protocol::endpoint::canonical_registry(dst.domain());
        let mut attempt = 0;
        // A foreign layer's URLs that already gave a broken or wrong body.
        let mut failed_urls: Vec<&str> = Vec::new();
        loop {
            // Taken before the download starts: its body is the upload's.
            let slot = slots.acquire().await;
            let (head, body, from_url) = self.copy_source(src, d, &failed_urls).await?;
            let body = body.ok_or_else(|| Error::Usage("the blob response had no body".into()))?;
            if head.offset != 0 {
                return Err(Error::Verify(
                    "the source answered a whole-blob request with a range".into(),
                ));
            }
            let once = OnceStream::new(body_as_upload(body), d.size);
            let source = slot.source(&once, d.size);
            let mount = same_registry.then(|| src.path());
            match self
                .push_blob(dst.domain(), dst.path(), d, &source, mount)
                .await
            {
                Ok(BlobPush::Mounted) => {
                    return Ok(Report {
                        blobs_mounted: 1,
                        ..Report::default()
                    });
                }
                Ok(BlobPush::Existed) => {
                    return Ok(Report {
                        blobs_skipped: 1,
                        ..Report::default()
                    });
                }
                Ok(BlobPush::Uploaded) => {
                    self.emit(Event::BlobFinished {
                        digest: d.digest.clone(),
                    });
                    return Ok(Report {
                        blobs_transferred: 1,
                        bytes: d.size,
                        ..Report::default()
                    });
                }
                // A broken stream cannot be resent: copy the blob again
                // (from the next source, when a URL gave it).
                Err(e) if attempt < 2 + d.urls.len() => {
                    if let Some(url) = from_url {
                        self.emit(Event::SourceFailed {
                            digest: d.digest.clone(),
                            source: crate::client::redact(url),
                            reason: e.to_string(),
                        });
                        failed_urls.push(url);
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The temporary files of one pull's blob downloads, removed when the
/// pull is dropped: its tasks are aborted then, but each notices only at
/// its next await, and the layout must be clean as soon as the pull is
/// gone.
#[derive(Debug, Clone, Default)]
struct Temporaries(std::sync::Arc<std::sync::Mutex<TemporariesState>>);

#[derive(Debug, Default)]
struct TemporariesState {
    paths: Vec<std::path::PathBuf>,
    /// Set once every path was removed: no new file may be made.
    closed: bool,
}

/// Held by the pull: removes its temporaries when dropped.
struct RemoveOnDrop(Temporaries);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.closed = true;
        for path in state.paths.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Temporaries {
    fn state(&self) -> std::sync::MutexGuard<'_, TemporariesState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes a temporary file (under the lock, so it is either recorded
    /// before the pull goes or never made).
    fn create(
        &self,
        make: impl FnOnce() -> Result<crate::layout::TempBlob, Error>,
    ) -> Result<crate::layout::TempBlob, Error> {
        let mut state = self.state();
        if state.closed {
            return Err(Error::Interrupted("the pull was dropped".into()));
        }
        let temp = make()?;
        state.paths.push(temp.path().to_owned());
        Ok(temp)
    }

    /// Every download finished: nothing to remove.
    fn forget(&self) {
        self.state().paths.clear();
    }
}
