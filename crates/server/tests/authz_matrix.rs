//! The authorization matrix: every served route (`brevet_server::ROUTES`) × every kind of
//! caller → the expected outcome, over real HTTPS. A route added without a row here fails the
//! test, so nobody ships an unchecked route.
//!
//! Callers: no credentials, an expired session (an admin's), a person in no group, an operator,
//! an approver, an auditor, an admin, a device's client certificate, and another device's
//! client certificate. Outcomes: `U` 401, `D` 403, `N` 404 (a record the caller may not see is
//! not found), `A` allowed (anything else below 500: the call passed authorization and may
//! still fail on its input or state, e.g. 400 or 409).

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use std::collections::HashMap;

use brevet_proto::agent::{Ack, AckAction};
use common::device::TestDevice;
use common::{Db, Harness, add_device, ask, pending, wait_until};
use serde_json::{Value, json};

const CALLERS: [&str; 9] = [
    "none", "expired", "nogroup", "operator", "approver", "auditor", "admin", "device", "other",
];

/// Expected outcome per caller, in [`CALLERS`] order, written as 9 letters.
fn expectations() -> HashMap<(&'static str, &'static str), &'static str> {
    HashMap::from([
        (("get", "/v1/info"), "AAAAAAAAA"),
        (("get", "/v1/openapi.json"), "AAAAAAAAA"),
        (("get", "/metrics"), "UUDDDAAUU"),
        (("post", "/v1/login"), "AAAAAAAAA"),
        (("post", "/v1/logout"), "UUAAAAAUU"),
        (("get", "/v1/whoami"), "UUAAAAAUU"),
        (("post", "/v1/requests"), "UUAAAAAUU"),
        (("get", "/v1/requests"), "UUAAAAAUU"),
        (("get", "/v1/requests/{id}"), "UUNAAAAUU"),
        (("post", "/v1/requests/{id}/approve"), "UUNDADDUU"),
        (("post", "/v1/requests/{id}/deny"), "UUNDADDUU"),
        (("post", "/v1/requests/{id}/cancel"), "UUNADDAUU"),
        (("post", "/v1/breakglass"), "UUDDDDDUU"),
        (("get", "/v1/grants"), "UUAAAAAUU"),
        (("get", "/v1/grants/{id}"), "UUNAAAAUU"),
        (("post", "/v1/grants/{id}/revoke"), "UUNAADAUU"),
        (("post", "/v1/grants/{id}/done"), "UUNADDDUU"),
        (("post", "/v1/users"), "UUDDDDAUU"),
        (("get", "/v1/users"), "UUDDDAAUU"),
        (("post", "/v1/users/{name}/enable"), "UUDDDDAUU"),
        (("post", "/v1/users/{name}/disable"), "UUDDDDAUU"),
        (("post", "/v1/users/{name}/groups"), "UUDDDDAUU"),
        (("delete", "/v1/users/{name}/groups/{group}"), "UUDDDDAUU"),
        (("get", "/v1/privileges"), "UUDDDAAUU"),
        // Refused to all: the admin asked for this change, so another administrator must
        // confirm it (and the rest may not administer people).
        (("post", "/v1/privileges/{id}/confirm"), "UUDDDDDUU"),
        (("post", "/v1/privileges/{id}/reject"), "UUDDDDAUU"),
        (("post", "/v1/devices"), "UUDDDDAUU"),
        (("get", "/v1/devices"), "UUAAAAAUU"),
        (("post", "/v1/devices/{name}/enable"), "UUDDDDAUU"),
        (("post", "/v1/devices/{name}/disable"), "UUDDDDAUU"),
        (("post", "/v1/devices/{name}/enroll-token"), "UUDDDDAUU"),
        // Authenticated by the one-time token in the body, which is wrong here.
        (("post", "/v1/enroll"), "UUUUUUUUU"),
        (("get", "/v1/device/grants"), "UUUUUUUAA"),
        // The ack names the first device's grant: the other device may not ack it.
        (("post", "/v1/device/acks"), "UUUUUUUAD"),
        (("post", "/v1/device/events"), "UUUUUUUAA"),
        (("post", "/v1/device/renew"), "UUUUUUUAA"),
        (("post", "/v1/device/report"), "UUUUUUUAA"),
        (("get", "/v1/findings"), "UUDDDAAUU"),
        (("post", "/v1/notify/webhooks"), "UUDDDDAUU"),
        (("get", "/v1/notify/webhooks"), "UUDDDDAUU"),
        (("delete", "/v1/notify/webhooks/{id}"), "UUDDDDAUU"),
        (("get", "/v1/restore"), "UUDDDDAUU"),
        // Allowed for the admin, who is told that no restore waits (409).
        (("post", "/v1/restore/acknowledge"), "UUDDDDAUU"),
        (("get", "/v1/audit"), "UUDDDAAUU"),
        (("get", "/v1/audit/checkpoint"), "UUDDDAAUU"),
        (("get", "/v1/audit/proof/inclusion"), "UUDDDAAUU"),
        (("get", "/v1/audit/proof/consistency"), "UUDDDAAUU"),
    ])
}

