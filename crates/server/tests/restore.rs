//! A restore from backup cannot bring privilege back.
//!
//! The sequence found in review: grant G approved while the device was offline, the database
//! copied, G revoked, the copy restored — and the agent applied the revoked G, with no warning
//! from brevetd. Now brevetd notices it runs on older state than it has served (its marker names
//! a checkpoint the database lacks), refuses to deliver until an administrator acknowledges the
//! restore, and then treats grants issued before it as revoked. When the marker was restored
//! too (a whole data-dir backup, which brevetd cannot tell), the agents' memory of the newest
//! server state catches it.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use brevet_proto::api::GrantState;
use common::sandbox::SandboxAgent;
use common::*;

/// Waits until a signed checkpoint covers every event so far (the marker is written then).
fn checkpointed(admin: &brevet_cli::client::Client) {
    let head = admin.audit(0, 10_000).unwrap().last().map_or(0, |e| e.seq);
    wait_for("a checkpoint covering the log", 10, || {
        admin.audit_checkpoint().is_ok_and(|cp| cp.size >= head)
    });
}

both_engines!(
    a_restored_database_does_not_bring_a_revoked_grant_back,
    |mut h: Harness| {
        let c = h.cast();
        add_device(&c.admin, "db-01");
        let probe = h.enrolled(&c.admin, "db-01");
        let mut agent = SandboxAgent::start(&h, &c.admin, "web-01");
        agent.stop();

        // G is approved while the device is offline.
        let r = pending(&c.alice, "pkg-update");
        let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        checkpointed(&c.admin);
        h.stop();
        h.backup_db(false);
        h.restart_after_stop();
        // Sessions outlive restarts; logging in again would move the test clock (fresh TOTP steps)
        // and skew it from the agent's.
        let admin = c.admin.clone();
        admin.revoke(&g, "not needed after all").unwrap();
        checkpointed(&admin);
        h.stop();

        // The copy comes back.
        h.restore_db();
        h.restart_after_stop();
        assert_eq!(
            admin.grant(&g).unwrap().state,
            GrantState::Issued,
            "the restored database has G live again"
        );
        let status = admin.restore_status().unwrap();
        assert!(status.pending, "{status:?}");
        assert!(
            status
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("checkpoint"),
            "{status:?}"
        );
        assert_eq!(events(&admin, "alert.restore_detected").len(), 1);

        // No delivery while the restore waits: devices are told so.
        let e = probe.poll(None, 0).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (503, "restore_pending"),
            "{e:?}"
        );
        agent.resume();

        // An operator cannot acknowledge; the administrator does, with a fresh second factor (the
        // login's, a moment ago; a new TOTP code could move the test clock ahead of the agent's).
        let alice = c.alice.clone();
        assert_eq!(api_code(alice.acknowledge_restore(None)), "forbidden");
        let acked = admin.acknowledge_restore(None).unwrap();
        assert!(!acked.pending);
        assert_eq!(acked.generation, 2);
        let ended = admin.grant(&g).unwrap();
        assert_eq!(ended.state, GrantState::Revoked);
        assert_eq!(
            ended.end_reason.as_deref(),
            Some("issued before a restore from backup")
        );
        let ack = events(&admin, "restore.acknowledged");
        assert_eq!(ack[0].data["grants_revoked"][0], g.as_str());

        // Delivery resumes: a new grant reaches the device, G never did.
        let bob = c.bob.clone();
        let r2 = pending(&alice, "pkg-update");
        let g2 = bob.approve(&r2.id, None).unwrap().grant_id.unwrap();
        wait_for("the new grant in force", 10, || agent.drop_in(&g2).exists());
        assert!(!agent.drop_in(&g).exists(), "the revoked grant came back");
        assert!(probe.poll(None, 0).is_ok());

        // The restart after acknowledging finds the marker and the database agreeing.
        checkpointed(&admin);
        h.restart();
        assert!(!admin.restore_status().unwrap().pending);
    }
);

both_engines!(
    an_agent_refuses_a_server_whose_state_went_backwards,
    |mut h: Harness| {
        let c = h.cast();
        let agent = SandboxAgent::start(&h, &c.admin, "web-01");
        let r = pending(&c.alice, "pkg-update");
        let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        wait_for("G in force", 10, || agent.drop_in(&g).exists());
        checkpointed(&c.admin);

        // A backup of the whole data dir (marker included) is taken while G is live.
        h.stop();
        h.backup_db(true);
        h.restart_after_stop();
        let admin = c.admin.clone();
        admin.revoke(&g, "window closed").unwrap();
        wait_for("G removed", 10, || !agent.drop_in(&g).exists());
        wait_for("removal confirmed", 10, || {
            admin.grant(&g).unwrap().revocation_confirmed_at.is_some()
        });
        // Something else for the device, so that it has seen the newer state.
        let r2 = pending(&c.alice, "pkg-update");
        let g2 = c.bob.approve(&r2.id, None).unwrap().grant_id.unwrap();
        wait_for("G2 in force", 10, || agent.drop_in(&g2).exists());
        h.stop();

        // The whole backup comes back: brevetd cannot tell, the device can.
        h.restore_db();
        h.restart_after_stop();
        assert!(!admin.restore_status().unwrap().pending);
        // It refuses the answer (G is live in it) and says why; it also acknowledges the removal of
        // G2, a grant the restored server never heard of. Both raise the alarm.
        wait_for("the device reports the rewound server", 20, || {
            events(&admin, "grant.rejected_by_device")
                .iter()
                .any(|e| e.subject == g && e.data["reason"] == "server_state")
        });
        let alerts = events(&admin, "alert.server_state_rewound");
        assert!(
            alerts.iter().any(|e| e.data["grant_id"] == g.as_str()),
            "{alerts:?}"
        );
        wait_for("the unknown grant reported", 20, || {
            events(&admin, "alert.server_state_rewound")
                .iter()
                .any(|e| e.data["grant_id"] == g2.as_str())
        });
        assert!(!agent.drop_in(&g).exists(), "the revoked grant came back");
    }
);
