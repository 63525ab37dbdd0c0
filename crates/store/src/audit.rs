//! Appending to the hash-chained audit log inside the caller's transaction, and reading it back:
//! in order, by search ([`AuditFilter`]), and as leaf hashes for the Merkle tree.

use brevet_audit::{Draft, Event, Head, Sealed};
use brevet_proto::timefmt::rfc3339;
use sqlx::{AssertSqlSafe, Row, any::AnyRow};

use crate::{Error, Result, Store, Tx};

/// An event drafted in a transaction, sealed and written at commit.
pub(crate) struct Pending {
    draft: Draft,
    terms: Vec<String>,
    /// The device event this audit event records, if it is one (`device_events`).
    device_event: Option<DeviceEventRecord>,
}

/// A device's own event (`grant.used`, `grant.changes`), kept by its id so a resend is a
/// duplicate.
#[derive(Debug, Clone)]
pub struct DeviceEventRecord {
    pub id: String,
    pub device: String,
    pub grant_id: String,
    pub recorded_at: i64,
}

/// Rows per multi-row `INSERT` (8 parameters each; far below either engine's limit).
const CHUNK: usize = 100;

impl Tx {
    /// Appends one event to the audit chain. It commits or rolls back with the change it records.
    /// The event is checked now (a bad kind, time or data fails the caller's action) and sealed
    /// at [`Tx::commit`], which reads the chain head (on PostgreSQL, locks it) only then and
    /// writes every event of the transaction and the new head in a few statements.
    pub async fn audit(
        &mut self,
        kind: &str,
        actor: &str,
        subject: &str,
        data: serde_json::Value,
        at: i64,
    ) -> Result<()> {
        self.draft_audit(kind, actor, subject, data, at, None).await
    }

    /// [`Tx::audit`] for an event a device sent, recorded under its id at commit.
    pub async fn audit_device_event(
        &mut self,
        kind: &str,
        actor: &str,
        subject: &str,
        data: serde_json::Value,
        record: DeviceEventRecord,
    ) -> Result<()> {
        let at = record.recorded_at;
        self.draft_audit(kind, actor, subject, data, at, Some(record))
            .await
    }

    async fn draft_audit(
        &mut self,
        kind: &str,
        actor: &str,
        subject: &str,
        data: serde_json::Value,
        at: i64,
        device_event: Option<DeviceEventRecord>,
    ) -> Result<()> {
        let draft = Draft::new(kind, actor, subject, data, &rfc3339(at))?;
        let terms = self.event_terms(draft.event()).await?;
        self.audit_pending.push(Pending {
            draft,
            terms,
            device_event,
        });
        Ok(())
    }

    /// Whether this transaction has already drafted device event `id`.
    pub(crate) fn device_event_pending(&self, id: &str) -> bool {
        self.audit_pending
            .iter()
            .any(|p| p.device_event.as_ref().is_some_and(|d| d.id == id))
    }

