//! The client's errors: what went wrong, in terms a person can act on.

use std::fmt;
use std::path::{Path, PathBuf};

use berth_reference::Digest;

/// The class of an error, for callers that react differently (the CLI maps
/// these to exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The image, tag, repository or blob does not exist.
    NotFound,
    /// Authentication failed or is required.
    Auth,
    /// The caller asked for something impossible (bad arguments).
    Usage,
    /// Content did not match its digest or size.
    Integrity,
    /// The registry could not be reached.
    Network,
    /// Anything else.
    Other,
}

/// Why a client operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The registry conversation failed.
    Protocol(berth_protocol::Error),
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
    /// An OCI layout on disk is not valid.
    Layout {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Content did not match its digest.
    DigestMismatch {
        /// What content.
        what: String,
        /// The digest it should have.
        expected: Box<Digest>,
        /// The digest it has.
        actual: Box<Digest>,
    },
    /// Content failed verification (size, algorithm).
    Verify(String),
    /// An index has no manifest for the platform asked for.
    NoMatchingPlatform {
        /// The platform asked for.
        wanted: String,
        /// The platforms the index has.
        available: Vec<String>,
    },
    /// The request cannot be carried out as asked.
    Usage(String),
    /// A credential helper or file failed.
    Credentials(String),
    /// A transfer kept breaking off, beyond the retry budget.
    Interrupted(String),
    /// Every mirror and the registry failed; one entry per source tried.
    AllSourcesFailed(Vec<(String, Error)>),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn layout(path: &Path, detail: impl fmt::Display) -> Error {
        Error::Layout {
            path: path.to_owned(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn verify(expected: &Digest, e: berth_manifest::VerifyError) -> Error {
        match e {
            berth_manifest::VerifyError::DigestMismatch { expected, actual } => {
                Error::DigestMismatch {
                    what: "content".to_owned(),
                    expected,
                    actual,
                }
            }
            other => Error::Verify(format!("{expected}: {other}")),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Protocol(e) => {
                if e.not_found().is_some() {
                    ErrorKind::NotFound
                } else if e.is_auth() {
                    ErrorKind::Auth
                } else if matches!(e, berth_protocol::Error::DigestMismatch { .. }) {
                    ErrorKind::Integrity
                } else if matches!(e, berth_protocol::Error::Transport { .. }) {
                    ErrorKind::Network
                } else {
                    ErrorKind::Other
                }
            }
            Error::DigestMismatch { .. } | Error::Verify(_) => ErrorKind::Integrity,
            Error::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            Error::Usage(_) => ErrorKind::Usage,
            Error::Credentials(_) => ErrorKind::Auth,
            Error::Interrupted(_) => ErrorKind::Network,
            Error::AllSourcesFailed(all) => {
                let first = all.first().map_or(ErrorKind::Other, |(_, e)| e.kind());
                if all.iter().all(|(_, e)| e.kind() == first) {
                    first
                } else {
                    ErrorKind::Other
                }
            }
            Error::Io { .. } | Error::Layout { .. } => ErrorKind::Other,
        }
    }

    /// Whether a digest mismatch is the problem (it is retried once).
    pub(crate) fn is_mismatch(&self) -> bool {
        matches!(
            self,
            Error::DigestMismatch { .. }
                | Error::Protocol(berth_protocol::Error::DigestMismatch { .. })
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => e.fmt(f),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Layout { path, detail } => {
                write!(f, "invalid OCI layout: {}: {detail}", path.display())
            }
            Error::DigestMismatch {
                what,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "digest mismatch for {what}: expected {expected}, got {actual}"
                )
            }
            Error::Verify(detail) => write!(f, "verification failed: {detail}"),
            Error::NoMatchingPlatform { wanted, available } => write!(
                f,
                "no manifest for platform {wanted} (the index has: {}); choose one with --platform",
                if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                }
            ),
            Error::Usage(detail) => f.write_str(detail),
            Error::Credentials(detail) => write!(f, "credentials: {detail}"),
            Error::Interrupted(detail) => write!(f, "transfer interrupted: {detail}"),
            Error::AllSourcesFailed(all) => {
                write!(f, "every source failed:")?;
                for (source, e) in all {
                    write!(f, " [{source}: {e}]")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Protocol(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<berth_protocol::Error> for Error {
    fn from(e: berth_protocol::Error) -> Self {
        Error::Protocol(e)
    }
}
