//! An OCI image layout on disk: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`.
//!
//! Every file under `blobs/` always hashes to its own name: a blob is
//! written to a temporary file beside the layout (`DIR/.berth/`), verified
//! while it is written, and renamed into place only then. `index.json` is
//! replaced atomically the same way. An interrupted pull leaves a valid
//! layout, and the next pull skips the blobs already there.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_manifest::{Descriptor, Digester, ImageIndex, Verifier, VerifyError};
use berth_reference::Digest;

use crate::error::Error;

/// The annotation that names a manifest in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the layout at `root`, creating `oci-layout`, `index.json` and
    /// `blobs/` when they are missing.
    pub fn create(root: impl Into<PathBuf>) -> Result<Layout, Error> {
        let root = root.into();
        fs::create_dir_all(root.join("blobs")).map_err(|e| Error::io(&root, e))?;
        fs::create_dir_all(root.join(".berth")).map_err(|e| Error::io(&root, e))?;
        let layout = Layout { root };
        let marker = layout.root.join("oci-layout");
        if !marker.exists() {
            layout.write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !layout.index_path().exists() {
            layout.write_index(&ImageIndex::new(Vec::new()))?;
        }
        layout.clean_temporaries();
        Ok(layout)
    }

    /// Opens an existing layout (for reading: `push`).
    pub fn open(root: impl Into<PathBuf>) -> Result<Layout, Error> {
        let root = root.into();
        let marker = root.join("oci-layout");
        let text = fs::read(&marker).map_err(|e| Error::io(&marker, e))?;
        let v: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| Error::layout(&marker, format!("not JSON: {e}")))?;
        if v.get("imageLayoutVersion")
            .and_then(|v| v.as_str())
            .is_none()
        {
            return Err(Error::layout(&marker, "no imageLayoutVersion"));
        }
        Ok(Layout { root })
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.encoded())
    }

    /// Whether the blob is present with the expected size. (Content is
    /// verified when it is written; [`Layout::verify`] checks it all again.)
    pub fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// A new temporary file beside the layout, removed if dropped unfinished.
    pub fn temp_blob(&self, expected: &Digest, size: u64) -> Result<TempBlob, Error> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join(".berth").join(format!(
            "tmp-{}-{n}-{}",
            std::process::id(),
            expected.encoded()
        ));
        let verifier =
            Verifier::new(expected.clone(), size).map_err(|e| Error::verify(expected, e))?;
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        // From here the file is the TempBlob's: dropped on an error, it
        // removes the file.
        let temp = TempBlob {
            path,
            file: Some(file),
            verifier: Some(verifier),
            size,
            written: 0,
            final_path: self.blob_path(expected),
            committed: false,
            flush: Flush::default(),
        };
        if let Some(file) = &temp.file {
            preallocate(file, size).map_err(|e| Error::io(&temp.path, e))?;
        }
        Ok(temp)
    }

    /// A temporary file whose content the caller verifies itself, as it
    /// streams (a download through [`crate::Client::fetch_blob`]), so each
    /// byte is hashed once; only the size is checked here. The caller
    /// commits it only after its own verification succeeded.
    pub(crate) fn temp_blob_verified_by_caller(
        &self,
        expected: &Digest,
        size: u64,
    ) -> Result<TempBlob, Error> {
        let mut t = self.temp_blob(expected, size)?;
        t.verifier = None;
        Ok(t)
    }

    /// Writes a small blob (a manifest or config) whose bytes are in memory.
    pub fn write_blob_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        let size = bytes.len() as u64;
        if self.has_blob(digest, size) {
            return Ok(());
        }
        let mut t = self.temp_blob(digest, size)?;
        t.write(bytes)?;
        t.commit()
    }

    /// Reads a whole blob (at most `limit` bytes), verified.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        if bytes.len() as u64 > limit {
            return Err(Error::layout(
                &path,
                format!("larger than the limit of {limit} bytes"),
            ));
        }
        let mut digester = Digester::for_digest(digest).map_err(|e| Error::verify(digest, e))?;
        digester.update(&bytes);
        let actual = digester.finish();
        if actual != *digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: Box::new(digest.clone()),
                actual: Box::new(actual),
            });
        }
        Ok(bytes)
    }

    /// Reads `index.json`.
    pub fn index(&self) -> Result<ImageIndex, Error> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::layout(&path, e))
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), Error> {
        let bytes =
            serde_json::to_vec_pretty(index).map_err(|e| Error::layout(&self.index_path(), e))?;
        self.write_atomic(&self.index_path(), &bytes)
    }

    /// Names `descriptor` in `index.json` (with `ref_name` as its
    /// `org.opencontainers.image.ref.name`), replacing any entry with the
    /// same name. Replaces the file atomically.
    pub fn add_to_index(
        &self,
        mut descriptor: Descriptor,
        ref_name: Option<&str>,
    ) -> Result<(), Error> {
        // Several processes (or tasks) may pull into one layout: the
        // read-modify-write of index.json holds an exclusive lock on
        // `.berth/index.lock` (released when the file closes).
        let _lock = lock_file(&self.root.join(".berth").join("index.lock"))?;
        let mut index = self.index()?;
        if let Some(name) = ref_name {
            descriptor
                .annotations
                .insert(REF_NAME.to_owned(), name.to_owned());
            index
                .manifests
                .retain(|d| d.annotations.get(REF_NAME).map(String::as_str) != Some(name));
        } else {
            index
                .manifests
                .retain(|d| d.digest != descriptor.digest || d.annotations.contains_key(REF_NAME));
        }
        index.manifests.push(descriptor);
        self.write_index(&index)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join(".berth")
            .join(format!("write-{}-{n}", std::process::id()));
        fs::create_dir_all(self.root.join(".berth")).map_err(|e| Error::io(&self.root, e))?;
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// Removes temporary files left by interrupted runs of this process's
    /// predecessors (files whose writer is gone).
    fn clean_temporaries(&self) {
        let Ok(entries) = fs::read_dir(self.root.join(".berth")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "index.lock" {
                continue;
            }
            let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| {
                p == std::process::id() || Path::new(&format!("/proc/{p}")).exists()
            });
            if !alive {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Checks every blob under `blobs/` against its name; returns how many
    /// were checked.
    pub fn verify(&self) -> Result<usize, Error> {
        let mut n = 0;
        let blobs = self.root.join("blobs");
        for alg in fs::read_dir(&blobs)
            .map_err(|e| Error::io(&blobs, e))?
            .flatten()
        {
            for blob in fs::read_dir(alg.path())
                .map_err(|e| Error::io(&alg.path(), e))?
                .flatten()
            {
                let text = format!(
                    "{}:{}",
                    alg.file_name().to_string_lossy(),
                    blob.file_name().to_string_lossy()
                );
                let digest = Digest::parse(&text).map_err(|e| Error::layout(&blob.path(), e))?;
                let mut d = Digester::for_digest(&digest).map_err(|e| Error::verify(&digest, e))?;
                let mut f = File::open(blob.path()).map_err(|e| Error::io(&blob.path(), e))?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let k = f.read(&mut buf).map_err(|e| Error::io(&blob.path(), e))?;
                    if k == 0 {
                        break;
                    }
                    d.update(&buf[..k]);
                }
                let actual = d.finish();
                if actual != digest {
                    return Err(Error::DigestMismatch {
                        what: format!("blob {}", blob.path().display()),
                        expected: Box::new(digest),
                        actual: Box::new(actual),
                    });
                }
                n += 1;
            }
        }
        Ok(n)
    }

    /// The manifest `index.json` names for `tag`, or its only manifest.
    pub fn manifest_for(&self, tag: Option<&str>) -> Result<Descriptor, Error> {
        let index = self.index()?;
        let manifests: Vec<&Descriptor> = index.manifests.iter().collect();
        match manifests.as_slice() {
            [] => Err(Error::layout(
                &self.index_path(),
                "index.json names no manifest",
            )),
            [only] => Ok((*only).clone()),
            several => {
                let Some(tag) = tag else {
                    return Err(Error::Usage(format!(
                        "{} names {} manifests; say which with a tag",
                        self.index_path().display(),
                        several.len()
                    )));
                };
                several
                    .iter()
                    .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
                    .map(|d| (*d).clone())
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "{} names {} manifests and none has ref name {tag:?}",
                            self.index_path().display(),
                            several.len()
                        ))
                    })
            }
        }
    }
}

