//! Errors, modelled on the distribution spec: the registry's own error
//! codes, kept apart from faults of the peer's protocol use and from
//! mistakes of the caller.

use std::fmt;

use bytes::Bytes;
use http::{Method, StatusCode};

/// The most bytes of an error body kept (as go-containerregistry keeps).
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// An error code from a registry's `{"errors":[{"code": ...}]}` body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `BLOB_UNKNOWN`: the blob is not in the repository.
    BlobUnknown,
    /// `BLOB_UPLOAD_INVALID`: the upload failed (bad range, bad state).
    BlobUploadInvalid,
    /// `BLOB_UPLOAD_UNKNOWN`: no such upload session.
    BlobUploadUnknown,
    /// `DIGEST_INVALID`: the content did not match its digest.
    DigestInvalid,
    /// `MANIFEST_BLOB_UNKNOWN`: a manifest names a blob the registry lacks.
    ManifestBlobUnknown,
    /// `MANIFEST_INVALID`: the manifest was refused.
    ManifestInvalid,
    /// `MANIFEST_UNKNOWN`: no such manifest (tag or digest).
    ManifestUnknown,
    /// `MANIFEST_UNVERIFIED`: a schema1 signature did not verify.
    ManifestUnverified,
    /// `NAME_INVALID`: the repository name is not valid.
    NameInvalid,
    /// `NAME_UNKNOWN`: no such repository.
    NameUnknown,
    /// `SIZE_INVALID`: the content length did not match.
    SizeInvalid,
    /// `TAG_INVALID`: the tag in the manifest does not match the URL.
    TagInvalid,
    /// `UNAUTHORIZED`: authentication is required.
    Unauthorized,
    /// `DENIED`: access to the resource is denied.
    Denied,
    /// `UNSUPPORTED`: the operation is not supported.
    Unsupported,
    /// `TOOMANYREQUESTS`: rate limited.
    TooManyRequests,
    /// `PAGINATION_NUMBER_INVALID`: bad `n`.
    PaginationNumberInvalid,
    /// `RANGE_INVALID`: bad `Range`/`Content-Range`.
    RangeInvalid,
    /// `UNAVAILABLE`: the service is unavailable.
    Unavailable,
    /// `UNKNOWN`: an unknown error (Harbor and Red Hat's registry use it
    /// for a missing manifest, with a "not found" message).
    Unknown,
    /// Any other code, kept as sent.
    Other(String),
}

impl ErrorCode {
    /// The code as a registry writes it.
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "BLOB_UNKNOWN" => ErrorCode::BlobUnknown,
            "BLOB_UPLOAD_INVALID" => ErrorCode::BlobUploadInvalid,
            "BLOB_UPLOAD_UNKNOWN" => ErrorCode::BlobUploadUnknown,
            "DIGEST_INVALID" => ErrorCode::DigestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => ErrorCode::ManifestBlobUnknown,
            "MANIFEST_INVALID" => ErrorCode::ManifestInvalid,
            "MANIFEST_UNKNOWN" => ErrorCode::ManifestUnknown,
            "MANIFEST_UNVERIFIED" => ErrorCode::ManifestUnverified,
            "NAME_INVALID" => ErrorCode::NameInvalid,
            "NAME_UNKNOWN" => ErrorCode::NameUnknown,
            "SIZE_INVALID" => ErrorCode::SizeInvalid,
            "TAG_INVALID" => ErrorCode::TagInvalid,
            "UNAUTHORIZED" => ErrorCode::Unauthorized,
            "DENIED" => ErrorCode::Denied,
            "UNSUPPORTED" => ErrorCode::Unsupported,
            "TOOMANYREQUESTS" => ErrorCode::TooManyRequests,
            "PAGINATION_NUMBER_INVALID" => ErrorCode::PaginationNumberInvalid,
            "RANGE_INVALID" => ErrorCode::RangeInvalid,
            "UNAVAILABLE" => ErrorCode::Unavailable,
            "UNKNOWN" => ErrorCode::Unknown,
            other => ErrorCode::Other(other.to_owned()),
        }
    }

    /// The code's text.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::ManifestUnverified => "MANIFEST_UNVERIFIED",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            ErrorCode::RangeInvalid => "RANGE_INVALID",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Unknown => "UNKNOWN",
            ErrorCode::Other(s) => s,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a registry's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The error code.
    pub code: ErrorCode,
    /// The human message, if any.
    pub message: String,
    /// The `detail` member as JSON text, if any.
    pub detail: Option<String>,
}

