//! `brevet-bench fleet`: 10,000 simulated devices ([`crate::simfleet`]) against one `brevetd`
//! on SQLite or PostgreSQL, or against two replicas on one PostgreSQL (devices split between
//! them, even-numbered to the first).
//!
//! Steps: start the server(s) with the role `bench` and a connection budget that holds the fleet
//! ([`budget`]); enroll `N` devices; read each server's RSS (*before*); start the devices and wait
//! until each had its first answer and the servers' `brevet_device_polls_waiting` gauges add up
//! to `N`; after 2 s to settle, watch the idle fleet for [`Options::idle_secs`] (CPU by process)
//! and read the RSS again (*connected*). Then, with a requester, an approver and a leaver
//! logged in: `G` grants one after the other on devices picked by SplitMix64, each timed from
//! sending the approval until its device verified it (*approval → delivered*); then the leaver
//! gets a grant on each of `D` distinct devices, all delivered and acknowledged applied, and
//! the admin disables the leaver (`POST /v1/users/leaver/disable`, what `brevet user disable`
//! sends): timed until the server has taken every one of the `D` `removed` acks.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use brevet_cli::client::Client;
use brevet_proto::api::CreateRequest;
use brevet_testkit::Postgres;

use crate::cycles::{Db, Pair, approve, people};
use crate::fleet::polls_waiting;
use crate::load::NOISE_CORES;
use crate::procfs;
use crate::server_proc::{Credentials, Server};
use crate::simconn::Target;
use crate::simfleet::{self, SimFleet};
use crate::stats::{Summary, mib, ms};

/// Targets (BENCHMARKS.md, issue 9).
const TARGET_KIB_PER_DEVICE: f64 = 30.0;
const TARGET_DELIVERED_P99_MS: f64 = 50.0;
const TARGET_DISABLE_MS: f64 = 2000.0;
/// How long one grant may take to reach its device before the run counts it failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) devices: usize,
    pub(crate) db: Db,
    pub(crate) replicas: usize,
    /// Grants timed one after the other (`G`).
    pub(crate) grants: usize,
    /// Devices on which the leaver holds a grant when disabled (`D`).
    pub(crate) disable: usize,
    pub(crate) idle_secs: u64,
}

/// CPU in cores over an interval.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    /// Each server.
    pub(crate) servers: [f64; 2],
    pub(crate) postgres: f64,
    /// This process: the simulated devices and the clients.
    pub(crate) bench: f64,
    pub(crate) kernel: f64,
    pub(crate) machine: f64,
    pub(crate) cores: f64,
}

impl Cpu {
    pub(crate) fn other(&self) -> f64 {
        (self.machine - self.servers.iter().sum::<f64>() - self.postgres - self.bench - self.kernel)
            .max(0.0)
    }
}

struct Snapshot {
    servers: Vec<f64>,
    postgres: f64,
    bench: f64,
    kernel: f64,
    machine: procfs::MachineCpu,
}

impl Snapshot {
    fn now(pids: &[u32]) -> Snapshot {
        let bench = procfs::cpu_secs(None).unwrap_or_default();
        Snapshot {
            servers: pids
                .iter()
                .map(|&p| procfs::cpu_secs(Some(p)).map_or(0.0, |(u, s)| u + s))
                .collect(),
            postgres: procfs::postgres_cpu_secs(),
            bench: bench.0 + bench.1,
            kernel: procfs::kernel_threads_cpu_secs(),
            machine: procfs::machine_cpu_secs().unwrap_or_default(),
        }
    }

    fn since(&self, before: &Snapshot, wall: Duration) -> Cpu {
        let wall = wall.as_secs_f64().max(1e-9);
        let rate = |now: f64, then: f64| ((now - then) / wall).max(0.0);
        let mut servers = [0.0; 2];
        for (i, (now, then)) in self.servers.iter().zip(&before.servers).enumerate().take(2) {
            servers[i] = rate(*now, *then);
        }
        Cpu {
            servers,
            postgres: rate(self.postgres, before.postgres),
            bench: rate(self.bench, before.bench),
            kernel: rate(self.kernel, before.kernel)
                + rate(self.machine.interrupts, before.machine.interrupts),
            machine: rate(self.machine.busy, before.machine.busy),
            cores: rate(self.machine.total, before.machine.total),
        }
    }
}

