//! The programs the agent runs as root are found by absolute path, never through `$PATH`: with a
//! hostile `$PATH` that puts fake `visudo`, `gpasswd`, `kill`, `getconf` and `getent` first, none
//! of them runs.
//!
//! The test runs itself again as a child process with the hostile `$PATH` (changing the
//! environment of a running test process is not sound), and the child drives the real system
//! operations: the `visudo` probe, a sudoers check, a group change, ending a process, an account
//! lookup. Each fake writes its name into a marker file if it is ever run.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use brevet_agent::linux::{LinuxSystem, SandboxSystem};
use brevet_agent::root::Root;
use brevet_agent::system::System;

const CHILD: &str = "BREVET_HOSTILE_PATH_CHILD";
const MARKER: &str = "BREVET_HOSTILE_PATH_MARKER";
const FAKES: [&str; 6] = ["visudo", "gpasswd", "kill", "getconf", "getent", "sudo"];

#[test]
fn a_hostile_path_does_not_change_what_runs() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let tmp = tempfile::tempdir().unwrap();
    let evil = tmp.path().join("evil-bin");
    std::fs::create_dir(&evil).unwrap();
    let marker = tmp.path().join("ran");
    for name in FAKES {
        let fake = evil.join(name);
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho {name} >> \"${MARKER}\"\nexit 0\n"),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_hostile_path_does_not_change_what_runs",
            "--nocapture",
        ])
        .env("PATH", &evil)
        .env(CHILD, "1")
        .env(MARKER, &marker)
        .env("BREVET_HOSTILE_PATH_TMP", tmp.path())
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child failed:\n{log}");
    assert!(
        log.contains("1 passed"),
        "the child did not run the test:\n{log}"
    );
    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(
        ran.is_empty(),
        "programs were found through $PATH and run as root: {ran}"
    );
}

/// In the child, with the hostile `$PATH`: every operation that runs a program.
fn child() {
    let tmp = std::path::PathBuf::from(std::env::var_os("BREVET_HOSTILE_PATH_TMP").unwrap());
    // Probes `visudo` for time bounds; finds `gpasswd`, `kill`, `getent`.
    let real = LinuxSystem::new();
    // A group change the real gpasswd refuses (no such group): harmless on the host.
    let _ = real.group_add("brevet-no-such-user", "brevet-no-such-group");
    // An account lookup.
    let _ = real.uid("root");
    // A sudoers check of a file the real visudo rejects.
    let bad = tmp.join("bad");
    std::fs::write(&bad, "this is not sudoers\n").unwrap();
    let _ = real.check_sudoers(&bad);
    // Ending a process, which also reads the clock tick with `getconf`.
    let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let _ = real.sudo_processes("brevet-no-such-user", None, 0);
    let ended = real.terminate(&[sleeper.id()]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(
        ended.is_empty() || ended == [sleeper.id()],
        "terminate returned {ended:?}"
    );
    // A sandbox probes `visudo` too.
    let root = tmp.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let sandbox = SandboxSystem::new(Root::new(&root));
    let _ = sandbox.check_sudoers(Path::new(&bad));
}
