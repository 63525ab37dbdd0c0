//! The request → decision → approval → signed grant → end cycle, over real HTTPS, on SQLite and
//! PostgreSQL.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use brevet_proto::api::{GrantState, RequestState};
use brevet_proto::grant::public_key_from_b64;
use common::*;

both_engines!(full_cycle, |mut h: Harness| {
    let c = h.cast();
    let r = pending(&c.alice, "pkg-update");
    assert_eq!(r.user, "alice");
    assert_eq!(r.device, "web-01");
    assert_eq!(r.approvals_required, 1);
    assert!(r.grant_id.is_none());
    assert_eq!(c.bob.requests(true).unwrap().len(), 1);

    let approved = c.bob.approve(&r.id, None).expect("approve");
    assert_eq!(approved.state, RequestState::Approved);
    let grant_id = approved.grant_id.clone().expect("grant id");
    assert_eq!(approved.approvals.len(), 1);
    assert_eq!(approved.approvals[0].approver, "bob");
    assert!(c.bob.requests(true).unwrap().is_empty());

    let g = c.alice.grant(&grant_id).unwrap();
    assert_eq!(g.state, GrantState::Issued);
    assert_eq!(g.request_id, r.id);
    assert_eq!(
        g.commands,
        ["/usr/bin/apt-get update", "/usr/bin/apt-get upgrade"]
    );
    assert_eq!(g.approvers, ["bob"]);
    // The clock started at approval: a 30 minute window from then.
    let nb = brevet_proto::timefmt::parse_rfc3339("nb", &g.not_before).unwrap();
    let na = brevet_proto::timefmt::parse_rfc3339("na", &g.not_after).unwrap();
    assert_eq!(na - nb, 1800);
    assert!((nb - h.now()).abs() <= 2);

    // The signature verifies with the server's published key, and the document says what the
    // API says.
    let key = public_key_from_b64(&c.alice.info().unwrap().grant_public_key).unwrap();
    let doc = g.signed.verify(&key).expect("signature verifies");
    assert_eq!(doc.grant_id, grant_id);
    assert_eq!(doc.user, "alice");
    assert_eq!(doc.device, "web-01");
    assert_eq!(doc.ticket.as_deref(), Some("CHG-1234"));

    let active = c.alice.grants(true, Some("web-01")).unwrap();
    assert_eq!(active.len(), 1);
    assert!(c.alice.grants(true, Some("db-01")).unwrap().is_empty());

    // Only the holder may say done; then it is over and cannot end twice.
    assert_eq!(api_code(c.bob.done(&grant_id)), "forbidden");
    let done = c.alice.done(&grant_id).unwrap();
    assert_eq!(done.state, GrantState::Completed);
    assert_eq!(done.ended_by.as_deref(), Some("alice"));
    assert!(c.alice.grants(true, None).unwrap().is_empty());
    assert_eq!(
        api_code(c.alice.revoke(&grant_id, "again please")),
        "conflict"
    );

    // Every step is in the hash-chained trail, and the chain verifies from genesis.
    let events = audit_chain(&c.admin);
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.event.subject == r.id || e.event.subject == grant_id)
        .map(|e| (e.event.kind.as_str(), e.event.actor.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("request.created", "alice"),
            ("request.approval", "bob"),
            ("grant.issued", "brevetd"),
            ("request.approved", "bob"),
            ("grant.completed", "alice"),
        ]
    );
});

/// The whole audit trail as the API serves it, verified.
fn audit_chain(admin: &brevet_cli::client::Client) -> Vec<brevet_audit::Sealed> {
    let sealed: Vec<brevet_audit::Sealed> = admin
        .audit(0, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| brevet_audit::Sealed {
            event: brevet_audit::Event {
                seq: e.seq,
                at: e.at,
                kind: e.kind,
                actor: e.actor,
                subject: e.subject,
                data: e.data,
            },
            leaf_hash: e.leaf_hash,
            chain_hash: e.chain_hash,
        })
        .collect();
    brevet_audit::verify(&brevet_audit::Head::GENESIS, &sealed).expect("audit chain verifies");
    let mut tampered = sealed.clone();
    tampered[1].event.actor = "mallory".into();
    assert_eq!(
        brevet_audit::verify(&brevet_audit::Head::GENESIS, &tampered)
            .unwrap_err()
            .seq,
        2
    );
    sealed
}

