//! Login, sessions and step-up MFA over real HTTPS.

mod common;

use brevet_proto::api::RequestState;
use common::*;

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

both_engines!(failed_logins_in_a_row_lock_the_account, |mut h: Harness| {
    let c = h.cast();
    let anon = h.anonymous();
    let pw = h.password("alice");
    for _ in 0..10 {
        let code = h.fresh_code("alice");
        assert_eq!(
            api_code(anon.login("alice", "wrong", &code)),
            "unauthenticated"
        );
    }
    // Locked: the right password and a fresh code are refused too, with the same answer.
    let code = h.fresh_code("alice");
    let locked = anon.login("alice", &pw, &code).unwrap_err().to_string();
    let unknown = anon.login("nobody", "x", &code).unwrap_err().to_string();
    assert_eq!(
        locked, unknown,
        "a lock does not tell that the account exists"
    );
    assert!(locked.contains("locked for 15 minutes"), "{locked}");
    let locks = events(&c.admin, "login.locked");
    assert_eq!(locks.len(), 1);
    assert_eq!(
        (locks[0].actor.as_str(), locks[0].subject.as_str()),
        ("brevetd", "alice")
    );
    // Unknown names are never locked (nothing is stored for them).
    for _ in 0..11 {
        let _ = anon.login("nobody", "x", &h.fresh_code("alice"));
    }
    assert_eq!(events(&c.admin, "login.locked").len(), 1);

    // The lock ends on its own after 15 minutes.
    h.advance(15 * 60 + 1);
    assert!(anon.login("alice", &pw, &h.fresh_code("alice")).is_ok());

    // A good login starts the count again; an administrator's enable lifts a lock at once.
    for _ in 0..9 {
        let _ = anon.login("alice", "wrong", &h.fresh_code("alice"));
    }
    assert!(anon.login("alice", &pw, &h.fresh_code("alice")).is_ok());
    for _ in 0..10 {
        let _ = anon.login("alice", "wrong", &h.fresh_code("alice"));
    }
    assert_eq!(
        api_code(anon.login("alice", &pw, &h.fresh_code("alice"))),
        "unauthenticated"
    );
    c.admin.set_user_enabled("alice", true).unwrap();
    assert!(anon.login("alice", &pw, &h.fresh_code("alice")).is_ok());
});

both_engines!(wrong_step_up_codes_lock_the_account, |mut h: Harness| {
    let c = h.cast();
    let r = pending(&c.alice, "pkg-update");
    for _ in 0..10 {
        let stale = h.old_code("bob", 600);
        assert_eq!(api_code(c.bob.approve(&r.id, Some(&stale))), "mfa_required");
    }
    let code = h.fresh_code("bob");
    let e = c.bob.approve(&r.id, Some(&code)).unwrap_err().to_string();
    assert!(e.contains("locked"), "{e}");
    assert_eq!(events(&c.admin, "login.locked").len(), 1);
    h.advance(15 * 60 + 1);
    let code = h.fresh_code("bob");
    let approved = c.bob.approve(&r.id, Some(&code));
    assert!(approved.is_ok(), "{approved:?}");
});

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
