//! Elevation requests and their approvals.

use brevet_proto::api::RequestState;
use sqlx::{AnyConnection, AssertSqlSafe, Row, any::AnyRow};

use crate::{Error, Result, Store, Tx};

/// One request by id (locked with [`crate::Engine::for_update`] in a transaction).
const BY_ID: &str = "SELECT * FROM requests WHERE id = $1";

/// A stored request with its approvals.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub id: String,
    pub state: RequestState,
    pub user: String,
    pub device: String,
    pub role: String,
    pub duration_seconds: u64,
    pub ticket: Option<String>,
    pub reason: String,
    pub start_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub approvals_required: u32,
    /// Oldest first.
    pub approvals: Vec<ApprovalRecord>,
    /// The policy decision as the server recorded it ([`NewRequest::decision`]).
    pub decision: serde_json::Value,
    pub grant_id: Option<String>,
}

/// One approval of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub approver: String,
    pub at: i64,
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub state: Option<RequestState>,
    pub user: Option<String>,
    pub limit: Option<i64>,
}

/// A new request as the server decided it.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub id: String,
    pub state: RequestState,
    pub user: String,
    pub device: String,
    pub role: String,
    pub duration_seconds: u64,
    pub ticket: Option<String>,
    pub reason: String,
    pub start_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub approvals_required: u32,
    /// The policy decision, in whatever shape the server shows it; stored as JSON text.
    pub decision: serde_json::Value,
}

impl Tx {
    pub async fn insert_request(&mut self, r: &NewRequest) -> Result<()> {
        // A grant or request looked up as absent by an earlier audit event now exists.
        self.audit_facts.clear();
        sqlx::query(
            "INSERT INTO requests (id, state, user_name, device, role, duration_seconds, ticket,
                reason, start_at, created_at, expires_at, decided_at, approvals_required, decision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&r.id)
        .bind(r.state.as_str())
        .bind(&r.user)
        .bind(&r.device)
        .bind(&r.role)
        .bind(i64::try_from(r.duration_seconds).map_err(|_| Error::Corrupt("duration".into()))?)
        .bind(&r.ticket)
        .bind(&r.reason)
        .bind(r.start_at)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.decided_at)
        .bind(i64::from(r.approvals_required))
        .bind(serde_json::to_string(&r.decision)?)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Reads a request and, on PostgreSQL, locks its row until the transaction ends.
    pub async fn lock_request(&mut self, id: &str) -> Result<Option<RequestRecord>> {
        let sql = format!("{BY_ID}{}", self.engine.for_update());
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        match row {
            Some(row) => Ok(Some(decode(&mut self.tx, &row).await?)),
            None => Ok(None),
        }
    }

    /// The pending requests of a person (as requester) or of a device, locked until the
    /// transaction ends.
    pub async fn lock_pending_requests(
        &mut self,
        of: crate::Holder<'_>,
    ) -> Result<Vec<RequestRecord>> {
        let sql = format!(
            concat!(
                "SELECT * FROM requests WHERE {} = $1 AND ",
                pending_request!(),
                " ORDER BY created_at, id{}"
            ),
            of.column(),
            self.engine.for_update()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(of.name())
            .fetch_all(&mut *self.tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(decode(&mut self.tx, row).await?);
        }
        Ok(out)
    }

    /// Records an approval; returns false if this approver had already approved.
    pub async fn add_approval(
        &mut self,
        request_id: &str,
        approver: &str,
        at: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO approvals (request_id, approver, at) VALUES ($1, $2, $3)
             ON CONFLICT (request_id, approver) DO NOTHING",
        )
        .bind(request_id)
        .bind(approver)
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves a request from `from` to `to`. Returns false, changing nothing, if it was not in `from`.
    pub async fn set_request_state(
        &mut self,
        id: &str,
        from: RequestState,
        to: RequestState,
        decided_at: i64,
        grant_id: Option<&str>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE requests SET state = $1, decided_at = $2, grant_id = $3
             WHERE id = $4 AND state = $5",
        )
        .bind(to.as_str())
        .bind(decided_at)
        .bind(grant_id)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Pending requests whose `expires_at` has passed; locked and skipped by other replicas.
    pub async fn due_requests(&mut self, now: i64, limit: i64) -> Result<Vec<String>> {
        let sql = format!(
            concat!(
                "SELECT id FROM requests WHERE ",
                pending_request!(),
                " AND expires_at <= $1 ORDER BY expires_at LIMIT $2{}"
            ),
            self.engine.claim()
        );
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *self.tx)
            .await?)
    }
}

impl Store {
    pub async fn request(&self, id: &str) -> Result<Option<RequestRecord>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(BY_ID)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(row) => Ok(Some(decode(&mut conn, &row).await?)),
            None => Ok(None),
        }
    }

    /// Requests, newest first.
    pub async fn requests(&self, f: &RequestFilter) -> Result<Vec<RequestRecord>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT * FROM requests
             WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR user_name = $2)
             ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(f.state.map(|s| s.as_str()))
        .bind(f.user.as_deref())
        .bind(f.limit.unwrap_or(1000))
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(decode(&mut conn, row).await?);
        }
        Ok(out)
    }

    /// How many requests are in each state (for metrics).
    pub async fn request_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM requests GROUP BY state")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }
}

pub(crate) async fn decode(conn: &mut AnyConnection, row: &AnyRow) -> Result<RequestRecord> {
    let id: String = row.try_get("id")?;
    let approvals = sqlx::query(
        "SELECT approver, at FROM approvals WHERE request_id = $1 ORDER BY at, approver",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ApprovalRecord {
            approver: r.try_get("approver")?,
            at: r.try_get("at")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let state: String = row.try_get("state")?;
    let decision: String = row.try_get("decision")?;
    Ok(RequestRecord {
        state: RequestState::parse(&state)
            .ok_or_else(|| Error::Corrupt(format!("request state `{state}`")))?,
        user: row.try_get("user_name")?,
        device: row.try_get("device")?,
        role: row.try_get("role")?,
        duration_seconds: u64::try_from(row.try_get::<i64, _>("duration_seconds")?)
            .map_err(|_| Error::Corrupt("negative duration".into()))?,
        ticket: row.try_get("ticket")?,
        reason: row.try_get("reason")?,
        start_at: row.try_get("start_at")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        decided_at: row.try_get("decided_at")?,
        approvals_required: u32::try_from(row.try_get::<i64, _>("approvals_required")?)
            .map_err(|_| Error::Corrupt("approvals_required".into()))?,
        approvals,
        decision: serde_json::from_str(&decision)
            .map_err(|e| Error::Corrupt(format!("the decision of request `{id}`: {e}")))?,
        grant_id: row.try_get("grant_id")?,
        id,
    })
}
