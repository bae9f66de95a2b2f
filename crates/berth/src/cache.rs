//! A blob-location cache, as skopeo keeps one: a small file recording
//! where each blob was seen (registry and repository) and which compressed
//! and uncompressed digests belong together.
//!
//! [`Client::push`](crate::Client::push), [`Client::copy`](crate::Client::copy)
//! and [`Client::push_blob`](crate::Client::push_blob) use it to mount a
//! blob from another repository of the same registry instead of uploading
//! it; [`Client::pull`](crate::Client::pull) records where it fetched from.
//! The cache is a hint, never trusted for content: a candidate repository
//! is checked with a `HEAD` before a mount is tried, a failed mount falls
//! back to an upload, the registry mounts by digest, and every byte that is
//! downloaded is still verified against its digest.
//!
//! The client uses no cache unless given one
//! ([`ClientBuilder::blob_info_cache`](crate::ClientBuilder::blob_info_cache));
//! the `berth` command opens one in [`BlobInfoCache::default_dir`] unless
//! run with `--no-cache`.
//!
//! # On disk
//!
//! One JSON file, `blob-info.json`, in the cache directory, with a format
//! name and a version. Several processes may share it: every update holds
//! an exclusive lock on `blob-info.lock` while it reads the file, merges its
//! records in, writes a temporary file and renames it over the old one, so
//! no update is lost and no reader ever sees half a file (readers take no
//! lock; a rename is atomic). The file is bounded: at most
//! [`MAX_DIGESTS`] digests, each with at most
//! [`MAX_REPOSITORIES_PER_DIGEST`] repositories, and at most [`MAX_PAIRS`]
//! digest pairs, the least recently seen dropped first. A file that is
//! corrupt, too large, or written by something else (another format or
//! version) is ignored, reported through [`BlobInfoCache::take_warnings`]
//! (the client turns that into [`Event::Warning`]),
//! and replaced on the next update.
//!
//! ```
//! use berth::BlobInfoCache;
//! use berth::reference::Digest;
//!
//! let dir = std::env::temp_dir().join(format!("berth-cache-doc-{}", std::process::id()));
//! let cache = BlobInfoCache::open(&dir)?;
//! let digest = Digest::parse(&format!("sha256:{}", "a".repeat(64)))?;
//! cache.record_location(&digest, "ghcr.io", "org/base")?;
//! assert_eq!(cache.candidates(&digest, "ghcr.io"), vec!["org/base".to_owned()]);
//! assert!(cache.candidates(&digest, "quay.io").is_empty());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use berth_manifest::{Descriptor, Manifest, MediaType};
use berth_protocol::driver::Transport;
use berth_protocol::endpoint::canonical_registry;
use berth_reference::Digest;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Error;
use crate::layout::Layout;
use crate::progress::Event;

/// The cache file's name in the cache directory.
pub const CACHE_FILE: &str = "blob-info.json";
/// The lock file updates hold.
const LOCK_FILE: &str = "blob-info.lock";
/// The file an update writes before renaming it over [`CACHE_FILE`]; only
/// the holder of the lock writes it, so one name is enough.
const TEMP_FILE: &str = "blob-info.json.tmp";
/// The format name in the file, telling it apart from anything else.
const FORMAT: &str = "berth-blob-info-cache";
/// The version of the file's layout this code reads and writes.
const VERSION: u64 = 1;

/// The most digests whose locations are kept.
pub const MAX_DIGESTS: usize = 4096;
/// The most repositories kept for one digest (across registries).
pub const MAX_REPOSITORIES_PER_DIGEST: usize = 8;
/// The most compressed/uncompressed pairs kept.
pub const MAX_PAIRS: usize = 4096;
/// A cache file larger than this is not read (the bounds above keep a
/// well-formed file far below it).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The most candidate repositories the client checks before a push.
pub const MAX_MOUNT_CANDIDATES: usize = 3;

/// The longest registry or repository name kept.
const MAX_NAME_LEN: usize = 255;
/// How many (digest, registry, repository) records one cache value
/// remembers having written, to skip rewriting them in one process.
const MAX_REMEMBERED: usize = 8192;

