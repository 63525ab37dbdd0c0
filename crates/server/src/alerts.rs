//! Alerts the sweeper raises. Today one kind: `revocation_unconfirmed`, for a grant that ended,
//! had been delivered to its device, and whose removal the device has not confirmed within
//! [`REMOVAL_CONFIRM_WINDOW`] (DESIGN §2). Each grant raises it once: the alert time is stored in
//! the transaction that writes the audit event, and on PostgreSQL `FOR UPDATE SKIP LOCKED` gives
//! each grant to one replica.

use brevet_proto::timefmt::rfc3339;
use serde_json::json;

use crate::Error;
use crate::app::App;

/// How long a device has to confirm that an ended grant is gone.
pub const REMOVAL_CONFIRM_WINDOW: i64 = 60;

/// Grants handled per transaction.
pub const BATCH: usize = 200;

/// Raises the alert for every grant that is due. Returns how many.
pub async fn raise_due(app: &App) -> Result<usize, Error> {
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    let due = tx
        .unconfirmed_removals(now - REMOVAL_CONFIRM_WINDOW, BATCH as i64)
        .await?;
    if due.is_empty() {
        return Ok(0);
    }
    for g in &due {
        tx.mark_alert_raised(&g.id, now).await?;
        tx.audit(
            "alert.revocation_unconfirmed",
            "brevetd",
            &g.id,
            json!({
                "device": g.device, "user": g.user, "state": g.state,
                "ended_at": rfc3339(g.ended_at), "delivered_at": rfc3339(g.delivered_at),
                "seconds_since_end": now - g.ended_at,
            }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    for g in &due {
        tracing::warn!(grant = %g.id, device = %g.device, user = %g.user,
            "grant ended but its removal was not confirmed by the device");
        app.metrics.alert("revocation_unconfirmed");
    }
    Ok(due.len())
}
