//! A `brevet-agent` enrolled and running on the real root of a private mount namespace
//! (`brevet_testkit::MountNamespace`), for the tests that use the real sudo, visudo and gpasswd.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use brevet_cli::client::Client;
use brevet_testkit::MountNamespace;

use super::Harness;

/// Enrolls an agent for `device` inside `ns`; returns its state directory.
pub fn enroll(ns: &MountNamespace, h: &Harness, admin: &Client, device: &str) -> PathBuf {
    let state = ns.scratch().join("agent-state");
    let ca = ns.scratch().join("ca.pem");
    std::fs::write(&ca, &h.ca_pem).unwrap();
    let token = admin.enroll_token(device).expect("enroll token").token;
    let out = ns
        .command(brevet_testkit::workspace_bin("brevet-agent"))
        .args(["enroll", "--server", &h.url, "--token", &token, "--ca"])
        .arg(&ca)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "enroll: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    state
}

/// `brevet-agent run` inside the namespace, reconciling every second; its log is printed if the
/// test fails. Dropped, it is killed.
pub struct NsAgent {
    child: Child,
    log: PathBuf,
}

impl NsAgent {
    pub fn start(ns: &MountNamespace, state: &Path, extra: &[&str]) -> NsAgent {
        let log = ns.scratch().join("agent.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = ns
            .command(brevet_testkit::workspace_bin("brevet-agent"))
            .args(["run", "--reconcile-interval", "1"])
            .args(extra)
            .arg("--state-dir")
            .arg(state)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        NsAgent { child, log }
    }
}

impl Drop for NsAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- agent log ---\n{text}--- end of agent log ---");
        }
    }
}