/// Where blobs were seen and which digests pair up; shared by every
/// process that opens the same directory. Cheap to clone.
#[derive(Clone)]
pub struct BlobInfoCache {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    /// Serialises this process's updates (the file lock serialises
    /// processes).
    update: Mutex<()>,
    warnings: Mutex<Warnings>,
    /// Records this value already wrote: writing them again would only
    /// refresh their time.
    written: Mutex<HashSet<(String, String, String)>>,
}

#[derive(Default)]
struct Warnings {
    pending: Vec<String>,
    reported: HashSet<String>,
}

impl std::fmt::Debug for BlobInfoCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobInfoCache")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

/// The file as stored.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FileData {
    format: String,
    version: u64,
    #[serde(default)]
    locations: Vec<LocationRecord>,
    #[serde(default)]
    pairs: Vec<PairRecord>,
}

/// Only the fields that say whose file it is, read first.
#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LocationRecord {
    digest: String,
    registry: String,
    repository: String,
    /// Milliseconds since the Unix epoch when last recorded.
    seen: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PairRecord {
    compressed: String,
    uncompressed: String,
    seen: u64,
}

/// The valid records of the file.
#[derive(Debug, Default)]
struct Records {
    locations: Vec<LocationRecord>,
    pairs: Vec<PairRecord>,
}

