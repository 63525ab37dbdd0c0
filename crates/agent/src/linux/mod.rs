//! The Linux implementations of [`System`]: [`LinuxSystem`] for the real root and
//! [`SandboxSystem`] for `--root DIR`.
//!
//! On the real root a drop-in is installed only if the local `visudo` accepted it; without
//! `visudo` nothing is installed. In a sandbox the local `visudo` is used when present, otherwise
//! the agent's own strict parser of the subset it writes ([`crate::sudoers::check`]), and the
//! agent says so once. A sandbox never scans or ends processes: they are not its own, and its
//! accounts are those of ROOT/etc/passwd. Every program is run by absolute path ([`tools`]).

pub mod accounts;
pub mod fsio;
pub mod procs;
pub mod sysfile;
pub mod tools;
pub mod visudo;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::root::Root;
use crate::sudoers::check;
use crate::system::System;
use crate::{Error, Result};

/// The real endpoint: `visudo`, `/proc`, `kill`, `gpasswd`, `getent`, each by the absolute path
/// found once at start ([`tools`]).
#[derive(Debug)]
pub struct LinuxSystem {
    visudo: Option<PathBuf>,
    gpasswd: Option<PathBuf>,
    kill: Option<PathBuf>,
    getent: Option<PathBuf>,
    time_bounds: bool,
}

impl LinuxSystem {
    /// Locates the tools and probes once whether `visudo` accepts `NOTBEFORE`/`NOTAFTER`.
    pub fn new() -> LinuxSystem {
        let visudo = visudo::find();
        let time_bounds = visudo.as_deref().is_some_and(visudo::probe_time_bounds);
        LinuxSystem {
            visudo,
            gpasswd: tools::find("gpasswd"),
            kill: tools::find("kill"),
            getent: tools::find("getent"),
            time_bounds,
        }
    }

    /// The tools found, by name (for the start-up log and tests).
    pub fn tools(&self) -> Vec<(&'static str, Option<&Path>)> {
        vec![
            ("visudo", self.visudo.as_deref()),
            ("gpasswd", self.gpasswd.as_deref()),
            ("kill", self.kill.as_deref()),
            ("getent", self.getent.as_deref()),
        ]
    }
}

impl Default for LinuxSystem {
    fn default() -> Self {
        LinuxSystem::new()
    }
}

