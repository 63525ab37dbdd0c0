//! Devices known to the control plane.

use std::collections::BTreeMap;

use brevet_proto::api::DeviceView;
use brevet_proto::timefmt::rfc3339;
use sqlx::{Row, any::AnyRow};

use crate::{Result, Store, Tx};

impl Tx {
    pub async fn insert_device(&mut self, d: &DeviceView, created_at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO devices (name, tags, device_groups, os, enabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&d.name)
        .bind(serde_json::to_string(&d.tags)?)
        .bind(serde_json::to_string(&d.groups)?)
        .bind(&d.os)
        .bind(i64::from(d.enabled))
        .bind(created_at)
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
    pub async fn device(&self, name: &str) -> Result<Option<DeviceView>> {
        sqlx::query("SELECT * FROM devices WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .map(|r| decode(&r))
            .transpose()
    }

    pub async fn devices(&self) -> Result<Vec<DeviceView>> {
        sqlx::query("SELECT * FROM devices ORDER BY name")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(decode)
            .collect()
    }
}

fn decode(row: &AnyRow) -> Result<DeviceView> {
    let tags: String = row.try_get("tags")?;
    let groups: String = row.try_get("device_groups")?;
    Ok(DeviceView {
        name: row.try_get("name")?,
        tags: serde_json::from_str::<BTreeMap<String, String>>(&tags)?,
        groups: serde_json::from_str(&groups)?,
        os: row.try_get("os")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}
