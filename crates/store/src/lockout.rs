//! Failed logins in a row per account, and the lock they lead to. Kept in the database, so a
//! lock holds across restarts and replicas.

use sqlx::Row;

use crate::{Result, Store, Tx};

const LOCKED_UNTIL: &str = "SELECT locked_until FROM login_failures WHERE user_name = $1";

impl Store {
    /// Until when `user` is locked, if a lock has been set (it may have passed).
    pub async fn locked_until(&self, user: &str) -> Result<Option<i64>> {
        let row = sqlx::query(LOCKED_UNTIL)
            .bind(user)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<i64>, _>("locked_until"))
            .transpose()?
            .flatten())
    }
}

impl Tx {
    /// [`Store::locked_until`], inside the transaction.
    pub async fn locked_until(&mut self, user: &str) -> Result<Option<i64>> {
        let row = sqlx::query(LOCKED_UNTIL)
            .bind(user)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<i64>, _>("locked_until"))
            .transpose()?
            .flatten())
    }

    /// Counts one more failure for `user`. At `limit` failures in a row the account is locked
    /// until `until` and the count starts again; returns whether this failure set the lock.
    pub async fn record_login_failure(
        &mut self,
        user: &str,
        limit: i64,
        until: i64,
    ) -> Result<bool> {
        let failures: i64 = sqlx::query_scalar(
            "INSERT INTO login_failures (user_name, failures, locked_until) VALUES ($1, 1, NULL)
             ON CONFLICT (user_name) DO UPDATE SET failures = login_failures.failures + 1
             RETURNING failures",
        )
        .bind(user)
        .fetch_one(&mut *self.tx)
        .await?;
        if failures < limit {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE login_failures SET failures = 0, locked_until = $2 WHERE user_name = $1",
        )
        .bind(user)
        .bind(until)
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }

    /// Forgets `user`'s failures and lock (after a good login, or an administrator's enable).
    pub async fn clear_login_failures(&mut self, user: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE user_name = $1")
            .bind(user)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
