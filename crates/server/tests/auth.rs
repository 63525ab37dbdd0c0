//! Login, sessions and step-up MFA over real HTTPS.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;
#[path = "support/raw_tls.rs"]
mod raw_tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use brevet_proto::api::RequestState;
use common::*;

/// A client at another loopback address, sending raw HTTPS logins.
struct Raw {
    source: IpAddr,
    server: SocketAddr,
    config: Arc<rustls::ClientConfig>,
}

impl Raw {
    fn new(h: &Harness, source: &str) -> Raw {
        Raw {
            source: source.parse().unwrap(),
            server: h.server.as_ref().unwrap().addr,
            config: raw_tls::client_config(&h.ca_pem),
        }
    }

    /// POST /v1/login with a password and code: (status, body).
    fn login(&self, h: &Harness, user: &str, password: &str, totp: &str) -> (u16, String) {
        let body = serde_json::json!({ "user": user, "password": password, "totp": totp });
        h.rt.block_on(raw_tls::request_from(
            &self.config,
            self.source,
            self.server,
            "POST",
            "/v1/login",
            &body.to_string(),
        ))
        .expect("login request")
    }
}

/// The `code` of an API error body ("" when there is none).
fn code_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

both_engines!(login_needs_password_and_unused_totp, |mut h: Harness| {
    let c = h.cast();
    drop(c);
    let anon = h.anonymous();
    let code = h.fresh_code("alice");
    assert_eq!(
        api_code(anon.login("alice", "wrong-password", &code)),
        "unauthenticated"
    );
    assert_eq!(
        api_code(anon.login("nobody", "x", &code)),
        "unauthenticated"
    );
    assert_eq!(api_code(anon.login("alice", "x", "12345")), "invalid_input");
    // The right password with a code that was already used (by `cast`'s login) is refused.
    let used = h.old_code("alice", 0);
    let pw = h.password("alice");
    let first = anon.login("alice", &pw, &h.fresh_code("alice"));
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(api_code(anon.login("alice", &pw, &used)), "unauthenticated");
    // A code from ten minutes ago is refused.
    assert_eq!(
        api_code(anon.login("alice", &pw, &h.old_code("alice", 600))),
        "unauthenticated"
    );
});

both_engines!(step_up_for_approval, |mut h: Harness| {
    let c = h.cast();
    let r = pending(&c.alice, "pkg-update");
    // Six minutes after login the second factor is stale.
    h.advance(6 * 60);
    assert_eq!(api_code(c.bob.approve(&r.id, None)), "mfa_required");
    assert_eq!(
        api_code(c.bob.approve(&r.id, Some("000000"))),
        "mfa_required"
    );
    assert_eq!(
        api_code(c.bob.approve(&r.id, Some(&h.old_code("bob", 600)))),
        "mfa_required"
    );
    assert_eq!(
        api_code(c.bob.approve(&r.id, Some("12ab56"))),
        "invalid_input"
    );
    assert_eq!(c.bob.request(&r.id).unwrap().state, RequestState::Pending);
    // A fresh code works, and refreshes the session's second factor.
    let code = h.fresh_code("bob");
    assert_eq!(
        c.bob.approve(&r.id, Some(&code)).unwrap().state,
        RequestState::Approved
    );
    // The same code cannot be used again, even by another session of the same person.
    let r2 = pending(&c.alice, "pkg-update");
    h.advance(6 * 60);
    assert_eq!(api_code(c.bob.approve(&r2.id, Some(&code))), "mfa_required");
    // Denying needs the same.
    assert_eq!(
        api_code(c.bob.deny(&r2.id, "outside the window", None)),
        "mfa_required"
    );
    let d = c
        .bob
        .deny(&r2.id, "outside the window", Some(&h.fresh_code("bob")))
        .unwrap();
    assert_eq!(d.state, RequestState::Denied);
});

both_engines!(sessions_expire_and_end, |mut h: Harness| {
    let c = h.cast();
    assert_eq!(c.alice.whoami().unwrap().user, "alice");
    c.alice.logout().unwrap();
    assert_eq!(api_code(c.alice.whoami()), "unauthenticated");
    assert_eq!(c.bob.whoami().unwrap().groups, ["approvers"]);
    h.advance(8 * 3600 + 1);
    assert_eq!(api_code(c.bob.whoami()), "unauthenticated");
    let bad = h.anonymous().with_token("bvs_forged".into());
    assert_eq!(api_code(bad.whoami()), "unauthenticated");
});