both_engines!(revoke_by_approver_and_not_by_others, |mut h: Harness| {
    let c = h.cast();
    h.add_user(&c.admin, "dave", &["operators"]);
    let dave = h.login("dave");
    let r = pending(&c.alice, "pkg-update");
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    // Dave may not even see the grant.
    assert_eq!(api_code(dave.revoke(&g, "not mine to revoke")), "not_found");
    assert_eq!(api_code(c.carol.revoke(&g, ".")), "invalid_input");
    let revoked = c.carol.revoke(&g, "change window closed").unwrap();
    assert_eq!(revoked.state, GrantState::Revoked);
    assert_eq!(revoked.end_reason.as_deref(), Some("change window closed"));
});

both_engines!(separation_of_duties, |mut h: Harness| {
    let c = h.cast();
    // Erin may both request and approve, but never her own request.
    h.add_user(&c.admin, "erin", &["operators", "approvers"]);
    let erin = h.login("erin");
    let r = pending(&erin, "pkg-update");
    assert_eq!(api_code(erin.approve(&r.id, None)), "separation_of_duties");
    assert_eq!(
        api_code(erin.deny(&r.id, "changed my mind", None)),
        "separation_of_duties"
    );
    // Alice is no approver at all.
    let r2 = pending(&erin, "pkg-update");
    // Alice is not an approver: she cannot even see erin's request.
    assert_eq!(api_code(c.alice.approve(&r2.id, None)), "not_found");
    assert_eq!(erin.request(&r.id).unwrap().state, RequestState::Pending);
    assert!(c.admin.grants(false, None).unwrap().is_empty());
});

both_engines!(two_approvers_each_counted_once, |mut h: Harness| {
    let c = h.cast();
    let r = pending(&c.alice, "db-admin");
    assert_eq!(r.approvals_required, 2);
    let after_bob = c.bob.approve(&r.id, None).unwrap();
    assert_eq!(after_bob.state, RequestState::Pending);
    assert_eq!(api_code(c.bob.approve(&r.id, None)), "conflict");
    assert_eq!(c.bob.request(&r.id).unwrap().approvals.len(), 1);
    let done = c.carol.approve(&r.id, None).unwrap();
    assert_eq!(done.state, RequestState::Approved);
    let g = c.alice.grant(done.grant_id.as_deref().unwrap()).unwrap();
    assert_eq!(g.approvers, ["bob", "carol"]);
});

both_engines!(concurrent_approvals_make_one_grant, |mut h: Harness| {
    let c = h.cast();
    let mut approvers = vec![c.bob.clone(), c.carol.clone()];
    for name in ["frank", "grace", "heidi", "ivan"] {
        h.add_user(&c.admin, name, &["approvers"]);
        approvers.push(h.login(name));
    }
    for round in 0..3 {
        let r = pending(&c.alice, "pkg-update");
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = approvers
                .iter()
                .map(|a| s.spawn(|| a.approve(&r.id, None)))
                .collect();
            handles.into_iter().map(|j| j.join().unwrap()).collect()
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(
            ok, 1,
            "round {round}: exactly one approval wins: {results:?}"
        );
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(e.api_code(), Some("conflict"), "{e}");
        }
        let grants: Vec<_> = c
            .admin
            .grants(false, None)
            .unwrap()
            .into_iter()
            .filter(|g| g.request_id == r.id)
            .collect();
        assert_eq!(grants.len(), 1, "round {round}");
    }
});

both_engines!(no_approval_after_deny_cancel_or_expiry, |mut h: Harness| {
    let c = h.cast();
    let denied = pending(&c.alice, "pkg-update");
    let d = c
        .bob
        .deny(&denied.id, "not in the change window", None)
        .unwrap();
    assert_eq!(d.state, RequestState::Denied);
    assert_eq!(api_code(c.carol.approve(&denied.id, None)), "conflict");

    let cancelled = pending(&c.alice, "pkg-update");
    assert_eq!(api_code(c.bob.cancel(&cancelled.id)), "forbidden");
    assert_eq!(
        c.alice.cancel(&cancelled.id).unwrap().state,
        RequestState::Cancelled
    );
    assert_eq!(api_code(c.bob.approve(&cancelled.id, None)), "conflict");

    let stale = pending(&c.alice, "pkg-update");
    h.advance(25 * 3600);
    // Sessions are 8 h: everyone logs in again, with a fresh second factor.
    let bob = h.login("bob");
    let alice = h.login("alice");
    assert_eq!(api_code(bob.approve(&stale.id, None)), "conflict");
    assert_eq!(
        alice.request(&stale.id).unwrap().state,
        RequestState::Expired
    );
    assert!(alice.grants(false, None).unwrap().is_empty());
});

