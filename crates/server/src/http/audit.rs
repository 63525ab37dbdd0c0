//! `/v1/audit`: the hash-chained audit log in order, searched, its signed checkpoints, and
//! Merkle proofs (`docs/audit.md`).
//!
//! Reading the trail needs `read_audit` (admins and auditors under the default policy). Anyone
//! who may see a grant (its holder, an approver of its role and device) may read its story
//! (`?grant=ID`), which is what `brevet grant show` asks for.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use brevet_audit::{Checkpoint, ConsistencyProof, InclusionProof};
use brevet_policy::Permission;
use brevet_proto::api::AuditEventView;
use brevet_proto::timefmt::{parse_rfc3339, rfc3339};
use brevet_proto::validate;
use brevet_store::AuditFilter;
use serde::Deserialize;

use crate::Error;
use crate::app::App;
use crate::auth::Caller;
use crate::{audit_proofs, authz};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<u64>,
    limit: Option<i64>,
    /// RFC 3339: only events at or after this time.
    since: Option<String>,
    /// Events by or about this person (actor, requester, grant holder).
    user: Option<String>,
    device: Option<String>,
    ticket: Option<String>,
    /// The whole story of one grant: its events and those of its request.
    grant: Option<String>,
    kind: Option<String>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEventView>>, Error> {
    let mut f = AuditFilter {
        after: q.after.unwrap_or(0),
        limit: q.limit.unwrap_or(1000).clamp(1, 10_000),
        ..AuditFilter::default()
    };
    if let Some(since) = &q.since {
        f.since = Some(rfc3339(parse_rfc3339("since", since)?));
    }
    if let Some(kind) = q.kind {
        f.kind = Some(check_kind(kind)?);
    }
    if let Some(user) = &q.user {
        f.terms
            .push(vec![format!("user:{}", validate::user_name(user)?)]);
    }
    if let Some(device) = &q.device {
        f.terms
            .push(vec![format!("device:{}", validate::device_name(device)?)]);
    }
    if let Some(ticket) = &q.ticket {
        f.terms
            .push(vec![format!("ticket:{}", validate::ticket(ticket)?)]);
    }
    let mut story_visible = false;
    if let Some(grant) = &q.grant {
        let id = validate::id("grant id", grant)?;
        let mut group = vec![format!("grant:{id}")];
        if let Some(g) = app.store.grant(id).await?.map(crate::views::grant) {
            story_visible = authz::sees_grant(&app, &caller, &g).await?;
            group.push(format!("request:{}", g.request_id));
        }
        f.terms.push(group);
    }
    if !story_visible {
        require_reader(&app, &caller)?;
    }
    let events = app.store.audit_search(&f).await?;
    Ok(Json(events.into_iter().map(AuditEventView::from).collect()))
}

/// `GET /v1/audit/checkpoint`: the latest signed checkpoint.
pub async fn checkpoint(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Checkpoint>, Error> {
    require_reader(&app, &caller)?;
    match app.store.latest_checkpoint().await? {
        Some(stored) => Ok(Json(stored.checkpoint)),
        None => Err(Error::NotFound(
            "no audit checkpoint has been signed yet; try again in a second".into(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    seq: u64,
    size: Option<u64>,
}

/// `GET /v1/audit/proof/inclusion?seq=N[&size=S]` (size: the latest checkpoint's by default).
pub async fn inclusion(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<InclusionProof>, Error> {
    require_reader(&app, &caller)?;
    Ok(Json(audit_proofs::inclusion(&app, q.seq, q.size).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

/// `GET /v1/audit/proof/consistency?from=A[&to=B]` (to: the latest checkpoint's by default).
pub async fn consistency(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, Error> {
    require_reader(&app, &caller)?;
    Ok(Json(audit_proofs::consistency(&app, q.from, q.to).await?))
}

fn require_reader(app: &App, caller: &Caller) -> Result<(), Error> {
    authz::require(app, caller, Permission::ReadAudit)
}

/// An event kind: dotted lower-case words such as `grant.used`.
fn check_kind(kind: String) -> Result<String, Error> {
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c));
    if ok {
        Ok(kind)
    } else {
        Err(Error::Invalid(format!(
            "invalid kind `{}`: expected dotted lower-case words such as `grant.used`",
            kind.chars().take(64).collect::<String>().escape_debug()
        )))
    }
}
