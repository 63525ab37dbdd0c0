//! Enrollment and the device's credentials.
//!
//! The device key is generated here (Ed25519, from the OS's randomness) and never leaves the
//! state directory; the server only sees its public key and returns a short-lived client
//! certificate bound to the device name, the CA, and the grant key to pin. Nothing in the state
//! directory is a reusable password: the one-time token is spent by enrollment.
//!
//! ```text
//! STATE_DIR/ (0700)
//!   enrollment.json   server URL, device name, pinned grant key, certificate times
//!   ca.pem            the Brevet CA (the only TLS trust root)
//!   device.key        PKCS#8 Ed25519 private key, base64 (0600)
//!   device.pem        the client certificate
//! ```

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use brevet_proto::agent::{EnrollRequest, RenewRequest};
use brevet_proto::timefmt::parse_rfc3339;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::net::Server;
use crate::{Error, Result};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    pub server: String,
    pub device: String,
    /// The grant-signing public key pinned at enrollment (base64, 32 bytes).
    pub grant_public_key: String,
    /// Unix seconds: when the current certificate was received, and when it expires.
    pub cert_received_at: i64,
    pub cert_not_after: i64,
    /// Random, made at enrollment and kept across certificate renewals: names this enrollment
    /// (a superseded enrollment is recognised by it). Empty in files of older agents.
    #[serde(default)]
    pub enrollment_id: String,
}

impl Enrollment {
    /// Certificates are renewed at two thirds of their life.
    pub fn renewal_due(&self, now: i64) -> bool {
        let life = self.cert_not_after - self.cert_received_at;
        now >= self.cert_received_at + life * 2 / 3
    }
}

/// Everything needed to talk to the server as this device.
pub struct Credentials {
    pub enrollment: Enrollment,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pkcs8: Vec<u8>,
}

impl Credentials {
    pub fn server(&self) -> Result<Server> {
        Server::mutual(
            &self.enrollment.server,
            &self.ca_pem,
            &self.cert_pem,
            &self.key_pkcs8,
        )
    }

    pub fn grant_public_key(&self) -> Result<Vec<u8>> {
        Ok(brevet_proto::grant::public_key_from_b64(
            &self.enrollment.grant_public_key,
        )?)
    }
}

pub struct StateDir {
    pub path: PathBuf,
}

impl StateDir {
    /// Opens (creating with mode 0700) the state directory, tightening its mode if needed.
    pub fn open(path: &Path) -> Result<StateDir> {
        fs::create_dir_all(path).map_err(|e| Error::file("create", path, e))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::file("set permissions on", path, e))?;
        Ok(StateDir {
            path: path.to_owned(),
        })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn is_enrolled(&self) -> bool {
        self.file("enrollment.json").exists()
    }

    pub fn load(&self) -> Result<Credentials> {
        let read = |name: &str| -> Result<String> {
            let p = self.file(name);
            let bytes = crate::linux::fsio::read_if_present(&p)?
                .ok_or_else(|| Error::file("read", &p, std::io::ErrorKind::NotFound.into()))?;
            String::from_utf8(bytes)
                .map_err(|_| Error::State(format!("`{}` is not UTF-8; enroll again", p.display())))
        };
        let enrollment: Enrollment = serde_json::from_str(&read("enrollment.json")?)
            .map_err(|e| Error::State(format!("enrollment.json is damaged: {e}; enroll again")))?;
        let key_pkcs8 = data_encoding::BASE64
            .decode(read("device.key")?.trim().as_bytes())
            .map_err(|_| Error::State("device.key is not base64; enroll again".into()))?;
        Ed25519KeyPair::from_pkcs8(&key_pkcs8)
            .map_err(|_| Error::State("device.key is not an Ed25519 key; enroll again".into()))?;
        Ok(Credentials {
            enrollment,
            ca_pem: read("ca.pem")?,
            cert_pem: read("device.pem")?,
            key_pkcs8,
        })
    }

    /// Writes a file atomically (temp, fsync, rename, fsync dir) with `mode`.
    pub fn write(&self, name: &str, contents: &[u8], mode: u32) -> Result<()> {
        let tmp = self.file(&format!(".{name}.tmp"));
        let dest = self.file(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| Error::file("create", &tmp, e))?;
        f.write_all(contents)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::file("write", &tmp, e))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::file("set permissions on", &tmp, e))?;
        fs::rename(&tmp, &dest).map_err(|e| Error::file("rename into", &dest, e))?;
        fs::File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::file("sync", &self.path, e))
    }

    fn save_key_and_cert(&self, key_pkcs8: &[u8], cert_pem: &str) -> Result<()> {
        self.write(
            "device.key",
            data_encoding::BASE64.encode(key_pkcs8).as_bytes(),
            0o600,
        )?;
        self.write("device.pem", cert_pem.as_bytes(), 0o644)
    }

    fn save_enrollment(&self, e: &Enrollment) -> Result<()> {
        let text = serde_json::to_vec_pretty(e).map_err(|e| Error::State(e.to_string()))?;
        self.write("enrollment.json", &text, 0o600)
    }
}

