//! The data directory: what `brevetd init` creates and `brevetd serve` reads.
//!
//! ```text
//! DIR/ (0700)
//!   brevet.toml      settings and roles
//!   policy.cedar     the Cedar policy
//!   ca.pem ca.key    the Brevet CA (key 0600)
//!   server.pem server.key   the server's TLS certificate (key 0600)
//!   grant.key grant.pub     the Ed25519 grant-signing key, PKCS#8 base64 (0600) and public key
//!   audit.key audit.pub     the Ed25519 audit checkpoint key, the same forms (docs/audit.md)
//!   brevet.db        the SQLite database (when no PostgreSQL URL is configured)
//!   restore-marker.json  the newest audit checkpoint served and the restore generation
//!                    (`restore.rs`): a database older than it is a restore from backup
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;

use crate::Error;

#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("brevet.toml")
    }
    pub fn policy(&self) -> PathBuf {
        self.root.join("policy.cedar")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.root.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.root.join("server.key")
    }
    pub fn grant_key(&self) -> PathBuf {
        self.root.join("grant.key")
    }
    pub fn grant_pub(&self) -> PathBuf {
        self.root.join("grant.pub")
    }
    pub fn audit_key(&self) -> PathBuf {
        self.root.join("audit.key")
    }
    pub fn audit_pub(&self) -> PathBuf {
        self.root.join("audit.pub")
    }
    pub fn totp_key(&self) -> PathBuf {
        self.root.join("totp.key")
    }

    /// The database URL: `sqlite://…` paths are taken relative to the data dir.
    pub fn database_url(&self, configured: &str) -> String {
        match configured.strip_prefix("sqlite://") {
            Some(path) if !path.starts_with('/') => {
                format!("sqlite://{}", self.root.join(path).display())
            }
            _ => configured.to_owned(),
        }
    }

    pub fn is_initialised(&self) -> bool {
        self.config().exists()
    }

    pub fn read(&self, path: &Path) -> Result<String, Error> {
        fs::read_to_string(path).map_err(|e| Error::io("read", path, e))
    }

    /// Creates the directory with mode 0700 (or tightens an existing empty one).
    pub fn create(&self) -> Result<(), Error> {
        fs::create_dir_all(&self.root).map_err(|e| Error::io("create", &self.root, e))?;
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("set permissions on", &self.root, e))
    }

    /// Writes a new file; refuses to overwrite one. `secret` files get mode 0600, others 0644.
    pub fn write_new(&self, path: &Path, contents: &str, secret: bool) -> Result<(), Error> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if secret { 0o600 } else { 0o644 })
            .open(path)
            .map_err(|e| Error::io("create", path, e))?;
        f.write_all(contents.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io("write", path, e))
    }

    /// Replaces `path` atomically (a temporary file beside it, fsynced, renamed over it, the
    /// directory fsynced), mode 0644.
    pub fn write_replace(&self, path: &Path, contents: &str) -> Result<(), Error> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&tmp)?;
            f.write_all(contents.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            fs::File::open(&self.root)?.sync_all()
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("write", path, e)
        })
    }

    /// Loads the grant-signing key.
    pub fn load_grant_key(&self) -> Result<Ed25519KeyPair, Error> {
        let text = self.read(&self.grant_key())?;
        let der = data_encoding::BASE64
            .decode(text.trim().as_bytes())
            .map_err(|_| {
                Error::Config(format!("`{}` is not base64", self.grant_key().display()))
            })?;
        Ed25519KeyPair::from_pkcs8(&der).map_err(|_| {
            Error::Config(format!(
                "`{}` is not an Ed25519 PKCS#8 key",
                self.grant_key().display()
            ))
        })
    }
}

/// Generates a new Ed25519 grant-signing key as base64 PKCS#8.
pub fn new_grant_key() -> Result<(String, Ed25519KeyPair), Error> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| Error::Internal("cannot generate the grant key".into()))?;
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| Error::Internal("cannot load the new grant key".into()))?;
    Ok((data_encoding::BASE64.encode(pkcs8.as_ref()), key))
}
