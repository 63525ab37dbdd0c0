//! `brevet-bench`: the measurements behind BENCHMARKS.md. Run it in release, after building the
//! server it spawns:
//!
//! ```text
//! cargo build --release -p brevet-bench -p brevet-server -p brevet-agent -p brevet-cli
//! cargo run --release -p brevet-bench -- all
//! ```
//!
//! `cedar` times policy decisions in-process; `cycles` drives a real `brevetd` child process
//! over HTTPS on SQLite or PostgreSQL; `agents` runs a fleet of real `brevet-agent` processes
//! against one `brevetd` and times approval → drop-in in force and `not_after` → drop-in gone;
//! `agents-all` does that for 1, 100 and 1,000 agents; `fleet` runs 10,000 simulated agents in
//! this process against one `brevetd` (or two replicas) and times delivery and revocation. `all` runs all of them and prints the
//! Markdown tables. The exit status is non-zero when anything failed, including a single failed
//! cycle or grant.

mod agents;
mod agents_table;
mod audit;
mod cedar;
mod cycles;
mod dropins;
mod fleet;
mod floor;
mod footprint;
mod load;
mod procfs;
mod scale;
mod server_proc;
mod simagent;
mod simconn;
mod simfleet;
mod stats;

use std::process::ExitCode;

use cedar::CedarReport;
use cycles::{CyclesReport, Db};

const USAGE: &str = "usage:
  brevet-bench cedar [--n N]                       (default 100000)
  brevet-bench cycles --db sqlite|postgres [--seconds S] [--workers W]   (default 10, 8)
  brevet-bench all [--n N] [--seconds S] [--workers W]
  brevet-bench agents --count N [--grants M] [--parallel P] [--duration S] [--rate R] [--burst]
                                                  (default 200, 1, 5, no rate limit)
  brevet-bench agents-all [--grants M] [--parallel P] [--duration S]
                                                  (1, 100 and 1000 agents)
  brevet-bench audit [--seconds S] [--workers W] [--events N]   (default 5, 4, 1000000)
  brevet-bench fleet --db sqlite|postgres [--devices N] [--replicas 1|2] [--grants G]
                     [--disable D] [--idle S]     (default 10000, 1, 300, 1000, 30)";

/// The fleet sizes of `agents-all`, and the grants timed on each unless `--grants` says: one
/// agent gets a grant every 1.1 s (see `dropins`), so it gets fewer.
const FLEETS: [(usize, usize); 3] = [(1, 30), (100, 200), (1000, 200)];

/// Decision latency target: p99 at most this many microseconds.
const TARGET_DECISION_P99_US: f64 = 100.0;
/// Throughput target on SQLite: at least this many cycles per second.
const TARGET_SQLITE_CYCLES: f64 = 500.0;

