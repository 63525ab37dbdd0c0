//! `brevet notify add|list|remove`: the webhooks `brevetd` tells at once about requests waiting
//! for approvers, decisions, break-glass grants and alerts (`docs/notify.md`).

use std::io::Write;

use brevet_proto::api::{AddWebhook, WebhookView};
use brevet_proto::validate;

use super::Ctx;
use crate::cli::NotifyCommand;
use crate::error::Error;
use crate::output::{Fields, Table};

pub(crate) fn run(ctx: &mut Ctx<'_>, command: NotifyCommand) -> Result<(), Error> {
    match command {
        NotifyCommand::Add { webhook, secret } => {
            // Checked here too, so a bad URL never leaves the machine.
            validate::webhook_url(&webhook)?;
            let body = AddWebhook {
                url: webhook,
                secret,
            };
            let w = ctx.client()?.add_webhook(&body)?;
            ctx.show(&w, fields)
        }
        NotifyCommand::List => {
            let ws = ctx.client()?.webhooks()?;
            ctx.show(ws.as_slice(), table)
        }
        NotifyCommand::Remove { id } => {
            validate::id("webhook id", &id)?;
            let w = ctx.client()?.remove_webhook(&id)?;
            ctx.show(&w, fields)
        }
    }
}

fn fields(out: &mut dyn Write, w: &WebhookView) -> Result<(), Error> {
    let mut f = Fields::new();
    f.add("id", &w.id)
        .add("url", &w.url)
        .add("has_secret", w.has_secret.to_string())
        .add("created_by", &w.created_by)
        .add("created_at", &w.created_at);
    f.print(out)
}

fn table(out: &mut dyn Write, ws: &[WebhookView]) -> Result<(), Error> {
    let mut t = Table::new(&["ID", "URL", "SECRET", "CREATED BY", "CREATED"]);
    for w in ws {
        t.row(vec![
            w.id.clone(),
            w.url.clone(),
            if w.has_secret { "yes" } else { "no" }.to_owned(),
            w.created_by.clone(),
            w.created_at.clone(),
        ]);
    }
    t.print(out, "no webhooks")
}
