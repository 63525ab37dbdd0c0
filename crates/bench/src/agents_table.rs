//! The Markdown table of `agents` runs for BENCHMARKS.md: one column per fleet size, and the
//! targets judged on the largest fleet (the issue asks for them at 1,000 agents).

use std::time::Duration;

use crate::agents::AgentsReport;
use crate::footprint::Footprint;
use crate::stats::{Summary, mib, ms};

/// p99 of both latencies, at 1,000 agents.
const TARGET_P99: Duration = Duration::from_secs(1);
/// Agent RSS when idle: 15 MB (decimal), in KiB.
const TARGET_RSS_KIB: u64 = 15_000_000 / 1024;
/// The fleet size the latency targets are set for.
const TARGET_FLEET: usize = 1000;

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

pub(crate) fn print(reports: &[AgentsReport], footprint: &Footprint) {
    let Some(largest) = reports.iter().max_by_key(|r| r.opts.count) else {
        return;
    };
    let latency_target = |pick: fn(&AgentsReport) -> &Summary| {
        if largest.opts.count >= TARGET_FLEET {
            let s = pick(largest);
            format!(
                "p99 ≤ 1 s at {TARGET_FLEET}: {}",
                met(s.count > 0 && s.p99 <= TARGET_P99 && largest.timed.failures == 0)
            )
        } else {
            format!("p99 ≤ 1 s at {TARGET_FLEET}: not run")
        }
    };
    let header: Vec<String> = reports
        .iter()
        .map(|r| {
            format!(
                "{} agent{}",
                r.opts.count,
                if r.opts.count == 1 { "" } else { "s" }
            )
        })
        .collect();
    println!("| Measure | {} | Target |", header.join(" | "));
    println!("|---|{}---|", "---|".repeat(reports.len()));
    let row = |name: &str, cell: &dyn Fn(&AgentsReport) -> String, target: &str| {
        let cells: Vec<String> = reports.iter().map(cell).collect();
        println!("| {name} | {} | {target} |", cells.join(" | "));
    };
    let three = |s: &Summary| format!("{} / {} / {}", ms(s.p50), ms(s.p99), ms(s.max));
    row(
        "Approval → drop-in in force, p50 / p99 / max (ms)",
        &|r| three(&r.timed.in_force),
        &latency_target(|r| &r.timed.in_force),
    );
    row(
        "`not_after` → drop-in gone, p50 / p99 / max (ms)",
        &|r| three(&r.timed.gone),
        &latency_target(|r| &r.timed.gone),
    );
    row(
        "Grants timed / failed",
        &|r| format!("{} / {}", r.timed.in_force.count, r.timed.failures),
        "",
    );
    row(
        "Floor: write + fsync + `visudo -cf` + rename + dir fsync, p50 / p99 (ms)",
        &|r| format!("{} / {}", ms(r.floor.install.p50), ms(r.floor.install.p99)),
        "",
    );
    row(
        "Floor parts, p50: write + fsync / `visudo -cf` / rename + dir fsync (ms)",
        &|r| {
            format!(
                "{} / {} / {}",
                ms(r.floor.write_fsync.p50),
                ms(r.floor.visudo.p50),
                ms(r.floor.rename_fsync.p50)
            )
        },
        "",
    );
    row(
        "Floor: unlink + dir fsync, p50 / p99 (ms)",
        &|r| format!("{} / {}", ms(r.floor.remove.p50), ms(r.floor.remove.p99)),
        "",
    );
    row(
        "Floor again, fleet connected and idle: install p50 / p99; unlink p50 / p99 (ms)",
        &|r| {
            let f = &r.floor_with_fleet;
            format!(
                "{} / {} ; {} / {}",
                ms(f.install.p50),
                ms(f.install.p99),
                ms(f.remove.p50),
                ms(f.remove.p99)
            )
        },
        "",
    );
    row(
        "Agent RSS idle, median / max (MiB)",
        &|r| format!("{} / {}", mib(r.rss_idle.median), mib(r.rss_idle.max)),
        &format!(
            "≤ 15 MB (14.3 MiB): {}",
            met(reports
                .iter()
                .all(|r| r.rss_idle.max > 0 && r.rss_idle.max <= TARGET_RSS_KIB))
        ),
    );
    row(
        "Agent's own memory (RssAnon) idle, median; whole fleet (MiB)",
        &|r| {
            format!(
                "{} ; {}",
                mib(r.rss_idle.anon_median),
                mib(r.rss_idle.anon_total)
            )
        },
        "",
    );
    row(
        "Agent RSS after the grants, median / max (MiB)",
        &|r| format!("{} / {}", mib(r.rss_after.median), mib(r.rss_after.max)),
        "",
    );
    row(
        "brevetd RSS: after start / all agents connected / + requester and approver logged in / peak while granting (MiB)",
        &|r| {
            format!(
                "{} / {} / {} / {}",
                mib(r.server_rss_start_kib),
                mib(r.server_rss_connected_kib),
                mib(r.server_rss_people_kib),
                mib(r.server_rss_peak_kib)
            )
        },
        "",
    );
    row(
        "Enroll and start all agents / then until all wait for grants (s)",
        &|r| {
            format!(
                "{:.1} / {:.1}",
                r.enroll.as_secs_f64(),
                r.connect.as_secs_f64()
            )
        },
        "",
    );
    row(
        "CPU, fleet idle: brevetd / agents / other work on the machine (cores)",
        &|r| {
            let c = &r.idle_cpu;
            format!("{:.3} / {:.3} / {:.2}", c.server, c.agents, c.other())
        },
        "",
    );
    row(
        "Fleet idle: agents' write calls / KiB written to storage, per second",
        &|r| format!("{:.0} / {:.0}", r.idle_writes.calls, r.idle_writes.kib),
        "",
    );
    row(
        "CPU while granting: brevetd / agents with visudo / benchmark / kernel / other (cores of 2)",
        &|r| {
            let c = &r.timed_cpu;
            format!(
                "{:.2} / {:.2} / {:.2} / {:.2} / {:.2}",
                c.server,
                c.agents,
                c.bench,
                c.kernel,
                c.other()
            )
        },
        "",
    );
    let deps = match (footprint.deps, footprint.linked_deps) {
        (Some(all), Some(linked)) => format!(
            "{all} ({linked} linked); server crates: {}",
            if footprint.server_side.is_empty() {
                "none".to_owned()
            } else {
                footprint.server_side.join(", ")
            }
        ),
        _ => "unknown".to_owned(),
    };
    println!();
    println!("| Agent binary | Result |");
    println!("|---|---|");
    println!(
        "| `target/release/brevet-agent` size (release profile, stripped) | {:.2} MiB ({} bytes) |",
        footprint.binary_bytes as f64 / (1024.0 * 1024.0),
        footprint.binary_bytes
    );
    println!("| Normal dependencies (`cargo tree -e normal`, distinct crates) | {deps} |");
}
