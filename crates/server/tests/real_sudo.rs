//! The real sudo, as root, inside a private mount namespace over a copy of `/etc` (the host is
//! never touched): a grant gives exactly its command, and revocation, `done` and expiry take it
//! away; the timestamp record goes; a deleted drop-in comes back; standing privilege is reported.
//! A root process opened under one grant ends with the last overlapping grant of that person.
//! The record of use: the commands run under a grant reach the audit trail as `grant.used`
//! events, and a file and a package changed during it as `grant.changes`, across a server
//! outage and an agent restart, each exactly once.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

mod common;

use std::time::{Duration, Instant};

use brevet_testkit::MountNamespace;
use common::*;

fn namespace(test: &str) -> Option<MountNamespace> {
    if !std::path::Path::new("/usr/bin/sudo").exists() {
        brevet_testkit::skip(test, "sudo is not installed (apt-get install -y sudo)");
        return None;
    }
    match MountNamespace::start() {
        // The namespace has private copies of /etc, /var/log and dpkg's status file.
        Ok(ns) => Some(ns),
        Err(why) => {
            brevet_testkit::skip(test, &why);
            None
        }
    }
}

fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `su alice -c 'sudo -n CMD'` inside the namespace: true when sudo ran the command.
fn sudo_as(ns: &MountNamespace, user: &str, cmd: &str) -> bool {
    let out = ns.sh(&format!("su {user} -c 'sudo -n {cmd}' </dev/null"));
    out.status.success()
}

