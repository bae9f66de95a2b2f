//! Following redirects, and deciding where credentials may go.
//!
//! Credentials (the `Authorization` header) follow a redirect only to the
//! same scheme, host and port. A redirect from https to plain http is
//! refused outright, and so is a chain longer than [`MAX_REDIRECTS`].

use std::fmt;

use http::Uri;

/// The longest chain of redirects followed.
pub const MAX_REDIRECTS: usize = 10;

/// A redirect berth will not follow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedirectError {
    /// More than [`MAX_REDIRECTS`] redirects in a row.
    TooMany {
        /// The URL the last one pointed to (redacted).
        last: String,
    },
    /// A redirect from https to plain http.
    Downgrade {
        /// The http URL (redacted).
        to: String,
    },
    /// The `Location` header was missing or not a URL.
    BadLocation {
        /// What was in the header, if anything (redacted).
        location: String,
    },
    /// A redirect to a scheme other than http(s).
    Scheme {
        /// The URL (redacted).
        to: String,
    },
}

impl fmt::Display for RedirectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectError::TooMany { last } => {
                write!(f, "more than {MAX_REDIRECTS} redirects (last to {last})")
            }
            RedirectError::Downgrade { to } => {
                write!(f, "refused a redirect from https to plain http ({to})")
            }
            RedirectError::BadLocation { location } => {
                write!(f, "a redirect with an invalid Location: {location:?}")
            }
            RedirectError::Scheme { to } => {
                write!(f, "refused a redirect to a non-http(s) URL ({to})")
            }
        }
    }
}

impl std::error::Error for RedirectError {}

/// Where a redirect goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The absolute URL to request next.
    pub to: Uri,
    /// Whether the `Authorization` header may be sent there: only to the
    /// same scheme, host and port as the request that was redirected.
    pub keep_credentials: bool,
}

/// Resolves a redirect from `from` (the URL just requested) to `location`
/// (the header's value), after `hops` redirects already followed.
pub fn follow(from: &Uri, location: Option<&str>, hops: usize) -> Result<Redirect, RedirectError> {
    let bad = |l: &str| RedirectError::BadLocation {
        location: crate::error::redact_url_text(l).chars().take(200).collect(),
    };
    let location = location.ok_or_else(|| bad(""))?;
    let to = resolve(from, location).ok_or_else(|| bad(location))?;
    if hops >= MAX_REDIRECTS {
        return Err(RedirectError::TooMany {
            last: crate::error::redact_url(&to),
        });
    }
    match to.scheme_str() {
        Some("https") => {}
        Some("http") if from.scheme_str() == Some("https") => {
            return Err(RedirectError::Downgrade {
                to: crate::error::redact_url(&to),
            });
        }
        Some("http") => {}
        _ => {
            return Err(RedirectError::Scheme {
                to: crate::error::redact_url(&to),
            });
        }
    }
    let keep_credentials = same_origin(from, &to);
    Ok(Redirect {
        to,
        keep_credentials,
    })
}

/// Whether two URLs have the same scheme, host and (effective) port.
pub fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |u: &Uri| {
        u.port_u16().unwrap_or(match u.scheme_str() {
            Some("http") => 80,
            _ => 443,
        })
    };
    a.scheme_str() == b.scheme_str()
        && a.host().map(str::to_ascii_lowercase) == b.host().map(str::to_ascii_lowercase)
        && port(a) == port(b)
}

/// Resolves a URL reference (absolute, scheme-relative `//host/path`,
/// absolute-path `/path` or relative `path`) against `base`.
pub fn resolve(base: &Uri, reference: &str) -> Option<Uri> {
    let reference = reference.trim();
    if reference.is_empty() || reference.bytes().any(|c| c.is_ascii_control() || c == b' ') {
        return None;
    }
    if reference.starts_with("http://") || reference.starts_with("https://") {
        let u: Uri = reference.parse().ok()?;
        return u.authority().is_some().then_some(u);
    }
    if let Some((scheme, _)) = reference.split_once("://")
        && scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-' || c == b'.')
    {
        // Another scheme: let the caller refuse it.
        return reference.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    if let Some(rest) = reference.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    let path_and_query = if reference.starts_with('/') {
        reference.to_owned()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{reference}")
    };
    format!("{scheme}://{authority}{path_and_query}")
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Uri {
        s.parse().expect("uri")
    }

    #[test]
    fn credentials_stay_on_the_same_origin() {
        let from = u("https://r.example/v2/a/blobs/sha256:x");
        let r = follow(&from, Some("https://s3.example/bucket/x?sig=1"), 0).expect("follows");
        assert!(!r.keep_credentials);
        let r = follow(&from, Some("/v2/a/blobs/other"), 0).expect("follows");
        assert!(r.keep_credentials);
        assert_eq!(r.to, u("https://r.example/v2/a/blobs/other"));
        let r = follow(&from, Some("https://r.example:443/x"), 0).expect("follows");
        assert!(r.keep_credentials, "default port is the same origin");
        let r = follow(&from, Some("https://r.example:8443/x"), 0).expect("follows");
        assert!(!r.keep_credentials);
        let r = follow(&from, Some("//cdn.example/x"), 0).expect("follows");
        assert_eq!(r.to, u("https://cdn.example/x"));
        assert!(!r.keep_credentials);
    }

    #[test]
    fn refusals() {
        let from = u("https://r.example/v2/x");
        assert!(matches!(
            follow(&from, Some("http://r.example/x"), 0),
            Err(RedirectError::Downgrade { .. })
        ));
        assert!(matches!(
            follow(&from, Some("https://r.example/x"), 10),
            Err(RedirectError::TooMany { .. })
        ));
        assert!(matches!(
            follow(&from, None, 0),
            Err(RedirectError::BadLocation { .. })
        ));
        assert!(matches!(
            follow(&from, Some("ftp://files.example/x"), 0),
            Err(RedirectError::Scheme { .. })
        ));
        assert!(follow(&from, Some("file:///etc/passwd"), 0).is_err());
        assert!(matches!(
            follow(&from, Some("https://a b"), 0),
            Err(RedirectError::BadLocation { .. })
        ));
        // A presigned URL the server broke keeps its signature to itself.
        let e = follow(
            &from,
            Some("https://s3 .example/k?X-Amz-Signature=s3cret"),
            0,
        )
        .expect_err("not a URL");
        assert!(matches!(e, RedirectError::BadLocation { .. }));
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let plain = u("http://127.0.0.1:5000/v2/x");
        assert!(
            follow(&plain, Some("http://127.0.0.1:5000/y"), 0).is_ok(),
            "http to http is fine"
        );
    }

    #[test]
    fn relative_references() {
        let base = u("https://r.example/v2/a/tags/list?n=1");
        assert_eq!(
            resolve(&base, "list?n=2&last=b"),
            Some(u("https://r.example/v2/a/tags/list?n=2&last=b"))
        );
    }
}
