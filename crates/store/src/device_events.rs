//! The events devices send about their grants (`grant.used`, `grant.changes`): which ids have
//! been recorded, and as which audit event. The id is the primary key, so two replicas racing
//! to record the same event cannot both commit: the second transaction fails and the device
//! sends again, finding it recorded.

use sqlx::Row;

use crate::{Result, Tx};

impl Tx {
    /// The audit sequence number device event `id` was recorded as, if it was.
    pub async fn device_event_seq(&mut self, id: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT seq FROM device_events WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("seq")?),
            None => None,
        })
    }

    /// Records that device event `id` of `device` about `grant_id` is audit event `seq`.
    pub async fn record_device_event(
        &mut self,
        id: &str,
        device: &str,
        grant_id: &str,
        kind: &str,
        seq: u64,
        now: i64,
    ) -> Result<()> {
        let seq =
            i64::try_from(seq).map_err(|_| crate::Error::Corrupt("audit seq overflow".into()))?;
        sqlx::query(
            "INSERT INTO device_events (id, device, grant_id, kind, seq, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(device)
        .bind(grant_id)
        .bind(kind)
        .bind(seq)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
