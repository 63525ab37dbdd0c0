//! People proving who they are: password + TOTP login, bearer sessions, and step-up.
//!
//! A session token is random, shown to the client once, and stored only as its SHA-256. A TOTP
//! code is accepted once per user (the last used step is stored and compared in the same
//! statement that records the new one). Approving, denying and break-glass need a second factor
//! no older than `step_up_max_age`: from the login, or from a `totp` code sent with the action.

use brevet_identity::{password, token, totp};
use brevet_proto::api::{LoginRequest, LoginResponse};
use brevet_proto::timefmt::rfc3339;
use brevet_proto::validate;
use brevet_store::{SessionRecord, UserRecord};
use serde_json::json;

use crate::Error;
use crate::app::App;

/// The authenticated person behind an API call.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserRecord,
    pub token_hash: String,
    pub session: SessionRecord,
}

impl Caller {
    pub fn name(&self) -> &str {
        &self.user.name
    }
}

/// The one answer to a login that fails, whatever failed: it does not tell which accounts
/// exist or are locked.
const BAD_LOGIN: &str = "login failed: wrong user name, password or TOTP code (a code is \
     accepted once; after 10 failures in a row an account is locked for 15 minutes)";

/// Failed logins (or step-up codes) in a row that lock an account.
pub(crate) const MAX_FAILURES: i64 = 10;
/// How long the lock lasts. An administrator's `user enable` lifts it at once.
pub(crate) const LOCKOUT_SECONDS: i64 = 15 * 60;

/// A hash to verify against when the user does not exist, so timing does not reveal which
/// accounts exist.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    password::hash_password("brevet-dummy-password").unwrap_or_default()
});

