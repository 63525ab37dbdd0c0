//! The device side over real mutual TLS, on SQLite and PostgreSQL: enrollment with one-time
//! tokens, the long-poll that an approval wakes, acknowledgements, the unconfirmed-removal alert,
//! disabling, certificate renewal, and reports.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use std::time::{Duration, Instant};

use brevet_proto::agent::{Ack, AckAction, DeviceReport, Finding, Severity};
use brevet_proto::api::{AddDevice, GrantState};
use brevet_proto::grant::public_key_from_b64;
use brevet_proto::timefmt::{parse_rfc3339, rfc3339};
use common::device::TestDevice;
use common::*;

fn ack(grant_id: &str, action: AckAction, at: i64) -> Ack {
    Ack {
        grant_id: grant_id.to_owned(),
        action,
        at: rfc3339(at),
        reason: None,
        detail: serde_json::json!({ "files": ["/etc/sudoers.d/brevet_x"] }),
    }
}

fn add_device(admin: &brevet_cli::client::Client, name: &str) {
    admin
        .add_device(&AddDevice {
            name: name.into(),
            tags: Default::default(),
            groups: vec![],
            os: None,
        })
        .expect("device");
}

/// Starts a long-poll in a thread; returns when it answered and what.
fn poll_in_thread(
    d: &TestDevice,
    cursor: &str,
    wait: u64,
) -> std::thread::JoinHandle<(
    Instant,
    Result<brevet_proto::agent::DeviceGrants, common::device::DevError>,
)> {
    let (d, cursor) = (d.clone(), cursor.to_owned());
    let h = std::thread::spawn(move || {
        let r = d.poll(Some(&cursor), wait);
        (Instant::now(), r)
    });
    // Let the poll reach the server and start waiting.
    std::thread::sleep(Duration::from_millis(300));
    h
}

both_engines!(enrollment_with_one_time_tokens, |mut h: Harness| {
    let c = h.cast();
    assert_eq!(api_code(c.alice.enroll_token("web-01")), "forbidden");
    assert_eq!(api_code(c.admin.enroll_token("db-99")), "not_found");
    let token = c.admin.enroll_token("web-01").unwrap();
    assert!(token.token.starts_with("bve_"), "{}", token.token);
    assert_eq!(token.device, "web-01");
    let expires = parse_rfc3339("expires_at", &token.expires_at).unwrap();
    assert!((expires - h.now() - 3600).abs() <= 2);

    // A key that is not Ed25519 is refused before the token is spent.
    let mut d = h.device();
    let mut bad = d.clone();
    bad.key.spki_b64 = data_encoding::BASE64.encode(&[1u8; 44]);
    assert_eq!(bad.enroll(&token.token).unwrap_err().code, "invalid_input");

    let enrolled = d.enroll(&token.token).expect("enroll");
    assert_eq!(enrolled.device, "web-01");
    assert_eq!(enrolled.ca_pem, h.ca_pem);
    assert_eq!(
        enrolled.grant_public_key,
        c.alice.info().unwrap().grant_public_key
    );
    let not_after = parse_rfc3339("cert_not_after", &enrolled.cert_not_after).unwrap();
    assert!((not_after - h.now() - 24 * 3600).abs() <= 2);
    let server_time = parse_rfc3339("server_time", &enrolled.server_time).unwrap();
    assert!((server_time - h.now()).abs() <= 2);

    // The certificate works for the device endpoints.
    let first = d.poll(None, 0).expect("poll with the client certificate");
    assert!(first.grants.is_empty());
    assert!(first.cursor.contains(':'), "{}", first.cursor);

    // The token is spent.
    let mut other = h.device();
    let e = other.enroll(&token.token).unwrap_err();
    assert_eq!(
        (e.status, e.code.as_str()),
        (401, "unauthenticated"),
        "{e:?}"
    );
    assert!(other.enroll("bve_nonsense").is_err());

    // Two enrollments racing with one token: exactly one wins.
    let token = c.admin.enroll_token("web-01").unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let mut d = h.device();
                let t = token.token.clone();
                s.spawn(move || d.enroll(&t).map(drop))
            })
            .collect();
        handles.into_iter().map(|j| j.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    // The winner's certificate replaced the first one, which was still valid: an alert, and
    // the first device is told it was superseded (its agent removes what it holds).
    let e = d.poll(None, 0).unwrap_err();
    assert_eq!(
        (e.status, e.code.as_str()),
        (401, "device_superseded"),
        "{e:?}"
    );
    let alerts = events(&c.admin, "alert.device_reenrolled");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].subject, "web-01");

    // A new token replaces the device's unused ones.
    let older = c.admin.enroll_token("web-01").unwrap();
    let newer = c.admin.enroll_token("web-01").unwrap();
    let e = h.device().enroll(&older.token).unwrap_err();
    assert_eq!(e.code, "unauthenticated", "{e:?}");
    let mut fresh = h.device();
    fresh
        .enroll(&newer.token)
        .expect("the newest token enrolls");

    // Without a client certificate the device endpoints answer 401, session or not.
    for client in [h.anonymous(), c.admin.clone()] {
        let e = client.get_text("/v1/device/grants").unwrap_err();
        assert_eq!(e.api_code(), Some("unauthenticated"), "{e}");
    }

    // A token left unused for more than an hour is refused.
    let late = c.admin.enroll_token("web-01").unwrap();
    h.advance(61 * 60);
    let e = h.device().enroll(&late.token).unwrap_err();
    assert_eq!(e.code, "unauthenticated", "{e:?}");

    let admin = &c.admin;
    assert_eq!(events(admin, "device.enroll_token_created").len(), 5);
    assert_eq!(events(admin, "device.enrolled").len(), 3);
    let refused = events(admin, "device.enroll_refused");
    assert_eq!(
        refused.len(),
        1 + 3 + 1,
        "used once, three race losers, expired once"
    );
    assert!(refused.iter().all(|e| e.subject == "web-01"));
    let text = admin.get_text("/metrics").unwrap();
    assert!(text.contains("brevet_device_enrollments_total 3"), "{text}");
});

