//! The `brevet-agent` binary's own contract: usage errors, and `scan` on a directory tree.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

use std::process::Command;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_brevet-agent"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn usage_errors_exit_2_with_one_reason() {
    let out = agent(&["run", "--mode", "yolo"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("brevet-agent: usage: invalid --mode `yolo`"),
        "{err}"
    );
    assert!(agent(&["--version"]).status.success());
}

#[test]
fn run_refuses_an_unenrolled_state_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let out = agent(&[
        "run",
        "--state-dir",
        state.to_str().unwrap(),
        "--root",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds no enrollment"), "{err}");
}

#[test]
fn scan_reports_standing_privilege_in_a_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("etc/sudoers.d")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n").unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nsudo:x:27:bob\nbob:x:1000:\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/sudoers"),
        "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/sudoers.d/ops"),
        "bob ALL=(ALL) NOPASSWD: ALL\n",
    )
    .unwrap();
    let out = agent(&["scan", "--json", "--root", root.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for want in [
        "admin_group_member",
        "foreign_sudoers_rule",
        "nopasswd",
        "uid0_account",
    ] {
        assert!(kinds.contains(&want), "{want} missing from {kinds:?}");
    }
    for f in &findings {
        assert!(
            f["remediation"].as_str().is_some_and(|r| !r.is_empty()),
            "{f}"
        );
    }
}
