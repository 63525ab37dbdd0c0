//! `brevet-bench agents`: real `brevet-agent` processes against one real `brevetd`, timing how
//! fast an approval is in force on the device and how promptly it is gone at `not_after`.
//!
//! Steps: start `brevetd` on SQLite with the role `bench` appended to its `brevet.toml`
//! ([`dropins::ROLE_TOML`]: `/usr/bin/id`, at most 1 h, one approval); log in as admin; measure
//! the [`floor`] on this disk; enroll and start `N` sandboxed agents ([`Fleet`]); wait until the
//! server's `brevet_device_polls_waiting` gauge counts all `N`; measure the fleet idle (CPU and
//! writes over [`IDLE_WINDOW`], then the RSS of every agent and of the server, then the floor
//! again, now sharing the disk with the idle fleet); add `P` requesters and approvers; run the
//! timed phase ([`dropins`]); read the RSS again. Everything is killed and
//! removed at the end, also on failure (the fleet and the server kill their children on drop).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cycles::people;
use crate::dropins::{self, Timed};
use crate::fleet::Fleet;
use crate::floor::{self, Floor};
use crate::load::NOISE_CORES;
use crate::procfs;
use crate::server_proc::Server;

/// Drop-ins installed and removed for the floor.
const FLOOR_SAMPLES: usize = 200;
/// How long the connected, idle fleet is watched for its CPU use and writes: one reconcile
/// period of the agents (30 s by default), so that each agent's reconcile, scan and report
/// falls in it once, wherever its phase.
const IDLE_WINDOW: Duration = Duration::from_secs(30);
/// File descriptors the server needs beside one per agent connection.
const SPARE_FDS: u64 = 256;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Agents (`N`).
    pub(crate) count: usize,
    /// Grants timed (`M`).
    pub(crate) grants: usize,
    /// Workers granting at the same time (`P`).
    pub(crate) parallel: usize,
    /// Each grant's duration in seconds.
    pub(crate) duration_secs: u64,
    /// No spacing between grants on one agent (see [`dropins`]).
    pub(crate) burst: bool,
    /// At most this many grants per second (0: no limit).
    pub(crate) rate: f64,
}

/// CPU in cores (CPU seconds per wall second) over an interval.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    pub(crate) server: f64,
    /// The agents and the `visudo` runs they waited for.
    pub(crate) agents: f64,
    /// This process: the benchmark's clients and file polling.
    pub(crate) bench: f64,
    /// Kernel threads and interrupts (disk writeback, loopback networking).
    pub(crate) kernel: f64,
    pub(crate) machine: f64,
    pub(crate) cores: f64,
}

impl Cpu {
    /// Cores used by anything else: other work on the machine, which disturbs the figures.
    pub(crate) fn other(&self) -> f64 {
        (self.machine - self.server - self.agents - self.bench - self.kernel).max(0.0)
    }
}

/// What the agents wrote while idle, per second over [`IDLE_WINDOW`], summed over the fleet.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IdleWrites {
    /// `write` calls.
    pub(crate) calls: f64,
    /// Bytes sent to storage, in KiB.
    pub(crate) kib: f64,
}

/// Resident memory of the agents, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FleetRss {
    pub(crate) median: u64,
    pub(crate) max: u64,
    /// Median `RssAnon`: the part that is each agent's own.
    pub(crate) anon_median: u64,
    /// Sum of `RssAnon` over the fleet.
    pub(crate) anon_total: u64,
}

/// What `agents` measured.
#[derive(Debug)]
pub(crate) struct AgentsReport {
    pub(crate) opts: Options,
    pub(crate) floor: Floor,
    /// The same, measured again while the fleet is connected and idle.
    pub(crate) floor_with_fleet: Floor,
    /// Adding, enrolling and starting every agent.
    pub(crate) enroll: Duration,
    /// From the last agent started until all were waiting for grants.
    pub(crate) connect: Duration,
    pub(crate) idle_cpu: Cpu,
    pub(crate) idle_writes: IdleWrites,
    pub(crate) rss_idle: FleetRss,
    pub(crate) rss_after: FleetRss,
    pub(crate) server_rss_start_kib: u64,
    pub(crate) server_rss_connected_kib: u64,
    /// After the requesters and approvers were added and logged in (Argon2id, see BENCHMARKS.md).
    pub(crate) server_rss_people_kib: u64,
    pub(crate) server_rss_peak_kib: u64,
    pub(crate) timed: Timed,
    pub(crate) timed_cpu: Cpu,
}

