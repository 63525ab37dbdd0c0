//! One webhook delivery: a single HTTP/1.1 POST with `reqwest` over a fresh connection (TLS for
//! `https://`), under one deadline for everything from the name lookup to the response head.
//! Only the status matters: 2xx is delivered, anything else (or no answer in time) is not. The
//! response body is never read (the connection is closed with it), redirects are not followed,
//! and no proxy is used (a proxy would resolve the name itself, past the check below).
//!
//! `https://` webhooks are verified against the platform's roots (`rustls-platform-verifier`:
//! on Linux the system CA bundle, `SSL_CERT_FILE` / `SSL_CERT_DIR` honoured), loaded once when
//! the delivery task starts, with the ring provider the rest of the workspace uses.
//!
//! SSRF: the client resolves host names only through [`CheckedResolver`], at each delivery
//! (connections are not pooled), and unless private targets are allowed (development only)
//! every address a name resolves to must be public (`validate::public_ip`), or the whole name is
//! refused. The addresses the connection is made to are the ones checked, handed over by the
//! resolver itself, so a DNS answer that changes between a check and the connection cannot
//! redirect it (DNS rebinding). An IP literal is never looked up, and is checked here before the
//! request is built. Plain `http://` is refused unless private targets are allowed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use brevet_proto::validate::{WebhookUrl, address_kind, public_ip};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long one POST may take, name lookup, connection and TLS handshake included.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// The headers of one delivery besides `Host`, `Content-Type` and `Content-Length`.
pub(crate) struct Delivery<'a> {
    pub url: &'a WebhookUrl,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
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

/// The webhook client. `allow_private` (development only) lets targets be plain `http://`
/// and resolve to loopback and private addresses. Errors when the platform's roots cannot be
/// loaded (none installed): `https://` deliveries then fail until they are.
pub(crate) fn client(allow_private: bool) -> Result<reqwest::Client, String> {
    client_with_roots(allow_private, Vec::new())
}

/// [`client`], trusting `extra_roots` besides the platform's (tests).
pub(crate) fn client_with_roots(
    allow_private: bool,
    extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = if extra_roots.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
    }
    .map_err(|e| format!("cannot load the platform's CA roots (set SSL_CERT_FILE): {e}"))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
        .no_proxy()
        .https_only(!allow_private)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .http1_only()
        // A fresh connection, hence a fresh checked lookup, for every delivery.
        .pool_max_idle_per_host(0)
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .user_agent(concat!("brevetd/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// POSTs `d`. `Ok(status)` when an answer came.
pub(crate) async fn post(
    client: Option<&reqwest::Client>,
    d: Delivery<'_>,
    allow_private: bool,
) -> Result<u16, PostError> {
    let url = d.url;
    if !url.tls && !allow_private {
        return Err(PostError::Blocked(format!(
            "`{}`: plain http:// is for development only (notify.allow_private_targets)",
            url.host
        )));
    }
    let client = client.ok_or_else(|| {
        PostError::Failed("no webhook client: the platform's CA roots could not be loaded".into())
    })?;
    let scheme = if url.tls { "https" } else { "http" };
    let target = format!("{scheme}://{}{}", url.authority(), url.path);
    let mut request = client
        .post(&target)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(d.body);
    for (name, value) in d.headers {
        request = request.header(name, value);
    }
    let request = request
        .build()
        .map_err(|e| PostError::Failed(format!("cannot build the request: {e}")))?;
    // An address literal is not looked up, so the resolver never sees it: checked here, as
    // the URL parser read it (it takes e.g. `0x7f000001` for 127.0.0.1 and writes it back as
    // `127.0.0.1`; IPv6 in brackets).
    let Some(host) = request.url().host_str() else {
        return Err(PostError::Failed("the URL has no host".into()));
    };
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse::<IpAddr>()
        .ok();
    if let Some(ip) = literal {
        check(&url.host, &[SocketAddr::new(ip, url.port)], allow_private)
            .map_err(|b| PostError::Blocked(b.0))?;
    }
    match client.execute(request).await {
        // The body is not read: dropping the response closes the connection.
        Ok(response) => Ok(response.status().as_u16()),
        Err(e) => Err(classify(&e)),
    }
}

/// A refused resolution (from [`CheckedResolver`]) is `Blocked`; anything else `Failed`.
fn classify(e: &reqwest::Error) -> PostError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(blocked) = s.downcast_ref::<Blocked>() {
            return PostError::Blocked(blocked.0.clone());
        }
        source = s.source();
    }
    if e.is_timeout() {
        return PostError::Failed(format!("no answer within {} s", TIMEOUT.as_secs()));
    }
    // reqwest's Display omits the cause ("error sending request"): name the innermost one.
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    PostError::Failed(why)
}

/// A name whose addresses webhooks may not reach.
#[derive(Debug)]
struct Blocked(String);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Blocked {}

/// Every address must be public unless `allow_private`: a name that also resolves to a
/// private address is refused whole.
fn check(host: &str, addrs: &[SocketAddr], allow_private: bool) -> Result<(), Blocked> {
    if allow_private {
        return Ok(());
    }
    match addrs.iter().find(|a| !public_ip(a.ip())) {
        None => Ok(()),
        Some(bad) => Err(Blocked(format!(
            "`{host}` resolves to {}, a {} address; webhooks go to public addresses only",
            bad.ip(),
            address_kind(bad.ip())
        ))),
    }
}

/// The only way the webhook client turns a name into addresses: the system resolver, then
/// [`check`]; what it returns is exactly what the connection may use.
struct CheckedResolver {
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
                .collect();
            if addrs.is_empty() {
                return Err(format!("`{host}` has no address").into());
            }
            check(&host, &addrs, allow_private)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests;
