//! Cookies between requests: a registry behind a load balancer that pins
//! a client's session with `Set-Cookie` needs them back on every request.
//!
//! The core decides when: every request an exchange sends (to the
//! registry, along a redirect, to the token server) asks the session's
//! [`CookieJar`] for the `Cookie` header of that URL, and every response
//! it reads gives the jar its `Set-Cookie` headers. The jar, which the
//! client supplies, decides what to keep; it must hand a cookie back only
//! to the host that set it, so a redirect to another host (blob storage)
//! never carries the registry's cookies.

use http::{HeaderMap, HeaderValue, Uri};

/// A store of cookies, consulted for every request and fed every
/// response. Implementations keep each host's cookies apart.
pub trait CookieJar: Send + Sync {
    /// The `Cookie` header for a request to `uri` (`None`: no cookie
    /// applies). Only cookies that `uri`'s host set.
    fn cookie_header(&self, uri: &Uri) -> Option<HeaderValue>;

    /// Keeps the cookies that a response from `uri` set with its
    /// `Set-Cookie` headers (`headers` are the response's).
    fn store_set_cookies(&self, uri: &Uri, headers: &HeaderMap);
}
