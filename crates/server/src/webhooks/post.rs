//! One webhook delivery: a single HTTP/1.1 POST over a fresh connection (TLS for `https://`),
//! with hyper's client half, under one deadline for everything from connecting to the response
//! head. Only the status matters: 2xx is delivered, anything else (or no answer in time) is not.
//! Redirects are not followed.
//!
//! `https://` webhooks are checked against the system's CA bundle (`SSL_CERT_FILE`, or the usual
//! distribution paths), read once when the delivery task starts.

use std::sync::Arc;
use std::time::Duration;

use brevet_proto::validate::WebhookUrl;
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long one POST may take, connection and TLS handshake included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the system's CA bundle usually is.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The headers of one delivery besides `Host`, `Content-Type` and `Content-Length`.
pub(crate) struct Delivery<'a> {
    pub url: &'a WebhookUrl,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

/// The TLS settings for `https://` webhooks: the system's CA bundle, or `None` (with a warning)
/// when none is found, in which case `https://` deliveries fail until one is installed.
pub(crate) fn tls_config() -> Option<Arc<ClientConfig>> {
    let from_env = std::env::var("SSL_CERT_FILE").ok();
    let paths = from_env
        .iter()
        .map(String::as_str)
        .chain(CA_BUNDLES.iter().copied());
    let mut roots = RootCertStore::empty();
    for path in paths {
        let Ok(iter) = CertificateDer::pem_file_iter(path) else {
            continue;
        };
        let (added, _ignored) = roots.add_parsable_certificates(iter.filter_map(Result::ok));
        if added > 0 {
            tracing::debug!(path, added, "webhook TLS roots loaded");
            break;
        }
    }
    if roots.is_empty() {
        tracing::warn!(
            "no system CA bundle found (set SSL_CERT_FILE): https:// webhooks cannot be verified"
        );
        return None;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(Arc::new(config))
}

/// POSTs `d`. `Ok(status)` when an answer came, `Err(why)` when none did in [`TIMEOUT`].
pub(crate) async fn post(tls: Option<&Arc<ClientConfig>>, d: Delivery<'_>) -> Result<u16, String> {
    match tokio::time::timeout(TIMEOUT, send(tls, d)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
    }
}

async fn send(tls: Option<&Arc<ClientConfig>>, d: Delivery<'_>) -> Result<u16, String> {
    let url = d.url;
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let request = request(&d)?;
    if url.tls {
        let config = tls.ok_or("no CA bundle to verify https:// webhooks (set SSL_CERT_FILE)")?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| format!("invalid TLS server name: {e}"))?;
        let stream = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        exchange(TokioIo::new(stream), request).await
    } else {
        exchange(TokioIo::new(tcp), request).await
    }
}

fn request(d: &Delivery<'_>) -> Result<hyper::Request<String>, String> {
    let mut b = hyper::Request::post(d.url.path.as_str())
        .header(hyper::header::HOST, d.url.authority())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("brevetd/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::CONNECTION, "close");
    for (name, value) in &d.headers {
        b = b.header(*name, value.as_str());
    }
    b.body(d.body.clone())
        .map_err(|e| format!("cannot build the request: {e}"))
}

async fn exchange<T>(io: TokioIo<T>, request: hyper::Request<String>) -> Result<u16, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    // The connection is driven beside the request and ends with it: the guard aborts it when
    // the answer is in, or when this future is dropped at the deadline.
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    sender
        .send_request(request)
        .await
        .map(|resp| resp.status().as_u16())
        .map_err(|e| format!("HTTP: {e}"))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