/// The records the calls name.
struct World {
    /// alice's pending requests: one each to look at, approve, deny and cancel.
    show: String,
    approve: String,
    deny: String,
    cancel: String,
    /// alice's grants: one to look at, one to revoke, one to mark done.
    grant: String,
    revoke: String,
    done: String,
    webhook: String,
    /// A privilege change the admin made (pat joining `approvers`).
    privilege: String,
}

/// The call for `route` with `World`'s records filled in: (method, path, body).
fn call(world: &World, method: &str, route: &str) -> (String, String, Option<Value>) {
    let path = route
        .replace(
            "/v1/requests/{id}/approve",
            &format!("/v1/requests/{}/approve", world.approve),
        )
        .replace(
            "/v1/requests/{id}/deny",
            &format!("/v1/requests/{}/deny", world.deny),
        )
        .replace(
            "/v1/requests/{id}/cancel",
            &format!("/v1/requests/{}/cancel", world.cancel),
        )
        .replace("/v1/requests/{id}", &format!("/v1/requests/{}", world.show))
        .replace(
            "/v1/grants/{id}/revoke",
            &format!("/v1/grants/{}/revoke", world.revoke),
        )
        .replace(
            "/v1/grants/{id}/done",
            &format!("/v1/grants/{}/done", world.done),
        )
        .replace("/v1/grants/{id}", &format!("/v1/grants/{}", world.grant))
        .replace("{name}/groups/{group}", "tess/groups/operators")
        .replace("/v1/users/{name}", "/v1/users/tess")
        .replace("/v1/devices/{name}", "/v1/devices/tgt-01")
        .replace(
            "/v1/notify/webhooks/{id}",
            &format!("/v1/notify/webhooks/{}", world.webhook),
        )
        .replace(
            "/v1/privileges/{id}",
            &format!("/v1/privileges/{}", world.privilege),
        );
    let path = match path.as_str() {
        "/v1/device/grants" => "/v1/device/grants?wait=0".to_owned(),
        "/v1/audit/proof/inclusion" => "/v1/audit/proof/inclusion?seq=1".to_owned(),
        "/v1/audit/proof/consistency" => "/v1/audit/proof/consistency?from=1".to_owned(),
        _ => path,
    };
    let body = match (method, route) {
        ("post", "/v1/login") => Some(json!({ "not": "a login" })),
        ("post", "/v1/requests") => Some(serde_json::to_value(ask("pkg-update", "30m")).unwrap()),
        ("post", "/v1/requests/{id}/approve") => Some(json!({})),
        ("post", "/v1/requests/{id}/deny")
        | ("post", "/v1/grants/{id}/revoke")
        | ("post", "/v1/privileges/{id}/reject") => Some(json!({ "reason": "matrix says no" })),
        ("post", "/v1/breakglass") => {
            Some(json!({ "device": "web-01", "reason": "the matrix is on fire" }))
        }
        ("post", "/v1/users") => Some(json!({ "name": "newbie", "groups": [] })),
        ("post", "/v1/users/{name}/groups") => Some(json!({ "group": "operators" })),
        ("post", "/v1/devices") => Some(json!({ "name": "new-01" })),
        ("post", "/v1/enroll") => {
            let key = common::device::DeviceKey::generate();
            Some(json!({ "token": "bve_not_a_token", "public_key": key.spki_b64 }))
        }
        ("post", "/v1/device/acks") => Some(
            serde_json::to_value(vec![Ack {
                grant_id: world.grant.clone(),
                action: AckAction::Applied,
                at: "2026-12-04T10:00:00Z".into(),
                reason: None,
                detail: Value::Null,
            }])
            .unwrap(),
        ),
        ("post", "/v1/device/events") => Some(json!([])),
        ("post", "/v1/device/renew") => Some(json!({ "public_key": "not a key" })),
        ("post", "/v1/device/report") => Some(json!({
            "agent_version": "0", "agent_time": "2026-12-04T10:00:00Z", "mode": "audit",
            "findings": [], "drift": []
        })),
        ("post", "/v1/notify/webhooks") => Some(json!({ "url": "https://hooks.example.com/x" })),
        ("post", _) => Some(json!({})),
        _ => None,
    };
    (method.to_uppercase(), path, body)
}

