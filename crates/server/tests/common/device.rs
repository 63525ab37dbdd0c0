//! A small test-only device client: an Ed25519 key made here (as the agent makes its own), the
//! enrollment call, and the mutual-TLS `/v1/device/*` calls over ureq with the issued client
//! certificate.

use std::sync::Arc;
use std::time::Duration;

use brevet_proto::agent::{
    Ack, AckResponse, DeviceGrants, DeviceReport, EnrollRequest, EnrollResponse, RenewRequest,
    RenewResponse, ReportResponse,
};
use brevet_proto::api::ErrorBody;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// An API error as the device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// A device key: PKCS#8 PEM for rustls, SPKI base64 for the server.
#[derive(Clone)]
pub struct DeviceKey {
    pub pkcs8_pem: String,
    pub spki_b64: String,
}

impl DeviceKey {
    pub fn generate() -> DeviceKey {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pkcs8");
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(pair.public_key().as_ref());
        DeviceKey {
            pkcs8_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
            spki_b64: data_encoding::BASE64.encode(&spki),
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One device: its key and, once enrolled, its certificate.
#[derive(Clone)]
pub struct TestDevice {
    url: String,
    ca_pem: String,
    pub key: DeviceKey,
    pub cert_pem: Option<String>,
    agent: ureq::Agent,
}

impl TestDevice {
    /// A device with a fresh key and no certificate yet.
    pub fn new(url: &str, ca_pem: &str) -> TestDevice {
        let key = DeviceKey::generate();
        TestDevice {
            url: url.to_owned(),
            ca_pem: ca_pem.to_owned(),
            agent: agent(ca_pem, None),
            key,
            cert_pem: None,
        }
    }

    /// The same device presenting `cert_pem` with `key` from now on.
    pub fn with_cert(&self, key: DeviceKey, cert_pem: String) -> TestDevice {
        TestDevice {
            agent: agent(&self.ca_pem, Some((&cert_pem, &key.pkcs8_pem))),
            url: self.url.clone(),
            ca_pem: self.ca_pem.clone(),
            key,
            cert_pem: Some(cert_pem),
        }
    }

    /// The same device talking to the server at `url` (another replica).
    pub fn at(&self, url: &str) -> TestDevice {
        TestDevice {
            url: url.to_owned(),
            ..self.clone()
        }
    }

    /// Enrolls with `token`; on success the device presents its new certificate.
    pub fn enroll(&mut self, token: &str) -> Result<EnrollResponse, DevError> {
        let r: EnrollResponse = self.post(
            "/v1/enroll",
            &EnrollRequest {
                token: token.to_owned(),
                public_key: self.key.spki_b64.clone(),
            },
        )?;
        *self = self.with_cert(self.key.clone(), r.cert_pem.clone());
        Ok(r)
    }

    pub fn poll(&self, cursor: Option<&str>, wait: u64) -> Result<DeviceGrants, DevError> {
        let mut rb = self
            .agent
            .get(format!("{}/v1/device/grants", self.url))
            .query("wait", wait.to_string());
        if let Some(c) = cursor {
            rb = rb.query("cursor", c);
        }
        decode(rb.call().expect("transport"))
    }

    pub fn acks(&self, acks: &[Ack]) -> Result<AckResponse, DevError> {
        self.post("/v1/device/acks", &acks)
    }

    /// Renews with a new key; returns the renewed device (the old value keeps the old cert).
    pub fn renew(&self) -> Result<(TestDevice, RenewResponse), DevError> {
        let key = DeviceKey::generate();
        let r: RenewResponse = self.post(
            "/v1/device/renew",
            &RenewRequest {
                public_key: key.spki_b64.clone(),
            },
        )?;
        Ok((self.with_cert(key, r.cert_pem.clone()), r))
    }

    pub fn report(&self, report: &DeviceReport) -> Result<ReportResponse, DevError> {
        self.post("/v1/device/report", report)
    }

    pub fn events(
        &self,
        events: &[brevet_proto::agent::DeviceEvent],
    ) -> Result<brevet_proto::agent::EventsResponse, DevError> {
        self.post("/v1/device/events", &events)
    }

    /// Any call on this device's connection (with its client certificate, if enrolled), with an
    /// optional bearer token and JSON body: the status and the body text.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, String) {
        let url = format!("{}{path}", self.url);
        // A fresh connection per call: a refusal sent before the body was read may close the
        // connection under a pooled request.
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Connection", "close");
        if let Some(t) = bearer {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = match body {
            Some(b) => {
                let req = req
                    .header("Content-Type", "application/json")
                    .body(b.to_string())
                    .expect("request");
                self.agent.run(req)
            }
            None => self.agent.run(req.body(()).expect("request")),
        };
        let mut resp = resp.expect("transport");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    }

    fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, DevError> {
        let resp = self
            .agent
            .post(format!("{}{path}", self.url))
            .send_json(body)
            .expect("transport");
        decode(resp)
    }
}

fn decode<T: DeserializeOwned>(mut resp: ureq::http::Response<ureq::Body>) -> Result<T, DevError> {
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("body");
    if (200..300).contains(&status) {
        return Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")));
    }
    let e: ErrorBody = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    Err(DevError {
        status,
        code: e.code,
        message: e.message,
    })
}

/// A ureq agent trusting only the Brevet CA, presenting `client` (certificate, key) if given.
fn agent(ca_pem: &str, client: Option<(&str, &str)>) -> ureq::Agent {
    let ca = Certificate::from_pem(ca_pem.as_bytes()).expect("ca pem");
    let client = client.map(|(cert, key)| {
        ClientCert::new_with_certs(
            &[Certificate::from_pem(cert.as_bytes()).expect("cert pem")],
            PrivateKey::from_pem(key.as_bytes()).expect("key pem"),
        )
    });
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
        .client_cert(client)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .https_only(true)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(90)))
        .build()
        .into()
}
