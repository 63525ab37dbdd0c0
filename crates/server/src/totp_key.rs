//! `totp.key`: the AES-256-GCM key that seals every TOTP secret in the database
//! (`brevet_identity::seal`). It lives in the data directory (0600) beside the other keys, never
//! in the database, so a copy of the database alone yields no seed.
//!
//! `brevetd init` writes it. A server started on an older data directory creates it, but only
//! while the database holds no sealed secret: otherwise the key was lost, every login would
//! fail, and the server refuses to start and says so. At each start, secrets still stored plain
//! (written before this key existed, or by a tool that had no key) are sealed.

use brevet_identity::seal::{self, SealKey};
use brevet_store::Store;

use crate::Error;
use crate::datadir::DataDir;

/// Creates a new key file (refusing to overwrite one).
pub fn create(dir: &DataDir) -> Result<SealKey, Error> {
    let (key, text) = SealKey::generate()?;
    dir.write_new(&dir.totp_key(), &format!("{text}\n"), true)?;
    Ok(key)
}

/// Loads the key file, if there is one.
pub fn load(dir: &DataDir) -> Result<Option<SealKey>, Error> {
    let path = dir.totp_key();
    if !path.exists() {
        return Ok(None);
    }
    SealKey::from_text(&dir.read(&path)?)
        .map(Some)
        .map_err(|e| Error::Config(format!("`{}`: {e}", path.display())))
}

/// The key for the server at start: loaded, or created for a database with no sealed secret;
/// then every plain secret is sealed.
pub async fn open(dir: &DataDir, store: &Store) -> Result<SealKey, Error> {
    let users = store.users().await?;
    let key = match load(dir)? {
        Some(key) => key,
        None if users.iter().any(|u| seal::is_sealed(&u.totp_secret)) => {
            return Err(Error::Config(format!(
                "`{}` is missing but the database holds TOTP secrets sealed with it: restore \
                 the file from the backup of this data directory (without it nobody can sign in)",
                dir.totp_key().display()
            )));
        }
        None => {
            tracing::info!(path = %dir.totp_key().display(), "creating the TOTP sealing key");
            create(dir)?
        }
    };
    let plain: Vec<_> = users
        .iter()
        .filter(|u| !seal::is_sealed(&u.totp_secret))
        .collect();
    if !plain.is_empty() {
        let mut tx = store.begin().await?;
        for u in &plain {
            let sealed = key.seal(&u.name, &u.totp_secret)?;
            tx.replace_totp_secret(&u.name, &u.totp_secret, &sealed)
                .await?;
        }
        tx.commit().await?;
        tracing::info!(
            count = plain.len(),
            "sealed TOTP secrets stored in plain text"
        );
    }
    Ok(key)
}

/// The base32 TOTP secret of `user` from its stored form (sealed, or plain from before).
pub fn secret_of(key: &SealKey, user: &str, stored: &str) -> Result<String, Error> {
    if seal::is_sealed(stored) {
        key.open(user, stored)
            .map_err(|e| Error::Internal(format!("the TOTP secret of `{user}`: {e}")))
    } else {
        Ok(stored.to_owned())
    }
}
