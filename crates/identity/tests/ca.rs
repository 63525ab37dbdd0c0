//! The CA's checks on its inputs and the shape of what it issues.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

use std::time::{Duration, SystemTime};

use brevet_identity::Error;
use brevet_identity::ca::{CLOCK_SKEW, Ca, client_device_name, fingerprint_sha256};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::parse_x509_certificate;

const HOUR: Duration = Duration::from_secs(3600);

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn device_spki() -> Vec<u8> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .unwrap()
        .subject_public_key_info()
}

#[test]
fn new_ca_is_a_ten_year_p256_ca() {
    let ca = Ca::generate("Brevet CA").unwrap();
    let der = der(ca.cert_pem());
    let (_, cert) = parse_x509_certificate(&der).unwrap();
    assert!(cert.basic_constraints().unwrap().unwrap().value.ca);
    assert!(cert.key_usage().unwrap().unwrap().value.key_cert_sign());
    let validity = cert.validity().time_to_expiration().unwrap();
    assert!(validity > time::Duration::days(3649), "{validity}");
    let key = KeyPair::from_pem(ca.key_pem()).unwrap();
    assert_eq!(key.algorithm(), &PKCS_ECDSA_P256_SHA256);
    assert!(ca.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!format!("{ca:?}").contains("PRIVATE"));
}

#[test]
fn loading_checks_key_and_ca_flag() {
    let ca = Ca::generate("Brevet CA").unwrap();
    let other = Ca::generate("Other CA").unwrap();
    assert!(matches!(
        Ca::from_pem(ca.cert_pem(), other.key_pem()),
        Err(Error::CaKeyMismatch)
    ));
    let server = ca
        .issue_server(&["brevet.example.com".to_owned()], &[], 1)
        .unwrap();
    assert!(matches!(
        Ca::from_pem(&server.cert_pem, &server.key_pem),
        Err(Error::NotACa)
    ));
    assert!(matches!(
        Ca::from_pem("", ca.key_pem()),
        Err(Error::Pem { .. })
    ));
    assert!(matches!(
        Ca::from_pem(ca.cert_pem(), "junk"),
        Err(Error::Key { .. })
    ));
}

#[test]
fn device_certificate_shape() {
    let ca = Ca::generate("Brevet CA").unwrap();
    let now = SystemTime::now();
    let pem = ca
        .issue_client_for_public_key_at("pc-1", &device_spki(), HOUR, now)
        .unwrap();
    let der = der(&pem);
    let (_, cert) = parse_x509_certificate(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
    let lifetime = cert.validity().not_after - cert.validity().not_before;
    assert_eq!(
        lifetime.unwrap().whole_seconds() as u64,
        (HOUR + CLOCK_SKEW).as_secs()
    );
    assert_eq!(client_device_name(&der).unwrap(), "pc-1");
    // Renewing for the same key gives a new serial.
    let again = ca
        .issue_client_for_public_key_at("pc-1", &device_spki(), HOUR, now)
        .unwrap();
    let again = der_serial(&again);
    assert_ne!(cert.raw_serial(), again.as_slice());
}

fn der_serial(pem: &str) -> Vec<u8> {
    let der = der(pem);
    let (_, cert) = parse_x509_certificate(&der).unwrap();
    cert.raw_serial().to_vec()
}

#[test]
fn device_inputs_are_checked() {
    let ca = Ca::generate("Brevet CA").unwrap();
    let spki = device_spki();
    for name in [
        "",
        "*.corp",
        "pc 1",
        "pc-1.",
        "10.0.0.1",
        "ordinateur-é",
        &"a".repeat(254),
    ] {
        let err = ca
            .issue_client_for_public_key(name, &spki, HOUR)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{name:?}: {err}");
    }
    let err = ca
        .issue_client_for_public_key("pc-1", &spki, Duration::ZERO)
        .unwrap_err();
    assert!(matches!(err, Error::Validity { .. }), "{err}");
    let err = ca
        .issue_client_for_public_key("pc-1", &spki, Duration::MAX)
        .unwrap_err();
    assert!(matches!(err, Error::Validity { .. }), "{err}");
    for bad in [
        &b""[..],
        b"\x30\x00",
        &spki[..spki.len() - 1],
        &[spki.as_slice(), b"\0"].concat(),
    ] {
        let err = ca
            .issue_client_for_public_key("pc-1", bad, HOUR)
            .unwrap_err();
        assert!(matches!(err, Error::PublicKey { .. }), "{err}");
    }
}

#[test]
fn rsa_device_keys_are_refused() {
    // SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { SEQUENCE { INTEGER 3 } } }:
    // well-formed enough for the algorithm to be recognised, and RSA is not accepted.
    let rsa = [
        &[0x30, 0x17, 0x30, 0x0d, 0x06, 0x09][..],
        &[
            0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ],
        &[0x03, 0x06, 0x00, 0x30, 0x03, 0x02, 0x01, 0x03],
    ]
    .concat();
    let ca = Ca::generate("Brevet CA").unwrap();
    let err = ca
        .issue_client_for_public_key("pc-1", &rsa, HOUR)
        .unwrap_err();
    assert!(
        err.to_string().contains("unsupported key algorithm"),
        "{err}"
    );
}

#[test]
fn server_inputs_are_checked() {
    let ca = Ca::generate("Brevet CA").unwrap();
    assert!(matches!(
        ca.issue_server(&[], &[], 30),
        Err(Error::NoServerNames)
    ));
    let names = ["brevet.example.com".to_owned()];
    assert!(matches!(
        ca.issue_server(&names, &[], 0),
        Err(Error::Validity { .. })
    ));
    let wildcard = ["*.example.com".to_owned()];
    assert!(matches!(
        ca.issue_server(&wildcard, &[], 30),
        Err(Error::InvalidName { .. })
    ));
    let ip_only = ca
        .issue_server(&[], &["10.1.2.3".parse().unwrap()], 30)
        .unwrap();
    let der = der(&ip_only.cert_pem);
    let (_, cert) = parse_x509_certificate(&der).unwrap();
    assert!(
        cert.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );
    // A server certificate does not pass as a device certificate.
    assert!(matches!(
        client_device_name(&der),
        Err(Error::NotADeviceCertificate { .. })
    ));
}

#[test]
fn fingerprint_is_the_same_for_pem_and_der() {
    let ca = Ca::generate("Brevet CA").unwrap();
    let der = der(ca.cert_pem());
    let fp = fingerprint_sha256(ca.cert_pem());
    assert_eq!(fp.len(), 64);
    assert!(
        fp.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(fingerprint_sha256(&der), fp);
    assert_eq!(fingerprint_sha256(ca.cert_pem().as_bytes()), fp);
}

#[test]
fn a_ca_needs_a_name() {
    assert!(matches!(Ca::generate(" "), Err(Error::EmptyCaName)));
}
