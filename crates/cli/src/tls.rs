//! TLS trust for the API client: the Brevet CA given by the operator is the only root.
//!
//! The PEM is parsed and every certificate in it is checked as a trust anchor here, so a file
//! that is empty, not PEM, or holds no usable certificate is refused up front with a clear
//! error (ureq itself would skip unparsable roots silently and fail later on every handshake).
//! Web PKI roots and the platform store are never consulted.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::error::Error;

/// Builds ureq's TLS settings: rustls with the ring provider, trusting only the CA(s) in `ca_pem`.
pub(crate) fn config(ca_pem: &str) -> Result<TlsConfig, Error> {
    let roots = ca_roots(ca_pem)?;
    let roots: Vec<Certificate<'static>> = roots
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build())
}

/// Parses `ca_pem` into DER certificates, each accepted by rustls as a trust anchor.
fn ca_roots(ca_pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let der = item.map_err(|e| Error::CaPem(format!("the PEM does not parse ({e})")))?;
        certs.push(der);
    }
    if certs.is_empty() {
        return Err(Error::CaPem(
            "no `BEGIN CERTIFICATE` block found".to_owned(),
        ));
    }
    let mut store = RootCertStore::empty();
    for der in &certs {
        store
            .add(der.clone())
            .map_err(|e| Error::CaPem(format!("a certificate is not usable as a CA ({e})")))?;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_ca_certificate() {
        for bad in [
            "",
            "hello",
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let err = config(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.starts_with("invalid CA certificate: "),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn accepts_a_real_ca() {
        let ca = brevet_identity::ca::Ca::generate("brevet test ca").unwrap();
        assert!(config(ca.cert_pem()).is_ok());
    }
}
