//! Grants as their devices see them: delivery, the agent's acknowledgements (applied, removed,
//! rejected), and the grants whose removal was never confirmed.
//!
//! Each acknowledgement is recorded once: the `UPDATE`s only touch a grant whose column is still
//! empty, and a rejection is keyed by device, grant and the agent's time, so an agent that sends
//! its queue again changes nothing.

use brevet_proto::api::GrantState;
use brevet_proto::grant::SignedGrant;
use sqlx::{AssertSqlSafe, Row, any::AnyRow};

use crate::{Error, Result, Store, Tx};

/// A live grant of one device, with whether it has been delivered before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    pub id: String,
    /// The grant holder and the request it came from (for the audit event).
    pub user: String,
    pub request_id: String,
    pub state: GrantState,
    pub signed: SignedGrant,
    pub delivered: bool,
}

/// A grant as an acknowledgement finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckTarget {
    pub device: String,
    /// The grant holder and the request it came from (for the audit event).
    pub user: String,
    pub request_id: String,
    pub state: GrantState,
    pub applied_at: Option<i64>,
    pub revocation_confirmed_at: Option<i64>,
}

/// An ended, delivered grant whose removal the device has not confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconfirmed {
    pub id: String,
    pub device: String,
    pub user: String,
    pub state: GrantState,
    pub ended_at: i64,
    pub delivered_at: i64,
}

impl Tx {
    /// Records the first delivery of a grant. Returns false if it was delivered before.
    pub async fn mark_delivered(&mut self, id: &str, at: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE grants SET delivered_at = $1 WHERE id = $2 AND delivered_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Reads what an acknowledgement needs and, on PostgreSQL, locks the row.
    pub async fn lock_ack_target(&mut self, id: &str) -> Result<Option<AckTarget>> {
        let sql = format!(
            "SELECT device, state, applied_at, revocation_confirmed_at, user_name, request_id
             FROM grants WHERE id = $1{}",
            self.engine.for_update()
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(AckTarget {
            device: row.try_get("device")?,
            user: row.try_get("user_name")?,
            request_id: row.try_get("request_id")?,
            state: state(&row)?,
            applied_at: row.try_get("applied_at")?,
            revocation_confirmed_at: row.try_get("revocation_confirmed_at")?,
        }))
    }

    /// Records that the device applied a grant: `issued` becomes `active`. Returns false,
    /// changing nothing, if it was recorded before.
    pub async fn set_grant_applied(&mut self, id: &str, at: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE grants SET applied_at = $1,
                state = CASE WHEN state = 'issued' THEN 'active' ELSE state END
             WHERE id = $2 AND applied_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records that the device removed a grant. Returns false if that was recorded before.
    pub async fn confirm_grant_removed(&mut self, id: &str, at: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE grants SET revocation_confirmed_at = $1
             WHERE id = $2 AND revocation_confirmed_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a device's refusal of a grant (which may not exist on this server). Returns false
    /// if the same refusal (device, grant, agent time) was recorded before.
    pub async fn record_rejection(
        &mut self,
        device: &str,
        grant_id: &str,
        agent_at: &str,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO device_rejections (device, grant_id, at, recorded_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (device, grant_id, at) DO NOTHING",
        )
        .bind(device)
        .bind(grant_id)
        .bind(agent_at)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Grants that ended before `ended_before`, were delivered, and have neither a removal
    /// confirmation nor an alert; other replicas skip the rows this transaction holds.
    pub async fn unconfirmed_removals(
        &mut self,
        ended_before: i64,
        limit: i64,
    ) -> Result<Vec<Unconfirmed>> {
        let sql = format!(
            "SELECT id, device, user_name, state, ended_at, delivered_at FROM grants
             WHERE ended_at < $1 AND delivered_at IS NOT NULL
               AND revocation_confirmed_at IS NULL AND alert_raised_at IS NULL
             ORDER BY ended_at LIMIT $2{}",
            self.engine.claim()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(ended_before)
            .bind(limit)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Unconfirmed {
                    id: r.try_get("id")?,
                    device: r.try_get("device")?,
                    user: r.try_get("user_name")?,
                    state: state(r)?,
                    ended_at: r.try_get("ended_at")?,
                    delivered_at: r.try_get("delivered_at")?,
                })
            })
            .collect()
    }

    pub async fn mark_alert_raised(&mut self, id: &str, at: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE grants SET alert_raised_at = $1 WHERE id = $2 AND alert_raised_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

impl Store {
    /// The live grants of `device`, oldest first.
    pub async fn device_grants(&self, device: &str) -> Result<Vec<DeviceGrant>> {
        sqlx::query(concat!(
            "SELECT id, state, doc, sig, delivered_at, user_name, request_id FROM grants
             WHERE device = $1 AND ",
            live_grant!(),
            " ORDER BY issued_at, id LIMIT 1000"
        ))
        .bind(device)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(DeviceGrant {
                id: r.try_get("id")?,
                user: r.try_get("user_name")?,
                request_id: r.try_get("request_id")?,
                state: state(r)?,
                signed: SignedGrant {
                    doc: r.try_get("doc")?,
                    sig: r.try_get("sig")?,
                },
                delivered: r.try_get::<Option<i64>, _>("delivered_at")?.is_some(),
            })
        })
        .collect()
    }
}

fn state(row: &AnyRow) -> Result<GrantState> {
    let s: String = row.try_get("state")?;
    GrantState::parse(&s).ok_or_else(|| Error::Corrupt(format!("grant state `{s}`")))
}
