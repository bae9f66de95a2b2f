//! Progress events, for a caller that shows progress (the library prints
//! nothing).

use std::fmt;
use std::sync::Arc;

use berth_reference::Digest;

/// Something that happened to a blob or manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A blob transfer started.
    BlobStarted {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// Bytes of a blob arrived (or left).
    BlobProgress {
        /// The blob.
        digest: Digest,
        /// Bytes done so far.
        done: u64,
        /// Its size.
        total: u64,
    },
    /// A cut download resumed from a byte offset.
    BlobResumed {
        /// The blob.
        digest: Digest,
        /// Where it resumed.
        from: u64,
    },
    /// A blob is complete and verified.
    BlobFinished {
        /// The blob.
        digest: Digest,
    },
    /// A blob was already there.
    BlobSkipped {
        /// The blob.
        digest: Digest,
    },
    /// A blob was mounted from another repository.
    BlobMounted {
        /// The blob.
        digest: Digest,
    },
    /// One source of a blob failed and the next is tried (a foreign
    /// layer's URL, then the registry): nothing it sent was kept.
    SourceFailed {
        /// The blob.
        digest: Digest,
        /// The source that failed (a URL, credentials and query redacted).
        source: String,
        /// Why.
        reason: String,
    },
    /// Something went wrong that did not stop the operation: a
    /// blob-info cache file that was corrupt or could not be written, say.
    Warning {
        /// What happened, for a person.
        message: String,
    },
    /// A manifest was written or pushed.
    Manifest {
        /// Its digest.
        digest: Digest,
    },
}

/// A callback for events; cheap to clone.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(Event) + Send + Sync>);

impl Progress {
    /// Calls `f` for every event (from any task: keep it quick).
    pub fn new(f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        Progress(Arc::new(f))
    }

    pub(crate) fn emit(&self, event: Event) {
        (self.0)(event);
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress")
    }
}
