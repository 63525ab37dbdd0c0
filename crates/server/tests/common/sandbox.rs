//! A real `brevet-agent` process enrolled as a device, enforcing in a sandbox root (`--root`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::Harness;

/// A sandboxed agent process enrolled as `device`.
pub struct SandboxAgent {
    child: Child,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
    state: PathBuf,
}

impl Drop for SandboxAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self._dir.path().join("agent.log")).unwrap_or_default();
            eprintln!("--- agent log ---\n{log}--- end of agent log ---");
        }
    }
}

impl SandboxAgent {
    pub fn start(h: &Harness, admin: &brevet_cli::client::Client, device: &str) -> SandboxAgent {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        make_root(&root);
        let state = dir.path().join("state");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &h.ca_pem).unwrap();
        let token = admin.enroll_token(device).expect("enroll token").token;
        let agent = brevet_testkit::workspace_bin("brevet-agent");
        let out = Command::new(&agent)
            .args(["enroll", "--server", &h.url, "--ca"])
            .arg(&ca)
            .args(["--token", &token, "--state-dir"])
            .arg(&state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "enroll: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The token is spent.
        let again = Command::new(&agent)
            .args(["enroll", "--server", &h.url, "--ca"])
            .arg(&ca)
            .args(["--token", &token, "--state-dir"])
            .arg(dir.path().join("state2"))
            .output()
            .unwrap();
        assert!(!again.status.success(), "a token works once");
        let child = run(&state, &root, dir.path());
        SandboxAgent {
            child,
            root,
            _dir: dir,
            state,
        }
    }

    /// Stops the agent process (the device goes offline); its state stays.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the agent again on the same state and root.
    pub fn resume(&mut self) {
        self.stop();
        self.child = run(&self.state, &self.root, self._dir.path());
    }

    /// What the agent logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("agent.log")).unwrap_or_default()
    }

    pub fn drop_in(&self, grant_id: &str) -> PathBuf {
        self.root
            .join("etc/sudoers.d")
            .join(format!("brevet_{}", grant_id.replace('-', "")))
    }
}

/// A minimal endpoint tree: accounts for the test people (UIDs from 1000, as on a real system,
/// since the agent refuses grants for system accounts), groups, `login.defs`, sudoers, sudo's
/// timestamp dir.
pub fn make_root(root: &Path) {
    std::fs::create_dir_all(root.join("etc/sudoers.d")).unwrap();
    std::fs::create_dir_all(root.join("run/sudo/ts")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
         alice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n\
         carol:x:1002:1002::/home/carol:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\ndaemon:x:1:\nsudo:x:27:\nalice:x:1000:\nbob:x:1001:\ncarol:x:1002:\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/login.defs"), "UID_MIN 1000\nUID_MAX 60000\n").unwrap();
    std::fs::write(
        root.join("etc/sudoers"),
        "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
    )
    .unwrap();
}

fn run(state: &Path, root: &Path, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("agent.log"))
        .unwrap();
    Command::new(brevet_testkit::workspace_bin("brevet-agent"))
        .args(["run", "--reconcile-interval", "1", "--state-dir"])
        .arg(state)
        .arg("--root")
        .arg(root)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}
