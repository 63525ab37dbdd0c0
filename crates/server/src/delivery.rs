//! Getting grants to devices and hearing back from them (see `docs/device-protocol.md`).
//!
//! The long-poll: a cursor is `{epoch}:{n}`, where `n` is the device's change count in this
//! process ([`App::grant_changed`]). A poll whose cursor is current waits (subscribed to the
//! wake-up broadcast *before* the count is read, so no change slips between the check and the
//! wait) until a change names this device, the broadcast lags, or `wait` runs out. The answer
//! reads the count before the grants, so a change racing with the answer yields one more
//! immediate answer rather than a lost one.
//!
//! Acknowledgements are applied in order in one transaction and are idempotent: each is recorded
//! the first time only. A batch with an invalid ack changes nothing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use brevet_proto::agent::{Ack, AckAction, AckResponse, DeliveredGrant, DeviceGrants};
use brevet_proto::state::ServerState;
use brevet_proto::timefmt::{parse_rfc3339, rfc3339};
use brevet_proto::validate;
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::devices::{Device, ensure_enabled};
use crate::metrics::Metrics;

/// How long a poll waits when the device does not say.
pub const DEFAULT_WAIT: u64 = 25;
/// The longest wait a device may ask for.
pub const MAX_WAIT: u64 = 60;
/// Most acknowledgements in one batch.
const MAX_ACKS: usize = 500;
/// Largest `detail` of one acknowledgement, as JSON text.
const MAX_DETAIL: usize = 16 * 1024;
/// Longest `reason`.
const MAX_REASON: usize = 500;

/// `GET /v1/device/grants`: the device's live grants, at once or after a change.
pub async fn poll(
    app: &App,
    device: &Device,
    cursor: Option<&str>,
    wait: u64,
) -> Result<DeviceGrants, Error> {
    if cursor.is_some_and(|c| c.len() > 100) {
        return Err(Error::Invalid(
            "invalid cursor: pass back the `cursor` of the last answer".into(),
        ));
    }
    app.restore.check(&app.store).await?;
    let wait = Duration::from_secs(wait.min(MAX_WAIT));
    let mut changes = app.device_changes(&device.name);
    let seen = *changes.borrow_and_update();
    if !wait.is_zero() && is_current(app, cursor, seen) {
        let _waiting = Waiting::start(&app.metrics);
        // A change after `seen` (even before this line) ends the wait; so does the deadline.
        let _ = tokio::time::timeout(wait, changes.changed()).await;
        ensure_enabled(app, &device.name).await?;
        app.restore.check(&app.store).await?;
    }
    answer(app, device).await
}

/// Whether `cursor` is from this process and nothing changed for the device since.
fn is_current(app: &App, cursor: Option<&str>, seen: u64) -> bool {
    let Some((epoch, n)) = cursor.and_then(|c| c.split_once(':')) else {
        return false;
    };
    epoch == app.epoch && n.parse::<u64>().is_ok_and(|n| n == seen)
}

async fn answer(app: &App, device: &Device) -> Result<DeviceGrants, Error> {
    let seen = app.device_change_count(&device.name);
    let grants = app.store.device_grants(&device.name).await?;
    if grants.iter().any(|g| !g.delivered) {
        let now = app.clock.now();
        let mut tx = app.store.begin().await?;
        for g in grants.iter().filter(|g| !g.delivered) {
            if tx.mark_delivered(&g.id, now).await? {
                tx.audit(
                    "grant.delivered",
                    &device.actor(),
                    &g.id,
                    json!({
                        "device": device.name, "user": g.user, "request_id": g.request_id,
                    }),
                    now,
                )
                .await?;
            }
        }
        tx.commit().await?;
    }
    // Read after the grants: the stamp never claims less than the answer shows.
    let (generation, audit_seq) = app.store.server_state().await?;
    let state = ServerState {
        v: 1,
        device: device.name.clone(),
        generation,
        audit_seq,
        issued_at: rfc3339(app.clock.now()),
    }
    .sign(&app.grant_key)?;
    Ok(DeviceGrants {
        cursor: format!("{}:{seen}", app.epoch),
        server_time: rfc3339(app.clock.now()),
        grants: grants
            .into_iter()
            .map(|g| DeliveredGrant {
                id: g.id,
                state: g.state,
                signed: g.signed,
            })
            .collect(),
        state: Some(state),
    })
}

