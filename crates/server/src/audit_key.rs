//! The Ed25519 key that signs audit checkpoints: `audit.key` (PKCS#8, base64, mode 0600) and
//! `audit.pub` (the raw public key, base64) in the data directory.
//!
//! It is separate from the grant key: the two have different readers (devices trust the grant
//! key, auditors and witnesses the audit key) and may be rotated apart. `brevetd init` writes
//! it; a data directory from before audit checkpoints gets one when the server starts.

use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::Error;
use crate::datadir::{DataDir, new_grant_key};

/// The audit key and its public half as base64.
pub struct AuditKey {
    pub pair: Ed25519KeyPair,
    pub public_b64: String,
}

/// Writes a new key pair; refuses to overwrite either file.
pub fn create(dir: &DataDir) -> Result<AuditKey, Error> {
    let (pkcs8_b64, pair) = new_grant_key()?;
    dir.write_new(&dir.audit_key(), &pkcs8_b64, true)?;
    let public_b64 = public_b64(&pair);
    dir.write_new(&dir.audit_pub(), &format!("{public_b64}\n"), false)?;
    Ok(AuditKey { pair, public_b64 })
}

/// Loads the key, creating it if the data directory has none yet. Refuses a key whose
/// `audit.pub` says otherwise (one of the two files was replaced).
pub fn load_or_create(dir: &DataDir) -> Result<AuditKey, Error> {
    let path = dir.audit_key();
    if !path.exists() {
        tracing::info!(path = %path.display(), "creating the audit checkpoint key");
        return create(dir);
    }
    let text = dir.read(&path)?;
    let der = data_encoding::BASE64
        .decode(text.trim().as_bytes())
        .map_err(|_| Error::Config(format!("`{}` is not base64", path.display())))?;
    let pair = Ed25519KeyPair::from_pkcs8(&der)
        .map_err(|_| Error::Config(format!("`{}` is not an Ed25519 PKCS#8 key", path.display())))?;
    let public_b64 = public_b64(&pair);
    let pub_path = dir.audit_pub();
    if pub_path.exists() {
        if dir.read(&pub_path)?.trim() != public_b64 {
            return Err(Error::Config(format!(
                "`{}` does not hold the public key of `{}`: restore the pair, or move both \
                 away to make a new key (witnesses must then be given the new `audit.pub`)",
                pub_path.display(),
                path.display()
            )));
        }
    } else {
        dir.write_new(&pub_path, &format!("{public_b64}\n"), false)?;
    }
    Ok(AuditKey { pair, public_b64 })
}

fn public_b64(pair: &Ed25519KeyPair) -> String {
    data_encoding::BASE64.encode(pair.public_key().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let first = load_or_create(&dir).unwrap();
        let again = load_or_create(&dir).unwrap();
        assert_eq!(first.public_b64, again.public_b64);
        assert_eq!(
            std::fs::read_to_string(dir.audit_pub()).unwrap(),
            format!("{}\n", first.public_b64)
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.audit_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(create(&dir).is_err(), "never overwritten");
        assert_eq!(
            brevet_audit::parse_public_key(&first.public_b64)
                .unwrap()
                .as_slice(),
            first.pair.public_key().as_ref()
        );
    }

    #[test]
    fn a_mismatched_public_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        load_or_create(&dir).unwrap();
        std::fs::write(dir.audit_pub(), format!("{}\n", "A".repeat(44))).unwrap();
        assert!(matches!(load_or_create(&dir), Err(Error::Config(_))));
    }
}
