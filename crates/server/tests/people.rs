//! The identity lifecycle closes privilege: disabling a person or device ends what they hold
//! and what they asked for, approvals re-check what made a request grantable, giving power
//! needs a second administrator, and reserved names are refused.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use brevet_proto::api::{AddDevice, GrantState, RequestState};
use common::{Db, Harness, api_code, ask, events, pending};

both_engines!(
    disabling_a_person_revokes_grants_and_cancels_requests,
    |mut h: Harness| {
        let c = h.cast();
        let r = pending(&c.alice, "pkg-update");
        let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        let waiting = pending(&c.alice, "pkg-update");

        c.admin.set_user_enabled("alice", false).unwrap();

        // Found: her grant stayed in force and her request could still be approved and applied.
        assert_eq!(c.admin.grant(&g).unwrap().state, GrantState::Revoked);
        assert_eq!(
            c.admin.grant(&g).unwrap().end_reason.as_deref(),
            Some("user disabled")
        );
        assert_eq!(
            c.admin.request(&waiting.id).unwrap().state,
            RequestState::Cancelled
        );
        assert_eq!(api_code(c.bob.approve(&waiting.id, None)), "conflict");
        assert!(c.admin.grants(true, None).unwrap().is_empty());
        let disabled = events(&c.admin, "user.disabled");
        assert_eq!(disabled[0].data["grants_revoked"][0], g.as_str());
        assert_eq!(
            disabled[0].data["requests_cancelled"][0],
            waiting.id.as_str()
        );
    }
);

both_engines!(
    disabling_a_device_cancels_its_pending_requests,
    |mut h: Harness| {
        let c = h.cast();
        let r = pending(&c.alice, "pkg-update");
        c.admin.set_device_enabled("web-01", false).unwrap();
        assert_eq!(
            c.admin.request(&r.id).unwrap().state,
            RequestState::Cancelled
        );
        // Found: approved once the device was enabled again, it would have been applied.
        c.admin.set_device_enabled("web-01", true).unwrap();
        assert_eq!(api_code(c.bob.approve(&r.id, None)), "conflict");
        assert!(c.admin.grants(false, None).unwrap().is_empty());
    }
);

both_engines!(
    leaving_a_group_reevaluates_pending_requests,
    |mut h: Harness| {
        let c = h.cast();
        let r = pending(&c.alice, "pkg-update");
        c.admin.remove_user_group("alice", "operators").unwrap();
        let after = c.admin.request(&r.id).unwrap();
        assert_eq!(after.state, RequestState::Denied);
        assert_eq!(api_code(c.bob.approve(&r.id, None)), "conflict");
        let denied = events(&c.admin, "request.denied");
        assert_eq!(denied.last().unwrap().actor, "policy");
        assert_eq!(denied.last().unwrap().data["reevaluated"], true);
    }
);

both_engines!(
    approval_rechecks_what_made_the_request_grantable,
    |mut h: Harness| {
        let c = h.cast();
        // Changes made behind the server's back (no event closed the requests) are still caught
        // when an approval arrives.
        let r1 = pending(&c.alice, "pkg-update");
        h.sql("UPDATE users SET enabled = 0 WHERE name = 'alice'");
        let e = c.bob.approve(&r1.id, None).unwrap_err();
        assert_eq!(e.api_code(), Some("conflict"), "{e}");
        assert!(e.to_string().contains("`alice` is disabled"), "{e}");
        assert_eq!(
            c.admin.request(&r1.id).unwrap().state,
            RequestState::Cancelled
        );
        h.sql("UPDATE users SET enabled = 1 WHERE name = 'alice'");

        let r2 = pending(&c.alice, "pkg-update");
        h.sql("UPDATE devices SET enabled = 0 WHERE name = 'web-01'");
        let e = c.bob.approve(&r2.id, None).unwrap_err();
        assert!(e.to_string().contains("device `web-01` is disabled"), "{e}");
        h.sql("UPDATE devices SET enabled = 1 WHERE name = 'web-01'");

        let r3 = pending(&c.alice, "pkg-update");
        h.sql("DELETE FROM user_groups WHERE user_name = 'alice' AND group_name = 'operators'");
        let e = c.bob.approve(&r3.id, None).unwrap_err();
        assert_eq!(e.api_code(), Some("conflict"), "{e}");
        assert!(e.to_string().contains("no longer allows"), "{e}");
        assert_eq!(c.admin.request(&r3.id).unwrap().state, RequestState::Denied);
        assert!(c.admin.grants(false, None).unwrap().is_empty());
    }
);

