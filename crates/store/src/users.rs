//! People: accounts, their group memberships, and the once-only use of TOTP steps.

use sqlx::{Any, Executor, Row, any::AnyRow};

use crate::{Result, Store, Tx};

/// A stored account. `totp_secret` is base32; `totp_last_step` is the last accepted TOTP step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    pub password_hash: String,
    pub totp_secret: String,
    pub totp_last_step: Option<i64>,
    pub enabled: bool,
    pub groups: Vec<String>,
    pub created_at: i64,
}

impl Tx {
    pub async fn insert_user(&mut self, u: &UserRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (name, password_hash, totp_secret, totp_last_step, enabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(&u.totp_secret)
        .bind(u.totp_last_step)
        .bind(i64::from(u.enabled))
        .bind(u.created_at)
        .execute(&mut *self.tx)
        .await?;
        for g in &u.groups {
            self.add_user_group(&u.name, g).await?;
        }
        Ok(())
    }

    /// Adds `user` to `group`; returns false if the user was already a member.
    pub async fn add_user_group(&mut self, user: &str, group: &str) -> Result<bool> {
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT group_name FROM user_groups WHERE user_name = $1 AND group_name = $2",
        )
        .bind(user)
        .bind(group)
        .fetch_optional(&mut *self.tx)
        .await?;
        if exists.is_some() {
            return Ok(false);
        }
        sqlx::query("INSERT INTO user_groups (user_name, group_name) VALUES ($1, $2)")
            .bind(user)
            .bind(group)
            .execute(&mut *self.tx)
            .await?;
        Ok(true)
    }

    /// Removes `user` from `group`; returns false if the user was not a member.
    pub async fn remove_user_group(&mut self, user: &str, group: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM user_groups WHERE user_name = $1 AND group_name = $2")
            .bind(user)
            .bind(group)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn set_user_enabled(&mut self, user: &str, enabled: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET enabled = $1 WHERE name = $2")
            .bind(i64::from(enabled))
            .bind(user)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn set_password_hash(&mut self, user: &str, hash: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
            .bind(hash)
            .bind(user)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Replaces `user`'s stored TOTP secret only if it is still `old` (sealing a legacy plain
    /// secret; a concurrent change wins). Returns whether it was replaced.
    pub async fn replace_totp_secret(&mut self, user: &str, old: &str, new: &str) -> Result<bool> {
        let r =
            sqlx::query("UPDATE users SET totp_secret = $1 WHERE name = $2 AND totp_secret = $3")
                .bind(new)
                .bind(user)
                .bind(old)
                .execute(&mut *self.tx)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records that TOTP `step` was used by `user`. Returns false, changing nothing, if that step
    /// or a later one was already used: each code is accepted once, even under concurrency.
    pub async fn use_totp_step(&mut self, user: &str, step: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE users SET totp_last_step = $1
             WHERE name = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(user)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn user(&mut self, name: &str) -> Result<Option<UserRecord>> {
        fetch_user(&mut self.tx, name).await
    }
}

impl Store {
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        let mut conn = self.pool().acquire().await?;
        fetch_user(&mut conn, name).await
    }

    pub async fn users(&self) -> Result<Vec<UserRecord>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query("SELECT * FROM users ORDER BY name")
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut u = decode(&row)?;
            u.groups = groups_of(&mut *conn, &u.name).await?;
            out.push(u);
        }
        Ok(out)
    }

    pub async fn user_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(self.pool())
            .await?)
    }
}

async fn fetch_user(conn: &mut sqlx::AnyConnection, name: &str) -> Result<Option<UserRecord>> {
    let Some(row) = sqlx::query("SELECT * FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut u = decode(&row)?;
    u.groups = groups_of(conn, name).await?;
    Ok(Some(u))
}

async fn groups_of<'e, E: Executor<'e, Database = Any>>(e: E, name: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT group_name FROM user_groups WHERE user_name = $1 ORDER BY group_name",
    )
    .bind(name)
    .fetch_all(e)
    .await?)
}

fn decode(row: &AnyRow) -> Result<UserRecord> {
    Ok(UserRecord {
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_last_step: row.try_get("totp_last_step")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        groups: Vec::new(),
        created_at: row.try_get("created_at")?,
    })
}
