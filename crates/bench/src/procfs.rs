//! What the benchmark reads from `/proc`: a process's resident memory and CPU time, and the
//! machine's CPU time, to say where the cycle time went and whether other work disturbed a run.
//!
//! CPU times are in clock ticks of 1/100 s (`USER_HZ`, fixed at 100 by the Linux ABI on the
//! architectures we run on).

/// Seconds per clock tick in `/proc/*/stat` and `/proc/stat`.
const TICK_SECS: f64 = 0.01;

/// `VmRSS` of `pid` in KiB, or `None` once the process is gone.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// `RssAnon` of `pid` in KiB: the resident memory that is the process's own (heap, stacks),
/// without the file-backed pages (the executable, shared libraries) that copies of one program
/// share.
pub(crate) fn rss_anon_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "RssAnon:")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Write calls made so far by `pid`, and the bytes it caused to be written to storage
/// (`syscw` and `write_bytes` of `/proc/PID/io`).
pub(crate) fn writes(pid: u32) -> Option<(u64, u64)> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("syscw:")?, field("write_bytes:")?))
}

/// The soft limit on open files of this process (inherited by the processes it spawns).
pub(crate) fn open_files_limit() -> Option<u64> {
    open_files_limit_of("self")
}

/// The soft limit on open files of process `pid` (`self` for this one).
pub(crate) fn open_files_limit_of(pid: &str) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// One process's `/proc/PID/stat`, the fields we use.
struct Stat {
    comm: String,
    ppid: u32,
    user: f64,
    system: f64,
    /// User and system time of the children it waited for (e.g. the `visudo` runs of an agent).
    children: f64,
}

fn stat(path: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses: it
    // ends at the last `)`.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Stat {
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        user: ticks(11)? as f64 * TICK_SECS,
        system: ticks(12)? as f64 * TICK_SECS,
        children: (ticks(13)? + ticks(14)?) as f64 * TICK_SECS,
    })
}

/// (user, system) CPU seconds used so far by `pid` (all its threads), or by this process when
/// `pid` is `None`.
pub(crate) fn cpu_secs(pid: Option<u32>) -> Option<(f64, f64)> {
    let s = match pid {
        Some(pid) => stat(&format!("/proc/{pid}/stat"))?,
        None => stat("/proc/self/stat")?,
    };
    Some((s.user, s.system))
}

/// CPU seconds used so far by `pid` and by the children it has waited for.
pub(crate) fn cpu_secs_with_children(pid: u32) -> Option<f64> {
    let s = stat(&format!("/proc/{pid}/stat"))?;
    Some(s.user + s.system + s.children)
}

/// CPU seconds used so far by the live processes that `wanted(pid, comm, ppid)` picks.
fn cpu_secs_where(wanted: impl Fn(u32, &str, u32) -> bool) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(&format!("/proc/{pid}/stat"))?)))
        .filter(|(pid, s)| wanted(*pid, &s.comm, s.ppid))
        .map(|(_, s)| s.user + s.system)
        .sum()
}

/// CPU seconds used so far by every live process named `postgres`.
pub(crate) fn postgres_cpu_secs() -> f64 {
    cpu_secs_where(|_, comm, _| comm == "postgres")
}

/// CPU seconds used so far by live kernel threads (`kthreadd`, pid 2, and its children): disk
/// writeback and the like, done on behalf of whoever wrote.
pub(crate) fn kernel_threads_cpu_secs() -> f64 {
    cpu_secs_where(|pid, _, ppid| pid == 2 || ppid == 2)
}

/// The machine's CPU time so far, in seconds summed over all cores.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MachineCpu {
    /// Everything but idle and I/O wait.
    pub(crate) busy: f64,
    pub(crate) total: f64,
    /// Hard and soft interrupts (loopback networking is mostly soft interrupts), which are not
    /// charged to any process.
    pub(crate) interrupts: f64,
}

pub(crate) fn machine_cpu_secs() -> Option<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    let total: u64 = v.iter().sum();
    Some(MachineCpu {
        busy: total.saturating_sub(at(3) + at(4)) as f64 * TICK_SECS,
        total: total as f64 * TICK_SECS,
        interrupts: (at(5) + at(6)) as f64 * TICK_SECS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_the_machine() {
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
        assert!(rss_anon_kib(std::process::id()).is_some_and(|k| k > 0));
        assert!(open_files_limit().is_some_and(|n| n > 0));
        assert!(writes(std::process::id()).is_some());
        assert!(cpu_secs_with_children(std::process::id()).is_some());
        assert!(cpu_secs(None).is_some());
        let me = stat("/proc/self/stat").expect("own stat");
        assert!(!me.comm.is_empty() && me.ppid > 0);
        let m = machine_cpu_secs().expect("/proc/stat");
        assert!(m.total >= m.busy && m.busy >= m.interrupts && m.total > 0.0);
    }
}
