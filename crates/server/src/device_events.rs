//! `POST /v1/device/events`: the record of use a device sends about its grants — each command
//! run through sudo (`grant.used`) and what changed while a grant was in force
//! (`grant.changes`).
//!
//! Each event becomes one audit event (actor `device:<name>`, subject the grant id) whose data
//! adds the grant's request, holder, device, role and ticket to what the device reported, so a
//! search by any of them finds it. Event ids are remembered (`device_events`): an id recorded
//! before is counted as a duplicate and changes nothing, so a device that sends its queue again
//! after a lost answer, a restart or an outage never records anything twice. An event about a
//! grant this server does not know, or a grant of another device, is refused (listed in the
//! answer, not recorded); a batch with a malformed event is refused whole.

use std::collections::HashMap;

use brevet_proto::agent::{
    ChangeSummary, CommandUse, DeviceEvent, DeviceEventKind, EventsResponse, RefusedEvent,
};
use brevet_proto::api::{GrantView, code};
use brevet_proto::timefmt::{parse_rfc3339, rfc3339};
use brevet_proto::validate;
use brevet_store::DeviceEventRecord;
use serde_json::{Value, json};

use crate::Error;
use crate::app::App;
use crate::delivery::device_text;
use crate::devices::Device;

/// Most events in one batch.
const MAX_EVENTS: usize = 500;
/// Largest `data` of one event, as JSON text.
const MAX_DATA: usize = 64 * 1024;
/// Longest command line, working directory, path.
const MAX_COMMAND: usize = 8192;
const MAX_PATH: usize = 4096;
/// Longest short field (run-as user, terminal, refusal, package name, version).
const MAX_SHORT: usize = 256;
/// Longest list in a change summary.
const MAX_LIST: usize = 1000;

/// An event after validation, with its data parsed by kind.
struct Checked {
    id: String,
    kind: DeviceEventKind,
    grant_id: String,
    at: String,
    data: Data,
}

enum Data {
    Used(CommandUse),
    Changes(ChangeSummary),
}

