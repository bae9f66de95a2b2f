//! TLS settings: trust roots, per-host CAs and client certificates
//! (`certs.d`), and the insecure opt-in, folded into one certificate
//! verifier that dispatches on the server name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::BuildError;

/// Where a PEM blob comes from. `Debug` shows a path but never the
/// bytes: they may be a private key.
#[derive(Clone)]
pub(crate) enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            Pem::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

impl Pem {
    fn read(&self) -> Result<Vec<u8>, BuildError> {
        match self {
            Pem::Bytes(b) => Ok(b.clone()),
            Pem::File(path) => std::fs::read(path).map_err(|e| {
                BuildError::new("cannot read a TLS file")
                    .at(path)
                    .with_source(e)
            }),
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Pem::File(p) => Some(p),
            Pem::Bytes(_) => None,
        }
    }

    fn error(&self, message: impl Into<String>) -> BuildError {
        let e = BuildError::new(message);
        match self.path() {
            Some(p) => e.at(p),
            None => e,
        }
    }

    /// Every certificate in the PEM; at least one.
    pub(crate) fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, BuildError> {
        let bytes = self.read()?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error("malformed PEM certificate").with_source(e))?;
        if certs.is_empty() {
            return Err(self.error("no PEM certificate found"));
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, BuildError> {
        let bytes = self.read()?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
            self.error("no usable PEM private key (PKCS#8, PKCS#1 or SEC1)")
                .with_source(e)
        })
    }
}

/// A client certificate chain and its key.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) cert: Pem,
    pub(crate) key: Pem,
}

type LoadedIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

impl Identity {
    fn load(&self, provider: &CryptoProvider) -> Result<LoadedIdentity, BuildError> {
        let chain = self.cert.certificates()?;
        let key = self.key.private_key()?;
        // Refuse a key the provider cannot sign with now, not at handshake.
        provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| {
                self.key
                    .error("unsupported client private key")
                    .with_source(e)
            })?;
        Ok((chain, key))
    }
}

/// The key per-site settings are stored under: `host:port`, the host in
/// lower case without a trailing dot (IPv6 in brackets), the port as
/// written or `default_port`. Docker and containerd key `certs.d` and
/// insecure registries the same way: `reg.example` is port 443 only, and
/// `reg.example:5000` another site.
pub(crate) fn site_key(authority: &str, default_port: u16) -> String {
    let authority = authority.trim();
    let host = berth_protocol::endpoint::host_of(authority);
    let port = if authority.parse::<std::net::IpAddr>().is_ok() {
        None
    } else if let Some(rest) = authority.strip_prefix('[') {
        rest.split_once("]:").map(|(_, p)| p)
    } else {
        authority
            .rsplit_once(':')
            .map(|(_, p)| p)
            .filter(|p| p.bytes().all(|c| c.is_ascii_digit()))
    };
    let port = port
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(default_port);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        Ok(ip) => format!("{ip}:{port}"),
        Err(_) => format!("{}:{port}", host.trim_end_matches('.').to_ascii_lowercase()),
    }
}

