//! A grant for a system account is refused and reported, before anything is written: the account
//! must exist, must not be UID 0, and must be at or above UID_MIN, unless allow-listed.

use super::*;

fn for_user(user: &str) -> GrantDoc {
    let mut d = doc();
    d.user = user.into();
    d
}

/// The fake system knows root (0), daemon (1), alice (1000), bob (1001), carol (1002).
#[test]
fn a_grant_for_a_system_or_missing_account_is_refused_and_nothing_is_written() {
    let mut admin = doc();
    admin.user = "admin".into(); // a Brevet person `admin`, no such account here
    for (d, why) in [
        (for_user("root"), "UID 0"),
        (for_user("daemon"), "below UID_MIN 1000"),
        (for_user("mallory"), "no local account `mallory`"),
        (admin, "no local account `admin`"),
    ] {
        let env = Env::new();
        let mut a = env.agent_at(T0);
        let acks = a.sync(&deliver(&env, &d, T0)).unwrap();
        assert_eq!(acks.len(), 1, "{}: {acks:?}", d.user);
        assert_eq!(acks[0].action, AckAction::Rejected, "{}", d.user);
        assert_eq!(acks[0].reason.as_deref(), Some("account"), "{acks:?}");
        let message = acks[0].detail["message"].as_str().unwrap();
        assert!(message.contains(why), "{}: {message}", d.user);
        assert!(
            env.sudoers_d().is_empty(),
            "{}: {:?}",
            d.user,
            env.sudoers_d()
        );
        assert!(a.journal().active.is_empty());
        // Queued for the server (it records grant.rejected_by_device).
        assert_eq!(a.pending_acks().len(), 1);
    }
    // A person's account is fine.
    let env = Env::new();
    assert_eq!(applied(&env).journal().active.len(), 1);
}

#[test]
fn uid_min_comes_from_login_defs_and_the_allow_list_admits_named_system_accounts() {
    let env = Env::new();
    std::fs::write(env.root.path("/etc/login.defs"), "UID_MIN 1001\n").unwrap();
    let mut a = env.agent_at(T0);
    let acks = a.sync(&deliver(&env, &doc(), T0)).unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("account"));
    assert!(
        acks[0].detail["message"]
            .as_str()
            .unwrap()
            .contains("UID 1000, below UID_MIN 1001")
    );

    let env = Env::new();
    let mut a = env.agent_at(T0).with_system_users(vec!["daemon".into()]);
    let acks = a.sync(&deliver(&env, &for_user("daemon"), T0)).unwrap();
    assert_eq!(acks[0].action, AckAction::Applied, "{acks:?}");
    let text = std::fs::read_to_string(env.drop_in()).unwrap();
    assert!(text.contains("\ndaemon ALL=(root)"), "{text}");
}

#[test]
fn an_account_that_changes_before_the_grant_starts_is_checked_again() {
    let env = Env::new();
    let mut a = env.agent_at(T0 - 600);
    assert!(a.sync(&deliver(&env, &doc(), T0 - 600)).unwrap().is_empty());
    // alice becomes UID 0 (or is deleted) before her grant starts.
    env.sys.state().uids.insert("alice".into(), 0);
    a.clock().set(T0);
    let acks = a.tick().unwrap();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(
        (acks[0].action, acks[0].reason.as_deref()),
        (AckAction::Rejected, Some("account"))
    );
    assert!(env.sudoers_d().is_empty());
    assert!(a.journal().active.is_empty());
    // A lookup that fails refuses too (fail closed).
    let env = Env::new();
    env.sys.state().failing_accounts = Some("sssd is not running".into());
    let mut a = env.agent_at(T0);
    let acks = a.sync(&deliver(&env, &doc(), T0)).unwrap();
    assert_eq!(acks[0].reason.as_deref(), Some("account"));
    assert!(env.sudoers_d().is_empty());
}
