//! Login throttling that an outsider cannot turn against a legitimate user.
//!
//! The old rule (ten failures lock the account for 15 minutes) let anyone lock out every
//! approver and admin, and the lock also blocked step-up in sessions already signed in. Now
//! failures are counted per key, and past a few free ones each further failure makes the key
//! wait twice as long as the one before (1 s, 2 s, 4 s … at most [`CAP`]):
//!
//! - `acct:NAME@SOURCE`: one name from one source address ([`ACCOUNT_FREE`] free);
//! - `src:SOURCE`: one source address, whatever the names ([`SOURCE_FREE`] free);
//! - `step:SESSION`: wrong step-up codes of one session ([`STEP_FREE`] free).
//!
//! A refused attempt is answered `429 throttled` before any password is hashed and is not
//! counted. Nothing is counted per account alone, so failures from one address never slow
//! another address, and a session's step-up is never refused for failed logins. Unknown names
//! are counted like accounts (the answers do not tell which exist). A key's count is forgotten
//! an hour after its last failure; a good login clears its `acct:` key; `brevet user enable`
//! and `brevetd user unlock|reset` clear all of an account's keys. The source is the TCP peer
//! (`edge::ClientAddr`, an IPv6 /64 counting as one), never a header.
//!
//! Alerts: when throttling reaches [`STORM_ACCOUNTS`] accounts or [`STORM_SOURCES`] sources
//! within one [`WINDOW`], one `alert.login_storm` event is written for that window (replicas
//! agree through `login_storms`). Failed logins for unknown names are not audited one by one:
//! they are counted per window and source and written as one `login.failed_unknown` summary
//! per window ([`flush_unknown`]), so they cannot grow the audit trail without bound.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use brevet_proto::timefmt::rfc3339;
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::edge::source_key;

pub(crate) const ACCOUNT_FREE: i64 = 5;
pub(crate) const SOURCE_FREE: i64 = 30;
pub(crate) const STEP_FREE: i64 = 3;
/// The longest wait, in seconds.
pub(crate) const CAP: i64 = 600;
/// A key's failures are forgotten this long after its last one.
pub(crate) const FORGET_AFTER: i64 = 3600;
/// The alert and summary window, in seconds.
pub(crate) const WINDOW: i64 = 300;
pub(crate) const STORM_ACCOUNTS: i64 = 5;
pub(crate) const STORM_SOURCES: i64 = 10;
/// Sources named in a `login.failed_unknown` summary; the rest are counted together.
const SUMMARY_SOURCES: usize = 20;

/// Refusals counted on `/metrics`.
pub(crate) static THROTTLED: AtomicU64 = AtomicU64::new(0);

/// The keys of a login attempt for `name` from `peer`.
pub(crate) struct LoginKeys {
    pub source: String,
    pub account: String,
    pub address: String,
}

impl LoginKeys {
    pub(crate) fn new(name: &str, peer: IpAddr) -> LoginKeys {
        let source = source_key(peer).to_string();
        LoginKeys {
            account: format!("acct:{name}@{source}"),
            address: format!("src:{source}"),
            source,
        }
    }
}

pub(crate) fn step_key(token_hash: &str) -> String {
    format!("step:{token_hash}")
}

/// How long a key waits after its `failures`-th failure, with `free` free ones.
pub(crate) fn delay(failures: i64, free: i64) -> i64 {
    let over = failures - free;
    if over <= 0 {
        return 0;
    }
    // 2^(over-1), capped; the exponent is bounded first so the shift cannot overflow.
    (1_i64 << (over - 1).min(20)).min(CAP)
}

/// Refuses with `throttled` when any of `keys` is waiting at `now`.
pub(crate) async fn check(app: &App, keys: &[&str], now: i64, what: &str) -> Result<(), Error> {
    let mut wait = 0;
    for key in keys {
        if let Some(s) = app.store.throttle_state(key).await? {
            wait = wait.max(s.blocked_until - now);
        }
    }
    if wait <= 0 {
        return Ok(());
    }
    THROTTLED.fetch_add(1, Ordering::Relaxed);
    Err(Error::Throttled {
        message: format!(
            "too many failed {what} from here: try again in {wait} s (or ask an administrator \
             to run `brevet user enable` or `brevetd user unlock`)"
        ),
        retry_after: wait as u64,
    })
}

/// Counts a failure of `key` inside `tx` and sets its wait. Returns the failures counted and
/// whether this one started a wait (for the audit event).
pub(crate) async fn count(
    tx: &mut brevet_store::Tx,
    key: &str,
    user: Option<&str>,
    source: Option<&str>,
    free: i64,
    now: i64,
) -> Result<(i64, i64), Error> {
    let failures = tx
        .count_failure(key, user, source, now, now - FORGET_AFTER)
        .await?;
    let wait = delay(failures, free);
    if wait > 0 {
        tx.block(key, now + wait, now).await?;
    }
    Ok((failures, wait))
}

