//! `brevet grants`, `grant show` (with the grant's story from the audit trail), `revoke` and
//! `done`.

use std::io::Write;

use brevet_proto::api::GrantView;
use brevet_proto::validate;

use super::Ctx;
use super::audit_search::{self, fetch_all};
use crate::cli::GrantCommand;
use crate::client::AuditQuery;
use crate::error::Error;
use crate::output::{Fields, Table, joined, opt, sanitize};

pub(crate) fn list(ctx: &mut Ctx<'_>, active: bool, device: Option<&str>) -> Result<(), Error> {
    let device = device.map(validate::device_name).transpose()?;
    let gs = ctx.client()?.grants(active, device.as_deref())?;
    ctx.show(gs.as_slice(), table)
}

/// The grant, then its story from the audit trail: every event about it and its request, in
/// order. Without the right to read the trail (only admins, auditors and approvers may, and
/// the holder for their own grants) the grant is shown and the story says why it is missing.
pub(crate) fn show(ctx: &mut Ctx<'_>, command: GrantCommand) -> Result<(), Error> {
    let GrantCommand::Show { id } = command;
    validate::id("grant id", &id)?;
    let client = ctx.client()?;
    let g = client.grant(&id)?;
    let q = AuditQuery {
        grant: Some(id.clone()),
        ..AuditQuery::default()
    };
    let story = match fetch_all(&client, q, STORY_MAX) {
        Ok(events) => Ok(events),
        Err(e) if e.api_code() == Some("forbidden") => Err(e.to_string()),
        Err(e) => return Err(e),
    };
    if ctx.global.json {
        let mut v = serde_json::to_value(&g).map_err(std::io::Error::other)?;
        if let (serde_json::Value::Object(m), Ok(events)) = (&mut v, &story) {
            let events = serde_json::to_value(events).map_err(std::io::Error::other)?;
            m.insert("story".to_owned(), events);
        }
        return crate::output::json(ctx.out, &v);
    }
    fields(ctx.out, &g)?;
    writeln!(ctx.out)?;
    match story {
        Ok(events) => {
            writeln!(ctx.out, "story:")?;
            audit_search::table(ctx.out, &events)?;
        }
        Err(why) => writeln!(ctx.out, "story: not shown: {}", sanitize(&why))?,
    }
    Ok(())
}

/// At most this many events of one grant are shown.
const STORY_MAX: u32 = 10_000;

pub(crate) fn revoke(ctx: &mut Ctx<'_>, id: &str, reason: &str) -> Result<(), Error> {
    validate::id("grant id", id)?;
    let reason = validate::reason(reason)?;
    let g = ctx.client()?.revoke(id, reason)?;
    ctx.show(&g, fields)
}

pub(crate) fn done(ctx: &mut Ctx<'_>, id: &str) -> Result<(), Error> {
    validate::id("grant id", id)?;
    let g = ctx.client()?.done(id)?;
    ctx.show(&g, fields)
}

pub(crate) fn table(out: &mut dyn Write, gs: &[GrantView]) -> Result<(), Error> {
    let mut t = Table::new(&[
        "ID",
        "STATE",
        "USER",
        "DEVICE",
        "ROLE",
        "KIND",
        "NOT_BEFORE",
        "NOT_AFTER",
    ]);
    for g in gs {
        t.row(vec![
            g.id.clone(),
            g.state.to_string(),
            g.user.clone(),
            g.device.clone(),
            g.role.clone(),
            g.kind.as_str().to_owned(),
            g.not_before.clone(),
            g.not_after.clone(),
        ]);
    }
    t.print(out, "no grants")
}

/// One grant in full, as `key  value` lines; each command on a line of its own.
pub(crate) fn fields(out: &mut dyn Write, g: &GrantView) -> Result<(), Error> {
    let mut f = Fields::new();
    f.add("id", &g.id)
        .add("request_id", &g.request_id)
        .add("state", g.state.as_str())
        .add("kind", g.kind.as_str())
        .add("user", &g.user)
        .add("device", &g.device)
        .add("role", &g.role)
        .add("runas", &g.runas)
        .add_all("commands", &g.commands)
        .add("groups", joined(&g.groups))
        .add("not_before", &g.not_before)
        .add("not_after", &g.not_after)
        .add("ticket", opt(g.ticket.as_deref()))
        .add("approvers", joined(&g.approvers))
        .add("issued_at", &g.issued_at)
        .add("ended_at", opt(g.ended_at.as_deref()))
        .add("ended_by", opt(g.ended_by.as_deref()))
        .add("end_reason", opt(g.end_reason.as_deref()))
        .add(
            "revocation_confirmed_at",
            opt(g.revocation_confirmed_at.as_deref()),
        );
    f.print(out)
}
