//! HTTP proxies: which requests go through one, and how.

use base64::Engine as _;
use http::{HeaderValue, Uri};

use crate::error::BuildError;

/// Which proxies to use. Built by the caller, from its own settings or
/// from the conventional environment variables with
/// [`ProxyConfig::from_env`] (the library never reads the environment on
/// its own).
///
/// `https://` requests go through an HTTP `CONNECT` tunnel to the `https`
/// proxy (TLS stays end to end); plain `http://` requests go to the `http`
/// proxy in absolute form. Loopback hosts (`localhost`, `*.localhost`,
/// `127.0.0.0/8`, `::1`) never go through a proxy.
///
/// Proxy URLs are `http://[user:password@]host[:port]` (the port defaults
/// to 80; credentials are sent as `Proxy-Authorization: Basic`).
///
/// Its `Debug` output shows the proxy URLs without their credentials.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// The proxy for `https://` requests.
    pub https: Option<Uri>,
    /// The proxy for `http://` requests.
    pub http: Option<Uri>,
    /// Hosts that are reached directly: `*` (everything), a host name that
    /// also covers its subdomains (`example.com`, `.example.com`,
    /// `*.example.com`), an IP address, any of these with `:port` to match
    /// that port only.
    pub no_proxy: Vec<String>,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("https", &self.https.as_ref().map(redact))
            .field("http", &self.http.as_ref().map(redact))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyConfig {
    /// No proxy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `https://` requests through `proxy`.
    pub fn with_https(mut self, proxy: Uri) -> Self {
        self.https = Some(proxy);
        self
    }

    /// Sends `http://` requests through `proxy`.
    pub fn with_http(mut self, proxy: Uri) -> Self {
        self.http = Some(proxy);
        self
    }

    /// Reaches hosts matching `pattern` directly (see
    /// [`no_proxy`](Self::no_proxy)).
    pub fn with_no_proxy(mut self, pattern: impl Into<String>) -> Self {
        self.no_proxy.push(pattern.into());
        self
    }

    /// Reads `HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy` and
    /// `NO_PROXY`/`no_proxy` (upper case first; an empty value is unset). A
    /// proxy without a scheme (`proxy:3128`) is taken as `http://`.
    pub fn from_env() -> Result<Self, BuildError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `var`.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, BuildError> {
        let get = |upper: &str, lower: &str| {
            var(upper)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| var(lower).filter(|v| !v.trim().is_empty()))
        };
        let parse = |name: &str, value: String| -> Result<Uri, BuildError> {
            let value = value.trim();
            let with_scheme = if value.contains("://") {
                value.to_owned()
            } else {
                format!("http://{value}")
            };
            with_scheme
                .parse::<Uri>()
                .map_err(|e| BuildError::new(format!("{name} is not a URL")).with_source(e))
        };
        let https = get("HTTPS_PROXY", "https_proxy")
            .map(|v| parse("HTTPS_PROXY", v))
            .transpose()?;
        let http = get("HTTP_PROXY", "http_proxy")
            .map(|v| parse("HTTP_PROXY", v))
            .transpose()?;
        let no_proxy = get("NO_PROXY", "no_proxy")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(ProxyConfig {
            https,
            http,
            no_proxy,
        })
    }

    /// Whether a request to `host` (a name or an IP address, IPv6 with or
    /// without brackets) on `port` bypasses the proxy.
    pub fn bypasses(&self, host: &str, port: u16) -> bool {
        let host = normalize_host(host);
        if is_loopback_host(&host) {
            return true;
        }
        self.no_proxy
            .iter()
            .any(|pattern| no_proxy_matches(pattern, &host, port))
    }
}

/// One proxy, validated.
#[derive(Debug, Clone)]
pub(crate) struct Proxy {
    /// `http://host:port`, without credentials.
    pub(crate) uri: Uri,
    /// `host:port`, for messages.
    pub(crate) authority: String,
    /// `Basic ...` when the URL had credentials.
    pub(crate) auth: Option<HeaderValue>,
}

/// How one request travels.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    Direct,
    /// Plain http in absolute form to the proxy.
    Forward(Proxy),
    /// A `CONNECT` tunnel through the proxy.
    Tunnel(Proxy),
}

/// The validated proxy settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProxyRules {
    config: ProxyConfig,
    https: Option<Proxy>,
    http: Option<Proxy>,
}

impl ProxyRules {
    pub(crate) fn new(config: ProxyConfig) -> Result<Self, BuildError> {
        let https = config.https.as_ref().map(validate).transpose()?;
        let http = config.http.as_ref().map(validate).transpose()?;
        Ok(ProxyRules {
            config,
            https,
            http,
        })
    }

