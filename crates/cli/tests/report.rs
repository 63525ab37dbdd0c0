//! `brevet report` black-box: the real `brevetd` and `brevet` binaries over real HTTPS. A request
//! is made and approved; the JSON report counts them, the text report prints, and `--html`
//! writes a page naming the grant.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use common::{Person, start};

#[test]
fn a_report_counts_an_approved_request_and_writes_html() {
    let server = start();
    let init = server.init.clone();
    let admin = Person::new(&server, "brevet-admin");
    admin.login(
        "brevet-admin",
        init["admin_password"].as_str().unwrap(),
        init["totp_uri"].as_str().unwrap(),
    );
    let alice_u = admin.json(&["user", "add", "alice", "--group", "operators"]);
    let bob_u = admin.json(&["user", "add", "bob", "--group", "approvers"]);
    admin.json(&["device", "add", "web-01"]);

    let alice = Person::new(&server, "alice");
    alice.login(
        "alice",
        alice_u["password"].as_str().unwrap(),
        alice_u["totp_uri"].as_str().unwrap(),
    );
    let req = alice.json(&[
        "request",
        "--device",
        "web-01",
        "--role",
        "pkg-update",
        "--duration",
        "30m",
        "--ticket",
        "CHG-7",
        "--reason",
        "patch openssl",
    ]);
    let bob = Person::new(&server, "bob");
    bob.login(
        "bob",
        bob_u["password"].as_str().unwrap(),
        bob_u["totp_uri"].as_str().unwrap(),
    );
    let approved = bob.json(&["approve", req["id"].as_str().unwrap()]);
    assert_eq!(approved["state"], "approved");
    let grant_id = approved["grant_id"].as_str().unwrap().to_owned();

    let r = admin.json(&["report"]);
    assert_eq!(r["requests"]["total"], 1, "{r}");
    assert_eq!(r["requests"]["by_state"]["approved"], 1, "{r}");
    assert_eq!(r["requests"]["by_state"]["pending"], 0, "{r}");
    assert_eq!(r["requests"]["time_to_decision"]["decided"], 1, "{r}");
    assert!(r["requests"]["time_to_decision"]["median_seconds"].is_i64());
    assert_eq!(r["grants"]["total"], 1, "{r}");
    assert_eq!(r["grants"]["items"][0]["id"], grant_id.as_str(), "{r}");
    assert_eq!(r["grants"]["by_kind"]["normal"], 1, "{r}");
    assert_eq!(r["grants"]["by_kind"]["breakglass"], 0, "{r}");
    let live = r["grants"]["by_state"]["issued"].as_u64().unwrap()
        + r["grants"]["by_state"]["active"].as_u64().unwrap();
    assert_eq!(live, 1, "{r}");
    assert_eq!(r["top_users"][0]["name"], "alice", "{r}");
    assert_eq!(r["top_users"][0]["grants"], 1, "{r}");
    assert_eq!(r["top_devices"][0]["name"], "web-01", "{r}");
    assert_eq!(r["unconfirmed_removals"], serde_json::json!([]));
    assert_eq!(r["breakglass"], serde_json::json!([]));
    assert_eq!(r["findings"]["devices_reporting"], 0, "{r}");
    assert!(r["since"].is_string() && r["until"].is_string(), "{r}");
    // Bob's approver right came from the only administrator: in effect, listed until a second
    // administrator confirms it.
    assert_eq!(r["open_privileges"][0]["user"], "bob", "{r}");
    assert_eq!(r["open_privileges"][0]["state"], "unconfirmed", "{r}");
    assert_eq!(bob_u["privileges"][0]["state"], "unconfirmed", "{bob_u}");

    // A grant still in force belongs to every period up to now.
    let later = admin.json(&["report", "--since", r["until"].as_str().unwrap()]);
    assert_eq!(later["grants"]["total"], 1, "{later}");

    let text = admin.ok(&["report"]);
    assert!(text.starts_with("compliance report "), "{text}");
    assert!(text.contains("requests: 1"), "{text}");
    assert!(
        text.contains("privilege changes without a second administrator: 1"),
        "{text}"
    );

    let html = server.dir.path().join("report.html");
    let printed = admin.ok(&["report", "--html", html.to_str().unwrap()]);
    assert_eq!(printed.trim_end(), html.to_str().unwrap());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains(&grant_id), "{page}");

    // A bad time is one line naming it, and nothing is written.
    let out = admin.run(&["report", "--since", "last week"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("since"), "{err}");
}
