//! The client's cookie jar: registries behind load balancers that pin a
//! session with `Set-Cookie` get their cookies back.
//!
//! Cookies are kept per host and port: a cookie goes back only to the
//! host that set it, even when it names a wider `Domain` (so a registry's
//! cookie never reaches the blob storage it redirects to, nor another
//! registry under the same domain). Within one host the usual rules
//! apply ([RFC 6265], by the `cookie_store` crate): path, expiry,
//! `Secure`. Nothing is saved: the jar lives as long as the client.
//!
//! [RFC 6265]: https://www.rfc-editor.org/rfc/rfc6265
//!
//! ```
//! use berth::cookies::HostCookieJar;
//! use berth::protocol::CookieJar;
//!
//! let jar = HostCookieJar::new();
//! let mut headers = http::HeaderMap::new();
//! headers.insert("set-cookie", "lb=a1; Path=/; Domain=example.com".parse()?);
//! jar.store_set_cookies(&"https://r.example.com/v2/".parse()?, &headers);
//! let to = |url: &str| jar.cookie_header(&url.parse().unwrap());
//! assert_eq!(to("https://r.example.com/v2/x/manifests/1").unwrap(), "lb=a1");
//! assert_eq!(to("https://storage.example.com/blob"), None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use berth_protocol::CookieJar;
use cookie_store::{CookieStore, RawCookie};
use http::{HeaderMap, HeaderValue, Uri};

/// The most hosts whose cookies are kept; cookies from further hosts are
/// dropped.
pub const MAX_COOKIE_HOSTS: usize = 256;
/// The most cookies kept per host (RFC 6265 asks for at least 50).
pub const MAX_COOKIES_PER_HOST: usize = 64;
/// The longest `Set-Cookie` value stored (RFC 6265 asks for 4096 bytes).
pub const MAX_COOKIE_BYTES: usize = 4096;

/// A cookie jar that keeps each host's cookies apart.
#[derive(Default)]
pub struct HostCookieJar {
    hosts: Mutex<HashMap<String, CookieStore>>,
}

impl fmt::Debug for HostCookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts = self.hosts.lock().map(|h| h.len()).unwrap_or(0);
        f.debug_struct("HostCookieJar")
            .field("hosts", &hosts)
            .finish_non_exhaustive()
    }
}

impl HostCookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many unexpired cookies the jar holds for `uri`'s host.
    pub fn count_for(&self, uri: &Uri) -> usize {
        let Some((key, _)) = key_and_url(uri) else {
            return 0;
        };
        self.hosts
            .lock()
            .ok()
            .and_then(|h| h.get(&key).map(|s| s.iter_unexpired().count()))
            .unwrap_or(0)
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        if let Ok(mut h) = self.hosts.lock() {
            h.clear();
        }
    }
}

/// The jar's key for a URL (`host:port`, the port made explicit) and the
/// URL in the form the cookie store takes.
fn key_and_url(uri: &Uri) -> Option<(String, url::Url)> {
    let scheme = uri.scheme_str()?;
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    })?;
    let url = url::Url::parse(&uri.to_string()).ok()?;
    Some((format!("{host}:{port}"), url))
}

impl CookieJar for HostCookieJar {
    fn cookie_header(&self, uri: &Uri) -> Option<HeaderValue> {
        let (key, url) = key_and_url(uri)?;
        let hosts = self.hosts.lock().ok()?;
        let store = hosts.get(&key)?;
        let value = store
            .get_request_values(&url)
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if value.is_empty() {
            return None;
        }
        let mut v = HeaderValue::from_str(&value).ok()?;
        // Session cookies are credentials of a kind: keep them out of logs.
        v.set_sensitive(true);
        Some(v)
    }

