//! `/v1/audit`: the hash-chained audit log, in order.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use brevet_proto::api::AuditEventView;
use serde::Deserialize;

use crate::Error;
use crate::app::App;
use crate::auth::Caller;

/// Who may read the whole trail.
const READERS: [&str; 3] = ["admins", "auditors", "approvers"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<u64>,
    limit: Option<i64>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEventView>>, Error> {
    if !caller
        .user
        .groups
        .iter()
        .any(|g| READERS.contains(&g.as_str()))
    {
        return Err(Error::Forbidden(format!(
            "reading the audit trail needs membership of one of: {}",
            READERS.join(", ")
        )));
    }
    let events = app
        .store
        .audit_events(
            q.after.unwrap_or(0),
            q.limit.unwrap_or(1000).clamp(1, 10_000),
        )
        .await?;
    Ok(Json(
        events
            .into_iter()
            .map(|s| AuditEventView {
                seq: s.event.seq,
                at: s.event.at,
                kind: s.event.kind,
                actor: s.event.actor,
                subject: s.event.subject,
                data: s.event.data,
                leaf_hash: s.leaf_hash,
                chain_hash: s.chain_hash,
            })
            .collect(),
    ))
}
