//! Break-glass (`brevet breakglass --device D --reason "…"`): in an emergency a member of the
//! group the policy names takes the configured role (`[breakglass]`, default `admin` for 1 h)
//! on one device at once, with no approver, but with a fresh second factor.
//!
//! It is the exception path, so it is loud rather than easy: the Cedar `breakglass` action must
//! permit it, the grant document says `kind: breakglass`, and every use writes — in the same
//! transaction as the grant — `request.created`, `request.approved` and `grant.issued` (all
//! marked break-glass) and `alert.breakglass_used`, which SIEMs receive as a high-severity
//! finding. A refusal is audited too (`breakglass.refused`).

use brevet_policy::Action;
use brevet_proto::api::{BreakglassBody, RequestState, RequestView};
use brevet_proto::grant::GrantKind;
use brevet_proto::validate;
use brevet_store::NewRequest;
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::auth::{Caller, step_up};
use crate::decide::{Facts, decide, view};
use crate::requests::{enabled_device, grant_at_once};

pub async fn breakglass(
    app: &App,
    caller: &mut Caller,
    body: BreakglassBody,
) -> Result<RequestView, Error> {
    let device_name = validate::device_name(&body.device)?;
    let reason = validate::reason(&body.reason)?.to_owned();
    let settings = &app.config.breakglass;
    let role = app.config.roles.get(&settings.role).ok_or_else(|| {
        Error::Invalid(format!(
            "break-glass is not available: its role `{}` ([breakglass] role in brevet.toml) is \
             not defined",
            settings.role
        ))
    })?;
    let duration = validate::duration(&settings.duration)?;
    let device = enabled_device(app, &device_name).await?;
    let mfa_age = step_up(app, caller, body.totp.as_deref(), "break-glass").await?;
    let now = app.clock.now();
    let facts = Facts {
        device: &device,
        role: &settings.role,
        duration_seconds: duration,
        ticket: None,
        mfa_age_seconds: Some(mfa_age),
    };
    let decision = decide(app, &caller.user, Action::Breakglass, &facts);
    if !decision.allowed {
        let mut tx = app.store.begin().await?;
        let data = json!({
            "user": caller.name(), "device": device_name, "role": settings.role,
            "reason": reason, "decision": view("denied", &decision),
        });
        tx.audit("breakglass.refused", caller.name(), &device_name, data, now)
            .await?;
        tx.commit().await?;
        return Err(Error::PolicyDenied(format!(
            "break-glass on `{device_name}` refused: {}",
            decision.explain()
        )));
    }
    let new = NewRequest {
        id: uuid::Uuid::new_v4().to_string(),
        state: RequestState::Pending,
        user: caller.user.name.clone(),
        device: device_name,
        role: settings.role.clone(),
        duration_seconds: duration,
        ticket: None,
        reason,
        start_at: None,
        created_at: now,
        expires_at: now + app.durations.request_ttl,
        decided_at: None,
        approvals_required: 0,
        decision: crate::views::decision_record(&view("breakglass", &decision))?,
    };
    let mut tx = app.store.begin().await?;
    tx.insert_request(&new).await?;
    let data = json!({
        "device": new.device, "role": new.role, "duration_seconds": new.duration_seconds,
        "ticket": null, "reason": new.reason, "start": null, "decision": new.decision,
        "user": new.user, "breakglass": true,
    });
    tx.audit("request.created", caller.name(), &new.id, data, now)
        .await?;
    let grant = grant_at_once(app, &mut tx, &new.id, role, GrantKind::Breakglass, now).await?;
    tx.audit(
        "request.approved",
        "policy",
        &new.id,
        json!({
            "auto": false, "breakglass": true, "grant_id": grant, "decision": new.decision,
            "user": new.user, "device": new.device, "ticket": null,
        }),
        now,
    )
    .await?;
    tx.audit(
        "alert.breakglass_used",
        "brevetd",
        &grant,
        json!({
            "grant_id": grant, "request_id": new.id, "user": new.user, "device": new.device,
            "role": new.role, "duration_seconds": new.duration_seconds, "reason": new.reason,
            "mfa_age_seconds": mfa_age,
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(user = %new.user, device = %new.device, grant = %grant, "break-glass used");
    app.metrics.outcome("breakglass");
    app.grant_changed(&new.device);
    crate::requests::fetch(app, &new.id).await
}