/// A new Ed25519 device key: (PKCS#8 DER, base64 SubjectPublicKeyInfo DER).
pub fn new_key() -> Result<(Vec<u8>, String)> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| Error::State("cannot generate a device key".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| Error::State("cannot load the new device key".into()))?;
    let mut spki = ED25519_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    Ok((pkcs8.as_ref().to_vec(), data_encoding::BASE64.encode(&spki)))
}

/// 16 random bytes, hex.
fn new_enrollment_id() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::State("cannot make an enrollment id".into()))?;
    Ok(data_encoding::HEXLOWER.encode(&b))
}

/// `brevet-agent enroll`: spends the one-time token, stores the credentials.
pub fn enroll(
    server_url: &str,
    ca_pem: &str,
    token: &str,
    state: &StateDir,
    now: i64,
) -> Result<Enrollment> {
    if token.is_empty()
        || token.len() > 200
        || !token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
    {
        return Err(Error::Usage(
            "the enrollment token is malformed; copy it from `brevet device enroll-token`".into(),
        ));
    }
    let (key_pkcs8, public_key) = new_key()?;
    let resp = Server::anonymous(server_url, ca_pem)?.enroll(&EnrollRequest {
        token: token.to_owned(),
        public_key,
    })?;
    brevet_proto::validate::device_name(&resp.device)?;
    brevet_proto::grant::public_key_from_b64(&resp.grant_public_key)?;
    let enrollment = Enrollment {
        server: server_url.trim_end_matches('/').to_owned(),
        device: resp.device,
        grant_public_key: resp.grant_public_key,
        cert_received_at: now,
        cert_not_after: parse_rfc3339("cert_not_after", &resp.cert_not_after)?,
        enrollment_id: new_enrollment_id()?,
    };
    // The CA we were given is what we keep trusting (the server's copy is not a new root).
    state.write("ca.pem", ca_pem.as_bytes(), 0o644)?;
    state.save_key_and_cert(&key_pkcs8, &resp.cert_pem)?;
    state.save_enrollment(&enrollment)?;
    Ok(enrollment)
}

/// Renews the client certificate with a fresh key when two thirds of its life have passed.
/// Returns true when it renewed.
pub fn renew_if_due(state: &StateDir, creds: &mut Credentials, now: i64) -> Result<bool> {
    if !creds.enrollment.renewal_due(now) {
        return Ok(false);
    }
    let (key_pkcs8, public_key) = new_key()?;
    let resp = creds.server()?.renew(&RenewRequest { public_key })?;
    state.save_key_and_cert(&key_pkcs8, &resp.cert_pem)?;
    creds.enrollment.cert_received_at = now;
    creds.enrollment.cert_not_after = parse_rfc3339("cert_not_after", &resp.cert_not_after)?;
    state.save_enrollment(&creds.enrollment)?;
    creds.key_pkcs8 = key_pkcs8;
    creds.cert_pem = resp.cert_pem;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_at_two_thirds() {
        let e = Enrollment {
            server: "https://x".into(),
            device: "web-01".into(),
            grant_public_key: String::new(),
            cert_received_at: 0,
            cert_not_after: 90,
            enrollment_id: String::new(),
        };
        assert!(!e.renewal_due(59));
        assert!(e.renewal_due(60));
    }

    #[test]
    fn keys_are_ed25519_spki() {
        let (pkcs8, spki) = new_key().unwrap();
        let spki = data_encoding::BASE64.decode(spki.as_bytes()).unwrap();
        assert_eq!(spki.len(), 44);
        assert_eq!(&spki[..12], &ED25519_SPKI_PREFIX);
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(&spki[12..], pair.public_key().as_ref());
    }

    #[test]
    fn state_dir_is_private_and_files_are_atomic() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let s = StateDir::open(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        s.write("device.key", b"secret", 0o600).unwrap();
        assert_eq!(
            fs::metadata(dir.join("device.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert!(!dir.join(".device.key.tmp").exists());
        assert!(!s.is_enrolled());
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_network() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::open(tmp.path()).unwrap();
        for bad in ["", "bve_x y", "bve_x;rm", &"a".repeat(300)] {
            assert!(matches!(
                enroll("https://127.0.0.1:1", "", bad, &s, 0),
                Err(Error::Usage(_))
            ));
        }
    }
}
