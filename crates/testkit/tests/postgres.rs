//! Throwaway clusters through the public API only: several at once, each on its own port, all
//! gone after drop. Skips, saying so, where the PostgreSQL server tools are not installed.

use std::net::TcpListener;
use std::time::Instant;

use brevet_testkit::{Postgres, skip};

#[test]
fn parallel_clusters_are_independent() {
    let started = Instant::now();
    let clusters: Vec<Result<Option<Postgres>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(Postgres::start)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut running = Vec::new();
    for cluster in clusters {
        match cluster {
            Ok(Some(pg)) => running.push(pg),
            Ok(None) => {
                return skip(
                    "parallel_clusters_are_independent",
                    "no PostgreSQL server tools (initdb, pg_ctl) on PATH or in /usr/lib/postgresql",
                );
            }
            Err(e) => panic!("{e}"),
        }
    }
    println!("3 clusters started in parallel in {:?}", started.elapsed());

    let mut ports: Vec<u16> = running.iter().map(Postgres::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "each cluster has its own port");
    for (i, pg) in running.iter().enumerate() {
        assert_eq!(
            pg.url(),
            format!("postgres://brevet@127.0.0.1:{}/brevet", pg.port())
        );
        // Same database name in every cluster: they do not share anything.
        let url = pg.fresh_database("tenant").unwrap();
        assert_eq!(
            url,
            format!("postgres://brevet@127.0.0.1:{}/tenant", pg.port()),
            "cluster {i}"
        );
    }
    drop(running);
    for port in ports {
        TcpListener::bind(("127.0.0.1", port)).expect("port should be free after drop");
    }
}