both_engines!(
    approval_wakes_the_long_poll_and_acks_count,
    |mut h: Harness| {
        let c = h.cast();
        let d = h.enrolled(&c.admin, "web-01");
        let first = d.poll(None, 0).unwrap();
        let key = public_key_from_b64(&c.alice.info().unwrap().grant_public_key).unwrap();

        // An approval wakes a waiting poll within a second.
        let r = pending(&c.alice, "pkg-update");
        let poll = poll_in_thread(&d, &first.cursor, 20);
        let approving = Instant::now();
        let grant_id = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
        let (answered, got) = poll.join().unwrap();
        let got = got.expect("poll");
        assert!(answered > approving, "the poll waited for the approval");
        assert!(
            answered - approving < Duration::from_secs(1),
            "woken after {:?}",
            answered - approving
        );
        assert_eq!(got.grants.len(), 1);
        assert_eq!(got.grants[0].id, grant_id);
        assert_eq!(got.grants[0].state, GrantState::Issued);
        let doc = got.grants[0]
            .signed
            .verify(&key)
            .expect("verifies with the pinned key");
        assert_eq!(
            (doc.device.as_str(), doc.user.as_str()),
            ("web-01", "alice")
        );
        assert!((parse_rfc3339("server_time", &got.server_time).unwrap() - h.now()).abs() <= 2);
        assert_ne!(got.cursor, first.cursor);

        // Nothing changed: a poll with the new cursor waits out its time and says the same.
        let start = Instant::now();
        let same = d.poll(Some(&got.cursor), 1).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(900));
        assert_eq!(same.grants, got.grants);
        assert_eq!(same.cursor, got.cursor);
        // A cursor from another server process gets an answer at once.
        let start = Instant::now();
        d.poll(Some("otherepoch:0"), 20).unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));

        // Applied: the grant becomes active; the same ack again is a duplicate.
        let applied = d
            .acks(&[ack(&grant_id, AckAction::Applied, h.now())])
            .unwrap();
        assert_eq!((applied.recorded, applied.duplicates), (1, 0));
        assert_eq!(c.alice.grant(&grant_id).unwrap().state, GrantState::Active);
        let again = d
            .acks(&[ack(&grant_id, AckAction::Applied, h.now())])
            .unwrap();
        assert_eq!((again.recorded, again.duplicates), (0, 1));

        // Revoked: the waiting poll wakes with no grant.
        let poll = poll_in_thread(&d, &same.cursor, 20);
        let revoking = Instant::now();
        c.alice.revoke(&grant_id, "finished early").unwrap();
        let (answered, after) = poll.join().unwrap();
        assert!(answered - revoking < Duration::from_secs(1));
        assert!(after.unwrap().grants.is_empty());

        // Removed: the server records the confirmation once.
        let removed = Ack {
            reason: Some("revoked".into()),
            ..ack(&grant_id, AckAction::Removed, h.now())
        };
        d.acks(std::slice::from_ref(&removed)).unwrap();
        let confirmed = c.alice.grant(&grant_id).unwrap().revocation_confirmed_at;
        assert!(confirmed.is_some());
        assert_eq!(d.acks(&[removed]).unwrap().duplicates, 1);
        assert_eq!(
            c.alice.grant(&grant_id).unwrap().revocation_confirmed_at,
            confirmed
        );

        // Another device may not acknowledge this device's grant; nothing in the batch is kept.
        add_device(&c.admin, "db-01");
        let other = h.enrolled(&c.admin, "db-01");
        let e = other
            .acks(&[ack(&grant_id, AckAction::Applied, h.now())])
            .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (403, "forbidden"));
        // A refusal is a report and is recorded even for a grant this server never issued.
        let forged = "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";
        let rejected = Ack {
            reason: Some("signature does not verify".into()),
            ..ack(forged, AckAction::Rejected, h.now())
        };
        assert_eq!(d.acks(std::slice::from_ref(&rejected)).unwrap().recorded, 1);
        assert_eq!(d.acks(&[rejected]).unwrap().duplicates, 1);
        let bad = Ack {
            at: "yesterday".into(),
            ..ack(&grant_id, AckAction::Applied, h.now())
        };
        assert_eq!(d.acks(&[bad]).unwrap_err().code, "invalid_input");

        let admin = &c.admin;
        let kinds = |kind| events(admin, kind);
        assert_eq!(kinds("grant.delivered").len(), 1);
        assert_eq!(kinds("grant.applied").len(), 1);
        assert_eq!(kinds("grant.removal_confirmed").len(), 1);
        let rej = kinds("grant.rejected_by_device");
        assert_eq!(rej.len(), 1);
        assert_eq!(rej[0].subject, forged);
        assert_eq!(rej[0].actor, "device:web-01");
        assert_eq!(rej[0].data["reason"], "signature does not verify");
        let text = admin.get_text("/metrics").unwrap();
        assert!(
            text.contains("brevet_grants_rejected_by_device_total 1"),
            "{text}"
        );

        // Confirmed in time: no alert, however long we wait.
        h.advance(120);
        std::thread::sleep(Duration::from_millis(600));
        assert!(events(&c.admin, "alert.revocation_unconfirmed").is_empty());
    }
);