#[test]
fn real_sudo_follows_the_grant() {
    let test = "real_sudo_follows_the_grant";
    let Some(ns) = namespace(test) else { return };
    let Some(mut h) = Harness::start(Db::Sqlite, test) else {
        return;
    };
    let c = h.cast();
    ns.sh_ok("useradd -M -s /bin/sh alice && useradd -M -s /bin/sh carol");

    let state = ns::enroll(&ns, &h, &c.admin, "web-01");
    let _agent = ns::NsAgent::start(&ns, &state, &[]);

    assert!(
        !sudo_as(&ns, "alice", "/usr/bin/id -u"),
        "no standing rights before the grant"
    );

    // role `short` = /usr/bin/id
    let r = c.alice.create_request(&ask("short", "30m")).unwrap();
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let drop_in = format!("/etc/sudoers.d/brevet_{}", g.replace('-', ""));
    wait_until("grant in force", 5, || {
        sudo_as(&ns, "alice", "/usr/bin/id -u")
    });
    assert_eq!(ns.sh_ok("su alice -c 'sudo -n /usr/bin/id -u'").trim(), "0");
    assert!(
        !sudo_as(&ns, "alice", "/usr/bin/whoami"),
        "only the granted command"
    );
    assert!(
        !sudo_as(&ns, "carol", "/usr/bin/id -u"),
        "only the granted user"
    );
    let text = ns.sh_ok(&format!("cat {drop_in}; stat -c '%a %U' {drop_in}"));
    assert!(
        text.contains("NOTAFTER="),
        "sudo itself enforces the end: {text}"
    );
    assert!(text.trim_end().ends_with("440 root"), "{text}");
    ns.sh_ok("visudo -c >/dev/null");

    // Deleted by hand → restored by reconciliation.
    ns.sh_ok(&format!("rm {drop_in}"));
    wait_until("drop-in restored", 5, || {
        ns.sh(&format!("test -f {drop_in}")).status.success()
    });

    // Revocation removes it and the timestamp record.
    ns.sh_ok("mkdir -p /run/sudo/ts && echo x > /run/sudo/ts/alice");
    c.bob.revoke(&g, "maintenance over").unwrap();
    // (Checked before running sudo again: sudo itself recreates an empty record when asked.)
    wait_until("timestamp record deleted", 5, || {
        !ns.sh("test -e /run/sudo/ts/alice").status.success()
    });
    assert!(
        !ns.sh(&format!("test -e {drop_in}")).status.success(),
        "drop-in removed"
    );
    assert!(!sudo_as(&ns, "alice", "/usr/bin/id -u"), "revoked");

    // `done`.
    let r = c.alice.create_request(&ask("short", "30m")).unwrap();
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    wait_until("second grant", 5, || {
        sudo_as(&ns, "alice", "/usr/bin/id -u")
    });
    c.alice.done(&g).unwrap();
    wait_until("done", 5, || !sudo_as(&ns, "alice", "/usr/bin/id -u"));

    // Expiry.
    let r = c.alice.create_request(&ask("short", "3s")).unwrap();
    c.bob.approve(&r.id, None).unwrap();
    wait_until("short grant", 5, || sudo_as(&ns, "alice", "/usr/bin/id -u"));
    wait_until("expired", 6, || !sudo_as(&ns, "alice", "/usr/bin/id -u"));

    // Standing privilege is found and reported.
    ns.sh_ok("echo 'carol ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/legacy && chmod 440 /etc/sudoers.d/legacy");
    ns.sh_ok("gpasswd -a carol sudo >/dev/null");
    wait_until("findings reported", 10, || {
        let f = c.admin.findings(Some("web-01")).unwrap();
        let ids: Vec<String> = f
            .iter()
            .flat_map(|d| d.findings.iter().map(|x| x.id.clone()))
            .collect();
        ids.iter().any(|i| i == "group-member:sudo:carol")
            && ids.iter().any(|i| {
                i.starts_with("sudoers-rule:/etc/sudoers.d/legacy") || i.contains("legacy")
            })
    });
    drop(h);
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn real_sudo_use_is_recorded_once_across_an_outage() {
    let test = "real_sudo_use_is_recorded_once_across_an_outage";
    let Some(ns) = namespace(test) else { return };
    if !ns.sh("test -f /var/lib/dpkg/status").status.success() {
        return brevet_testkit::skip(test, "no dpkg status file to simulate a package change in");
    }
    let Some(mut h) = Harness::start(Db::Sqlite, test) else {
        return;
    };
    let c = h.cast();
    ns.sh_ok("useradd -M -s /bin/sh alice");
    let state = ns::enroll(&ns, &h, &c.admin, "web-01");
    let mut agent = ns::NsAgent::start(&ns, &state, &[]);
    let started = unix_now();

    // role `short` = /usr/bin/id
    let r = c.alice.create_request(&ask("short", "30m")).unwrap();
    let g = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    let drop_in = format!("/etc/sudoers.d/brevet_{}", g.replace('-', ""));
    // Waiting on the file, not on sudo: every sudo run would be recorded.
    wait_until("grant in force", 5, || {
        ns.sh(&format!("test -f {drop_in}")).status.success()
    });
    assert!(
        ns.sh_ok(&format!("cat {drop_in}"))
            .contains("Defaults:alice logfile=/var/log/brevet/sudo.log")
    );

    let used = |n: usize| {
        let e = events(&c.admin, "grant.used");
        assert!(e.len() <= n, "more grant.used events than commands: {e:#?}");
        e.len() == n
    };
    ns.sh_ok("cd /tmp && su alice -c 'sudo -n /usr/bin/id -u' >/dev/null");
    ns.sh_ok("cd / && su alice -c 'sudo -n /usr/bin/id -g' >/dev/null");
    wait_until("two commands recorded", 10, || used(2));

    // The server goes away; meanwhile a third command, a file under /etc, a package; and the
    // agent restarts with all of it still undelivered.
    h.stop();
    ns.sh_ok("cd /tmp && su alice -c 'sudo -n -u root /usr/bin/id -un' >/dev/null");
    ns.sh_ok("echo 'patched during the grant' > /etc/brevet-usage-marker");
    ns.sh_ok(
        "printf '\\nPackage: brevet-fake-tool\\nStatus: install ok installed\\nVersion: 1.2-3\\n' \
         >> /var/lib/dpkg/status",
    );
    std::thread::sleep(Duration::from_secs(2));
    drop(agent);
    agent = ns::NsAgent::start(&ns, &state, &[]);
    std::thread::sleep(Duration::from_secs(1));
    h.restart_after_stop();
    wait_until("the buffered command delivered", 20, || used(3));

    // The end of the grant brings the summary of what changed.
    c.alice.done(&g).unwrap();
    wait_until("changes recorded", 20, || {
        !events(&c.admin, "grant.changes").is_empty()
    });
    let ended = unix_now();

    let used = events(&c.admin, "grant.used");
    let got: Vec<(String, String, String, bool)> = used
        .iter()
        .map(|e| {
            assert_eq!(e.subject, g);
            assert_eq!(e.actor, "device:web-01");
            assert_eq!(e.data["user"], "alice");
            assert_eq!(e.data["request_id"], r.id.as_str());
            assert_eq!(e.data["ticket"], "CHG-1234");
            assert_eq!(e.data["time_source"], "sudo-log", "{}", e.data);
            let at =
                brevet_proto::timefmt::parse_rfc3339("at", e.data["at"].as_str().unwrap()).unwrap();
            assert!(
                (started - 2..=ended + 2).contains(&at),
                "time {at} outside the test {started}..{ended}"
            );
            (
                e.data["command"].as_str().unwrap().to_owned(),
                e.data["cwd"].as_str().unwrap().to_owned(),
                e.data["runas"].as_str().unwrap().to_owned(),
                e.data["allowed"].as_bool().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, String, String, bool)> = [
        ("/usr/bin/id -u", "/tmp"),
        ("/usr/bin/id -g", "/"),
        ("/usr/bin/id -un", "/tmp"),
    ]
    .iter()
    .map(|(cmd, cwd)| (cmd.to_string(), cwd.to_string(), "root".into(), true))
    .collect();
    assert_eq!(got, want);

    let changes = events(&c.admin, "grant.changes");
    assert_eq!(changes.len(), 1, "{changes:#?}");
    let d = &changes[0].data;
    assert_eq!(changes[0].subject, g);
    assert_eq!(
        d["added"],
        serde_json::json!(["/etc/brevet-usage-marker"]),
        "{d}"
    );
    assert_eq!(
        d["packages_installed"],
        serde_json::json!([{ "package": "brevet-fake-tool", "version": "1.2-3" }]),
        "{d}"
    );
    assert_eq!(d["baseline_missing"], false);

    // Exactly once: one audit event per device event id.
    let mut ids: Vec<&str> = used
        .iter()
        .chain(&changes)
        .map(|e| e.data["event_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "an event was recorded twice");
    drop(agent);
    drop(h);
}

/// Grant A (ALL) lets dora start a root process; a later grant B of hers overlaps A. When A
/// ends, B keeps the process; when B ends, it must end too (the old agent only ended processes
/// started after B's `not_before`, so a shell from A's time outlived every grant).
///
/// The namespaces of parallel tests share the host's process table, and their agents end the
/// sudo processes of their own `alice`: this test's person has a name and a UID of her own.
#[test]
fn real_sudo_a_root_process_ends_with_the_last_overlapping_grant() {
    let test = "real_sudo_a_root_process_ends_with_the_last_overlapping_grant";
    let Some(ns) = namespace(test) else { return };
    let Some(mut h) = Harness::start(Db::Sqlite, test) else {
        return;
    };
    let c = h.cast();
    h.add_user(&c.admin, "dora", &["operators"]);
    let dora = h.login("dora");
    ns.sh_ok("useradd -M -u 4377 -s /bin/sh dora");
    let state = ns::enroll(&ns, &h, &c.admin, "web-01");
    let _agent = ns::NsAgent::start(&ns, &state, &[]);
    let drop_in = |g: &str| format!("/etc/sudoers.d/brevet_{}", g.replace('-', ""));
    let present = |g: &str| ns.sh(&format!("test -f {}", drop_in(g))).status.success();

    // Grant A: role `admin` (ALL).
    let r = dora.create_request(&ask("admin", "30m")).unwrap();
    let a = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    wait_until("grant A in force", 5, || present(&a));
    let started = unix_now();
    // A duration unique to this run names the process.
    let secs = 7000 + std::process::id() % 1000;
    ns.sh_ok(&format!(
        "su dora -c 'sudo -n /bin/sleep {secs}' </dev/null >/dev/null 2>&1 &"
    ));
    let alive = || {
        ns.sh(&format!("pgrep -fx '/bin/sleep {secs}' >/dev/null"))
            .status
            .success()
    };
    wait_until("the root process runs", 5, alive);

    // Grant B starts strictly later than the process (start times have whole seconds).
    wait_until("two seconds on", 5, || unix_now() >= started + 2);
    let r = dora.create_request(&ask("short", "30m")).unwrap();
    let b = c.bob.approve(&r.id, None).unwrap().grant_id.unwrap();
    wait_until("grant B in force", 5, || present(&b));

    c.bob.revoke(&a, "A is over").unwrap();
    wait_until("A removed", 5, || {
        dora.grant(&a).unwrap().revocation_confirmed_at.is_some()
    });
    assert!(!present(&a));
    assert!(alive(), "B is in force: dora's process is kept");

    c.bob.revoke(&b, "B is over").unwrap();
    wait_until(
        "the root process from grant A ended with the last grant",
        10,
        || !alive(),
    );
    assert!(!sudo_as(&ns, "dora", "/usr/bin/id -u"));
    drop(h);
}
