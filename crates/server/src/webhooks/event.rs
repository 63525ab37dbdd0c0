//! Which audit events go to webhooks, and what a delivery looks like.
//!
//! Only the events people must act on or know at once: a request waiting for approvers, a
//! decision, a break-glass grant, any `alert.*` (a login storm among them), drift on a device.
//! The body is the event (`seq`, `kind`, `at`, `actor`, `subject`, `data`) plus `text`, a
//! one-line summary for chat tools; `X-Brevet-Signature` is the HMAC-SHA256 of the exact body bytes.

use brevet_audit::Event;
use brevet_proto::validate::format_duration;
use ring::hmac;
use serde_json::{Value, json};

/// The longest `text`, in characters.
const MAX_TEXT: usize = 300;

/// Whether `e` goes to webhooks.
pub(crate) fn notable(e: &Event) -> bool {
    match e.kind.as_str() {
        "request.created" => e.data["decision"]["outcome"] == "pending",
        "request.approved" | "request.denied" | "drift.detected" => true,
        k if k.starts_with("privilege.") => true,
        "grant.issued" => e.data["kind"] == "breakglass",
        k => k.starts_with("alert."),
    }
}

/// The JSON body of the delivery of `e`.
pub(crate) fn body(e: &Event) -> String {
    json!({
        "seq": e.seq, "kind": e.kind, "at": e.at, "actor": e.actor, "subject": e.subject,
        "data": e.data, "text": summary(e),
    })
    .to_string()
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub(crate) fn signature(secret: &str, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, body.as_bytes());
    format!("sha256={}", data_encoding::HEXLOWER.encode(tag.as_ref()))
}

