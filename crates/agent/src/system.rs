//! The operating-system operations the agent needs beyond plain file I/O under its
//! [`Root`](crate::root::Root): checking a sudoers file with the local sudo's own parser, finding
//! and ending processes started through sudo, changing group membership, and looking up the
//! local account a grant names.
//!
//! They sit behind [`System`] so enforcement is unit-tested with [`FakeSystem`]; the real
//! implementations are in [`crate::linux`].

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{Error, Result};

pub trait System: Send + Sync {
    /// Checks a sudoers file as the local sudo would read it (`visudo -cf FILE`). A rejection is
    /// [`Error::SudoersRejected`] carrying the checker's words.
    fn check_sudoers(&self, file: &Path) -> Result<()>;

    /// Whether the local sudo accepts `NOTBEFORE=`/`NOTAFTER=` (probed once at construction).
    fn supports_time_bounds(&self) -> bool;

    /// Processes started through sudo by `user` (environment `SUDO_USER=user` or `SUDO_UID=uid`)
    /// at or after `since_unix`.
    fn sudo_processes(&self, user: &str, uid: Option<u32>, since_unix: i64) -> Vec<u32>;

    /// SIGTERM, up to 2 s of grace, SIGKILL; returns the PIDs that ended.
    fn terminate(&self, pids: &[u32]) -> Vec<u32>;

    /// Adds `user` to `group` (no-op if already a member).
    fn group_add(&self, user: &str, group: &str) -> Result<()>;

    /// Removes `user` from `group` (no-op if not a member).
    fn group_remove(&self, user: &str, group: &str) -> Result<()>;

    /// The uid of the local account `user`: `Ok(None)` when there is no such account, an error
    /// when the account database cannot be read (the caller refuses rather than guesses).
    fn uid(&self, user: &str) -> Result<Option<u32>>;
}

impl<T: System + ?Sized> System for Arc<T> {
    fn check_sudoers(&self, file: &Path) -> Result<()> {
        (**self).check_sudoers(file)
    }
    fn supports_time_bounds(&self) -> bool {
        (**self).supports_time_bounds()
    }
    fn sudo_processes(&self, user: &str, uid: Option<u32>, since_unix: i64) -> Vec<u32> {
        (**self).sudo_processes(user, uid, since_unix)
    }
    fn terminate(&self, pids: &[u32]) -> Vec<u32> {
        (**self).terminate(pids)
    }
    fn group_add(&self, user: &str, group: &str) -> Result<()> {
        (**self).group_add(user, group)
    }
    fn group_remove(&self, user: &str, group: &str) -> Result<()> {
        (**self).group_remove(user, group)
    }
    fn uid(&self, user: &str) -> Result<Option<u32>> {
        (**self).uid(user)
    }
}

/// A scripted [`System`] for tests: checks drop-ins with the built-in parser unless told to
/// reject, lists the processes it was given, knows the accounts it was given (by default
/// `root` 0, `daemon` 1, `alice` 1000, `bob` 1001, `carol` 1002), and records every call.
#[derive(Debug)]
pub struct FakeSystem {
    state: Mutex<FakeState>,
}

impl Default for FakeSystem {
    fn default() -> Self {
        let uids = [
            ("root", 0),
            ("daemon", 1),
            ("alice", 1000),
            ("bob", 1001),
            ("carol", 1002),
        ]
        .into_iter()
        .map(|(n, u)| (n.to_owned(), u))
        .collect();
        FakeSystem {
            state: Mutex::new(FakeState {
                uids,
                ..FakeState::default()
            }),
        }
    }
}

/// What a [`FakeSystem`] was told and what it saw.
#[derive(Debug, Default, Clone)]
pub struct FakeState {
    /// Every call, e.g. `check .brevet_….tmp`, `terminate 42`, `group_add alice docker`.
    pub calls: Vec<String>,
    /// `Some(detail)`: every sudoers check fails with this detail (as visudo would).
    pub reject: Option<String>,
    /// Whether time bounds are supported (default false).
    pub time_bounds: bool,
    /// `(user, pid, start time)` of processes started through sudo.
    pub processes: Vec<(String, u32, i64)>,
    /// `(user, group)` memberships changed through this system.
    pub members: BTreeSet<(String, String)>,
    /// `Some(group)`: adding to or removing from this group fails.
    pub failing_group: Option<String>,
    /// Local accounts: name → uid.
    pub uids: std::collections::BTreeMap<String, u32>,
    /// `Some(detail)`: looking up an account fails with this detail.
    pub failing_accounts: Option<String>,
}

impl FakeSystem {
    pub fn new() -> FakeSystem {
        FakeSystem::default()
    }

    pub fn with_time_bounds(self) -> FakeSystem {
        self.state().time_bounds = true;
        self
    }

    /// Locks the scripted state for inspection or change.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    fn record(&self, call: String) {
        self.state().calls.push(call);
    }
}

impl System for FakeSystem {
    fn check_sudoers(&self, file: &Path) -> Result<()> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.record(format!("check {name}"));
        if let Some(detail) = self.state().reject.clone() {
            return Err(Error::SudoersRejected {
                path: file.to_owned(),
                detail,
            });
        }
        crate::sudoers::check::check_file(file)
    }

    fn supports_time_bounds(&self) -> bool {
        self.state().time_bounds
    }

    fn sudo_processes(&self, user: &str, _uid: Option<u32>, since_unix: i64) -> Vec<u32> {
        self.record(format!("sudo_processes {user} {since_unix}"));
        self.state()
            .processes
            .iter()
            .filter(|(u, _, started)| u == user && *started >= since_unix)
            .map(|(_, pid, _)| *pid)
            .collect()
    }

    fn terminate(&self, pids: &[u32]) -> Vec<u32> {
        let list: Vec<String> = pids.iter().map(u32::to_string).collect();
        self.record(format!("terminate {}", list.join(" ")));
        self.state().processes.retain(|(_, p, _)| !pids.contains(p));
        pids.to_vec()
    }

    fn group_add(&self, user: &str, group: &str) -> Result<()> {
        self.record(format!("group_add {user} {group}"));
        let mut s = self.state();
        if s.failing_group.as_deref() == Some(group) {
            return Err(Error::Command {
                command: format!("gpasswd -a {user} {group}"),
                detail: "scripted failure".into(),
            });
        }
        s.members.insert((user.to_owned(), group.to_owned()));
        Ok(())
    }

    fn group_remove(&self, user: &str, group: &str) -> Result<()> {
        self.record(format!("group_remove {user} {group}"));
        let mut s = self.state();
        if s.failing_group.as_deref() == Some(group) {
            return Err(Error::Command {
                command: format!("gpasswd -d {user} {group}"),
                detail: "scripted failure".into(),
            });
        }
        s.members.remove(&(user.to_owned(), group.to_owned()));
        Ok(())
    }

    fn uid(&self, user: &str) -> Result<Option<u32>> {
        let s = self.state();
        if let Some(detail) = &s.failing_accounts {
            return Err(Error::Command {
                command: format!("getent passwd {user}"),
                detail: detail.clone(),
            });
        }
        Ok(s.uids.get(user).copied())
    }
}
