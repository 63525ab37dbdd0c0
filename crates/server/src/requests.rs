//! The request lifecycle (DESIGN §2): create → pending → approved | denied | cancelled | expired.
//!
//! Every transition is one database transaction that also writes its audit event; the final
//! approval creates the signed grant in that same transaction. Row locks (PostgreSQL) or the
//! single writer (SQLite) make concurrent approvals of one request yield exactly one grant.

use brevet_policy::{Action, Permission};
use brevet_proto::api::{ApproveBody, CreateRequest, DenyBody, RequestState, RequestView};
use brevet_proto::grant::GrantKind;
use brevet_proto::timefmt::{parse_rfc3339, rfc3339};
use brevet_proto::validate;
use brevet_store::NewRequest;
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::auth::{Caller, step_up};
use crate::authz;
use crate::config::{RoleConfig, TicketRule};
use crate::decide::{Facts, decide, view};
use crate::grants::issue_grant;
use crate::views;

/// How far in the future a requested start may lie.
const MAX_START_AHEAD: i64 = 30 * 86_400;

pub async fn create(app: &App, caller: &Caller, body: CreateRequest) -> Result<RequestView, Error> {
    let device_name = validate::device_name(&body.device)?;
    let role_name = validate::role_name(&body.role)?.to_owned();
    let duration = validate::duration(&body.duration)?;
    let ticket = body
        .ticket
        .as_deref()
        .map(validate::ticket)
        .transpose()?
        .map(str::to_owned);
    let reason = validate::reason(&body.reason)?.to_owned();
    let now = app.clock.now();
    let start = body
        .start
        .as_deref()
        .map(|s| parse_rfc3339("start", s))
        .transpose()?;
    if let Some(s) = start {
        if s < now - 60 {
            return Err(Error::Invalid(format!(
                "invalid start `{}`: it is in the past",
                rfc3339(s)
            )));
        }
        if s > now + MAX_START_AHEAD {
            return Err(Error::Invalid(format!(
                "invalid start `{}`: at most 30 days ahead",
                rfc3339(s)
            )));
        }
    }
    let role = role(app, &role_name)?;
    let max = validate::duration(&role.max_duration)?;
    if duration > max {
        return Err(Error::Invalid(format!(
            "invalid duration `{}`: role `{role_name}` allows at most {}",
            body.duration, role.max_duration
        )));
    }
    if role.ticket == TicketRule::Required && ticket.is_none() {
        return Err(Error::Invalid(format!(
            "role `{role_name}` requires a ticket: pass --ticket ID"
        )));
    }
    let device = enabled_device(app, &device_name).await?;

    let facts = Facts {
        device: &device,
        role: &role_name,
        duration_seconds: duration,
        ticket: ticket.as_deref(),
        mfa_age_seconds: caller.session.mfa_at.map(|t| now - t),
    };
    let may_request = decide(app, &caller.user, Action::Request, &facts);
    let (state, outcome, decision) = if !may_request.allowed {
        (RequestState::Denied, "denied", view("denied", &may_request))
    } else {
        let auto = decide(app, &caller.user, Action::AutoApprove, &facts);
        if auto.allowed {
            (
                RequestState::Approved,
                "auto_approved",
                view("auto_approved", &auto),
            )
        } else {
            (
                RequestState::Pending,
                "pending",
                view("pending", &may_request),
            )
        }
    };
    let new = NewRequest {
        id: uuid::Uuid::new_v4().to_string(),
        state: if state == RequestState::Approved {
            RequestState::Pending
        } else {
            state
        },
        user: caller.user.name.clone(),
        device: device_name,
        role: role_name,
        duration_seconds: duration,
        ticket,
        reason,
        start_at: start,
        created_at: now,
        expires_at: now + app.durations.request_ttl,
        decided_at: (state == RequestState::Denied).then_some(now),
        approvals_required: role.approvals,
        decision: views::decision_record(&decision)?,
    };
    let mut tx = app.store.begin().await?;
    tx.insert_request(&new).await?;
    let data = json!({
        "device": new.device, "role": new.role, "duration_seconds": new.duration_seconds,
        "ticket": new.ticket, "reason": new.reason, "start": new.start_at.map(rfc3339),
        "decision": new.decision, "user": new.user,
    });
    tx.audit("request.created", caller.name(), &new.id, data, now)
        .await?;
    match state {
        RequestState::Denied => {
            tx.audit(
                "request.denied",
                "policy",
                &new.id,
                json!({
                    "decision": new.decision,
                    "user": new.user, "device": new.device, "ticket": new.ticket,
                }),
                now,
            )
            .await?;
        }
        RequestState::Approved => {
            let grant = grant_at_once(app, &mut tx, &new.id, role, GrantKind::Normal, now).await?;
            tx.audit(
                "request.approved",
                "policy",
                &new.id,
                json!({
                    "auto": true, "grant_id": grant, "decision": new.decision,
                    "user": new.user, "device": new.device, "ticket": new.ticket,
                }),
                now,
            )
            .await?;
        }
        _ => {}
    }
    tx.commit().await?;
    app.metrics.outcome(outcome);
    if state != RequestState::Pending {
        app.metrics.time_to_decision.observe(0.0);
    }
    if state == RequestState::Approved {
        app.grant_changed(&new.device);
    }
    fetch(app, &new.id).await
}

