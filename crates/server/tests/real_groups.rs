//! Group-type roles with the real `gpasswd`, as root inside a private mount namespace over a
//! copy of `/etc`: the user joins the group for the grant and leaves it at the end.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use std::time::{Duration, Instant};

use brevet_testkit::MountNamespace;
use common::*;

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: not within 5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn group_grants_join_and_leave_with_gpasswd() {
    let test = "group_grants_join_and_leave_with_gpasswd";
    let ns = match MountNamespace::start() {
        Ok(ns) => ns,
        Err(why) => return brevet_testkit::skip(test, &why),
    };
    if !ns.sh("command -v gpasswd").status.success() {
        return brevet_testkit::skip(test, "gpasswd is not installed");
    }
    let Some(mut h) = Harness::start(Db::Sqlite, test) else {
        return;
    };
    let c = h.cast();
    ns.sh_ok("useradd -M -s /bin/sh alice && groupadd brevetops");
    let state = ns::enroll(&ns, &h, &c.admin, "web-01");
    let _agent = ns::NsAgent::start(&ns, &state, &[]);
    let member = || {
        ns.sh_ok("getent group brevetops")
            .trim_end()
            .ends_with(":alice")
    };
    assert!(!member());
    let r = c.alice.create_request(&ask("ops-group", "30m")).unwrap();
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    wait_until("alice joined brevetops", member);
    assert!(
        ns.sh(&format!("ls /etc/sudoers.d/brevet_{}", g.replace('-', "")))
            .status
            .code()
            != Some(0),
        "a group-only role writes no drop-in"
    );
    c.alice.done(&g).unwrap();
    wait_until("alice left brevetops", || !member());
    wait_until("removal confirmed", || {
        c.alice.grant(&g).unwrap().revocation_confirmed_at.is_some()
    });
    assert!(
        !std::fs::read_to_string("/etc/group")
            .unwrap()
            .contains("brevetops"),
        "host untouched"
    );
}

#[test]
fn enforce_mode_removes_standing_admins_but_not_the_allowed() {
    let test = "enforce_mode_removes_standing_admins_but_not_the_allowed";
    let ns = match MountNamespace::start() {
        Ok(ns) => ns,
        Err(why) => return brevet_testkit::skip(test, &why),
    };
    if !ns
        .sh("command -v gpasswd && command -v visudo")
        .status
        .success()
    {
        return brevet_testkit::skip(test, "gpasswd or visudo is not installed");
    }
    let Some(mut h) = Harness::start(Db::Sqlite, test) else {
        return;
    };
    let c = h.cast();
    ns.sh_ok(
        "getent group sudo >/dev/null || groupadd sudo; \
         useradd -M -s /bin/sh carol && useradd -M -s /bin/sh dave && \
         gpasswd -a carol sudo >/dev/null && gpasswd -a dave sudo >/dev/null && \
         echo 'carol ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/legacy && chmod 440 /etc/sudoers.d/legacy",
    );
    let state = ns::enroll(&ns, &h, &c.admin, "web-01");
    let _agent = ns::NsAgent::start(&ns, &state, &["--mode", "enforce", "--allow-user", "dave"]);
    let sudo_members = || {
        ns.sh_ok("getent group sudo")
            .trim_end()
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    wait_until("carol removed from sudo", || {
        !sudo_members().split(',').any(|m| m == "carol")
    });
    assert!(
        sudo_members().split(',').any(|m| m == "dave"),
        "the allow-listed admin stays"
    );
    wait_until("legacy drop-in quarantined", || {
        !ns.sh("test -e /etc/sudoers.d/legacy").status.success()
    });
    let quarantined = std::fs::read_dir(state.join("quarantine")).unwrap().count();
    assert_eq!(quarantined, 1, "moved, never deleted");
    ns.sh_ok("visudo -c >/dev/null");
}