/// What `fleet` measured.
#[derive(Debug, Default)]
pub(crate) struct ScaleReport {
    pub(crate) devices: usize,
    pub(crate) db: &'static str,
    pub(crate) replicas: usize,
    /// Per server: RSS after start, before the devices connect, with them connected and idle,
    /// after the people logged in, at the end (KiB).
    pub(crate) rss_start: Vec<u64>,
    pub(crate) rss_before: Vec<u64>,
    pub(crate) rss_connected: Vec<u64>,
    pub(crate) rss_people: Vec<u64>,
    pub(crate) rss_end: Vec<u64>,
    /// Devices held by each server.
    pub(crate) per_server: Vec<usize>,
    pub(crate) server_nofile: Vec<u64>,
    pub(crate) enroll: Duration,
    pub(crate) connect: Duration,
    pub(crate) idle: Cpu,
    pub(crate) delivered: Summary,
    pub(crate) approve_call: Summary,
    /// Grants verified by their device before the approval's answer arrived.
    pub(crate) delivered_before_answer: usize,
    pub(crate) granting: Cpu,
    pub(crate) disable_setup: Duration,
    pub(crate) disable_call: Duration,
    /// From sending the disable until the last removal ack was taken.
    pub(crate) disable_all_acked: Duration,
    /// Each removal ack, from sending the disable.
    pub(crate) disable_acks: Summary,
    pub(crate) disable_cpu: Cpu,
    pub(crate) connections_after_start: usize,
    pub(crate) failures: usize,
    pub(crate) first_error: Option<String>,
}

/// The connection budget for `per_server` devices, `acks` of which may acknowledge at once on
/// a second connection: `(max_connections, device_connections)`.
pub(crate) fn budget(per_server: usize, acks: usize) -> (usize, usize) {
    let device = per_server + acks + 1024;
    // The edge keeps an eighth of the total for handshakes and 16 more for anonymous clients.
    let total = (device + 16) * 8 / 7 + 1 + 1024;
    (total, device)
}

/// Raises this process's open-file limit to its hard limit; returns the soft limit then.
fn raise_nofile() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(1 << 20);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: limit.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(0)
}