both_engines!(pending_requests_expire_by_themselves, |mut h: Harness| {
    let c = h.cast();
    let r = pending(&c.alice, "pkg-update");
    h.advance(24 * 3600 + 1);
    let admin = h.login("brevet-admin");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let state = admin.request(&r.id).unwrap().state;
        if state == RequestState::Expired {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {state}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
});

both_engines!(grants_expire_at_not_after, |mut h: Harness| {
    let c = h.cast();
    let r = c.alice.create_request(&ask("short", "2s")).unwrap();
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let na =
        brevet_proto::timefmt::parse_rfc3339("na", &c.alice.grant(&g).unwrap().not_after).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let grant = c.alice.grant(&g).unwrap();
        if grant.state == GrantState::Expired {
            let ended =
                brevet_proto::timefmt::parse_rfc3339("ended", grant.ended_at.as_deref().unwrap())
                    .unwrap();
            assert!(ended >= na, "ended {ended} before not_after {na}");
            assert!(
                ended <= na + 1,
                "ended {ended} more than 1 s after not_after {na}"
            );
            break;
        }
        assert!(
            h.now() <= na + 1,
            "grant still {} at {} (not_after {na})",
            grant.state,
            h.now()
        );
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        c.alice.get_text("/metrics").unwrap_err().api_code(),
        Some("forbidden")
    );
    let metrics = c.admin.get_text("/metrics").unwrap();
    assert!(
        metrics.contains("brevet_expiry_lag_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("brevet_requests_total{outcome=\"approved\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("brevet_active_grants 0"), "{metrics}");
});

both_engines!(restart_with_grants_in_flight, |mut h: Harness| {
    let c = h.cast();
    let long = c.alice.create_request(&ask("pkg-update", "1h")).unwrap();
    let long_grant = c.bob.approve(&long.id, None).unwrap().grant_id.unwrap();
    let short = c.alice.create_request(&ask("short", "10m")).unwrap();
    let short_grant = c.bob.approve(&short.id, None).unwrap().grant_id.unwrap();
    let waiting = pending(&c.alice, "pkg-update");

    h.restart();
    let admin = h.login("brevet-admin");
    let live: Vec<String> = admin
        .grants(true, None)
        .unwrap()
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(live.len(), 2, "nothing lost across the restart");
    assert!(live.contains(&long_grant) && live.contains(&short_grant));
    assert_eq!(
        admin.request(&waiting.id).unwrap().state,
        RequestState::Pending
    );

    // Time passes while the server is down: the short grant is overdue when it comes back.
    h.stop();
    h.advance(11 * 60);
    h.restart_after_stop();
    let admin = h.login("brevet-admin");
    wait_for(|| admin.grant(&short_grant).unwrap().state == GrantState::Expired);
    assert_eq!(admin.grant(&long_grant).unwrap().state, GrantState::Issued);
    // Three server lives, one unbroken chain.
    let events = audit_chain(&admin);
    assert!(
        events
            .iter()
            .any(|e| e.event.kind == "grant.expired" && e.event.subject == short_grant)
    );
});

fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met in 5 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

both_engines!(requested_start_sets_the_window, |mut h: Harness| {
    let c = h.cast();
    let start = h.now() + 3600;
    let mut body = ask("pkg-update", "30m");
    body.start = Some(brevet_proto::timefmt::rfc3339(start));
    let r = c.alice.create_request(&body).unwrap();
    assert_eq!(
        r.start.as_deref(),
        Some(brevet_proto::timefmt::rfc3339(start).as_str())
    );
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let g = c.alice.grant(&g).unwrap();
    assert_eq!(g.not_before, brevet_proto::timefmt::rfc3339(start));
    assert_eq!(g.not_after, brevet_proto::timefmt::rfc3339(start + 1800));
    // Approved after the requested start: the clock starts at approval instead.
    let mut late = ask("pkg-update", "30m");
    late.start = Some(brevet_proto::timefmt::rfc3339(h.now() + 60));
    let r = c.alice.create_request(&late).unwrap();
    h.advance(120);
    let bob = h.login("bob");
    let g = bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let nb =
        brevet_proto::timefmt::parse_rfc3339("nb", &bob.grant(&g).unwrap().not_before).unwrap();
    assert!((nb - h.now()).abs() <= 2, "window starts at approval");
});
