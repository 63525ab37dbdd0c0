//! rustls configurations for the Brevet server and its clients.
//!
//! Always the ring crypto provider, TLS 1.2 and 1.3 with rustls' safe defaults. The server offers
//! ALPN `h2` and `http/1.1`. People (tokens) and devices (client certificates) share one port, so
//! a client certificate is requested but optional; when one is sent it must chain to the client CA,
//! and the application decides what an unauthenticated connection may do.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

/// Builds the server's TLS configuration.
///
/// `cert_chain_pem` is the server certificate followed by any intermediates; `key_pem` its
/// private key. With `client_ca_pem`, client certificates are verified against that CA but not
/// required.
pub fn server_config(
    cert_chain_pem: &str,
    key_pem: &str,
    client_ca_pem: Option<&str>,
) -> Result<Arc<ServerConfig>> {
    let provider = provider();
    let chain = certificates("server certificate chain", cert_chain_pem)?;
    let key = private_key("server key", key_pem)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_ca_pem {
        Some(ca_pem) => {
            let roots = roots("client CA certificate", ca_pem)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Builds a client's TLS configuration trusting only the CA(s) in `ca_pem`, optionally
/// presenting `client_cert` as `(certificate chain PEM, key PEM)`.
///
/// No ALPN is set; an HTTP client that needs it can clone the config and set `alpn_protocols`.
pub fn client_config(ca_pem: &str, client_cert: Option<(&str, &str)>) -> Result<Arc<ClientConfig>> {
    let roots = roots("CA certificate", ca_pem)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match client_cert {
        Some((cert_pem, key_pem)) => {
            let chain = certificates("client certificate", cert_pem)?;
            let key = private_key("client key", key_pem)?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The one crypto provider Brevet uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// All `CERTIFICATE` blocks in `pem`; at least one.
fn certificates(what: &'static str, pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem_error = |source| Error::Pem {
        what,
        label: "CERTIFICATE",
        source,
    };
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err(pem_error(rustls_pki_types::pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in `pem`.
fn private_key(what: &'static str, pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|source| Error::Pem {
        what,
        label: "PRIVATE KEY",
        source,
    })
}

/// A root store holding every certificate in `pem`; each must be a usable trust anchor.
fn roots(what: &'static str, pem: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(what, pem)? {
        roots.add(cert)?;
    }
    Ok(roots)
}
