//! The load itself: `W` threads cycling until a deadline, a thread sampling the server's RSS
//! every 100 ms, and the CPU time used meanwhile by the server, by PostgreSQL, by this process
//! (the clients) and by the whole machine, read from `/proc`. Whatever the machine spent beyond
//! those is "other" work, and a run with much of it is flagged as disturbed.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cycles::{Pair, approve, create};
use crate::procfs;
use crate::stats::Summary;

/// CPU used during the load, in cores (CPU seconds per wall second).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuUse {
    /// `brevetd`, user and system.
    pub(crate) server: (f64, f64),
    /// This process (the clients), user and system.
    pub(crate) bench: (f64, f64),
    /// Every process named `postgres`.
    pub(crate) postgres: f64,
    /// Kernel threads and interrupts (disk writeback, loopback networking).
    pub(crate) kernel: f64,
    /// The whole machine (everything but idle and I/O wait).
    pub(crate) machine: f64,
    /// The machine's cores, as `/proc/stat` counted them over the interval.
    pub(crate) cores: f64,
}

impl CpuUse {
    /// Cores used by anything but `brevetd`, PostgreSQL, this process, kernel threads and
    /// interrupts: other work on the machine, which makes the figures unrepresentative.
    pub(crate) fn other(&self) -> f64 {
        let ours = self.server.0 + self.server.1 + self.bench.0 + self.bench.1;
        (self.machine - ours - self.postgres - self.kernel).max(0.0)
    }
}

/// Cores of other work above which a run is flagged as disturbed.
pub(crate) const NOISE_CORES: f64 = 0.25;

/// What one worker recorded.
#[derive(Default)]
struct Recorded {
    cycles: Vec<Duration>,
    creates: Vec<Duration>,
    approves: Vec<Duration>,
    failures: usize,
    first_error: Option<String>,
}

/// What the load measured, all workers together.
pub(crate) struct Load {
    pub(crate) elapsed: Duration,
    pub(crate) cycle: Summary,
    pub(crate) create: Summary,
    pub(crate) approve: Summary,
    pub(crate) failures: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) cpu: CpuUse,
    pub(crate) rss_peak_kib: u64,
}

/// `pairs.len()` workers cycling for `seconds`, and a thread sampling the server's RSS.
pub(crate) fn load(pairs: &[Pair], pid: u32, seconds: u64) -> Load {
    let start = Barrier::new(pairs.len() + 1);
    let stop = AtomicBool::new(false);
    let (recorded, rss_peak_kib, elapsed, cpu) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(procfs::rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        let workers: Vec<_> = pairs
            .iter()
            .map(|pair| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    worker(pair, Instant::now() + Duration::from_secs(seconds))
                })
            })
            .collect();
        let before = CpuSnapshot::now(pid);
        start.wait();
        let t = Instant::now();
        let recorded: Vec<Recorded> = workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| Recorded {
                    failures: 1,
                    first_error: Some("a worker thread panicked".into()),
                    ..Recorded::default()
                })
            })
            .collect();
        let elapsed = t.elapsed();
        let cpu = CpuSnapshot::now(pid).since(&before, elapsed);
        stop.store(true, Ordering::Relaxed);
        let peak = sampler.join().unwrap_or(0);
        (recorded, peak, elapsed, cpu)
    });
    let mut all = Recorded::default();
    for r in recorded {
        all.cycles.extend(r.cycles);
        all.creates.extend(r.creates);
        all.approves.extend(r.approves);
        all.failures += r.failures;
        if all.first_error.is_none() {
            all.first_error = r.first_error;
        }
    }
    Load {
        elapsed,
        cycle: Summary::of(&mut all.cycles),
        create: Summary::of(&mut all.creates),
        approve: Summary::of(&mut all.approves),
        failures: all.failures,
        first_error: all.first_error,
        cpu,
        rss_peak_kib,
    }
}

fn worker(pair: &Pair, deadline: Instant) -> Recorded {
    let mut rec = Recorded::default();
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let result = create(pair).and_then(|r| {
            let t1 = Instant::now();
            approve(pair, &r.id).map(|_| (t1, Instant::now()))
        });
        match result {
            Ok((t1, t2)) => {
                rec.creates.push(t1 - t0);
                rec.approves.push(t2 - t1);
                rec.cycles.push(t2 - t0);
            }
            Err(e) => {
                rec.failures += 1;
                rec.first_error.get_or_insert(e);
            }
        }
    }
    rec
}

/// CPU seconds so far, by whom.
struct CpuSnapshot {
    server: (f64, f64),
    bench: (f64, f64),
    postgres: f64,
    kernel_threads: f64,
    machine: procfs::MachineCpu,
}

impl CpuSnapshot {
    fn now(pid: u32) -> CpuSnapshot {
        CpuSnapshot {
            server: procfs::cpu_secs(Some(pid)).unwrap_or_default(),
            bench: procfs::cpu_secs(None).unwrap_or_default(),
            postgres: procfs::postgres_cpu_secs(),
            kernel_threads: procfs::kernel_threads_cpu_secs(),
            machine: procfs::machine_cpu_secs().unwrap_or_default(),
        }
    }

    fn since(&self, before: &CpuSnapshot, wall: Duration) -> CpuUse {
        let wall = wall.as_secs_f64().max(1e-9);
        // Processes that exited meanwhile make a sum shrink: never below zero.
        let rate = |now: f64, then: f64| ((now - then) / wall).max(0.0);
        let (m, m0) = (&self.machine, &before.machine);
        CpuUse {
            server: (
                rate(self.server.0, before.server.0),
                rate(self.server.1, before.server.1),
            ),
            bench: (
                rate(self.bench.0, before.bench.0),
                rate(self.bench.1, before.bench.1),
            ),
            postgres: rate(self.postgres, before.postgres),
            kernel: rate(self.kernel_threads, before.kernel_threads)
                + rate(m.interrupts, m0.interrupts),
            machine: rate(m.busy, m0.busy),
            cores: rate(m.total, m0.total),
        }
    }
}
