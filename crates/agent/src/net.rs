//! Talking to `brevetd`: HTTPS with the Brevet CA as the only trust root, and mutual TLS with
//! the device certificate after enrollment. Blocking (`ureq`): the agent has no async runtime.

use std::sync::Arc;
use std::time::Duration;

use brevet_proto::agent::{
    Ack, DeviceEvent, DeviceGrants, DeviceReport, EnrollRequest, EnrollResponse, EventsResponse,
    RenewRequest, RenewResponse,
};
use brevet_proto::api::ErrorBody;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::{Error, Result};

/// How long the server may hold a long-poll open.
pub const POLL_WAIT_SECS: u32 = 25;

/// A connection profile for one server.
#[derive(Clone)]
pub struct Server {
    base: String,
    agent: ureq::Agent,
}

impl Server {
    /// Server-authenticated TLS only (enrollment).
    pub fn anonymous(url: &str, ca_pem: &str) -> Result<Server> {
        Server::build(url, ca_pem, None)
    }

    /// Mutual TLS with the device certificate and its PKCS#8 private key.
    pub fn mutual(url: &str, ca_pem: &str, cert_pem: &str, key_pkcs8: &[u8]) -> Result<Server> {
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| Error::State(format!("device certificate does not parse: {e}")))?;
        let cert = Certificate::from_der(cert.as_ref()).to_owned();
        let key = PrivateKey::from_pem(pkcs8_pem(key_pkcs8).as_bytes())
            .map_err(|e| Error::State(format!("device key does not load: {e}")))?;
        Server::build(url, ca_pem, Some(ClientCert::new_with_certs(&[cert], key)))
    }

    fn build(url: &str, ca_pem: &str, client: Option<ClientCert>) -> Result<Server> {
        let base = url.trim_end_matches('/').to_owned();
        if !base.starts_with("https://") {
            return Err(Error::Usage(format!(
                "server URL `{url}` must start with https://"
            )));
        }
        let mut roots = Vec::new();
        for item in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let der =
                item.map_err(|e| Error::State(format!("CA certificate does not parse: {e}")))?;
            roots.push(Certificate::from_der(der.as_ref()).to_owned());
        }
        if roots.is_empty() {
            return Err(Error::State("the CA file holds no certificate".into()));
        }
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .client_cert(client)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(Duration::from_secs(u64::from(POLL_WAIT_SECS) + 30)))
            .user_agent(concat!("brevet-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Server { base, agent })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    pub fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse> {
        self.post("/v1/enroll", req)
    }

    /// Long-polls for this device's live grants.
    pub fn grants(&self, cursor: &str, wait_secs: u32) -> Result<DeviceGrants> {
        let path = "/v1/device/grants";
        let resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .query("cursor", cursor)
            .query("wait", wait_secs.to_string())
            .call()
            .map_err(|e| self.transport(e))?;
        self.decode(resp)
    }

    pub fn acks(&self, acks: &[Ack]) -> Result<serde_json::Value> {
        self.post("/v1/device/acks", &acks)
    }

    /// Sends audit events (oldest first); the server ignores ids it has already recorded.
    pub fn events(&self, events: &[DeviceEvent]) -> Result<EventsResponse> {
        self.post("/v1/device/events", &events)
    }

    pub fn renew(&self, req: &RenewRequest) -> Result<RenewResponse> {
        self.post("/v1/device/renew", req)
    }

    pub fn report(&self, report: &DeviceReport) -> Result<serde_json::Value> {
        self.post("/v1/device/report", report)
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        let body = serde_json::to_vec(body).map_err(|e| Error::State(e.to_string()))?;
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(&body[..])
            .map_err(|e| self.transport(e))?;
        self.decode(resp)
    }

    fn decode<T: DeserializeOwned>(&self, mut resp: ureq::http::Response<ureq::Body>) -> Result<T> {
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(16 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(e) => Error::Api {
                    status,
                    code: e.code,
                    message: e.message,
                },
                Err(_) => Error::Server {
                    server: self.base.clone(),
                    detail: format!("HTTP {status} without an error body"),
                },
            });
        }
        serde_json::from_str(&text).map_err(|e| Error::Server {
            server: self.base.clone(),
            detail: format!("unexpected answer: {e}"),
        })
    }

    fn transport(&self, e: ureq::Error) -> Error {
        Error::Server {
            server: self.base.clone(),
            detail: e.to_string(),
        }
    }
}

/// PEM-encodes a PKCS#8 private key (`BEGIN PRIVATE KEY`).
fn pkcs8_pem(der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}