/// A one-line, bounded summary of `e` for people.
pub(crate) fn summary(e: &Event) -> String {
    let d = &e.data;
    let text = match e.kind.as_str() {
        "request.created" => format!(
            "{} asks for role {} on {} for {}{}: {} (request {}); approvers must act",
            s(&d["user"]),
            s(&d["role"]),
            s(&d["device"]),
            d["duration_seconds"]
                .as_u64()
                .map(format_duration)
                .unwrap_or_else(|| "?".into()),
            ticket(d),
            s(&d["reason"]),
            e.subject,
        ),
        "request.approved" => format!(
            "request {} by {} on {}{} approved by {}",
            e.subject,
            s(&d["user"]),
            s(&d["device"]),
            ticket(d),
            e.actor,
        ),
        "request.denied" => format!(
            "request {} by {} on {}{} denied by {}{}",
            e.subject,
            s(&d["user"]),
            s(&d["device"]),
            ticket(d),
            e.actor,
            d["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
        ),
        "grant.issued" => format!(
            "BREAK-GLASS: {} took role {} on {} until {} (grant {})",
            s(&d["user"]),
            s(&d["role"]),
            s(&d["device"]),
            s(&d["not_after"]),
            e.subject,
        ),
        "alert.login_storm" => format!(
            "ALERT: login storm: failed logins throttled for {} accounts and {} sources between {} and {} ({})",
            d["accounts"],
            d["sources"],
            s(&d["window_start"]),
            s(&d["window_end"]),
            d["account_sample"]
                .as_array()
                .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        ),
        "drift.detected" => format!(
            "drift on {}: {} {} ({}): {}",
            e.subject,
            s(&d["severity"]),
            s(&d["kind"]),
            s(&d["subject"]),
            s(&d["detail"]),
        ),
        "alert.revocation_unconfirmed" => format!(
            "ALERT: grant {} for {} on {} ended at {} but the device has not confirmed removing it",
            e.subject,
            s(&d["user"]),
            s(&d["device"]),
            s(&d["ended_at"]),
        ),
        "privilege.requested" | "alert.privilege_unconfirmed" => {
            let what = power_change(d);
            if d["state"] == "pending" {
                format!(
                    "{} asks that {what}; waits for a second administrator: brevet privilege \
                     confirm {}",
                    s(&d["requested_by"]),
                    e.subject
                )
            } else {
                format!(
                    "ALERT: {what}, in effect without a second administrator (asked by {}): \
                     brevet privilege confirm {} (or reject)",
                    s(&d["requested_by"]),
                    e.subject
                )
            }
        }
        "privilege.confirmed" | "privilege.rejected" => format!(
            "{} {} that {} (change {})",
            e.actor,
            if e.kind == "privilege.confirmed" {
                "confirmed"
            } else {
                "rejected"
            },
            power_change(d),
            e.subject
        ),
        k => format!("{k} on {} by {}", e.subject, e.actor),
    };
    one_line(&text)
}

/// "bob joins approvers", or "the account bob gives power" when the policy names the person.
fn power_change(d: &Value) -> String {
    match d["group"].as_str() {
        Some(g) => format!("{} joins {g}", s(&d["user"])),
        None => format!("the account {} gives power", s(&d["user"])),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Null => "?".into(),
        other => other.to_string(),
    }
}

fn ticket(d: &Value) -> String {
    d["ticket"]
        .as_str()
        .map(|t| format!(" [{t}]"))
        .unwrap_or_default()
}

/// Control characters become spaces, and the text is cut at [`MAX_TEXT`] characters.
fn one_line(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_TEXT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX_TEXT {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, data: Value) -> Event {
        Event {
            seq: 7,
            at: "2025-01-01T00:00:00Z".into(),
            kind: kind.into(),
            actor: "bob".into(),
            subject: "r-1".into(),
            data,
        }
    }

    #[test]
    fn selection() {
        let pending = json!({ "decision": { "outcome": "pending" } });
        let auto = json!({ "decision": { "outcome": "auto_approved" } });
        assert!(notable(&event("request.created", pending)));
        assert!(!notable(&event("request.created", auto)));
        assert!(notable(&event("request.approved", json!({}))));
        assert!(notable(&event("request.denied", json!({}))));
        assert!(notable(&event(
            "grant.issued",
            json!({ "kind": "breakglass" })
        )));
        assert!(!notable(&event(
            "grant.issued",
            json!({ "kind": "normal" })
        )));
        assert!(notable(&event("alert.anything", json!({}))));
        assert!(notable(&event("alert.login_storm", json!({}))));
        assert!(!notable(&event("login.failed_unknown", json!({}))));
        assert!(notable(&event("drift.detected", json!({}))));
        assert!(!notable(&event("grant.used", json!({}))));
        for k in [
            "privilege.requested",
            "privilege.confirmed",
            "privilege.rejected",
        ] {
            assert!(notable(&event(k, json!({}))), "{k}");
        }
        assert!(!notable(&event("notify.added", json!({}))));
    }

    #[test]
    fn summaries_are_one_bounded_line() {
        let e = event(
            "request.created",
            json!({ "user": "alice", "role": "short", "device": "web-01",
                    "duration_seconds": 1800, "ticket": "CHG-1", "reason": "fix\nit",
                    "decision": { "outcome": "pending" } }),
        );
        assert_eq!(
            summary(&e),
            "alice asks for role short on web-01 for 30m [CHG-1]: fix it (request r-1); approvers must act"
        );
        let long = event("request.denied", json!({ "reason": "x".repeat(5000) }));
        assert!(summary(&long).chars().count() <= MAX_TEXT + 1);
        let body: Value = serde_json::from_str(&body(&e)).unwrap();
        assert_eq!(body["seq"], 7);
        assert_eq!(body["kind"], "request.created");
        assert!(
            body["text"]
                .as_str()
                .unwrap()
                .contains("approvers must act")
        );
    }

    #[test]
    fn privilege_changes_say_what_to_do() {
        let pending = event(
            "privilege.requested",
            json!({ "user": "sock", "group": "approvers", "state": "pending",
                    "requested_by": "brevet-admin" }),
        );
        assert_eq!(
            summary(&pending),
            "brevet-admin asks that sock joins approvers; waits for a second administrator: \
             brevet privilege confirm r-1"
        );
        let alert = event(
            "alert.privilege_unconfirmed",
            json!({ "user": "bob", "group": "approvers", "state": "unconfirmed",
                    "requested_by": "brevet-admin" }),
        );
        assert!(summary(&alert).starts_with("ALERT: bob joins approvers, in effect"));
        let confirmed = event(
            "privilege.confirmed",
            json!({ "user": "sock", "group": "approvers" }),
        );
        assert_eq!(
            summary(&confirmed),
            "bob confirmed that sock joins approvers (change r-1)"
        );
    }

    #[test]
    fn signature_is_rfc4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
