//! One line of plain words per audit event, for `audit search` and `grant show`: who asked for
//! what and why, how it was decided, where it was applied, each command run under it, what
//! changed, how it ended. A kind this client does not know shows its data as compact JSON.

use brevet_proto::api::AuditEventView;
use serde_json::Value;

/// At most this many characters of any one summary.
const MAX: usize = 200;

pub(crate) fn summary(e: &AuditEventView) -> String {
    let d = &e.data;
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
    let line = match e.kind.as_str() {
        "request.created" => {
            let mut t = format!(
                "asked for {} on {} for {}",
                s("role"),
                s("device"),
                duration(d.get("duration_seconds"))
            );
            if let Some(ticket) = d.get("ticket").and_then(Value::as_str) {
                t.push_str(&format!(", ticket {ticket}"));
            }
            t.push_str(&format!(": {}{}", s("reason"), decision(d)));
            t
        }
        "request.approval" => "approved".to_owned(),
        "request.approved" if d.get("auto") == Some(&Value::Bool(true)) => {
            format!("approved by policy{}", decision(d))
        }
        "request.approved" => format!("approval complete ({})", list(d.get("approvers"))),
        "request.denied" if d.get("reason").is_some() => format!("denied: {}", s("reason")),
        "request.denied" => format!("denied by policy{}", decision(d)),
        "request.cancelled" => "request withdrawn".to_owned(),
        "request.expired" => "request expired without a decision".to_owned(),
        "grant.issued" => {
            let what = match d.get("commands").and_then(Value::as_array) {
                Some(c) if !c.is_empty() => list(d.get("commands")),
                _ => format!("groups {}", list(d.get("groups"))),
            };
            format!(
                "grant signed: as {} {what}, {} to {}",
                s("runas"),
                s("not_before"),
                s("not_after")
            )
        }
        "grant.delivered" => format!("delivered to {}", s("device")),
        "grant.applied" => format!("applied on {}", s("device")),
        "grant.rejected_by_device" => format!("REFUSED by {}: {}", s("device"), s("reason")),
        "grant.used" => used(d),
        "grant.changes" => changes(d),
        "grant.revoked" => format!("revoked: {}", s("reason")),
        "grant.completed" => "ended by its holder (done)".to_owned(),
        "grant.expired" => format!("expired at {}", s("not_after")),
        "grant.removal_confirmed" => format!("removal confirmed by {}", s("device")),
        kind if kind.starts_with("alert.") => format!("ALERT {}", compact(d)),
        _ => compact(d),
    };
    shorten(line)
}

/// `grant.used`: the command, as whom, where; and sudo's refusal if it refused.
fn used(d: &Value) -> String {
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("?");
    let mut t = format!("ran `{}` as {} in {}", s("command"), s("runas"), s("cwd"));
    if d.get("allowed") == Some(&Value::Bool(false)) {
        t = format!(
            "REFUSED `{}` as {}: {}",
            s("command"),
            s("runas"),
            s("refusal")
        );
    }
    t
}

/// `grant.changes`: the counts, and the first few paths and packages.
fn changes(d: &Value) -> String {
    let n = |k: &str| d["counts"].get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut t = format!(
        "files: {} added, {} changed, {} removed",
        n("added"),
        n("changed"),
        n("removed")
    );
    if d.get("packages_tracked") == Some(&Value::Bool(true)) {
        t.push_str(&format!(
            "; packages: {} installed, {} removed, {} upgraded",
            n("packages_installed"),
            n("packages_removed"),
            n("packages_upgraded")
        ));
    }
    let paths: Vec<&str> = ["added", "changed", "removed"]
        .iter()
        .filter_map(|k| d.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .take(3)
        .collect();
    if !paths.is_empty() {
        t.push_str(&format!(" ({})", paths.join(", ")));
    }
    if d.get("incomplete") == Some(&Value::Bool(true)) {
        t.push_str("; INCOMPLETE");
    }
    t
}

/// ` (policy outcome: p1, p2)` from a request's `decision`, or nothing.
fn decision(d: &Value) -> String {
    let Some(dec) = d.get("decision") else {
        return String::new();
    };
    let outcome = dec.get("outcome").and_then(Value::as_str).unwrap_or("?");
    format!("; policy: {outcome} by {}", list(dec.get("policies")))
}

fn duration(v: Option<&Value>) -> String {
    v.and_then(Value::as_u64)
        .map_or_else(|| "?".into(), brevet_proto::validate::format_duration)
}

fn list(v: Option<&Value>) -> String {
    let items: Vec<&str> = v
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

fn compact(d: &Value) -> String {
    match d {
        Value::Object(m) if m.is_empty() => String::new(),
        Value::Null => String::new(),
        _ => d.to_string(),
    }
}

fn shorten(mut s: String) -> String {
    if s.chars().count() > MAX {
        s = s.chars().take(MAX - 1).collect();
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn e(kind: &str, data: Value) -> AuditEventView {
        AuditEventView {
            seq: 1,
            at: "2026-11-28T10:00:00Z".into(),
            kind: kind.into(),
            actor: "alice".into(),
            subject: "x".into(),
            data,
            leaf_hash: String::new(),
            chain_hash: String::new(),
        }
    }

    #[test]
    fn the_lifecycle_in_words() {
        let created = e(
            "request.created",
            json!({"role": "db-admin", "device": "web-01", "duration_seconds": 1800,
                   "ticket": "CHG-1", "reason": "patch",
                   "decision": {"outcome": "pending", "policies": ["ops"]}}),
        );
        assert_eq!(
            summary(&created),
            "asked for db-admin on web-01 for 30m, ticket CHG-1: patch; policy: pending by ops"
        );
        let used = e(
            "grant.used",
            json!({"command": "/usr/bin/id", "runas": "root", "cwd": "/tmp", "allowed": true}),
        );
        assert_eq!(summary(&used), "ran `/usr/bin/id` as root in /tmp");
        let changes = e(
            "grant.changes",
            json!({"counts": {"added": 1, "changed": 0, "removed": 0, "packages_installed": 1},
                   "added": ["/etc/x"], "packages_tracked": true}),
        );
        assert_eq!(
            summary(&changes),
            "files: 1 added, 0 changed, 0 removed; packages: 1 installed, 0 removed, 0 upgraded (/etc/x)"
        );
        assert_eq!(summary(&e("something.new", json!({"k": 1}))), "{\"k\":1}");
        assert_eq!(
            summary(&e("grant.revoked", json!({"reason": "done"}))),
            "revoked: done"
        );
        let long = e("x", json!({"k": "y".repeat(500)}));
        assert_eq!(summary(&long).chars().count(), MAX);
    }
}
