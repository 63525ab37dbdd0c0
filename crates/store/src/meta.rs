//! Small named values the server keeps about itself (`meta`): which schema version, how far the
//! search index runs, the hashes of the configuration and policy last recorded.

use crate::{Result, Tx};

impl Tx {
    /// The value stored under `key`, if any.
    pub async fn meta(&mut self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