fn gpasswd(tool: Option<&Path>, flag: &str, user: &str, group: &str) -> Result<()> {
    let command = format!("gpasswd {flag} {user} {group}");
    let Some(tool) = tool else {
        return Err(Error::Command {
            command,
            detail: tools::missing("gpasswd"),
        });
    };
    let out = Command::new(tool)
        .args([flag, user, group])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            command,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// `getent passwd USER`: the account as the system's name service sees it (local files, LDAP,
/// SSSD). Exit status 2 means there is no such account.
fn getent_uid(getent: &Path, user: &str) -> Result<Option<u32>> {
    let command = format!("getent passwd {user}");
    let out = Command::new(getent)
        .args(["passwd", user])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    match out.status.code() {
        Some(0) => {}
        Some(2) => return Ok(None),
        _ => {
            return Err(Error::Command {
                command,
                detail: format!("exited with {}", out.status),
            });
        }
    }
    let text = String::from_utf8_lossy(&out.stdout);
    accounts::uid_in(&text, user)
        .map(Some)
        .ok_or_else(|| Error::Command {
            command,
            detail: "its answer has no numeric uid for that name".into(),
        })
}

impl System for LinuxSystem {
    fn check_sudoers(&self, file: &Path) -> Result<()> {
        match &self.visudo {
            Some(v) => visudo::check_file(v, file),
            None => Err(Error::Command {
                command: "visudo".into(),
                detail: "not installed; on a real root brevet-agent installs no drop-in that \
                         visudo has not accepted (install sudo)"
                    .into(),
            }),
        }
    }

    fn supports_time_bounds(&self) -> bool {
        self.time_bounds
    }

    fn sudo_processes(&self, user: &str, uid: Option<u32>, since_unix: i64) -> Vec<u32> {
        procs::sudo_processes(Path::new("/proc"), user, uid, since_unix)
    }

    fn terminate(&self, pids: &[u32]) -> Vec<u32> {
        match &self.kill {
            Some(kill) => procs::terminate(Path::new("/proc"), kill, pids),
            None => {
                eprintln!(
                    "brevet-agent: cannot end processes: {}",
                    tools::missing("kill")
                );
                Vec::new()
            }
        }
    }

    fn group_add(&self, user: &str, group: &str) -> Result<()> {
        if accounts::members(&Root::real(), group)
            .iter()
            .any(|m| m == user)
        {
            return Ok(());
        }
        gpasswd(self.gpasswd.as_deref(), "-a", user, group)
    }

    fn group_remove(&self, user: &str, group: &str) -> Result<()> {
        if !accounts::members(&Root::real(), group)
            .iter()
            .any(|m| m == user)
        {
            return Ok(());
        }
        gpasswd(self.gpasswd.as_deref(), "-d", user, group)
    }

    fn uid(&self, user: &str) -> Result<Option<u32>> {
        match &self.getent {
            Some(getent) => getent_uid(getent, user),
            None => accounts::uid_checked(&Root::real(), user),
        }
    }
}

/// A `--root DIR` tree: sudoers checked by `visudo` if installed, else by the built-in parser;
/// groups edited in ROOT/etc/group; no process scanning or ending (returns nothing).
#[derive(Debug)]
pub struct SandboxSystem {
    root: Root,
    visudo: Option<PathBuf>,
    time_bounds: bool,
    told: AtomicBool,
}

impl SandboxSystem {
    pub fn new(root: Root) -> SandboxSystem {
        let visudo = visudo::find();
        // The built-in checker knows sudo 1.9's time bounds, so without visudo they are written.
        let time_bounds = visudo.as_deref().is_none_or(visudo::probe_time_bounds);
        SandboxSystem {
            root,
            visudo,
            time_bounds,
            told: AtomicBool::new(false),
        }
    }

    /// A sandbox that uses the built-in checker even if `visudo` is installed (tests).
    pub fn builtin_checker(root: Root) -> SandboxSystem {
        SandboxSystem {
            root,
            visudo: None,
            time_bounds: true,
            told: AtomicBool::new(true),
        }
    }

    pub fn uses_visudo(&self) -> bool {
        self.visudo.is_some()
    }
}

impl System for SandboxSystem {
    fn check_sudoers(&self, file: &Path) -> Result<()> {
        if let Some(v) = &self.visudo {
            return visudo::check_file(v, file);
        }
        if !self.told.swap(true, Ordering::Relaxed) {
            eprintln!(
                "brevet-agent: visudo is not installed; sandbox drop-ins are checked with the \
                 agent's built-in parser of the sudoers subset it writes"
            );
        }
        check::check_file(file)
    }

    fn supports_time_bounds(&self) -> bool {
        self.time_bounds
    }

    fn sudo_processes(&self, _user: &str, _uid: Option<u32>, _since_unix: i64) -> Vec<u32> {
        Vec::new()
    }

    fn terminate(&self, _pids: &[u32]) -> Vec<u32> {
        Vec::new()
    }

    fn group_add(&self, user: &str, group: &str) -> Result<()> {
        accounts::rewrite_group_file(&self.root.path("/etc/group"), group, user, true)
    }

    fn group_remove(&self, user: &str, group: &str) -> Result<()> {
        accounts::rewrite_group_file(&self.root.path("/etc/group"), group, user, false)
    }

    fn uid(&self, user: &str) -> Result<Option<u32>> {
        accounts::uid_checked(&self.root, user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_groups_are_edited_in_the_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        std::fs::create_dir_all(root.path("/etc")).unwrap();
        std::fs::write(root.path("/etc/group"), "docker:x:999:bob\n").unwrap();
        let sys = SandboxSystem::builtin_checker(root.clone());
        sys.group_add("alice", "docker").unwrap();
        assert_eq!(accounts::members(&root, "docker"), ["bob", "alice"]);
        sys.group_remove("alice", "docker").unwrap();
        assert_eq!(accounts::members(&root, "docker"), ["bob"]);
        assert!(sys.group_add("alice", "wheel").is_err());
        assert!(sys.sudo_processes("alice", Some(1000), 0).is_empty());
    }

    #[test]
    fn accounts_come_from_the_name_service_or_the_sandbox_passwd() {
        let real = LinuxSystem::new();
        assert_eq!(real.uid("root").unwrap(), Some(0));
        assert_eq!(real.uid("brevet-no-such-user").unwrap(), None);
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        let sandbox = SandboxSystem::builtin_checker(root.clone());
        assert_eq!(sandbox.uid("alice").unwrap(), None, "no passwd file");
        std::fs::create_dir_all(root.path("/etc")).unwrap();
        std::fs::write(
            root.path("/etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(sandbox.uid("alice").unwrap(), Some(1000));
        assert_eq!(sandbox.uid("bob").unwrap(), None);
        std::fs::remove_file(root.path("/etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.path("/etc/passwd")).unwrap();
        assert!(
            sandbox.uid("root").is_err(),
            "a link out of the sandbox is refused"
        );
    }

    #[test]
    fn a_sandbox_installs_what_its_checker_accepts_and_nothing_else() {
        use crate::sudoers::{install, render, render_tests_doc};
        const ID: &str = "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        // The real visudo when installed, the built-in checker otherwise; then the built-in one.
        let systems = [
            SandboxSystem::new(root.clone()),
            SandboxSystem::builtin_checker(root.clone()),
        ];
        for sys in &systems {
            let text = render(&render_tests_doc(), sys.supports_time_bounds()).unwrap();
            install::install(&root, sys, ID, &text).unwrap();
            assert_eq!(install::installed(&root, ID).unwrap().unwrap().0, text);
            install::remove(&root, ID).unwrap();
            let bad = text.replace("NOPASSWD: ", "NOPASSWD ");
            assert!(matches!(
                install::install(&root, sys, ID, &bad),
                Err(Error::SudoersRejected { .. })
            ));
            assert_eq!(std::fs::read_dir(root.sudoers_d()).unwrap().count(), 0);
        }
        if !systems[0].uses_visudo() {
            eprintln!("SKIP the visudo half of a_sandbox_installs…: visudo not installed");
        }
    }
}
