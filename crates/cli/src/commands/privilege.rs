//! `brevet privilege list|confirm|reject`: the two-person rule for changes that give power.

use std::io::Write;

use brevet_proto::api::PrivilegeView;
use brevet_proto::validate;

use super::Ctx;
use crate::cli::PrivilegeCommand;
use crate::error::Error;
use crate::output::{Fields, Table};

pub(crate) fn run(ctx: &mut Ctx<'_>, command: PrivilegeCommand) -> Result<(), Error> {
    match command {
        PrivilegeCommand::List { state } => {
            let list = ctx.client()?.privileges(state.as_deref())?;
            ctx.show(list.as_slice(), table)
        }
        PrivilegeCommand::Confirm { id, totp } => {
            validate::id("privilege change id", &id)?;
            if let Some(code) = &totp {
                validate::totp_code(code)?;
            }
            let p = ctx.client()?.confirm_privilege(&id, totp.as_deref())?;
            ctx.show(&p, fields)
        }
        PrivilegeCommand::Reject { id, reason } => {
            validate::id("privilege change id", &id)?;
            validate::reason(&reason)?;
            let p = ctx.client()?.reject_privilege(&id, &reason)?;
            ctx.show(&p, fields)
        }
    }
}

fn what(p: &PrivilegeView) -> String {
    match &p.group {
        Some(g) => format!("{} joins {g}", p.user),
        None => format!("account {}", p.user),
    }
}

fn fields(out: &mut dyn Write, p: &PrivilegeView) -> Result<(), Error> {
    let mut f = Fields::new();
    f.add("id", &p.id)
        .add("change", what(p))
        .add("state", &p.state)
        .add("requested_by", &p.requested_by)
        .add("requested_at", &p.requested_at);
    if let Some(by) = &p.decided_by {
        f.add("decided_by", by);
    }
    if let Some(at) = &p.decided_at {
        f.add("decided_at", at);
    }
    if let Some(r) = &p.reason {
        f.add("reason", r);
    }
    f.print(out)
}

fn table(out: &mut dyn Write, ps: &[PrivilegeView]) -> Result<(), Error> {
    let mut t = Table::new(&["ID", "CHANGE", "STATE", "REQUESTED BY", "REQUESTED AT"]);
    for p in ps {
        t.row(vec![
            p.id.clone(),
            what(p),
            p.state.clone(),
            p.requested_by.clone(),
            p.requested_at.clone(),
        ]);
    }
    t.print(out, "no privilege changes")
}
