//! Signed audit checkpoints, one per log size. The latest keeps the Merkle frontier it was
//! signed from (so a restarted server continues from it instead of rehashing the whole log);
//! older ones drop it, as nothing reads it.
//!
//! `size` is the primary key and inserts do nothing on conflict: when several replicas sign,
//! the first checkpoint stored for a size is the only one, and all agree on its root anyway.

use brevet_audit::Checkpoint;
use sqlx::{Row, any::AnyRow};

use crate::{Error, Result, Store};

/// A stored checkpoint and the frontier (see `brevet_audit::Frontier::to_text`) it was
/// signed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub checkpoint: Checkpoint,
    pub frontier: String,
}

impl Store {
    /// Stores a checkpoint unless one of that size exists. Returns whether it was stored. The
    /// frontier of the checkpoint of size `previous` is dropped: only the latest is needed.
    pub async fn insert_checkpoint(
        &self,
        cp: &Checkpoint,
        frontier: &str,
        previous: Option<u64>,
    ) -> Result<bool> {
        let size = i64::try_from(cp.size).map_err(|_| Error::Corrupt("checkpoint size".into()))?;
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "INSERT INTO audit_checkpoints (size, root, at, signature, frontier)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (size) DO NOTHING",
        )
        .bind(size)
        .bind(&cp.root)
        .bind(&cp.at)
        .bind(&cp.signature)
        .bind(frontier)
        .execute(&mut *tx.tx)
        .await?;
        if let Some(previous) = previous.and_then(|p| i64::try_from(p).ok())
            && previous < size
        {
            sqlx::query("UPDATE audit_checkpoints SET frontier = '' WHERE size = $1")
                .bind(previous)
                .execute(&mut *tx.tx)
                .await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// The checkpoint of the largest size.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        sqlx::query("SELECT * FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// The checkpoint of exactly `size` events.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<Checkpoint>> {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        sqlx::query("SELECT * FROM audit_checkpoints WHERE size = $1")
            .bind(size)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(|r| decode(r).map(|s| s.checkpoint))
            .transpose()
    }

    /// How many checkpoints are stored (for tests and metrics).
    pub async fn checkpoint_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_checkpoints")
            .fetch_one(self.pool())
            .await?;
        u64::try_from(n).map_err(|_| Error::Corrupt("checkpoint count".into()))
    }
}

fn decode(row: &AnyRow) -> Result<StoredCheckpoint> {
    let size: i64 = row.try_get("size")?;
    Ok(StoredCheckpoint {
        checkpoint: Checkpoint {
            size: u64::try_from(size).map_err(|_| Error::Corrupt("checkpoint size".into()))?,
            root: row.try_get("root")?,
            at: row.try_get("at")?,
            signature: row.try_get("signature")?,
        },
        frontier: row.try_get("frontier")?,
    })
}