    async fn read_audit_head(&mut self) -> Result<Head> {
        let sql = format!(
            "SELECT seq, chain_hash FROM audit_head WHERE id = 1{}",
            self.engine.for_update()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_one(&mut *self.tx)
            .await?;
        let seq: i64 = row.try_get("seq")?;
        let hash: String = row.try_get("chain_hash")?;
        let seq = u64::try_from(seq).map_err(|_| Error::Corrupt("audit head seq".into()))?;
        Ok(Head::from_hex(seq, &hash)?)
    }

    /// Seals the pending events onto the chain head and writes them, their search terms, the
    /// device events they record and the new head.
    pub(crate) async fn flush_audit(&mut self) -> Result<()> {
        if self.audit_pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.audit_pending);
        let mut head = self.read_audit_head().await?;
        let mut sealed = Vec::with_capacity(pending.len());
        for p in pending {
            let (s, next) = p.draft.seal(&head)?;
            head = next;
            let seq = i64::try_from(s.event.seq)
                .map_err(|_| Error::Corrupt("audit seq overflow".into()))?;
            sealed.push((seq, s, p.terms, p.device_event));
        }
        for chunk in sealed.chunks(CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 8;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8
                    )
                })
                .collect();
            // Only generated placeholders are spliced in; every value is bound.
            let sql = format!(
                "INSERT INTO audit_events (seq, at, kind, actor, subject, data, leaf_hash, chain_hash) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (seq, s, _, _) in chunk {
                let e = &s.event;
                q = q
                    .bind(*seq)
                    .bind(e.at.clone())
                    .bind(e.kind.clone())
                    .bind(e.actor.clone())
                    .bind(e.subject.clone())
                    .bind(serde_json::to_string(&e.data)?)
                    .bind(s.leaf_hash.clone())
                    .bind(s.chain_hash.clone());
            }
            q.execute(&mut *self.tx).await?;
        }
        let terms: Vec<(String, i64)> = sealed
            .iter()
            .flat_map(|(seq, _, terms, _)| terms.iter().map(move |t| (t.clone(), *seq)))
            .collect();
        self.insert_terms(&terms).await?;
        let device_events: Vec<(i64, &str, DeviceEventRecord)> = sealed
            .iter()
            .filter_map(|(seq, s, _, d)| Some((*seq, s.event.kind.as_str(), d.clone()?)))
            .collect();
        self.insert_device_events(&device_events).await?;
        let seq =
            i64::try_from(head.seq).map_err(|_| Error::Corrupt("audit seq overflow".into()))?;
        sqlx::query("UPDATE audit_head SET seq = $1, chain_hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(head.hex())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
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

/// Which audit events to find: all conditions must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events with `seq > after`.
    pub after: u64,
    /// At most this many (the first, in `seq` order).
    pub limit: i64,
    /// Only events at or after this RFC 3339 UTC time (compared as text, as stored).
    pub since: Option<String>,
    /// Only events of this kind.
    pub kind: Option<String>,
    /// Each group is a list of index terms (`user:alice`, `grant:ID`; see `audit_terms`), and
    /// an event must carry at least one term of every group.
    pub terms: Vec<Vec<String>>,
}

impl Store {
    /// The events `f` selects, in `seq` order.
    pub async fn audit_search(&self, f: &AuditFilter) -> Result<Vec<Sealed>> {
        let after = i64::try_from(f.after).unwrap_or(i64::MAX);
        let mut sql = String::from("SELECT * FROM audit_events WHERE seq > $1");
        let mut binds: Vec<&str> = Vec::new();
        if let Some(since) = &f.since {
            let p = next(&mut binds, since.as_str());
            sql.push_str(&format!(" AND at >= {p}"));
        }
        if let Some(kind) = &f.kind {
            let p = next(&mut binds, kind.as_str());
            sql.push_str(&format!(" AND kind = {p}"));
        }
        for group in f.terms.iter().filter(|g| !g.is_empty()) {
            let ps: Vec<String> = group.iter().map(|t| next(&mut binds, t.as_str())).collect();
            sql.push_str(&format!(
                " AND seq IN (SELECT seq FROM audit_terms WHERE seq > $1 AND term IN ({}))",
                ps.join(", ")
            ));
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT ${}", binds.len() + 2));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(after);
        for b in binds {
            q = q.bind(b);
        }
        q.bind(f.limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// The leaf hashes of events `after + 1` to `after + limit` (fewer at the end of the log),
    /// in order, as `(seq, leaf hash)`.
    pub async fn audit_leaves(&self, after: u64, limit: i64) -> Result<Vec<(u64, String)>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        sqlx::query("SELECT seq, leaf_hash FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                let seq = u64::try_from(seq).map_err(|_| Error::Corrupt("audit seq".into()))?;
                Ok((seq, r.try_get("leaf_hash")?))
            })
            .collect()
    }

    /// One event.
    pub async fn audit_event(&self, seq: u64) -> Result<Option<Sealed>> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        sqlx::query("SELECT * FROM audit_events WHERE seq = $1")
            .bind(seq)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// How many events the log holds (the head's `seq`).
    pub async fn audit_size(&self) -> Result<u64> {
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        u64::try_from(seq).map_err(|_| Error::Corrupt("audit head seq".into()))
    }
}

/// Records a value to bind and returns its placeholder (`$2` for the first: `$1` is `after`).
/// Only placeholders are ever spliced into the SQL.
fn next<'a>(binds: &mut Vec<&'a str>, value: &'a str) -> String {
    binds.push(value);
    format!("${}", binds.len() + 1)
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
