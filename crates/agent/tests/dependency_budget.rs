//! The agent runs as root on every endpoint: its dependency tree has a budget, and no crate of
//! the server side may enter it (docs/agent.md, "Dependencies"). Checked with `cargo tree`, the
//! normal (run-time and build-time, not dev) dependencies, distinct crates without the agent.

use std::process::Command;

/// Distinct crates in `cargo tree -p brevet-agent -e normal`, the agent not counted. Raise it
/// only with a reason in docs/agent.md.
const BUDGET: usize = 44;

/// Crates of the server side that must never reach the agent.
const FORBIDDEN: [&str; 7] = [
    "brevet-server",
    "brevet-store",
    "brevet-policy",
    "sqlx",
    "axum",
    "tokio",
    "cedar-policy",
];

#[test]
fn the_agent_tree_stays_within_budget_and_has_no_server_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "brevet-agent",
            "-e",
            "normal",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut crates: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .filter(|(name, _)| name != "brevet-agent")
        .collect();
    crates.sort();
    crates.dedup();
    let list = crates
        .iter()
        .map(|(n, v)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    for bad in FORBIDDEN {
        assert!(
            crates.iter().all(|(n, _)| n != bad),
            "`{bad}` is in brevet-agent's dependency tree: the agent links no server crate\n{list}"
        );
    }
    println!("brevet-agent: {} crates (budget {BUDGET})", crates.len());
    assert!(
        crates.len() <= BUDGET,
        "brevet-agent has {} dependencies, over its budget of {BUDGET}: drop one, or raise \
         the budget with a reason in docs/agent.md\n{list}",
        crates.len()
    );
}