impl BlobInfoCache {
    /// The cache in `dir` (created if missing). Nothing is read yet: a
    /// missing or unreadable file is an empty cache.
    pub fn open(dir: impl Into<PathBuf>) -> Result<BlobInfoCache, Error> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(BlobInfoCache {
            shared: Arc::new(Shared {
                dir,
                update: Mutex::new(()),
                warnings: Mutex::new(Warnings::default()),
                written: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The conventional directory: `$XDG_CACHE_HOME/berth`, else
    /// `$HOME/.cache/berth`; `None` when neither is set. Reads the
    /// process environment: the caller decides to call this; the library
    /// reads no environment on its own.
    pub fn default_dir() -> Option<PathBuf> {
        Self::default_dir_from(|k| std::env::var_os(k))
    }

    /// [`BlobInfoCache::default_dir`] with `var` standing in for the
    /// environment. A relative or empty `XDG_CACHE_HOME` is ignored, as the
    /// XDG base directory specification says.
    pub fn default_dir_from(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
        if let Some(xdg) = var("XDG_CACHE_HOME").map(PathBuf::from)
            && xdg.is_absolute()
        {
            return Some(xdg.join("berth"));
        }
        var("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".cache").join("berth"))
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The cache file.
    pub fn path(&self) -> PathBuf {
        self.shared.dir.join(CACHE_FILE)
    }

    /// Records that `digest` was seen in `repository` of `registry` (the
    /// registry is stored in its canonical form: `docker.io` for Docker
    /// Hub's aliases).
    pub fn record_location(
        &self,
        digest: &Digest,
        registry: &str,
        repository: &str,
    ) -> Result<(), Error> {
        self.record_locations([(digest, registry, repository)])
    }

    /// Records several locations in one update of the file. Names that
    /// are not a registry or repository name are skipped.
    pub fn record_locations<'a>(
        &self,
        locations: impl IntoIterator<Item = (&'a Digest, &'a str, &'a str)>,
    ) -> Result<(), Error> {
        let seen = now_millis();
        let fresh: Vec<LocationRecord> = {
            let written = self.lock_written();
            locations
                .into_iter()
                .map(|(d, reg, repo)| LocationRecord {
                    digest: d.to_string(),
                    registry: canonical_registry(reg).to_owned(),
                    repository: repo.to_owned(),
                    seen,
                })
                .filter(|l| location_valid(l).is_ok())
                .filter(|l| {
                    !written.contains(&(l.digest.clone(), l.registry.clone(), l.repository.clone()))
                })
                .collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        self.update(|records| records.locations.extend(fresh.iter().cloned()))?;
        let mut written = self.lock_written();
        if written.len() + fresh.len() > MAX_REMEMBERED {
            written.clear();
        }
        written.extend(
            fresh
                .into_iter()
                .map(|l| (l.digest, l.registry, l.repository)),
        );
        Ok(())
    }

    /// Forgets that `digest` is in `repository` of `registry` (the
    /// registry said it is not).
    pub fn forget_location(
        &self,
        digest: &Digest,
        registry: &str,
        repository: &str,
    ) -> Result<(), Error> {
        let digest = digest.to_string();
        let registry = canonical_registry(registry).to_owned();
        self.lock_written()
            .remove(&(digest.clone(), registry.clone(), repository.to_owned()));
        self.update(|records| {
            records.locations.retain(|l| {
                !(l.digest == digest && l.registry == registry && l.repository == repository)
            });
        })
    }

    /// The repositories of `registry` where `digest` was seen, most
    /// recently seen first. A hint only: check before relying on it.
    pub fn candidates(&self, digest: &Digest, registry: &str) -> Vec<String> {
        let digest = digest.to_string();
        let registry = canonical_registry(registry);
        let mut found: Vec<LocationRecord> = self
            .load()
            .locations
            .into_iter()
            .filter(|l| l.digest == digest && l.registry == registry)
            .collect();
        found.sort_by_key(|l| std::cmp::Reverse(l.seen));
        found.into_iter().map(|l| l.repository).collect()
    }

    /// Records that the blob `compressed` decompresses to `uncompressed`
    /// (a layer and its `diff_id`).
    pub fn record_pair(&self, compressed: &Digest, uncompressed: &Digest) -> Result<(), Error> {
        self.record_pairs([(compressed, uncompressed)])
    }

    /// Records several pairs in one update of the file; a pair of equal
    /// digests is skipped.
    pub fn record_pairs<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a Digest, &'a Digest)>,
    ) -> Result<(), Error> {
        let seen = now_millis();
        let fresh: Vec<PairRecord> = pairs
            .into_iter()
            .filter(|(c, u)| c != u)
            .map(|(c, u)| PairRecord {
                compressed: c.to_string(),
                uncompressed: u.to_string(),
                seen,
            })
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        self.update(|records| records.pairs.extend(fresh))
    }

    /// The uncompressed digest of the blob `compressed`, if known.
    pub fn uncompressed_of(&self, compressed: &Digest) -> Option<Digest> {
        let compressed = compressed.to_string();
        self.load()
            .pairs
            .into_iter()
            .filter(|p| p.compressed == compressed)
            .max_by_key(|p| p.seen)
            .and_then(|p| Digest::parse(&p.uncompressed).ok())
    }

    /// The compressed blobs known to decompress to `uncompressed`, most
    /// recently seen first.
    pub fn compressed_of(&self, uncompressed: &Digest) -> Vec<Digest> {
        let uncompressed = uncompressed.to_string();
        let mut found: Vec<PairRecord> = self
            .load()
            .pairs
            .into_iter()
            .filter(|p| p.uncompressed == uncompressed)
            .collect();
        found.sort_by_key(|l| std::cmp::Reverse(l.seen));
        found
            .into_iter()
            .filter_map(|p| Digest::parse(&p.compressed).ok())
            .collect()
    }

    /// The problems met since the last call (a corrupt or foreign file,
    /// say), each reported once per cache value.
    pub fn take_warnings(&self) -> Vec<String> {
        match self.shared.warnings.lock() {
            Ok(mut w) => std::mem::take(&mut w.pending),
            Err(_) => Vec::new(),
        }
    }

    fn warn(&self, message: String) {
        if let Ok(mut w) = self.shared.warnings.lock()
            && w.reported.insert(message.clone())
        {
            w.pending.push(message);
        }
    }

    fn lock_written(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String, String)>> {
        // A poisoned set only skips rewrites: its content is still usable.
        self.shared
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The valid records in the file; problems become warnings.
    fn load(&self) -> Records {
        let path = self.path();
        match read_records(&path) {
            Ok((records, dropped)) => {
                if dropped > 0 {
                    self.warn(format!(
                        "blob-info cache {}: ignored {dropped} invalid entries",
                        path.display()
                    ));
                }
                records
            }
            Err(problem) => {
                self.warn(format!(
                    "blob-info cache {}: {problem}; starting empty",
                    path.display()
                ));
                Records::default()
            }
        }
    }

    /// Reads, changes and replaces the file under the lock.
    fn update(&self, change: impl FnOnce(&mut Records)) -> Result<(), Error> {
        let _in_process = self
            .shared
            .update
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = &self.shared.dir;
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = crate::layout::lock_file(&lock_path)?;
        let mut records = self.load();
        change(&mut records);
        let data = FileData {
            format: FORMAT.to_owned(),
            version: VERSION,
            locations: prune_locations(records.locations),
            pairs: prune_pairs(records.pairs),
        };
        let bytes = serde_json::to_vec(&data).map_err(|e| Error::io(&lock_path, e.into()))?;
        let temp = dir.join(TEMP_FILE);
        let mut f = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        f.write_all(&bytes).map_err(|e| Error::io(&temp, e))?;
        drop(f);
        let path = self.path();
        fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))?;
        // The lock is released when its file closes.
        drop(lock);
        Ok(())
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Reads the file: its valid records and how many invalid ones were
/// dropped, or why the whole file is ignored. A missing file is empty.
fn read_records(path: &Path) -> Result<(Records, usize), String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Records::default(), 0)),
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({e})"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    parse_records(&bytes)
}

/// Parses the file's bytes (see [`read_records`]).
fn parse_records(bytes: &[u8]) -> Result<(Records, usize), String> {
    let header: Header =
        serde_json::from_slice(bytes).map_err(|e| format!("not a cache file ({e})"))?;
    match header.format.as_ref().and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        _ => return Err("not a berth blob-info cache (another program's file?)".to_owned()),
    }
    match header.version.as_ref().and_then(serde_json::Value::as_u64) {
        Some(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "version {v} is not understood (expected {VERSION})"
            ));
        }
        None => return Err("no version".to_owned()),
    }
    let data: FileData = serde_json::from_slice(bytes).map_err(|e| format!("malformed ({e})"))?;
    let mut dropped = 0;
    let locations: Vec<LocationRecord> = data
        .locations
        .into_iter()
        .filter(|l| {
            let ok = location_valid(l).is_ok();
            dropped += usize::from(!ok);
            ok
        })
        .collect();
    let pairs: Vec<PairRecord> = data
        .pairs
        .into_iter()
        .filter(|p| {
            let ok = Digest::parse(&p.compressed).is_ok()
                && Digest::parse(&p.uncompressed).is_ok()
                && p.compressed != p.uncompressed;
            dropped += usize::from(!ok);
            ok
        })
        .collect();
    Ok((Records { locations, pairs }, dropped))
}

/// Whether a record names a digest, a registry and a repository.
fn location_valid(l: &LocationRecord) -> Result<(), ()> {
    Digest::parse(&l.digest).map_err(|_| ())?;
    if l.registry.len() > MAX_NAME_LEN
        || !berth_reference::grammar::is_domain_and_port(&l.registry)
        || l.repository.len() > MAX_NAME_LEN
    {
        return Err(());
    }
    berth_reference::grammar::check_repository_path(&l.repository).map_err(|_| ())
}

/// One record per (digest, registry, repository), the newest time kept;
/// then the newest [`MAX_REPOSITORIES_PER_DIGEST`] per digest, for the
/// [`MAX_DIGESTS`] most recently seen digests.
fn prune_locations(all: Vec<LocationRecord>) -> Vec<LocationRecord> {
    let mut newest: HashMap<(String, String, String), u64> = HashMap::new();
    for l in all {
        let seen = newest
            .entry((l.digest, l.registry, l.repository))
            .or_insert(0);
        *seen = (*seen).max(l.seen);
    }
    let mut records: Vec<LocationRecord> = newest
        .into_iter()
        .map(|((digest, registry, repository), seen)| LocationRecord {
            digest,
            registry,
            repository,
            seen,
        })
        .collect();
    // Newest first; ties in a fixed order so every writer agrees.
    records.sort_by(|a, b| {
        b.seen
            .cmp(&a.seen)
            .then_with(|| a.digest.cmp(&b.digest))
            .then_with(|| a.registry.cmp(&b.registry))
            .then_with(|| a.repository.cmp(&b.repository))
    });
    let mut per_digest: HashMap<String, usize> = HashMap::new();
    let mut kept = Vec::new();
    for l in records {
        match per_digest.get(&l.digest).copied() {
            None if per_digest.len() >= MAX_DIGESTS => continue,
            Some(n) if n >= MAX_REPOSITORIES_PER_DIGEST => continue,
            _ => {}
        }
        *per_digest.entry(l.digest.clone()).or_insert(0) += 1;
        kept.push(l);
    }
    kept
}

/// One uncompressed digest per compressed one (the newest), at most
/// [`MAX_PAIRS`] pairs, the most recently seen kept.
fn prune_pairs(all: Vec<PairRecord>) -> Vec<PairRecord> {
    let mut records = all;
    records.sort_by(|a, b| {
        b.seen
            .cmp(&a.seen)
            .then_with(|| a.compressed.cmp(&b.compressed))
            .then_with(|| a.uncompressed.cmp(&b.uncompressed))
    });
    let mut compressed = HashSet::new();
    let mut kept = Vec::new();
    for p in records {
        if kept.len() >= MAX_PAIRS {
            break;
        }
        if compressed.insert(p.compressed.clone()) {
            kept.push(p);
        }
    }
    kept
}

/// Whether a layer's media type says its blob is compressed, so that its
/// digest and its `diff_id` differ.
fn compressed_layer(media_type: &MediaType) -> bool {
    let t = media_type.as_str();
    t.contains("gzip") || t.contains("zstd")
}

/// The `rootfs.diff_ids` of an image configuration.
fn diff_ids(config: &[u8]) -> Option<Vec<Digest>> {
    #[derive(Deserialize)]
    struct Config {
        rootfs: Option<RootFs>,
    }
    #[derive(Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    let config: Config = serde_json::from_slice(config).ok()?;
    config
        .rootfs?
        .diff_ids
        .iter()
        .map(|d| Digest::parse(d).ok())
        .collect()
}

impl<T: Transport> Client<T> {
    /// Hands the cache's warnings on as events.
    fn cache_warnings(&self, cache: &BlobInfoCache) {
        for message in cache.take_warnings() {
            self.emit(Event::Warning { message });
        }
    }

