//! Privilege changes under the two-person rule: giving somebody approve, break-glass or
//! administration power waits for a second administrator (`pending`, no effect yet) or, on an
//! installation with a single administrator, takes effect at once but stays `unconfirmed`
//! until a second administrator confirms it. `rejected` undoes nothing that was never in effect
//! and takes back what was.

use sqlx::{AssertSqlSafe, Row, any::AnyRow};

use crate::{Error, Result, Store, Tx};

/// One change by id (locked with [`crate::Engine::for_update`] in a transaction).
const BY_ID: &str = "SELECT * FROM privilege_changes WHERE id = $1";

/// The open changes of one person (locked likewise).
const OPEN_OF_USER: &str = concat!(
    "SELECT * FROM privilege_changes WHERE user_name = $1 AND ",
    open_privilege_change!(),
    " ORDER BY requested_at, id"
);

/// Where a privilege change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegeState {
    /// Waiting for a second administrator; not in effect.
    Pending,
    /// In effect (single-administrator installation), waiting for a second administrator.
    Unconfirmed,
    Confirmed,
    Rejected,
}

impl PrivilegeState {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivilegeState::Pending => "pending",
            PrivilegeState::Unconfirmed => "unconfirmed",
            PrivilegeState::Confirmed => "confirmed",
            PrivilegeState::Rejected => "rejected",
        }
    }

    /// Whether the change still waits for a second administrator (`pending`, `unconfirmed`).
    pub fn is_open(self) -> bool {
        matches!(self, PrivilegeState::Pending | PrivilegeState::Unconfirmed)
    }

    pub fn parse(s: &str) -> Option<PrivilegeState> {
        Some(match s {
            "pending" => PrivilegeState::Pending,
            "unconfirmed" => PrivilegeState::Unconfirmed,
            "confirmed" => PrivilegeState::Confirmed,
            "rejected" => PrivilegeState::Rejected,
            _ => return None,
        })
    }
}

/// One change: `user` joins `group`, or (no group) the account itself, which the policy names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeRecord {
    pub id: String,
    pub user: String,
    pub group: Option<String>,
    pub state: PrivilegeState,
    pub requested_by: String,
    pub requested_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub reason: Option<String>,
}

impl Tx {
    pub async fn insert_privilege_change(&mut self, p: &PrivilegeRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO privilege_changes (id, user_name, group_name, state, requested_by,
                requested_at, decided_by, decided_at, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&p.id)
        .bind(&p.user)
        .bind(p.group.as_deref())
        .bind(p.state.as_str())
        .bind(&p.requested_by)
        .bind(p.requested_at)
        .bind(p.decided_by.as_deref())
        .bind(p.decided_at)
        .bind(p.reason.as_deref())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Reads a change and, on PostgreSQL, locks its row until the transaction ends.
    pub async fn lock_privilege_change(&mut self, id: &str) -> Result<Option<PrivilegeRecord>> {
        let sql = format!("{BY_ID}{}", self.engine.for_update());
        sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|r| decode(&r))
            .transpose()
    }

    /// Moves a change from `from` to `to`. False, changing nothing, if it was not in `from`.
    pub async fn decide_privilege_change(
        &mut self,
        id: &str,
        from: PrivilegeState,
        to: PrivilegeState,
        by: &str,
        at: i64,
        reason: Option<&str>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE privilege_changes SET state = $1, decided_by = $2, decided_at = $3,
                reason = COALESCE($4, reason)
             WHERE id = $5 AND state = $6",
        )
        .bind(to.as_str())
        .bind(by)
        .bind(at)
        .bind(reason)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The open (pending or unconfirmed) changes for `user`, locked.
    pub async fn lock_open_privilege_changes(
        &mut self,
        user: &str,
    ) -> Result<Vec<PrivilegeRecord>> {
        let sql = format!("{OPEN_OF_USER}{}", self.engine.for_update());
        sqlx::query(AssertSqlSafe(sql))
            .bind(user)
            .fetch_all(&mut *self.tx)
            .await?
            .iter()
            .map(decode)
            .collect()
    }
}

impl Store {
    pub async fn privilege_change(&self, id: &str) -> Result<Option<PrivilegeRecord>> {
        sqlx::query(BY_ID)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|r| decode(&r))
            .transpose()
    }

    /// The open (pending or unconfirmed) changes for `user`.
    pub async fn open_privilege_changes(&self, user: &str) -> Result<Vec<PrivilegeRecord>> {
        sqlx::query(OPEN_OF_USER)
            .bind(user)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Changes in `state` (all when `None`), newest first.
    pub async fn privilege_changes(
        &self,
        state: Option<PrivilegeState>,
        limit: i64,
    ) -> Result<Vec<PrivilegeRecord>> {
        sqlx::query(
            "SELECT * FROM privilege_changes WHERE ($1 IS NULL OR state = $1)
             ORDER BY requested_at DESC, id LIMIT $2",
        )
        .bind(state.map(PrivilegeState::as_str))
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(decode)
        .collect()
    }
}

fn decode(row: &AnyRow) -> Result<PrivilegeRecord> {
    let state: String = row.try_get("state")?;
    Ok(PrivilegeRecord {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        group: row.try_get("group_name")?,
        state: PrivilegeState::parse(&state)
            .ok_or_else(|| Error::Corrupt(format!("privilege change state `{state}`")))?,
        requested_by: row.try_get("requested_by")?,
        requested_at: row.try_get("requested_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        reason: row.try_get("reason")?,
    })
}
