//! Login sessions. Only the SHA-256 of a session token is stored; a stolen database does not
//! yield usable tokens.

use sqlx::Row;

use crate::{Result, Store, Tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// When the person last proved their second factor in this session.
    pub mfa_at: Option<i64>,
    pub revoked: bool,
}

impl Tx {
    pub async fn insert_session(&mut self, token_hash: &str, s: &SessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_name, created_at, expires_at, mfa_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(&s.user)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.mfa_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn set_session_mfa(&mut self, token_hash: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET mfa_at = $1 WHERE token_hash = $2")
            .bind(at)
            .bind(token_hash)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn revoke_session(&mut self, token_hash: &str, at: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(token_hash)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Revokes every session of `user` (when the account is disabled).
    pub async fn revoke_user_sessions(&mut self, user: &str, at: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_name = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(user)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected())
    }
}

impl Store {
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT user_name, created_at, expires_at, mfa_at, revoked_at FROM sessions
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            user: row.try_get("user_name")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            mfa_at: row.try_get("mfa_at")?,
            revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
        }))
    }
}
