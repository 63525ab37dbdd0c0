//! Device enrollment: one-time tokens (stored only as their SHA-256) and the client certificates
//! the server still accepts.
//!
//! A device certificate is accepted only while its fingerprint is in `device_certs`; enrolling
//! again or renewing replaces the device's row, so a superseded certificate stops working at once
//! even though it has not expired.

use sqlx::Row;

use crate::{Result, Store, Tx};

/// Enrollment tokens older than this past their expiry are deleted when a new one is made.
const TOKEN_RETENTION: i64 = 7 * 86_400;

/// A stored enrollment token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollTokenRecord {
    pub device: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// What the server knows about a presented client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertStatus {
    pub device: String,
    pub not_after: i64,
    /// Whether the device is enabled (false also when the device row is gone).
    pub enabled: bool,
    /// Set when a newer certificate replaced this one: by a renewal of the device itself, or by
    /// another enrollment of the device name.
    pub superseded_by: Option<Superseded>,
}

/// What retired a device certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Superseded {
    /// The device renewed its own certificate.
    Renewal,
    /// The device name was enrolled again (perhaps by another machine).
    Enrollment,
}

impl Superseded {
    fn as_str(self) -> &'static str {
        match self {
            Superseded::Renewal => "renewal",
            Superseded::Enrollment => "enrollment",
        }
    }
}

impl Tx {
    pub async fn insert_enroll_token(
        &mut self,
        token_hash: &str,
        device: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM enroll_tokens WHERE expires_at < $1")
            .bind(created_at - TOKEN_RETENTION)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO enroll_tokens (token_hash, device, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(device)
        .bind(created_at)
        .bind(expires_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Marks a token used if it is unused and unexpired at `now`. Returns false, changing
    /// nothing, otherwise: of two transactions using one token, exactly one gets true (the row
    /// lock on PostgreSQL, the single writer on SQLite).
    pub async fn use_enroll_token(&mut self, token_hash: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE enroll_tokens SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Deletes the unused enrollment tokens of `device` (a new token replaces them). Returns how
    /// many.
    pub async fn invalidate_enroll_tokens(&mut self, device: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM enroll_tokens WHERE device = $1 AND used_at IS NULL")
            .bind(device)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected())
    }

    /// The certificate currently accepted for `device`: its fingerprint and `not_after`.
    pub async fn current_device_cert(&mut self, device: &str) -> Result<Option<(String, i64)>> {
        let row = sqlx::query(
            "SELECT fingerprint, not_after FROM device_certs
             WHERE device = $1 AND superseded_at IS NULL",
        )
        .bind(device)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| Ok((r.try_get("fingerprint")?, r.try_get("not_after")?)))
            .transpose()
    }

    /// Makes `fingerprint` the only certificate accepted for `device`; the previous one is kept,
    /// marked as superseded `by`, until it expires.
    pub async fn replace_device_cert(
        &mut self,
        device: &str,
        fingerprint: &str,
        not_after: i64,
        issued_at: i64,
        by: Superseded,
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM device_certs
             WHERE device = $1 AND superseded_at IS NOT NULL AND not_after < $2",
        )
        .bind(device)
        .bind(issued_at)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "UPDATE device_certs SET superseded_at = $1, superseded_by = $2
             WHERE device = $3 AND superseded_at IS NULL",
        )
        .bind(issued_at)
        .bind(by.as_str())
        .bind(device)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO device_certs (fingerprint, device, not_after, issued_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(fingerprint)
        .bind(device)
        .bind(not_after)
        .bind(issued_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    pub async fn enroll_token(&self, token_hash: &str) -> Result<Option<EnrollTokenRecord>> {
        let row = sqlx::query(
            "SELECT device, created_at, expires_at, used_at FROM enroll_tokens
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(EnrollTokenRecord {
            device: row.try_get("device")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            used_at: row.try_get("used_at")?,
        }))
    }

    /// The device a certificate fingerprint belongs to, and whether it is still the current one.
    pub async fn device_cert(&self, fingerprint: &str) -> Result<Option<DeviceCertStatus>> {
        let row = sqlx::query(
            "SELECT c.device, c.not_after, c.superseded_by, d.enabled FROM device_certs c
             LEFT JOIN devices d ON d.name = c.device
             WHERE c.fingerprint = $1",
        )
        .bind(fingerprint)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let superseded_by = match row.try_get::<Option<String>, _>("superseded_by")? {
            None => None,
            Some(s) if s == "renewal" => Some(Superseded::Renewal),
            Some(_) => Some(Superseded::Enrollment),
        };
        Ok(Some(DeviceCertStatus {
            device: row.try_get("device")?,
            not_after: row.try_get("not_after")?,
            enabled: row.try_get::<Option<i64>, _>("enabled")?.unwrap_or(0) != 0,
            superseded_by,
        }))
    }
}
