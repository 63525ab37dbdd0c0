//! Appending to the hash-chained audit log inside the caller's transaction, and reading it back:
//! in order, by search ([`AuditFilter`]), and as leaf hashes for the Merkle tree.

use brevet_audit::{Event, Head, Sealed};
use brevet_proto::timefmt::rfc3339;
use sqlx::{AssertSqlSafe, Row, any::AnyRow};

use crate::{Engine, Error, Result, Store, Tx};

/// An event sealed in a transaction and not yet written.
pub(crate) struct Pending {
    seq: i64,
    sealed: Sealed,
    terms: Vec<String>,
}

/// Rows per multi-row `INSERT` (8 parameters each; far below either engine's limit).
const CHUNK: usize = 100;

impl Tx {
    /// Appends one event to the audit chain. It commits or rolls back with the change it records:
    /// the chain head is read (on PostgreSQL, locked) once per transaction, events are sealed in
    /// memory, and [`Tx::commit`] writes them and the new head in a few statements.
    pub async fn audit(
        &mut self,
        kind: &str,
        actor: &str,
        subject: &str,
        data: serde_json::Value,
        at: i64,
    ) -> Result<Sealed> {
        let head = match self.audit_head {
            Some(head) => head,
            None => self.read_audit_head().await?,
        };
        let (sealed, next) = brevet_audit::seal(&head, kind, actor, subject, data, &rfc3339(at))?;
        let seq = i64::try_from(sealed.event.seq)
            .map_err(|_| Error::Corrupt("audit seq overflow".into()))?;
        let terms = self.event_terms(&sealed.event).await?;
        self.audit_head = Some(next);
        self.audit_pending.push(Pending {
            seq,
            sealed: sealed.clone(),
            terms,
        });
        Ok(sealed)
    }

    async fn read_audit_head(&mut self) -> Result<Head> {
        let sql = match self.engine {
            Engine::Sqlite => "SELECT seq, chain_hash FROM audit_head WHERE id = 1",
            Engine::Postgres => "SELECT seq, chain_hash FROM audit_head WHERE id = 1 FOR UPDATE",
        };
        let row = sqlx::query(sql).fetch_one(&mut *self.tx).await?;
        let seq: i64 = row.try_get("seq")?;
        let hash: String = row.try_get("chain_hash")?;
        let seq = u64::try_from(seq).map_err(|_| Error::Corrupt("audit head seq".into()))?;
        Ok(Head::from_hex(seq, &hash)?)
    }

    /// Writes the pending events, their search terms and the new head.
    pub(crate) async fn flush_audit(&mut self) -> Result<()> {
        if self.audit_pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.audit_pending);
        for chunk in pending.chunks(CHUNK) {
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
            for p in chunk {
                let e = &p.sealed.event;
                q = q
                    .bind(p.seq)
                    .bind(e.at.clone())
                    .bind(e.kind.clone())
                    .bind(e.actor.clone())
                    .bind(e.subject.clone())
                    .bind(serde_json::to_string(&e.data)?)
                    .bind(p.sealed.leaf_hash.clone())
                    .bind(p.sealed.chain_hash.clone());
            }
            q.execute(&mut *self.tx).await?;
        }
        let terms: Vec<(String, i64)> = pending
            .iter()
            .flat_map(|p| p.terms.iter().map(move |t| (t.clone(), p.seq)))
            .collect();
        self.insert_terms(&terms).await?;
        let head = self
            .audit_head
            .ok_or_else(|| Error::Corrupt("audit head missing after appends".into()))?;
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