pub async fn approve(
    app: &App,
    caller: &mut Caller,
    id: &str,
    body: ApproveBody,
) -> Result<RequestView, Error> {
    validate::id("request id", id)?;
    let (req, device) = fetch_with_device(app, caller, id).await?;
    let mfa_age = step_up(app, caller, body.totp.as_deref(), "approving").await?;
    check_approver(app, caller, &req, &device, mfa_age, "approve")?;
    let role = role(app, &req.role)?;
    // Read before the write lock: disabling the requester or the device, or a group change,
    // closes pending requests in its own transaction, so a change that lands after these reads
    // leaves the request no longer pending when the lock is taken.
    let refusal = still_grantable(app, &req, device.as_ref()).await?;
    let counted = valid_approvers(app, &req, device.as_ref()).await?;
    let now = app.clock.now();

    let (mut tx, req) = lock_pending(app, id, now).await?;
    if let Some((close, error)) = refusal {
        close.apply(&mut tx, &req, now).await?;
        tx.commit().await?;
        return Err(error);
    }
    if !tx.add_approval(id, caller.name(), now).await? {
        return Err(Error::Conflict(format!(
            "you have already approved request `{id}`"
        )));
    }
    tx.audit(
        "request.approval",
        caller.name(),
        id,
        json!({
            "mfa_age_seconds": mfa_age,
            "user": req.user, "device": req.device, "role": req.role, "ticket": req.ticket,
        }),
        now,
    )
    .await?;
    // Earlier approvals count only if their approvers could still give them.
    let mut approvers: Vec<String> = req
        .approvals
        .iter()
        .map(|a| a.approver.clone())
        .filter(|a| counted.contains(a))
        .collect();
    approvers.push(caller.name().to_owned());
    let done = approvers.len() >= req.approvals_required as usize;
    if done {
        let grant = issue_grant(
            app,
            &mut tx,
            &req,
            role,
            approvers.clone(),
            GrantKind::Normal,
            now,
        )
        .await?;
        if !tx
            .set_request_state(
                id,
                RequestState::Pending,
                RequestState::Approved,
                now,
                Some(&grant),
            )
            .await?
        {
            return Err(Error::Conflict(format!(
                "request `{id}` was decided concurrently"
            )));
        }
        tx.audit(
            "request.approved",
            caller.name(),
            id,
            json!({
                "approvers": approvers, "grant_id": grant,
                "user": req.user, "device": req.device, "ticket": req.ticket,
            }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    if done {
        app.metrics.outcome("approved");
        observe_decision(app, &req, now);
        app.grant_changed(&req.device);
    }
    fetch(app, id).await
}

pub async fn deny(
    app: &App,
    caller: &mut Caller,
    id: &str,
    body: DenyBody,
) -> Result<RequestView, Error> {
    validate::id("request id", id)?;
    let reason = validate::reason(&body.reason)?.to_owned();
    let (req, device) = fetch_with_device(app, caller, id).await?;
    let mfa_age = step_up(app, caller, body.totp.as_deref(), "denying").await?;
    check_approver(app, caller, &req, &device, mfa_age, "deny")?;
    let now = app.clock.now();
    let (mut tx, req) = lock_pending(app, id, now).await?;
    tx.set_request_state(id, RequestState::Pending, RequestState::Denied, now, None)
        .await?;
    tx.audit(
        "request.denied",
        caller.name(),
        id,
        json!({
            "reason": reason,
            "user": req.user, "device": req.device, "ticket": req.ticket,
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    app.metrics.outcome("denied");
    observe_decision(app, &req, now);
    fetch(app, id).await
}

pub async fn cancel(app: &App, caller: &Caller, id: &str) -> Result<RequestView, Error> {
    validate::id("request id", id)?;
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    let req = views::request(tx.lock_request(id).await?.ok_or_else(|| not_found(id))?)?;
    if req.user != caller.name() && !authz::holds(app, caller, Permission::ManageRequests) {
        if !authz::sees_request(app, caller, &req).await? {
            return Err(not_found(id));
        }
        return Err(Error::Forbidden(format!(
            "only `{}` or someone allowed `manage_requests` may cancel request `{id}`",
            req.user
        )));
    }
    ensure_pending(&req)?;
    tx.set_request_state(
        id,
        RequestState::Pending,
        RequestState::Cancelled,
        now,
        None,
    )
    .await?;
    let data = json!({ "user": req.user, "device": req.device, "ticket": req.ticket });
    tx.audit("request.cancelled", caller.name(), id, data, now)
        .await?;
    tx.commit().await?;
    app.metrics.outcome("cancelled");
    fetch(app, id).await
}

/// Cancels every pending request of a person or device inside `tx` (when the person or device
/// is disabled), each audited as `request.cancelled` with `reason`. Returns their ids.
pub(crate) async fn cancel_pending(
    tx: &mut brevet_store::Tx,
    of: brevet_store::Holder<'_>,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<Vec<String>, Error> {
    let mut cancelled = Vec::new();
    for r in tx.lock_pending_requests(of).await? {
        if tx
            .set_request_state(
                &r.id,
                RequestState::Pending,
                RequestState::Cancelled,
                now,
                None,
            )
            .await?
        {
            let data = json!({
                "reason": reason, "user": r.user, "device": r.device, "ticket": r.ticket,
            });
            tx.audit("request.cancelled", actor, &r.id, data, now)
                .await?;
            cancelled.push(r.id);
        }
    }
    Ok(cancelled)
}

/// Asks the `request` policy again about every pending request of `user` (whose groups just
/// changed, inside `tx`): a request the policy no longer allows is denied (`request.denied`,
/// actor `policy`). Returns the ids denied.
pub(crate) async fn reevaluate_pending(
    app: &App,
    tx: &mut brevet_store::Tx,
    user: &brevet_store::UserRecord,
    now: i64,
) -> Result<Vec<String>, Error> {
    let mut denied = Vec::new();
    for r in tx
        .lock_pending_requests(brevet_store::Holder::User(&user.name))
        .await?
    {
        let allowed = match app.store.device(&r.device).await?.map(views::device) {
            Some(device) => {
                let facts = Facts {
                    device: &device,
                    role: &r.role,
                    duration_seconds: r.duration_seconds,
                    ticket: r.ticket.as_deref(),
                    mfa_age_seconds: None,
                };
                decide(app, user, Action::Request, &facts)
            }
            None => continue,
        };
        if allowed.allowed {
            continue;
        }
        if tx
            .set_request_state(
                &r.id,
                RequestState::Pending,
                RequestState::Denied,
                now,
                None,
            )
            .await?
        {
            let data = json!({
                "decision": view("denied", &allowed), "reevaluated": true,
                "user": r.user, "device": r.device, "ticket": r.ticket,
            });
            tx.audit("request.denied", "policy", &r.id, data, now)
                .await?;
            denied.push(r.id);
        }
    }
    Ok(denied)
}

/// Expires pending requests past their `request_ttl`. Returns how many.
pub async fn expire_due(app: &App) -> Result<usize, Error> {
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    let due = tx.due_requests(now, 100).await?;
    for id in &due {
        tx.set_request_state(id, RequestState::Pending, RequestState::Expired, now, None)
            .await?;
        tx.audit("request.expired", "brevetd", id, json!({}), now)
            .await?;
    }
    tx.commit().await?;
    for _ in &due {
        app.metrics.outcome("expired");
    }
    Ok(due.len())
}

pub async fn fetch(app: &App, id: &str) -> Result<RequestView, Error> {
    validate::id("request id", id)?;
    let found = app.store.request(id).await?.ok_or_else(|| not_found(id))?;
    views::request(found)
}

/// A request as `caller` may see it (one they may not see is not found), with its device.
async fn fetch_with_device(
    app: &App,
    caller: &Caller,
    id: &str,
) -> Result<(RequestView, Option<brevet_proto::api::DeviceView>), Error> {
    let req = fetch(app, id).await?;
    let device = app.store.device(&req.device).await?.map(views::device);
    if authz::sees_request_on(app, caller, &req, device.as_ref()) {
        Ok((req, device))
    } else {
        Err(not_found(id))
    }
}

/// A request as `caller` may see it: one they may not see is not found.
pub async fn fetch_for(app: &App, caller: &Caller, id: &str) -> Result<RequestView, Error> {
    let req = fetch(app, id).await?;
    if authz::sees_request(app, caller, &req).await? {
        Ok(req)
    } else {
        Err(not_found(id))
    }
}

/// Approves request `id`, just inserted in `tx` as pending, with no approver (auto-approval or
/// break-glass): issues its grant and moves it to approved. Returns the grant id.
pub(crate) async fn grant_at_once(
    app: &App,
    tx: &mut brevet_store::Tx,
    id: &str,
    role: &RoleConfig,
    kind: GrantKind,
    now: i64,
) -> Result<String, Error> {
    let req = tx
        .lock_request(id)
        .await?
        .ok_or_else(|| Error::Internal("request vanished".into()))?;
    let req = views::request(req)?;
    let grant = issue_grant(app, tx, &req, role, Vec::new(), kind, now).await?;
    tx.set_request_state(
        id,
        RequestState::Pending,
        RequestState::Approved,
        now,
        Some(&grant),
    )
    .await?;
    Ok(grant)
}

/// The device a request or break-glass names: it must exist and be enabled.
pub(crate) async fn enabled_device(
    app: &App,
    name: &str,
) -> Result<brevet_proto::api::DeviceView, Error> {
    let device = app
        .store
        .device(name)
        .await?
        .map(views::device)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "unknown device `{name}`: add it with `brevet device add`"
            ))
        })?;
    if !device.enabled {
        return Err(Error::Forbidden(format!("device `{name}` is disabled")));
    }
    Ok(device)
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("no request `{id}`"))
}

fn role<'a>(app: &'a App, name: &str) -> Result<&'a RoleConfig, Error> {
    app.config.roles.get(name).ok_or_else(|| {
        let known: Vec<&str> = app.config.roles.keys().map(String::as_str).collect();
        Error::Invalid(format!(
            "unknown role `{name}`; known roles: {}",
            known.join(", ")
        ))
    })
}

