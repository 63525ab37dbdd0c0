//! Brevet's test harness: free loopback ports, skip notices, paths to workspace binaries and
//! throwaway PostgreSQL clusters.
//!
//! Everything here is for tests. It uses std, `tempfile` and nothing else at run time, shells out
//! to the PostgreSQL tools instead of linking a client, and panics with a message that says what
//! to do only where a test cannot go on (see each item's `# Panics`).

mod bins;
mod mount_ns;
mod pg_bins;
mod postgres;
mod run_as;
mod scratch_db;

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};

pub use bins::workspace_bin;
pub use mount_ns::MountNamespace;
pub use postgres::Postgres;
pub use run_as::is_root;
pub use scratch_db::{DbEngine, ScratchDb};

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding port 0 and dropping the listener, so another process may take it
/// before the caller does; callers that start a server should retry once on "address in use".
///
/// # Panics
///
/// When no socket can be bound on 127.0.0.1 at all, which means the machine has no usable
/// loopback interface and no networked test can run.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind a socket on 127.0.0.1 to find a free port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot read the address of a bound socket: {e}"))
        .port()
}

/// Waits until `cond` holds and returns how long that took: the one way tests wait for
/// something another process or thread does (a file appears, a metric moves, a server answers).
///
/// `cond` is checked at once and then every 10 ms. `limit` is a fail-safe, not a timing goal:
/// make it generous, since a loaded machine may be slow; only a condition that never holds
/// reaches it.
///
/// # Panics
///
/// When `limit` passes with `cond` still false, naming `what`.
pub fn wait_for(
    what: &str,
    limit: std::time::Duration,
    mut cond: impl FnMut() -> bool,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    start.elapsed()
}

/// Reports that `test` is skipped and why, as the one line `SKIP {test}: {why}`.
///
/// The line goes to standard output through `println!`, where the test harness keeps it with the
/// test's own output, and straight to standard error past the harness's capture, so that it shows
/// in every `cargo test` run. The caller returns right after.
pub fn skip(test: &str, why: &str) {
    let line = format!("SKIP {test}: {why}");
    println!("{line}");
    // Written to the raw handle, not with `eprintln!`, which the test harness would capture.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_can_be_bound_again() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("the port should still be free");
    }

    #[test]
    fn skip_does_not_panic() {
        skip("skip_does_not_panic", "only checks that skip() prints");
    }
}
