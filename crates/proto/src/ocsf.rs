//! Audit events as OCSF 1.3 JSON, for SIEMs (`docs/siem.md` has the full table).
//!
//! [`event_to_ocsf`] maps every kind `brevetd` writes to an OCSF class and activity: grants and
//! requests are User Access Management (3005), sign-ins Authentication (3002), commands run under
//! a grant (`grant.used`) Process Activity (1007), drift and alerts Detection Finding (2004),
//! people Account Change (3001) and Group Management (3006), devices Entity Management (3004).
//! A kind it does not know becomes a Base Event (class 0, activity Other). Nothing is lost: the
//! original kind, actor, subject, data and hashes always travel in `unmapped.brevet`, and
//! `metadata.uid` is the audit sequence number, so a collector can deduplicate and spot gaps.

use serde_json::{Map, Value, json};

use crate::api::AuditEventView;
use crate::timefmt::parse_rfc3339;

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// OCSF `severity_id` values.
pub mod severity {
    pub const INFORMATIONAL: u8 = 1;
    pub const LOW: u8 = 2;
    pub const MEDIUM: u8 = 3;
    pub const HIGH: u8 = 4;
    pub const CRITICAL: u8 = 5;
}
use severity::{CRITICAL, HIGH, INFORMATIONAL, LOW, MEDIUM};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Class {
    uid: u32,
    name: &'static str,
    category_uid: u32,
    category_name: &'static str,
}

const IAM: &str = "Identity & Access Management";
const ACCOUNT_CHANGE: Class = class(3001, "Account Change", 3, IAM);
const AUTHENTICATION: Class = class(3002, "Authentication", 3, IAM);
const ENTITY_MANAGEMENT: Class = class(3004, "Entity Management", 3, IAM);
const USER_ACCESS: Class = class(3005, "User Access Management", 3, IAM);
const GROUP_MANAGEMENT: Class = class(3006, "Group Management", 3, IAM);
const PROCESS_ACTIVITY: Class = class(1007, "Process Activity", 1, "System Activity");
const DETECTION_FINDING: Class = class(2004, "Detection Finding", 2, "Findings");
const BASE_EVENT: Class = class(0, "Base Event", 0, "Uncategorized");

const fn class(uid: u32, name: &'static str, category_uid: u32, category: &'static str) -> Class {
    Class {
        uid,
        name,
        category_uid,
        category_name: category,
    }
}

/// `activity_id` 99: the activity name is then the Brevet kind.
const OTHER: u32 = 99;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Success,
    Failure,
}

/// Where one kind lands.
struct Mapping {
    class: Class,
    activity_id: u32,
    /// The OCSF caption of the activity; `None` for Other (99), named by the kind.
    activity_name: Option<&'static str>,
    status: Option<Status>,
    severity_id: u8,
}

/// Maps one audit event to an OCSF event (a JSON object).
pub fn event_to_ocsf(e: &AuditEventView) -> Value {
    let m = mapping(&e.kind, &e.data);
    let mut o = Map::new();
    common(&mut o, e, &m);
    match m.class {
        USER_ACCESS => user_access(&mut o, e),
        AUTHENTICATION => authentication(&mut o, e),
        ACCOUNT_CHANGE => {
            o.insert("user".into(), user(&e.subject));
        }
        GROUP_MANAGEMENT => {
            o.insert("user".into(), user(&e.subject));
            let group = text(&e.data, "group").unwrap_or("");
            o.insert("group".into(), json!({ "name": group }));
        }
        ENTITY_MANAGEMENT => {
            let entity = json!({ "name": e.subject, "uid": e.subject, "type": "device" });
            o.insert("entity".into(), entity);
        }
        PROCESS_ACTIVITY => process_activity(&mut o, e),
        DETECTION_FINDING => detection_finding(&mut o, e),
        _ => {}
    }
    Value::Object(o)
}

/// The OCSF `severity_id` of an event (also the basis of its syslog severity).
pub fn severity_id(kind: &str, data: &Value) -> u8 {
    mapping(kind, data).severity_id
}

