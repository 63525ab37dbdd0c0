//! A private mount namespace over a copy of `/etc`, for tests that run the real `sudo`,
//! `visudo`, `useradd` and `gpasswd` as root without touching the host.
//!
//! A holder process (`unshare -m --propagation private`) bind-mounts a copy of the whole `/etc`
//! over `/etc` (a single bind-mounted `/etc/group` breaks gpasswd) and puts tmpfs over the
//! directories sudo and the agent write (`/run/sudo`, `/var/lib/sudo`, `/var/log`), binds a copy
//! of dpkg's status file (tests simulate package changes), then sleeps. Commands enter its
//! namespace with `nsenter -t PID -m`. Dropping the value kills the holder; the mounts go with
//! the namespace when its last process ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct MountNamespace {
    holder: Child,
    dir: tempfile::TempDir,
}

impl MountNamespace {
    /// Starts the namespace, or returns why it cannot run here (not root, no `unshare`).
    pub fn start() -> Result<MountNamespace, String> {
        if !crate::is_root() {
            return Err("not root: a private mount namespace needs root".into());
        }
        for tool in ["unshare", "nsenter", "mount"] {
            if !on_path(tool) {
                return Err(format!("`{tool}` is not installed"));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("brevet-ns-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let etc = dir.path().join("etc");
        let copy = Command::new("cp")
            .args(["-a", "/etc"])
            .arg(&etc)
            .output()
            .map_err(|e| format!("cp: {e}"))?;
        if !copy.status.success() {
            return Err(format!(
                "copying /etc failed: {}",
                String::from_utf8_lossy(&copy.stderr)
            ));
        }
        let ready = dir.path().join("ready");
        let script = format!(
            "set -e; mount --bind '{etc}' /etc; \
             mkdir -p /run/sudo; mount -t tmpfs -o mode=0711 tmpfs /run/sudo; \
             mkdir -p /var/lib/sudo; mount -t tmpfs -o mode=0700 tmpfs /var/lib/sudo; \
             mount -t tmpfs -o mode=0755 tmpfs /var/log; \
             if [ -f /var/lib/dpkg/status ]; then cp /var/lib/dpkg/status '{status}'; \
               mount --bind '{status}' /var/lib/dpkg/status; fi; \
             touch '{ready}'; exec sleep 100000",
            etc = etc.display(),
            ready = ready.display(),
            status = dir.path().join("dpkg-status").display()
        );
        let holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let mut ns = MountNamespace { holder, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            if let Ok(Some(status)) = ns.holder.try_wait() {
                return Err(format!("the namespace holder exited ({status})"));
            }
            if Instant::now() > deadline {
                return Err("the namespace was not ready within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(ns)
    }

    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A scratch directory outside the namespace's `/etc` (visible inside it too).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// The host path of the namespace's `/etc` copy.
    pub fn etc(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.pid().to_string())
            .arg("-m")
            .arg("--")
            .arg(program);
        c
    }

    /// Runs `sh -c script` inside the namespace.
    pub fn sh(&self, script: &str) -> Output {
        self.command("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("nsenter: {e}"))
    }

    /// Runs `sh -c script` inside the namespace and panics with its output if it fails.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for MountNamespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_inside_stay_inside() {
        let ns = match MountNamespace::start() {
            Ok(ns) => ns,
            Err(why) => return crate::skip("mount_ns::changes_inside_stay_inside", &why),
        };
        ns.sh_ok("echo brevet-ns-test > /etc/brevet-ns-marker");
        assert!(
            !Path::new("/etc/brevet-ns-marker").exists(),
            "the host /etc was touched"
        );
        assert!(ns.etc().join("brevet-ns-marker").exists());
        assert_eq!(
            ns.sh_ok("cat /etc/brevet-ns-marker").trim(),
            "brevet-ns-test"
        );
        ns.sh_ok("useradd -M brevetnsuser");
        ns.sh_ok("mkdir -p /var/log/brevet-ns-test");
        assert!(
            !Path::new("/var/log/brevet-ns-test").exists(),
            "the host /var/log was touched"
        );
        assert!(
            !std::fs::read_to_string("/etc/passwd")
                .unwrap()
                .contains("brevetnsuser")
        );
    }
}