/// Records a device's events in order, in one transaction.
pub async fn record(
    app: &App,
    device: &Device,
    events: Vec<DeviceEvent>,
) -> Result<EventsResponse, Error> {
    if events.len() > MAX_EVENTS {
        return Err(Error::Invalid(format!(
            "too many events in one batch ({}): send at most {MAX_EVENTS}",
            events.len()
        )));
    }
    let checked = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            check(e).map_err(|why| Error::Invalid(format!("invalid event #{}: {why}", i + 1)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let now = app.clock.now();
    let actor = device.actor();
    let (mut recorded, mut duplicates, mut refused) = (0u32, 0u32, Vec::new());
    let mut grants: HashMap<String, Option<GrantView>> = HashMap::new();
    let mut tx = app.store.begin().await?;
    for e in checked {
        if tx.device_event_recorded(&e.id).await? {
            duplicates += 1;
            continue;
        }
        if !grants.contains_key(&e.grant_id) {
            let g = tx.lock_grant(&e.grant_id).await?.map(crate::views::grant);
            grants.insert(e.grant_id.clone(), g);
        }
        let grant = grants.get(&e.grant_id).and_then(Option::as_ref);
        let refusal = match grant {
            None => Some((
                code::NOT_FOUND,
                format!("no grant `{}` on this server", e.grant_id),
            )),
            Some(g) if g.device != device.name => Some((
                code::FORBIDDEN,
                format!("grant `{}` is not for device `{}`", e.grant_id, device.name),
            )),
            Some(g) => match &e.data {
                Data::Used(u) if u.user != g.user => Some((
                    code::INVALID_INPUT,
                    format!(
                        "a command of `{}` cannot belong to grant `{}` of `{}`",
                        u.user, e.grant_id, g.user
                    ),
                )),
                _ => None,
            },
        };
        let (Some(g), None) = (grant, &refusal) else {
            if let Some((code, message)) = refusal {
                tracing::warn!(device = %device.name, event = %e.id, %message, "device event refused");
                refused.push(RefusedEvent {
                    id: e.id,
                    code: code.to_owned(),
                    message,
                });
            }
            continue;
        };
        let data = audit_data(&e, g)?;
        let record = DeviceEventRecord {
            id: e.id.clone(),
            device: device.name.clone(),
            grant_id: e.grant_id.clone(),
            recorded_at: now,
        };
        tx.audit_device_event(e.kind.as_str(), &actor, &e.grant_id, data, record)
            .await?;
        recorded += 1;
    }
    tx.commit().await?;
    Ok(EventsResponse {
        recorded,
        duplicates,
        refused,
        server_time: rfc3339(app.clock.now()),
    })
}

/// The audit data: who and what the grant was, then what the device reported.
fn audit_data(e: &Checked, g: &GrantView) -> Result<Value, Error> {
    let mut data = json!({
        "event_id": e.id, "grant_id": g.id, "request_id": g.request_id, "user": g.user,
        "device": g.device, "role": g.role, "ticket": g.ticket, "at": e.at,
    });
    let reported = match &e.data {
        Data::Used(u) => serde_json::to_value(u),
        Data::Changes(c) => serde_json::to_value(c),
    }
    .map_err(|err| Error::Internal(format!("encoding a device event: {err}")))?;
    if let (Some(out), Value::Object(fields)) = (data.as_object_mut(), reported) {
        for (k, v) in fields {
            // The grant's own fields above win over anything of the same name.
            out.entry(k).or_insert(v);
        }
    }
    Ok(data)
}

fn check(e: DeviceEvent) -> Result<Checked, String> {
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex(&e.id) {
        return Err("`id` must be 64 lower-case hex digits".into());
    }
    validate::id("grant id", &e.grant_id).map_err(|err| err.to_string())?;
    let at = parse_rfc3339("at", &e.at).map_err(|err| err.to_string())?;
    let size = serde_json::to_string(&e.data)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DATA {
        return Err(format!("`data` is longer than {MAX_DATA} bytes"));
    }
    let data = match e.kind {
        DeviceEventKind::GrantUsed => {
            let u: CommandUse =
                serde_json::from_value(e.data).map_err(|err| format!("`data`: {err}"))?;
            check_use(&u)?;
            Data::Used(u)
        }
        DeviceEventKind::GrantChanges => {
            let c: ChangeSummary =
                serde_json::from_value(e.data).map_err(|err| format!("`data`: {err}"))?;
            check_changes(&c)?;
            Data::Changes(c)
        }
    };
    Ok(Checked {
        id: e.id,
        kind: e.kind,
        grant_id: e.grant_id,
        at: rfc3339(at),
        data,
    })
}

fn check_use(u: &CommandUse) -> Result<(), String> {
    validate::user_name(&u.user).map_err(|e| e.to_string())?;
    if u.command.is_empty() {
        return Err("`command` is empty".into());
    }
    device_text("command", &u.command, MAX_COMMAND, false)?;
    device_text("cwd", &u.cwd, MAX_PATH, false)?;
    device_text("runas", &u.runas, MAX_SHORT, false)?;
    device_text("logged_time", &u.logged_time, MAX_SHORT, false)?;
    for (field, v) in [
        ("group", &u.group),
        ("tty", &u.tty),
        ("refusal", &u.refusal),
    ] {
        if let Some(v) = v {
            device_text(field, v, MAX_SHORT, false)?;
        }
    }
    if !matches!(u.time_source.as_str(), "sudo-log" | "agent") {
        return Err("`time_source` must be `sudo-log` or `agent`".into());
    }
    Ok(())
}

fn check_changes(c: &ChangeSummary) -> Result<(), String> {
    parse_rfc3339("since", &c.since).map_err(|e| e.to_string())?;
    parse_rfc3339("until", &c.until).map_err(|e| e.to_string())?;
    for (field, list) in [
        ("watched", &c.watched),
        ("added", &c.added),
        ("changed", &c.changed),
        ("removed", &c.removed),
    ] {
        if list.len() > MAX_LIST {
            return Err(format!("`{field}` lists more than {MAX_LIST} paths"));
        }
        for p in list {
            device_text(field, p, MAX_PATH, false)?;
        }
    }
    let packages = c
        .packages_installed
        .iter()
        .chain(&c.packages_removed)
        .map(|p| (&p.package, &p.version))
        .chain(c.packages_upgraded.iter().map(|p| (&p.package, &p.to)))
        .chain(c.packages_upgraded.iter().map(|p| (&p.package, &p.from)));
    let lists = c.packages_installed.len() + c.packages_removed.len() + c.packages_upgraded.len();
    if lists > 3 * MAX_LIST {
        return Err(format!("more than {MAX_LIST} packages in a list"));
    }
    for (name, version) in packages {
        device_text("package", name, MAX_SHORT, false)?;
        device_text("version", version, MAX_SHORT, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used() -> DeviceEvent {
        DeviceEvent {
            id: "a".repeat(64),
            kind: DeviceEventKind::GrantUsed,
            grant_id: "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into(),
            at: "2026-11-28T11:00:05+01:00".into(),
            data: json!({
                "user": "alice", "runas": "root", "cwd": "/home/alice",
                "command": "/usr/bin/id -u", "tty": "pts/0", "allowed": true,
                "logged_time": "Nov 28 10:00:05", "time_source": "sudo-log",
            }),
        }
    }

    #[test]
    fn events_are_checked_before_anything_is_recorded() {
        let ok = check(used()).unwrap();
        assert_eq!(ok.at, "2026-11-28T10:00:05Z", "normalised to UTC");
        type Change = Box<dyn Fn(&mut DeviceEvent)>;
        let bad: Vec<(&str, Change)> = vec![
            ("short id", Box::new(|e| e.id = "abc".into())),
            ("upper-case id", Box::new(|e| e.id = "A".repeat(64))),
            ("grant id", Box::new(|e| e.grant_id = "../x".into())),
            ("time", Box::new(|e| e.at = "yesterday".into())),
            ("unknown field", Box::new(|e| e.data["extra"] = json!(1))),
            ("user", Box::new(|e| e.data["user"] = json!("Bob Smith"))),
            ("empty command", Box::new(|e| e.data["command"] = json!(""))),
            (
                "control",
                Box::new(|e| e.data["command"] = json!("/bin/id\u{1b}[2J")),
            ),
            (
                "long command",
                Box::new(|e| e.data["command"] = json!("x".repeat(9000))),
            ),
            (
                "time source",
                Box::new(|e| e.data["time_source"] = json!("guess")),
            ),
            (
                "changes shape",
                Box::new(|e| e.kind = DeviceEventKind::GrantChanges),
            ),
        ];
        for (name, change) in bad {
            let mut e = used();
            change(&mut e);
            assert!(check(e).is_err(), "{name} was accepted");
        }
    }
}