pub(crate) fn run(brevetd: &std::path::Path, opts: Options) -> Result<ScaleReport, String> {
    let n = opts.devices;
    if n == 0 || opts.grants == 0 || !(1..=2).contains(&opts.replicas) {
        return Err("`--devices` and `--grants` must be at least 1, `--replicas` 1 or 2".into());
    }
    if opts.disable > n {
        return Err(format!(
            "`--disable {}` needs at least as many devices",
            opts.disable
        ));
    }
    if opts.replicas == 2 && opts.db != Db::Postgres {
        return Err("two replicas need `--db postgres`".into());
    }
    let per_server = n.div_ceil(opts.replicas);
    let (max_connections, device_connections) = budget(per_server, opts.disable);
    let nofile = raise_nofile();
    let needed = (n + opts.disable + 512) as u64;
    if nofile < needed {
        return Err(format!(
            "the open-file limit is {nofile}, and {n} devices need {needed}: raise it \
             (`ulimit -n {needed}`) and run again"
        ));
    }
    // Declared before the servers, so the cluster outlives them.
    let pg = match opts.db {
        Db::Sqlite => None,
        Db::Postgres => Some(
            Postgres::start()
                .map_err(|e| format!("PostgreSQL failed to start: {e}"))?
                .ok_or("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")?,
        ),
    };
    let pg_url = pg.as_ref().map(Postgres::url);
    let settings = [
        ("max_connections", max_connections.to_string()),
        ("device_connections", device_connections.to_string()),
    ];
    println!(
        "fleet: {n} devices on {} {} server(s); max_connections {max_connections}, \
         device_connections {device_connections}",
        opts.db.name(),
        opts.replicas
    );
    let server = Server::start_with(
        brevetd,
        pg_url.as_deref(),
        crate::dropins::ROLE_TOML,
        &settings,
    )?;
    let admin = server.admin.login(&server.anonymous()?)?;
    let token = admin
        .token()
        .ok_or("the admin's login gave no token")?
        .to_owned();
    let replica = match opts.replicas {
        2 => Some(server.replica(brevetd, pg_url.as_deref())?),
        _ => None,
    };
    let mut pids = vec![server.pid()];
    let mut admins = vec![admin.clone()];
    let mut urls = vec![server.url.clone()];
    if let Some(r) = &replica {
        pids.push(r.pid());
        admins.push(
            Client::new(&r.url, &server.ca_pem, Some(token.clone()))
                .map_err(|e| format!("cannot make a client for `{}`: {e}", r.url))?,
        );
        urls.push(r.url.clone());
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss = |pids: &[u32]| -> Vec<u64> {
        pids.iter()
            .map(|&p| procfs::rss_kib(p).unwrap_or(0))
            .collect()
    };
    let mut report = ScaleReport {
        devices: n,
        db: opts.db.name(),
        replicas: opts.replicas,
        rss_start: rss(&pids),
        server_nofile: pids
            .iter()
            .map(|p| procfs::open_files_limit_of(&p.to_string()).unwrap_or(0))
            .collect(),
        per_server: (0..opts.replicas)
            .map(|r| (r..n).step_by(opts.replicas).count())
            .collect(),
        ..ScaleReport::default()
    };
    for (pid, limit) in pids.iter().zip(&report.server_nofile) {
        if *limit < (max_connections + 256) as u64 {
            println!(
                "  NOTE: brevetd {pid} may open {limit} files, fewer than max_connections + 256: \
                 it serves proportionally fewer connections (see its log)"
            );
        }
    }

    println!("fleet: enrolling {n} devices ({} threads) …", 6);
    let t = Instant::now();
    let enrolled = simfleet::enroll(&admin, &server.url, &server.ca_pem, n)?;
    report.enroll = t.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    report.rss_before = rss(&pids);

    println!(
        "fleet: enrolled in {:.1} s; connecting …",
        report.enroll.as_secs_f64()
    );
    let targets: Vec<Target> = urls
        .iter()
        .map(|u| {
            u.trim_start_matches("https://")
                .parse()
                .map(|addr| Target { addr })
                .map_err(|e| format!("`{u}`: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let t = Instant::now();
    let fleet = SimFleet::start(enrolled, &targets, &server.ca_pem)?;
    let connect_timeout = Duration::from_secs(60) + Duration::from_millis(20) * n as u32;
    fleet
        .observed
        .wait(connect_timeout, |s| (s.answered >= n).then_some(()))
        .ok_or_else(|| {
            format!(
                "only {} of {n} devices had an answer after {} s; first failure: {}",
                fleet.observed.read(|s| s.answered),
                connect_timeout.as_secs(),
                fleet
                    .observed
                    .read(|s| s.first_error.clone())
                    .unwrap_or_default()
            )
        })?;
    loop {
        let waiting: u64 = admins
            .iter()
            .map(polls_waiting)
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .sum();
        if waiting >= n as u64 {
            break;
        }
        if t.elapsed() > connect_timeout {
            return Err(format!("only {waiting} of {n} long-polls were waiting"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    report.connect = t.elapsed();
    report.connections_after_start = fleet.observed.read(|s| s.connections);
    println!(
        "fleet: all {n} connected and waiting {:.1} s after the first connect; idle for {} s …",
        report.connect.as_secs_f64(),
        opts.idle_secs
    );

    std::thread::sleep(Duration::from_secs(2));
    let before = Snapshot::now(&pids);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(opts.idle_secs));
    report.idle = Snapshot::now(&pids).since(&before, t.elapsed());
    report.rss_connected = rss(&pids);

    let pairs = people(&server, &admin, 1)?;
    let pair = pairs.first().ok_or("no requester")?;
    let leaver = leaver(&server, &admin)?;
    report.rss_people = rss(&pids);

    println!("fleet: {} grants one after the other …", opts.grants);
    let before = Snapshot::now(&pids);
    let t = Instant::now();
    let mut delivered = Vec::with_capacity(opts.grants);
    let mut calls = Vec::with_capacity(opts.grants);
    for k in 0..opts.grants {
        let device = &fleet.devices[crate::dropins::pick(k, n)];
        match one_grant(&fleet, pair, &pair.requester, device) {
            Ok((d, call, early)) => {
                delivered.push(d);
                calls.push(call);
                report.delivered_before_answer += usize::from(early);
            }
            Err(e) => {
                report.failures += 1;
                report.first_error.get_or_insert(e);
            }
        }
    }
    report.granting = Snapshot::now(&pids).since(&before, t.elapsed());
    report.delivered = Summary::of(&mut delivered);
    report.approve_call = Summary::of(&mut calls);

    if opts.disable > 0 {
        println!(
            "fleet: the leaver gets a grant on {} devices …",
            opts.disable
        );
        let t = Instant::now();
        let mut chosen = BTreeSet::new();
        let mut k = 1_000_000;
        while chosen.len() < opts.disable {
            chosen.insert(crate::dropins::pick(k, n));
            k += 1;
        }
        let mut ids = Vec::with_capacity(opts.disable);
        for &i in &chosen {
            let device = &fleet.devices[i];
            let r = create(&leaver, device)?;
            let grant = approve(pair, &r.id)?
                .grant_id
                .ok_or("an approval gave no grant")?;
            ids.push(grant);
        }
        fleet
            .observed
            .wait(Duration::from_secs(120), |s| {
                ids.iter()
                    .all(|id| s.applied_acked.contains_key(id))
                    .then_some(())
            })
            .ok_or("the leaver's grants were not all applied within 120 s")?;
        report.disable_setup = t.elapsed();
        std::thread::sleep(Duration::from_secs(1));
        println!("fleet: disabling the leaver …");
        let before = Snapshot::now(&pids);
        let t0 = Instant::now();
        admin
            .set_user_enabled("leaver", false)
            .map_err(|e| format!("cannot disable `leaver`: {e}"))?;
        report.disable_call = t0.elapsed();
        let acked = fleet.observed.wait(Duration::from_secs(120), |s| {
            ids.iter()
                .map(|id| s.removal_acked.get(id).copied())
                .collect::<Option<Vec<Instant>>>()
        });
        report.disable_cpu = Snapshot::now(&pids).since(&before, t0.elapsed());
        match acked {
            Some(at) => {
                let mut each: Vec<Duration> =
                    at.iter().map(|a| a.saturating_duration_since(t0)).collect();
                report.disable_acks = Summary::of(&mut each);
                report.disable_all_acked = report.disable_acks.max;
            }
            None => {
                let done = fleet.observed.read(|s| {
                    ids.iter()
                        .filter(|id| s.removal_acked.contains_key(*id))
                        .count()
                });
                report.failures += 1;
                report.first_error.get_or_insert(format!(
                    "only {done} of {} removals were acknowledged within 120 s of the disable",
                    ids.len()
                ));
            }
        }
    }
    report.rss_end = rss(&pids);
    let (failures, first) = fleet.observed.read(|s| (s.failures, s.first_error.clone()));
    report.failures += failures;
    if report.first_error.is_none() {
        report.first_error = first;
    }
    drop(fleet);
    Ok(report)
}

/// The person whose grants the disable revokes (`operators`), logged in.
fn leaver(server: &Server, admin: &Client) -> Result<Client, String> {
    let created = admin
        .add_user("leaver", &["operators".to_owned()])
        .map_err(|e| format!("cannot add the user `leaver`: {e}"))?;
    Credentials::new("leaver", &created.password, &created.totp_uri)?.login(&server.anonymous()?)
}

fn create(requester: &Client, device: &str) -> Result<brevet_proto::api::RequestView, String> {
    requester
        .create_request(&CreateRequest {
            device: device.to_owned(),
            role: "bench".into(),
            duration: "50m".into(),
            ticket: None,
            reason: "benchmark: fleet delivery".into(),
            start: None,
        })
        .map_err(|e| format!("create on `{device}`: {e}"))
}

/// One grant on `device`: (approval → delivered, the approve call, delivered before the
/// approval's answer arrived).
fn one_grant(
    fleet: &SimFleet,
    pair: &Pair,
    requester: &Client,
    device: &str,
) -> Result<(Duration, Duration, bool), String> {
    let r = create(requester, device)?;
    let t0 = Instant::now();
    let approved = approve(pair, &r.id)?;
    let answered = Instant::now();
    let id = approved.grant_id.ok_or("an approval gave no grant")?;
    let at = fleet
        .observed
        .wait(DELIVERY_TIMEOUT, |s| s.delivered.get(&id).copied())
        .ok_or_else(|| {
            format!(
                "grant `{id}` did not reach `{device}` within {} s",
                DELIVERY_TIMEOUT.as_secs()
            )
        })?;
    Ok((at - t0, answered - t0, at < answered))
}

impl ScaleReport {
    /// RSS per connected device on each server, KiB: (connected − before) / devices held.
    pub(crate) fn kib_per_device(&self) -> Vec<f64> {
        self.rss_connected
            .iter()
            .zip(&self.rss_before)
            .zip(&self.per_server)
            .map(|((c, b), n)| c.saturating_sub(*b) as f64 / (*n).max(1) as f64)
            .collect()
    }

    pub(crate) fn print(&self) {
        let list = |v: &[u64]| v.iter().map(|k| mib(*k)).collect::<Vec<_>>().join(" + ");
        println!(
            "fleet: {} devices, {}, {} server(s) ({} devices each); {} failures",
            self.devices,
            self.db,
            self.replicas,
            self.per_server
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" / "),
            self.failures
        );
        if let Some(e) = &self.first_error {
            println!("  first failure: {e}");
        }
        println!(
            "  enroll {:.1} s, connect {:.1} s; brevetd open-file limit {:?}; connections opened \
             after the first: {}",
            self.enroll.as_secs_f64(),
            self.connect.as_secs_f64(),
            self.server_nofile,
            self.connections_after_start
        );
        println!(
            "  brevetd RSS (MiB): after start {}, enrolled {}, connected {}, people logged in {}, \
             end {}",
            list(&self.rss_start),
            list(&self.rss_before),
            list(&self.rss_connected),
            list(&self.rss_people),
            list(&self.rss_end)
        );
        println!(
            "  RSS per connected device: {} KiB (target ≤ {TARGET_KIB_PER_DEVICE})",
            self.kib_per_device()
                .iter()
                .map(|k| format!("{k:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        );
        for (what, c) in [
            ("idle", &self.idle),
            ("granting", &self.granting),
            ("disable", &self.disable_cpu),
        ] {
            println!(
                "  CPU {what}: brevetd {:.3} / {:.3}, PostgreSQL {:.3}, bench {:.3}, kernel {:.3}, \
                 other {:.2}; machine {:.2} of {:.1}",
                c.servers[0],
                c.servers[1],
                c.postgres,
                c.bench,
                c.kernel,
                c.other(),
                c.machine,
                c.cores
            );
            if c.other() > NOISE_CORES {
                println!(
                    "  WARNING: other processes used {:.2} cores ({what}); run again on a quiet \
                     machine",
                    c.other()
                );
            }
        }
        let d = &self.delivered;
        println!(
            "  approval → delivered ({} grants): p50 {} ms, p99 {} ms, max {} ms (target p99 ≤ \
             {TARGET_DELIVERED_P99_MS}); approve call p50 {} ms, p99 {} ms; delivered before the \
             approval's answer: {}",
            d.count,
            ms(d.p50),
            ms(d.p99),
            ms(d.max),
            ms(self.approve_call.p50),
            ms(self.approve_call.p99),
            self.delivered_before_answer
        );
        let a = &self.disable_acks;
        println!(
            "  user disable → all {} removals acked: {} ms (target ≤ {TARGET_DISABLE_MS}); the \
             call {} ms; each ack p50 {} ms, p99 {} ms; set-up {:.1} s",
            a.count,
            ms(self.disable_all_acked),
            ms(self.disable_call),
            ms(a.p50),
            ms(a.p99),
            self.disable_setup.as_secs_f64()
        );
        println!(
            "| {} devices, {}{} | {} | {:.3} ({:.2} other) | {} / {} | {} ({} call) | {} |",
            self.devices,
            self.db,
            if self.replicas == 2 {
                ", 2 replicas"
            } else {
                ""
            },
            self.kib_per_device()
                .iter()
                .map(|k| format!("{k:.1}"))
                .collect::<Vec<_>>()
                .join(" / "),
            self.idle.servers.iter().sum::<f64>(),
            self.idle.other(),
            ms(d.p50),
            ms(d.p99),
            ms(self.disable_all_acked),
            ms(self.disable_call),
            self.failures
        );
    }
}