/// Counts a held poll on `brevet_device_polls_waiting` for as long as it lives.
struct Waiting<'a>(&'a Metrics);

impl<'a> Waiting<'a> {
    fn start(m: &'a Metrics) -> Waiting<'a> {
        m.polls_waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(m)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.polls_waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An acknowledgement after validation: the agent's time in canonical form.
struct Checked {
    grant_id: String,
    action: AckAction,
    at: String,
    reason: Option<String>,
    detail: serde_json::Value,
}

fn check(i: usize, a: Ack) -> Result<Checked, Error> {
    let bad = |what: String| Error::Invalid(format!("invalid ack #{}: {what}", i + 1));
    validate::id("grant id", &a.grant_id).map_err(|e| bad(e.to_string()))?;
    let at = parse_rfc3339("at", &a.at).map_err(|e| bad(e.to_string()))?;
    if let Some(r) = &a.reason {
        device_text("reason", r, MAX_REASON, false).map_err(bad)?;
    }
    let detail_len = serde_json::to_string(&a.detail)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if detail_len > MAX_DETAIL {
        return Err(bad(format!("`detail` is longer than {MAX_DETAIL} bytes")));
    }
    Ok(Checked {
        grant_id: a.grant_id,
        action: a.action,
        at: rfc3339(at),
        reason: a.reason,
        detail: a.detail,
    })
}

/// Raises `alert.server_state_rewound`: what device `device` acknowledged shows the server runs
/// on a database older than what it served (a restore from backup, or records deleted).
async fn rewound(
    tx: &mut brevet_store::Tx,
    device: &Device,
    a: &Checked,
    why: &str,
    now: i64,
) -> Result<(), Error> {
    tracing::error!(device = %device.name, grant = %a.grant_id, "{why}: the server may run on a restored backup");
    let data = json!({
        "device": device.name, "grant_id": a.grant_id, "action": a.action, "at": a.at,
        "reason": why, "detail": a.detail,
    });
    tx.audit(
        "alert.server_state_rewound",
        "brevetd",
        &device.name,
        data,
        now,
    )
    .await?;
    Ok(())
}

/// Checks free text sent by a device: bounded, and without control characters (newlines and
/// tabs only where `multiline`).
pub fn device_text(field: &str, s: &str, max: usize, multiline: bool) -> Result<(), String> {
    if s.chars().count() > max {
        return Err(format!("`{field}` is longer than {max} characters"));
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t');
    if s.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(format!("`{field}` contains control characters"));
    }
    Ok(())
}

/// `POST /v1/device/acks`.
pub async fn acks(app: &App, device: &Device, acks: Vec<Ack>) -> Result<AckResponse, Error> {
    if acks.len() > MAX_ACKS {
        return Err(Error::Invalid(format!(
            "too many acks in one batch ({}): send at most {MAX_ACKS}",
            acks.len()
        )));
    }
    let checked = acks
        .into_iter()
        .enumerate()
        .map(|(i, a)| check(i, a))
        .collect::<Result<Vec<_>, _>>()?;
    let now = app.clock.now();
    let actor = device.actor();
    let (mut recorded, mut duplicates, mut rejections) = (0u32, 0u32, 0u64);
    let mut tx = app.store.begin().await?;
    for a in &checked {
        let target = tx.lock_ack_target(&a.grant_id).await?;
        let fresh = match a.action {
            AckAction::Rejected => {
                // A refusal is a report, not a change: it is recorded even for a grant this
                // server does not know or that belongs to another device (a forgery or a
                // misdelivery is exactly what it should tell us about).
                let fresh = tx
                    .record_rejection(&device.name, &a.grant_id, &a.at, now)
                    .await?;
                if fresh {
                    rejections += 1;
                    tx.audit(
                        "grant.rejected_by_device",
                        &actor,
                        &a.grant_id,
                        json!({
                            "device": device.name, "at": a.at, "reason": a.reason,
                            "detail": a.detail, "known": target.is_some(),
                            "grant_device": target.as_ref().map(|t| t.device.as_str()),
                            "user": target.as_ref().map(|t| t.user.as_str()),
                            "request_id": target.as_ref().map(|t| t.request_id.as_str()),
                        }),
                        now,
                    )
                    .await?;
                    if a.reason.as_deref() == Some("server_state") {
                        // The device saw newer server state than this answer carried.
                        let why = "the device refused an answer older than one it saw";
                        rewound(&mut tx, device, a, why, now).await?;
                    }
                }
                fresh
            }
            AckAction::Applied | AckAction::Removed if target.is_none() => {
                // The device applied or removed a grant this server has never heard of: the
                // server runs on a database older than what it served (a restore), or grants
                // were deleted under it. Recorded once and alerted; the batch goes on.
                let fresh = tx
                    .record_rejection(&device.name, &a.grant_id, &a.at, now)
                    .await?;
                if fresh {
                    let why = "the device acknowledged a grant this server does not know";
                    rewound(&mut tx, device, a, why, now).await?;
                }
                fresh
            }
            AckAction::Applied | AckAction::Removed => {
                let target = target.ok_or_else(|| {
                    Error::NotFound(format!("no grant `{}` on this server", a.grant_id))
                })?;
                if target.device != device.name {
                    return Err(Error::Forbidden(format!(
                        "grant `{}` is not for device `{}`",
                        a.grant_id, device.name
                    )));
                }
                let (fresh, kind) = if a.action == AckAction::Applied {
                    (
                        tx.set_grant_applied(&a.grant_id, now).await?,
                        "grant.applied",
                    )
                } else {
                    (
                        tx.confirm_grant_removed(&a.grant_id, now).await?,
                        "grant.removal_confirmed",
                    )
                };
                if fresh {
                    tx.audit(
                        kind,
                        &actor,
                        &a.grant_id,
                        json!({
                            "device": device.name, "at": a.at, "reason": a.reason,
                            "detail": a.detail, "state": target.state,
                            "user": target.user, "request_id": target.request_id,
                        }),
                        now,
                    )
                    .await?;
                }
                fresh
            }
        };
        if fresh {
            recorded += 1;
        } else {
            duplicates += 1;
        }
    }
    tx.commit().await?;
    if rejections > 0 {
        tracing::warn!(device = %device.name, count = rejections, "device rejected grants");
        app.metrics
            .device_rejections
            .fetch_add(rejections, Ordering::Relaxed);
    }
    Ok(AckResponse {
        recorded,
        duplicates,
        server_time: rfc3339(app.clock.now()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_text_is_bounded_and_free_of_controls() {
        for (s, multiline, ok) in [
            ("signature does not verify", false, true),
            ("", false, true),
            ("line one\nline two\tindented", true, true),
            ("line one\nline two", false, false),
            ("clear\u{1b}[2J", true, false),
            ("nul\0", true, false),
            ("carriage\rreturn", true, false),
        ] {
            assert_eq!(
                device_text("reason", s, 500, multiline).is_ok(),
                ok,
                "{s:?}"
            );
        }
        assert!(device_text("reason", &"é".repeat(500), 500, false).is_ok());
        let e = device_text("reason", &"x".repeat(501), 500, false).unwrap_err();
        assert_eq!(e, "`reason` is longer than 500 characters");
    }
}