both_engines!(
    an_approver_who_lost_the_right_no_longer_counts,
    |mut h: Harness| {
        let c = h.cast();
        // db-admin needs two approvers: bob approves, then loses the approvers group.
        let r = pending(&c.alice, "db-admin");
        c.bob.approve(&r.id, None).unwrap();
        c.admin.remove_user_group("bob", "approvers").unwrap();
        let after = c.carol.approve(&r.id, None).unwrap();
        assert_eq!(
            after.state,
            RequestState::Pending,
            "bob's approval no longer counts"
        );
        h.add_user(&c.admin, "dora", &["approvers"]);
        let dora = h.login("dora");
        assert_eq!(
            dora.approve(&r.id, None).unwrap().state,
            RequestState::Approved
        );
    }
);

both_engines!(
    giving_power_needs_a_second_administrator,
    |mut h: Harness| {
        let c = h.cast();
        // One administrator: bob's and carol's approver rights took effect, unconfirmed and alerted.
        let open = c.admin.privileges(Some("unconfirmed")).unwrap();
        let mut users: Vec<&str> = open.iter().map(|p| p.user.as_str()).collect();
        users.sort();
        assert_eq!(users, ["bob", "carol"]);
        assert_eq!(events(&c.admin, "alert.privilege_unconfirmed").len(), 2);

        // A second administrator, made by the only one: unconfirmed too.
        let adam = c.admin.add_user("adam", &["admins".to_owned()]).unwrap();
        assert_eq!(adam.groups, ["admins"]);
        assert_eq!(adam.privileges[0].state, "unconfirmed");
        h.remember_created(&adam);
        let adam_c = h.login("adam");

        // Found: one admin made a sock-puppet approver and approved their own ALL request. Now the
        // sock puppet's approver right waits for a second administrator and has no effect.
        c.admin.add_user_group("brevet-admin", "operators").unwrap();
        let admin_c = h.login("brevet-admin");
        let own = admin_c.create_request(&ask("admin", "30m")).unwrap();
        let sock = c.admin.add_user("sock", &["approvers".to_owned()]).unwrap();
        assert!(sock.groups.is_empty(), "{sock:?}");
        assert_eq!(sock.privileges[0].state, "pending");
        let change = sock.privileges[0].id.clone();
        h.remember_created(&sock);
        let sock_c = h.login("sock");
        assert_eq!(api_code(sock_c.approve(&own.id, None)), "not_found");
        assert_eq!(
            admin_c.request(&own.id).unwrap().state,
            RequestState::Pending
        );

        // The one who asked cannot confirm; the person concerned cannot either.
        assert_eq!(
            api_code(c.admin.confirm_privilege(&change, None)),
            "separation_of_duties"
        );
        assert_eq!(
            api_code(sock_c.confirm_privilege(&change, None)),
            "forbidden"
        );
        // A second administrator confirms, with a fresh second factor: now it takes effect.
        let code = h.fresh_code("adam");
        let confirmed = adam_c.confirm_privilege(&change, Some(&code)).unwrap();
        assert_eq!(confirmed.state, "confirmed");
        assert_eq!(confirmed.decided_by.as_deref(), Some("adam"));
        let sock_c = h.login("sock");
        assert_eq!(
            sock_c.approve(&own.id, None).unwrap().state,
            RequestState::Approved
        );

        // Rejecting an unconfirmed change takes it back.
        let carol_change = open.iter().find(|p| p.user == "carol").unwrap().id.clone();
        adam_c
            .reject_privilege(&carol_change, "carol moved to another team")
            .unwrap();
        let carol = c.admin.users().unwrap();
        let carol = carol.iter().find(|u| u.name == "carol").unwrap();
        assert!(!carol.groups.contains(&"approvers".to_owned()), "{carol:?}");

        // Every step is in the trail.
        assert_eq!(events(&c.admin, "privilege.confirmed").len(), 1);
        assert_eq!(events(&c.admin, "privilege.rejected").len(), 1);
        assert!(events(&c.admin, "privilege.requested").len() >= 4);
    }
);

both_engines!(
    reserved_names_are_refused_and_store_nothing,
    |mut h: Harness| {
        let c = h.cast();
        let before = c.admin.users().unwrap().len();
        for name in [
            "root", "admin", "daemon", "nobody", "ubuntu", "_apt", "all", "brevet",
        ] {
            let e = c.admin.add_user(name, &[]).unwrap_err();
            assert_eq!(e.api_code(), Some("invalid_input"), "{name}: {e}");
            assert!(e.to_string().contains("reserved"), "{name}: {e}");
        }
        assert_eq!(c.admin.users().unwrap().len(), before);
        for name in ["localhost", "all", "root"] {
            let e = c
                .admin
                .add_device(&AddDevice {
                    name: name.into(),
                    tags: Default::default(),
                    groups: vec![],
                    os: None,
                })
                .unwrap_err();
            assert!(e.to_string().contains("reserved"), "{name}: {e}");
        }
        assert_eq!(c.admin.devices().unwrap().len(), 1);
    }
);