/// What was not found, as OpenShift's client tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotFound {
    /// The repository does not exist (or is hidden from this caller).
    Repository,
    /// The manifest (a digest) does not exist.
    Manifest,
    /// The tag does not exist.
    Tag,
    /// The blob does not exist.
    Blob,
    /// The upload session does not exist.
    Upload,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotFound::Repository => "repository not found",
            NotFound::Manifest => "manifest not found",
            NotFound::Tag => "tag not found",
            NotFound::Blob => "blob not found",
            NotFound::Upload => "upload session not found",
        })
    }
}

/// What the caller asked for, so an error can say which kind of thing was
/// missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject {
    /// The `/v2/` endpoint.
    Registry,
    /// A manifest by tag.
    Tag,
    /// A manifest by digest.
    Manifest,
    /// A blob.
    Blob,
    /// An upload session.
    Upload,
    /// A repository-wide listing (tags, referrers).
    Repository,
}

/// An error status from a registry, with what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The request's method.
    pub method: Method,
    /// The request's URL, with query values removed (they may hold upload
    /// state or tokens).
    pub url: String,
    /// The parsed error entries (empty when the body had none).
    pub diagnostics: Vec<Diagnostic>,
    /// The body, at most [`ERROR_BODY_LIMIT`] bytes.
    pub body: Bytes,
    /// What the request was for.
    pub subject: Subject,
    /// Whether the request was sent without credentials.
    pub anonymous: bool,
}

impl RegistryError {
    /// Builds the error from a response status and (capped) body.
    pub fn new(
        method: Method,
        url: &http::Uri,
        status: StatusCode,
        body: Bytes,
        subject: Subject,
        anonymous: bool,
    ) -> Self {
        let body = if body.len() > ERROR_BODY_LIMIT {
            body.slice(..ERROR_BODY_LIMIT)
        } else {
            body
        };
        RegistryError {
            status,
            method,
            url: redact_url(url),
            diagnostics: parse_diagnostics(&body),
            body,
            subject,
            anonymous,
        }
    }

