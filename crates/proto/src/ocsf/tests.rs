//! Table tests: every kind `brevetd` writes lands in its OCSF class and activity.

use serde_json::{Value, json};

use super::*;

fn event(kind: &str, actor: &str, subject: &str, data: Value) -> AuditEventView {
    AuditEventView {
        seq: 42,
        at: "2026-11-28T10:00:00Z".into(),
        kind: kind.into(),
        actor: actor.into(),
        subject: subject.into(),
        data,
        leaf_hash: "aa".into(),
        chain_hash: "bb".into(),
    }
}

/// kind, actor, data, class_uid, activity_id, status_id
type Row = (&'static str, &'static str, Value, u64, u64, Option<u64>);

fn table() -> Vec<Row> {
    let grant = json!({ "device": "web-01", "user": "alice", "role": "admin" });
    vec![
        (
            "request.created",
            "alice",
            json!({ "device": "web-01", "role": "admin" }),
            3005,
            99,
            None,
        ),
        (
            "request.approval",
            "bob",
            json!({ "mfa_age_seconds": 3 }),
            3005,
            99,
            Some(1),
        ),
        (
            "request.approved",
            "bob",
            json!({ "approvers": ["bob"] }),
            3005,
            99,
            Some(1),
        ),
        (
            "request.denied",
            "bob",
            json!({ "reason": "not now" }),
            3005,
            99,
            Some(2),
        ),
        ("request.cancelled", "alice", json!({}), 3005, 99, None),
        ("request.expired", "brevetd", json!({}), 3005, 99, Some(2)),
        ("grant.issued", "brevetd", grant.clone(), 3005, 1, Some(1)),
        (
            "grant.delivered",
            "device:web-01",
            json!({ "device": "web-01" }),
            3005,
            99,
            Some(1),
        ),
        (
            "grant.applied",
            "device:web-01",
            json!({ "device": "web-01" }),
            3005,
            1,
            Some(1),
        ),
        (
            "grant.rejected_by_device",
            "device:web-01",
            json!({ "reason": "bad_signature" }),
            3005,
            1,
            Some(2),
        ),
        ("grant.revoked", "bob", grant.clone(), 3005, 2, Some(1)),
        ("grant.completed", "alice", grant.clone(), 3005, 2, Some(1)),
        (
            "grant.expired",
            "brevetd",
            json!({ "not_after": "2026-11-28T10:00:00Z" }),
            3005,
            2,
            Some(1),
        ),
        (
            "grant.removal_confirmed",
            "device:web-01",
            json!({ "device": "web-01" }),
            3005,
            2,
            Some(1),
        ),
        (
            "grant.used",
            "device:web-01",
            json!({ "command": "/usr/bin/id -u", "allowed": true }),
            1007,
            1,
            Some(1),
        ),
        (
            "login.succeeded",
            "alice",
            json!({ "mfa": "totp" }),
            3002,
            1,
            Some(1),
        ),
        (
            "login.failed",
            "alice",
            json!({ "factor": "password" }),
            3002,
            1,
            Some(2),
        ),
        ("logout", "alice", json!({}), 3002, 2, Some(1)),
        (
            "mfa.step_up",
            "bob",
            json!({ "for": "approve" }),
            3002,
            99,
            Some(1),
        ),
        (
            "user.created",
            "admin",
            json!({ "groups": ["operators"] }),
            3001,
            1,
            Some(1),
        ),
        ("user.enabled", "admin", json!({}), 3001, 2, Some(1)),
        ("user.disabled", "admin", json!({}), 3001, 5, Some(1)),
        (
            "user.group_added",
            "admin",
            json!({ "group": "approvers" }),
            3006,
            3,
            Some(1),
        ),
        (
            "user.group_removed",
            "admin",
            json!({ "group": "approvers" }),
            3006,
            4,
            Some(1),
        ),
        (
            "device.added",
            "admin",
            json!({ "tags": {} }),
            3004,
            1,
            Some(1),
        ),
        ("device.enabled", "admin", json!({}), 3004, 8, Some(1)),
        ("device.disabled", "admin", json!({}), 3004, 9, Some(1)),
        (
            "device.enroll_token_created",
            "admin",
            json!({}),
            3004,
            99,
            Some(1),
        ),
        (
            "device.enrolled",
            "device:web-01",
            json!({ "fingerprint": "ab" }),
            3004,
            6,
            Some(1),
        ),
        (
            "device.enroll_refused",
            "anonymous",
            json!({ "token": "used" }),
            3004,
            6,
            Some(2),
        ),
        (
            "device.cert_renewed",
            "device:web-01",
            json!({}),
            3004,
            3,
            Some(1),
        ),
        (
            "login.locked",
            "brevetd",
            json!({ "failures": 5 }),
            3001,
            9,
            Some(1),
        ),
        (
            "policy.changed",
            "brevetd",
            json!({ "sha256": "ab", "previous_sha256": null }),
            3004,
            3,
            Some(1),
        ),
        (
            "config.changed",
            "brevetd",
            json!({ "sha256": "cd" }),
            3004,
            3,
            Some(1),
        ),
        (
            "device.report",
            "device:web-01",
            json!({ "findings": 2 }),
            0,
            99,
            None,
        ),
        (
            "drift.detected",
            "device:web-01",
            json!({ "id": "x", "severity": "high" }),
            2004,
            1,
            None,
        ),
        (
            "alert.revocation_unconfirmed",
            "brevetd",
            json!({ "device": "web-01" }),
            2004,
            1,
            None,
        ),
        (
            "grant.changes",
            "device:web-01",
            json!({ "files": [] }),
            0,
            99,
            None,
        ),
        ("something.new", "brevetd", json!({ "x": 1 }), 0, 99, None),
    ]
}