/// Counts one failed login against both of its keys (the account at this source, and the
/// source alone), raising the storm alert when either started a wait. Returns the account
/// key's failures and wait. `user` is `None` for a name that is no account.
pub(crate) async fn count_login(
    tx: &mut brevet_store::Tx,
    keys: &LoginKeys,
    user: Option<&str>,
    now: i64,
) -> Result<(i64, i64), Error> {
    let src = Some(keys.source.as_str());
    let (failures, wait) = count(tx, &keys.account, user, src, ACCOUNT_FREE, now).await?;
    let (_, src_wait) = count(tx, &keys.address, None, src, SOURCE_FREE, now).await?;
    if wait > 0 || src_wait > 0 {
        storm_check(tx, now).await?;
    }
    Ok((failures, wait))
}

/// Raises `alert.login_storm` once for the current window when throttling has reached many
/// accounts or sources in it. Call inside the transaction that throttled something.
pub(crate) async fn storm_check(tx: &mut brevet_store::Tx, now: i64) -> Result<(), Error> {
    let bucket = now.div_euclid(WINDOW);
    let start = bucket * WINDOW;
    let counts = tx.throttled_since(start).await?;
    if counts.accounts < STORM_ACCOUNTS && counts.sources < STORM_SOURCES {
        return Ok(());
    }
    if !tx.claim_storm_alert(bucket, &counts).await? {
        return Ok(());
    }
    tracing::warn!(
        accounts = counts.accounts,
        sources = counts.sources,
        "login storm: many accounts or sources throttled"
    );
    let data = json!({
        "window_start": rfc3339(start),
        "window_end": rfc3339(start + WINDOW),
        "accounts": counts.accounts,
        "sources": counts.sources,
        "account_sample": counts.sample,
    });
    tx.audit("alert.login_storm", "brevetd", "login", data, now)
        .await?;
    Ok(())
}

/// Writes one `login.failed_unknown` summary per window that has ended, with its counts per
/// source, and forgets throttle keys that have gone quiet. Safe to call from several replicas.
pub(crate) async fn flush_unknown(app: &App) -> Result<(), Error> {
    let now = app.clock.now();
    let bucket = now.div_euclid(WINDOW);
    if !app.store.unknown_logins_before(bucket).await? {
        return Ok(());
    }
    let mut tx = app.store.begin().await?;
    let rows = tx.take_unknown_logins(bucket).await?;
    let mut i = 0;
    while i < rows.len() {
        let b = rows[i].0;
        let mut of_bucket: Vec<(String, i64)> = rows[i..]
            .iter()
            .take_while(|r| r.0 == b)
            .map(|r| (r.1.clone(), r.2))
            .collect();
        i += of_bucket.len();
        of_bucket.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        let total: i64 = of_bucket.iter().map(|r| r.1).sum();
        let named: Vec<_> = of_bucket
            .iter()
            .take(SUMMARY_SOURCES)
            .map(|(s, n)| json!({ "source": s, "failures": n }))
            .collect();
        let other: i64 = of_bucket.iter().skip(SUMMARY_SOURCES).map(|r| r.1).sum();
        let data = json!({
            "window_start": rfc3339(b * WINDOW),
            "window_end": rfc3339((b + 1) * WINDOW),
            "failures": total,
            "sources": named,
            "other_sources": of_bucket.len().saturating_sub(SUMMARY_SOURCES),
            "other_failures": other,
        });
        tx.audit("login.failed_unknown", "brevetd", "login", data, now)
            .await?;
    }
    tx.prune_throttle(now - FORGET_AFTER, now, bucket - 12)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Flushes the unknown-name summaries every half minute until aborted.
pub(crate) async fn run(app: Arc<App>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        if let Err(e) = flush_unknown(&app).await {
            tracing::warn!(error = %e, "cannot write the failed-login summary; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stop_growing() {
        let d: Vec<i64> = (1..=9).map(|n| delay(n, 5)).collect();
        assert_eq!(d, [0, 0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(delay(5 + 10, 5), 512);
        assert_eq!(delay(5 + 11, 5), CAP);
        assert_eq!(delay(i64::MAX, 5), CAP);
    }

    #[test]
    fn keys() {
        let k = LoginKeys::new("alice", "2001:db8::1".parse().unwrap());
        assert_eq!(k.account, "acct:alice@2001:db8::");
        assert_eq!(k.address, "src:2001:db8::");
        assert_eq!(
            LoginKeys::new("bob", "::ffff:192.0.2.1".parse().unwrap()).source,
            "192.0.2.1"
        );
    }
}
