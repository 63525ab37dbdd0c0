//! A Brevet person never maps onto a system account. Before a grant is accepted, and again when
//! it is put in force, the local account it names must exist, must not be UID 0, and must have a
//! UID of at least the system's `UID_MIN` (ROOT/etc/login.defs, 1000 when not set) — unless the
//! device's administrator allow-listed the name (`brevet-agent run --allow-system-user NAME`).
//!
//! Accounts are looked up through the [`System`]: the system's name service (`getent`, so LDAP
//! and SSSD accounts count) on a real root, ROOT/etc/passwd in a `--root` sandbox. A lookup or a
//! login.defs that cannot be read refuses the grant (fail closed), it never guesses.

use crate::linux::accounts;
use crate::root::Root;
use crate::system::System;
use crate::verify::{Reason, Refusal};

fn refuse(message: String) -> Refusal {
    Refusal {
        reason: Reason::Account,
        message,
    }
}

/// Checks the account `user` a grant names; `allowed` are the allow-listed system accounts.
pub fn check<S: System + ?Sized>(
    system: &S,
    root: &Root,
    user: &str,
    allowed: &[String],
) -> Result<(), Refusal> {
    if allowed.iter().any(|a| a == user) {
        return Ok(());
    }
    let hint = format!(
        "if this device really should give it root, start the agent with \
         `--allow-system-user {user}`"
    );
    let uid = system
        .uid(user)
        .map_err(|e| {
            refuse(format!(
                "the local account `{user}` cannot be looked up ({e}); refused until it can"
            ))
        })?
        .ok_or_else(|| {
            refuse(format!(
                "there is no local account `{user}` on this device; create it first ({hint})"
            ))
        })?;
    if uid == 0 {
        return Err(refuse(format!(
            "`{user}` is UID 0 on this device: a Brevet person never maps onto the superuser"
        )));
    }
    let uid_min = accounts::uid_min(root).map_err(|e| {
        refuse(format!(
            "UID_MIN cannot be read from /etc/login.defs ({e}); refused until it can"
        ))
    })?;
    if uid < uid_min {
        return Err(refuse(format!(
            "`{user}` is UID {uid}, below UID_MIN {uid_min}: a system account, not a person's \
             ({hint})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::FakeSystem;

    #[test]
    fn people_pass_system_accounts_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        let sys = FakeSystem::new();
        sys.state().uids.insert("toor".into(), 0);
        sys.state().uids.insert("svc".into(), 999);
        let ok = |u: &str, allow: &[&str]| {
            let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
            check(&sys, &root, u, &allow)
        };
        assert!(ok("alice", &[]).is_ok());
        for (user, words) in [
            ("root", "UID 0"),
            ("toor", "UID 0"),
            ("daemon", "below UID_MIN 1000"),
            ("svc", "below UID_MIN 1000"),
            ("mallory", "no local account"),
        ] {
            let r = ok(user, &[]).unwrap_err();
            assert_eq!(r.reason, Reason::Account);
            assert!(r.message.contains(words), "{user}: {}", r.message);
        }
        assert!(ok("daemon", &["daemon"]).is_ok(), "allow-listed");
        assert!(ok("svc", &["daemon"]).is_err());

        // UID_MIN comes from login.defs.
        std::fs::create_dir_all(root.path("/etc")).unwrap();
        std::fs::write(root.path("/etc/login.defs"), "UID_MIN\t\t 500\n").unwrap();
        assert!(ok("svc", &[]).is_ok());
        std::fs::write(root.path("/etc/login.defs"), "UID_MIN 1001\n").unwrap();
        assert!(
            ok("alice", &[])
                .unwrap_err()
                .message
                .contains("UID 1000, below UID_MIN 1001")
        );

        // A lookup that fails refuses.
        sys.state().failing_accounts = Some("name service down".into());
        let r = ok("bob", &[]).unwrap_err();
        assert!(r.message.contains("name service down"), "{}", r.message);
    }
}