fn mapping(kind: &str, data: &Value) -> Mapping {
    use Status::{Failure, Success};
    let m = |class, activity_id, activity_name, status, severity_id| Mapping {
        class,
        activity_id,
        activity_name,
        status,
        severity_id,
    };
    const ASSIGN: Option<&str> = Some("Assign Privileges");
    const REVOKE: Option<&str> = Some("Revoke Privileges");
    match kind {
        "grant.issued" => {
            let breakglass = text(data, "kind") == Some("breakglass");
            let sev = if breakglass { HIGH } else { INFORMATIONAL };
            m(USER_ACCESS, 1, ASSIGN, Some(Success), sev)
        }
        "grant.applied" => m(USER_ACCESS, 1, ASSIGN, Some(Success), INFORMATIONAL),
        "grant.rejected_by_device" => m(USER_ACCESS, 1, ASSIGN, Some(Failure), MEDIUM),
        "grant.revoked" | "grant.expired" | "grant.completed" | "grant.removal_confirmed" => {
            m(USER_ACCESS, 2, REVOKE, Some(Success), INFORMATIONAL)
        }
        "grant.delivered" => m(USER_ACCESS, OTHER, None, Some(Success), INFORMATIONAL),
        "grant.used" => {
            let allowed = data.get("allowed").and_then(Value::as_bool) != Some(false);
            let (status, sev) = if allowed {
                (Success, INFORMATIONAL)
            } else {
                (Failure, MEDIUM)
            };
            m(PROCESS_ACTIVITY, 1, Some("Launch"), Some(status), sev)
        }
        "request.approval" | "request.approved" => {
            m(USER_ACCESS, OTHER, None, Some(Success), INFORMATIONAL)
        }
        "breakglass.refused" => m(USER_ACCESS, OTHER, None, Some(Failure), MEDIUM),
        // The two-person rule: power asked for, confirmed by a second administrator, refused.
        "privilege.requested" => m(USER_ACCESS, 1, ASSIGN, None, LOW),
        "privilege.confirmed" => m(USER_ACCESS, 1, ASSIGN, Some(Success), LOW),
        "privilege.rejected" => m(USER_ACCESS, 2, REVOKE, Some(Success), LOW),
        "request.denied" | "request.expired" => {
            m(USER_ACCESS, OTHER, None, Some(Failure), INFORMATIONAL)
        }
        k if k.starts_with("request.") => m(USER_ACCESS, OTHER, None, None, INFORMATIONAL),
        "login.failed" => m(AUTHENTICATION, 1, Some("Logon"), Some(Failure), LOW),
        "login.succeeded" => m(
            AUTHENTICATION,
            1,
            Some("Logon"),
            Some(Success),
            INFORMATIONAL,
        ),
        "login.locked" => m(ACCOUNT_CHANGE, 9, Some("Lock"), Some(Success), MEDIUM),
        // Throttling (failures from one source): refused attempts before any check.
        "login.throttled" => m(AUTHENTICATION, 1, Some("Logon"), Some(Failure), MEDIUM),
        "login.failed_unknown" => m(AUTHENTICATION, 1, Some("Logon"), Some(Failure), LOW),
        "mfa.throttled" => m(AUTHENTICATION, OTHER, None, Some(Failure), MEDIUM),
        "user.unlocked" => m(ACCOUNT_CHANGE, 12, Some("Unlock"), Some(Success), LOW),
        "user.reset" => m(
            ACCOUNT_CHANGE,
            4,
            Some("Password Reset"),
            Some(Success),
            MEDIUM,
        ),
        // A restore from backup acknowledged (the alert itself is `alert.restore_detected`).
        "restore.acknowledged" => m(ENTITY_MANAGEMENT, 3, Some("Update"), Some(Success), HIGH),
        k if k.starts_with("login.") => m(AUTHENTICATION, 1, Some("Logon"), None, INFORMATIONAL),
        "logout" => m(
            AUTHENTICATION,
            2,
            Some("Logoff"),
            Some(Success),
            INFORMATIONAL,
        ),
        "mfa.step_up" => m(AUTHENTICATION, OTHER, None, Some(Success), INFORMATIONAL),
        "user.created" => m(
            ACCOUNT_CHANGE,
            1,
            Some("Create"),
            Some(Success),
            INFORMATIONAL,
        ),
        "user.enabled" => m(
            ACCOUNT_CHANGE,
            2,
            Some("Enable"),
            Some(Success),
            INFORMATIONAL,
        ),
        "user.disabled" => m(
            ACCOUNT_CHANGE,
            5,
            Some("Disable"),
            Some(Success),
            INFORMATIONAL,
        ),
        "user.group_added" => m(GROUP_MANAGEMENT, 3, Some("Add User"), Some(Success), LOW),
        "user.group_removed" => m(GROUP_MANAGEMENT, 4, Some("Remove User"), Some(Success), LOW),
        "device.added" => m(
            ENTITY_MANAGEMENT,
            1,
            Some("Create"),
            Some(Success),
            INFORMATIONAL,
        ),
        "device.cert_renewed" => m(
            ENTITY_MANAGEMENT,
            3,
            Some("Update"),
            Some(Success),
            INFORMATIONAL,
        ),
        "device.enrolled" => m(
            ENTITY_MANAGEMENT,
            6,
            Some("Enroll"),
            Some(Success),
            INFORMATIONAL,
        ),
        "device.enroll_refused" => m(ENTITY_MANAGEMENT, 6, Some("Enroll"), Some(Failure), MEDIUM),
        "device.enabled" => m(
            ENTITY_MANAGEMENT,
            8,
            Some("Enable"),
            Some(Success),
            INFORMATIONAL,
        ),
        "device.disabled" => m(ENTITY_MANAGEMENT, 9, Some("Disable"), Some(Success), LOW),
        "device.enroll_token_created" => {
            m(ENTITY_MANAGEMENT, OTHER, None, Some(Success), INFORMATIONAL)
        }
        // The server's settings or policy as loaded at start differ from the last recorded.
        "config.changed" | "policy.changed" => {
            m(ENTITY_MANAGEMENT, 3, Some("Update"), Some(Success), LOW)
        }
        "drift.detected" => {
            let sev = finding_severity(text(data, "severity"));
            m(DETECTION_FINDING, 1, Some("Create"), None, sev)
        }
        k if k.starts_with("alert.") => m(DETECTION_FINDING, 1, Some("Create"), None, HIGH),
        _ => m(BASE_EVENT, OTHER, None, None, INFORMATIONAL),
    }
}

