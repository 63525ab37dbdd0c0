//! People proving who they are: password + TOTP login, bearer sessions, and step-up.
//!
//! A session token is random, shown to the client once, and stored only as its SHA-256. A TOTP
//! code is accepted once per user (the last used step is stored and compared in the same
//! statement that records the new one). Approving, denying and break-glass need a second factor
//! no older than `step_up_max_age`: from the login, or from a `totp` code sent with the action.
//!
//! Failed logins are throttled per account and source and per source, and wrong step-up codes
//! per session (`throttle`); nothing locks an account. A throttled attempt is refused before the
//! password is hashed, and hashing runs on a bounded pool (`hashing`).

use std::net::IpAddr;

use brevet_identity::{token, totp};
use brevet_proto::api::{LoginRequest, LoginResponse};
use brevet_proto::timefmt::rfc3339;
use brevet_proto::validate;
use brevet_store::{SessionRecord, UserRecord};
use serde_json::json;

use crate::app::App;
use crate::{Error, hashing, throttle};

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
/// exist.
const BAD_LOGIN: &str = "login failed: wrong user name, password or TOTP code (a code is \
     accepted once; repeated failures from one address make it wait longer each time)";

/// The longest password accepted, in bytes: longer ones are refused before hashing.
pub(crate) const MAX_PASSWORD: usize = 1024;

/// Logs `req` in from the TCP peer `peer`.
pub async fn login(app: &App, req: LoginRequest, peer: IpAddr) -> Result<LoginResponse, Error> {
    let name = validate::user_name(&req.user)?.to_owned();
    validate::totp_code(&req.totp)?;
    if req.password.len() > MAX_PASSWORD {
        return Err(Error::Invalid(format!(
            "invalid password: longer than {MAX_PASSWORD} bytes"
        )));
    }
    let now = app.clock.now();
    let keys = throttle::LoginKeys::new(&name, peer);
    // Before any hashing: a throttled source costs the server one read.
    throttle::check(app, &[&keys.account, &keys.address], now, "logins").await?;
    let user = app.store.user(&name).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    // Verified against a dummy hash for unknown names, so the time taken does not tell.
    let password_ok = hashing::POOL.verify(req.password, hash).await?;
    let user = match user {
        Some(u) if password_ok && u.enabled => u,
        Some(_) => {
            fail_login(app, &name, &keys, "password", now).await?;
            return Err(Error::Unauthenticated(BAD_LOGIN.into()));
        }
        None => {
            fail_unknown(app, &keys, now).await?;
            return Err(Error::Unauthenticated(BAD_LOGIN.into()));
        }
    };
    let mut tx = app.store.begin().await?;
    if !use_totp(app, &mut tx, &user, &req.totp, now).await? {
        drop(tx);
        fail_login(app, &name, &keys, "totp", now).await?;
        return Err(Error::Unauthenticated(BAD_LOGIN.into()));
    }
    tx.clear_throttle(&keys.account).await?;
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

/// Records a failed login for the account `name`: audited (`login.failed`, with the factor and
/// the source), counted for its account-and-source key and its source key; the failure that
/// starts the account key's waits is audited as `login.throttled`.
async fn fail_login(
    app: &App,
    name: &str,
    keys: &throttle::LoginKeys,
    factor: &str,
    now: i64,
) -> Result<(), Error> {
    let mut tx = app.store.begin().await?;
    tx.audit(
        "login.failed",
        name,
        name,
        json!({ "factor": factor, "source": keys.source }),
        now,
    )
    .await?;
    let (failures, wait) = throttle::count_login(&mut tx, keys, Some(name), now).await?;
    if failures == throttle::ACCOUNT_FREE + 1 {
        tracing::warn!(user = %name, source = %keys.source, "failed logins throttled");
        let data = json!({ "source": keys.source, "failures": failures, "retry_after": wait });
        tx.audit("login.throttled", "brevetd", name, data, now)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Records a failed login for a name that is no account: counted like an account's (so the
/// answers do not tell), and for the per-window summary instead of one audit event each.
async fn fail_unknown(app: &App, keys: &throttle::LoginKeys, now: i64) -> Result<(), Error> {
    let mut tx = app.store.begin().await?;
    throttle::count_login(&mut tx, keys, None, now).await?;
    tx.count_unknown_login(now.div_euclid(throttle::WINDOW), &keys.source)
        .await?;
    tx.commit().await?;
    throttle::flush_unknown(app).await
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
        // Wrong codes slow down this session only; failed logins never block a step-up.
        let key = throttle::step_key(&caller.token_hash);
        throttle::check(app, &[&key], now, "second-factor codes").await?;
        let mut tx = app.store.begin().await?;
        // Re-read the user inside the transaction: the last used step may have moved.
        let user = tx
            .user(&caller.user.name)
            .await?
            .ok_or_else(|| Error::Unauthenticated("user no longer exists".into()))?;
        if !use_totp(app, &mut tx, &user, code, now).await? {
            drop(tx);
            let mut tx = app.store.begin().await?;
            let (failures, wait) = throttle::count(
                &mut tx,
                &key,
                Some(&user.name),
                None,
                throttle::STEP_FREE,
                now,
            )
            .await?;
            if failures == throttle::STEP_FREE + 1 {
                let data = json!({ "for": action, "failures": failures, "retry_after": wait });
                tx.audit("mfa.throttled", "brevetd", &user.name, data, now)
                    .await?;
            }
            tx.commit().await?;
            return Err(Error::MfaRequired(format!(
                "{action} refused: the TOTP code is wrong, too old or already used"
            )));
        }
        tx.clear_throttle(&key).await?;
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