both_engines!(unconfirmed_removal_raises_one_alert, |mut h: Harness| {
    let c = h.cast();
    let d = h.enrolled(&c.admin, "web-01");
    let delivered = c.alice.create_request(&ask("pkg-update", "30m")).unwrap();
    let delivered = c
        .bob
        .approve(&delivered.id, None)
        .unwrap()
        .grant_id
        .unwrap();
    let never = c.alice.create_request(&ask("pkg-update", "30m")).unwrap();
    let never_id = c.bob.approve(&never.id, None).unwrap().grant_id.unwrap();
    // Only the first grant reaches the device: the second is ended before the next poll.
    c.alice.done(&never_id).unwrap();
    let got = d.poll(None, 0).unwrap();
    assert_eq!(got.grants.len(), 1);
    assert_eq!(got.grants[0].id, delivered);
    c.alice.done(&delivered).unwrap();

    // Within 60 s of the end nothing is raised.
    h.advance(30);
    std::thread::sleep(Duration::from_millis(600));
    let admin = &c.admin;
    assert!(events(admin, "alert.revocation_unconfirmed").is_empty());

    h.advance(31);
    wait_until("the alert", || {
        !events(admin, "alert.revocation_unconfirmed").is_empty()
    });
    std::thread::sleep(Duration::from_millis(600));
    let alerts = events(admin, "alert.revocation_unconfirmed");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].subject, delivered);
    assert_eq!(alerts[0].data["device"], "web-01");
    assert_eq!(alerts[0].data["state"], "completed");
    let text = admin.get_text("/metrics").unwrap();
    assert!(
        text.contains("brevet_alerts_total{kind=\"revocation_unconfirmed\"} 1"),
        "{text}"
    );
    // A late confirmation is still recorded.
    d.acks(&[ack(&delivered, AckAction::Removed, h.now())])
        .unwrap();
    assert!(
        admin
            .grant(&delivered)
            .unwrap()
            .revocation_confirmed_at
            .is_some()
    );
});

