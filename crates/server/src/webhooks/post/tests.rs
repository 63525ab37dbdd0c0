//! The webhook client against listeners on this machine: what may not be reached is never
//! connected to, `https://` is verified, redirects are not followed, a silent server times out.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use brevet_identity::ca::Ca;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn url(tls: bool, host: &str, port: u16) -> WebhookUrl {
    WebhookUrl {
        tls,
        host: host.into(),
        port,
        path: "/hook?x=1".into(),
    }
}

fn delivery(url: &WebhookUrl) -> Delivery<'_> {
    Delivery {
        url,
        body: r#"{"seq":1}"#.into(),
        headers: vec![("X-Brevet-Seq", "1".into())],
    }
}

/// A listener on 127.0.0.1 that counts the connections made to it.
async fn counting_listener() -> (u16, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(Mutex::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((_tcp, _)) = listener.accept().await {
            *seen.lock().unwrap() += 1;
        }
    });
    (port, count)
}

/// A name resolving to loopback is refused when the connection is made (by the client's own
/// resolver, not by a check beside it), and nothing reaches the listener.
#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_at_delivery() {
    let (port, connections) = counting_listener().await;
    let c = client(false).unwrap();
    let u = url(true, "localhost", port);
    match post(Some(&c), delivery(&u), false).await {
        Err(PostError::Blocked(why)) => {
            assert!(why.contains("`localhost` resolves to"), "{why}");
            assert!(why.contains("loopback"), "{why}");
        }
        other => panic!("delivered or failed otherwise: {other:?}"),
    }
    assert_eq!(*connections.lock().unwrap(), 0, "the listener was reached");
}

/// Address literals are checked as the URL parser reads them: `0x7f000001` is 127.0.0.1 to it.
#[tokio::test]
async fn address_literals_are_refused_in_every_spelling() {
    let (port, connections) = counting_listener().await;
    let c = client(false).unwrap();
    for host in [
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "0x7f000001",
        "127.1",
    ] {
        let u = url(true, host, port);
        let got = post(Some(&c), delivery(&u), false).await;
        assert!(matches!(got, Err(PostError::Blocked(_))), "{host}: {got:?}");
    }
    assert_eq!(*connections.lock().unwrap(), 0, "the listener was reached");
}

#[tokio::test]
async fn plain_http_needs_the_development_setting() {
    let (port, connections) = counting_listener().await;
    let c = client(false).unwrap();
    let u = url(false, "localhost", port);
    let got = post(Some(&c), delivery(&u), false).await;
    assert!(
        matches!(&got, Err(PostError::Blocked(why)) if why.contains("plain http://")),
        "{got:?}"
    );
    assert_eq!(*connections.lock().unwrap(), 0);
}

/// What a test HTTPS server saw: one entry per request head.
type Seen = Arc<Mutex<Vec<String>>>;

/// An HTTPS server for `localhost` under a fresh CA that answers every request with
/// `answer` (a status line and headers, no body). Returns its port, the CA and what it saw.
async fn https_server(answer: &'static str) -> (u16, CertificateDer<'static>, Seen) {
    let ca = Ca::generate("webhook test CA").unwrap();
    let leaf = ca
        .issue_server(
            &["localhost".to_owned()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            1,
        )
        .unwrap();
    let config = brevet_identity::tls::server_config(&leaf.cert_pem, &leaf.key_pem, None).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let reply = format!("{answer}\r\ncontent-length: 5\r\n\r\nhello");
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
    (port, ca_der, seen)
}

/// `https://` is verified (a certificate from an unknown CA fails), with the ring provider
/// (no panic for a missing default provider), and a redirect is reported, not followed.
#[tokio::test]
async fn https_is_verified_and_redirects_are_not_followed() {
    let (port, ca, seen) =
        https_server("HTTP/1.1 302 Found\r\nlocation: https://localhost/elsewhere").await;
    let u = url(true, "localhost", port);

    let unknown_ca = client(true).unwrap();
    let got = post(Some(&unknown_ca), delivery(&u), true).await;
    assert!(
        matches!(&got, Err(PostError::Failed(why)) if why.to_lowercase().contains("certificate")),
        "{got:?}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "a request went over an unverified connection"
    );

    let trusted = client_with_roots(true, vec![ca]).unwrap();
    let got = post(Some(&trusted), delivery(&u), true).await;
    assert_eq!(got.unwrap(), 302);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "the redirect was followed: {seen:?}");
    let head = seen[0].to_lowercase();
    assert!(head.starts_with("post /hook?x=1 http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("host: localhost:{port}\r\n")),
        "{head}"
    );
    assert!(
        head.contains("content-type: application/json\r\n"),
        "{head}"
    );
    assert!(head.contains("x-brevet-seq: 1\r\n"), "{head}");
}

/// A server that accepts and never answers: the delivery fails after [`TIMEOUT`].
#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let c = client(true).unwrap();
    let u = url(false, "127.0.0.1", port);
    let start = std::time::Instant::now();
    let got = post(Some(&c), delivery(&u), true).await;
    assert!(
        matches!(&got, Err(PostError::Failed(why)) if why.contains("no answer within 5 s")),
        "{got:?}"
    );
    let took = start.elapsed();
    assert!(took >= TIMEOUT && took < TIMEOUT * 4, "{took:?}");
}
