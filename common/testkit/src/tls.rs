//! Test certificates for the HTTPS listeners: a throw-away CA (rcgen) that issues leaf
//! certificates for `localhost` and `127.0.0.1`, written as PEM files the services load and
//! clients trust (`curl --cacert`, `openssl s_client -CAfile`).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A certificate authority that exists only for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate (PEM), what clients trust.
    pub ca_file: PathBuf,
}

/// A leaf certificate's files: what a service's `[tls]` names, and the CA that signed it.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Chain, leaf first (`tls.cert_file`).
    pub cert: PathBuf,
    /// Private key, PKCS#8 (`tls.key_file`).
    pub key: PathBuf,
    /// The issuing CA (for clients).
    pub ca: PathBuf,
    /// `ktls` in the service's `[tls]`.
    pub ktls: bool,
    /// `http2` in the service's `[tls]` (ALPN h2).
    pub http2: bool,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `{dir}/{name}-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ringcast test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign CA");
        let ca_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, cert.pem()).expect("write CA");
        Self { cert, key, ca_file }
    }

    /// A leaf certificate for `localhost` and `127.0.0.1` signed by this CA, written to
    /// `{dir}/{name}-cert.pem` and `{dir}/{name}-key.pem` (overwritten if present: a reload
    /// test swaps the files under a running service).
    pub fn issue(&self, dir: &Path, name: &str) -> TlsFiles {
        let key = KeyPair::generate().expect("leaf key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ringcast test {name}"));
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf");
        let files = TlsFiles {
            cert: dir.join(format!("{name}-cert.pem")),
            key: dir.join(format!("{name}-key.pem")),
            ca: self.ca_file.clone(),
            ktls: true,
            http2: false,
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        files
    }
}

impl TlsFiles {
    /// Make `self`'s files hold `other`'s certificate and key (what a certificate renewal does
    /// before its SIGHUP).
    pub fn replace_with(&self, other: &TlsFiles) {
        std::fs::copy(&other.cert, &self.cert).expect("copy cert");
        std::fs::copy(&other.key, &self.key).expect("copy key");
    }
}
