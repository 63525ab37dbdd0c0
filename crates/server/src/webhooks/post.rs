//! One webhook delivery: a single HTTP/1.1 POST over a fresh connection (TLS for `https://`),
//! with hyper's client half, under one deadline for everything from connecting to the response
//! head. Only the status matters: 2xx is delivered, anything else (or no answer in time) is not.
//! Redirects are not followed.
//!
//! `https://` webhooks are checked against the system's CA bundle (`SSL_CERT_FILE`, or the usual
//! distribution paths), read once when the delivery task starts.
//!
//! The host is resolved here, at each delivery, and unless private targets are allowed
//! (development only) every address it resolves to must be public (`validate::public_ip`);
//! the connection then goes to one of the addresses checked, never to a second lookup, so a
//! DNS answer that changes between the check and the connection cannot redirect it (SSRF, DNS
//! rebinding).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use brevet_proto::validate::{WebhookUrl, address_kind, public_ip};
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

/// Why a POST got no answer.
#[derive(Debug)]
pub(crate) enum PostError {
    /// The target resolved to an address webhooks may not reach; nothing was sent.
    Blocked(String),
    /// No connection, a TLS or HTTP failure, or no answer in [`TIMEOUT`].
    Failed(String),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::Blocked(why) | PostError::Failed(why) => f.write_str(why),
        }
    }
}

/// POSTs `d`. `Ok(status)` when an answer came. `allow_private` (development only) lets the
/// host resolve to loopback and private addresses.
pub(crate) async fn post(
    tls: Option<&Arc<ClientConfig>>,
    d: Delivery<'_>,
    allow_private: bool,
) -> Result<u16, PostError> {
    match tokio::time::timeout(TIMEOUT, send(tls, d, allow_private)).await {
        Ok(r) => r,
        Err(_) => Err(PostError::Failed(format!(
            "no answer within {} s",
            TIMEOUT.as_secs()
        ))),
    }
}

/// The addresses of `url`'s host, each checked: all must be public unless `allow_private`.
pub(crate) async fn resolve(
    url: &WebhookUrl,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, PostError> {
    let addrs: Vec<SocketAddr> = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        Err(_) => tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|e| PostError::Failed(format!("cannot resolve `{}`: {e}", url.host)))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(PostError::Failed(format!("`{}` has no address", url.host)));
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !public_ip(a.ip())) {
        // Every address, not only the first: a name that also resolves to a private address
        // is refused whole.
        return Err(PostError::Blocked(format!(
            "`{}` resolves to {}, a {} address; webhooks go to public addresses only",
            url.host,
            bad.ip(),
            address_kind(bad.ip())
        )));
    }
    Ok(addrs)
}

async fn send(
    tls: Option<&Arc<ClientConfig>>,
    d: Delivery<'_>,
    allow_private: bool,
) -> Result<u16, PostError> {
    let url = d.url;
    let addrs = resolve(url, allow_private).await?;
    let tcp = connect(&addrs).await.map_err(PostError::Failed)?;
    let _ = tcp.set_nodelay(true);
    let request = request(&d).map_err(PostError::Failed)?;
    if url.tls {
        let config = tls.ok_or_else(|| {
            PostError::Failed("no CA bundle to verify https:// webhooks (set SSL_CERT_FILE)".into())
        })?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|e| PostError::Failed(format!("invalid TLS server name: {e}")))?;
        let stream = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| PostError::Failed(format!("TLS: {e}")))?;
        exchange(TokioIo::new(stream), request)
            .await
            .map_err(PostError::Failed)
    } else {
        exchange(TokioIo::new(tcp), request)
            .await
            .map_err(PostError::Failed)
    }
}

/// A connection to the first of `addrs` that answers.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
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