/// The host part of a [`site_key`].
fn site_host(key: &str) -> &str {
    let host = key.rsplit_once(':').map_or(key, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The port TLS connections to a site use when it names none.
pub(crate) const HTTPS_PORT: u16 = 443;

/// Everything the builder gathered about TLS.
#[derive(Debug, Default)]
pub(crate) struct TlsSettings {
    pub(crate) webpki_roots: bool,
    pub(crate) native_roots: bool,
    pub(crate) extra_cas: Vec<Pem>,
    pub(crate) identity: Option<Identity>,
    pub(crate) host_cas: Vec<(String, Pem)>,
    pub(crate) host_identities: Vec<(String, Identity)>,
    pub(crate) certs_d: Option<Vec<PathBuf>>,
    pub(crate) insecure_hosts: Vec<String>,
}

/// The built TLS side: a config per site (`host:port`) with settings of
/// its own (CAs, a client certificate, insecure), one for the subdomains
/// of `*.` insecure entries, and the default for every other site.
pub(crate) struct TlsConfigs {
    pub(crate) default: ClientConfig,
    pub(crate) per_site: HashMap<String, ClientConfig>,
    /// The domains of `*.domain` insecure entries, and the config their
    /// subdomains get (on every port, as a registries.conf wildcard).
    pub(crate) insecure_wildcards: Option<(Vec<String>, ClientConfig)>,
    pub(crate) warnings: Vec<String>,
}

/// What one site has of its own.
#[derive(Default)]
struct Site {
    cas: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
    insecure: bool,
}

impl TlsSettings {
    pub(crate) fn build(&self) -> Result<TlsConfigs, BuildError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut warnings = Vec::new();

        let mut roots = RootCertStore::empty();
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if self.native_roots {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                warnings.push(format!("some system certificates could not be loaded: {e}"));
            }
            let (_, ignored) = roots.add_parsable_certificates(found.certs);
            if ignored > 0 {
                warnings.push(format!(
                    "{ignored} system certificates could not be parsed and are not trusted"
                ));
            }
        }
        for pem in &self.extra_cas {
            for cert in pem.certificates()? {
                roots
                    .add(cert)
                    .map_err(|e| pem.error("unusable CA certificate").with_source(e))?;
            }
        }
        if roots.is_empty() {
            return Err(BuildError::new(
                "no trusted root certificates: enable the webpki or system roots, or give a CA file",
            ));
        }

        // Per-site CAs and identities: certs.d first, then the explicit
        // ones (an explicit identity replaces a certs.d one).
        let mut sites: BTreeMap<String, Site> = BTreeMap::new();
        if let Some(dirs) = &self.certs_d {
            for dir in dirs {
                read_certs_d(dir, &mut sites)?;
            }
        }
        for (host, pem) in &self.host_cas {
            let site = sites.entry(site_key(host, HTTPS_PORT)).or_default();
            site.cas.extend(pem.certificates()?);
        }
        for (host, identity) in &self.host_identities {
            sites
                .entry(site_key(host, HTTPS_PORT))
                .or_default()
                .identity = Some(identity.clone());
        }
        let mut wildcards = Vec::new();
        for host in &self.insecure_hosts {
            match host.trim().strip_prefix("*.") {
                Some(domain) => wildcards.push(domain.trim_end_matches('.').to_ascii_lowercase()),
                None => {
                    sites
                        .entry(site_key(host, HTTPS_PORT))
                        .or_default()
                        .insecure = true
                }
            }
        }

        let webpki = |store: RootCertStore| {
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| {
                    BuildError::new("cannot build the certificate verifier").with_source(e)
                })
        };
        let verifier = |check: Option<Arc<WebPkiServerVerifier>>| {
            Arc::new(SiteVerifier {
                check,
                provider: provider.clone(),
            })
        };
        let make = |verifier: Arc<SiteVerifier>,
                    identity: Option<&Identity>|
         -> Result<ClientConfig, BuildError> {
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| BuildError::new("no usable TLS protocol version").with_source(e))?
                .dangerous()
                .with_custom_certificate_verifier(verifier);
            match identity {
                None => Ok(builder.with_no_client_auth()),
                Some(identity) => {
                    let (chain, key) = identity.load(&provider)?;
                    builder.with_client_auth_cert(chain, key).map_err(|e| {
                        identity
                            .cert
                            .error("unusable client certificate")
                            .with_source(e)
                    })
                }
            }
        };
        let checked = verifier(Some(webpki(roots.clone())?));
        let unchecked = verifier(None);
        let mut per_site = HashMap::new();
        for (key, site) in sites {
            let host = site_host(&key);
            let insecure = site.insecure
                || wildcards
                    .iter()
                    .any(|d| berth_protocol::endpoint::is_subdomain(host, d));
            let verifier = if insecure {
                unchecked.clone()
            } else if site.cas.is_empty() {
                checked.clone()
            } else {
                let mut store = roots.clone();
                for cert in site.cas {
                    store.add(cert).map_err(|e| {
                        BuildError::new(format!("unusable CA certificate for {key}")).with_source(e)
                    })?;
                }
                verifier(Some(webpki(store)?))
            };
            let identity = site.identity.as_ref().or(self.identity.as_ref());
            per_site.insert(key, make(verifier, identity)?);
        }
        let insecure_wildcards = if wildcards.is_empty() {
            None
        } else {
            Some((wildcards, make(unchecked, self.identity.as_ref())?))
        };
        Ok(TlsConfigs {
            default: make(checked, self.identity.as_ref())?,
            per_site,
            insecure_wildcards,
            warnings,
        })
    }
}

