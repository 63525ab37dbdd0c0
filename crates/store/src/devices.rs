//! Devices known to the control plane.

use std::collections::BTreeMap;

use sqlx::{Row, any::AnyRow};

use crate::{Result, Store, Tx};

/// A stored device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// Device groups (policy `DeviceGroup`s).
    pub groups: Vec<String>,
    pub os: String,
    pub enabled: bool,
    pub created_at: i64,
}

impl Tx {
    pub async fn insert_device(&mut self, d: &DeviceRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO devices (name, tags, device_groups, os, enabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&d.name)
        .bind(serde_json::to_string(&d.tags)?)
        .bind(serde_json::to_string(&d.groups)?)
        .bind(&d.os)
        .bind(i64::from(d.enabled))
        .bind(d.created_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn set_device_enabled(&mut self, name: &str, enabled: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE devices SET enabled = $1 WHERE name = $2")
            .bind(i64::from(enabled))
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

impl Store {
    pub async fn device(&self, name: &str) -> Result<Option<DeviceRecord>> {
        sqlx::query("SELECT * FROM devices WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .map(|r| decode(&r))
            .transpose()
    }

    pub async fn devices(&self) -> Result<Vec<DeviceRecord>> {
        sqlx::query("SELECT * FROM devices ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(decode)
            .collect()
    }
}

fn decode(row: &AnyRow) -> Result<DeviceRecord> {
    let tags: String = row.try_get("tags")?;
    let groups: String = row.try_get("device_groups")?;
    Ok(DeviceRecord {
        name: row.try_get("name")?,
        tags: serde_json::from_str::<BTreeMap<String, String>>(&tags)?,
        groups: serde_json::from_str(&groups)?,
        os: row.try_get("os")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}
