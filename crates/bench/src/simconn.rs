//! One simulated device's HTTPS connection: TCP from a chosen loopback source address (bound
//! before `connect`, so that each batch of devices counts as its own client at the server's
//! edge), TLS 1.2/1.3 with rustls and ring trusting only the Brevet CA and presenting the
//! device certificate (mutual TLS, as `brevet-agent` does), and HTTP/1.1 with keep-alive
//! (hyper). The connection is driven by a task of its own; the [`Conn`] sends requests on it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;

/// Longest a TCP connect plus TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest any answer may take (a long-poll waits up to 25 s).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The CA as a trust store, shared by every device.
pub(crate) fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("the CA certificate does not parse: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the CA certificate is refused: {e}"))?;
    }
    Ok(Arc::new(roots))
}

/// A client configuration presenting `cert_pem` with its PKCS#8 key.
pub(crate) fn client_config(
    roots: &Arc<RootCertStore>,
    cert_pem: &str,
    key_pkcs8: &[u8],
) -> Result<Arc<ClientConfig>, String> {
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| format!("the device certificate does not parse: {e}"))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()));
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("rustls: {e}"))?
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(vec![cert], key)
            .map_err(|e| format!("the device key does not fit its certificate: {e}"))?;
    Ok(Arc::new(config))
}

/// Where the devices connect.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
}

/// An open HTTP/1.1 connection.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    /// Connects from `source` to `target` and shakes hands.
    pub(crate) async fn open(
        source: Ipv4Addr,
        target: &Target,
        tls: Arc<ClientConfig>,
    ) -> Result<Conn, String> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::open_now(source, target, tls))
            .await
            .map_err(|_| format!("connect to {} timed out", target.addr))?
    }

    async fn open_now(
        source: Ipv4Addr,
        target: &Target,
        tls: Arc<ClientConfig>,
    ) -> Result<Conn, String> {
        let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        socket
            .bind(SocketAddr::new(IpAddr::V4(source), 0))
            .map_err(|e| format!("bind {source}: {e}"))?;
        let tcp = socket
            .connect(target.addr)
            .await
            .map_err(|e| format!("connect {source} → {}: {e}", target.addr))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let name = ServerName::IpAddress(target.addr.ip().into());
        let stream = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {}: {e}", target.addr))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            host: target.addr.to_string(),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// `GET path`: the status and the body.
    pub(crate) async fn get(&mut self, path: &str) -> Result<(u16, Bytes), String> {
        self.send("GET", path, Bytes::new()).await
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post(&mut self, path: &str, json: Vec<u8>) -> Result<(u16, Bytes), String> {
        self.send("POST", path, Bytes::from(json)).await
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        let work = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("connection closed: {e}"))?;
            let mut req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, &self.host)
                .header(hyper::header::USER_AGENT, "brevet-bench-simulated-agent");
            if method == "POST" {
                req = req.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            let req = req
                .body(Full::new(body))
                .map_err(|e| format!("request: {e}"))?;
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| format!("{method} {path}: {e}"))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{method} {path}: body: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(ANSWER_TIMEOUT, work)
            .await
            .map_err(|_| {
                format!(
                    "{method} {path}: no answer within {} s",
                    ANSWER_TIMEOUT.as_secs()
                )
            })?
    }
}
