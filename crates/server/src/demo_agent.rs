//! The quickstart's sandboxed agent: `brevet-agent` enrolled as the demo device and run with
//! `--root` on a small endpoint tree inside the data directory, so the whole cycle can be
//! watched on a machine without sudo and without touching the real `/etc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::Error;

/// A running demo agent; dropped, it is stopped.
pub struct DemoAgent {
    child: Child,
    pub root: PathBuf,
    pub log: PathBuf,
}

impl Drop for DemoAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `brevet-agent` next to this executable (as `cargo build` lays them out).
pub fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.join("brevet-agent");
    candidate.is_file().then_some(candidate)
}

/// Lays out the sandbox tree: accounts for the demo people (UIDs from 1000: the agent refuses
/// grants for system accounts below `UID_MIN`), an empty `sudo` group, `login.defs`, a
/// Debian-like `/etc/sudoers`, and sudo's timestamp directory. Existing files are kept.
pub fn make_root(root: &Path, people: &[&str]) -> Result<(), Error> {
    let mk = |p: &Path| std::fs::create_dir_all(p).map_err(|e| Error::io("create", p, e));
    mk(&root.join("etc/sudoers.d"))?;
    mk(&root.join("run/sudo/ts"))?;
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/sh\n");
    let mut group = String::from("root:x:0:\nsudo:x:27:\n");
    for (i, name) in people.iter().enumerate() {
        let id = 1000 + i;
        passwd.push_str(&format!("{name}:x:{id}:{id}::/home/{name}:/bin/sh\n"));
        group.push_str(&format!("{name}:x:{id}:\n"));
    }
    for (path, text) in [
        ("etc/passwd", passwd.as_str()),
        ("etc/group", group.as_str()),
        ("etc/login.defs", "UID_MIN 1000\nUID_MAX 60000\n"),
        (
            "etc/sudoers",
            "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
        ),
    ] {
        let p = root.join(path);
        if !p.exists() {
            std::fs::write(&p, text).map_err(|e| Error::io("write", &p, e))?;
        }
    }
    Ok(())
}

/// Enrolls (when `token` is given) and starts the agent on `data_dir/sandbox`.
pub fn start(
    agent: &Path,
    data_dir: &Path,
    server_url: &str,
    ca_file: &Path,
    token: Option<&str>,
) -> Result<DemoAgent, Error> {
    let state = data_dir.join("agent-state");
    let root = data_dir.join("sandbox");
    let log = data_dir.join("agent.log");
    if let Some(token) = token {
        let out = Command::new(agent)
            .args(["enroll", "--server", server_url, "--token", token, "--ca"])
            .arg(ca_file)
            .arg("--state-dir")
            .arg(&state)
            .output()
            .map_err(|e| Error::Io(format!("cannot run `{}`: {e}", agent.display())))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "the demo agent could not enroll: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    let log_file = std::fs::File::create(&log).map_err(|e| Error::io("create", &log, e))?;
    let child = Command::new(agent)
        .args(["run", "--state-dir"])
        .arg(&state)
        .arg("--root")
        .arg(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| Error::Io(format!("cannot start `{}`: {e}", agent.display())))?;
    Ok(DemoAgent { child, root, log })
}
