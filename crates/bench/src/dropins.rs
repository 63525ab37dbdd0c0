//! The timed part of `brevet-bench agents`: grants go to agents and come off them, and the
//! benchmark watches the drop-in files appear and disappear in the sandboxes.
//!
//! `P` workers (one requester and one approver each) share `M` grants. Grant `k` goes to agent
//! `splitmix64(k) mod N`, so runs are repeatable and the agents are picked evenly at random.
//! Unless `burst` is asked for, a worker waits before granting on an agent that had a grant less
//! than [`SPACING`] ago: `not_after` is in whole seconds, and grants ending in the same second on
//! one device are removed one after the other, which is the burst case, not the latency of one
//! grant. (With one agent that paces the run to one grant per [`SPACING`].) With a `rate`, grant
//! `k` is not started before `k / rate` seconds into the run. For each grant a
//! worker creates a request for the role `bench` with a short duration, approves
//! it, and from the moment the approval's answer arrives checks every millisecond for the
//! drop-in: that interval is *approval → in force*. It then reads the grant's `not_after` and
//! hands the file to the expiry watcher, which checks due files every millisecond (files not yet
//! due every 100 ms, to catch an early removal) and records *`not_after` → gone*: the wall clock
//! when the file was first seen missing, minus the `not_after` instant of the signed grant.
//! Both figures therefore include up to about a millisecond of polling.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brevet_proto::api::{CreateRequest, RequestState};
use brevet_proto::timefmt::parse_rfc3339;

use crate::cycles::{Pair, approve};
use crate::fleet::Fleet;
use crate::stats::Summary;

/// The role the benchmark appends to `brevet.toml`.
pub(crate) const ROLE: &str = "bench";
pub(crate) const ROLE_TOML: &str = r#"[roles.bench]
commands = ["/usr/bin/id"]
runas = "root"
max_duration = "1h"
approvals = 1
ticket = "optional"
"#;

/// How often a worker looks for a new drop-in, and the watcher for a due one to go.
const POLL: Duration = Duration::from_millis(1);
/// How often the watcher looks at drop-ins that are not due yet.
const POLL_NOT_DUE: Duration = Duration::from_millis(100);
/// The least time between two grants on one agent, unless `burst`.
const SPACING: Duration = Duration::from_millis(1100);
/// A drop-in still present this long after `not_after` counts as a failure.
const GONE_TIMEOUT_US: i64 = 30_000_000;

/// What the timed phase recorded.
#[derive(Debug, Default)]
pub(crate) struct Timed {
    pub(crate) in_force: Summary,
    pub(crate) gone: Summary,
    /// Request and approval calls, as the workers saw them.
    pub(crate) approve_call: Summary,
    pub(crate) elapsed: Duration,
    pub(crate) failures: usize,
    pub(crate) first_error: Option<String>,
}

/// A drop-in in force, waiting for its `not_after`.
struct Watch {
    path: PathBuf,
    grant: String,
    not_after_us: i64,
}

#[derive(Default)]
struct Failures {
    count: usize,
    first: Option<String>,
}

impl Failures {
    fn add(&mut self, e: String) {
        self.count += 1;
        self.first.get_or_insert(e);
    }
}

/// The agent for grant `k`: SplitMix64 of `k`, modulo `n`.
pub(crate) fn pick(k: usize, n: usize) -> usize {
    let mut z = (k as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % n as u64) as usize
}

/// The wall clock in microseconds since 1970.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// How the grants are made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) grants: usize,
    pub(crate) duration_secs: u64,
    /// No spacing between grants on one agent.
    pub(crate) burst: bool,
    /// At most this many grants per second over the whole fleet (0: as fast as the workers go).
    pub(crate) rate: f64,
}

/// When each agent may next get a grant.
struct Slots(Mutex<Vec<Option<Instant>>>);

impl Slots {
    /// Reserves the next slot of agent `i` and sleeps until it comes.
    fn wait(&self, i: usize) {
        let now = Instant::now();
        let at = {
            let mut slots = lock(&self.0);
            let Some(slot) = slots.get_mut(i) else {
                return;
            };
            let at = slot.map_or(now, |s| s.max(now));
            *slot = Some(at + SPACING);
            at
        };
        std::thread::sleep(at.saturating_duration_since(now));
    }
}

/// What the workers share: the next grant to make, when the run started, the agents' slots,
/// and the failures.
struct Shared {
    next: AtomicUsize,
    start: Instant,
    slots: Option<Slots>,
    failures: Mutex<Failures>,
}