    /// Runs a cache update; a failure is a warning, never the operation's
    /// failure.
    fn cache_update(&self, cache: &BlobInfoCache, result: Result<(), Error>) {
        if let Err(e) = result {
            cache.warn(format!("blob-info cache not updated: {e}"));
        }
        self.cache_warnings(cache);
    }

    /// Records that the blobs `digests` are in `name` of `domain`.
    pub(crate) fn cache_seen<'a>(
        &self,
        domain: &str,
        name: &str,
        digests: impl IntoIterator<Item = &'a Digest>,
    ) {
        if let Some(cache) = self.blob_info_cache() {
            let r = cache.record_locations(digests.into_iter().map(|d| (d, domain, name)));
            self.cache_update(cache, r);
        }
    }

    /// Records that the blobs of an image (its config and layers) are in
    /// `name` of `domain`; foreign and non-distributable layers are left
    /// out, as they may live at their URLs rather than in the registry.
    pub(crate) fn cache_seen_blobs(&self, domain: &str, name: &str, blobs: &[Descriptor]) {
        self.cache_seen(
            domain,
            name,
            blobs
                .iter()
                .filter(|d| !d.media_type.is_foreign())
                .map(|d| &d.digest),
        );
    }

    /// A repository of `domain` other than `name` that the cache says holds
    /// `digest` and that, asked with a `HEAD`, does: at most
    /// [`MAX_MOUNT_CANDIDATES`] are asked. Candidates the registry denies
    /// holding are forgotten.
    pub(crate) async fn cached_mount_source(
        &self,
        domain: &str,
        name: &str,
        digest: &Digest,
    ) -> Option<String> {
        let cache = self.blob_info_cache()?;
        let candidates: Vec<String> = cache
            .candidates(digest, domain)
            .into_iter()
            .filter(|repo| repo != name)
            .take(MAX_MOUNT_CANDIDATES)
            .collect();
        self.cache_warnings(cache);
        for repo in candidates {
            match self.blob_exists(domain, &repo, digest).await {
                Ok(true) => return Some(repo),
                Ok(false) => {
                    let r = cache.forget_location(digest, domain, &repo);
                    self.cache_update(cache, r);
                }
                // Not readable with these credentials, or unreachable: try
                // the next one.
                Err(_) => {}
            }
        }
        None
    }

