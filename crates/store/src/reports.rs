//! The latest standing-privilege scan and drift report of each device; a new report replaces the
//! previous one.

use brevet_proto::agent::Finding;
use sqlx::{Row, any::AnyRow};

use crate::{Result, Store, Tx};

/// A device's latest report, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRecord {
    pub device: String,
    pub reported_at: i64,
    /// The device's own clock when it sent the report (RFC 3339, as checked by the server).
    pub agent_time: String,
    pub findings: Vec<Finding>,
    pub drift: Vec<Finding>,
}

/// A report as stored.
pub struct NewReport<'a> {
    pub device: &'a str,
    pub reported_at: i64,
    pub agent_time: &'a str,
    pub findings: &'a [Finding],
    pub drift: &'a [Finding],
}

impl Tx {
    /// The device's current report, read inside the transaction that will replace it.
    pub async fn device_report(&mut self, device: &str) -> Result<Option<ReportRecord>> {
        sqlx::query("SELECT * FROM device_reports WHERE device = $1")
            .bind(device)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|r| decode(&r))
            .transpose()
    }

    pub async fn replace_device_report(&mut self, r: &NewReport<'_>) -> Result<()> {
        sqlx::query("DELETE FROM device_reports WHERE device = $1")
            .bind(r.device)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO device_reports (device, reported_at, agent_time, findings, drift)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.device)
        .bind(r.reported_at)
        .bind(r.agent_time)
        .bind(serde_json::to_string(r.findings)?)
        .bind(serde_json::to_string(r.drift)?)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// The latest report of every device (or of one), by device name.
    pub async fn device_reports(&self, device: Option<&str>) -> Result<Vec<ReportRecord>> {
        sqlx::query(
            "SELECT * FROM device_reports WHERE ($1 IS NULL OR device = $1) ORDER BY device",
        )
        .bind(device)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(decode)
        .collect()
    }
}

fn decode(row: &AnyRow) -> Result<ReportRecord> {
    let findings: String = row.try_get("findings")?;
    let drift: String = row.try_get("drift")?;
    Ok(ReportRecord {
        device: row.try_get("device")?,
        reported_at: row.try_get("reported_at")?,
        agent_time: row.try_get("agent_time")?,
        findings: serde_json::from_str(&findings)?,
        drift: serde_json::from_str(&drift)?,
    })
}