/// Runs the plan over the fleet with one worker per pair.
pub(crate) fn run(fleet: &Fleet, pairs: &[Pair], plan: Plan) -> Timed {
    let shared = Shared {
        next: AtomicUsize::new(0),
        start: Instant::now(),
        slots: (!plan.burst).then(|| Slots(Mutex::new(vec![None; fleet.len()]))),
        failures: Mutex::new(Failures::default()),
    };
    let (tx, rx) = mpsc::channel::<Watch>();
    let (in_force, approve_call, gone) = std::thread::scope(|s| {
        let watcher = s.spawn(|| watch(rx, &shared.failures));
        let workers: Vec<_> = pairs
            .iter()
            .map(|pair| {
                let tx = tx.clone();
                let shared = &shared;
                s.spawn(move || worker(fleet, pair, plan, shared, &tx))
            })
            .collect();
        drop(tx);
        let mut in_force = Vec::new();
        let mut calls = Vec::new();
        for w in workers {
            match w.join() {
                Ok((f, c)) => {
                    in_force.extend(f);
                    calls.extend(c);
                }
                Err(_) => lock(&shared.failures).add("a worker thread panicked".into()),
            }
        }
        let gone = watcher.join().unwrap_or_else(|_| {
            lock(&shared.failures).add("the expiry watcher panicked".into());
            Vec::new()
        });
        (in_force, calls, gone)
    });
    let (mut in_force, mut approve_call, mut gone) = (in_force, approve_call, gone);
    let elapsed = shared.start.elapsed();
    let f = shared
        .failures
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    Timed {
        in_force: Summary::of(&mut in_force),
        gone: Summary::of(&mut gone),
        approve_call: Summary::of(&mut approve_call),
        elapsed,
        failures: f.count,
        first_error: f.first,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One worker: grants until none are left. Returns the in-force latencies and the
/// create + approve call times.
fn worker(
    fleet: &Fleet,
    pair: &Pair,
    plan: Plan,
    shared: &Shared,
    tx: &Sender<Watch>,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut in_force, mut calls) = (Vec::new(), Vec::new());
    loop {
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        if k >= plan.grants {
            break;
        }
        if plan.rate > 0.0 {
            let at = shared.start + Duration::from_secs_f64(k as f64 / plan.rate);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
        }
        let i = pick(k, fleet.len());
        if let Some(slots) = &shared.slots {
            slots.wait(i);
        }
        match one(fleet, pair, i, plan.duration_secs) {
            Ok((latency, call, watch)) => {
                in_force.push(latency);
                calls.push(call);
                if tx.send(watch).is_err() {
                    lock(&shared.failures).add("the expiry watcher stopped early".into());
                    break;
                }
            }
            Err(e) => lock(&shared.failures).add(e),
        }
    }
    (in_force, calls)
}

/// Requests and approves one grant on agent `i` and waits for its drop-in.
fn one(
    fleet: &Fleet,
    pair: &Pair,
    i: usize,
    duration_secs: u64,
) -> Result<(Duration, Duration, Watch), String> {
    let device = fleet.device(i).ok_or("no such agent")?.to_owned();
    let t_call = Instant::now();
    let r = pair
        .requester
        .create_request(&CreateRequest {
            device: device.clone(),
            role: ROLE.into(),
            duration: format!("{duration_secs}s"),
            ticket: None,
            reason: "benchmark: time the drop-in".into(),
            start: None,
        })
        .map_err(|e| format!("create on `{device}`: {e}"))?;
    if r.state != RequestState::Pending {
        return Err(format!(
            "create on `{device}`: request `{}` is `{}`, not pending",
            r.id,
            r.state.as_str()
        ));
    }
    let approved = approve(pair, &r.id)?;
    let t0 = Instant::now();
    let call = t0 - t_call;
    let grant = approved.grant_id.ok_or("approved without a grant")?;
    let path = fleet.drop_in(i, &grant).ok_or("no such agent")?;
    // After not_after the agent would refuse the grant as expired: wait no longer than that.
    let limit = Duration::from_secs(duration_secs + 1);
    let latency = loop {
        if path.exists() {
            break t0.elapsed();
        }
        if t0.elapsed() > limit {
            return Err(format!(
                "grant `{grant}` on `{device}`: no drop-in within {} s of the approval",
                limit.as_secs()
            ));
        }
        std::thread::sleep(POLL);
    };
    let view = pair
        .requester
        .grant(&grant)
        .map_err(|e| format!("read grant `{grant}`: {e}"))?;
    let not_after =
        parse_rfc3339("not_after", &view.not_after).map_err(|e| format!("grant `{grant}`: {e}"))?;
    Ok((
        latency,
        call,
        Watch {
            path,
            grant,
            not_after_us: not_after * 1_000_000,
        },
    ))
}

/// Watches drop-ins until every one handed over is gone (or late beyond the timeout).
fn watch(rx: Receiver<Watch>, failures: &Mutex<Failures>) -> Vec<Duration> {
    let mut pending: Vec<(Watch, i64)> = Vec::new();
    let mut gone = Vec::new();
    let mut open = true;
    loop {
        // Take what the workers sent; sleep a poll interval when there is nothing to do.
        let first = if open {
            match rx.recv_timeout(POLL) {
                Ok(w) => Some(w),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    None
                }
            }
        } else {
            std::thread::sleep(POLL);
            None
        };
        pending.extend(first.into_iter().chain(rx.try_iter()).map(|w| (w, 0)));
        if !open && pending.is_empty() {
            return gone;
        }
        let now = now_us();
        pending.retain_mut(|(w, last_look)| {
            let due = now >= w.not_after_us - 5_000;
            if !due && now - *last_look < POLL_NOT_DUE.as_micros() as i64 {
                return true;
            }
            *last_look = now;
            if w.path.exists() {
                if now - w.not_after_us > GONE_TIMEOUT_US {
                    lock(failures).add(format!(
                        "grant `{}`: drop-in still present {} s after not_after",
                        w.grant,
                        GONE_TIMEOUT_US / 1_000_000
                    ));
                    return false;
                }
                return true;
            }
            let seen = now_us();
            if seen < w.not_after_us {
                lock(failures).add(format!(
                    "grant `{}`: drop-in removed {} µs before not_after",
                    w.grant,
                    w.not_after_us - seen
                ));
            } else {
                gone.push(Duration::from_micros((seen - w.not_after_us) as u64));
            }
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_spread_over_the_fleet() {
        let mut hits = [0usize; 10];
        for k in 0..10_000 {
            hits[pick(k, 10)] += 1;
        }
        assert!(hits.iter().all(|&h| (900..1100).contains(&h)), "{hits:?}");
        assert_eq!(pick(7, 1), 0);
    }
}