    /// Records which layers of `manifest` decompress to which `diff_id`,
    /// reading its config from `layout` (nothing when the cache is off, the
    /// config is missing, or its layers and `diff_ids` do not line up).
    pub(crate) fn cache_pairs_from_layout(&self, layout: &Layout, manifest: &Manifest) {
        let Some(cache) = self.blob_info_cache() else {
            return;
        };
        let Some(config) = manifest.config() else {
            return;
        };
        if !layout.has_blob(&config.digest, config.size) {
            return;
        }
        let Ok(bytes) = layout.read_blob(&config.digest, self.limits().config) else {
            return;
        };
        let Some(diff_ids) = diff_ids(&bytes) else {
            return;
        };
        let layers = manifest.layers();
        if layers.len() != diff_ids.len() {
            return;
        }
        let pairs = layers
            .iter()
            .zip(&diff_ids)
            .filter(|(layer, _)| compressed_layer(&layer.media_type))
            .map(|(layer, diff_id)| (&layer.digest, diff_id));
        let r = cache.record_pairs(pairs);
        self.cache_update(cache, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u64) -> Digest {
        Digest::parse(&format!("sha256:{n:064x}")).expect("digest")
    }

    fn cache() -> (tempfile::TempDir, BlobInfoCache) {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = BlobInfoCache::open(dir.path().join("berth")).expect("open");
        (dir, cache)
    }

    #[test]
    fn locations_are_per_registry_newest_first() {
        let (_dir, c) = cache();
        c.record_location(&digest(1), "r.example:5000", "team/a")
            .expect("record");
        std::thread::sleep(std::time::Duration::from_millis(5));
        c.record_location(&digest(1), "r.example:5000", "team/b")
            .expect("record");
        c.record_location(&digest(1), "other.example", "team/c")
            .expect("record");
        assert_eq!(
            c.candidates(&digest(1), "r.example:5000"),
            vec!["team/b".to_owned(), "team/a".to_owned()]
        );
        assert_eq!(c.candidates(&digest(1), "other.example"), vec!["team/c"]);
        assert!(c.candidates(&digest(2), "r.example:5000").is_empty());
        assert!(c.take_warnings().is_empty());
    }

    #[test]
    fn docker_hub_aliases_share_one_registry() {
        let (_dir, c) = cache();
        c.record_location(&digest(3), "registry-1.docker.io", "library/alpine")
            .expect("record");
        assert_eq!(
            c.candidates(&digest(3), "docker.io"),
            vec!["library/alpine"]
        );
        assert_eq!(
            c.candidates(&digest(3), "index.docker.io"),
            vec!["library/alpine"]
        );
    }

    #[test]
    fn invalid_names_are_not_recorded() {
        let (_dir, c) = cache();
        c.record_location(&digest(4), "r.example", "Upper/Case")
            .expect("record");
        c.record_location(&digest(4), "not a host", "ok")
            .expect("record");
        assert!(c.candidates(&digest(4), "r.example").is_empty());
        assert!(!c.path().exists(), "nothing valid, nothing written");
    }

    #[test]
    fn forget_removes_one_location() {
        let (_dir, c) = cache();
        c.record_locations([
            (&digest(5), "r.example", "a"),
            (&digest(5), "r.example", "b"),
        ])
        .expect("record");
        c.forget_location(&digest(5), "r.example", "a")
            .expect("forget");
        assert_eq!(c.candidates(&digest(5), "r.example"), vec!["b"]);
        // Forgotten, it can be recorded again by the same value.
        c.record_location(&digest(5), "r.example", "a")
            .expect("record");
        assert_eq!(c.candidates(&digest(5), "r.example").len(), 2);
    }

    #[test]
    fn pairs_both_ways() {
        let (_dir, c) = cache();
        c.record_pair(&digest(10), &digest(11)).expect("pair");
        c.record_pair(&digest(12), &digest(11)).expect("pair");
        c.record_pair(&digest(13), &digest(13))
            .expect("equal: skipped");
        assert_eq!(c.uncompressed_of(&digest(10)), Some(digest(11)));
        assert_eq!(c.uncompressed_of(&digest(11)), None);
        assert_eq!(c.uncompressed_of(&digest(13)), None);
        let mut compressed = c.compressed_of(&digest(11));
        compressed.sort_by_key(ToString::to_string);
        assert_eq!(compressed, vec![digest(10), digest(12)]);
    }

    #[test]
    fn bounded_in_digests_repositories_and_pairs() {
        let (_dir, c) = cache();
        let digests: Vec<Digest> = (0..(MAX_DIGESTS as u64 + 100)).map(digest).collect();
        c.record_locations(digests.iter().map(|d| (d, "r.example", "a")))
            .expect("record");
        let repos: Vec<String> = (0..MAX_REPOSITORIES_PER_DIGEST + 5)
            .map(|i| format!("repo{i}"))
            .collect();
        let hot = digest(1_000_000);
        c.record_locations(repos.iter().map(|r| (&hot, "r.example", r.as_str())))
            .expect("record");
        let pairs: Vec<(Digest, Digest)> = (0..(MAX_PAIRS as u64 + 50))
            .map(|i| (digest(2_000_000 + i), digest(3_000_000 + i)))
            .collect();
        c.record_pairs(pairs.iter().map(|(a, b)| (a, b)))
            .expect("pairs");

        let bytes = fs::read(c.path()).expect("file");
        let data: FileData = serde_json::from_slice(&bytes).expect("parses");
        let distinct: HashSet<&str> = data.locations.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(distinct.len(), MAX_DIGESTS);
        assert!(distinct.contains(hot.to_string().as_str()), "newest kept");
        assert_eq!(
            c.candidates(&hot, "r.example").len(),
            MAX_REPOSITORIES_PER_DIGEST
        );
        assert_eq!(data.pairs.len(), MAX_PAIRS);
        assert!(bytes.len() as u64 <= MAX_FILE_BYTES);
    }

    #[test]
    fn the_least_recently_seen_digests_go_first() {
        let mut all = Vec::new();
        for i in 0..(MAX_DIGESTS as u64 + 10) {
            all.push(LocationRecord {
                digest: digest(i).to_string(),
                registry: "r.example".into(),
                repository: "a".into(),
                seen: i,
            });
        }
        let kept = prune_locations(all);
        assert_eq!(kept.len(), MAX_DIGESTS);
        assert!(kept.iter().all(|l| l.seen >= 10), "the ten oldest dropped");
    }

    #[test]
    fn corrupt_foreign_and_future_files_are_ignored_with_a_warning() {
        let cases: [(&[u8], &str); 7] = [
            (b"\x00\x01garbage", "not a cache file"),
            (
                b"{\"format\":\"berth-blob-info-cache\",\"vers",
                "not a cache file",
            ),
            (b"[1,2,3]", "not a cache file"),
            (b"{\"bolt\":true}", "another program"),
            (
                b"{\"format\":\"berth-blob-info-cache\",\"version\":99}",
                "version 99",
            ),
            (b"{\"format\":\"berth-blob-info-cache\"}", "no version"),
            (
                b"{\"format\":\"berth-blob-info-cache\",\"version\":1,\"locations\":7}",
                "malformed",
            ),
        ];
        for (bytes, expected) in cases {
            let (_dir, c) = cache();
            fs::write(c.path(), bytes).expect("write");
            assert!(c.candidates(&digest(1), "r.example").is_empty());
            let warnings = c.take_warnings();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].contains(expected), "{warnings:?}");
            // Reported once per cache value.
            assert!(c.candidates(&digest(1), "r.example").is_empty());
            assert!(c.take_warnings().is_empty());
            // The next update replaces the file with a valid one.
            c.record_location(&digest(1), "r.example", "a")
                .expect("record");
            assert_eq!(c.candidates(&digest(1), "r.example"), vec!["a"]);
            let (records, dropped) = read_records(&c.path()).expect("valid now");
            assert_eq!((records.locations.len(), dropped), (1, 0));
        }
    }

    #[test]
    fn invalid_entries_are_dropped_and_the_rest_kept() {
        let (_dir, c) = cache();
        let good = digest(7).to_string();
        let text = format!(
            r#"{{"format":"berth-blob-info-cache","version":1,"locations":[
                {{"digest":"{good}","registry":"r.example","repository":"ok","seen":1}},
                {{"digest":"md5:abc","registry":"r.example","repository":"ok","seen":1}},
                {{"digest":"{good}","registry":"r.example","repository":"../../etc","seen":1}},
                {{"digest":"{good}","registry":"bad host!","repository":"ok","seen":1}}
            ],"pairs":[{{"compressed":"{good}","uncompressed":"nope","seen":1}}]}}"#
        );
        fs::write(c.path(), text).expect("write");
        assert_eq!(c.candidates(&digest(7), "r.example"), vec!["ok"]);
        let warnings = c.take_warnings();
        assert!(
            warnings.len() == 1 && warnings[0].contains("ignored 4 invalid entries"),
            "{warnings:?}"
        );
        assert_eq!(c.uncompressed_of(&digest(7)), None);
    }

    #[test]
    fn too_large_a_file_is_not_read() {
        let (_dir, c) = cache();
        let f = File::create(c.path()).expect("create");
        f.set_len(MAX_FILE_BYTES + 1).expect("sparse file");
        assert!(c.candidates(&digest(1), "r.example").is_empty());
        let warnings = c.take_warnings();
        assert!(warnings[0].contains("larger than"), "{warnings:?}");
    }

    #[test]
    fn a_directory_in_the_files_place_is_a_warning_and_an_error_not_a_panic() {
        let (_dir, c) = cache();
        fs::create_dir_all(c.path()).expect("dir");
        assert!(c.candidates(&digest(1), "r.example").is_empty());
        assert_eq!(c.take_warnings().len(), 1);
        let e = c
            .record_location(&digest(1), "r.example", "a")
            .expect_err("cannot replace a directory");
        assert!(matches!(e, Error::Io { .. }), "{e}");
    }

    #[test]
    fn the_default_directory_follows_xdg() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            BlobInfoCache::default_dir_from(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/berth"))
        );
        assert_eq!(
            BlobInfoCache::default_dir_from(env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/berth"))
        );
        assert_eq!(
            BlobInfoCache::default_dir_from(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/berth"))
        );
        assert_eq!(BlobInfoCache::default_dir_from(env(&[])), None);
    }

    #[test]
    fn diff_ids_pair_with_compressed_layers_only() {
        let ids = diff_ids(
            format!(
                r#"{{"rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
                digest(1),
                digest(2)
            )
            .as_bytes(),
        )
        .expect("diff ids");
        assert_eq!(ids, vec![digest(1), digest(2)]);
        assert_eq!(diff_ids(b"{\"rootfs\":{\"diff_ids\":[\"x\"]}}"), None);
        assert_eq!(diff_ids(b"not json"), None);
        assert!(compressed_layer(&MediaType::OCI_LAYER_TAR_GZIP));
        assert!(compressed_layer(&MediaType::DOCKER_LAYER));
        assert!(!compressed_layer(&MediaType::OCI_LAYER_TAR));
    }
}
