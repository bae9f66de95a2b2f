//! TLS settings: trust roots, per-host CAs and client certificates
//! (`certs.d`), and the insecure opt-in, folded into one certificate
//! verifier that dispatches on the server name.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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

/// The key per-host settings are stored under: the host name in lower
/// case, without port or IPv6 brackets. rustls names the server without
/// its port, so every port of a host shares its settings.
pub(crate) fn host_key(authority: &str) -> String {
    let host = berth_protocol::endpoint::host_of(authority.trim());
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.trim_end_matches('.').to_ascii_lowercase(),
    }
}

fn server_name_key(name: &ServerName<'_>) -> String {
    host_key(&name.to_str())
}

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

/// The built TLS side: one config for hosts without their own client
/// certificate, one per host that has one. All share one verifier.
pub(crate) struct TlsConfigs {
    pub(crate) default: ClientConfig,
    pub(crate) per_host: HashMap<String, ClientConfig>,
    pub(crate) warnings: Vec<String>,
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

        // Per-host CAs and identities: certs.d first, then the explicit
        // ones (an explicit identity replaces a certs.d one).
        let mut host_cas: BTreeMap<String, Vec<CertificateDer<'static>>> = BTreeMap::new();
        let mut host_identities: BTreeMap<String, Identity> = BTreeMap::new();
        if let Some(dirs) = &self.certs_d {
            for dir in dirs {
                read_certs_d(dir, &mut host_cas, &mut host_identities)?;
            }
        }
        for (host, pem) in &self.host_cas {
            host_cas
                .entry(host_key(host))
                .or_default()
                .extend(pem.certificates()?);
        }
        for (host, identity) in &self.host_identities {
            host_identities.insert(host_key(host), identity.clone());
        }

        let webpki = |store: RootCertStore| {
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| {
                    BuildError::new("cannot build the certificate verifier").with_source(e)
                })
        };
        let mut per_host_verifiers = HashMap::new();
        for (host, cas) in host_cas {
            let mut store = roots.clone();
            for cert in cas {
                store.add(cert).map_err(|e| {
                    BuildError::new(format!("unusable CA certificate for {host}")).with_source(e)
                })?;
            }
            per_host_verifiers.insert(host, webpki(store)?);
        }
        let verifier = Arc::new(HostVerifier {
            default: webpki(roots)?,
            per_host: per_host_verifiers,
            insecure: self.insecure_hosts.iter().map(|h| host_key(h)).collect(),
            provider: provider.clone(),
        });

        let make = |identity: Option<&Identity>| -> Result<ClientConfig, BuildError> {
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| BuildError::new("no usable TLS protocol version").with_source(e))?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone());
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
        let default = make(self.identity.as_ref())?;
        let mut per_host = HashMap::new();
        for (host, identity) in &host_identities {
            per_host.insert(host.clone(), make(Some(identity))?);
        }
        Ok(TlsConfigs {
            default,
            per_host,
            warnings,
        })
    }
}

/// Reads one certs.d root: `<dir>/<host[:port]>/*.crt` are CAs for that
/// host, `<name>.cert` + `<name>.key` a client certificate (the first pair
/// by name wins). A root that does not exist is skipped.
fn read_certs_d(
    dir: &Path,
    host_cas: &mut BTreeMap<String, Vec<CertificateDer<'static>>>,
    host_identities: &mut BTreeMap<String, Identity>,
) -> Result<(), BuildError> {
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
        let key = host_key(&host);
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
                host_cas.entry(key.clone()).or_default().extend(certs);
            } else if let Some(stem) = name.strip_suffix(".cert") {
                let key_name = format!("{stem}.key");
                if !files.contains(&key_name) {
                    return Err(BuildError::new(format!(
                        "client certificate without its key: {key_name} is missing"
                    ))
                    .at(&path));
                }
                host_identities
                    .entry(key.clone())
                    .or_insert_with(|| Identity {
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

/// Verifies server certificates by server name: hosts named insecure are
/// accepted as they are; hosts with their own CAs are verified against the
/// roots plus those CAs; every other host against the roots.
struct HostVerifier {
    default: Arc<WebPkiServerVerifier>,
    per_host: HashMap<String, Arc<WebPkiServerVerifier>>,
    insecure: HashSet<String>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for HostVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostVerifier")
            .field("hosts_with_cas", &self.per_host.keys().collect::<Vec<_>>())
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for HostVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let key = server_name_key(server_name);
        if self.insecure.contains(&key) {
            return Ok(ServerCertVerified::assertion());
        }
        self.per_host
            .get(&key)
            .unwrap_or(&self.default)
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
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
    fn host_keys_drop_ports_and_case() {
        assert_eq!(host_key("LocalHost:5000"), "localhost");
        assert_eq!(host_key("localhost"), "localhost");
        assert_eq!(host_key("[::1]:5000"), "::1");
        assert_eq!(host_key("::1"), "::1");
        assert_eq!(host_key("127.0.0.1:443"), "127.0.0.1");
        assert_eq!(host_key("Registry.Example."), "registry.example");
    }

    #[test]
    fn a_missing_certs_d_root_is_empty() {
        let mut cas = BTreeMap::new();
        let mut ids = BTreeMap::new();
        read_certs_d(Path::new("/nonexistent/berth/certs.d"), &mut cas, &mut ids).expect("skipped");
        assert!(cas.is_empty() && ids.is_empty());
    }
}