both_engines!(a_disabled_device_is_refused_at_once, |mut h: Harness| {
    let c = h.cast();
    let d = h.enrolled(&c.admin, "web-01");
    let cursor = d.poll(None, 0).unwrap().cursor;
    assert_eq!(
        api_code(c.alice.set_device_enabled("web-01", false)),
        "forbidden"
    );
    assert_eq!(
        api_code(c.admin.set_device_enabled("db-99", false)),
        "not_found"
    );

    // A poll held open is woken and refused; so is everything after.
    let poll = poll_in_thread(&d, &cursor, 20);
    let disabling = Instant::now();
    let view = c.admin.set_device_enabled("web-01", false).unwrap();
    assert!(!view.enabled);
    let (answered, r) = poll.join().unwrap();
    assert!(answered - disabling < Duration::from_secs(1));
    let e = r.unwrap_err();
    assert_eq!(
        (e.status, e.code.as_str()),
        (403, "device_disabled"),
        "{e:?}"
    );
    assert_eq!(d.poll(None, 0).unwrap_err().code, "device_disabled");
    assert_eq!(
        d.acks(&[]).unwrap_err().code,
        "device_disabled",
        "every device endpoint checks"
    );
    assert_eq!(api_code(c.admin.enroll_token("web-01")), "conflict");

    assert!(c.admin.set_device_enabled("web-01", true).unwrap().enabled);
    assert!(d.poll(None, 0).is_ok());
    assert_eq!(events(&c.admin, "device.disabled").len(), 1);
    assert_eq!(events(&c.admin, "device.enabled").len(), 1);
});

both_engines!(renewal_replaces_the_certificate, |mut h: Harness| {
    let c = h.cast();
    let d = h.enrolled(&c.admin, "web-01");
    let (renewed, r) = d.renew().expect("renew");
    assert_ne!(Some(&r.cert_pem), d.cert_pem.as_ref());
    let not_after = parse_rfc3339("cert_not_after", &r.cert_not_after).unwrap();
    assert!((not_after - h.now() - 24 * 3600).abs() <= 2);
    assert!(renewed.poll(None, 0).is_ok());
    let e = d.poll(None, 0).unwrap_err();
    assert_eq!(
        (e.status, e.code.as_str()),
        (401, "unauthenticated"),
        "{e:?}"
    );
    assert!(
        d.renew().is_err(),
        "the old certificate cannot renew either"
    );
    let ev = events(&c.admin, "device.cert_renewed");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].actor, "device:web-01");

    // Enrolling again (a rebuilt machine) retires the renewed certificate too: its agent hears
    // `device_superseded`, while the certificate the device renewed away from stays a plain 401.
    let again = h.enrolled(&c.admin, "web-01");
    assert!(again.poll(None, 0).is_ok());
    assert_eq!(renewed.poll(None, 0).unwrap_err().code, "device_superseded");
    assert_eq!(d.poll(None, 0).unwrap_err().code, "unauthenticated");
});

fn finding(id: &str, kind: &str, severity: Severity) -> Finding {
    Finding {
        id: id.into(),
        kind: kind.into(),
        severity,
        subject: "bob".into(),
        detail: "bob is in group sudo".into(),
        remediation: "gpasswd -d bob sudo".into(),
    }
}

