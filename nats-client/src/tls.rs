//! TLS with rustls: CA files or the bundled web roots, client certificates for mTLS.
//! Certificate verification is always on unless the caller supplies its own rustls config.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::ConnectError;
use crate::options::TlsOptions;

/// Builds the rustls configuration once per client.
pub(crate) fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, ConnectError> {
    if let Some(config) = &opts.config {
        return Ok(config.clone());
    }
    let err = |message: String| ConnectError::Tls {
        server: String::new(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    if opts.root_certificates.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for path in &opts.root_certificates {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(format!("cannot read CA file {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| err(format!("bad CA file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| err(format!("bad CA certificate in {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots);
    let config = match &opts.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    err(format!(
                        "cannot read client certificate {}: {e}",
                        cert.display()
                    ))
                })?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| err(format!("cannot read client key {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| err(format!("client certificate rejected: {e}")))?
        }
    };
    Ok(Arc::new(config))
}

/// Runs the TLS handshake over an established TCP connection.
pub(crate) async fn upgrade(
    tcp: TcpStream,
    config: Arc<ClientConfig>,
    host: &str,
    server: &str,
) -> Result<TlsStream<TcpStream>, ConnectError> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| ConnectError::Tls {
        server: server.to_owned(),
        message: format!("invalid server name {host:?}: {e}"),
    })?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectError::Tls {
            server: server.to_owned(),
            message: e.to_string(),
        })
}