enum Command {
    Cedar {
        n: usize,
    },
    Cycles(cycles::Options),
    All {
        n: usize,
        opts: cycles::Options,
        fleets: Vec<agents::Options>,
    },
    Agents(Vec<agents::Options>),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("audit") {
        return match audit::main(&args[1..]) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("brevet-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("fleet") {
        let result = parse_fleet(&args[1..]).and_then(|opts| {
            let report = scale::run(&brevet_testkit::workspace_bin("brevetd"), opts)?;
            report.print();
            Ok(report.failures == 0)
        });
        return match result {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("brevet-bench: something failed; see `first failure` above");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("brevet-bench: {e}\n{USAGE}");
                ExitCode::FAILURE
            }
        };
    }
    let command = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("brevet-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("brevet-bench: something failed; see `first failure` above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("brevet-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<Command, String> {
    let (sub, rest) = args.split_first().ok_or("no subcommand given")?;
    let mut n = 100_000;
    let mut db = None;
    let mut opts = cycles::Options {
        db: Db::Sqlite,
        seconds: 10,
        workers: 8,
    };
    let mut fleet = agents::Options {
        count: 0,
        grants: 200,
        parallel: 1,
        duration_secs: 5,
        burst: false,
        rate: 0.0,
    };
    let mut grants_given = false;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        if (sub.as_str(), flag.as_str()) == ("agents", "--burst") {
            fleet.burst = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("`{flag}` takes a whole number, not `{value}`"))
        };
        match (sub.as_str(), flag.as_str()) {
            ("cedar" | "all", "--n") => n = number()?,
            ("cycles" | "all", "--seconds") => opts.seconds = number()? as u64,
            ("cycles" | "all", "--workers") => opts.workers = number()?,
            ("agents", "--count") => fleet.count = number()?,
            ("agents" | "agents-all", "--grants") => {
                fleet.grants = number()?;
                grants_given = true;
            }
            ("agents" | "agents-all", "--parallel") => fleet.parallel = number()?,
            ("agents", "--rate") => {
                fleet.rate = value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| format!("`--rate` takes grants per second, not `{value}`"))?
            }
            ("agents" | "agents-all", "--duration") => {
                fleet.duration_secs = value
                    .trim_end_matches('s')
                    .parse()
                    .map_err(|_| format!("`--duration` takes seconds, not `{value}`"))?
            }
            ("cycles", "--db") => {
                db = Some(match value.as_str() {
                    "sqlite" => Db::Sqlite,
                    "postgres" => Db::Postgres,
                    other => {
                        return Err(format!(
                            "unknown database `{other}`: use `sqlite` or `postgres`"
                        ));
                    }
                });
            }
            _ => return Err(format!("`{sub}` takes no option `{flag}`")),
        }
    }
    match sub.as_str() {
        "cedar" => Ok(Command::Cedar { n }),
        "cycles" => {
            opts.db = db.ok_or("`cycles` needs `--db sqlite` or `--db postgres`")?;
            Ok(Command::Cycles(opts))
        }
        "all" => Ok(Command::All {
            n,
            opts,
            fleets: fleets(fleet),
        }),
        "agents" => {
            if fleet.count == 0 {
                return Err("`agents` needs `--count N` (at least 1)".into());
            }
            Ok(Command::Agents(vec![fleet]))
        }
        "agents-all" => {
            if !grants_given {
                return Ok(Command::Agents(fleets(fleet)));
            }
            Ok(Command::Agents(
                FLEETS
                    .iter()
                    .map(|&(count, _)| agents::Options { count, ..fleet })
                    .collect(),
            ))
        }
        other => Err(format!("unknown subcommand `{other}`")),
    }
}

/// The options of `fleet`.
fn parse_fleet(args: &[String]) -> Result<scale::Options, String> {
    let mut opts = scale::Options {
        devices: 10_000,
        db: Db::Sqlite,
        replicas: 1,
        grants: 300,
        disable: 1000,
        idle_secs: 30,
    };
    let mut db = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("`{flag}` takes a whole number, not `{value}`"))
        };
        match flag.as_str() {
            "--devices" => opts.devices = number()?,
            "--replicas" => opts.replicas = number()?,
            "--grants" => opts.grants = number()?,
            "--disable" => opts.disable = number()?,
            "--idle" => opts.idle_secs = number()? as u64,
            "--db" => {
                db = Some(match value.as_str() {
                    "sqlite" => Db::Sqlite,
                    "postgres" => Db::Postgres,
                    other => {
                        return Err(format!(
                            "unknown database `{other}`: use `sqlite` or `postgres`"
                        ));
                    }
                })
            }
            _ => return Err(format!("`fleet` takes no option `{flag}`")),
        }
    }
    opts.db = db.ok_or("`fleet` needs `--db sqlite` or `--db postgres`")?;
    Ok(opts)
}

/// The runs of `agents-all`, with the grants of [`FLEETS`].
fn fleets(base: agents::Options) -> Vec<agents::Options> {
    FLEETS
        .iter()
        .map(|&(count, grants)| agents::Options {
            count,
            grants,
            ..base
        })
        .collect()
}