    /// The route for a request to `uri`.
    pub(crate) fn route(&self, uri: &Uri) -> Route {
        let https = uri.scheme_str() == Some("https");
        let proxy = if https { &self.https } else { &self.http };
        let Some(proxy) = proxy else {
            return Route::Direct;
        };
        let Some(host) = uri.host() else {
            return Route::Direct;
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if self.config.bypasses(host, port) {
            Route::Direct
        } else if https {
            Route::Tunnel(proxy.clone())
        } else {
            Route::Forward(proxy.clone())
        }
    }
}

fn validate(uri: &Uri) -> Result<Proxy, BuildError> {
    let redacted = redact(uri);
    match uri.scheme_str() {
        Some("http") | None => {}
        Some(other) => {
            return Err(BuildError::new(format!(
                "proxy {redacted}: the scheme {other} is not supported (only http:// proxies)"
            )));
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| BuildError::new(format!("proxy {redacted} has no host")))?;
    let host = authority.host();
    let port = authority.port_u16().unwrap_or(80);
    let host_port = format!("{host}:{port}");
    let clean = format!("http://{host_port}")
        .parse::<Uri>()
        .map_err(|e| BuildError::new(format!("proxy {redacted} is not a URL")).with_source(e))?;
    let auth = match authority.as_str().rsplit_once('@') {
        Some((userinfo, _)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let raw = format!("{}:{}", percent_decode(user), percent_decode(password));
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
            let mut value = HeaderValue::try_from(format!("Basic {encoded}")).map_err(|e| {
                BuildError::new(format!("proxy {redacted}: bad credentials")).with_source(e)
            })?;
            value.set_sensitive(true);
            Some(value)
        }
        None => None,
    };
    Ok(Proxy {
        uri: clean,
        authority: host_port,
        auth,
    })
}

/// The proxy URL without its credentials, for messages.
fn redact(uri: &Uri) -> String {
    match uri.authority() {
        Some(a) => match a.as_str().rsplit_once('@') {
            Some((_, hostport)) => format!("http://***@{hostport}"),
            None => format!("http://{a}"),
        },
        None => uri.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Lower case, without IPv6 brackets or a trailing dot.
fn normalize_host(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn no_proxy_matches(pattern: &str, host: &str, port: u16) -> bool {
    let pattern = pattern.trim();
    if pattern == "*" {
        return true;
    }
    // An optional `:port` (not inside a bare IPv6 address).
    let (pattern, want_port) = split_port(pattern);
    if want_port.is_some_and(|p| p != port) {
        return false;
    }
    let pattern = normalize_host(pattern);
    if pattern.is_empty() {
        return false;
    }
    // A CIDR block matches hosts written as addresses in it (no lookup,
    // as curl and Go's proxy rules do).
    if let Some((net, bits)) = pattern.split_once('/') {
        return match (
            net.parse::<std::net::IpAddr>(),
            bits.parse::<u8>(),
            host.parse::<std::net::IpAddr>(),
        ) {
            (Ok(net), Ok(bits), Ok(ip)) => in_block(net, bits, ip),
            _ => false,
        };
    }
    if let (Ok(a), Ok(b)) = (
        pattern.parse::<std::net::IpAddr>(),
        host.parse::<std::net::IpAddr>(),
    ) {
        return a == b;
    }
    let suffix = pattern
        .strip_prefix("*.")
        .or_else(|| pattern.strip_prefix('.'))
        .unwrap_or(&pattern);
    host == suffix
        || host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Whether `ip` is in the block `net/bits` (IPv4 in IPv4 blocks, IPv6 in
/// IPv6 ones; a prefix longer than the address matches nothing).
fn in_block(net: std::net::IpAddr, bits: u8, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

fn split_port(pattern: &str) -> (&str, Option<u16>) {
    if let Some(rest) = pattern.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port);
        }
        return (pattern, None);
    }
    match pattern.rsplit_once(':') {
        // One colon: host:port. Several: a bare IPv6 address.
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (pattern, None),
        },
        _ => (pattern, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(no_proxy: &[&str]) -> ProxyConfig {
        ProxyConfig {
            https: None,
            http: None,
            no_proxy: no_proxy.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn debug_output_hides_proxy_credentials() {
        let config = ProxyConfig::new()
            .with_https(
                "http://user:s3cret@proxy.example:3128"
                    .parse()
                    .expect("uri"),
            )
            .with_http("http://other:hunter2@proxy.example".parse().expect("uri"));
        let rules = ProxyRules::new(config.clone()).expect("valid");
        for shown in [format!("{config:?}"), format!("{rules:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("user"), "{shown}");
            assert!(shown.contains("proxy.example:3128"), "{shown}");
        }
    }

    #[test]
    fn loopback_never_proxied() {
        let c = config(&[]);
        for host in [
            "localhost",
            "LOCALHOST",
            "a.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
        ] {
            assert!(c.bypasses(host, 443), "{host}");
        }
        assert!(!c.bypasses("example.com", 443));
        assert!(!c.bypasses("10.0.0.1", 443));
    }

    #[test]
    fn no_proxy_patterns() {
        let c = config(&[
            "example.com",
            ".corp.net",
            "*.svc",
            "10.1.2.3",
            "reg.io:5000",
            "[fd00::1]",
        ]);
        assert!(c.bypasses("example.com", 443));
        assert!(c.bypasses("a.b.example.com", 443));
        assert!(!c.bypasses("notexample.com", 443));
        assert!(c.bypasses("corp.net", 443));
        assert!(c.bypasses("x.corp.net", 443));
        assert!(c.bypasses("x.svc", 443));
        assert!(c.bypasses("10.1.2.3", 443));
        assert!(!c.bypasses("10.1.2.4", 443));
        assert!(c.bypasses("reg.io", 5000));
        assert!(!c.bypasses("reg.io", 443));
        assert!(c.bypasses("fd00::1", 443));
        assert!(config(&["*"]).bypasses("anything.example", 1));
    }

    #[test]
    fn no_proxy_cidr_blocks() {
        let c = config(&[
            "10.0.0.0/8",
            "192.168.1.0/24:5000",
            "fd00::/8",
            "172.16.0.1/0x",
        ]);
        assert!(c.bypasses("10.1.2.3", 443));
        assert!(c.bypasses("10.255.255.255", 80));
        assert!(!c.bypasses("11.0.0.1", 443));
        assert!(c.bypasses("192.168.1.7", 5000));
        assert!(!c.bypasses("192.168.1.7", 443), "the block's port only");
        assert!(!c.bypasses("192.168.2.7", 5000));
        assert!(c.bypasses("fd12::1", 443));
        assert!(c.bypasses("[fd12::1]", 443));
        assert!(!c.bypasses("fe80::1", 443));
        assert!(
            !c.bypasses("172.16.0.1", 443),
            "a malformed block matches nothing"
        );
        assert!(!c.bypasses("ten.example", 443), "names are not looked up");
        assert!(config(&["0.0.0.0/0"]).bypasses("203.0.113.9", 443));
        assert!(!config(&["0.0.0.0/0"]).bypasses("2001:db8::1", 443));
        assert!(!config(&["10.0.0.0/33"]).bypasses("10.0.0.1", 443));
        assert!(config(&["::/0"]).bypasses("2001:db8::1", 443));
    }

    #[test]
    fn from_lookup_reads_upper_then_lower() {
        let c = ProxyConfig::from_lookup(|k| match k {
            "HTTPS_PROXY" => Some("proxy.corp:3128".to_owned()),
            "http_proxy" => Some("http://user:p%40ss@proxy.corp:8080".to_owned()),
            "no_proxy" => Some(" a.com, ,b.org ".to_owned()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(
            c.https.as_ref().map(|u| u.to_string()).as_deref(),
            Some("http://proxy.corp:3128/")
        );
        assert_eq!(c.no_proxy, ["a.com", "b.org"]);
        let rules = ProxyRules::new(c).expect("valid");
        let Route::Forward(p) = rules.route(&"http://reg.example/v2/".parse().expect("uri")) else {
            panic!("http goes through the http proxy");
        };
        assert_eq!(p.authority, "proxy.corp:8080");
        let auth = p.auth.expect("credentials");
        // base64("user:p@ss")
        assert_eq!(auth.to_str().expect("ascii"), "Basic dXNlcjpwQHNz");
        assert!(matches!(
            rules.route(&"https://reg.example/v2/".parse().expect("uri")),
            Route::Tunnel(_)
        ));
        assert!(matches!(
            rules.route(&"https://a.com/v2/".parse().expect("uri")),
            Route::Direct
        ));
        assert!(matches!(
            rules.route(&"https://localhost:5000/v2/".parse().expect("uri")),
            Route::Direct
        ));
    }

    #[test]
    fn unsupported_proxy_scheme_is_an_error() {
        let c = ProxyConfig::new().with_https("socks5://p:1080".parse().expect("uri"));
        let err = ProxyRules::new(c).expect_err("socks is refused");
        assert!(err.to_string().contains("socks5"));
    }
}
