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
    let admin = h.login("admin");
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
        api_code(admin.set_user_enabled("admin", false)),
        "invalid_input"
    );
});