/// A blob being written: verified as bytes arrive, moved into `blobs/`
/// only by [`TempBlob::commit`], deleted if dropped before that.
#[derive(Debug)]
pub struct TempBlob {
    path: PathBuf,
    file: Option<File>,
    verifier: Option<Verifier>,
    size: u64,
    written: u64,
    final_path: PathBuf,
    committed: bool,
    flush: Flush,
}

/// Reserves the disk blocks of a blob about to be written, leaving the
/// file's size alone: a disk without room for the blob fails now, before
/// the download, and the writes that follow skip the file system's
/// block-by-block allocation (on ext4 that is a quarter of the CPU
/// writing a blob costs). A file system that cannot preallocate is
/// written as before.
#[cfg(target_os = "linux")]
fn preallocate(file: &File, size: u64) -> io::Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    use rustix::io::Errno;
    if size == 0 {
        return Ok(());
    }
    match fallocate(file, FallocateFlags::KEEP_SIZE, 0, size) {
        Err(e) if e == Errno::NOSPC || e == Errno::DQUOT || e == Errno::FBIG => Err(e.into()),
        _ => Ok(()),
    }
}

/// Elsewhere blocks are allocated as the bytes are written.
#[cfg(not(target_os = "linux"))]
fn preallocate(_: &File, _: u64) -> io::Result<()> {
    Ok(())
}

