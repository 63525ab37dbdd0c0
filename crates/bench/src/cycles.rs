//! `brevet-bench cycles`: whole request → approve cycles against a real `brevetd` over HTTPS.
//!
//! Black box: the server is the release `brevetd` binary in a child process ([`Server`]), driven
//! only through `brevet_cli::client::Client`, the blocking client the CLI uses. As admin the
//! benchmark adds the device `web-01`, then `W` requesters (group `operators`) and `W` approvers
//! (group `approvers`), and logs each in once; the approvers' login counts as their fresh second
//! factor (5 minutes), so approving needs no TOTP code. Then `W` threads, one requester and one
//! approver each, loop until the deadline: create a request (`pkg-update`, 30m, ticket CHG-1),
//! approve it, and check that the answer is `approved` with a grant. Every failure is counted
//! and the first one quoted. Afterwards `/metrics` must count exactly the approvals we saw.
//!
//! To say where the time goes it also records each call's latency, the CPU time used during the
//! load (see [`crate::load`]), and, before the load, the latency of single calls on an idle server
//! ([`Probe`]).

use std::time::{Duration, Instant};

use brevet_cli::client::Client;
use brevet_proto::api::{AddDevice, CreateRequest, RequestState, RequestView};
use brevet_testkit::Postgres;

use crate::load::{CpuUse, NOISE_CORES, load};
use crate::procfs;
use crate::server_proc::{Credentials, Server};
use crate::stats::Summary;

/// Which database the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::Postgres => "PostgreSQL",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) db: Db,
    pub(crate) seconds: u64,
    pub(crate) workers: usize,
}

/// Calls per kind in the idle-server probe.
const PROBE_CALLS: usize = 50;

/// Median latency of single calls on an otherwise idle server, one client.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Probe {
    pub(crate) info: Duration,
    pub(crate) whoami: Duration,
    pub(crate) create: Duration,
    pub(crate) approve: Duration,
}

/// What `cycles` measured.
#[derive(Debug, Clone)]
pub(crate) struct CyclesReport {
    pub(crate) opts: Options,
    pub(crate) elapsed: Duration,
    pub(crate) failures: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) cycle: Summary,
    pub(crate) create: Summary,
    pub(crate) approve: Summary,
    pub(crate) probe: Probe,
    pub(crate) cpu: CpuUse,
    pub(crate) rss_idle_kib: u64,
    pub(crate) rss_ready_kib: u64,
    pub(crate) rss_peak_kib: u64,
}

impl CyclesReport {
    pub(crate) fn per_second(&self) -> f64 {
        self.cycle.count as f64 / self.elapsed.as_secs_f64()
    }
}

/// One requester and its approver.
pub(crate) struct Pair {
    pub(crate) requester: Client,
    pub(crate) approver: Client,
}

/// Runs the benchmark. `Ok(None)` when PostgreSQL was asked for but is not installed (the
/// reason is printed).
pub(crate) fn run(
    brevetd: &std::path::Path,
    opts: Options,
) -> Result<Option<CyclesReport>, String> {
    if opts.workers == 0 || opts.seconds == 0 {
        return Err("`--workers` and `--seconds` must be at least 1".into());
    }
    // Declared before the server, so the cluster outlives it.
    let pg = match opts.db {
        Db::Sqlite => None,
        Db::Postgres => match Postgres::start() {
            Ok(Some(pg)) => Some(pg),
            Ok(None) => {
                println!(
                    "SKIP cycles on PostgreSQL: no PostgreSQL server binaries (initdb, pg_ctl) \
                     on this machine"
                );
                return Ok(None);
            }
            Err(e) => return Err(format!("PostgreSQL failed to start: {e}")),
        },
    };
    let pg_url = pg.as_ref().map(Postgres::url);
    let server = Server::start(brevetd, pg_url.as_deref(), "")?;
    let pid = server.pid();
    std::thread::sleep(Duration::from_millis(500));
    let rss_idle_kib = procfs::rss_kib(pid).unwrap_or(0);

    let (admin, pairs) = setup(&server, opts.workers)?;
    let probe = probe(&pairs[0])?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_ready_kib = procfs::rss_kib(pid).unwrap_or(0);

    let load = load(&pairs, pid, opts.seconds);
    let approved = approved_count(&admin)?;
    let expected = load.cycle.count + PROBE_CALLS;
    let mut failures = load.failures;
    let mut first_error = load.first_error;
    if approved != expected {
        failures += 1;
        first_error.get_or_insert(format!(
            "the server counted {approved} approvals in /metrics, the benchmark saw {expected}"
        ));
    }
    Ok(Some(CyclesReport {
        opts,
        elapsed: load.elapsed,
        failures,
        first_error,
        cycle: load.cycle,
        create: load.create,
        approve: load.approve,
        probe,
        cpu: load.cpu,
        rss_idle_kib,
        rss_ready_kib,
        rss_peak_kib: load.rss_peak_kib.max(rss_ready_kib),
    }))
}

/// Adds the device and the people, and logs everyone in.
fn setup(server: &Server, workers: usize) -> Result<(Client, Vec<Pair>), String> {
    let anonymous = server.anonymous()?;
    let admin = server.admin.login(&anonymous)?;
    admin
        .add_device(&AddDevice {
            name: "web-01".into(),
            tags: [("env".to_owned(), "prod".to_owned())].into(),
            groups: vec!["web".into()],
            os: Some("linux".into()),
        })
        .map_err(|e| format!("cannot add the device `web-01`: {e}"))?;
    let pairs = people(server, &admin, workers)?;
    Ok((admin, pairs))
}