fn ensure_pending(req: &RequestView) -> Result<(), Error> {
    if req.state == RequestState::Pending {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "request `{}` is already {}",
            req.id, req.state
        )))
    }
}

/// Starts a transaction holding the request, which must still be pending. A request whose time
/// is up is marked expired (that is committed) and refused.
async fn lock_pending(
    app: &App,
    id: &str,
    now: i64,
) -> Result<(brevet_store::Tx, RequestView), Error> {
    let mut tx = app.store.begin().await?;
    let req = views::request(tx.lock_request(id).await?.ok_or_else(|| not_found(id))?)?;
    if let Some(expired) = expire_if_due(app, &mut tx, &req, now).await? {
        tx.commit().await?;
        return Err(expired);
    }
    ensure_pending(&req)?;
    Ok((tx, req))
}

/// Marks an undecided request expired if its time is up; returns the error to give the caller.
async fn expire_if_due(
    app: &App,
    tx: &mut brevet_store::Tx,
    req: &RequestView,
    now: i64,
) -> Result<Option<Error>, Error> {
    let expires_at = parse_rfc3339("expires_at", &req.expires_at)?;
    if req.state != RequestState::Pending || now < expires_at {
        return Ok(None);
    }
    tx.set_request_state(
        &req.id,
        RequestState::Pending,
        RequestState::Expired,
        now,
        None,
    )
    .await?;
    let data = json!({ "user": req.user, "device": req.device, "ticket": req.ticket });
    tx.audit("request.expired", "brevetd", &req.id, data, now)
        .await?;
    app.metrics.outcome("expired");
    Ok(Some(Error::Conflict(format!(
        "request `{}` has expired",
        req.id
    ))))
}

