//! End to end: `brevetd` + an enrolled `brevet-agent` process over mutual TLS, enforcing in a
//! sandbox root (`--root`). Grants appear and disappear as drop-ins; tampered grants are refused
//! and reported; a grant ends on time on the device even when the server is dead.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use std::time::Duration;

use brevet_proto::api::GrantState;
use common::sandbox::SandboxAgent;
use common::*;

/// Waits for `cond` up to `secs` seconds (the shared helper, under this file's old name).
fn wait_until(what: &str, secs: u64, cond: impl FnMut() -> bool) -> Duration {
    wait_for(what, secs, cond)
}

both_engines!(grants_reach_the_device_and_leave_it, |mut h: Harness| {
    let c = h.cast();
    let agent = SandboxAgent::start(&h, &c.admin, "web-01");

    let r = pending(&c.alice, "pkg-update");
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let file = agent.drop_in(&g);
    wait_until("drop-in installed", 5, || file.exists());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("Defaults:alice timestamp_timeout=0"),
        "{text}"
    );
    assert!(
        text.contains("/usr/bin/apt-get update, /usr/bin/apt-get upgrade"),
        "{text}"
    );
    wait_until("grant active on the server", 5, || {
        c.alice.grant(&g).unwrap().state == GrantState::Active
    });

    // Revocation: the drop-in and the user's sudo timestamp go; the server hears of it.
    std::fs::write(agent.root.join("run/sudo/ts/alice"), b"ts").unwrap();
    c.bob.revoke(&g, "change window closed").unwrap();
    wait_until("drop-in removed", 5, || !file.exists());
    // The record goes in the same removal, just after the drop-in: wait for it, not a moment.
    wait_until("timestamp record deleted", 5, || {
        !agent.root.join("run/sudo/ts/alice").exists()
    });
    wait_until("removal confirmed", 5, || {
        c.alice.grant(&g).unwrap().revocation_confirmed_at.is_some()
    });

    // `done` ends it too.
    let r = pending(&c.alice, "pkg-update");
    let g2 = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let file2 = agent.drop_in(&g2);
    wait_until("second drop-in", 5, || file2.exists());
    // A drop-in deleted by hand comes back; a stray brevet_ file is removed.
    std::fs::remove_file(&file2).unwrap();
    let stray = agent
        .root
        .join("etc/sudoers.d/brevet_00000000000000000000000000000000");
    std::fs::write(&stray, "alice ALL=(ALL) NOPASSWD: ALL\n").unwrap();
    wait_until("restored", 5, || file2.exists());
    wait_until("stray removed", 5, || !stray.exists());
    c.alice.done(&g2).unwrap();
    wait_until("done removes it", 5, || !file2.exists());

    // Expiry at not_after.
    let r = c.alice.create_request(&ask("short", "2s")).unwrap();
    let g3 = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let file3 = agent.drop_in(&g3);
    wait_until("short grant installed", 5, || file3.exists());
    wait_until("short grant expired on the device", 5, || !file3.exists());
});

both_engines!(
    the_device_ends_grants_when_the_server_is_dead,
    |mut h: Harness| {
        let c = h.cast();
        let agent = SandboxAgent::start(&h, &c.admin, "web-01");
        let r = c.alice.create_request(&ask("short", "3s")).unwrap();
        let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        let na = brevet_proto::timefmt::parse_rfc3339("na", &c.alice.grant(&g).unwrap().not_after)
            .unwrap();
        let file = agent.drop_in(&g);
        wait_until("installed", 5, || file.exists());
        h.stop();
        wait_until("removed with the server down", 6, || !file.exists());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(now >= na, "removed before not_after");
        // The server comes back and hears the removal (queued on the device).
        h.restart_after_stop();
        let admin = h.login("brevet-admin");
        wait_until("removal confirmed after the outage", 20, || {
            admin.grant(&g).unwrap().revocation_confirmed_at.is_some()
        });
    }
);

both_engines!(
    disabling_a_device_ends_its_grants_there_and_on_the_server,
    |mut h: Harness| {
        let c = h.cast();
        let agent = SandboxAgent::start(&h, &c.admin, "web-01");
        let r = pending(&c.alice, "pkg-update");
        let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        let file = agent.drop_in(&g);
        wait_until("installed", 5, || file.exists());

        c.admin.set_device_enabled("web-01", false).unwrap();
        let ended = c.alice.grant(&g).unwrap();
        assert_eq!(ended.state, GrantState::Revoked);
        assert_eq!(ended.end_reason.as_deref(), Some("device disabled"));
        let disabled = events(&c.admin, "device.disabled");
        assert_eq!(disabled[0].data["grants_revoked"], serde_json::json!([g]));
        // The agent, refused from now on, removes what it holds itself.
        wait_until("removed on the disabled device", 5, || !file.exists());

        // Enabled again: the removal it queued reaches the server.
        c.admin.set_device_enabled("web-01", true).unwrap();
        wait_until("removal confirmed after re-enabling", 20, || {
            c.alice.grant(&g).unwrap().revocation_confirmed_at.is_some()
        });
    }
);