both_engines!(disabled_users_lose_their_sessions, |mut h: Harness| {
    let c = h.cast();
    let r = pending(&c.alice, "pkg-update");
    let admin = h.login("brevet-admin");
    admin.set_user_enabled("bob", false).unwrap();
    assert_eq!(api_code(c.bob.approve(&r.id, None)), "unauthenticated");
    let anon = h.anonymous();
    let code = h.fresh_code("bob");
    assert_eq!(
        api_code(anon.login("bob", &h.password("bob"), &code)),
        "unauthenticated"
    );
    admin.set_user_enabled("bob", true).unwrap();
    let bob = h.login("bob");
    assert_eq!(
        bob.approve(&r.id, None).unwrap().state,
        RequestState::Approved
    );
    // Only admins administer.
    assert_eq!(api_code(bob.add_user("mallory", &[])), "forbidden");
    assert_eq!(api_code(c.alice.users()), "forbidden");
    assert_eq!(
        api_code(admin.set_user_enabled("brevet-admin", false)),
        "invalid_input"
    );
});

both_engines!(
    failed_logins_slow_the_source_and_lock_nobody,
    |mut h: Harness| {
        // An outsider at 127.0.0.2 tries twelve wrong passwords for alice back to back (the old
        // rule locked the account after ten): five are free, the sixth starts a wait, and the rest
        // are refused as `throttled` (429) before anything is checked.
        let c = h.cast();
        // Time moves only when the test says: the waits are seconds, a loaded machine is slow.
        h.clock.freeze();
        let pw = h.password("alice");
        let attacker = Raw::new(&h, "127.0.0.2");
        let mut seen = Vec::new();
        for _ in 0..12 {
            let (status, body) = attacker.login(&h, "alice", "wrong", &h.old_code("alice", 0));
            seen.push((status, code_of(&body)));
        }
        let expected: Vec<(u16, String)> = (0..12)
            .map(|i| match i {
                0..6 => (401, "unauthenticated".to_owned()),
                _ => (429, "throttled".to_owned()),
            })
            .collect();
        assert_eq!(seen, expected);
        // Alice, at 127.0.0.1, is not slowed at all.
        let code = h.fresh_code("alice");
        let alice = h.anonymous().login("alice", &pw, &code);
        assert!(alice.is_ok(), "alice is locked out: {alice:?}");
        // The waits grow: 1 s after the sixth failure, 2 s after the seventh, 4 s after the eighth.
        let current = h.now();
        h.clock.advance(1);
        assert_eq!(attacker.login(&h, "alice", "wrong", "000000").0, 401);
        assert_eq!(attacker.login(&h, "alice", &pw, "000000").0, 429);
        h.clock.advance(2);
        assert_eq!(attacker.login(&h, "alice", "wrong", "000000").0, 401);
        h.clock.advance(2);
        let (status, body) = attacker.login(&h, "alice", &pw, "000000");
        assert_eq!(
            (status, code_of(&body)),
            (429, "throttled".into()),
            "{body}"
        );
        assert!(body.contains("try again in"), "{body}");
        assert!(h.now() >= current + 5);
        let throttled = events(&c.admin, "login.throttled");
        assert_eq!(throttled.len(), 1, "one event when the waits start");
        assert_eq!(throttled[0].subject, "alice");
        assert_eq!(throttled[0].data["source"], "127.0.0.2");
        assert!(events(&c.admin, "login.locked").is_empty());
        let failed = events(&c.admin, "login.failed");
        assert_eq!(
            failed.len(),
            8,
            "throttled attempts are not checked, so not audited"
        );
        assert!(failed.iter().all(|e| e.data["source"] == "127.0.0.2"));

        // An unknown name is treated the same, so the answer does not tell which accounts exist.
        let nobody = Raw::new(&h, "127.0.0.3");
        for _ in 0..6 {
            let (status, _) = nobody.login(&h, "nobody", "wrong", &h.old_code("alice", 0));
            assert_eq!(status, 401);
        }
        let (status, body) = nobody.login(&h, "nobody", "wrong", &h.old_code("alice", 0));
        assert_eq!((status, code_of(&body)), (429, "throttled".into()));

        // `brevet user enable` clears alice's throttling at once.
        c.admin.set_user_enabled("alice", true).unwrap();
        let code = h.fresh_code("alice");
        let (status, body) = attacker.login(&h, "alice", &pw, &code);
        assert_eq!(status, 200, "{body}");
    }
);