/// Bytes written between background flushes of a temporary blob.
const FLUSH_EVERY: u64 = 16 * 1024 * 1024;

/// Writes a temporary blob's pages to disk while the rest of it is still
/// arriving, so the `sync_all` before its rename waits for the last few
/// MiB instead of the whole blob. One flush runs at a time, on its own
/// thread with its own handle to the file.
#[derive(Debug, Default)]
struct Flush {
    running: Option<std::thread::JoinHandle<io::Result<()>>>,
    at: u64,
}

impl Flush {
    /// Starts a flush of everything written so far when enough is new and
    /// none is running; reports the last finished flush's failure.
    fn maybe_start(&mut self, file: &File, written: u64) -> io::Result<()> {
        if written - self.at < FLUSH_EVERY {
            return Ok(());
        }
        if let Some(running) = &self.running {
            if !running.is_finished() {
                return Ok(());
            }
            self.wait()?;
        }
        let file = file.try_clone()?;
        self.running = Some(std::thread::spawn(move || file.sync_data()));
        self.at = written;
        Ok(())
    }

    /// Waits for the running flush, if any.
    fn wait(&mut self) -> io::Result<()> {
        match self.running.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(io::Error::other("the flushing thread panicked")),
        }
    }
}

impl TempBlob {
    /// Where the temporary file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends bytes (hashing them once, as they pass).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match self.verifier.as_mut() {
            Some(verifier) => verifier
                .update(bytes)
                .map_err(|e| Error::verify(verifier.expected(), e))?,
            None if self.written + bytes.len() as u64 > self.size => {
                return Err(Error::Verify(format!(
                    "{}: more than the {} bytes expected",
                    self.path.display(),
                    self.size
                )));
            }
            None => {}
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::layout(&self.path, "written after commit"))?;
        file.write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.written += bytes.len() as u64;
        self.flush
            .maybe_start(file, self.written)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Discards every byte written, to take the blob again from its first
    /// byte (from another source, after one failed part-way).
    pub fn restart(&mut self) -> Result<(), Error> {
        use std::io::Seek;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::layout(&self.path, "restarted after commit"))?;
        // A failed flush of bytes being thrown away changes nothing.
        let _ = self.flush.wait();
        self.flush.at = 0;
        file.set_len(0).map_err(|e| Error::io(&self.path, e))?;
        file.seek(io::SeekFrom::Start(0))
            .map_err(|e| Error::io(&self.path, e))?;
        preallocate(file, self.size).map_err(|e| Error::io(&self.path, e))?;
        if let Some(v) = self.verifier.take() {
            let expected = v.expected().clone();
            self.verifier = Some(
                Verifier::new(expected.clone(), self.size)
                    .map_err(|e| Error::verify(&expected, e))?,
            );
        }
        self.written = 0;
        Ok(())
    }

    /// How many bytes were written (and verified so far).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Checks digest and size, then renames the file into `blobs/`.
    pub fn commit(mut self) -> Result<(), Error> {
        match self.verifier.take() {
            Some(verifier) => {
                let expected = verifier.expected().clone();
                verifier.finish().map_err(|e| Error::verify(&expected, e))?;
            }
            None if self.written != self.size => {
                return Err(Error::Verify(format!(
                    "{}: {} bytes of {}",
                    self.path.display(),
                    self.written,
                    self.size
                )));
            }
            None => {}
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| Error::layout(&self.path, "committed twice"))?;
        self.flush
            .wait()
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&self.path, e))?;
        drop(file);
        if let Some(dir) = self.final_path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        fs::rename(&self.path, &self.final_path).map_err(|e| Error::io(&self.final_path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl From<VerifyError> for Error {
    fn from(e: VerifyError) -> Self {
        Error::Verify(e.to_string())
    }
}

/// Opens (creating) `path` and holds an exclusive lock on it until the
/// returned file is dropped: writers in other processes wait.
pub(crate) fn lock_file(path: &Path) -> Result<File, Error> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    lock.lock().map_err(|e| Error::io(path, e))?;
    Ok(lock)
}

/// Reads a file range for uploads.
pub(crate) fn open_range(path: &Path, offset: u64) -> io::Result<File> {
    use std::io::Seek;
    let mut f = File::open(path)?;
    f.seek(io::SeekFrom::Start(offset))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flush_every() -> usize {
        usize::try_from(FLUSH_EVERY).expect("16 MiB fits a usize")
    }

    /// Bytes no two offsets of which repeat within a blob.
    fn content(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
            .collect()
    }

    #[test]
    fn a_blob_of_any_algorithm_is_read_only_when_it_hashes_to_its_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let layout = Layout::create(dir.path()).expect("layout");
        let bytes = content(1000);
        let mut d = Digester::sha512();
        d.update(&bytes);
        let digest = d.finish();
        layout.write_blob_bytes(&digest, &bytes).expect("write");
        assert_eq!(layout.read_blob(&digest, 4096).expect("read"), bytes);
        // Tampered after it was written.
        fs::write(layout.blob_path(&digest), content(999)).expect("tamper");
        match layout.read_blob(&digest, 4096) {
            Err(Error::DigestMismatch { expected, .. }) => assert_eq!(*expected, digest),
            other => panic!("expected DigestMismatch, got {other:?}"),
        }
        // An algorithm berth cannot hash is an error, not a pass.
        let md5 =
            Digest::parse_any_algorithm("md5:0123456789abcdef0123456789abcdef").expect("digest");
        fs::create_dir_all(layout.blob_path(&md5).parent().expect("dir")).expect("mkdir");
        fs::write(layout.blob_path(&md5), b"x").expect("write");
        assert!(layout.read_blob(&md5, 4096).is_err());
    }

    #[test]
    fn a_temporary_blob_that_cannot_start_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let layout = Layout::create(dir.path()).expect("layout");
        let md5 =
            Digest::parse_any_algorithm("md5:0123456789abcdef0123456789abcdef").expect("digest");
        assert!(layout.temp_blob(&md5, 10).is_err());
        let left: Vec<_> = fs::read_dir(dir.path().join(".berth"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    #[test]
    fn a_blob_flushed_while_written_commits_whole() {
        let dir = tempfile::tempdir().expect("tmp");
        let layout = Layout::create(dir.path()).expect("layout");
        let bytes = content(3 * flush_every() + 12_345);
        let digest = Digester::sha256_of(&bytes);
        let mut temp = layout.temp_blob(&digest, bytes.len() as u64).expect("temp");
        for chunk in bytes.chunks(1 << 20) {
            temp.write(chunk).expect("write");
        }
        // One flush at a time: later ones may have been skipped.
        assert!(temp.flush.at >= FLUSH_EVERY, "a flush ran");
        let path = temp.path().to_owned();
        temp.commit().expect("commit");
        assert!(!path.exists(), "the temporary is gone");
        assert_eq!(fs::read(layout.blob_path(&digest)).expect("read"), bytes);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_temporary_blob_has_its_blocks_before_its_bytes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tmp");
        let layout = Layout::create(dir.path()).expect("layout");
        // Whether this file system preallocates at all.
        let probe = File::create(dir.path().join("probe")).expect("probe");
        let preallocates =
            rustix::fs::fallocate(&probe, rustix::fs::FallocateFlags::KEEP_SIZE, 0, 4096).is_ok();
        let size = 8 * 1024 * 1024;
        let bytes = content(size);
        let digest = Digester::sha256_of(&bytes);
        let mut temp = layout.temp_blob(&digest, size as u64).expect("temp");
        let reserved = |temp: &TempBlob| {
            let meta = fs::metadata(temp.path()).expect("stat");
            (meta.len(), meta.blocks() * 512)
        };
        let (len, blocks) = reserved(&temp);
        assert_eq!(
            len, 0,
            "the size is what was written, not what was reserved"
        );
        assert!(
            !preallocates || blocks >= size as u64,
            "{blocks} bytes reserved"
        );
        // A restart throws the reservation away with the bytes: it comes back.
        temp.write(&bytes[..1000]).expect("write");
        temp.restart().expect("restart");
        let (len, blocks) = reserved(&temp);
        assert_eq!(len, 0);
        assert!(
            !preallocates || blocks >= size as u64,
            "{blocks} bytes reserved"
        );
        temp.write(&bytes).expect("write");
        temp.commit().expect("commit");
        let meta = fs::metadata(layout.blob_path(&digest)).expect("stat");
        assert_eq!(meta.len(), size as u64);
        assert_eq!(fs::read(layout.blob_path(&digest)).expect("read"), bytes);
    }

    #[test]
    fn a_restart_after_flushes_starts_from_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let layout = Layout::create(dir.path()).expect("layout");
        let bytes = content(2 * flush_every() + 99);
        let digest = Digester::sha256_of(&bytes);
        let mut temp = layout.temp_blob(&digest, bytes.len() as u64).expect("temp");
        // Wrong bytes past a flush, then the right ones from the start.
        for chunk in bytes.chunks(1 << 20).take(20) {
            let wrong: Vec<u8> = chunk.iter().map(|b| b ^ 0x5a).collect();
            temp.write(&wrong).expect("write");
        }
        assert_eq!(temp.flush.at, FLUSH_EVERY, "a flush ran");
        temp.restart().expect("restart");
        assert_eq!(fs::metadata(temp.path()).expect("stat").len(), 0);
        assert_eq!(temp.written(), 0);
        for chunk in bytes.chunks(1 << 20) {
            temp.write(chunk).expect("write");
        }
        temp.commit().expect("commit");
        assert_eq!(fs::read(layout.blob_path(&digest)).expect("read"), bytes);
    }
}
