//! The on-disk store.
//!
//! ```text
//! <dir>/blobs/<algorithm>/<hex>                                blob (and manifest) bytes
//! <dir>/tmp/                                                   partial uploads, files being written
//! <dir>/repositories/<name>/_layers/<algorithm>/<hex>          blob link (empty)
//! <dir>/repositories/<name>/_manifests/revisions/<alg>/<hex>   manifest link (its media type)
//! <dir>/repositories/<name>/_manifests/tags/<tag>              tag (the digest)
//! ```
//!
//! Repository components never start with `_`, tags never start with `.`,
//! and digests are validated, so these paths cannot meet or escape. A blob
//! reaches `blobs/` only by a rename from `tmp/`, after its digest was
//! checked.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_manifest::Digester;
use berth_reference::Digest;
use bytes::Bytes;

use super::{Append, BlobContent, Finish, Store, StoredManifest};
use crate::names::{RepoName, TagName, UploadId};

/// How deep repository names may nest (a name is at most 255 bytes, so
/// at most 128 components).
const MAX_DEPTH: usize = 128;

/// Everything under one directory.
#[derive(Debug)]
pub struct DiskStore {
    dir: PathBuf,
    /// Open upload sessions and their repositories; the lock also keeps
    /// appends to one session in order.
    uploads: Mutex<HashMap<UploadId, RepoName>>,
}

fn not_found_is_none<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove_if_exists(path: &Path) -> io::Result<bool> {
    Ok(not_found_is_none(fs::remove_file(path))?.is_some())
}

impl DiskStore {
    /// Opens (creating when missing) a store at `dir`. Partial uploads
    /// and writes left by an earlier run are removed: the files this store
    /// names `tmp/upload-*` and `tmp/write-*`, nothing else, so a `tmp`
    /// directory that was there before holds its own files still.
    pub fn open(dir: &Path) -> io::Result<DiskStore> {
        fs::create_dir_all(dir.join("blobs"))?;
        fs::create_dir_all(dir.join("repositories"))?;
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            let entry = entry?;
            let name = entry.file_name();
            let ours = name.to_str().is_some_and(|n| {
                n.strip_prefix("upload-")
                    .or_else(|| n.strip_prefix("write-"))
                    .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
            });
            if ours && entry.file_type()?.is_file() {
                not_found_is_none(fs::remove_file(entry.path()))?;
            }
        }
        Ok(DiskStore {
            dir: dir.to_path_buf(),
            uploads: Mutex::new(HashMap::new()),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, HashMap<UploadId, RepoName>>> {
        self.uploads
            .lock()
            .map_err(|_| io::Error::other("the disk store's lock is poisoned"))
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.encoded())
    }

    fn repo_dir(&self, repo: &RepoName) -> PathBuf {
        let mut p = self.dir.join("repositories");
        for component in repo.as_str().split('/') {
            p.push(component);
        }
        p
    }

    fn layer_link(&self, repo: &RepoName, digest: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join("_layers")
            .join(digest.algorithm())
            .join(digest.encoded())
    }

    fn revisions_dir(&self, repo: &RepoName) -> PathBuf {
        self.repo_dir(repo).join("_manifests").join("revisions")
    }

    fn revision_link(&self, repo: &RepoName, digest: &Digest) -> PathBuf {
        self.revisions_dir(repo)
            .join(digest.algorithm())
            .join(digest.encoded())
    }

    fn tags_dir(&self, repo: &RepoName) -> PathBuf {
        self.repo_dir(repo).join("_manifests").join("tags")
    }

    fn upload_path(&self, id: &UploadId) -> PathBuf {
        self.dir.join("tmp").join(format!("upload-{id}"))
    }

    /// Writes `bytes` to `path` through a temporary file and a rename.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("write-{}", UploadId::generate()));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn link(&self, path: &Path) -> io::Result<()> {
        if path.exists() {
            return Ok(());
        }
        self.write_atomic(path, b"")
    }

    fn is_repo_dir(dir: &Path) -> bool {
        dir.join("_layers").is_dir() || dir.join("_manifests").is_dir()
    }

    fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<RepoName>) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let Some(entries) = not_found_is_none(fs::read_dir(dir))? else {
            return Ok(());
        };
        for entry in entries {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('_') {
                continue;
            }
            let full = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            if Self::is_repo_dir(&path)
                && let Ok(repo) = RepoName::parse(&full)
            {
                out.push(repo);
            }
            Self::walk(&path, &full, depth + 1, out)?;
        }
        Ok(())
    }

    fn digest_of_file(path: &Path, like: &Digest) -> io::Result<Digest> {
        let mut digester = Digester::for_digest(like).map_err(io::Error::other)?;
        let mut file = File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            digester.update(&buf[..n]);
        }
        Ok(digester.finish())
    }

    fn list_digests(dir: &Path) -> io::Result<Vec<Digest>> {
        let mut out = Vec::new();
        for algorithm in ["sha256", "sha512"] {
            let Some(entries) = not_found_is_none(fs::read_dir(dir.join(algorithm)))? else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                if let Some(hex) = entry.file_name().to_str()
                    && let Ok(d) = Digest::parse(&format!("{algorithm}:{hex}"))
                {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

impl Store for DiskStore {
    fn repositories(&self) -> io::Result<Vec<RepoName>> {
        let mut out = Vec::new();
        Self::walk(&self.dir.join("repositories"), "", 0, &mut out)?;
        out.sort();
        Ok(out)
    }

    fn repository_exists(&self, repo: &RepoName) -> io::Result<bool> {
        Ok(Self::is_repo_dir(&self.repo_dir(repo)))
    }

    fn blob(&self, repo: &RepoName, digest: &Digest) -> io::Result<Option<BlobContent>> {
        if !self.layer_link(repo, digest).is_file() {
            return Ok(None);
        }
        let Some(file) = not_found_is_none(File::open(self.blob_path(digest)))? else {
            return Ok(None);
        };
        let size = file.metadata()?.len();
        Ok(Some(BlobContent::File { file, size }))
    }

    fn blob_size(&self, repo: &RepoName, digest: &Digest) -> io::Result<Option<u64>> {
        if !self.layer_link(repo, digest).is_file() {
            return Ok(None);
        }
        Ok(not_found_is_none(fs::metadata(self.blob_path(digest)))?.map(|m| m.len()))
    }

    fn mount_blob(&self, from: &RepoName, to: &RepoName, digest: &Digest) -> io::Result<bool> {
        if self.blob_size(from, digest)?.is_none() {
            return Ok(false);
        }
        self.link(&self.layer_link(to, digest))?;
        Ok(true)
    }

    fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> io::Result<bool> {
        remove_if_exists(&self.layer_link(repo, digest))
    }

    fn start_upload(&self, repo: &RepoName) -> io::Result<UploadId> {
        let id = UploadId::generate();
        File::create(self.upload_path(&id))?;
        self.lock()?.insert(id.clone(), repo.clone());
        Ok(id)
    }

    fn upload_size(&self, repo: &RepoName, id: &UploadId) -> io::Result<Option<u64>> {
        let uploads = self.lock()?;
        if uploads.get(id) != Some(repo) {
            return Ok(None);
        }
        Ok(not_found_is_none(fs::metadata(self.upload_path(id)))?.map(|m| m.len()))
    }

    fn append_upload(
        &self,
        repo: &RepoName,
        id: &UploadId,
        offset: u64,
        bytes: &[u8],
    ) -> io::Result<Append> {
        let uploads = self.lock()?;
        if uploads.get(id) != Some(repo) {
            return Ok(Append::Unknown);
        }
        let Some(mut file) =
            not_found_is_none(OpenOptions::new().append(true).open(self.upload_path(id)))?
        else {
            return Ok(Append::Unknown);
        };
        let size = file.metadata()?.len();
        if size != offset {
            return Ok(Append::WrongOffset { size });
        }
        file.write_all(bytes)?;
        Ok(Append::Appended {
            size: size + bytes.len() as u64,
        })
    }

    fn finish_upload(&self, repo: &RepoName, id: &UploadId, digest: &Digest) -> io::Result<Finish> {
        let mut uploads = self.lock()?;
        if uploads.get(id) != Some(repo) {
            return Ok(Finish::Unknown);
        }
        uploads.remove(id);
        drop(uploads);
        let tmp = self.upload_path(id);
        let actual = match Self::digest_of_file(&tmp, digest) {
            Ok(d) => d,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if &actual != digest {
            fs::remove_file(&tmp)?;
            return Ok(Finish::Mismatch { actual });
        }
        let size = fs::metadata(&tmp)?.len();
        let dest = self.blob_path(digest);
        if dest.is_file() {
            fs::remove_file(&tmp)?;
        } else {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, &dest)?;
        }
        self.link(&self.layer_link(repo, digest))?;
        Ok(Finish::Stored { size })
    }

    fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> io::Result<bool> {
        let mut uploads = self.lock()?;
        if uploads.get(id) != Some(repo) {
            return Ok(false);
        }
        uploads.remove(id);
        remove_if_exists(&self.upload_path(id))?;
        Ok(true)
    }

    fn put_manifest(
        &self,
        repo: &RepoName,
        digest: &Digest,
        manifest: &StoredManifest,
        tag: Option<&TagName>,
    ) -> io::Result<()> {
        let blob = self.blob_path(digest);
        if !blob.is_file() {
            self.write_atomic(&blob, &manifest.bytes)?;
        }
        self.write_atomic(
            &self.revision_link(repo, digest),
            manifest.media_type.as_bytes(),
        )?;
        if let Some(tag) = tag {
            self.write_atomic(
                &self.tags_dir(repo).join(tag.as_str()),
                digest.to_string().as_bytes(),
            )?;
        }
        Ok(())
    }

    fn manifest(&self, repo: &RepoName, digest: &Digest) -> io::Result<Option<StoredManifest>> {
        let Some(media_type) = not_found_is_none(fs::read(self.revision_link(repo, digest)))?
        else {
            return Ok(None);
        };
        let Some(bytes) = not_found_is_none(fs::read(self.blob_path(digest)))? else {
            return Ok(None);
        };
        Ok(Some(StoredManifest {
            media_type: String::from_utf8_lossy(&media_type).into_owned(),
            bytes: Bytes::from(bytes),
        }))
    }

    fn resolve_tag(&self, repo: &RepoName, tag: &TagName) -> io::Result<Option<Digest>> {
        let Some(text) =
            not_found_is_none(fs::read_to_string(self.tags_dir(repo).join(tag.as_str())))?
        else {
            return Ok(None);
        };
        Digest::parse(text.trim())
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    fn tags(&self, repo: &RepoName) -> io::Result<Option<Vec<String>>> {
        if !self.repository_exists(repo)? {
            return Ok(None);
        }
        let mut out = Vec::new();
        if let Some(entries) = not_found_is_none(fs::read_dir(self.tags_dir(repo)))? {
            for entry in entries {
                if let Some(name) = entry?.file_name().to_str()
                    && TagName::parse(name).is_ok()
                {
                    out.push(name.to_owned());
                }
            }
        }
        out.sort();
        Ok(Some(out))
    }

    fn manifest_digests(&self, repo: &RepoName) -> io::Result<Vec<Digest>> {
        Self::list_digests(&self.revisions_dir(repo))
    }

    fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> io::Result<bool> {
        if !remove_if_exists(&self.revision_link(repo, digest))? {
            return Ok(false);
        }
        if let Some(tags) = self.tags(repo)? {
            for tag in tags {
                let Ok(tag) = TagName::parse(&tag) else {
                    continue;
                };
                if self.resolve_tag(repo, &tag)?.as_ref() == Some(digest) {
                    remove_if_exists(&self.tags_dir(repo).join(tag.as_str()))?;
                }
            }
        }
        Ok(true)
    }

    fn delete_tag(&self, repo: &RepoName, tag: &TagName) -> io::Result<bool> {
        remove_if_exists(&self.tags_dir(repo).join(tag.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_removes_only_the_stores_own_leftovers() {
        let dir = tempfile::tempdir().expect("tmp");
        let tmp = dir.path().join("tmp");
        fs::create_dir_all(tmp.join("notes")).expect("mkdir");
        fs::write(tmp.join("keep.txt"), b"mine").expect("write");
        fs::write(tmp.join("upload-not-hex"), b"mine too").expect("write");
        let upload = tmp.join(format!("upload-{}", UploadId::generate()));
        let write = tmp.join(format!("write-{}", UploadId::generate()));
        fs::write(&upload, b"partial").expect("write");
        fs::write(&write, b"partial").expect("write");
        DiskStore::open(dir.path()).expect("opens");
        assert!(!upload.exists() && !write.exists(), "leftovers removed");
        assert_eq!(fs::read(tmp.join("keep.txt")).expect("kept"), b"mine");
        assert!(tmp.join("upload-not-hex").exists());
        assert!(tmp.join("notes").is_dir());
    }
}