#[test]
fn every_kind_maps_to_its_class_and_activity() {
    for (kind, actor, data, class_uid, activity_id, status_id) in table() {
        let o = event_to_ocsf(&event(kind, actor, "g-1", data.clone()));
        let get = |k: &str| o[k].as_u64();
        assert_eq!(get("class_uid"), Some(class_uid), "{kind}: class");
        assert_eq!(get("activity_id"), Some(activity_id), "{kind}: activity");
        assert_eq!(
            get("type_uid"),
            Some(class_uid * 100 + activity_id),
            "{kind}: type_uid"
        );
        assert_eq!(
            get("category_uid"),
            Some(class_uid / 1000),
            "{kind}: category"
        );
        assert_eq!(get("status_id"), status_id, "{kind}: status");
        assert_eq!(get("time"), Some(1_795_860_000_000), "{kind}: time");
        assert!(
            get("severity_id").is_some_and(|s| (1..=5).contains(&s)),
            "{kind}"
        );
        assert!(
            o["activity_name"].as_str().is_some_and(|s| !s.is_empty()),
            "{kind}"
        );
        let md = &o["metadata"];
        assert_eq!(md["uid"], "42", "{kind}");
        assert_eq!(md["version"], OCSF_VERSION);
        assert_eq!(md["product"]["name"], "Brevet");
        assert_eq!(md["product"]["vendor_name"], "Brevet");
        assert_eq!(md["original_time"], "2026-11-28T10:00:00Z");
        let brevet = &o["unmapped"]["brevet"];
        assert_eq!(brevet["kind"], kind);
        assert_eq!(brevet["data"], data, "{kind}: data kept");
        assert_eq!(brevet["chain_hash"], "bb");
    }
}

#[test]
fn grants_name_the_person_the_role_and_the_device() {
    let data = json!({
        "device": "web-01", "user": "alice", "role": "admin", "runas": "root",
        "commands": ["/usr/bin/id"], "groups": [], "kind": "normal",
    });
    let o = event_to_ocsf(&event("grant.issued", "brevetd", "g-1", data));
    assert_eq!(o["user"]["name"], "alice");
    assert_eq!(
        o["privileges"],
        json!(["role:admin", "command:/usr/bin/id", "runas:root"])
    );
    assert_eq!(o["resource"]["name"], "web-01");
    assert_eq!(o["device"]["hostname"], "web-01");
    assert_eq!(o["metadata"]["correlation_uid"], "g-1");
    assert_eq!(o["actor"]["app_name"], "brevetd (brevetd)");
    assert_eq!(o["severity_id"], 1);
    let breakglass = json!({ "user": "alice", "kind": "breakglass" });
    let o = event_to_ocsf(&event("grant.issued", "brevetd", "g-2", breakglass));
    assert_eq!(o["severity_id"], severity::HIGH);
    let o = event_to_ocsf(&event("request.created", "alice", "r-1", json!({})));
    assert_eq!(o["user"]["name"], "alice");
    assert_eq!(o["activity_name"], "request.created");
}