fn finding_severity(s: Option<&str>) -> u8 {
    match s {
        Some("low") => LOW,
        Some("medium") => MEDIUM,
        Some("high") => HIGH,
        Some("critical") => CRITICAL,
        _ => INFORMATIONAL,
    }
}

/// The attributes every event carries.
fn common(o: &mut Map<String, Value>, e: &AuditEventView, m: &Mapping) {
    let activity = m.activity_name.unwrap_or(&e.kind);
    // A command's own time is when it ran on the device; brevetd logged it later.
    let original = text(&e.data, "at")
        .filter(|_| m.class == PROCESS_ACTIVITY)
        .unwrap_or(&e.at);
    let logged_ms = epoch_ms(&e.at);
    let time_ms = parse_rfc3339("at", original).map_or(logged_ms, |s| s.saturating_mul(1000));
    let fields = [
        ("class_uid", json!(m.class.uid)),
        ("class_name", json!(m.class.name)),
        ("category_uid", json!(m.class.category_uid)),
        ("category_name", json!(m.class.category_name)),
        ("activity_id", json!(m.activity_id)),
        ("activity_name", json!(activity)),
        (
            "type_uid",
            json!(u64::from(m.class.uid) * 100 + u64::from(m.activity_id)),
        ),
        ("type_name", json!(format!("{}: {activity}", m.class.name))),
        ("time", json!(time_ms)),
        ("severity_id", json!(m.severity_id)),
        ("severity", json!(severity_name(m.severity_id))),
        ("message", json!(message(e))),
    ];
    for (k, v) in fields {
        o.insert(k.into(), v);
    }
    if let Some(status) = m.status {
        let (id, name) = match status {
            Status::Success => (1, "Success"),
            Status::Failure => (2, "Failure"),
        };
        o.insert("status_id".into(), json!(id));
        o.insert("status".into(), json!(name));
        let detail = text(&e.data, "reason").or_else(|| text(&e.data, "factor"));
        if let (Status::Failure, Some(d)) = (status, detail) {
            o.insert("status_detail".into(), json!(d));
        }
    }
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "product": {
            "name": "Brevet", "vendor_name": "Brevet", "version": env!("CARGO_PKG_VERSION"),
        },
        "uid": e.seq.to_string(),
        "sequence": e.seq,
        "original_time": original,
        "logged_time": logged_ms,
        "log_name": "audit",
        "event_code": e.kind,
    });
    if e.kind.starts_with("grant.") || e.kind.starts_with("request.") {
        metadata["correlation_uid"] = json!(e.subject);
    }
    o.insert("metadata".into(), metadata);
    o.insert("actor".into(), actor(&e.actor));
    if let Some(device) = device_name(e) {
        let device = json!({ "hostname": device, "name": device, "type_id": 0, "type": "Unknown" });
        o.insert("device".into(), device);
    }
    let brevet = json!({
        "kind": e.kind, "actor": e.actor, "subject": e.subject, "data": e.data,
        "leaf_hash": e.leaf_hash, "chain_hash": e.chain_hash,
    });
    o.insert("unmapped".into(), json!({ "brevet": brevet }));
}

