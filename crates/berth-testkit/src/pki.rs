//! A certificate authority made at test time: a server certificate for
//! 127.0.0.1 and localhost, and a signing key with its certificate for the
//! token server.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// PEM text of a certificate and its key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

/// A test CA and what it issued.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate (trust this).
    pub ca: Issued,
    /// A server certificate for `localhost`, `127.0.0.1` and `::1`.
    pub server: Issued,
    /// A self-signed signing certificate (ECDSA P-256) for tokens.
    pub token_signer: Issued,
}

fn issued(cert: &rcgen::Certificate, key: &KeyPair) -> Issued {
    Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

impl Pki {
    /// A new CA with its certificates.
    pub fn new() -> Result<Pki, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "berth test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])?;
        server_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server_params
            .subject_alt_names
            .push(SanType::IpAddress("::1".parse().expect("an IPv6 literal")));
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &ca_cert, &ca_key)?;

        let signer_key = KeyPair::generate()?;
        let mut signer_params = CertificateParams::new(Vec::<String>::new())?;
        signer_params
            .distinguished_name
            .push(DnType::CommonName, "berth test token issuer");
        signer_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let signer_cert = signer_params.self_signed(&signer_key)?;

        Ok(Pki {
            ca: issued(&ca_cert, &ca_key),
            server: issued(&server_cert, &server_key),
            token_signer: issued(&signer_cert, &signer_key),
        })
    }
}