    /// Whether trying again later could succeed (429, 408, 5xx but 501, or
    /// codes that say so).
    pub fn is_temporary(&self) -> bool {
        matches!(self.status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
            || self
                .diagnostics
                .iter()
                .any(|d| matches!(d.code, ErrorCode::TooManyRequests | ErrorCode::Unavailable))
    }

    /// Whether this says the thing asked for does not exist: a 404, an
    /// `*_UNKNOWN` code, Harbor's `UNKNOWN` with a "not found" message, or
    /// Artifactory's 403 meaning 404.
    pub fn not_found(&self) -> Option<NotFound> {
        for d in &self.diagnostics {
            match d.code {
                ErrorCode::NameUnknown => return Some(NotFound::Repository),
                ErrorCode::ManifestUnknown => {
                    return Some(if self.subject == Subject::Tag {
                        NotFound::Tag
                    } else {
                        NotFound::Manifest
                    });
                }
                ErrorCode::BlobUnknown => return Some(NotFound::Blob),
                ErrorCode::BlobUploadUnknown => return Some(NotFound::Upload),
                ErrorCode::Unknown if d.message.to_ascii_lowercase().contains("not found") => {
                    return Some(self.subject_not_found());
                }
                _ => {}
            }
        }
        if self.status == StatusCode::NOT_FOUND {
            return Some(self.subject_not_found());
        }
        None
    }

    fn subject_not_found(&self) -> NotFound {
        match self.subject {
            Subject::Tag => NotFound::Tag,
            Subject::Manifest => NotFound::Manifest,
            Subject::Blob => NotFound::Blob,
            Subject::Upload => NotFound::Upload,
            Subject::Registry | Subject::Repository => NotFound::Repository,
        }
    }

    /// Whether this is an authentication or authorisation failure.
    pub fn is_auth(&self) -> bool {
        matches!(self.status.as_u16(), 401 | 403)
            || self
                .diagnostics
                .iter()
                .any(|d| matches!(d.code, ErrorCode::Unauthorized | ErrorCode::Denied))
    }
}

impl RegistryError {
    /// The registry's `host[:port]`, from the request URL.
    pub fn host(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest)
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.host();
        match self.status.as_u16() {
            401 if self.anonymous => write!(
                f,
                "authentication required by {host} (no credentials were sent): "
            )?,
            401 => write!(f, "unauthorized: {host} refused the credentials: ")?,
            403 if self.anonymous && self.subject != Subject::Blob => write!(
                f,
                "unauthorized: {host} refused anonymous access (the repository does not exist or may require authorization): "
            )?,
            403 => write!(f, "unauthorized: {host} denied access: ")?,
            // For an anonymous request, a bare 404 often means "missing or
            // private", as containerd says; a code naming what is missing
            // is clear on its own.
            404 if self.anonymous
                && self.subject != Subject::Blob
                && self
                    .diagnostics
                    .iter()
                    .all(|d| matches!(d.code, ErrorCode::NameUnknown | ErrorCode::Unknown)) =>
            {
                write!(
                    f,
                    "repository does not exist or may require authorization: "
                )?
            }
            _ => {}
        }
        write!(f, "{} {} answered {}", self.method, self.url, self.status)?;
        for d in &self.diagnostics {
            write!(f, "; {}", d.code)?;
            if !d.message.is_empty() {
                write!(f, ": {}", d.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for RegistryError {}

/// Parses `{"errors":[{"code","message","detail"}]}`; anything else gives
/// no diagnostics.
pub fn parse_diagnostics(body: &[u8]) -> Vec<Diagnostic> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Option<Vec<Entry>>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    let Ok(parsed) = serde_json::from_slice::<Body>(body) else {
        return Vec::new();
    };
    parsed
        .errors
        .unwrap_or_default()
        .into_iter()
        .map(|e| Diagnostic {
            code: ErrorCode::parse(e.code.as_deref().unwrap_or("UNKNOWN")),
            message: e.message.unwrap_or_default(),
            detail: e.detail.filter(|d| !d.is_null()).map(|d| d.to_string()),
        })
        .collect()
}

/// The URL without query values: `https://r.io/v2/a/blobs/uploads/x?_state=REDACTED`.
pub fn redact_url(url: &http::Uri) -> String {
    redact_url_text(&url.to_string())
}

/// [`redact_url`] for text that may not parse as a URL (a `Location`
/// header as the server sent it): no `user:password@`, no query values,
/// no fragment.
pub(crate) fn redact_url_text(url: &str) -> String {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut s = String::new();
    let rest = match base.split_once("://") {
        Some((scheme, rest)) => {
            s.push_str(scheme);
            s.push_str("://");
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            // Never print user:password@ from a URL.
            s.push_str(
                authority
                    .rsplit_once('@')
                    .map_or(authority, |(_, host)| host),
            );
            path
        }
        None => base,
    };
    s.push_str(rest);
    if let Some(q) = query {
        s.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                s.push('&');
            }
            match pair.split_once('=') {
                Some((k, _)) => {
                    s.push_str(k);
                    s.push_str("=REDACTED");
                }
                None => s.push_str(pair),
            }
        }
    }
    s
}

/// Why an operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The registry answered with an error status.
    Registry(Box<RegistryError>),
    /// Credentials were refused, or none were available where needed.
    Unauthorized {
        /// The registry (or token realm) that refused.
        registry: String,
        /// What happened.
        detail: String,
    },
    /// A credential source failed (a token command that exited non-zero,
    /// a token source that answered nonsense): an auth failure that names
    /// the source.
    Credentials {
        /// The registry the credentials were for.
        registry: String,
        /// The source and what went wrong.
        source: crate::token_source::CredentialError,
    },
    /// The registry (or token server) broke the protocol: a malformed body,
    /// a missing header, a value out of range.
    InvalidResponse {
        /// What was being read.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// Content did not match its digest.
    DigestMismatch {
        /// The digest asked for.
        expected: Box<berth_reference::Digest>,
        /// The digest of what arrived.
        actual: Box<berth_reference::Digest>,
    },
    /// A body or header was larger than allowed.
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A redirect that berth will not follow.
    Redirect(crate::redirect::RedirectError),
    /// The connection failed, after the retry budget.
    Transport {
        /// The request's URL (redacted).
        url: String,
        /// The transport's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server at this address does not speak the registry API v2.
    NotV2 {
        /// The base URL that was pinged.
        url: String,
    },
    /// A pull source was blocked by the mirror configuration.
    Blocked {
        /// The reference that was blocked.
        reference: String,
    },
    /// Every mirror and the registry failed; one entry per attempt.
    AllSourcesFailed(Vec<(String, Error)>),
    /// The caller used the API wrongly (for example, fed a response when
    /// none was expected).
    Misuse(&'static str),
}

impl Error {
    /// Whether trying again later could help.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Registry(e) => e.is_temporary(),
            Error::Transport { .. } => true,
            Error::AllSourcesFailed(all) => all.iter().any(|(_, e)| e.is_temporary()),
            _ => false,
        }
    }

    /// What was not found, if that is what this error says.
    pub fn not_found(&self) -> Option<NotFound> {
        match self {
            Error::Registry(e) => e.not_found(),
            Error::AllSourcesFailed(all) => all.iter().find_map(|(_, e)| e.not_found()),
            _ => None,
        }
    }

    /// Whether this is an authentication failure.
    pub fn is_auth(&self) -> bool {
        match self {
            Error::Unauthorized { .. } | Error::Credentials { .. } => true,
            Error::Registry(e) => e.is_auth(),
            _ => false,
        }
    }

    pub(crate) fn mismatch(
        expected: berth_reference::Digest,
        actual: berth_reference::Digest,
    ) -> Error {
        Error::DigestMismatch {
            expected: Box::new(expected),
            actual: Box::new(actual),
        }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl fmt::Display) -> Error {
        Error::InvalidResponse {
            what,
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Registry(e) => e.fmt(f),
            Error::Unauthorized { registry, detail } => {
                write!(f, "unauthorized: {registry}: {detail}")
            }
            Error::Credentials { registry, source } => {
                write!(f, "unauthorized: no credentials for {registry}: {source}")
            }
            Error::InvalidResponse { what, detail } => {
                write!(f, "invalid {what} from the registry: {detail}")
            }
            Error::DigestMismatch { expected, actual } => {
                write!(f, "digest mismatch: expected {expected}, got {actual}")
            }
            Error::TooLarge { what, limit } => {
                write!(f, "{what} is larger than the limit of {limit} bytes")
            }
            Error::Redirect(e) => e.fmt(f),
            Error::Transport { url, source } => write!(f, "cannot reach {url}: {source}"),
            Error::NotV2 { url } => write!(
                f,
                "{url} does not speak the registry API v2 (the V1 API, retired by Docker, is not supported)"
            ),
            Error::Blocked { reference } => write!(
                f,
                "pulling {reference} is blocked by the registries configuration"
            ),
            Error::AllSourcesFailed(all) => {
                write!(f, "every source failed:")?;
                for (source, e) in all {
                    write!(f, " [{source}: {e}]")?;
                }
                Ok(())
            }
            Error::Misuse(what) => write!(f, "API misuse: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Registry(e) => Some(e.as_ref()),
            Error::Redirect(e) => Some(e),
            Error::Credentials { source, .. } => Some(source),
            Error::Transport { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str, subject: Subject, anonymous: bool) -> RegistryError {
        RegistryError::new(
            Method::GET,
            &"https://r.example/v2/a/manifests/x?_state=secret&n=1"
                .parse()
                .expect("uri"),
            StatusCode::from_u16(status).expect("status"),
            Bytes::copy_from_slice(body.as_bytes()),
            subject,
            anonymous,
        )
    }

    #[test]
    fn spec_error_bodies() {
        let e = err(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
            Subject::Tag,
            false,
        );
        assert_eq!(e.diagnostics[0].code, ErrorCode::ManifestUnknown);
        assert_eq!(e.diagnostics[0].detail.as_deref(), Some(r#"{"Tag":"x"}"#));
        assert_eq!(e.not_found(), Some(NotFound::Tag));
        assert!(!e.is_temporary());
        assert_eq!(
            e.url,
            "https://r.example/v2/a/manifests/x?_state=REDACTED&n=REDACTED"
        );
    }

    #[test]
    fn harbor_unknown_not_found() {
        let e = err(
            404,
            r#"{"errors":[{"code":"UNKNOWN","message":"artifact a:x not found"}]}"#,
            Subject::Manifest,
            false,
        );
        assert_eq!(e.not_found(), Some(NotFound::Manifest));
        let e = err(
            500,
            r#"{"errors":[{"code":"UNKNOWN","message":"artifact not found"}]}"#,
            Subject::Tag,
            false,
        );
        assert_eq!(e.not_found(), Some(NotFound::Tag));
    }

    #[test]
    fn anonymous_denials_say_what_they_may_mean() {
        let e = err(401, "", Subject::Tag, true);
        assert!(
            e.to_string()
                .starts_with("authentication required by r.example"),
            "{e}"
        );
        assert!(e.is_auth());
        let e = err(404, "", Subject::Tag, true);
        assert!(
            e.to_string()
                .starts_with("repository does not exist or may require authorization"),
            "{e}"
        );
        let e = err(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            Subject::Tag,
            true,
        );
        assert!(
            e.to_string().starts_with("GET "),
            "a named code is clear on its own: {e}"
        );
    }

    #[test]
    fn temporary_and_caps() {
        assert!(err(503, "", Subject::Blob, false).is_temporary());
        assert!(err(429, "", Subject::Blob, false).is_temporary());
        assert!(!err(501, "", Subject::Blob, false).is_temporary());
        let big = "x".repeat(ERROR_BODY_LIMIT * 2);
        assert_eq!(
            err(500, &big, Subject::Blob, false).body.len(),
            ERROR_BODY_LIMIT
        );
        assert!(
            err(400, "not json", Subject::Blob, false)
                .diagnostics
                .is_empty()
        );
    }

    #[test]
    fn url_credentials_are_never_printed() {
        let u: http::Uri = "https://user:pass@r.example/v2/".parse().expect("uri");
        assert_eq!(redact_url(&u), "https://r.example/v2/");
    }

    #[test]
    fn location_text_is_redacted_whether_or_not_it_parses() {
        for (raw, shown) in [
            (
                "https://u:p@s3.example/b/k?X-Amz-Signature=abc&X-Amz-Credential=AKIA#frag",
                "https://s3.example/b/k?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED",
            ),
            (
                "/v2/a/blobs/uploads/1?_state=s3cret",
                "/v2/a/blobs/uploads/1?_state=REDACTED",
            ),
            (
                "http://h ost/with space?token=s3cret",
                "http://h ost/with space?token=REDACTED",
            ),
            ("https://u:p@host", "https://host"),
        ] {
            assert_eq!(redact_url_text(raw), shown);
        }
    }
}