pub(crate) fn run(brevetd: &Path, agent_bin: &Path, opts: Options) -> Result<AgentsReport, String> {
    if opts.count == 0 || opts.grants == 0 || opts.parallel == 0 || opts.duration_secs == 0 {
        return Err(
            "`--count`, `--grants`, `--parallel` and `--duration` must be at least 1".into(),
        );
    }
    let limit = procfs::open_files_limit().unwrap_or(0);
    let needed = opts.count as u64 + SPARE_FDS;
    if limit < needed {
        return Err(format!(
            "the open-files limit is {limit}, and the server needs {needed} for {} agents: raise \
             it (`ulimit -n {needed}`) and run again",
            opts.count
        ));
    }
    let visudo = floor::find_visudo().ok_or(
        "`visudo` is not installed: the benchmark measures agents that check drop-ins with the \
         real visudo (install sudo)",
    )?;

    let server = Server::start(brevetd, None, dropins::ROLE_TOML)?;
    let server_pid = server.pid();
    std::thread::sleep(Duration::from_millis(500));
    let admin = server.admin.login(&server.anonymous()?)?;
    let server_rss_start_kib = procfs::rss_kib(server_pid).unwrap_or(0);

    let mut fleet = Fleet::new()?;
    let floor = floor::measure(&visudo, fleet.path(), FLOOR_SAMPLES)?;
    println!(
        "agents: starting {} agents (enroll and run, 4 at a time) …",
        opts.count
    );
    let t = Instant::now();
    fleet.start(agent_bin, &server, &admin, opts.count)?;
    let enroll = t.elapsed();
    let timeout = Duration::from_secs(60) + Duration::from_millis(100) * opts.count as u32;
    let connect = fleet.wait_connected(&admin, timeout)?;
    println!(
        "agents: {} started in {:.1} s, all waiting for grants {:.1} s later",
        fleet.len(),
        enroll.as_secs_f64(),
        connect.as_secs_f64()
    );

    std::thread::sleep(Duration::from_secs(2));
    let pids = fleet.pids();
    let before = Snapshot::now(server_pid, &pids);
    let writes_before = fleet_writes(&pids);
    let t = Instant::now();
    std::thread::sleep(IDLE_WINDOW);
    let idle_cpu = Snapshot::now(server_pid, &pids).since(&before, t.elapsed());
    let writes_after = fleet_writes(&pids);
    let secs = t.elapsed().as_secs_f64();
    let idle_writes = IdleWrites {
        calls: writes_after.0.saturating_sub(writes_before.0) as f64 / secs,
        kib: writes_after.1.saturating_sub(writes_before.1) as f64 / 1024.0 / secs,
    };
    let rss_idle = fleet_rss(&pids);
    let server_rss_connected_kib = procfs::rss_kib(server_pid).unwrap_or(0);
    let floor_with_fleet = floor::measure(&visudo, fleet.path(), FLOOR_SAMPLES)?;
    fleet.check_alive()?;

    let pairs = people(&server, &admin, opts.parallel)?;
    let server_rss_people_kib = procfs::rss_kib(server_pid).unwrap_or(0);
    let stop = AtomicBool::new(false);
    let (timed, timed_cpu, server_rss_peak_kib) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(procfs::rss_kib(server_pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        let before = Snapshot::now(server_pid, &pids);
        let plan = dropins::Plan {
            grants: opts.grants,
            duration_secs: opts.duration_secs,
            burst: opts.burst,
            rate: opts.rate,
        };
        let timed = dropins::run(&fleet, &pairs, plan);
        let cpu = Snapshot::now(server_pid, &pids).since(&before, timed.elapsed);
        stop.store(true, Ordering::Relaxed);
        (timed, cpu, sampler.join().unwrap_or(0))
    });
    let mut timed = timed;
    if let Err(e) = fleet.check_alive() {
        timed.failures += 1;
        timed.first_error.get_or_insert(e);
    }
    let rss_after = fleet_rss(&pids);
    Ok(AgentsReport {
        opts,
        floor,
        floor_with_fleet,
        enroll,
        connect,
        idle_cpu,
        idle_writes,
        rss_idle,
        rss_after,
        server_rss_start_kib,
        server_rss_connected_kib,
        server_rss_people_kib,
        server_rss_peak_kib: server_rss_peak_kib.max(server_rss_people_kib),
        timed,
        timed_cpu,
    })
}

/// Write calls and bytes written so far, summed over `pids`.
fn fleet_writes(pids: &[u32]) -> (u64, u64) {
    pids.iter()
        .filter_map(|&p| procfs::writes(p))
        .fold((0, 0), |(c, b), (c1, b1)| (c + c1, b + b1))
}

fn fleet_rss(pids: &[u32]) -> FleetRss {
    let mut rss: Vec<u64> = pids.iter().filter_map(|&p| procfs::rss_kib(p)).collect();
    let mut anon: Vec<u64> = pids
        .iter()
        .filter_map(|&p| procfs::rss_anon_kib(p))
        .collect();
    rss.sort_unstable();
    anon.sort_unstable();
    let median = |v: &[u64]| v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0);
    FleetRss {
        median: median(&rss),
        max: rss.last().copied().unwrap_or(0),
        anon_median: median(&anon),
        anon_total: anon.iter().sum(),
    }
}

