//! A fleet of real `brevet-agent` processes against one server, each enrolled as its own device
//! the way an administrator would do it: `dev-<i>` is added, an enrollment token is issued for
//! it, `brevet-agent enroll --server URL --ca FILE --token T --state-dir S` runs, then
//! `brevet-agent run --state-dir S --root ROOT` is started and left running.
//!
//! Each agent has its own state dir and its own sandbox root (the minimal tree of
//! `crates/server/tests/agent_e2e.rs`) under one temporary directory; its log goes to
//! `agent.log` beside them. The sandboxed agent checks drop-ins with the real `visudo` when it is
//! installed. Dropping the [`Fleet`] kills every agent (all first, then waits for each) and
//! removes the directory, also when the benchmark fails half-way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brevet_cli::client::Client;
use brevet_proto::api::AddDevice;
use tempfile::TempDir;

use crate::server_proc::Server;

/// Agents enrolled and started at the same time.
const ENROLL_THREADS: usize = 4;

/// One running agent.
pub(crate) struct Agent {
    child: Child,
    pub(crate) device: String,
    pub(crate) root: PathBuf,
    log: PathBuf,
}

/// The running agents; see the module documentation.
pub(crate) struct Fleet {
    /// Declared before `dir`, so the agents are killed before their directory is removed.
    agents: Vec<Agent>,
    dir: TempDir,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for a in &mut self.agents {
            let _ = a.child.kill();
        }
        for a in &mut self.agents {
            let _ = a.child.wait();
        }
    }
}

/// The device name of agent `i`.
pub(crate) fn device_name(i: usize) -> String {
    format!("dev-{i}")
}

impl Fleet {
    /// A directory for the fleet, with no agents yet.
    pub(crate) fn new() -> Result<Fleet, String> {
        let dir = tempfile::Builder::new()
            .prefix("brevet-bench-agents-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        Ok(Fleet {
            agents: Vec::new(),
            dir,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds, enrolls and starts `count` agents (`dev-0` …), [`ENROLL_THREADS`] at a time.
    /// Whatever was started stays in the fleet, so it is killed even when this fails.
    pub(crate) fn start(
        &mut self,
        agent_bin: &Path,
        server: &Server,
        admin: &Client,
        count: usize,
    ) -> Result<(), String> {
        let ca = self.dir.path().join("ca.pem");
        std::fs::write(&ca, &server.ca_pem)
            .map_err(|e| format!("cannot write `{}`: {e}", ca.display()))?;
        let next = AtomicUsize::new(0);
        let started = Mutex::new(Vec::with_capacity(count));
        let first_error = Mutex::new(None::<String>);
        let base = self.dir.path();
        std::thread::scope(|s| {
            for _ in 0..ENROLL_THREADS.min(count) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count || lock(&first_error).is_some() {
                            return;
                        }
                        match start_one(agent_bin, server, admin, &ca, base, i) {
                            Ok(agent) => lock(&started).push((i, agent)),
                            Err(e) => {
                                lock(&first_error).get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        let mut started = started.into_inner().unwrap_or_else(|e| e.into_inner());
        started.sort_by_key(|(i, _)| *i);
        self.agents.extend(started.into_iter().map(|(_, a)| a));
        match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.agents.len()
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.agents.iter().map(|a| a.child.id()).collect()
    }

    /// Where agent `i` puts the drop-in of `grant_id`: `brevet_` and the id without dashes
    /// (DESIGN §5).
    pub(crate) fn drop_in(&self, i: usize, grant_id: &str) -> Option<PathBuf> {
        let agent = self.agents.get(i)?;
        Some(
            agent
                .root
                .join("etc/sudoers.d")
                .join(format!("brevet_{}", grant_id.replace('-', ""))),
        )
    }

    pub(crate) fn device(&self, i: usize) -> Option<&str> {
        self.agents.get(i).map(|a| a.device.as_str())
    }

    /// An error quoting the log of the first agent that exited, if any did.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        for a in &mut self.agents {
            if let Ok(Some(status)) = a.child.try_wait() {
                return Err(format!(
                    "the agent of `{}` exited ({status}); its log:\n{}",
                    a.device,
                    tail(&a.log)
                ));
            }
        }
        Ok(())
    }

    /// Waits until the server holds at least `count` long-polls, i.e. every agent is connected
    /// and waiting for grants. Returns how long that took.
    pub(crate) fn wait_connected(
        &mut self,
        admin: &Client,
        timeout: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        let count = self.agents.len() as u64;
        let mut last_check = Instant::now();
        loop {
            let waiting = polls_waiting(admin)?;
            if waiting >= count {
                return Ok(start.elapsed());
            }
            if last_check.elapsed() > Duration::from_secs(1) {
                self.check_alive()?;
                last_check = Instant::now();
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "only {waiting} of {count} agents were waiting for grants after {} s",
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `brevet_device_polls_waiting` from the server's `/metrics`.
pub(crate) fn polls_waiting(admin: &Client) -> Result<u64, String> {
    let text = admin
        .get_text("/metrics")
        .map_err(|e| format!("cannot read /metrics: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("brevet_device_polls_waiting "))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|v| v.max(0) as u64)
        .ok_or_else(|| "/metrics has no `brevet_device_polls_waiting`".into())
}

/// Adds device `dev-<i>`, enrolls an agent for it, and starts it.
fn start_one(
    agent_bin: &Path,
    server: &Server,
    admin: &Client,
    ca: &Path,
    base: &Path,
    i: usize,
) -> Result<Agent, String> {
    let device = device_name(i);
    admin
        .add_device(&AddDevice {
            name: device.clone(),
            tags: Default::default(),
            groups: vec![],
            os: Some("linux".into()),
        })
        .map_err(|e| format!("cannot add the device `{device}`: {e}"))?;
    let token = admin
        .enroll_token(&device)
        .map_err(|e| format!("cannot issue an enrollment token for `{device}`: {e}"))?
        .token;
    let dir = base.join(&device);
    let root = dir.join("root");
    let state = dir.join("state");
    make_root(&root).map_err(|e| format!("cannot build the sandbox `{}`: {e}", root.display()))?;
    let out = Command::new(agent_bin)
        .args(["enroll", "--server", &server.url, "--ca"])
        .arg(ca)
        .args(["--token", &token, "--state-dir"])
        .arg(&state)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", agent_bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "`brevet-agent enroll` failed for `{device}` ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let log = dir.join("agent.log");
    let log_file = std::fs::File::create(&log)
        .map_err(|e| format!("cannot create `{}`: {e}", log.display()))?;
    let child = Command::new(agent_bin)
        .arg("run")
        .arg("--state-dir")
        .arg(&state)
        .arg("--root")
        .arg(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start `{} run`: {e}", agent_bin.display()))?;
    Ok(Agent {
        child,
        device,
        root,
        log,
    })
}

/// A minimal endpoint tree: accounts, groups, sudoers, sudo's timestamp dir.
fn make_root(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("etc/sudoers.d"))?;
    std::fs::create_dir_all(root.join("run/sudo/ts"))?;
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nop01:x:1000:1000::/home/op01:/bin/sh\n",
    )?;
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nsudo:x:27:\nop01:x:1000:\n",
    )?;
    std::fs::write(
        root.join("etc/sudoers"),
        "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
    )
}

/// The last lines of a log.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
