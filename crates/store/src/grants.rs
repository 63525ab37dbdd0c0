//! Grants: the signed documents devices enforce, and their life (DESIGN §2).

use brevet_proto::api::GrantState;
use brevet_proto::grant::{GrantDoc, SignedGrant};
use sqlx::{AssertSqlSafe, Row, any::AnyRow};

use crate::{Error, Result, Store, Tx};

/// One grant by id (locked with [`crate::Engine::for_update`] in a transaction).
const BY_ID: &str = "SELECT * FROM grants WHERE id = $1";

/// A stored grant: its signed document (also decoded) and what happened to it since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: String,
    pub request_id: String,
    pub state: GrantState,
    pub user: String,
    pub device: String,
    pub role: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    pub ended_by: Option<String>,
    /// When the device first fetched it, applied it, confirmed its removal.
    pub delivered_at: Option<i64>,
    pub applied_at: Option<i64>,
    pub revocation_confirmed_at: Option<i64>,
    /// When the alert for an unconfirmed removal was raised.
    pub alert_raised_at: Option<i64>,
    /// The document as signed, and decoded.
    pub signed: SignedGrant,
    pub doc: GrantDoc,
}

/// Which grants to list.
#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    /// Only live grants (`issued` and `active`).
    pub live: bool,
    pub device: Option<String>,
    pub user: Option<String>,
    pub limit: Option<i64>,
}

/// Whose live grants or pending requests: a person's (as holder or requester) or a device's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder<'a> {
    User(&'a str),
    Device(&'a str),
}

impl Holder<'_> {
    /// The column naming the holder, in `grants` and `requests` alike.
    pub(crate) fn column(&self) -> &'static str {
        match self {
            Holder::User(_) => "user_name",
            Holder::Device(_) => "device",
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Holder::User(n) | Holder::Device(n) => n,
        }
    }
}

/// A grant as issued: its signed document and the columns the server queries by.
pub struct NewGrant<'a> {
    pub doc: &'a GrantDoc,
    pub signed: &'a SignedGrant,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
}

impl Tx {
    pub async fn insert_grant(&mut self, g: &NewGrant<'_>) -> Result<()> {
        // A grant or request looked up as absent by an earlier audit event now exists.
        self.audit_facts.clear();
        sqlx::query(
            "INSERT INTO grants (id, request_id, state, user_name, device, role, not_before,
                not_after, issued_at, doc, sig)
             VALUES ($1, $2, 'issued', $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&g.doc.grant_id)
        .bind(&g.doc.request_id)
        .bind(&g.doc.user)
        .bind(&g.doc.device)
        .bind(&g.doc.role)
        .bind(g.not_before)
        .bind(g.not_after)
        .bind(g.issued_at)
        .bind(&g.signed.doc)
        .bind(&g.signed.sig)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Reads a grant and, on PostgreSQL, locks its row until the transaction ends.
    pub async fn lock_grant(&mut self, id: &str) -> Result<Option<GrantRecord>> {
        let sql = format!("{BY_ID}{}", self.engine.for_update());
        sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|r| decode(&r))
            .transpose()
    }

    /// The live grants of a person or a device, locked until the transaction ends.
    pub async fn lock_live_grants(&mut self, of: Holder<'_>) -> Result<Vec<GrantRecord>> {
        let sql = format!(
            concat!(
                "SELECT * FROM grants WHERE {} = $1 AND ",
                live_grant!(),
                " ORDER BY id{}"
            ),
            of.column(),
            self.engine.for_update()
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(of.name())
            .fetch_all(&mut *self.tx)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Ends a live grant. Returns false, changing nothing, if it had already ended.
    pub async fn end_grant(
        &mut self,
        id: &str,
        to: GrantState,
        at: i64,
        reason: &str,
        by: &str,
    ) -> Result<bool> {
        let r = sqlx::query(concat!(
            "UPDATE grants SET state = $1, ended_at = $2, end_reason = $3, ended_by = $4
             WHERE id = $5 AND ",
            live_grant!()
        ))
        .bind(to.as_str())
        .bind(at)
        .bind(reason)
        .bind(by)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Live grants whose `not_after` has passed, oldest first, as (id, not_after, device); other
    /// replicas skip the ones this transaction holds.
    pub async fn due_grants(&mut self, now: i64, limit: i64) -> Result<Vec<(String, i64, String)>> {
        let sql = format!(
            concat!(
                "SELECT id, not_after, device FROM grants WHERE ",
                live_grant!(),
                " AND not_after <= $1 ORDER BY not_after LIMIT $2{}"
            ),
            self.engine.claim()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("not_after")?,
                    r.try_get("device")?,
                ))
            })
            .collect()
    }
}

impl Store {
    pub async fn grant(&self, id: &str) -> Result<Option<GrantRecord>> {
        sqlx::query(BY_ID)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|r| decode(&r))
            .transpose()
    }

    /// Grants, newest first.
    pub async fn grants(&self, f: &GrantFilter) -> Result<Vec<GrantRecord>> {
        sqlx::query(concat!(
            "SELECT * FROM grants WHERE ($1 = 0 OR ",
            live_grant!(),
            ") AND ($2 IS NULL OR device = $2) AND ($3 IS NULL OR user_name = $3)
             ORDER BY issued_at DESC, id LIMIT $4"
        ))
        .bind(i64::from(f.live))
        .bind(f.device.as_deref())
        .bind(f.user.as_deref())
        .bind(f.limit.unwrap_or(1000))
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(decode)
        .collect()
    }

    /// The earliest `not_after` among live grants: when the sweeper next has work.
    pub async fn next_grant_expiry(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(concat!(
            "SELECT MIN(not_after) FROM grants WHERE ",
            live_grant!()
        ))
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn live_grant_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar(concat!("SELECT COUNT(*) FROM grants WHERE ", live_grant!()))
                .fetch_one(self.pool())
                .await?,
        )
    }
}

pub(crate) fn decode(row: &AnyRow) -> Result<GrantRecord> {
    let signed = SignedGrant {
        doc: row.try_get("doc")?,
        sig: row.try_get("sig")?,
    };
    let id: String = row.try_get("id")?;
    let doc: GrantDoc = serde_json::from_str(&signed.doc)
        .map_err(|e| Error::Corrupt(format!("the document of grant `{id}`: {e}")))?;
    let state: String = row.try_get("state")?;
    Ok(GrantRecord {
        request_id: row.try_get("request_id")?,
        state: GrantState::parse(&state)
            .ok_or_else(|| Error::Corrupt(format!("grant state `{state}`")))?,
        user: row.try_get("user_name")?,
        device: row.try_get("device")?,
        role: row.try_get("role")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        issued_at: row.try_get("issued_at")?,
        ended_at: row.try_get("ended_at")?,
        end_reason: row.try_get("end_reason")?,
        ended_by: row.try_get("ended_by")?,
        delivered_at: row.try_get("delivered_at")?,
        applied_at: row.try_get("applied_at")?,
        revocation_confirmed_at: row.try_get("revocation_confirmed_at")?,
        alert_raised_at: row.try_get("alert_raised_at")?,
        signed,
        doc,
        id,
    })
}
