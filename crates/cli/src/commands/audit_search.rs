//! `brevet audit search`: events by person, device, ticket, grant, kind or time, as a table
//! (`--json`: the events as the API serves them). Also the paging that `grant show` uses.

use std::io::Write;

use brevet_proto::api::AuditEventView;
use brevet_proto::timefmt::parse_rfc3339;
use brevet_proto::validate;

use super::Ctx;
use super::story::summary;
use crate::cli::AuditSearchArgs;
use crate::client::{AuditQuery, Client};
use crate::error::Error;
use crate::output::Table;

/// Events asked for per page.
const PAGE: u32 = 1000;

pub(crate) fn run(ctx: &mut Ctx<'_>, args: &AuditSearchArgs) -> Result<(), Error> {
    let q = AuditQuery {
        since: args.since.clone(),
        user: args.user.clone(),
        device: args.device.clone(),
        ticket: args.ticket.clone(),
        grant: args.grant.clone(),
        kind: args.kind.clone(),
        ..AuditQuery::default()
    };
    check(&q)?;
    let events = fetch_all(&ctx.client()?, q, args.limit)?;
    ctx.show(events.as_slice(), table)
}

/// Validates the query locally, so nothing invalid is sent.
fn check(q: &AuditQuery) -> Result<(), Error> {
    if let Some(s) = &q.since {
        parse_rfc3339("since", s)?;
    }
    if let Some(u) = &q.user {
        validate::user_name(u)?;
    }
    if let Some(d) = &q.device {
        validate::device_name(d)?;
    }
    if let Some(t) = &q.ticket {
        validate::ticket(t)?;
    }
    if let Some(g) = &q.grant {
        validate::id("grant id", g)?;
    }
    Ok(())
}

/// Pages through the events matching `q`, oldest first, up to `max` of them.
pub(crate) fn fetch_all(
    client: &Client,
    mut q: AuditQuery,
    max: u32,
) -> Result<Vec<AuditEventView>, Error> {
    let mut all: Vec<AuditEventView> = Vec::new();
    while (all.len() as u64) < u64::from(max) {
        q.limit = PAGE.min(max - all.len() as u32);
        let page = client.audit_search(&q)?;
        let Some(last) = page.last() else { break };
        if page.first().is_some_and(|e| e.seq <= q.after) {
            return Err(Error::AuditOrder {
                seq: page[0].seq,
                after: q.after,
            });
        }
        q.after = last.seq;
        all.extend(page);
    }
    Ok(all)
}

/// `SEQ  AT  KIND  ACTOR  WHAT`, one line per event.
pub(crate) fn table(out: &mut dyn Write, events: &[AuditEventView]) -> Result<(), Error> {
    let mut t = Table::new(&["SEQ", "AT", "KIND", "ACTOR", "WHAT"]);
    for e in events {
        t.row(vec![
            e.seq.to_string(),
            e.at.clone(),
            e.kind.clone(),
            e.actor.clone(),
            summary(e),
        ]);
    }
    t.print(out, "no audit events")
}
