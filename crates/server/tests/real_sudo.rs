//! The real sudo, as root, inside a private mount namespace over a copy of `/etc` (the host is
//! never touched): a grant gives exactly its command, and revocation, `done` and expiry take it
//! away; the timestamp record goes; a deleted drop-in comes back; standing privilege is reported.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use brevet_testkit::MountNamespace;
use common::*;

struct NsAgent {
    child: Child,
}

impl Drop for NsAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn namespace(test: &str) -> Option<MountNamespace> {
    if !std::path::Path::new("/usr/bin/sudo").exists() {
        brevet_testkit::skip(test, "sudo is not installed (apt-get install -y sudo)");
        return None;
    }
    match MountNamespace::start() {
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

    let state = ns.scratch().join("agent-state");
    let ca = ns.scratch().join("ca.pem");
    std::fs::write(&ca, &h.ca_pem).unwrap();
    let token = c.admin.enroll_token("web-01").unwrap().token;
    let agent_bin = brevet_testkit::workspace_bin("brevet-agent");
    let enrolled = ns
        .command(&agent_bin)
        .args(["enroll", "--server", &h.url, "--token", &token, "--ca"])
        .arg(&ca)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    let _agent = NsAgent {
        child: ns
            .command(&agent_bin)
            .args(["run", "--reconcile-interval", "1", "--state-dir"])
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };

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
