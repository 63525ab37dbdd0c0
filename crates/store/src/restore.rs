//! What the server needs to notice and survive a restore from backup: the restore generation
//! (`meta.restore_generation`, 1 on a new database, one more after each acknowledged restore),
//! the pending restore an administrator has to acknowledge (`meta.restore_pending`), and the
//! records issued before it.

use sqlx::AssertSqlSafe;

use crate::{Error, GrantRecord, RequestRecord, Result, Store, Tx};

impl Store {
    /// `(restore generation, audit sequence number of the newest event)`, read together.
    pub async fn server_state(&self) -> Result<(u64, u64)> {
        let row: (Option<String>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT value FROM meta WHERE key = 'restore_generation'),
                    (SELECT seq FROM audit_head WHERE id = 1)",
        )
        .fetch_one(self.pool())
        .await?;
        let generation = parse_generation(row.0.as_deref())?;
        let seq = u64::try_from(row.1.unwrap_or(0))
            .map_err(|_| Error::Corrupt("audit head seq".into()))?;
        Ok((generation, seq))
    }

    /// The value stored under `key`, if any.
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?)
    }
}

impl Tx {
    /// Deletes `key` from `meta`.
    pub async fn delete_meta(&mut self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM meta WHERE key = $1")
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Adds one to the restore generation and returns the new one.
    pub async fn bump_restore_generation(&mut self) -> Result<u64> {
        let now = parse_generation(self.meta("restore_generation").await?.as_deref())?;
        let next = now + 1;
        self.set_meta("restore_generation", &next.to_string())
            .await?;
        Ok(next)
    }

    /// The live grants issued at or before `t`, locked until the transaction ends.
    pub async fn lock_live_grants_issued_before(&mut self, t: i64) -> Result<Vec<GrantRecord>> {
        let sql = format!(
            concat!(
                "SELECT * FROM grants WHERE ",
                live_grant!(),
                " AND issued_at <= $1 ORDER BY id{}"
            ),
            self.engine.for_update()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(t)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(crate::grants::decode).collect()
    }

    /// The pending requests created at or before `t`, locked until the transaction ends.
    pub async fn lock_pending_requests_created_before(
        &mut self,
        t: i64,
    ) -> Result<Vec<RequestRecord>> {
        let sql = format!(
            concat!(
                "SELECT * FROM requests WHERE ",
                pending_request!(),
                " AND created_at <= $1 ORDER BY created_at, id{}"
            ),
            self.engine.for_update()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(t)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(crate::requests::decode(&mut self.tx, row).await?);
        }
        Ok(out)
    }
}

/// A database from before restore tracking has no generation: it is the first.
fn parse_generation(v: Option<&str>) -> Result<u64> {
    match v {
        None => Ok(1),
        Some(v) => v
            .parse()
            .map_err(|_| Error::Corrupt(format!("restore_generation `{v}`"))),
    }
}
