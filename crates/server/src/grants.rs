//! Grants: signing them when a request is approved, and ending them (revoke, done, expiry).

use brevet_policy::Permission;
use brevet_proto::api::{GrantState, GrantView, RequestView};
use brevet_proto::grant::{GrantDoc, GrantKind};
use brevet_proto::timefmt::rfc3339;
use brevet_proto::validate;
use brevet_store::{Holder, NewGrant, Tx};
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::auth::Caller;
use crate::authz;
use crate::config::RoleConfig;

/// Signs and stores the grant for an approved request, inside the approving transaction.
/// The window starts now, or at the requested start if that is later. Returns the grant id.
pub async fn issue_grant(
    app: &App,
    tx: &mut Tx,
    req: &RequestView,
    role: &RoleConfig,
    mut approvers: Vec<String>,
    kind: GrantKind,
    now: i64,
) -> Result<String, Error> {
    let start = match &req.start {
        Some(s) => brevet_proto::timefmt::parse_rfc3339("start", s)?.max(now),
        None => now,
    };
    let end = start
        + i64::try_from(req.duration_seconds).map_err(|_| Error::Internal("duration".into()))?;
    approvers.sort();
    let doc = GrantDoc {
        v: 1,
        grant_id: uuid::Uuid::new_v4().to_string(),
        request_id: req.id.clone(),
        device: req.device.clone(),
        user: req.user.clone(),
        role: req.role.clone(),
        runas: role.runas.clone(),
        commands: role.commands.clone(),
        groups: role.groups.clone(),
        not_before: rfc3339(start),
        not_after: rfc3339(end),
        ticket: req.ticket.clone(),
        approvers,
        issued_at: rfc3339(now),
        kind,
    };
    let signed = doc.sign(&app.grant_key)?;
    tx.insert_grant(&NewGrant {
        doc: &doc,
        signed: &signed,
        not_before: start,
        not_after: end,
        issued_at: now,
    })
    .await?;
    tx.audit(
        "grant.issued",
        "brevetd",
        &doc.grant_id,
        json!({
            "request_id": doc.request_id, "device": doc.device, "user": doc.user, "role": doc.role,
            "runas": doc.runas, "commands": doc.commands, "groups": doc.groups,
            "not_before": doc.not_before, "not_after": doc.not_after, "ticket": doc.ticket,
            "approvers": doc.approvers, "kind": doc.kind, "signature": signed.sig,
        }),
        now,
    )
    .await?;
    Ok(doc.grant_id)
}

/// Ends a grant early: `Revoked` (the requester, an approver allowed by policy, or an admin) or
/// `Completed` (the requester says the task is done).
pub async fn end(
    app: &App,
    caller: &Caller,
    id: &str,
    to: GrantState,
    reason: &str,
) -> Result<GrantView, Error> {
    validate::id("grant id", id)?;
    let grant = fetch(app, id).await?;
    if grant.user != caller.name() && !authz::sees_grant(app, caller, &grant).await? {
        return Err(not_found(id));
    }
    match to {
        GrantState::Completed if grant.user != caller.name() => {
            return Err(Error::Forbidden(format!(
                "only `{}` can mark grant `{id}` done; others revoke it",
                grant.user
            )));
        }
        GrantState::Revoked if grant.user != caller.name() => {
            may_revoke(app, caller, &grant).await?;
        }
        _ => {}
    }
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    let current = tx.lock_grant(id).await?.ok_or_else(|| not_found(id))?;
    if !current.state.is_live() || !tx.end_grant(id, to, now, reason, caller.name()).await? {
        return Err(Error::Conflict(format!(
            "grant `{id}` has already ended ({})",
            current.state
        )));
    }
    let kind = match to {
        GrantState::Completed => "grant.completed",
        _ => "grant.revoked",
    };
    tx.audit(
        kind,
        caller.name(),
        id,
        json!({
            "reason": reason, "device": current.device, "user": current.user,
            "request_id": current.request_id, "ticket": current.doc.ticket,
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    app.grant_changed(&current.device);
    fetch(app, id).await
}

/// Others than the holder may revoke a grant with `manage_requests`, or when they could approve
/// its request.
async fn may_revoke(app: &App, caller: &Caller, grant: &GrantView) -> Result<(), Error> {
    if authz::holds(app, caller, Permission::ManageRequests)
        || authz::approves_grant(app, caller, grant).await?
    {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "`{}` may not revoke grant `{}`: only its holder, an approver for `{}` on `{}`, or an admin",
            caller.name(),
            grant.id,
            grant.role,
            grant.device
        )))
    }
}

/// Revokes every live grant of a person or device inside `tx` (when the person or device is
/// disabled), each audited as `grant.revoked` with `reason`. Returns the grants revoked with
/// their devices; the caller wakes those devices after the commit.
pub async fn revoke_live(
    tx: &mut Tx,
    of: Holder<'_>,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<Vec<(String, String)>, Error> {
    let mut revoked = Vec::new();
    for g in tx.lock_live_grants(of).await? {
        if tx
            .end_grant(&g.id, GrantState::Revoked, now, reason, actor)
            .await?
        {
            let data = json!({
                "reason": reason, "device": g.device, "user": g.user,
                "request_id": g.request_id, "ticket": g.doc.ticket,
            });
            tx.audit("grant.revoked", actor, &g.id, data, now).await?;
            revoked.push((g.id, g.device));
        }
    }
    Ok(revoked)
}

/// Ends grants whose `not_after` has passed. Returns how many.
pub async fn expire_due(app: &App) -> Result<usize, Error> {
    let now_ms = app.clock.now_ms();
    let now = now_ms.div_euclid(1000);
    let mut tx = app.store.begin().await?;
    let due = tx.due_grants(now, 200).await?;
    for (id, not_after, device) in &due {
        tx.end_grant(id, GrantState::Expired, now, "not_after reached", "brevetd")
            .await?;
        let lag_ms = now_ms - not_after * 1000;
        let grant = tx.lock_grant(id).await?;
        let user = grant.as_ref().map(|g| g.user.as_str());
        let request_id = grant.as_ref().map(|g| g.request_id.as_str());
        tx.audit(
            "grant.expired",
            "brevetd",
            id,
            json!({
                "not_after": rfc3339(*not_after), "lag_ms": lag_ms,
                "device": device, "user": user, "request_id": request_id,
            }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    for (_, not_after, device) in &due {
        app.metrics
            .expiry_lag
            .observe((now_ms - not_after * 1000) as f64 / 1000.0);
        app.grant_changed(device);
    }
    Ok(due.len())
}

pub async fn fetch(app: &App, id: &str) -> Result<GrantView, Error> {
    validate::id("grant id", id)?;
    app.store
        .grant(id)
        .await?
        .map(crate::views::grant)
        .ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("no grant `{id}`"))
}
