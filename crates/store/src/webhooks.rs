//! Webhooks: where `brevetd` POSTs the audit events people must act on, and per webhook the
//! delivery cursor (the last audit `seq` delivered or passed over) with a lease, so that only one
//! replica delivers to a webhook at a time (the same scheme as `syslog.rs`).
//!
//! The secret is stored as the caller gives it (the server seals it first) and is read only by
//! the delivery task ([`Store::webhook_secret`]); listings never carry it.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Error, Result, Store, Tx};

/// A webhook as listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: String,
    pub url: String,
    pub has_secret: bool,
    pub created_by: String,
    pub created_at: i64,
}

impl Tx {
    /// Adds a webhook whose delivery starts after the events already in the log. Returns the
    /// `seq` it starts after.
    pub async fn insert_webhook(
        &mut self,
        id: &str,
        url: &str,
        sealed_secret: Option<&str>,
        created_by: &str,
        created_at: i64,
    ) -> Result<u64> {
        let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
            .fetch_one(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO webhooks (id, url, secret, created_by, created_at, seq, owner, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, '', 0)",
        )
        .bind(id)
        .bind(url)
        .bind(sealed_secret.map(str::to_owned))
        .bind(created_by)
        .bind(created_at)
        .bind(head)
        .execute(&mut *self.tx)
        .await?;
        seq(head)
    }

    /// Removes webhook `id`; the removed record, or `None` when there is none.
    pub async fn delete_webhook(&mut self, id: &str) -> Result<Option<WebhookRecord>> {
        let found = sqlx::query(
            "SELECT id, url, secret, created_by, created_at FROM webhooks WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .as_ref()
        .map(decode)
        .transpose()?;
        if found.is_some() {
            sqlx::query("DELETE FROM webhooks WHERE id = $1")
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(found)
    }

    /// How many webhooks there are.
    pub async fn webhook_count(&mut self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks")
            .fetch_one(&mut *self.tx)
            .await?;
        seq(n)
    }
}

impl Store {
    /// Every webhook, oldest first.
    pub async fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        sqlx::query(
            "SELECT id, url, secret, created_by, created_at FROM webhooks ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(decode)
        .collect()
    }

    /// The stored (sealed) secret of webhook `id`: `None` when the webhook is gone, `Some(None)`
    /// when it has no secret.
    pub async fn webhook_secret(&self, id: &str) -> Result<Option<Option<String>>> {
        let row = sqlx::query("SELECT secret FROM webhooks WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| r.try_get::<Option<String>, _>("secret"))
            .transpose()
            .map_err(Into::into)
    }

    /// Takes or renews the delivery lease of webhook `id` for `owner` until `lease_until` (unix
    /// ms) when it is free, expired at `now_ms`, or `owner`'s already. Returns the cursor when
    /// `owner` holds the lease; `None` when another replica does or the webhook is gone.
    pub async fn webhook_claim(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> Result<Option<u64>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE webhooks SET owner = $1, lease_until = $2
             WHERE id = $3 AND (owner = $1 OR lease_until < $4)
             RETURNING seq",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(id)
        .bind(now_ms)
        .fetch_optional(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        row.map(|r| seq(r.try_get("seq")?)).transpose()
    }

    /// Moves webhook `id`'s cursor forward to `to` and renews the lease. False, changing
    /// nothing, when `owner` no longer holds the lease, the webhook is gone, or `to` is behind.
    pub async fn webhook_advance(
        &self,
        id: &str,
        owner: &str,
        to: u64,
        lease_until: i64,
    ) -> Result<bool> {
        let to = i64::try_from(to).map_err(|_| Error::Corrupt("webhook seq overflow".into()))?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET seq = $1, lease_until = $2
             WHERE id = $3 AND owner = $4 AND seq <= $1",
        )
        .bind(to)
        .bind(lease_until)
        .bind(id)
        .bind(owner)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done == 1)
    }
}

fn decode(r: &AnyRow) -> Result<WebhookRecord> {
    let secret: Option<String> = r.try_get("secret")?;
    Ok(WebhookRecord {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        has_secret: secret.is_some(),
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

fn seq(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt("webhook seq".into()))
}
