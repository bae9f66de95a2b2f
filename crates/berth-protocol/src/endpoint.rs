//! Where a registry lives: the API host for a reference's domain, and the
//! schemes to try.

use core::net::IpAddr;
use std::fmt;

/// The API host of Docker Hub.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The key Docker Hub's credentials are stored under in `config.json`.
pub const DOCKER_HUB_CREDENTIALS_KEY: &str = "https://index.docker.io/v1/";

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TLS.
    Https,
    /// Plain HTTP: only for hosts named insecure, and for loopback.
    Http,
}

impl Scheme {
    /// `"https"` or `"http"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }

    /// The port the scheme implies.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
        }
    }
}

/// One way to reach a registry: a scheme and an authority (`host[:port]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The registry as references name it (`docker.io`).
    pub registry: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Where requests go (`registry-1.docker.io`, `localhost:5000`).
    pub authority: String,
    /// Whether TLS certificates are not verified (only for hosts the user
    /// named insecure).
    pub skip_tls_verify: bool,
}

impl Endpoint {
    /// `scheme://authority`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.authority)
    }

    /// A URL on this endpoint for `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> Result<http::Uri, http::Error> {
        http::Uri::builder()
            .scheme(self.scheme.as_str())
            .authority(self.authority.as_str())
            .path_and_query(path_and_query)
            .build()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_url())
    }
}

/// The API host for a reference's domain, over https: Docker Hub's names
/// all go to `registry-1.docker.io`; https's default port is dropped
/// (`host:443` is `host`), any other port is kept as written (`host:80`
/// over https is port 80).
pub fn api_authority(domain: &str) -> &str {
    authority_for(domain, Scheme::Https)
}

/// The authority to reach a reference's domain at over `scheme`: Docker
/// Hub's API host, or the domain as written less the scheme's default port
/// (`http://host:80` is `http://host`).
fn authority_for(domain: &str, scheme: Scheme) -> &str {
    match canonical_registry(domain) {
        "docker.io" => DOCKER_HUB_API_HOST,
        _ => strip_port(domain, scheme.default_port()),
    }
}

/// `authority` without `:port` at its end (never cutting into a bare IPv6
/// address).
fn strip_port(authority: &str, port: u16) -> &str {
    match authority.rsplit_once(':') {
        Some((host, p))
            if *p == *port.to_string()
                && !host.is_empty()
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => authority,
    }
}

/// The one name of a registry for credentials, token caches and connection
/// reuse: Docker Hub's aliases (`index.docker.io`, `registry-1.docker.io`,
/// `www.docker.io`, `registry.hub.docker.com`) are `docker.io`; a default
/// port is dropped (`host:443`, https's, and `host:80`, http's, are
/// `host`).
pub fn canonical_registry(domain: &str) -> &str {
    match domain {
        "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "www.docker.io"
        | "registry.hub.docker.com" => "docker.io",
        other => strip_port(strip_port(other, 443), 80),
    }
}

/// Whether `host` (without port) is a subdomain of `domain`, as a
/// `*.domain` wildcard covers it; case-insensitive.
pub fn is_subdomain(host: &str, domain: &str) -> bool {
    let Some(cut) = host.len().checked_sub(domain.len()) else {
        return false;
    };
    match (host.get(..cut), host.get(cut..)) {
        (Some(sub), Some(tail)) => {
            sub.len() > 1 && sub.ends_with('.') && tail.eq_ignore_ascii_case(domain)
        }
        _ => false,
    }
}

/// The host without its port (`[::1]:5000` is `::1`).
pub fn host_of(authority: &str) -> &str {
    if authority.parse::<IpAddr>().is_ok() {
        return authority;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    }
}

/// Whether the authority's host is `localhost` or a loopback address. Not
/// `*.localhost`: those names reach loopback only where the resolver says
/// so (many send them to DNS), and plain http with credentials follows
/// this answer, as Docker's and containerd's does.
pub fn is_loopback(authority: &str) -> bool {
    let host = host_of(authority);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Which registries are insecure (plain http allowed, TLS not verified), by
/// authority as the user wrote them (`HOST[:PORT]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    insecure: Vec<String>,
}

impl EndpointPolicy {
    /// A policy with no insecure registries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names `authority` insecure, exactly as written, as Docker matches
    /// `insecure-registries`: `reg.example:5000` is that port only, and
    /// `reg.example` is the default ports only (443, and 80 for plain
    /// http), not `reg.example:5000`. `*.example.com` covers every
    /// subdomain of example.com (as a registries.conf wildcard prefix
    /// does).
    pub fn insecure(mut self, authority: impl Into<String>) -> Self {
        self.insecure.push(authority.into());
        self
    }

    /// Whether the user named this authority insecure.
    pub fn is_insecure(&self, authority: &str) -> bool {
        let canonical = canonical_registry(authority);
        self.insecure.iter().any(|i| {
            if let Some(domain) = i.strip_prefix("*.") {
                return is_subdomain(host_of(canonical), domain);
            }
            canonical_registry(i).eq_ignore_ascii_case(canonical)
        })
    }

