//! The command-line contract of DESIGN §9, black-box: the real `brevetd` and `brevet` binaries,
//! real HTTPS, the JSON keys scripts rely on, and one-line errors with a non-zero exit.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

use std::path::Path;

use serde_json::Value;

mod common;

use common::{Person, keys, start};

#[test]
fn the_whole_cycle_through_the_binaries() {
    let server = start();
    let init = server.init.clone();
    let admin = Person::new(&server, "brevet-admin");
    admin.login(
        "brevet-admin",
        init["admin_password"].as_str().unwrap(),
        init["totp_uri"].as_str().unwrap(),
    );
    assert_eq!(admin.json(&["whoami"])["user"], "brevet-admin");

    let alice_u = admin.json(&["user", "add", "alice", "--group", "operators"]);
    keys(&alice_u, &["name", "password", "totp_uri"]);
    let bob_u = admin.json(&["user", "add", "bob", "--group", "approvers"]);
    let eve_u = admin.json(&["user", "add", "eve"]);
    admin.fails(&["user", "add", "bob ALL=(ALL) NOPASSWD: ALL"], "user name");
    let dev = admin.json(&["device", "add", "web-01", "--tag", "env=prod"]);
    assert_eq!(dev["tags"]["env"], "prod");
    admin.fails(&["device", "add", "web;01"], "device name");
    let token = admin.json(&["device", "enroll-token", "web-01"]);
    keys(&token, &["device", "token", "expires_at"]);
    assert!(token["token"].as_str().unwrap().starts_with("bve_"));
    let plain = admin.run(&["device", "enroll-token", "web-01"], None);
    assert!(plain.status.success());
    let line = String::from_utf8(plain.stdout).unwrap();
    assert!(
        line.starts_with("bve_") && line.lines().count() == 1,
        "the token alone on stdout: {line:?}"
    );
    assert_eq!(
        admin.json(&["device", "disable", "web-01"])["enabled"],
        false
    );
    admin.fails(&["device", "enroll-token", "web-01"], "disabled");
    assert_eq!(admin.json(&["device", "enable", "web-01"])["enabled"], true);
    admin.fails(&["device", "disable", "db-99"], "no device `db-99`");

    let alice = Person::new(&server, "alice");
    alice.login(
        "alice",
        alice_u["password"].as_str().unwrap(),
        alice_u["totp_uri"].as_str().unwrap(),
    );
    let ask = |duration: &str, reason: &str| {
        vec![
            "request",
            "--device",
            "web-01",
            "--role",
            "pkg-update",
            "--duration",
            duration,
            "--ticket",
            "CHG-1",
            "--reason",
            reason,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    let a = ask("30m", "patch openssl");
    let req = alice.json(&a.iter().map(String::as_str).collect::<Vec<_>>());
    keys(&req, &["id", "state", "user", "device", "role", "grant_id"]);
    assert_eq!(req["state"], "pending");
    for (duration, reason, needle) in [
        ("0m", "patch openssl", "duration"),
        ("-5m", "patch openssl", "duration"),
        ("99999999h", "patch openssl", "duration"),
        ("30m", ".", "reason"),
    ] {
        let a = ask(duration, reason);
        alice.fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), needle);
    }

    let bob = Person::new(&server, "bob");
    bob.login(
        "bob",
        bob_u["password"].as_str().unwrap(),
        bob_u["totp_uri"].as_str().unwrap(),
    );
    let id = req["id"].as_str().unwrap();
    let pending = bob.json(&["requests", "--pending"]);
    assert!(pending.as_array().unwrap().iter().any(|r| r["id"] == id));
    alice.fails(&["approve", id], "own request");
    let approved = bob.json(&["approve", id]);
    assert_eq!(approved["state"], "approved");
    let grant_id = approved["grant_id"].as_str().unwrap().to_owned();

    let grants = alice.json(&["grants", "--active"]);
    let g = &grants.as_array().unwrap()[0];
    keys(
        g,
        &[
            "id",
            "request_id",
            "state",
            "user",
            "device",
            "role",
            "not_before",
            "not_after",
        ],
    );
    assert_eq!(g["id"], grant_id.as_str());
    assert_eq!(g["request_id"], id);

    // Eve is in no group: the policy denies her, and the CLI says so and exits non-zero.
    let eve = Person::new(&server, "eve");
    eve.login(
        "eve",
        eve_u["password"].as_str().unwrap(),
        eve_u["totp_uri"].as_str().unwrap(),
    );
    let a = ask("30m", "just looking around");
    eve.fails(&a.iter().map(String::as_str).collect::<Vec<_>>(), "denied");

    assert_eq!(alice.json(&["done", &grant_id])["state"], "completed");
    let story = admin.json(&["grants", "show", &grant_id]);
    let kinds: Vec<&str> = story["story"]
        .as_array()
        .expect("a story")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for k in [
        "request.created",
        "request.approval",
        "grant.issued",
        "grant.completed",
    ] {
        assert!(kinds.contains(&k), "`grants show` lacks {k}: {kinds:?}");
    }
    assert!(
        alice
            .json(&["grants", "--active"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    let export = admin.run(&["audit", "export"], None);
    assert!(export.status.success());
    let lines: Vec<Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    for (i, e) in lines.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
    }
    assert!(lines.iter().any(|e| e["kind"] == "grant.completed"));

    let policy = Path::new(init["ca_file"].as_str().unwrap()).with_file_name("policy.cedar");
    assert_eq!(admin.json(&["findings"]), serde_json::json!([]));
    let none = admin.run(&["findings", "--device", "web-01"], None);
    assert_eq!(String::from_utf8(none.stdout).unwrap(), "no findings\n");

    let checked = admin.json(&["policy", "check", policy.to_str().unwrap()]);
    assert_eq!(checked["ok"], true);

    // Break-glass: refused by policy for alice, granted at once to a member of `breakglass`.
    alice.fails(
        &["breakglass", "--device", "web-01", "--reason", "prod down"],
        "break-glass on `web-01` refused",
    );
    let erin_u = admin.json(&["user", "add", "erin", "--group", "breakglass"]);
    let erin = Person::new(&server, "erin");
    erin.login(
        "erin",
        erin_u["password"].as_str().unwrap(),
        erin_u["totp_uri"].as_str().unwrap(),
    );
    let bg = erin.json(&["breakglass", "--device", "web-01", "--reason", "prod down"]);
    keys(&bg, &["id", "state", "user", "device", "role", "grant_id"]);
    assert_eq!(
        (bg["state"].as_str(), bg["role"].as_str()),
        (Some("approved"), Some("admin"))
    );
    let g = erin.json(&["grants", "--active"]);
    assert_eq!(g[0]["id"], bg["grant_id"]);

    // Webhooks: admin only, hostile URLs refused in one line.
    admin.fails(
        &["notify", "add", "--webhook", "javascript:alert(1)"],
        "webhook",
    );
    alice.fails(
        &["notify", "add", "--webhook", "https://hooks.example.com/x"],
        "manage_notifications",
    );
    let hook = admin.json(&[
        "notify",
        "add",
        "--webhook",
        "https://hooks.example.com/brevet",
    ]);
    keys(&hook, &["id", "url", "has_secret"]);

    // The report counts what happened.
    let report = admin.json(&["report"]);
    assert!(
        report["grants"]["by_kind"]["breakglass"].as_u64() >= Some(1),
        "{report}"
    );
}