    fn store_set_cookies(&self, uri: &Uri, headers: &HeaderMap) {
        let Some((key, url)) = key_and_url(uri) else {
            return;
        };
        let cookies: Vec<RawCookie<'static>> = headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter(|v| v.len() <= MAX_COOKIE_BYTES)
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| RawCookie::parse(v.to_owned()).ok())
            // Kept for this host only, whatever `Domain` it names.
            .map(|mut c| {
                c.unset_domain();
                c
            })
            .collect();
        if cookies.is_empty() {
            return;
        }
        let Ok(mut hosts) = self.hosts.lock() else {
            return;
        };
        if !hosts.contains_key(&key) && hosts.len() >= MAX_COOKIE_HOSTS {
            return;
        }
        let store = hosts.entry(key).or_default();
        for cookie in cookies {
            let known = store.contains_any(
                url.host_str().unwrap_or_default(),
                cookie.path().unwrap_or("/"),
                cookie.name(),
            );
            if !known && store.iter_any().count() >= MAX_COOKIES_PER_HOST {
                continue;
            }
            store.store_response_cookies(std::iter::once(cookie), &url);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(jar: &HostCookieJar, url: &str, cookies: &[&str]) {
        let mut headers = HeaderMap::new();
        for c in cookies {
            headers.append(http::header::SET_COOKIE, c.parse().expect("value"));
        }
        jar.store_set_cookies(&url.parse().expect("uri"), &headers);
    }

    fn get(jar: &HostCookieJar, url: &str) -> Option<String> {
        jar.cookie_header(&url.parse().expect("uri"))
            .map(|v| v.to_str().expect("ascii").to_owned())
    }

    #[test]
    fn a_cookie_set_by_one_host_is_not_sent_to_another() {
        let jar = HostCookieJar::new();
        set(
            &jar,
            "https://a.example.com/v2/",
            &["lb=1; Path=/", "wide=2; Domain=example.com; Path=/"],
        );
        let mut a = get(&jar, "https://a.example.com/v2/x/blobs/sha256:1")
            .expect("cookies for a")
            .split("; ")
            .map(str::to_owned)
            .collect::<Vec<_>>();
        a.sort();
        assert_eq!(a, ["lb=1", "wide=2"]);
        assert_eq!(get(&jar, "https://b.example.com/v2/"), None, "host B");
        assert_eq!(
            get(&jar, "https://example.com/v2/"),
            None,
            "the parent domain"
        );
        assert_eq!(
            get(&jar, "https://a.example.com:8443/v2/"),
            None,
            "another port of the same host"
        );
        assert_eq!(
            get(&jar, "http://127.0.0.1:5000/v2/"),
            None,
            "nothing for an unrelated registry"
        );
        assert_eq!(
            get(&jar, "https://a.example.com:443/v2/")
                .as_deref()
                .map(|s| s.len()),
            Some("lb=1; wide=2".len()),
            "the default port is the same host"
        );
    }

    #[test]
    fn paths_expiry_and_secure_follow_rfc_6265() {
        let jar = HostCookieJar::new();
        set(
            &jar,
            "http://r.lan:5000/v2/",
            &[
                "p=1; Path=/v2/private",
                "gone=1; Max-Age=0",
                "sec=1; Secure",
                "lb=x",
                "not a cookie",
            ],
        );
        assert_eq!(get(&jar, "http://r.lan:5000/v2/").as_deref(), Some("lb=x"));
        let private = get(&jar, "http://r.lan:5000/v2/private/tags/list").expect("some");
        assert!(
            private.contains("p=1") && private.contains("lb=x"),
            "{private}"
        );
        // A later Set-Cookie replaces the value.
        set(&jar, "http://r.lan:5000/v2/", &["lb=y"]);
        assert_eq!(get(&jar, "http://r.lan:5000/v2/").as_deref(), Some("lb=y"));
        assert_eq!(
            jar.count_for(&"http://r.lan:5000/".parse().expect("uri")),
            3
        );
        // Secure cookies go over https (and to loopback, which is trusted).
        set(&jar, "https://r.lan:5000/v2/", &["s2=1; Secure"]);
        assert_eq!(
            get(&jar, "https://r.lan:5000/v2/").map(|v| v.contains("s2=1")),
            Some(true)
        );
        set(&jar, "http://127.0.0.1:5000/v2/", &["s3=1; Secure"]);
        assert_eq!(
            get(&jar, "http://127.0.0.1:5000/v2/").as_deref(),
            Some("s3=1")
        );
        jar.clear();
        assert_eq!(get(&jar, "http://r.lan:5000/v2/"), None);
    }

    #[test]
    fn a_peer_cannot_fill_the_jar_without_bound() {
        let jar = HostCookieJar::new();
        let many: Vec<String> = (0..500).map(|i| format!("c{i}=v")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        set(&jar, "https://r.example/", &refs);
        assert_eq!(
            jar.count_for(&"https://r.example/".parse().expect("uri")),
            MAX_COOKIES_PER_HOST
        );
        let huge = format!("big={}", "x".repeat(MAX_COOKIE_BYTES));
        set(&jar, "https://s.example/", &[&huge]);
        assert_eq!(get(&jar, "https://s.example/"), None);
        for i in 0..MAX_COOKIE_HOSTS + 10 {
            set(&jar, &format!("https://h{i}.example/"), &["a=1"]);
        }
        assert_eq!(
            get(&jar, &format!("https://h{}.example/", MAX_COOKIE_HOSTS + 5)),
            None
        );
    }
}