    /// Whether plain http may carry credentials to this authority: only
    /// loopback or a host named insecure.
    pub fn allows_plain_http(&self, authority: &str) -> bool {
        is_loopback(authority) || self.is_insecure(authority)
    }

    /// The endpoints to try for a reference's domain, in order. Docker's
    /// rule: https first; for an insecure host, https without verification
    /// and then plain http; for a loopback host, https and then http.
    pub fn endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let registry = canonical_registry(domain).to_owned();
        let authority = authority_for(domain, Scheme::Https).to_owned();
        let insecure = self.is_insecure(domain);
        let loopback = is_loopback(&authority);
        let https = Endpoint {
            registry: registry.clone(),
            scheme: Scheme::Https,
            authority,
            skip_tls_verify: insecure,
        };
        if insecure || loopback {
            let http = Endpoint {
                registry,
                scheme: Scheme::Http,
                authority: authority_for(domain, Scheme::Http).to_owned(),
                skip_tls_verify: false,
            };
            vec![https, http]
        } else {
            vec![https]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_aliases_are_one_registry() {
        for d in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "www.docker.io",
        ] {
            assert_eq!(canonical_registry(d), "docker.io");
            assert_eq!(api_authority(d), DOCKER_HUB_API_HOST);
        }
        assert_eq!(canonical_registry("ghcr.io:443"), "ghcr.io");
        assert_eq!(canonical_registry("ghcr.io:8443"), "ghcr.io:8443");
        assert_eq!(canonical_registry("registry.hub.docker.com"), "docker.io");
    }

    #[test]
    fn default_ports_are_one_registry_but_reached_as_written() {
        for alias in ["myreg.lan", "myreg.lan:443", "myreg.lan:80"] {
            assert_eq!(canonical_registry(alias), "myreg.lan", "{alias}");
        }
        for other in [
            "myreg.lan:8080",
            "myreg.lan:4430",
            "myreg.lan:180",
            "[::1]:5000",
        ] {
            assert_eq!(canonical_registry(other), other);
        }
        assert_eq!(canonical_registry("[::1]:80"), "[::1]");
        assert_eq!(canonical_registry("::80"), "::80", "not a port");
        let p = EndpointPolicy::new().insecure("myreg.lan");
        let urls = |d: &str| {
            p.endpoints(d)
                .iter()
                .map(Endpoint::base_url)
                .collect::<Vec<_>>()
        };
        assert_eq!(urls("myreg.lan"), ["https://myreg.lan", "http://myreg.lan"]);
        assert_eq!(
            urls("myreg.lan:443"),
            ["https://myreg.lan", "http://myreg.lan:443"],
            "443 is https's default only"
        );
        assert_eq!(
            urls("myreg.lan:80"),
            ["https://myreg.lan:80", "http://myreg.lan"],
            "https on port 80 is tried as written; http://host:80 is http://host"
        );
        for e in p.endpoints("myreg.lan:80") {
            assert_eq!(e.registry, "myreg.lan");
        }
        assert_eq!(api_authority("myreg.lan:80"), "myreg.lan:80");
        assert_eq!(api_authority("www.docker.io"), DOCKER_HUB_API_HOST);
    }

    #[test]
    fn schemes_to_try() {
        let p = EndpointPolicy::new()
            .insecure("myreg.lan:5000")
            .insecure("other.lan");
        let e = p.endpoints("ghcr.io");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].base_url(), "https://ghcr.io");
        assert!(!e[0].skip_tls_verify);
        let e = p.endpoints("myreg.lan:5000");
        assert_eq!(
            e.iter().map(Endpoint::base_url).collect::<Vec<_>>(),
            ["https://myreg.lan:5000", "http://myreg.lan:5000"]
        );
        assert!(e[0].skip_tls_verify);
        assert!(
            !p.is_insecure("other.lan:1234"),
            "a host without port is its default ports only"
        );
        assert!(p.is_insecure("other.lan") && p.is_insecure("OTHER.lan:443"));
        assert!(p.is_insecure("other.lan:80"));
        assert!(!p.is_insecure("myreg.lan:5001"));
        let wild = EndpointPolicy::new().insecure("*.corp.example");
        assert!(wild.is_insecure("reg.corp.example"));
        assert!(wild.is_insecure("a.b.CORP.example:5000"));
        assert!(!wild.is_insecure("corp.example"));
        assert!(!wild.is_insecure("evilcorp.example"));
        assert!(!wild.is_insecure("corp.example.evil"));
        let e = p.endpoints("127.0.0.1:5000");
        assert_eq!(e[1].scheme, Scheme::Http);
        assert!(
            !e[0].skip_tls_verify,
            "loopback is not insecure unless named"
        );
        assert_eq!(
            p.endpoints("docker.io")[0].base_url(),
            "https://registry-1.docker.io"
        );
    }

    #[test]
    fn loopback() {
        for l in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:1",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(l), "{l}");
        }
        for n in [
            "example.com",
            "10.0.0.1:5000",
            "[fe80::1]",
            "localhost.example.com",
            "foo.localhost",
        ] {
            assert!(!is_loopback(n), "{n}");
        }
    }
}