#[test]
fn a_command_under_a_grant_is_a_process_launch() {
    let data = json!({
        "command": "/usr/bin/systemctl restart nginx", "cwd": "/root", "runas": "root",
        "user": "alice", "at": "2026-11-28T09:59:58Z", "allowed": true, "device": "web-01",
    });
    let o = event_to_ocsf(&event("grant.used", "device:web-01", "g-1", data.clone()));
    assert_eq!(o["class_uid"], 1007);
    assert_eq!(o["category_uid"], 1);
    assert_eq!(o["type_uid"], 100_701);
    assert_eq!(o["process"]["cmd_line"], "/usr/bin/systemctl restart nginx");
    assert_eq!(o["process"]["name"], "systemctl");
    assert_eq!(o["process"]["file"]["path"], "/usr/bin/systemctl");
    assert_eq!(o["process"]["user"]["name"], "root");
    assert_eq!(o["actor"]["user"]["name"], "alice");
    assert_eq!(o["device"]["hostname"], "web-01");
    // The time is when the command ran; when brevetd logged it is kept too.
    assert_eq!(o["time"], 1_795_859_998_000_i64);
    assert_eq!(o["metadata"]["original_time"], "2026-11-28T09:59:58Z");
    assert_eq!(o["metadata"]["logged_time"], 1_795_860_000_000_i64);
    let mut refused = data;
    refused["allowed"] = json!(false);
    let o = event_to_ocsf(&event("grant.used", "device:web-01", "g-1", refused));
    assert_eq!(
        (o["status_id"].as_u64(), o["severity_id"].as_u64()),
        (Some(2), Some(3))
    );
}

#[test]
fn logins_findings_and_unknown_kinds() {
    let o = event_to_ocsf(&event(
        "login.failed",
        "mallory",
        "mallory",
        json!({ "factor": "totp" }),
    ));
    assert_eq!(o["user"]["name"], "mallory");
    assert_eq!(o["status"], "Failure");
    assert_eq!(o["status_detail"], "totp");
    assert_eq!(o["service"]["name"], "brevetd");
    let o = event_to_ocsf(&event(
        "login.succeeded",
        "alice",
        "alice",
        json!({ "mfa": "totp" }),
    ));
    assert_eq!(o["is_mfa"], true);

    let drift = json!({
        "id": "group-member:sudo:bob", "kind": "admin_group_member", "severity": "critical",
        "subject": "bob", "detail": "bob is in sudo", "remediation": "gpasswd -d bob sudo",
    });
    let o = event_to_ocsf(&event("drift.detected", "device:web-01", "web-01", drift));
    assert_eq!(o["finding_info"]["uid"], "group-member:sudo:bob");
    assert_eq!(o["finding_info"]["title"], "admin_group_member: bob");
    assert_eq!(o["severity_id"], severity::CRITICAL);
    assert_eq!(o["remediation"]["desc"], "gpasswd -d bob sudo");
    assert_eq!(o["device"]["hostname"], "web-01");

    let o = event_to_ocsf(&event(
        "policy.reloaded",
        "admin",
        "default",
        json!({ "n": 3 }),
    ));
    assert_eq!(
        (o["class_uid"].as_u64(), o["type_uid"].as_u64()),
        (Some(0), Some(99))
    );
    assert_eq!(o["activity_name"], "policy.reloaded");
    assert_eq!(o["actor"]["user"]["name"], "admin");
    assert_eq!(o["unmapped"]["brevet"]["data"]["n"], 3);
    assert_eq!(severity_id("alert.anything", &json!({})), severity::HIGH);
}