pub async fn login(app: &App, req: LoginRequest) -> Result<LoginResponse, Error> {
    let name = validate::user_name(&req.user)?.to_owned();
    validate::totp_code(&req.totp)?;
    let now = app.clock.now();
    let user = app.store.user(&name).await?;
    let locked = match &user {
        Some(_) => app
            .store
            .locked_until(&name)
            .await?
            .is_some_and(|t| t > now),
        None => false,
    };
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let pw = req.password;
    // Verified even for a locked account, so the time taken does not tell.
    let password_ok = tokio::task::spawn_blocking(move || password::verify_password(&pw, &hash))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let user = match user {
        Some(_) if locked => {
            fail_login(app, &name, "locked", now, false).await?;
            return Err(Error::Unauthenticated(BAD_LOGIN.into()));
        }
        Some(u) if password_ok && u.enabled => u,
        known => {
            fail_login(app, &name, "password", now, known.is_some()).await?;
            return Err(Error::Unauthenticated(BAD_LOGIN.into()));
        }
    };
    let mut tx = app.store.begin().await?;
    if !use_totp(app, &mut tx, &user, &req.totp, now).await? {
        drop(tx);
        fail_login(app, &name, "totp", now, true).await?;
        return Err(Error::Unauthenticated(BAD_LOGIN.into()));
    }
    tx.clear_login_failures(&name).await?;
    let token = token::new_token("bvs_");
    let session = SessionRecord {
        user: name.clone(),
        created_at: now,
        expires_at: now + app.durations.session_ttl,
        mfa_at: Some(now),
        revoked: false,
    };
    tx.insert_session(&token::hash_token(&token), &session)
        .await?;
    tx.audit(
        "login.succeeded",
        &name,
        &name,
        json!({ "mfa": "totp" }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(LoginResponse {
        token,
        user: name,
        expires_at: rfc3339(session.expires_at),
    })
}

/// Records a failed login; for an existing account (`counted`) it counts toward the lock.
async fn fail_login(
    app: &App,
    name: &str,
    factor: &str,
    now: i64,
    counted: bool,
) -> Result<(), Error> {
    let mut tx = app.store.begin().await?;
    tx.audit("login.failed", name, name, json!({ "factor": factor }), now)
        .await?;
    if counted {
        count_failure(&mut tx, name, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Counts a wrong password or code for `name`; the failure that reaches the limit locks the
/// account and is recorded as `login.locked`.
async fn count_failure(tx: &mut brevet_store::Tx, name: &str, now: i64) -> Result<(), Error> {
    let until = now + LOCKOUT_SECONDS;
    if tx.record_login_failure(name, MAX_FAILURES, until).await? {
        tracing::warn!(user = %name, "account locked after {MAX_FAILURES} failed attempts");
        let data = json!({ "failures": MAX_FAILURES, "locked_until": rfc3339(until) });
        tx.audit("login.locked", "brevetd", name, data, now).await?;
    }
    Ok(())
}

/// Verifies `code` for `user` and records its step, inside `tx`. False if wrong or reused.
async fn use_totp(
    app: &App,
    tx: &mut brevet_store::Tx,
    user: &UserRecord,
    code: &str,
    now: i64,
) -> Result<bool, Error> {
    let base32 = crate::totp_key::secret_of(&app.totp_key, &user.name, &user.totp_secret)?;
    let secret = totp::secret_from_base32(&base32)?;
    let now = u64::try_from(now).map_err(|_| Error::Internal("clock before 1970".into()))?;
    let last = user.totp_last_step.and_then(|s| u64::try_from(s).ok());
    let Some(step) = totp::verify(&secret, code, now, last) else {
        return Ok(false);
    };
    let step = i64::try_from(step).map_err(|_| Error::Internal("totp step".into()))?;
    Ok(tx.use_totp_step(&user.name, step).await?)
}

/// Resolves a bearer token to a caller: the session must exist, be unexpired and unrevoked, and
/// its user enabled.
pub async fn authenticate(app: &App, bearer: &str) -> Result<Caller, Error> {
    let unauthenticated =
        || Error::Unauthenticated("not logged in or session expired: run `brevet login`".into());
    if bearer.len() > 200 {
        return Err(unauthenticated());
    }
    let token_hash = token::hash_token(bearer);
    let session = app
        .store
        .session(&token_hash)
        .await?
        .ok_or_else(unauthenticated)?;
    if session.revoked || session.expires_at <= app.clock.now() {
        return Err(unauthenticated());
    }
    let user = app
        .store
        .user(&session.user)
        .await?
        .ok_or_else(unauthenticated)?;
    if !user.enabled {
        return Err(Error::Unauthenticated(format!(
            "user `{}` is disabled",
            user.name
        )));
    }
    Ok(Caller {
        user,
        token_hash,
        session,
    })
}

/// Proves a fresh second factor for a sensitive action and returns its age in seconds: a `code`
/// is verified (and consumed) now; without one, the session's last second factor must be no
/// older than `step_up_max_age`.
pub async fn step_up(
    app: &App,
    caller: &mut Caller,
    code: Option<&str>,
    action: &str,
) -> Result<i64, Error> {
    let now = app.clock.now();
    let max = app.durations.step_up_max_age;
    if let Some(code) = code {
        validate::totp_code(code)?;
        let mut tx = app.store.begin().await?;
        // Re-read the user inside the transaction: the last used step may have moved.
        let user = tx
            .user(&caller.user.name)
            .await?
            .ok_or_else(|| Error::Unauthenticated("user no longer exists".into()))?;
        if tx.locked_until(&user.name).await?.is_some_and(|t| t > now) {
            return Err(Error::MfaRequired(format!(
                "{action} refused: too many wrong codes; the account is locked for up to {} \
                 minutes",
                LOCKOUT_SECONDS / 60
            )));
        }
        if !use_totp(app, &mut tx, &user, code, now).await? {
            drop(tx);
            let mut tx = app.store.begin().await?;
            count_failure(&mut tx, &user.name, now).await?;
            tx.commit().await?;
            return Err(Error::MfaRequired(format!(
                "{action} refused: the TOTP code is wrong, too old or already used"
            )));
        }
        tx.clear_login_failures(&user.name).await?;
        tx.set_session_mfa(&caller.token_hash, now).await?;
        tx.audit(
            "mfa.step_up",
            caller.name(),
            caller.name(),
            json!({ "for": action }),
            now,
        )
        .await?;
        tx.commit().await?;
        caller.session.mfa_at = Some(now);
        return Ok(0);
    }
    match caller.session.mfa_at {
        Some(at) if now - at <= max => Ok(now - at),
        _ => Err(Error::MfaRequired(format!(
            "{action} needs a second factor from the last {}: pass --totp CODE",
            validate::format_duration(max as u64)
        ))),
    }
}

pub async fn logout(app: &App, caller: &Caller) -> Result<(), Error> {
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    tx.revoke_session(&caller.token_hash, now).await?;
    tx.audit("logout", caller.name(), caller.name(), json!({}), now)
        .await?;
    tx.commit().await?;
    Ok(())
}
