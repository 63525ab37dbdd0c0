//! The Brevet certificate authority.
//!
//! `brevetd init` makes one CA (ECDSA P-256, ten years, `CA:TRUE` with path length 0, so it signs
//! leaf certificates only). From it come the server certificate (`serverAuth`) and the short-lived
//! device certificates (`clientAuth`). A device generates its key itself and sends only its
//! SubjectPublicKeyInfo; the CA signs a certificate for that foreign key, so no device private key
//! ever exists on the server.
//!
//! Guarantees: a loaded CA is a CA and its key matches its certificate; every certificate gets a
//! random 127-bit serial (rcgen's default would derive it from the public key and so repeat on
//! renewal); leaf certificates are backdated by [`CLOCK_SKEW`] so a device whose clock is a little
//! behind still accepts them.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PublicKeyData,
    SanType, SerialNumber, SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

use crate::{Error, Result, random};

/// How long a new CA is valid.
const CA_VALIDITY: time::Duration = time::Duration::days(3650);

/// How far `notBefore` is set into the past, to tolerate clocks that run behind.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Longest DNS name (RFC 1035, without the trailing dot).
const MAX_DNS_NAME: usize = 253;

/// The Brevet CA: its certificate and key (PEM) and a ready signer.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate issued together with a freshly generated key (the server certificate).
#[derive(Clone)]
pub struct Issued {
    /// The leaf certificate alone (not the chain), PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl Ca {
    /// Makes a new CA named `common_name`, valid for ten years from now.
    pub fn generate(common_name: &str) -> Result<Ca> {
        Self::generate_at(common_name, SystemTime::now())
    }

    /// [`Ca::generate`] with the current time as a parameter.
    pub fn generate_at(common_name: &str, now: SystemTime) -> Result<Ca> {
        if common_name.trim().is_empty() {
            return Err(Error::EmptyCaName);
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| Error::Key {
            what: "CA key",
            source,
        })?;
        let now = OffsetDateTime::from(now);
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key).map_err(|source| Error::Issue {
            what: "CA certificate",
            source,
        })?;
        // One loading path for new and stored CAs, so both are checked the same way.
        Self::from_pem(&cert.pem(), &key.serialize_pem())
    }

    /// Loads a CA from its certificate and PKCS#8 key (PEM). Fails if the certificate is not a
    /// CA or the key is not the certificate's key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        let der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|source| Error::Pem {
                what: "CA certificate",
                label: "CERTIFICATE",
                source,
            })?;
        let (_, x509) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| Error::CertificateParse {
                what: "CA certificate",
                detail: e.to_string(),
            })?;
        let is_ca = matches!(x509.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        if !is_ca {
            return Err(Error::NotACa);
        }
        let key = KeyPair::from_pem(key_pem).map_err(|source| Error::Key {
            what: "CA key",
            source,
        })?;
        if x509.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(Error::CaKeyMismatch);
        }
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| Error::CertificateParse {
            what: "CA certificate",
            detail: e.to_string(),
        })?;
        Ok(Ca {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer,
        })
    }

    /// The CA certificate, PEM (what clients trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 PEM (store it with mode 0600).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a server certificate and key for `dns_names` and `ips`, valid for `days` days.
    pub fn issue_server(&self, dns_names: &[String], ips: &[IpAddr], days: u32) -> Result<Issued> {
        self.issue_server_at(dns_names, ips, days, SystemTime::now())
    }

    /// [`Ca::issue_server`] with the current time as a parameter.
    pub fn issue_server_at(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        days: u32,
        now: SystemTime,
    ) -> Result<Issued> {
        const WHAT: &str = "server certificate";
        if days == 0 {
            return Err(Error::Validity {
                what: WHAT,
                detail: "`days` is 0".to_owned(),
            });
        }
        let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
        for name in dns_names {
            sans.push(SanType::DnsName(dns_name("server DNS name", name)?));
        }
        sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let common_name = match (dns_names.first(), ips.first()) {
            (Some(name), _) => name.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => return Err(Error::NoServerNames),
        };
        let mut params = leaf_params(&common_name, sans, ExtendedKeyUsagePurpose::ServerAuth)?;
        params.not_before = OffsetDateTime::from(now) - CLOCK_SKEW;
        params.not_after = OffsetDateTime::from(now) + time::Duration::days(i64::from(days));
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| Error::Key {
            what: "server key",
            source,
        })?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| Error::Issue { what: WHAT, source })?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a device (client) certificate for a key generated on the device.
    ///
    /// `public_key_spki_der` is the device key's DER SubjectPublicKeyInfo (ECDSA P-256, P-384 or
    /// Ed25519). The certificate names the device in the subject CN and in one DNS SAN, carries
    /// `clientAuth` only, and is valid for `valid_for` from now. Returns the certificate PEM.
    pub fn issue_client_for_public_key(
        &self,
        device_name: &str,
        public_key_spki_der: &[u8],
        valid_for: Duration,
    ) -> Result<String> {
        self.issue_client_for_public_key_at(
            device_name,
            public_key_spki_der,
            valid_for,
            SystemTime::now(),
        )
    }

    /// [`Ca::issue_client_for_public_key`] with the current time as a parameter.
    pub fn issue_client_for_public_key_at(
        &self,
        device_name: &str,
        public_key_spki_der: &[u8],
        valid_for: Duration,
        now: SystemTime,
    ) -> Result<String> {
        const WHAT: &str = "device certificate";
        let san = SanType::DnsName(dns_name("device name", device_name)?);
        let public_key = device_public_key(public_key_spki_der)?;
        let valid_for = time::Duration::try_from(valid_for)
            .ok()
            .filter(|d| d.is_positive())
            .ok_or_else(|| Error::Validity {
                what: WHAT,
                detail: format!("`{valid_for:?}` is zero or too long"),
            })?;
        let now = OffsetDateTime::from(now);
        let mut params = leaf_params(device_name, vec![san], ExtendedKeyUsagePurpose::ClientAuth)?;
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now.checked_add(valid_for).ok_or_else(|| Error::Validity {
            what: WHAT,
            detail: "the end date is out of range".to_owned(),
        })?;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(|source| Error::Issue { what: WHAT, source })?;
        Ok(cert.pem())
    }
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("fingerprint_sha256", &fingerprint_sha256(&self.cert_pem))
            .field("key", &"[elided]")
            .finish()
    }
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("fingerprint_sha256", &fingerprint_sha256(&self.cert_pem))
            .field("key_pem", &"[elided]")
            .finish()
    }
}