fn outcome(status: u16) -> char {
    match status {
        401 => 'U',
        403 => 'D',
        404 => 'N',
        s if s < 500 => 'A',
        _ => '!',
    }
}

both_engines!(every_route_for_every_caller, |mut h: Harness| {
    let c = h.cast();
    h.add_user(&c.admin, "nell", &[]);
    h.add_user(&c.admin, "audrey", &["auditors"]);
    h.add_user(&c.admin, "tess", &["operators"]);
    add_device(&c.admin, "tgt-01");
    add_device(&c.admin, "db-01");
    let pat = c.admin.add_user("pat", &["approvers".to_owned()]).unwrap();
    let device = h.enrolled(&c.admin, "web-01");
    let other = h.enrolled(&c.admin, "db-01");

    let granted = |h: &Harness| {
        let r = pending(&c.alice, "pkg-update");
        let _ = h;
        c.bob.approve(&r.id, None).unwrap().grant_id.unwrap()
    };
    let world = World {
        show: pending(&c.alice, "pkg-update").id,
        approve: pending(&c.alice, "pkg-update").id,
        deny: pending(&c.alice, "pkg-update").id,
        cancel: pending(&c.alice, "pkg-update").id,
        grant: granted(&h),
        revoke: granted(&h),
        done: granted(&h),
        webhook: c
            .admin
            .add_webhook(&brevet_proto::api::AddWebhook {
                url: "https://hooks.example.com/matrix".into(),
                secret: None,
            })
            .unwrap()
            .id,
        privilege: pat.privileges[0].id.clone(),
    };
    wait_until("an audit checkpoint", || c.admin.audit_checkpoint().is_ok());

    let expired = h.session("brevet-admin");
    h.sql(&format!(
        "UPDATE sessions SET expires_at = 1 WHERE token_hash = '{}'",
        brevet_identity::token::hash_token(&expired)
    ));
    let mut tokens: HashMap<&str, Option<String>> = HashMap::new();
    tokens.insert("none", None);
    tokens.insert("expired", Some(expired));
    for (caller, user) in [
        ("nogroup", "nell"),
        ("operator", "alice"),
        ("approver", "bob"),
        ("auditor", "audrey"),
        ("admin", "brevet-admin"),
    ] {
        tokens.insert(caller, Some(h.session(user)));
    }
    let plain = h.device();

    let expected = expectations();
    let mut failures = Vec::new();
    for (method, route) in brevet_server::ROUTES {
        let Some(want) = expected.get(&(*method, *route)) else {
            failures.push(format!(
                "{method} {route}: no row in the authorization matrix; add one"
            ));
            continue;
        };
        let (verb, path, body) = call(&world, method, route);
        let mut got = String::new();
        for caller in CALLERS {
            let transport: &TestDevice = match caller {
                "device" => &device,
                "other" => &other,
                _ => &plain,
            };
            let token = match (caller, *route) {
                // Logging out ends the session: each caller logs out a session of its own.
                ("nogroup" | "operator" | "approver" | "auditor" | "admin", "/v1/logout") => {
                    let user = match caller {
                        "nogroup" => "nell",
                        "operator" => "alice",
                        "approver" => "bob",
                        "auditor" => "audrey",
                        _ => "brevet-admin",
                    };
                    Some(h.session(user))
                }
                _ => tokens.get(caller).cloned().flatten(),
            };
            let (status, text) = transport.raw(&verb, &path, token.as_deref(), body.as_ref());
            let o = outcome(status);
            if o == '!' {
                failures.push(format!("{verb} {path} as {caller}: {status} {text}"));
            }
            got.push(o);
        }
        if got != *want {
            failures.push(format!("{verb} {path}: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What each caller sees of records.
    let ids = |caller: &str, path: &str| -> Vec<(String, String)> {
        let (status, text) = plain.raw("GET", path, tokens[caller].as_deref(), None);
        assert_eq!(status, 200, "{caller} {path}: {text}");
        let v: Vec<Value> = serde_json::from_str(&text).unwrap();
        v.iter()
            .map(|r| {
                let owner = r["user"].as_str().or(r["name"].as_str()).unwrap_or("");
                (r["id"].as_str().unwrap_or("").to_owned(), owner.to_owned())
            })
            .collect()
    };
    // Nell (no group) sees only her own request, which policy denied; no grants, no devices.
    let nell_requests = ids("nogroup", "/v1/requests");
    assert!(
        !nell_requests.is_empty() && nell_requests.iter().all(|(_, u)| u == "nell"),
        "{nell_requests:?}"
    );
    assert!(ids("nogroup", "/v1/grants").is_empty());
    assert!(ids("nogroup", "/v1/devices").is_empty());
    // Alice sees her own, and the devices she may request on.
    assert!(
        ids("operator", "/v1/requests")
            .iter()
            .all(|(_, u)| u == "alice")
    );
    assert!(
        ids("operator", "/v1/grants")
            .iter()
            .all(|(_, u)| u == "alice")
    );
    let alice_devices: Vec<String> = ids("operator", "/v1/devices")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(alice_devices.len(), 4, "{alice_devices:?}");
    // Bob approves on every device, so he sees everybody's requests, nell's included.
    assert!(
        ids("approver", "/v1/requests")
            .iter()
            .any(|(_, u)| u == "nell")
    );
    // The auditor sees everything.
    assert_eq!(
        ids("auditor", "/v1/requests").len(),
        ids("admin", "/v1/requests").len()
    );
    // The other device's poll carries none of web-01's grants.
    let polled = other.poll(None, 0).unwrap();
    assert!(polled.grants.is_empty(), "{:?}", polled.grants);
    assert!(!device.poll(None, 0).unwrap().grants.is_empty());
});

// `/metrics` over HTTPS needs a session allowed `read_metrics`; a local scraper gets it in plain
// HTTP on a loopback address, and nowhere else.
#[test]
fn metrics_without_a_session_only_on_loopback() {
    let Some(mut h) = Harness::start(Db::Sqlite, "metrics_without_a_session_only_on_loopback")
    else {
        return;
    };
    let anonymous = h.anonymous().get_text("/metrics").unwrap_err();
    assert_eq!(anonymous.api_code(), Some("unauthenticated"));
    let config = std::fs::read_to_string(h.config_path()).unwrap();
    let with = |listen: &str| {
        config.replacen(
            "[server]\n",
            &format!("[server]\nmetrics_listen = \"{listen}\"\n"),
            1,
        )
    };

    // Anywhere but loopback is refused at start.
    h.stop();
    std::fs::write(h.config_path(), with("0.0.0.0:9464")).unwrap();
    let opts = brevet_server::serve::Options {
        listen: Some("127.0.0.1:0".into()),
        db: None,
        clock: h.clock.clone(),
    };
    let refused = match h.rt.block_on(brevet_server::serve::start(&h.data(), opts)) {
        Ok(_) => panic!("a non-loopback metrics address was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(refused.contains("not a loopback address"), "{refused}");

    // On loopback, plain HTTP, no session.
    std::fs::write(h.config_path(), with("127.0.0.1:0")).unwrap();
    h.restart_after_stop();
    let at = h
        .server
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("metrics listener");
    let get = |path: &str| {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(at).unwrap();
        write!(
            tcp,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        tcp.read_to_string(&mut text).unwrap();
        text
    };
    let page = get("/metrics");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("brevet_active_grants 0"), "{page}");
    assert!(get("/v1/users").starts_with("HTTP/1.1 404"));
}