/// CPU seconds so far.
struct Snapshot {
    server: f64,
    agents: f64,
    bench: f64,
    kernel_threads: f64,
    machine: procfs::MachineCpu,
}

impl Snapshot {
    fn now(server: u32, agents: &[u32]) -> Snapshot {
        let bench = procfs::cpu_secs(None).unwrap_or_default();
        Snapshot {
            server: procfs::cpu_secs(Some(server))
                .map(|(u, s)| u + s)
                .unwrap_or(0.0),
            agents: agents
                .iter()
                .filter_map(|&p| procfs::cpu_secs_with_children(p))
                .sum(),
            bench: bench.0 + bench.1,
            kernel_threads: procfs::kernel_threads_cpu_secs(),
            machine: procfs::machine_cpu_secs().unwrap_or_default(),
        }
    }

    fn since(&self, before: &Snapshot, wall: Duration) -> Cpu {
        let wall = wall.as_secs_f64().max(1e-9);
        let rate = |now: f64, then: f64| ((now - then) / wall).max(0.0);
        Cpu {
            server: rate(self.server, before.server),
            agents: rate(self.agents, before.agents),
            bench: rate(self.bench, before.bench),
            kernel: rate(self.kernel_threads, before.kernel_threads)
                + rate(self.machine.interrupts, before.machine.interrupts),
            machine: rate(self.machine.busy, before.machine.busy),
            cores: rate(self.machine.total, before.machine.total),
        }
    }
}

impl AgentsReport {
    pub(crate) fn print(&self) {
        use crate::stats::{mib, ms};
        let o = &self.opts;
        let t = &self.timed;
        println!(
            "agents: {} agents, {} grants of {} s, {} at a time{} (timed phase {:.1} s)",
            o.count,
            o.grants,
            o.duration_secs,
            o.parallel,
            match (o.burst, o.rate > 0.0) {
                (true, _) => ", burst".to_owned(),
                (false, true) => format!(", at most {} per second", o.rate),
                (false, false) => String::new(),
            },
            t.elapsed.as_secs_f64()
        );
        println!(
            "  {} in force, {} gone, {} failures",
            t.in_force.count, t.gone.count, t.failures
        );
        if let Some(e) = &t.first_error {
            println!("  first failure: {e}");
        }
        for (name, s) in [
            ("approval → in force", &t.in_force),
            ("not_after → gone", &t.gone),
            ("create + approve calls", &t.approve_call),
        ] {
            println!(
                "  {name:<24} p50 {} ms, p99 {} ms, max {} ms, mean {} ms",
                ms(s.p50),
                ms(s.p99),
                ms(s.max),
                ms(s.mean)
            );
        }
        println!("  before the agents start:");
        self.floor.print();
        println!("  with the {} agents connected and idle:", o.count);
        self.floor_with_fleet.print();
        let (i, r, a) = (&self.idle_cpu, &self.rss_idle, &self.rss_after);
        println!(
            "  idle, {} agents connected ({} s): brevetd {:.3} cores, agents {:.3} cores, \
             kernel {:.3}, other {:.2}; machine {:.2} of {:.1}",
            o.count,
            IDLE_WINDOW.as_secs(),
            i.server,
            i.agents,
            i.kernel,
            i.other(),
            i.machine,
            i.cores
        );
        println!(
            "  idle agents wrote: {:.0} write calls/s, {:.0} KiB/s to storage (whole fleet)",
            self.idle_writes.calls, self.idle_writes.kib
        );
        println!(
            "  agent RSS idle: median {} MiB, max {} MiB; own (RssAnon) median {} MiB, \
             fleet total {} MiB; after the grants: median {} MiB, max {} MiB",
            mib(r.median),
            mib(r.max),
            mib(r.anon_median),
            mib(r.anon_total),
            mib(a.median),
            mib(a.max)
        );
        println!(
            "  brevetd RSS: after start {} MiB, with {} agents connected {} MiB, after adding \
             {} requester(s) and approver(s) {} MiB, peak while granting {} MiB",
            mib(self.server_rss_start_kib),
            o.count,
            mib(self.server_rss_connected_kib),
            o.parallel,
            mib(self.server_rss_people_kib),
            mib(self.server_rss_peak_kib)
        );
        let c = &self.timed_cpu;
        println!(
            "  CPU while granting: brevetd {:.2}, agents (with visudo) {:.2}, benchmark {:.2}, \
             kernel {:.2}, other {:.2}; machine {:.2} of {:.1} cores",
            c.server,
            c.agents,
            c.bench,
            c.kernel,
            c.other(),
            c.machine,
            c.cores
        );
        for (when, cpu) in [("idle", i), ("while granting", c)] {
            if cpu.other() > NOISE_CORES {
                println!(
                    "  WARNING: other processes used {:.2} cores {when}; these figures are \
                     disturbed, run again on a quiet machine",
                    cpu.other()
                );
            }
        }
    }
}
