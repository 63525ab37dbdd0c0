//! Login throttling state, kept in the database so it holds across restarts and replicas.
//!
//! - `login_throttle`: failures per key (the server forms the keys: an account at a source, a
//!   source, a session's step-up), when the last one was, and until when the key is refused.
//!   Counting is one atomic upsert, so concurrent failures on PostgreSQL are all counted.
//! - `login_unknown`: failed logins for names that are not accounts, counted per time bucket and
//!   source, so they can be audited as one summary per bucket instead of one event each.
//! - `login_storms`: the buckets for which a storm alert was raised, one row each, so replicas
//!   raise it once.

use sqlx::Row;

use crate::{Result, Store, Tx};

/// One throttle key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: i64,
    pub last_failure: i64,
    pub blocked_until: i64,
}

/// Who was throttled in a window: distinct accounts and sources, and a few account names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThrottledCounts {
    pub accounts: i64,
    pub sources: i64,
    pub sample: Vec<String>,
}

const STATE: &str =
    "SELECT failures, last_failure, blocked_until FROM login_throttle WHERE key = $1";

fn state(row: &sqlx::any::AnyRow) -> Result<ThrottleState> {
    Ok(ThrottleState {
        failures: row.try_get("failures")?,
        last_failure: row.try_get("last_failure")?,
        blocked_until: row.try_get("blocked_until")?,
    })
}

impl Store {
    /// The state of `key`, if it has failures on record.
    pub async fn throttle_state(&self, key: &str) -> Result<Option<ThrottleState>> {
        let row = sqlx::query(STATE)
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(state).transpose()
    }
}

impl Tx {
    /// [`Store::throttle_state`], inside the transaction.
    pub async fn throttle_state(&mut self, key: &str) -> Result<Option<ThrottleState>> {
        let row = sqlx::query(STATE)
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(state).transpose()
    }

    /// Counts one failure for `key` at `now` and returns the count; a key whose last failure is
    /// older than `forget_before` starts again at one. `user` and `source` are recorded for
    /// unlocking by account and for storm counts.
    pub async fn count_failure(
        &mut self,
        key: &str,
        user: Option<&str>,
        source: Option<&str>,
        now: i64,
        forget_before: i64,
    ) -> Result<i64> {
        let failures: i64 = sqlx::query_scalar(
            "INSERT INTO login_throttle
                 (key, user_name, source, failures, last_failure, blocked_until, throttled_at)
             VALUES ($1, $2, $3, 1, $4, 0, NULL)
             ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN login_throttle.last_failure < $5 THEN 1
                                 ELSE login_throttle.failures + 1 END,
                 last_failure = $4
             RETURNING failures",
        )
        .bind(key)
        .bind(user)
        .bind(source)
        .bind(now)
        .bind(forget_before)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(failures)
    }

    /// Refuses `key` until `until`, noting `now` as a time it was throttled.
    pub async fn block(&mut self, key: &str, until: i64, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE login_throttle SET blocked_until = $2, throttled_at = $3 WHERE key = $1",
        )
        .bind(key)
        .bind(until)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Forgets `key` (after a success).
    pub async fn clear_throttle(&mut self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Forgets every failure and refusal recorded for `user` (any source, any session):
    /// `brevet user enable`, `brevetd user unlock|reset`. Returns how many keys were cleared.
    pub async fn clear_login_failures(&mut self, user: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM login_throttle WHERE user_name = $1")
            .bind(user)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected())
    }

    /// Accounts and sources throttled at or after `since`.
    pub async fn throttled_since(&mut self, since: i64) -> Result<ThrottledCounts> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT user_name) AS accounts, COUNT(DISTINCT source) AS sources
             FROM login_throttle WHERE throttled_at >= $1",
        )
        .bind(since)
        .fetch_one(&mut *self.tx)
        .await?;
        let sample: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT user_name FROM login_throttle
             WHERE throttled_at >= $1 AND user_name IS NOT NULL ORDER BY user_name LIMIT 20",
        )
        .bind(since)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(ThrottledCounts {
            accounts: row.try_get("accounts")?,
            sources: row.try_get("sources")?,
            sample,
        })
    }

    /// Claims the storm alert of `bucket`; true for the one caller that raises it.
    pub async fn claim_storm_alert(
        &mut self,
        bucket: i64,
        counts: &ThrottledCounts,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO login_storms (bucket, accounts, sources) VALUES ($1, $2, $3)
             ON CONFLICT (bucket) DO NOTHING",
        )
        .bind(bucket)
        .bind(counts.accounts)
        .bind(counts.sources)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Counts a failed login for a name that is not an account, from `source`, in `bucket`.
    pub async fn count_unknown_login(&mut self, bucket: i64, source: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_unknown (bucket, source, failures) VALUES ($1, $2, 1)
             ON CONFLICT (bucket, source) DO UPDATE SET failures = login_unknown.failures + 1",
        )
        .bind(bucket)
        .bind(source)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes (deletes and returns) the unknown-name counts of buckets before `bucket`:
    /// `(bucket, source, failures)`, by bucket. Concurrent takers each get distinct rows.
    pub async fn take_unknown_logins(&mut self, bucket: i64) -> Result<Vec<(i64, String, i64)>> {
        let rows = sqlx::query(
            "DELETE FROM login_unknown WHERE bucket < $1 RETURNING bucket, source, failures",
        )
        .bind(bucket)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| -> Result<(i64, String, i64)> {
                Ok((
                    r.try_get("bucket")?,
                    r.try_get("source")?,
                    r.try_get("failures")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }

    /// Deletes throttle keys with no failure since `before` and no refusal in force at `now`,
    /// and storm marks of buckets before `storm_before`.
    pub async fn prune_throttle(&mut self, before: i64, now: i64, storm_before: i64) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE last_failure < $1 AND blocked_until <= $2")
            .bind(before)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DELETE FROM login_storms WHERE bucket < $1")
            .bind(storm_before)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Whether any unknown-name counts of buckets before `bucket` wait to be summarised.
    pub async fn unknown_logins_before(&self, bucket: i64) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM login_unknown WHERE bucket < $1 LIMIT 1")
            .bind(bucket)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }
}
