//! Appending to the hash-chained audit log inside the caller's transaction.

use brevet_audit::{Event, Head, Sealed};
use brevet_proto::timefmt::rfc3339;
use sqlx::{Row, any::AnyRow};

use crate::{Engine, Error, Result, Store, Tx};

impl Tx {
    /// Appends one event to the audit chain. It commits or rolls back with the change it records;
    /// on PostgreSQL the head row lock orders concurrent appenders.
    pub async fn audit(
        &mut self,
        kind: &str,
        actor: &str,
        subject: &str,
        data: serde_json::Value,
        at: i64,
    ) -> Result<Sealed> {
        let sql = match self.engine {
            Engine::Sqlite => "SELECT seq, chain_hash FROM audit_head WHERE id = 1",
            Engine::Postgres => "SELECT seq, chain_hash FROM audit_head WHERE id = 1 FOR UPDATE",
        };
        let row = sqlx::query(sql).fetch_one(&mut *self.tx).await?;
        let seq: i64 = row.try_get("seq")?;
        let hash: String = row.try_get("chain_hash")?;
        let seq = u64::try_from(seq).map_err(|_| Error::Corrupt("audit head seq".into()))?;
        let head = Head::from_hex(seq, &hash)?;
        let (sealed, next) = brevet_audit::seal(&head, kind, actor, subject, data, &rfc3339(at))?;
        let e = &sealed.event;
        let seq = i64::try_from(e.seq).map_err(|_| Error::Corrupt("audit seq overflow".into()))?;
        sqlx::query(
            "INSERT INTO audit_events (seq, at, kind, actor, subject, data, leaf_hash, chain_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(&e.at)
        .bind(&e.kind)
        .bind(&e.actor)
        .bind(&e.subject)
        .bind(serde_json::to_string(&e.data)?)
        .bind(&sealed.leaf_hash)
        .bind(&sealed.chain_hash)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("UPDATE audit_head SET seq = $1, chain_hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(next.hex())
            .execute(&mut *self.tx)
            .await?;
        Ok(sealed)
    }
}

impl Store {
    /// Audit events with `seq > after`, in order, at most `limit`.
    pub async fn audit_events(&self, after: u64, limit: i64) -> Result<Vec<Sealed>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        sqlx::query("SELECT * FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(decode)
            .collect()
    }
}

fn decode(row: &AnyRow) -> Result<Sealed> {
    let data: String = row.try_get("data")?;
    let seq: i64 = row.try_get("seq")?;
    Ok(Sealed {
        event: Event {
            seq: u64::try_from(seq).map_err(|_| Error::Corrupt("audit seq".into()))?,
            at: row.try_get("at")?,
            kind: row.try_get("kind")?,
            actor: row.try_get("actor")?,
            subject: row.try_get("subject")?,
            data: serde_json::from_str(&data)?,
        },
        leaf_hash: row.try_get("leaf_hash")?,
        chain_hash: row.try_get("chain_hash")?,
    })
}
