//! Finding and ending the processes a user started through sudo during a grant, from `/proc`.
//!
//! A process counts when its initial environment carries `SUDO_USER=<user>` (or `SUDO_UID=<uid>`)
//! — sudo sets these for every command it runs, and children inherit them — and it started at or
//! after the grant's `not_before`. The start time is `/proc/PID/stat` field 22 (clock ticks since
//! boot) plus `btime` from `/proc/stat`. A process that rewrote its environment escapes the scan;
//! that is a known limit of any `/proc` approach. The agent never ends itself or PID 1.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How the `/proc` scan reads time.
#[derive(Debug, Clone, Copy)]
pub struct ProcClock {
    /// Boot time, unix seconds.
    pub btime: i64,
    /// Clock ticks per second (`getconf CLK_TCK`, 100 on every Linux we target).
    pub clk_tck: i64,
}

impl ProcClock {
    pub fn read(proc: &Path) -> Option<ProcClock> {
        let stat = std::fs::read_to_string(proc.join("stat")).ok()?;
        let btime = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        Some(ProcClock {
            btime,
            clk_tck: clk_tck(),
        })
    }
}

/// `getconf CLK_TCK` (by absolute path), asked once; 100 when it cannot be asked.
fn clk_tck() -> i64 {
    static TCK: OnceLock<i64> = OnceLock::new();
    *TCK.get_or_init(|| {
        super::tools::find("getconf")
            .and_then(|getconf| {
                Command::new(getconf)
                    .arg("CLK_TCK")
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .output()
                    .ok()
            })
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// Field 22 (`starttime`) and field 3 (`state`) of a `/proc/PID/stat` line. The command name in
/// field 2 may hold spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<(char, u64)> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether a NUL-separated environment block names `user` (or `uid`) as the sudo invoker.
pub fn environ_matches(environ: &[u8], user: &str, uid: Option<u32>) -> bool {
    let want_user = format!("SUDO_USER={user}");
    let want_uid = uid.map(|u| format!("SUDO_UID={u}"));
    environ.split(|&b| b == 0).any(|var| {
        var == want_user.as_bytes() || want_uid.as_ref().is_some_and(|w| var == w.as_bytes())
    })
}

/// How much earlier than `since` a process may seem to start and still count. `btime` is whole
/// seconds and drifts from the wall clock (0.45 s on the CI machine), and `starttime / CLK_TCK`
/// is truncated, so a process started a moment after a grant's `not_before` can read up to
/// about 2 s early; missing it would leave a root process alive past the grant. Counting a
/// process of the same sudo user from just before is the safe side.
const START_SLACK: i64 = 3;

/// PIDs under `proc` whose environment names the user and that started at or after `since`
/// (less [`START_SLACK`]).
pub fn sudo_processes(proc: &Path, user: &str, uid: Option<u32>, since_unix: i64) -> Vec<u32> {
    let Some(clock) = ProcClock::read(proc) else {
        return Vec::new();
    };
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && pid > 1)
        .filter(|&pid| {
            let base = proc.join(pid.to_string());
            let Ok(environ) = std::fs::read(base.join("environ")) else {
                return false;
            };
            if !environ_matches(&environ, user, uid) {
                return false;
            }
            let Some((state, ticks)) = std::fs::read_to_string(base.join("stat"))
                .ok()
                .and_then(|s| parse_stat(&s))
            else {
                return false;
            };
            let started = clock.btime + i64::try_from(ticks).unwrap_or(i64::MAX) / clock.clk_tck;
            state != 'Z' && started.saturating_add(START_SLACK) >= since_unix
        })
        .collect();
    pids.sort_unstable();
    pids
}

fn alive(proc: &Path, pid: u32) -> bool {
    std::fs::read_to_string(proc.join(pid.to_string()).join("stat"))
        .ok()
        .and_then(|s| parse_stat(&s))
        .is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

fn signal(kill: &Path, sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    // `kill` reports pids that are already gone; that is expected here.
    let _ = Command::new(kill)
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn wait_gone(proc: &Path, pids: &[u32], limit: Duration) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(proc, p)).collect();
        if left.is_empty() || start.elapsed() >= limit {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, up to 2 s of grace, then SIGKILL, with the `kill` program at `kill` (an absolute
/// path from [`super::tools`]); returns the PIDs that are gone afterwards.
pub fn terminate(proc: &Path, kill: &Path, pids: &[u32]) -> Vec<u32> {
    let me = std::process::id();
    let targets: Vec<u32> = pids.iter().copied().filter(|&p| p != me && p > 1).collect();
    signal(kill, "TERM", &targets);
    let left = wait_gone(proc, &targets, Duration::from_secs(2));
    signal(kill, "KILL", &left);
    let left = wait_gone(proc, &left, Duration::from_secs(1));
    targets.into_iter().filter(|p| !left.contains(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "1817 (a (b) c) S 1780 1780 1040 0 -1 4194304 104 0 1 0 0 0 0 0 20 0 1 0 187056 2998272 390";
        assert_eq!(parse_stat(line), Some(('S', 187_056)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn environment_match_is_exact() {
        let env = b"HOME=/root\0SUDO_USER=alice\0SUDO_UID=1000\0";
        assert!(environ_matches(env, "alice", None));
        assert!(environ_matches(env, "nobody", Some(1000)));
        assert!(!environ_matches(env, "alic", None));
        assert!(!environ_matches(b"SUDO_USER=alicex\0", "alice", Some(5)));
    }

    #[test]
    fn finds_and_ends_a_child_started_with_sudo_user_in_its_environment() {
        let proc = Path::new("/proc");
        if !proc.join("stat").exists() {
            eprintln!("SKIP finds_and_ends_a_child…: /proc is not mounted");
            return;
        }
        let user = format!("brevet_test_{}", std::process::id());
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 5;
        let mut child = Command::new("/bin/sleep")
            .arg("30")
            .env("SUDO_USER", &user)
            .spawn()
            .unwrap();
        let found = sudo_processes(proc, &user, None, since);
        assert_eq!(found, vec![child.id()]);
        // A grant whose `not_before` (whole seconds) lies a second after the wall-clock second
        // the child started in: `btime` rounding must not make the child look older than it.
        assert_eq!(
            sudo_processes(proc, &user, None, since + 5 + 1),
            vec![child.id()],
            "a process started a moment after the grant was missed"
        );
        assert!(
            sudo_processes(proc, &user, None, since + 3600).is_empty(),
            "started before the grant"
        );
        // Reap concurrently so the child does not linger as a zombie.
        let pid = child.id();
        let reaper = std::thread::spawn(move || child.wait());
        let kill = crate::linux::tools::find("kill").expect("kill installed");
        assert_eq!(terminate(proc, &kill, &[pid]), vec![pid]);
        reaper.join().unwrap().unwrap();
    }
}
