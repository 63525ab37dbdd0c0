//! The events devices send about their grants (`grant.used`, `grant.changes`): which ids have
//! been recorded, and as which audit event. The id is the primary key, so two replicas racing
//! to record the same event cannot both commit: the second transaction fails and the device
//! sends again, finding it recorded.

use sqlx::AssertSqlSafe;

use crate::audit::DeviceEventRecord;
use crate::{Result, Tx};

impl Tx {
    /// Whether device event `id` has been recorded, or drafted earlier in this transaction.
    pub async fn device_event_recorded(&mut self, id: &str) -> Result<bool> {
        if self.device_event_pending(id) {
            return Ok(true);
        }
        let row = sqlx::query("SELECT seq FROM device_events WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.is_some())
    }

    /// Records device events as the audit events `seq` they were sealed as (at commit).
    pub(crate) async fn insert_device_events(
        &mut self,
        rows: &[(i64, &str, DeviceEventRecord)],
    ) -> Result<()> {
        for chunk in rows.chunks(100) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 6;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6
                    )
                })
                .collect();
            // Only generated placeholders are spliced in; every value is bound.
            let sql = format!(
                "INSERT INTO device_events (id, device, grant_id, kind, seq, recorded_at) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (seq, kind, r) in chunk {
                q = q
                    .bind(r.id.clone())
                    .bind(r.device.clone())
                    .bind(r.grant_id.clone())
                    .bind(kind.to_string())
                    .bind(*seq)
                    .bind(r.recorded_at);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}