/// How a request that can no longer be granted is closed.
enum Close {
    Cancel(String),
    Deny(brevet_proto::api::DecisionView),
}

impl Close {
    async fn apply(
        self,
        tx: &mut brevet_store::Tx,
        req: &RequestView,
        now: i64,
    ) -> Result<(), Error> {
        match self {
            Close::Cancel(why) => {
                tx.set_request_state(
                    &req.id,
                    RequestState::Pending,
                    RequestState::Cancelled,
                    now,
                    None,
                )
                .await?;
                let data = json!({
                    "reason": why, "user": req.user, "device": req.device, "ticket": req.ticket,
                });
                tx.audit("request.cancelled", "brevetd", &req.id, data, now)
                    .await?;
            }
            Close::Deny(decision) => {
                tx.set_request_state(
                    &req.id,
                    RequestState::Pending,
                    RequestState::Denied,
                    now,
                    None,
                )
                .await?;
                let data = json!({
                    "decision": decision, "reevaluated": true,
                    "user": req.user, "device": req.device, "ticket": req.ticket,
                });
                tx.audit("request.denied", "policy", &req.id, data, now)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Re-checks, when an approval arrives, what made `req` grantable when it was asked for: its
/// requester is enabled and the `request` policy still allows it (their groups may have
/// changed), and its device is enabled. For a request that fails: how to close it, and the error
/// to give the approver.
async fn still_grantable(
    app: &App,
    req: &RequestView,
    device: Option<&brevet_proto::api::DeviceView>,
) -> Result<Option<(Close, Error)>, Error> {
    let closed = |what: String| {
        Error::Conflict(format!(
            "request `{}` can no longer be granted: {what}",
            req.id
        ))
    };
    let requester = app.store.user(&req.user).await?.filter(|u| u.enabled);
    let Some(requester) = requester else {
        let why = format!("`{}` is disabled", req.user);
        return Ok(Some((
            Close::Cancel(why.clone()),
            closed(format!("{why}; it was cancelled")),
        )));
    };
    let Some(device) = device.filter(|d| d.enabled) else {
        let why = format!("device `{}` is disabled", req.device);
        return Ok(Some((
            Close::Cancel(why.clone()),
            closed(format!("{why}; it was cancelled")),
        )));
    };
    let facts = Facts {
        device,
        role: &req.role,
        duration_seconds: req.duration_seconds,
        ticket: req.ticket.as_deref(),
        mfa_age_seconds: None,
    };
    let d = decide(app, &requester, Action::Request, &facts);
    if d.allowed {
        return Ok(None);
    }
    let error = closed(format!(
        "the `request` policy no longer allows it ({}); it was denied",
        d.explain()
    ));
    Ok(Some((Close::Deny(view("denied", &d)), error)))
}

/// The approvers of `req` so far whose approval still counts: still enabled, and still allowed
/// by the `approve` policy.
async fn valid_approvers(
    app: &App,
    req: &RequestView,
    device: Option<&brevet_proto::api::DeviceView>,
) -> Result<Vec<String>, Error> {
    let Some(device) = device else {
        return Ok(Vec::new());
    };
    let mut valid = Vec::new();
    for a in &req.approvals {
        let Some(approver) = app.store.user(&a.approver).await?.filter(|u| u.enabled) else {
            continue;
        };
        let facts = Facts {
            device,
            role: &req.role,
            duration_seconds: req.duration_seconds,
            ticket: req.ticket.as_deref(),
            mfa_age_seconds: Some(0),
        };
        if decide(app, &approver, Action::Approve, &facts).allowed {
            valid.push(a.approver.clone());
        }
    }
    Ok(valid)
}

/// Separation of duties and the `approve` policy.
fn check_approver(
    app: &App,
    caller: &Caller,
    req: &RequestView,
    device: &Option<brevet_proto::api::DeviceView>,
    mfa_age: i64,
    verb: &str,
) -> Result<(), Error> {
    if req.user == caller.name() {
        return Err(Error::SeparationOfDuties(format!(
            "you cannot {verb} your own request `{}`",
            req.id
        )));
    }
    let device = device
        .as_ref()
        .ok_or_else(|| Error::NotFound(format!("device `{}` no longer exists", req.device)))?;
    let facts = Facts {
        device,
        role: &req.role,
        duration_seconds: req.duration_seconds,
        ticket: req.ticket.as_deref(),
        mfa_age_seconds: Some(mfa_age),
    };
    let d = decide(app, &caller.user, Action::Approve, &facts);
    if !d.allowed {
        return Err(Error::PolicyDenied(format!(
            "`{}` may not {verb} `{}` on `{}`: {}",
            caller.name(),
            req.role,
            req.device,
            d.explain()
        )));
    }
    Ok(())
}

fn observe_decision(app: &App, req: &RequestView, now: i64) {
    if let Ok(created) = parse_rfc3339("created_at", &req.created_at) {
        app.metrics.time_to_decision.observe((now - created) as f64);
    }
}
