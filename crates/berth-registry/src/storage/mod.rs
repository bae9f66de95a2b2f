//! Where a registry keeps what it is given: the [`Store`] trait, with an
//! in-memory ([`MemoryStore`]) and an on-disk ([`DiskStore`])
//! implementation, chosen with [`Storage`].
//!
//! Blobs are content-addressed and shared by every repository; a
//! repository sees a blob only once it is linked there (by an upload, a
//! mount or a manifest push). Manifests are kept as blobs with their media
//! type, tags as names of manifest digests. Every name a store sees has
//! been validated ([`RepoName`], [`TagName`], [`Digest`], [`UploadId`]),
//! so no path can leave the store's directory.

mod disk;
mod memory;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use berth_reference::Digest;
use bytes::Bytes;

pub use disk::DiskStore;
pub use memory::MemoryStore;

use crate::error::StartError;
use crate::names::{RepoName, TagName, UploadId};

/// A blob's content, ready to be served.
#[derive(Debug)]
#[non_exhaustive]
pub enum BlobContent {
    /// The bytes, in memory.
    Bytes(Bytes),
    /// An open file of `size` bytes.
    File {
        /// The file, at its start.
        file: std::fs::File,
        /// Its size.
        size: u64,
    },
}

impl BlobContent {
    /// The blob's size.
    pub fn size(&self) -> u64 {
        match self {
            BlobContent::Bytes(b) => b.len() as u64,
            BlobContent::File { size, .. } => *size,
        }
    }
}

/// A manifest as stored: its exact bytes and the media type it was pushed
/// with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    /// The media type (the `Content-Type` it is served with).
    pub media_type: String,
    /// The bytes, exactly as pushed.
    pub bytes: Bytes,
}

/// How an append to an upload session went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Append {
    /// The bytes were added; the session now holds `size` bytes.
    Appended {
        /// The session's size after the append.
        size: u64,
    },
    /// The bytes did not start where the session ends; nothing was added.
    WrongOffset {
        /// The session's size.
        size: u64,
    },
    /// No such session in this repository.
    Unknown,
}

/// How closing an upload session went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finish {
    /// The content had the digest; the blob is stored and linked.
    Stored {
        /// The blob's size.
        size: u64,
    },
    /// The content had another digest: nothing was stored and the session
    /// is gone.
    Mismatch {
        /// The digest of what was uploaded.
        actual: Digest,
    },
    /// No such session in this repository.
    Unknown,
}

/// A registry's storage. Implementations are shared between connections
/// and called from blocking threads; each call is atomic on its own.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Every repository that holds a blob link or a manifest, in lexical
    /// order.
    fn repositories(&self) -> io::Result<Vec<RepoName>>;
    /// Whether `repo` holds any blob link or manifest.
    fn repository_exists(&self, repo: &RepoName) -> io::Result<bool>;

    /// The blob `digest` when it is linked in `repo`.
    fn blob(&self, repo: &RepoName, digest: &Digest) -> io::Result<Option<BlobContent>>;
    /// The size of blob `digest` when it is linked in `repo`.
    fn blob_size(&self, repo: &RepoName, digest: &Digest) -> io::Result<Option<u64>>;
    /// Links blob `digest` into `to` when it is linked in `from`; whether
    /// it was.
    fn mount_blob(&self, from: &RepoName, to: &RepoName, digest: &Digest) -> io::Result<bool>;
    /// Unlinks blob `digest` from `repo`; whether it was linked.
    fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> io::Result<bool>;

    /// Opens an upload session for `repo`.
    fn start_upload(&self, repo: &RepoName) -> io::Result<UploadId>;
    /// The bytes held by session `id` of `repo`, if it exists.
    fn upload_size(&self, repo: &RepoName, id: &UploadId) -> io::Result<Option<u64>>;
    /// Adds `bytes` at `offset`, which must be the session's size.
    fn append_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        offset: u64,
        bytes: &[u8],
    ) -> io::Result<Append>;
    /// Closes session `id`: when its content has `digest`, stores the blob
    /// and links it into `repo`; otherwise stores nothing. The session is
    /// gone either way.
    fn finish_upload(&self, repo: &RepoName, id: &UploadId, digest: &Digest) -> io::Result<Finish>;
    /// Drops session `id`; whether it existed.
    fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> io::Result<bool>;

    /// Stores a manifest (already checked) under `digest`, and points
    /// `tag` at it when given.
    fn put_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        manifest: &StoredManifest,
        tag: Option<&TagName>,
    ) -> io::Result<()>;
    /// The manifest `digest` of `repo`.
    fn manifest(&self, repo: &RepoName, digest: &Digest) -> io::Result<Option<StoredManifest>>;
    /// The digest `tag` points at in `repo`.
    fn resolve_tag(&self, repo: &RepoName, tag: &TagName) -> io::Result<Option<Digest>>;
    /// The tags of `repo`, in lexical order; `None` when the repository
    /// does not exist.
    fn tags(&self, repo: &RepoName) -> io::Result<Option<Vec<String>>>;
    /// The digests of every manifest in `repo`.
    fn manifest_digests(&self, repo: &RepoName) -> io::Result<Vec<Digest>>;
    /// Deletes manifest `digest` and every tag that points at it; whether
    /// it existed.
    fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> io::Result<bool>;
    /// Deletes `tag` (not the manifest); whether it existed.
    fn delete_tag(&self, repo: &RepoName, tag: &TagName) -> io::Result<bool>;
}

/// Which storage a registry uses: [`Storage::memory`] (the default),
/// [`Storage::disk`], or any [`Store`] with [`Storage::custom`].
#[derive(Debug, Clone, Default)]
pub struct Storage(Kind);

#[derive(Debug, Clone, Default)]
enum Kind {
    #[default]
    Memory,
    Disk(PathBuf),
    Custom(Arc<dyn Store>),
}

impl Storage {
    /// Everything in memory, gone when the registry stops.
    pub fn memory() -> Storage {
        Storage(Kind::Memory)
    }

    /// Everything under `dir` (created when missing): blobs at
    /// `dir/blobs/<algorithm>/<hex>`, partial uploads in `dir/tmp/`,
    /// repositories under `dir/repositories/`. A registry started again
    /// on the same directory serves what it held.
    pub fn disk(dir: impl Into<PathBuf>) -> Storage {
        Storage(Kind::Disk(dir.into()))
    }

    /// A store of the caller's.
    pub fn custom(store: impl Store) -> Storage {
        Storage(Kind::Custom(Arc::new(store)))
    }

    pub(crate) fn open(self) -> Result<Arc<dyn Store>, StartError> {
        Ok(match self.0 {
            Kind::Memory => Arc::new(MemoryStore::new()),
            Kind::Disk(dir) => Arc::new(
                DiskStore::open(&dir)
                    .map_err(|source| StartError::Storage { path: dir, source })?,
            ),
            Kind::Custom(store) => store,
        })
    }
}
