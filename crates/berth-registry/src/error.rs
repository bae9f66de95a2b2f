//! Errors: the spec's error answers (`{"errors":[...]}`), and what can go
//! wrong when a registry starts.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use berth_protocol::ErrorCode;
use http::StatusCode;

/// An error answer of the distribution spec: a status and one
/// `{"code","message","detail"}` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The spec's error code.
    pub code: ErrorCode,
    /// What was wrong, for people.
    pub message: String,
    /// The `detail` member (JSON), if any.
    pub detail: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with the status the spec gives `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: status_of(&code),
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// This error with another status.
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// This error with a `detail` member.
    pub fn with_detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = Some(detail);
        self
    }

    /// The body: `{"errors":[{"code","message","detail"}]}`.
    pub fn body(&self) -> Vec<u8> {
        let mut entry = serde_json::Map::new();
        entry.insert("code".into(), self.code.as_str().into());
        entry.insert("message".into(), self.message.clone().into());
        entry.insert(
            "detail".into(),
            self.detail.clone().unwrap_or(serde_json::Value::Null),
        );
        let body = serde_json::json!({ "errors": [serde_json::Value::Object(entry)] });
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// A storage failure, as `UNKNOWN` with status 500.
    pub(crate) fn storage(err: &io::Error) -> ApiError {
        ApiError::new(ErrorCode::Unknown, format!("storage error: {err}"))
            .with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl From<io::Error> for ApiError {
    fn from(err: io::Error) -> ApiError {
        ApiError::storage(&err)
    }
}

/// The status the distribution spec gives each error code.
pub fn status_of(code: &ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BlobUnknown
        | ErrorCode::BlobUploadUnknown
        | ErrorCode::ManifestUnknown
        | ErrorCode::NameUnknown => StatusCode::NOT_FOUND,
        ErrorCode::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Denied => StatusCode::FORBIDDEN,
        ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Why a registry did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The address could not be parsed.
    #[error("invalid bind address {addr:?}: {reason}")]
    Address {
        /// The address given.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// The socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The storage directory could not be prepared.
    #[error("cannot prepare the storage directory {}: {source}", path.display())]
    Storage {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}