// Somebody with database access (not the grant key) tries to get a grant onto web-01. The
// agent checks every grant against the key it pinned and refuses, and the server hears why.
both_engines!(
    tampered_grants_are_refused_and_reported,
    |mut h: Harness| {
        let c = h.cast();
        c.admin
            .add_device(&brevet_proto::api::AddDevice {
                name: "web-02".into(),
                tags: Default::default(),
                groups: vec![],
                os: None,
            })
            .unwrap();
        // Expired: a genuine web-01 grant that ended before the agent ever saw it, brought back to
        // life in the database.
        let r = c.alice.create_request(&ask("short", "1s")).unwrap();
        let expired = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        wait_until("grant expired", 5, || {
            c.alice.grant(&expired).unwrap().state == GrantState::Expired
        });
        h.sql(&format!(
        "UPDATE grants SET state = 'issued', not_after = not_after + 3600 WHERE id = '{expired}'"
    ));
        let agent = SandboxAgent::start(&h, &c.admin, "web-01");
        let on_web02 = |role: &str, duration: &str| {
            let mut body = ask(role, duration);
            body.device = "web-02".into();
            let r = c.alice.create_request(&body).unwrap();
            c.bob.approve(&r.id, None).unwrap().grant_id.unwrap()
        };
        // Wrong device: a genuine grant for web-02, re-pointed at web-01 in the database.
        let wrong_device = on_web02("pkg-update", "30m");
        h.sql(&format!(
            "UPDATE grants SET device = 'web-01' WHERE id = '{wrong_device}'"
        ));
        // Forged: the signature replaced.
        let forged = on_web02("pkg-update", "30m");
        let zeros = "A".repeat(86) + "==";
        h.sql(&format!(
            "UPDATE grants SET device = 'web-01', sig = '{zeros}' WHERE id = '{forged}'"
        ));
        // Tampered: the document edited to name web-01 and `ALL`, the signature kept.
        let tampered = on_web02("pkg-update", "30m");
        h.sql(&format!(
        "UPDATE grants SET device = 'web-01', doc = REPLACE(REPLACE(doc, '\"web-02\"', '\"web-01\"'), '\"/usr/bin/apt-get update\",\"/usr/bin/apt-get upgrade\"', '\"ALL\"') WHERE id = '{tampered}'"
    ));
        // A genuine grant for web-01 wakes the agent; it gets all five and applies only that one.
        let r = pending(&c.alice, "pkg-update");
        let good = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        wait_until("genuine grant applied", 5, || agent.drop_in(&good).exists());
        let reasons = |admin: &brevet_cli::client::Client| -> Vec<(String, String)> {
            events(admin, "grant.rejected_by_device")
                .into_iter()
                .map(|e| {
                    (
                        e.subject,
                        e.data["reason"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        };
        wait_until("four rejections reported", 5, || {
            reasons(&c.admin).len() >= 4
        });
        let got = reasons(&c.admin);
        for (id, why) in [
            (&wrong_device, "device"),
            (&forged, "signature"),
            (&tampered, "signature"),
            (&expired, "expired"),
        ] {
            assert!(
                got.iter().any(|(g, r)| g == id && r.contains(why)),
                "{id} not refused for {why}: {got:?}"
            );
            assert!(!agent.drop_in(id).exists(), "{id} was installed");
        }
        let installed: Vec<_> = std::fs::read_dir(agent.root.join("etc/sudoers.d"))
            .unwrap()
            .collect();
        assert_eq!(installed.len(), 1, "only the genuine grant is in force");

        // Replay: the genuine grant, once removed, is never applied again.
        c.bob.revoke(&good, "done with it").unwrap();
        wait_until("removed", 5, || !agent.drop_in(&good).exists());
        wait_until("confirmed", 5, || {
            c.alice
                .grant(&good)
                .unwrap()
                .revocation_confirmed_at
                .is_some()
        });
        h.sql(&format!(
            "UPDATE grants SET state = 'issued' WHERE id = '{good}'"
        ));
        let r = pending(&c.alice, "pkg-update");
        let next = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        wait_until("next grant applied", 5, || agent.drop_in(&next).exists());
        wait_until("replay refused", 5, || {
            reasons(&c.admin)
                .iter()
                .any(|(g, r)| g == &good && r.contains("replay"))
        });
        assert!(!agent.drop_in(&good).exists());
    }
);

// Found: re-enrolling a live device (any valid token) silently replaced its certificate; the
// real agent took the 401 for "offline" and kept its grants, while the impostor could ack
// removals. Now the enrollment raises an alert, and the superseded agent removes everything.
both_engines!(
    a_superseded_agent_removes_what_it_holds,
    |mut h: Harness| {
        let c = h.cast();
        let agent = SandboxAgent::start(&h, &c.admin, "web-01");
        let r = pending(&c.alice, "pkg-update");
        let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        let file = agent.drop_in(&g);
        wait_until("installed", 5, || file.exists());

        let token = c.admin.enroll_token("web-01").unwrap();
        let mut impostor = h.device();
        impostor.enroll(&token.token).unwrap();
        assert_eq!(events(&c.admin, "alert.device_reenrolled").len(), 1);
        // The agent hears `device_superseded` at its next request (its poll is woken).
        wait_until("removed by the superseded agent", 10, || !file.exists());
        wait_until("the agent says so", 10, || {
            agent
                .log()
                .contains("this device was enrolled again elsewhere")
        });
    }
);