/// Lowercase hex SHA-256 of a certificate's DER, the form used for pinning.
///
/// Accepts PEM (the first `CERTIFICATE` block is used) or DER. Input that starts like PEM but has
/// no readable certificate is hashed as given, which yields a fingerprint no real certificate
/// has, so a pin comparison against it fails closed.
pub fn fingerprint_sha256(cert_pem_or_der: impl AsRef<[u8]>) -> String {
    let input = cert_pem_or_der.as_ref();
    let pem = CertificateDer::from_pem_slice(input).ok();
    let der = pem.as_ref().map_or(input, |der| der.as_ref());
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    data_encoding::HEXLOWER.encode(digest.as_ref())
}

/// The device name in a device certificate (DER), as issued by
/// [`Ca::issue_client_for_public_key`].
///
/// Call it on the peer certificate after rustls has verified the chain. It checks the shape
/// Brevet issues: `clientAuth` usage, exactly one DNS SAN, equal to the subject CN.
pub fn client_device_name(cert_der: &[u8]) -> Result<String> {
    let not_device = |detail: &str| Error::NotADeviceCertificate {
        detail: detail.to_owned(),
    };
    let (_, x509) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| Error::CertificateParse {
            what: "client certificate",
            detail: e.to_string(),
        })?;
    let client_auth = matches!(x509.extended_key_usage(), Ok(Some(eku)) if eku.value.client_auth);
    if !client_auth {
        return Err(not_device("no `clientAuth` extended key usage"));
    }
    let mut common_names = x509.subject().iter_common_name();
    let common_name = match (common_names.next(), common_names.next()) {
        (Some(cn), None) => cn
            .as_str()
            .map_err(|_| not_device("unreadable subject CN"))?,
        _ => return Err(not_device("the subject needs exactly one CN")),
    };
    let sans = match x509.subject_alternative_name() {
        Ok(Some(ext)) => &ext.value.general_names,
        _ => return Err(not_device("no subject alternative name")),
    };
    match sans.as_slice() {
        [x509_parser::extensions::GeneralName::DNSName(name)] if *name == common_name => {
            Ok(common_name.to_owned())
        }
        _ => Err(not_device(
            "the only SAN must be a DNS name equal to the CN",
        )),
    }
}

/// Parameters shared by server and device certificates (validity is set by the caller).
fn leaf_params(
    common_name: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// Checks a server or device name and converts it for a DNS SAN. Wildcards, IP addresses and
/// trailing dots are refused.
fn dns_name(what: &'static str, name: &str) -> Result<Ia5String> {
    let invalid = || Error::InvalidName {
        what,
        name: name.to_owned(),
    };
    let plausible = !name.is_empty()
        && name.len() <= MAX_DNS_NAME
        && !name.contains('*')
        && !name.ends_with('.')
        && name.parse::<IpAddr>().is_err()
        && rustls_pki_types::DnsName::try_from(name).is_ok();
    if !plausible {
        return Err(invalid());
    }
    Ia5String::try_from(name).map_err(|_| invalid())
}

/// Parses a device's SubjectPublicKeyInfo and accepts only the key types Brevet supports.
fn device_public_key(spki_der: &[u8]) -> Result<SubjectPublicKeyInfo> {
    let key = SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| Error::PublicKey {
        detail: e.to_string(),
    })?;
    let supported = [
        &PKCS_ECDSA_P256_SHA256,
        &PKCS_ECDSA_P384_SHA384,
        &PKCS_ED25519,
    ];
    if !supported.contains(&key.algorithm()) {
        return Err(Error::PublicKey {
            detail: "unsupported key algorithm".to_owned(),
        });
    }
    Ok(key)
}

/// A random positive serial number of 16 bytes (RFC 5280 allows up to 20).
fn random_serial() -> Result<SerialNumber> {
    let mut serial = [0u8; 16];
    random::fill(&mut serial)?;
    serial[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&serial))
}
