//! The syslog forwarder's cursor: the last audit sequence number written to the collector, and a
//! lease so that only one `brevetd` replica forwards at a time.
//!
//! The lease is a name and a deadline in the one `syslog_cursor` row. A replica takes it when it
//! is free, expired or already its own, and renews it with every advance; the cursor only moves
//! forward, and only for the holder. A replica that lost the lease (it stalled past the deadline)
//! learns it at its next advance and stops.

use sqlx::Row;

use crate::{Error, Result, Store};

impl Store {
    /// Takes or renews the forwarding lease for `owner` until `lease_until` (unix ms), if it is
    /// free, expired at `now_ms`, or held by `owner` already. Returns the last forwarded sequence
    /// number when `owner` holds the lease, `None` when another replica does.
    pub async fn syslog_claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> Result<Option<u64>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE syslog_cursor SET owner = $1, lease_until = $2
             WHERE id = 1 AND (owner = $1 OR lease_until < $3)
             RETURNING seq",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now_ms)
        .fetch_optional(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        row.map(|r| seq(r.try_get("seq")?)).transpose()
    }

    /// Records that every event up to `seq` reached the collector, and renews the lease. False,
    /// changing nothing, when `owner` no longer holds the lease (or `seq` is behind the cursor,
    /// which the holder never asks for).
    pub async fn syslog_advance(&self, owner: &str, seq: u64, lease_until: i64) -> Result<bool> {
        let seq = i64::try_from(seq).map_err(|_| Error::Corrupt("syslog seq overflow".into()))?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE syslog_cursor SET seq = $1, lease_until = $2
             WHERE id = 1 AND owner = $3 AND seq <= $1",
        )
        .bind(seq)
        .bind(lease_until)
        .bind(owner)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done == 1)
    }

    /// How many audit events come after `forwarded`.
    pub async fn syslog_lag(&self, forwarded: u64) -> Result<u64> {
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_events")
            .fetch_one(self.pool())
            .await?;
        Ok(seq(newest.unwrap_or(0))?.saturating_sub(forwarded))
    }
}

fn seq(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt("syslog cursor seq".into()))
}
