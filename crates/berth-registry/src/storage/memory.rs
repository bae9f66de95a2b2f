//! The in-memory store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::{Mutex, MutexGuard};

use berth_manifest::Digester;
use berth_reference::Digest;
use bytes::Bytes;

use super::{Append, BlobContent, Finish, Store, StoredManifest};
use crate::names::{RepoName, TagName, UploadId};

#[derive(Debug, Default)]
struct Repo {
    blobs: HashSet<Digest>,
    manifests: HashMap<Digest, String>,
    tags: BTreeMap<String, Digest>,
}

#[derive(Debug, Default)]
struct State {
    blobs: HashMap<Digest, Bytes>,
    repos: BTreeMap<RepoName, Repo>,
    uploads: HashMap<UploadId, (RepoName, Vec<u8>)>,
}

/// Everything in memory, behind one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| io::Error::other("the memory store's lock is poisoned"))
    }
}

fn digest_of(algorithm_of: &Digest, bytes: &[u8]) -> io::Result<Digest> {
    let mut d = Digester::for_digest(algorithm_of).map_err(io::Error::other)?;
    d.update(bytes);
    Ok(d.finish())
}

impl Store for MemoryStore {
    fn repositories(&self) -> io::Result<Vec<RepoName>> {
        Ok(self.lock()?.repos.keys().cloned().collect())
    }

    fn repository_exists(&self, repo: &RepoName) -> io::Result<bool> {
        Ok(self.lock()?.repos.contains_key(repo))
    }

    fn blob(&self, repo: &RepoName, digest: &Digest) -> io::Result<Option<BlobContent>> {
        let state = self.lock()?;
        let linked = state
            .repos
            .get(repo)
            .is_some_and(|r| r.blobs.contains(digest));
        Ok(linked
            .then(|| state.blobs.get(digest).cloned().map(BlobContent::Bytes))
            .flatten())
    }

    fn blob_size(&self, repo: &RepoName, digest: &Digest) -> io::Result<Option<u64>> {
        Ok(self.blob(repo, digest)?.map(|b| b.size()))
    }

    fn mount_blob(&self, from: &RepoName, to: &RepoName, digest: &Digest) -> io::Result<bool> {
        let mut state = self.lock()?;
        let linked = state
            .repos
            .get(from)
            .is_some_and(|r| r.blobs.contains(digest))
            && state.blobs.contains_key(digest);
        if linked {
            state
                .repos
                .entry(to.clone())
                .or_default()
                .blobs
                .insert(digest.clone());
        }
        Ok(linked)
    }

    fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> io::Result<bool> {
        let mut state = self.lock()?;
        Ok(state
            .repos
            .get_mut(repo)
            .is_some_and(|r| r.blobs.remove(digest)))
    }

    fn start_upload(&self, repo: &RepoName) -> io::Result<UploadId> {
        let id = UploadId::generate();
        self.lock()?
            .uploads
            .insert(id.clone(), (repo.clone(), Vec::new()));
        Ok(id)
    }

    fn upload_size(&self, repo: &RepoName, id: &UploadId) -> io::Result<Option<u64>> {
        Ok(self
            .lock()?
            .uploads
            .get(id)
            .filter(|(r, _)| r == repo)
            .map(|(_, b)| b.len() as u64))
    }

    fn append_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        offset: u64,
        bytes: &[u8],
    ) -> io::Result<Append> {
        let mut state = self.lock()?;
        let Some((_, buf)) = state.uploads.get_mut(id).filter(|(r, _)| r == repo) else {
            return Ok(Append::Unknown);
        };
        let size = buf.len() as u64;
        if size != offset {
            return Ok(Append::WrongOffset { size });
        }
        buf.extend_from_slice(bytes);
        Ok(Append::Appended {
            size: buf.len() as u64,
        })
    }

    fn finish_upload(&self, repo: &RepoName, id: &UploadId, digest: &Digest) -> io::Result<Finish> {
        let mut state = self.lock()?;
        if state.uploads.get(id).is_none_or(|(r, _)| r != repo) {
            return Ok(Finish::Unknown);
        }
        let Some((_, bytes)) = state.uploads.remove(id) else {
            return Ok(Finish::Unknown);
        };
        let actual = digest_of(digest, &bytes)?;
        if &actual != digest {
            return Ok(Finish::Mismatch { actual });
        }
        let size = bytes.len() as u64;
        state
            .blobs
            .entry(digest.clone())
            .or_insert_with(|| Bytes::from(bytes));
        state
            .repos
            .entry(repo.clone())
            .or_default()
            .blobs
            .insert(digest.clone());
        Ok(Finish::Stored { size })
    }

    fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> io::Result<bool> {
        let mut state = self.lock()?;
        if state.uploads.get(id).is_some_and(|(r, _)| r == repo) {
            state.uploads.remove(id);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn put_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        manifest: &StoredManifest,
        tag: Option<&TagName>,
    ) -> io::Result<()> {
        let mut state = self.lock()?;
        state
            .blobs
            .entry(digest.clone())
            .or_insert_with(|| manifest.bytes.clone());
        let r = state.repos.entry(repo.clone()).or_default();
        r.manifests
            .insert(digest.clone(), manifest.media_type.clone());
        if let Some(tag) = tag {
            r.tags.insert(tag.as_str().to_owned(), digest.clone());
        }
        Ok(())
    }

    fn manifest(&self, repo: &RepoName, digest: &Digest) -> io::Result<Option<StoredManifest>> {
        let state = self.lock()?;
        let Some(media_type) = state.repos.get(repo).and_then(|r| r.manifests.get(digest)) else {
            return Ok(None);
        };
        Ok(state.blobs.get(digest).map(|bytes| StoredManifest {
            media_type: media_type.clone(),
            bytes: bytes.clone(),
        }))
    }

    fn resolve_tag(&self, repo: &RepoName, tag: &TagName) -> io::Result<Option<Digest>> {
        Ok(self
            .lock()?
            .repos
            .get(repo)
            .and_then(|r| r.tags.get(tag.as_str()).cloned()))
    }

    fn tags(&self, repo: &RepoName) -> io::Result<Option<Vec<String>>> {
        Ok(self
            .lock()?
            .repos
            .get(repo)
            .map(|r| r.tags.keys().cloned().collect()))
    }

    fn manifest_digests(&self, repo: &RepoName) -> io::Result<Vec<Digest>> {
        let mut out: Vec<Digest> = self
            .lock()?
            .repos
            .get(repo)
            .map(|r| r.manifests.keys().cloned().collect())
            .unwrap_or_default();
        out.sort();
        Ok(out)
    }

    fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> io::Result<bool> {
        let mut state = self.lock()?;
        let Some(r) = state.repos.get_mut(repo) else {
            return Ok(false);
        };
        let existed = r.manifests.remove(digest).is_some();
        if existed {
            r.tags.retain(|_, d| d != digest);
        }
        Ok(existed)
    }

    fn delete_tag(&self, repo: &RepoName, tag: &TagName) -> io::Result<bool> {
        let mut state = self.lock()?;
        Ok(state
            .repos
            .get_mut(repo)
            .is_some_and(|r| r.tags.remove(tag.as_str()).is_some()))
    }
}
