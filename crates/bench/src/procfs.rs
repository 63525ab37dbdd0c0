//! What the benchmark reads from `/proc`: a process's resident memory and CPU time, and the
//! machine's CPU time, to say where the cycle time went.
//!
//! CPU times are in clock ticks of 1/100 s (`USER_HZ`, fixed at 100 by the Linux ABI on the
//! architectures we run on).

/// Seconds per clock tick in `/proc/*/stat` and `/proc/stat`.
const TICK_SECS: f64 = 0.01;

/// `VmRSS` of `pid` in KiB, or `None` once the process is gone.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// (user, system) CPU seconds used so far by `pid` (all its threads), or by this process when
/// `pid` is `None`.
pub(crate) fn cpu_secs(pid: Option<u32>) -> Option<(f64, f64)> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime as f64 * TICK_SECS, stime as f64 * TICK_SECS))
}

/// User plus system CPU seconds used so far by every process whose command name is `comm`
/// (processes that exited are not counted).
pub(crate) fn cpu_secs_named(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .filter_map(|pid| cpu_secs(Some(pid)))
        .map(|(user, system)| user + system)
        .sum()
}

/// The machine's CPU time so far, in seconds: (busy, total) summed over all cores.
pub(crate) fn machine_cpu_secs() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((
        total.saturating_sub(idle) as f64 * TICK_SECS,
        total as f64 * TICK_SECS,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
        assert!(cpu_secs(None).is_some());
        let (busy, total) = machine_cpu_secs().expect("/proc/stat");
        assert!(total >= busy && total > 0.0);
    }
}