both_engines!(failed_logins_never_block_step_up, |mut h: Harness| {
    // An outsider's failures at bob's password do not stop bob, signed in, from approving with
    // a fresh code (the old lock refused his step-up for 15 minutes).
    let c = h.cast();
    h.clock.freeze();
    let r = pending(&c.alice, "pkg-update");
    let attacker = Raw::new(&h, "127.0.0.4");
    for _ in 0..12 {
        attacker.login(&h, "bob", "wrong", &h.old_code("bob", 0));
    }
    let code = h.fresh_code("bob");
    let approved = c.bob.approve(&r.id, Some(&code));
    assert_eq!(approved.expect("step-up").state, RequestState::Approved);
});

both_engines!(
    wrong_step_up_codes_slow_that_session_only,
    |mut h: Harness| {
        let c = h.cast();
        h.clock.freeze();
        h.clock.freeze();
        let r = pending(&c.alice, "pkg-update");
        h.advance(6 * 60);
        for _ in 0..4 {
            let stale = h.old_code("bob", 600);
            assert_eq!(api_code(c.bob.approve(&r.id, Some(&stale))), "mfa_required");
        }
        // Past three free wrong codes, the session waits, even with the right code.
        let code = h.fresh_code("bob");
        assert_eq!(api_code(c.bob.approve(&r.id, Some(&code))), "throttled");
        let waits = events(&c.admin, "mfa.throttled");
        assert_eq!(waits.len(), 1);
        assert_eq!(waits[0].subject, "bob");
        // Another session of bob is not slowed, and bob can log in.
        let bob2 = h.login("bob");
        let code = h.fresh_code("bob");
        assert_eq!(
            bob2.approve(&r.id, Some(&code))
                .expect("other session")
                .state,
            RequestState::Approved
        );
        // The throttled session waits its second, then works again.
        h.advance(2);
        let r2 = pending(&c.alice, "pkg-update");
        let code = h.fresh_code("bob");
        assert!(c.bob.approve(&r2.id, Some(&code)).is_ok());
    }
);

both_engines!(
    overlong_passwords_are_refused_before_hashing,
    |mut h: Harness| {
        let c = h.cast();
        drop(c);
        let long = "x".repeat(1025);
        let code = h.fresh_code("alice");
        let e = h.anonymous().login("alice", &long, &code).unwrap_err();
        assert_eq!(e.api_code(), Some("invalid_input"), "{e}");
        assert!(e.to_string().contains("1024 bytes"), "{e}");
        assert!(!e.to_string().contains("xxxx"), "{e}");
    }
);

both_engines!(totp_secrets_are_sealed_at_rest, |mut h: Harness| {
    let c = h.cast();
    let store = h.server.as_ref().unwrap().app.store.clone();
    let users = h.rt.block_on(store.users()).unwrap();
    assert!(users.len() >= 3);
    for u in &users {
        assert!(
            u.totp_secret.starts_with("v1:"),
            "{}: {}",
            u.name,
            u.totp_secret
        );
        assert!(!u.totp_secret.contains(&h.totp_base32(&u.name)[..16]));
    }
    drop(c);

    // A secret stored plain (by an older version) is sealed at the next start, and works.
    let plain = h.totp_base32("alice");
    h.sql(&format!(
        "UPDATE users SET totp_secret = '{plain}' WHERE name = 'alice'"
    ));
    h.restart();
    let store = h.server.as_ref().unwrap().app.store.clone();
    let alice = h.rt.block_on(store.user("alice")).unwrap().unwrap();
    assert!(alice.totp_secret.starts_with("v1:"));
    h.login("alice");

    // A sealed secret moved to another account does not open there: that login fails.
    h.sql(
        "UPDATE users SET totp_secret = (SELECT totp_secret FROM users WHERE name = 'alice') \
         WHERE name = 'bob'",
    );
    let anon = h.anonymous();
    let code = h.fresh_code("alice");
    assert_eq!(
        api_code(anon.login("bob", &h.password("bob"), &code)),
        "internal"
    );

    // Without totp.key the server refuses to start and says why.
    h.stop();
    std::fs::remove_file(h.data().totp_key()).unwrap();
    let err =
        h.rt.block_on(brevet_server::app::App::open(
            &h.data(),
            h.db_url().as_deref(),
            h.clock.clone(),
        ))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("totp.key") && err.contains("restore"), "{err}");
});