/// Runs `command`; `Ok(false)` when every step ran but some cycles or grants failed.
fn run(command: Command) -> Result<bool, String> {
    match command {
        Command::Cedar { n } => {
            cedar::run(n)?.print();
            Ok(true)
        }
        Command::Cycles(opts) => {
            let brevetd = brevet_testkit::workspace_bin("brevetd");
            match cycles::run(&brevetd, opts)? {
                Some(report) => {
                    report.print();
                    Ok(report.failures == 0)
                }
                None => Ok(true),
            }
        }
        Command::All { n, opts, fleets } => {
            let brevetd = brevet_testkit::workspace_bin("brevetd");
            let cedar = cedar::run(n)?;
            cedar.print();
            println!();
            let mut reports = Vec::new();
            for db in [Db::Sqlite, Db::Postgres] {
                if let Some(r) = cycles::run(&brevetd, cycles::Options { db, ..opts })? {
                    r.print();
                    reports.push(r);
                }
                println!();
            }
            print_table(&cedar, &reports);
            println!();
            let agents_ok = run_agents(fleets)?;
            Ok(reports.iter().all(|r| r.failures == 0) && agents_ok)
        }
        Command::Agents(runs) => run_agents(runs),
    }
}

/// Runs the fleets one after the other, each with its own server, and prints their table.
fn run_agents(runs: Vec<agents::Options>) -> Result<bool, String> {
    let brevetd = brevet_testkit::workspace_bin("brevetd");
    let agent = brevet_testkit::workspace_bin("brevet-agent");
    let footprint = footprint::measure(&agent);
    footprint.print();
    println!();
    let mut reports = Vec::new();
    for opts in runs {
        let report = agents::run(&brevetd, &agent, opts)?;
        report.print();
        println!();
        reports.push(report);
    }
    agents_table::print(&reports, &footprint);
    Ok(reports.iter().all(|r| r.timed.failures == 0))
}

/// The Markdown table for BENCHMARKS.md.
fn print_table(cedar: &CedarReport, reports: &[CyclesReport]) {
    use stats::{mib, ms, us};
    let met = |ok: bool| if ok { "met" } else { "**missed**" };
    let l = &cedar.latency;
    let p99_us = l.p99.as_secs_f64() * 1e6;
    println!("| Measure | Result | Target |");
    println!("|---|---|---|");
    println!(
        "| Cedar decision latency, p50 / p99 / max | {} / {} / {} µs | p99 ≤ {TARGET_DECISION_P99_US} µs: {} |",
        us(l.p50),
        us(l.p99),
        us(l.max),
        met(p99_us <= TARGET_DECISION_P99_US)
    );
    println!(
        "| Cedar decisions per second, one thread | {:.0} | |",
        cedar.per_second
    );
    for r in reports {
        let db = r.opts.db.name();
        let target = if r.opts.db == Db::Sqlite {
            format!(
                "≥ {TARGET_SQLITE_CYCLES} cycles/s: {}",
                met(r.per_second() >= TARGET_SQLITE_CYCLES)
            )
        } else {
            String::new()
        };
        println!(
            "| Request → approve cycles per second, {db} ({} workers, {} s) | {:.1} ({} cycles, {} failed) | {target} |",
            r.opts.workers,
            r.opts.seconds,
            r.per_second(),
            r.cycle.count,
            r.failures
        );
        println!(
            "| Cycle latency, {db}, p50 / p99 | {} / {} ms | |",
            ms(r.cycle.p50),
            ms(r.cycle.p99)
        );
        println!(
            "| brevetd RSS, {db}: idle after start / after setup ({} logins) / peak under load | {} / {} / {} MiB | |",
            2 * r.opts.workers + 1,
            mib(r.rss_idle_kib),
            mib(r.rss_ready_kib),
            mib(r.rss_peak_kib)
        );
        println!(
            "| CPU during the {db} load: brevetd / PostgreSQL / bench clients / kernel / other | {:.2} / {:.2} / {:.2} / {:.2} / {:.2} cores of {:.1} | |",
            r.cpu.server.0 + r.cpu.server.1,
            r.cpu.postgres,
            r.cpu.bench.0 + r.cpu.bench.1,
            r.cpu.kernel,
            r.cpu.other(),
            r.cpu.cores
        );
    }
}