/// Grants and requests: the person whose privileges change, the role, the device.
fn user_access(o: &mut Map<String, Value>, e: &AuditEventView) {
    let target = text(&e.data, "user").or_else(|| {
        // The requester is the actor of `request.created`; later request events name only the
        // request (joined by `metadata.correlation_uid`).
        (e.kind == "request.created").then_some(e.actor.as_str())
    });
    if let Some(name) = target {
        o.insert("user".into(), user(name));
    }
    let mut privileges: Vec<String> = Vec::new();
    if let Some(role) = text(&e.data, "role") {
        privileges.push(format!("role:{role}"));
    }
    for (key, prefix) in [("commands", "command"), ("groups", "group")] {
        let items = e.data.get(key).and_then(Value::as_array);
        for item in items.into_iter().flatten().filter_map(Value::as_str) {
            privileges.push(format!("{prefix}:{item}"));
        }
    }
    if let Some(runas) = text(&e.data, "runas") {
        privileges.push(format!("runas:{runas}"));
    }
    o.insert("privileges".into(), json!(privileges));
    if let Some(device) = text(&e.data, "device") {
        o.insert(
            "resource".into(),
            json!({ "name": device, "type": "device" }),
        );
    }
}

fn authentication(o: &mut Map<String, Value>, e: &AuditEventView) {
    o.insert("user".into(), user(&e.subject));
    o.insert("service".into(), json!({ "name": "brevetd" }));
    let mfa = e.kind == "mfa.step_up" || text(&e.data, "mfa").is_some();
    o.insert("is_mfa".into(), json!(mfa));
}

/// `grant.used`: the command a person ran through sudo under a grant.
fn process_activity(o: &mut Map<String, Value>, e: &AuditEventView) {
    let cmd_line = text(&e.data, "command").unwrap_or("");
    let path = cmd_line.split_whitespace().next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut process = json!({
        "cmd_line": cmd_line,
        "name": name,
        "uid": format!("{}/{}", e.subject, e.seq),
        "file": { "path": path, "name": name, "type_id": 1, "type": "Regular File" },
    });
    if let Some(runas) = text(&e.data, "runas") {
        process["user"] = user(runas);
    }
    o.insert("process".into(), process);
    if let Some(person) = text(&e.data, "user")
        && let Some(actor) = o.get_mut("actor")
    {
        actor["user"] = user(person);
    }
}

/// Drift seen on a device, and alerts raised by brevetd.
fn detection_finding(o: &mut Map<String, Value>, e: &AuditEventView) {
    let info = if e.kind == "drift.detected" {
        let kind = text(&e.data, "kind").unwrap_or("drift");
        let subject = text(&e.data, "subject").unwrap_or("");
        json!({
            "uid": text(&e.data, "id").unwrap_or(&e.subject),
            "title": format!("{kind}: {subject}"),
            "desc": text(&e.data, "detail").unwrap_or(""),
            "types": [kind],
        })
    } else {
        json!({
            "uid": format!("{}:{}", e.kind, e.subject),
            "title": format!("{} for {}", e.kind, e.subject),
            "types": [e.kind],
        })
    };
    o.insert("finding_info".into(), info);
    o.insert("is_alert".into(), json!(true));
    if let Some(r) = text(&e.data, "remediation") {
        o.insert("remediation".into(), json!({ "desc": r }));
    }
}

/// Who did it: a person, a device's agent, or brevetd itself.
fn actor(actor: &str) -> Value {
    match actor {
        "brevetd" | "policy" | "quickstart" => json!({ "app_name": format!("brevetd ({actor})") }),
        a if a.starts_with("device:") => json!({ "app_name": "brevet-agent" }),
        a => json!({ "user": user(a) }),
    }
}

fn user(name: &str) -> Value {
    json!({ "name": name, "type_id": 1, "type": "User" })
}

/// The device an event is about, when it names one.
fn device_name(e: &AuditEventView) -> Option<&str> {
    text(&e.data, "device")
        .or_else(|| e.actor.strip_prefix("device:"))
        .or_else(|| e.kind.starts_with("device.").then_some(e.subject.as_str()))
        .or_else(|| e.kind.starts_with("drift.").then_some(e.subject.as_str()))
}

fn message(e: &AuditEventView) -> String {
    format!("{} {} by {}", e.kind, e.subject, e.actor)
}

fn severity_name(id: u8) -> &'static str {
    match id {
        INFORMATIONAL => "Informational",
        LOW => "Low",
        MEDIUM => "Medium",
        HIGH => "High",
        CRITICAL => "Critical",
        _ => "Unknown",
    }
}

fn text<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

fn epoch_ms(at: &str) -> i64 {
    parse_rfc3339("at", at).map_or(0, |s| s.saturating_mul(1000))
}

#[cfg(test)]
mod tests;
