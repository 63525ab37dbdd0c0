//! What the agent costs to ship: the size of the release binary (stripped by the workspace's
//! release profile) and its normal dependencies as `cargo tree` lists them, with a check that no
//! server-side crate is among them.

use std::path::Path;
use std::process::Command;

/// Crates that must never be in the agent's tree: the server's own crates and what they stand on.
const SERVER_SIDE: [&str; 7] = [
    "brevet-server",
    "brevet-store",
    "brevet-policy",
    "sqlx",
    "axum",
    "tokio",
    "cedar-policy",
];

#[derive(Debug, Clone, Default)]
pub(crate) struct Footprint {
    pub(crate) binary_bytes: u64,
    /// Distinct crates in `cargo tree -p brevet-agent -e normal`, the agent itself excluded.
    pub(crate) deps: Option<usize>,
    /// The same without procedural macros and what only they use (nothing of them is linked).
    pub(crate) linked_deps: Option<usize>,
    /// Server-side crates found in the tree (should be none).
    pub(crate) server_side: Vec<String>,
    /// Why the dependency count is missing, when it is.
    pub(crate) note: Option<String>,
}

pub(crate) fn measure(agent_bin: &Path) -> Footprint {
    let binary_bytes = std::fs::metadata(agent_bin).map(|m| m.len()).unwrap_or(0);
    let mut f = Footprint {
        binary_bytes,
        ..Footprint::default()
    };
    match (tree("normal"), tree("normal,no-proc-macro")) {
        (Ok(all), Ok(linked)) => {
            f.server_side = all
                .iter()
                .filter_map(|c| c.split(' ').next())
                .filter(|name| SERVER_SIDE.contains(name))
                .map(str::to_owned)
                .collect();
            f.deps = Some(all.len());
            f.linked_deps = Some(linked.len());
        }
        (Err(e), _) | (_, Err(e)) => f.note = Some(e),
    }
    f
}

/// The distinct `name vVERSION` lines of `cargo tree -p brevet-agent -e EDGES`, without the
/// agent itself.
fn tree(edges: &str) -> Result<Vec<String>, String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["tree", "--offline", "--manifest-path", manifest])
        .args(["-p", "brevet-agent", "-e", edges, "--prefix", "none"])
        .output()
        .map_err(|e| format!("cannot run `cargo tree`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo tree` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut crates: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches(" (*)").trim().to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with("brevet-agent "))
        .collect();
    crates.sort();
    crates.dedup();
    Ok(crates)
}

impl Footprint {
    pub(crate) fn print(&self) {
        println!(
            "brevet-agent binary: {} bytes ({:.2} MiB, release profile, stripped)",
            self.binary_bytes,
            self.binary_bytes as f64 / (1024.0 * 1024.0)
        );
        match (self.deps, self.linked_deps) {
            (Some(all), Some(linked)) => println!(
                "  normal dependencies: {all} crates ({linked} without proc-macros and their \
                 build-time deps); server-side crates among them: {}",
                if self.server_side.is_empty() {
                    "none".to_owned()
                } else {
                    self.server_side.join(", ")
                }
            ),
            _ => println!(
                "  normal dependencies: unknown ({})",
                self.note.as_deref().unwrap_or("no answer")
            ),
        }
    }
}
