//! Real TLS handshakes between the server and client configurations, in memory: the CA issues
//! the server certificate and a device certificate for a key made "on the device", and the two
//! rustls connections exchange bytes through buffers instead of sockets.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use brevet_identity::ca::{Ca, Issued, client_device_name};
use brevet_identity::tls::{client_config, server_config};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519, PublicKeyData};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

const HOUR: Duration = Duration::from_secs(3600);

struct Setup {
    ca: Ca,
    server: Issued,
}

fn setup() -> Setup {
    let ca = Ca::generate("Brevet test CA").unwrap();
    let server = ca
        .issue_server(
            &["localhost".to_owned()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            30,
        )
        .unwrap();
    Setup { ca, server }
}

impl Setup {
    fn server_config(&self) -> Arc<ServerConfig> {
        server_config(
            &self.server.cert_pem,
            &self.server.key_pem,
            Some(self.ca.cert_pem()),
        )
        .unwrap()
    }
}

/// A device key generated outside the CA and a certificate for its public key.
fn device(ca: &Ca, name: &str, alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = ca
        .issue_client_for_public_key(name, &key.subject_public_key_info(), HOUR)
        .unwrap();
    (cert, key.serialize_pem())
}

/// Runs the handshake to completion; the error is whichever side failed first.
fn handshake(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    name: &str,
) -> Result<ServerConnection, rustls::Error> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut client = ClientConnection::new(client, name).unwrap();
    let mut server = ServerConnection::new(server).unwrap();
    for _ in 0..20 {
        let to_server = drain(|buf| client.write_tls(buf));
        feed(&to_server, |rd| server.read_tls(rd));
        let server_result = server.process_new_packets().map(|_| ());
        let to_client = drain(|buf| server.write_tls(buf));
        feed(&to_client, |rd| client.read_tls(rd));
        // The client reads the server's alert (if any) before we report the server's error.
        let client_result = client.process_new_packets().map(|_| ());
        server_result?;
        client_result?;
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            return Ok(server);
        }
    }
    panic!("handshake did not finish");
}

/// The handshake failed on a certificate check of the kind named (rustls' variant name prefix).
fn assert_certificate_error(err: &rustls::Error, kind: &str) {
    match err {
        rustls::Error::InvalidCertificate(e) if format!("{e:?}").starts_with(kind) => {}
        _ => panic!("expected a `{kind}` certificate error, got {err:?}"),
    }
}

fn drain(mut write: impl FnMut(&mut Vec<u8>) -> std::io::Result<usize>) -> Vec<u8> {
    let mut buf = Vec::new();
    while write(&mut buf).unwrap() > 0 {}
    buf
}

fn feed(mut bytes: &[u8], mut read: impl FnMut(&mut &[u8]) -> std::io::Result<usize>) {
    while !bytes.is_empty() {
        read(&mut bytes).unwrap();
    }
}

#[test]
fn token_client_without_certificate_connects() {
    let s = setup();
    let client = client_config(s.ca.cert_pem(), None).unwrap();
    let server = handshake(client.clone(), s.server_config(), "localhost").unwrap();
    assert!(server.peer_certificates().is_none());
    // The server certificate also covers the IP address.
    handshake(client, s.server_config(), "127.0.0.1").unwrap();
}

#[test]
fn server_offers_h2_and_http11() {
    let s = setup();
    let mut client = (*client_config(s.ca.cert_pem(), None).unwrap()).clone();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let server = handshake(Arc::new(client), s.server_config(), "localhost").unwrap();
    assert_eq!(server.alpn_protocol(), Some(&b"h2"[..]));
}

#[test]
fn device_certificate_identifies_the_device() {
    let s = setup();
    for alg in [&PKCS_ECDSA_P256_SHA256, &PKCS_ED25519] {
        let (cert, key) = device(&s.ca, "laptop-42.corp", alg);
        let client = client_config(s.ca.cert_pem(), Some((&cert, &key))).unwrap();
        let server = handshake(client, s.server_config(), "localhost").unwrap();
        let peer = server.peer_certificates().unwrap();
        assert_eq!(client_device_name(&peer[0]).unwrap(), "laptop-42.corp");
    }
}

#[test]
fn client_trusting_another_ca_refuses_the_server() {
    let s = setup();
    let other = Ca::generate("Someone else").unwrap();
    let client = client_config(other.cert_pem(), None).unwrap();
    let err = handshake(client, s.server_config(), "localhost").unwrap_err();
    assert_certificate_error(&err, "UnknownIssuer");
}

#[test]
fn wrong_server_name_is_refused() {
    let s = setup();
    let client = client_config(s.ca.cert_pem(), None).unwrap();
    let err = handshake(client, s.server_config(), "brevet.example.com").unwrap_err();
    assert_certificate_error(&err, "NotValidForName");
}

#[test]
fn device_certificate_from_another_ca_is_refused() {
    let s = setup();
    let other = Ca::generate("Someone else").unwrap();
    let (cert, key) = device(&other, "laptop-42", &PKCS_ECDSA_P256_SHA256);
    let client = client_config(s.ca.cert_pem(), Some((&cert, &key))).unwrap();
    let err = handshake(client, s.server_config(), "localhost").unwrap_err();
    assert_certificate_error(&err, "UnknownIssuer");
}

#[test]
fn server_certificate_is_not_a_client_certificate() {
    let s = setup();
    let client = client_config(
        s.ca.cert_pem(),
        Some((&s.server.cert_pem, &s.server.key_pem)),
    )
    .unwrap();
    let err = handshake(client, s.server_config(), "localhost").unwrap_err();
    assert_certificate_error(&err, "InvalidPurpose");
}

#[test]
fn expired_device_certificate_is_refused() {
    let s = setup();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let two_hours_ago = SystemTime::now() - 2 * HOUR;
    let cert =
        s.ca.issue_client_for_public_key_at(
            "laptop-42",
            &key.subject_public_key_info(),
            HOUR,
            two_hours_ago,
        )
        .unwrap();
    let client = client_config(s.ca.cert_pem(), Some((&cert, &key.serialize_pem()))).unwrap();
    let err = handshake(client, s.server_config(), "localhost").unwrap_err();
    assert_certificate_error(&err, "Expired");
}

#[test]
fn a_reloaded_ca_keeps_issuing_trusted_certificates() {
    let s = setup();
    let reloaded = Ca::from_pem(s.ca.cert_pem(), s.ca.key_pem()).unwrap();
    let (cert, key) = device(&reloaded, "desk-7", &PKCS_ECDSA_P256_SHA256);
    let client = client_config(s.ca.cert_pem(), Some((&cert, &key))).unwrap();
    let server = handshake(client, s.server_config(), "localhost").unwrap();
    let peer = server.peer_certificates().unwrap();
    assert_eq!(client_device_name(&peer[0]).unwrap(), "desk-7");
}
