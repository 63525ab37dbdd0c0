//! `brevetd user unlock|reset NAME`: recovering a person from the server machine, whether the
//! server is running or not (no session, no network: the operator's access to the data
//! directory and the database is the authority).
//!
//! - `unlock` clears every login and step-up throttle of the account (as `brevet user enable`
//!   does), audited as `user.unlocked`.
//! - `reset` gives the account a new password and TOTP secret, shown once, ends all its
//!   sessions and clears its throttles, in one transaction, audited as `user.reset`.
//!
//! Both write through the database, so a running server (or every replica) sees the change at
//! once: throttling state is kept nowhere else.

use brevet_identity::{password, totp};
use brevet_proto::validate;
use brevet_store::Store;
use serde::Serialize;
use serde_json::json;

use crate::Error;
use crate::clock::Clock;
use crate::config::Config;
use crate::datadir::DataDir;

/// What `unlock` did.
#[derive(Debug, Serialize)]
pub struct Unlocked {
    pub name: String,
    /// Throttle keys cleared (0 when the account was not throttled).
    pub cleared: u64,
}

/// The new credentials `reset` made (shown once).
#[derive(Debug, Serialize)]
pub struct Reset {
    pub name: String,
    pub password: String,
    pub totp_uri: String,
    pub sessions_revoked: u64,
    pub enabled: bool,
}

async fn open(dir: &DataDir, db: Option<&str>) -> Result<Store, Error> {
    let config = Config::load(&dir.config())?;
    let url = match db {
        Some(url) => url.to_owned(),
        None => dir.database_url(&config.server.db),
    };
    Ok(Store::open(&url).await?)
}

/// Who ran the command, for the audit event.
fn operator() -> serde_json::Value {
    json!({ "via": "brevetd offline command", "os_uid": rustix::process::getuid().as_raw() })
}

pub async fn unlock(
    dir: &DataDir,
    db: Option<&str>,
    clock: &dyn Clock,
    name: &str,
) -> Result<Unlocked, Error> {
    validate::user_name(name)?;
    let store = open(dir, db).await?;
    let now = clock.now();
    let mut tx = store.begin().await?;
    if tx.user(name).await?.is_none() {
        return Err(Error::NotFound(format!(
            "no user `{name}` in this database: check the name and `--db`"
        )));
    }
    let cleared = tx.clear_login_failures(name).await?;
    let mut data = operator();
    data["cleared"] = json!(cleared);
    tx.audit("user.unlocked", "brevetd", name, data, now)
        .await?;
    tx.commit().await?;
    store.close().await;
    Ok(Unlocked {
        name: name.to_owned(),
        cleared,
    })
}

pub async fn reset(
    dir: &DataDir,
    db: Option<&str>,
    clock: &dyn Clock,
    name: &str,
) -> Result<Reset, Error> {
    validate::user_name(name)?;
    let store = open(dir, db).await?;
    let totp_key = crate::totp_key::open(dir, &store).await?;
    let pw = password::generate_password();
    let hash = crate::hashing::POOL.hash(pw.clone()).await?;
    let secret = totp::generate_secret();
    let sealed = totp_key.seal(name, &totp::secret_base32(&secret))?;
    let now = clock.now();
    let mut tx = store.begin().await?;
    let Some(user) = tx.user(name).await? else {
        return Err(Error::NotFound(format!(
            "no user `{name}` in this database: check the name and `--db`"
        )));
    };
    tx.set_password_hash(name, &hash).await?;
    if !tx
        .replace_totp_secret(name, &user.totp_secret, &sealed)
        .await?
    {
        return Err(Error::Conflict(format!(
            "`{name}` changed while being reset: run the command again"
        )));
    }
    let sessions_revoked = tx.revoke_user_sessions(name, now).await?;
    tx.clear_login_failures(name).await?;
    let mut data = operator();
    data["sessions_revoked"] = json!(sessions_revoked);
    tx.audit("user.reset", "brevetd", name, data, now).await?;
    tx.commit().await?;
    store.close().await;
    Ok(Reset {
        name: name.to_owned(),
        password: pw,
        totp_uri: totp::otpauth_uri(&secret, name, "Brevet"),
        sessions_revoked,
        enabled: user.enabled,
    })
}
