//! [`TlsConfig`]: HTTPS with rustls, from a certificate chain and a private
//! key in PEM files (`KINESIS_HTTP_TLS_CERT`, `KINESIS_HTTP_TLS_KEY`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kinesis::{Error, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// A validated TLS setup: the files it was read from and the rustls server
/// configuration built from them (TLS 1.2 and 1.3, ALPN `http/1.1`, no
/// client certificates). Reading it checks everything a start could trip
/// over: both files are readable, the certificate file holds at least one
/// certificate, the key file a private key (PKCS #8, PKCS #1 or SEC1), and
/// the key matches the certificate.
///
/// Two `TlsConfig`s are equal when they were read from the same files.
#[derive(Clone)]
pub struct TlsConfig {
    cert: PathBuf,
    key: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

impl TlsConfig {
    /// Reads the certificate chain (`cert`, leaf first) and the private key
    /// (`key`), both PEM. A file that cannot be read or holds no usable
    /// certificate or key is an [`Error::Config`] naming the variable
    /// (`KINESIS_HTTP_TLS_CERT` or `KINESIS_HTTP_TLS_KEY`) and the file.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<TlsConfig> {
        let (cert, key) = (cert.as_ref(), key.as_ref());
        let bad_cert = |what: String| {
            Error::Config(format!("KINESIS_HTTP_TLS_CERT=`{}`: {what}", cert.display()))
        };
        let bad_key = |what: String| {
            Error::Config(format!("KINESIS_HTTP_TLS_KEY=`{}`: {what}", key.display()))
        };
        let cert_pem = std::fs::read(cert)
            .map_err(|e| bad_cert(format!("cannot read the certificate file: {e}")))?;
        let key_pem =
            std::fs::read(key).map_err(|e| bad_key(format!("cannot read the key file: {e}")))?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad_cert(format!("not a PEM certificate file: {e}")))?;
        if chain.is_empty() {
            return Err(bad_cert("holds no PEM `CERTIFICATE` block".to_owned()));
        }
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            bad_key(format!("holds no usable PEM private key (PKCS #8, PKCS #1 or SEC1): {e}"))
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad_cert(format!("no TLS protocol version available: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                Error::Config(format!(
                    "KINESIS_HTTP_TLS_CERT=`{}` and KINESIS_HTTP_TLS_KEY=`{}` do not make a usable pair: {e}",
                    cert.display(),
                    key.display()
                ))
            })?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig { cert: cert.to_owned(), key: key.to_owned(), server: Arc::new(server) })
    }

    /// The certificate file it was read from.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The key file it was read from.
    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// The rustls server configuration.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.server)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        self.cert == other.cert && self.key == other.key
    }
}

impl Eq for TlsConfig {}