/// Reads one certs.d root: `<dir>/<host[:port]>/*.crt` are CAs for that
/// host, `<name>.cert` + `<name>.key` a client certificate (the first pair
/// by name wins). A root that does not exist is skipped.
fn read_certs_d(dir: &Path, sites: &mut BTreeMap<String, Site>) -> Result<(), BuildError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(BuildError::new("cannot read the certs.d directory")
                .at(dir)
                .with_source(e));
        }
    };
    let mut hosts = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            BuildError::new("cannot read the certs.d directory")
                .at(dir)
                .with_source(e)
        })?;
        if entry.path().is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            hosts.insert(name.to_owned());
        }
    }
    for host in hosts {
        let host_dir = dir.join(&host);
        let site = sites.entry(site_key(&host, HTTPS_PORT)).or_default();
        let mut files = BTreeSet::new();
        let listing = std::fs::read_dir(&host_dir).map_err(|e| {
            BuildError::new("cannot read a certs.d host directory")
                .at(&host_dir)
                .with_source(e)
        })?;
        for entry in listing {
            let entry = entry.map_err(|e| {
                BuildError::new("cannot read a certs.d host directory")
                    .at(&host_dir)
                    .with_source(e)
            })?;
            if let Some(name) = entry.file_name().to_str() {
                files.insert(name.to_owned());
            }
        }
        for name in &files {
            let path = host_dir.join(name);
            if name.ends_with(".crt") {
                let certs = Pem::File(path).certificates()?;
                site.cas.extend(certs);
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key_name = format!("{stem}.key");
                if !files.contains(&key_name) {
                    return Err(BuildError::new(format!(
                        "client certificate without its key: {key_name} is missing"
                    ))
                    .at(&path));
                }
                // The first pair by name (and the first root) wins.
                site.identity.get_or_insert_with(|| Identity {
                    cert: Pem::File(path),
                    key: Pem::File(host_dir.join(&key_name)),
                });
            } else if let Some(stem) = name.strip_suffix(".key") {
                let cert_name = format!("{stem}.cert");
                if !files.contains(&cert_name) {
                    return Err(BuildError::new(format!(
                        "client key without its certificate: {cert_name} is missing"
                    ))
                    .at(&path));
                }
            }
        }
    }
    Ok(())
}

/// Verifies a site's server certificates: against the roots (plus the
/// site's own CAs), or, for a site named insecure, not at all. The
/// handshake's signatures are checked either way.
struct SiteVerifier {
    /// `None`: the site is insecure.
    check: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for SiteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteVerifier")
            .field("insecure", &self.check.is_none())
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for SiteVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.check {
            None => Ok(ServerCertVerified::assertion()),
            Some(check) => {
                check.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_keys_keep_ports_and_drop_case() {
        assert_eq!(site_key("LocalHost:5000", 443), "localhost:5000");
        assert_eq!(site_key("localhost", 443), "localhost:443");
        assert_eq!(site_key("localhost:443", 443), "localhost:443");
        assert_eq!(site_key("[::1]:5000", 443), "[::1]:5000");
        assert_eq!(site_key("::1", 443), "[::1]:443");
        assert_eq!(site_key("[::1]", 443), "[::1]:443");
        assert_eq!(site_key("127.0.0.1:8443", 443), "127.0.0.1:8443");
        assert_eq!(site_key("Registry.Example.", 443), "registry.example:443");
        assert_eq!(site_key("reg.example", 80), "reg.example:80");
        assert_eq!(site_host("[::1]:5000"), "::1");
        assert_eq!(site_host("reg.example:443"), "reg.example");
    }

    #[test]
    fn a_missing_certs_d_root_is_empty() {
        let mut sites = BTreeMap::new();
        read_certs_d(Path::new("/nonexistent/berth/certs.d"), &mut sites).expect("skipped");
        assert!(sites.is_empty());
    }
}
