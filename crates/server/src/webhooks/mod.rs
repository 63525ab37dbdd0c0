//! Webhooks (`brevet notify add --webhook URL [--secret S]`, `docs/notify.md`): administrators
//! register URLs, and [`deliver`] POSTs to them the audit events people must act on.
//!
//! The URL is checked as hostile input (`validate::webhook_url`), and where it points too
//! (`validate::webhook_target`: `https://` to a name or a public address unless
//! `[notify] allow_private_targets` is set for development; names are checked again on their
//! resolved addresses at each delivery, `post.rs`). The secret is sealed at rest
//! under the data directory's `totp.key` (bound to the webhook id) and never leaves the server
//! again: the API shows only `has_secret`. Adding and removing are audited (`notify.added`,
//! `notify.removed`) in the same transaction; the events name the URL's host only, since many
//! webhook URLs carry a token in their path.

pub mod deliver;
mod event;
mod post;

use brevet_proto::api::{AddWebhook, WebhookView};
use brevet_proto::timefmt::rfc3339;
use brevet_proto::validate;
use brevet_store::WebhookRecord;
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::auth::Caller;

/// Most webhooks a server keeps: each has its own worker and reads the log on its own.
pub const MAX_WEBHOOKS: u64 = 32;
const SECRET_MIN: usize = 16;
const SECRET_MAX: usize = 256;

/// The associated data a webhook's sealed secret is bound to.
pub(crate) fn secret_label(id: &str) -> String {
    format!("webhook:{id}")
}

pub async fn add(app: &App, caller: &Caller, body: AddWebhook) -> Result<WebhookView, Error> {
    crate::authz::require(app, caller, brevet_policy::Permission::ManageNotifications)?;
    let url = validate::webhook_url(&body.url)?;
    validate::webhook_target(&url, app.config.notify.allow_private_targets)?;
    if let Some(s) = &body.secret {
        check_secret(s)?;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let sealed = body
        .secret
        .as_deref()
        .map(|s| app.totp_key.seal(&secret_label(&id), s))
        .transpose()?;
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    if tx.webhook_count().await? >= MAX_WEBHOOKS {
        return Err(Error::Conflict(format!(
            "there are already {MAX_WEBHOOKS} webhooks: remove one first (`brevet notify remove ID`)"
        )));
    }
    tx.insert_webhook(&id, &body.url, sealed.as_deref(), caller.name(), now)
        .await?;
    let data = json!({ "host": url.authority(), "tls": url.tls, "has_secret": sealed.is_some() });
    tx.audit("notify.added", caller.name(), &id, data, now)
        .await?;
    tx.commit().await?;
    Ok(view(&WebhookRecord {
        id,
        url: body.url,
        has_secret: sealed.is_some(),
        created_by: caller.name().to_owned(),
        created_at: now,
    }))
}

pub async fn list(app: &App, caller: &Caller) -> Result<Vec<WebhookView>, Error> {
    crate::authz::require(app, caller, brevet_policy::Permission::ManageNotifications)?;
    Ok(app.store.webhooks().await?.iter().map(view).collect())
}

pub async fn remove(app: &App, caller: &Caller, id: &str) -> Result<WebhookView, Error> {
    crate::authz::require(app, caller, brevet_policy::Permission::ManageNotifications)?;
    validate::id("webhook id", id)?;
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    let Some(removed) = tx.delete_webhook(id).await? else {
        return Err(Error::NotFound(format!(
            "no webhook `{id}`: see `brevet notify list`"
        )));
    };
    let host = validate::webhook_url(&removed.url)
        .map(|u| u.authority())
        .unwrap_or_default();
    tx.audit(
        "notify.removed",
        caller.name(),
        id,
        json!({ "host": host }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(view(&removed))
}

/// A shared secret: long enough to mean something, printable, bounded. The message never
/// repeats it.
fn check_secret(s: &str) -> Result<(), Error> {
    let n = s.chars().count();
    if !(SECRET_MIN..=SECRET_MAX).contains(&n) {
        return Err(Error::Invalid(format!(
            "invalid webhook secret: must be {SECRET_MIN} to {SECRET_MAX} characters (it is {n})"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "invalid webhook secret: must not contain control characters".into(),
        ));
    }
    Ok(())
}

fn view(w: &WebhookRecord) -> WebhookView {
    WebhookView {
        id: w.id.clone(),
        url: w.url.clone(),
        has_secret: w.has_secret,
        created_by: w.created_by.clone(),
        created_at: rfc3339(w.created_at),
    }
}