both_engines!(reports_become_findings, |mut h: Harness| {
    let c = h.cast();
    let d = h.enrolled(&c.admin, "web-01");
    let mut report = DeviceReport {
        agent_version: "0.1.0".into(),
        agent_time: rfc3339(h.now()),
        mode: "audit".into(),
        findings: vec![
            finding(
                "group-member:sudo:bob",
                "admin_group_member",
                Severity::High,
            ),
            finding("nopasswd:/etc/sudoers.d/x", "nopasswd", Severity::Critical),
        ],
        drift: vec![finding(
            "changed:/etc/sudoers",
            "sudoers_changed",
            Severity::Medium,
        )],
    };
    let r = d.report(&report).unwrap();
    assert_eq!((r.findings, r.drift), (2, 1));

    // The fleet's findings are an attack map: an operator may not read them.
    assert_eq!(api_code(c.alice.findings(None)), "forbidden");
    let all = c.admin.findings(None).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].device, "web-01");
    assert_eq!(all[0].findings, report.findings);
    assert_eq!(all[0].drift, report.drift);
    assert_eq!(c.admin.findings(Some("web-01")).unwrap().len(), 1);
    assert!(c.admin.findings(Some("db-01")).unwrap().is_empty());
    assert_eq!(
        h.anonymous()
            .get_text("/v1/findings")
            .unwrap_err()
            .api_code(),
        Some("unauthenticated")
    );

    // The next report replaces it; drift already reported is not announced again.
    report.findings.truncate(1);
    report.drift.push(finding(
        "member:docker:eve",
        "admin_group_member",
        Severity::High,
    ));
    d.report(&report).unwrap();
    assert_eq!(c.admin.findings(None).unwrap()[0].findings.len(), 1);
    assert_eq!(events(&c.admin, "device.report").len(), 2);
    let drift = events(&c.admin, "drift.detected");
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert_eq!(drift[1].data["id"], "member:docker:eve");
    assert_eq!(
        events(&c.admin, "device.report")[0].data["severities"]["critical"],
        1
    );

    // Hostile input is refused and changes nothing.
    for bad in [
        DeviceReport {
            mode: "chaos".into(),
            ..report.clone()
        },
        DeviceReport {
            findings: vec![finding("x\u{1b}[2J", "nopasswd", Severity::Low)],
            ..report.clone()
        },
        DeviceReport {
            agent_time: "soon".into(),
            ..report.clone()
        },
    ] {
        assert_eq!(d.report(&bad).unwrap_err().code, "invalid_input");
    }
    assert_eq!(events(&c.admin, "device.report").len(), 2);
});

#[test]
fn a_change_on_one_replica_wakes_a_poll_held_by_another() {
    let Some(mut h) = Harness::start(Db::Postgres, "replicas::postgres") else {
        return;
    };
    let c = h.cast();
    let d = h.enrolled(&c.admin, "web-01");
    let replica = h.replica().expect("a PostgreSQL harness");
    let other = d.at(&replica.url());
    let cursor = other.poll(None, 0).unwrap().cursor;

    // Approved through the first replica; the poll waiting on the second answers at once.
    let r = pending(&c.alice, "pkg-update");
    let poll = poll_in_thread(&other, &cursor, 20);
    let approving = Instant::now();
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let (answered, got) = poll.join().unwrap();
    assert!(
        answered - approving < Duration::from_secs(2),
        "woken after {:?}",
        answered - approving
    );
    assert!(got.unwrap().grants.iter().any(|x| x.id == g));

    // And a revoke through the second wakes a poll held by the first.
    let cursor = d.poll(None, 0).unwrap().cursor;
    let poll = poll_in_thread(&d, &cursor, 20);
    let anon = brevet_cli::client::Client::new(&replica.url(), &h.ca_pem, None).unwrap();
    let code = h.fresh_code("brevet-admin");
    let token = anon
        .login("brevet-admin", &h.password("brevet-admin"), &code)
        .unwrap()
        .token;
    let admin_on_replica = anon.with_token(token);
    let revoking = Instant::now();
    admin_on_replica.revoke(&g, "replica test").unwrap();
    let (answered, got) = poll.join().unwrap();
    assert!(answered - revoking < Duration::from_secs(2));
    let got = got.unwrap();
    assert!(got.grants.iter().all(|x| x.id != g || !x.state.is_live()));
    h.rt.block_on(replica.stop());
}
