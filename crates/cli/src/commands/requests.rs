//! `brevet request`, `requests`, `approve`, `deny` and `cancel`.
//!
//! A new request is checked with the shared validation before anything is sent: device, role,
//! duration, ticket, reason and start time. A request the policy denies at once is printed like
//! any other, then reported as an error so scripts see a non-zero exit.

use std::io::Write;

use brevet_proto::api::{CreateRequest, RequestState, RequestView};
use brevet_proto::{timefmt, validate};

use super::Ctx;
use crate::cli::RequestArgs;
use crate::error::Error;
use crate::output::{Fields, Table, joined, opt};

pub(crate) fn create(ctx: &mut Ctx<'_>, args: &RequestArgs) -> Result<(), Error> {
    let body = build(args)?;
    let r = ctx.client()?.create_request(&body)?;
    ctx.show(&r, fields)?;
    if r.state == RequestState::Denied {
        return Err(Error::Denied {
            id: r.id.clone(),
            explain: explain(&r),
        });
    }
    Ok(())
}

/// The request body, every field validated; the device name is lower-cased and the start
/// time normalized to UTC.
pub(crate) fn build(args: &RequestArgs) -> Result<CreateRequest, Error> {
    let device = validate::device_name(&args.device)?;
    let role = validate::role_name(&args.role)?.to_owned();
    validate::duration(&args.duration)?;
    let ticket = match &args.ticket {
        Some(t) => Some(validate::ticket(t)?.to_owned()),
        None => None,
    };
    let reason = validate::reason(&args.reason)?.to_owned();
    let start = match &args.start {
        Some(s) => Some(timefmt::rfc3339(timefmt::parse_rfc3339("start", s)?)),
        None => None,
    };
    Ok(CreateRequest {
        device,
        role,
        duration: args.duration.clone(),
        ticket,
        reason,
        start,
    })
}

pub(crate) fn table(out: &mut dyn Write, rs: &[RequestView]) -> Result<(), Error> {
    let mut t = Table::new(&[
        "ID",
        "STATE",
        "USER",
        "DEVICE",
        "ROLE",
        "DURATION",
        "TICKET",
        "APPROVALS",
        "CREATED",
    ]);
    for r in rs {
        t.row(vec![
            r.id.clone(),
            r.state.to_string(),
            r.user.clone(),
            r.device.clone(),
            r.role.clone(),
            validate::format_duration(r.duration_seconds),
            opt(r.ticket.as_deref()),
            format!("{}/{}", r.approvals.len(), r.approvals_required),
            r.created_at.clone(),
        ]);
    }
    t.print(out, "no requests")
}

pub(crate) fn list(ctx: &mut Ctx<'_>, pending: bool) -> Result<(), Error> {
    let rs = ctx.client()?.requests(pending)?;
    ctx.show(rs.as_slice(), table)
}

pub(crate) fn approve(ctx: &mut Ctx<'_>, id: &str, totp: Option<&str>) -> Result<(), Error> {
    validate::id("request id", id)?;
    if let Some(code) = totp {
        validate::totp_code(code)?;
    }
    let r = ctx.client()?.approve(id, totp)?;
    ctx.show(&r, fields)
}

pub(crate) fn breakglass(
    ctx: &mut Ctx<'_>,
    device: &str,
    reason: &str,
    totp: Option<&str>,
) -> Result<(), Error> {
    validate::device_name(device)?;
    validate::reason(reason)?;
    if let Some(code) = totp {
        validate::totp_code(code)?;
    }
    let r = ctx.client()?.breakglass(device, reason, totp)?;
    ctx.show(&r, fields)
}

pub(crate) fn deny(
    ctx: &mut Ctx<'_>,
    id: &str,
    reason: &str,
    totp: Option<&str>,
) -> Result<(), Error> {
    validate::id("request id", id)?;
    let reason = validate::reason(reason)?;
    if let Some(code) = totp {
        validate::totp_code(code)?;
    }
    let r = ctx.client()?.deny(id, reason, totp)?;
    ctx.show(&r, fields)
}

pub(crate) fn cancel(ctx: &mut Ctx<'_>, id: &str) -> Result<(), Error> {
    validate::id("request id", id)?;
    let r = ctx.client()?.cancel(id)?;
    ctx.show(&r, fields)
}

/// One request as `key  value` lines.
pub(crate) fn fields(out: &mut dyn Write, r: &RequestView) -> Result<(), Error> {
    let approvers: Vec<String> = r.approvals.iter().map(|a| a.approver.clone()).collect();
    let mut f = Fields::new();
    f.add("id", &r.id)
        .add("state", r.state.as_str())
        .add("user", &r.user)
        .add("device", &r.device)
        .add("role", &r.role)
        .add("duration", validate::format_duration(r.duration_seconds))
        .add("ticket", opt(r.ticket.as_deref()))
        .add("reason", &r.reason);
    if let Some(start) = &r.start {
        f.add("start", start);
    }
    let mut approvals = format!("{} of {}", r.approvals.len(), r.approvals_required);
    if !approvers.is_empty() {
        approvals.push_str(&format!(" ({})", joined(&approvers)));
    }
    f.add("approvals", approvals)
        .add("created_at", &r.created_at);
    if let Some(at) = &r.decided_at {
        f.add("decided_at", at);
    }
    if let Some(g) = &r.grant_id {
        f.add("grant_id", g);
    }
    if !r.decision.explain.is_empty() {
        f.add("decision", &r.decision.explain);
    }
    f.print(out)
}

/// Why a request was denied: the server's explanation, else the deciding policies.
fn explain(r: &RequestView) -> String {
    let explain = r.decision.explain.trim();
    // The message already reads "request … denied: "; do not say "denied" twice.
    let explain = explain.strip_prefix("denied:").unwrap_or(explain).trim();
    let text = if !explain.is_empty() {
        explain.to_owned()
    } else if !r.decision.policies.is_empty() {
        format!("by policy {}", r.decision.policies.join(", "))
    } else {
        "by policy".to_owned()
    };
    crate::output::sanitize(&text)
}