/// Adds `n` requesters (`op01`…, group `operators`) and `n` approvers (`ap01`…, group
/// `approvers`) as `admin`, and logs each in once.
pub(crate) fn people(server: &Server, admin: &Client, n: usize) -> Result<Vec<Pair>, String> {
    let person = |name: String, group: &str| -> Result<Client, String> {
        let created = admin
            .add_user(&name, &[group.to_owned()])
            .map_err(|e| format!("cannot add the user `{name}`: {e}"))?;
        Credentials::new(&name, &created.password, &created.totp_uri)?.login(&server.anonymous()?)
    };
    let mut pairs = Vec::with_capacity(n);
    for i in 1..=n {
        pairs.push(Pair {
            requester: person(format!("op{i:02}"), "operators")?,
            approver: person(format!("ap{i:02}"), "approvers")?,
        });
    }
    Ok(pairs)
}

fn ask() -> CreateRequest {
    CreateRequest {
        device: "web-01".into(),
        role: "pkg-update".into(),
        duration: "30m".into(),
        ticket: Some("CHG-1".into()),
        reason: "benchmark: apply security updates".into(),
        start: None,
    }
}

pub(crate) fn create(pair: &Pair) -> Result<RequestView, String> {
    let r = pair
        .requester
        .create_request(&ask())
        .map_err(|e| format!("create: {e}"))?;
    if r.state != RequestState::Pending {
        return Err(format!(
            "create: request `{}` is `{}`, not pending: {}",
            r.id,
            r.state.as_str(),
            r.decision.explain
        ));
    }
    Ok(r)
}

pub(crate) fn approve(pair: &Pair, id: &str) -> Result<RequestView, String> {
    let r = pair
        .approver
        .approve(id, None)
        .map_err(|e| format!("approve `{id}`: {e}"))?;
    if r.state != RequestState::Approved || r.grant_id.is_none() {
        return Err(format!(
            "approve: request `{id}` is `{}` with grant {:?}, expected approved with a grant",
            r.state.as_str(),
            r.grant_id
        ));
    }
    Ok(r)
}

/// Median latency of single calls, one client, server otherwise idle.
fn probe(pair: &Pair) -> Result<Probe, String> {
    let mut info = Vec::new();
    let mut whoami = Vec::new();
    let mut creates = Vec::new();
    let mut approves = Vec::new();
    for _ in 0..PROBE_CALLS {
        let t = Instant::now();
        pair.requester
            .info()
            .map_err(|e| format!("probe /v1/info: {e}"))?;
        info.push(t.elapsed());
        let t = Instant::now();
        pair.requester
            .whoami()
            .map_err(|e| format!("probe /v1/whoami: {e}"))?;
        whoami.push(t.elapsed());
        let t = Instant::now();
        let r = create(pair)?;
        creates.push(t.elapsed());
        let t = Instant::now();
        approve(pair, &r.id)?;
        approves.push(t.elapsed());
    }
    Ok(Probe {
        info: Summary::of(&mut info).p50,
        whoami: Summary::of(&mut whoami).p50,
        create: Summary::of(&mut creates).p50,
        approve: Summary::of(&mut approves).p50,
    })
}

/// `brevet_requests_total{outcome="approved"}` from `/metrics`.
fn approved_count(admin: &Client) -> Result<usize, String> {
    let text = admin
        .get_text("/metrics")
        .map_err(|e| format!("cannot read /metrics: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("brevet_requests_total{outcome=\"approved\"} "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "/metrics has no `brevet_requests_total{outcome=\"approved\"}`".into())
}

impl CyclesReport {
    pub(crate) fn print(&self) {
        use crate::stats::{mib, ms};
        let o = &self.opts;
        println!(
            "cycles on {}: {} workers, {} s (elapsed {:.2} s)",
            o.db.name(),
            o.workers,
            o.seconds,
            self.elapsed.as_secs_f64()
        );
        println!(
            "  {} cycles, {:.1} cycles/s, {} failures",
            self.cycle.count,
            self.per_second(),
            self.failures
        );
        if let Some(e) = &self.first_error {
            println!("  first failure: {e}");
        }
        for (name, s) in [
            ("cycle", &self.cycle),
            ("  create", &self.create),
            ("  approve", &self.approve),
        ] {
            println!(
                "  {name:<10} p50 {} ms, p99 {} ms, max {} ms, mean {} ms",
                ms(s.p50),
                ms(s.p99),
                ms(s.max),
                ms(s.mean)
            );
        }
        let p = &self.probe;
        println!(
            "  idle server, one client, p50: info {} ms, whoami {} ms, create {} ms, approve {} ms",
            ms(p.info),
            ms(p.whoami),
            ms(p.create),
            ms(p.approve)
        );
        let c = &self.cpu;
        println!(
            "  CPU during load, in cores of {:.1}: whole machine {:.2}; brevetd {:.2} \
             (user {:.2}, system {:.2}), PostgreSQL {:.2}, bench clients {:.2}, \
             kernel threads and interrupts {:.2}, other {:.2}",
            c.cores,
            c.machine,
            c.server.0 + c.server.1,
            c.server.0,
            c.server.1,
            c.postgres,
            c.bench.0 + c.bench.1,
            c.kernel,
            c.other()
        );
        if c.other() > NOISE_CORES {
            println!(
                "  WARNING: other processes used {:.2} cores during the load; these figures are \
                 low, run again on a quiet machine",
                c.other()
            );
        }
        println!(
            "  brevetd RSS: idle {} MiB, after setup {} MiB, peak under load {} MiB",
            mib(self.rss_idle_kib),
            mib(self.rss_ready_kib),
            mib(self.rss_peak_kib)
        );
    }
}
