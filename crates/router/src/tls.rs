//! The HTTPS listener's certificate: PEM files the operator gives, or a self-signed one
//! made for the platform's domain (`{domain}` and `*.{domain}`), as a local Cloud Run
//! needs no CA to be useful. ALPN offers h2 and http/1.1.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(String),
    #[error("the certificate and key do not work together: {0}")]
    Config(#[from] rustls::Error),
    #[error("making a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A server certificate and key, ready to accept connections.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
    /// The certificate in PEM, for clients that want to trust it.
    pub certificate_pem: String,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// From a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let read_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| TlsError::Read {
                path: path.clone(),
                source,
            }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(read_err(cert))?
            .collect::<Result<_, _>>()
            .map_err(read_err(cert))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(cert.display().to_string()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(read_err(key))?;
        let pem = std::fs::read_to_string(cert).unwrap_or_default();
        Self::build(chain, key, pem)
    }

    /// A self-signed certificate for `domain` and every name below it.
    pub fn self_signed(domain: &str) -> Result<(Tls, String, String), TlsError> {
        let names = vec![domain.to_string(), format!("*.{domain}")];
        let certified = rcgen::generate_simple_self_signed(names)?;
        let cert_pem = certified.cert.pem();
        let key_pem = certified.signing_key.serialize_pem();
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|source| TlsError::Read {
                path: "the generated key".into(),
                source,
            })?;
        let tls = Self::build(vec![certified.cert.der().clone()], key, cert_pem.clone())?;
        Ok((tls, cert_pem, key_pem))
    }

    fn build(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        certificate_pem: String,
    ) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            certificate_pem,
        })
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}
