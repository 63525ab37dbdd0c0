//! `brevet-bench audit`: how fast the audit log takes events, and how fast an export verifies.
//!
//! Append: a real `brevetd` (in-process, so its checkpoint task signs while events flow) on a
//! temporary data directory, SQLite or a throwaway PostgreSQL; `W` tokio tasks append events
//! through `brevet_store::Tx::audit` — the same call every state change makes — either one event
//! per transaction or a batch per transaction. At the end the last signed checkpoint must cover
//! every event, or the run fails.
//!
//! Verify: an export of `N` sealed events (the JSON lines `brevet audit export` writes) and a
//! signed checkpoint over them are generated, then the real `brevet audit verify FILE --key K
//! --checkpoint CP` binary is timed, end to end.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brevet_audit::{Checkpoint, Head};
use brevet_server::clock::SystemClock;
use brevet_server::datadir::DataDir;
use brevet_testkit::Postgres;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::cycles::Db;

pub(crate) struct AppendReport {
    pub db: Db,
    pub per_tx: usize,
    pub events: u64,
    pub secs: f64,
    pub checkpoints: u64,
}

impl AppendReport {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }
}

/// Appends for `seconds` with `workers` tasks, `per_tx` events per transaction.
pub(crate) fn append(
    db: Db,
    seconds: u64,
    workers: usize,
    per_tx: usize,
) -> Result<Option<AppendReport>, String> {
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => match Postgres::start()? {
            Some(pg) => Some(pg),
            None => {
                println!("SKIP audit append on PostgreSQL: no PostgreSQL server binaries");
                return Ok(None);
            }
        },
    };
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let dir = DataDir::new(tmp.path().join("data"));
        brevet_server::init::init(&dir, "127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let opts = brevet_server::serve::Options {
            listen: Some("127.0.0.1:0".into()),
            db: pg.as_ref().map(Postgres::url),
            clock: Arc::new(SystemClock),
        };
        let running = brevet_server::serve::start(&dir, opts).await.map_err(|e| e.to_string())?;
        let store = running.app.store.clone();
        let start_seq = store.audit_events(0, i64::MAX).await.map_err(|e| e.to_string())?.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..workers {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let mut tx = store.begin().await.map_err(|e| e.to_string())?;
                    for i in 0..per_tx {
                        let data = serde_json::json!({ "worker": w, "n": n + i as u64, "command": "/usr/bin/apt-get update", "cwd": "/root" });
                        tx.audit("grant.used", "device:web-01", "bench", data, now())
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    tx.commit().await.map_err(|e| e.to_string())?;
                    n += per_tx as u64;
                }
                Ok::<u64, String>(n)
            }));
        }
        let mut events = 0;
        for t in tasks {
            events += t.await.map_err(|e| e.to_string())??;
        }
        let secs = started.elapsed().as_secs_f64();
        // The checkpoint task must catch up and sign the whole log.
        let want = start_seq + events;
        let caught_up = Instant::now() + Duration::from_secs(30);
        loop {
            let latest = store.latest_checkpoint().await.map_err(|e| e.to_string())?;
            if latest.as_ref().is_some_and(|c| c.checkpoint.size == want) {
                break;
            }
            if Instant::now() > caught_up {
                return Err(format!("no checkpoint of size {want} within 30 s: {:?}", latest.map(|c| c.checkpoint.size)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let checkpoints = store.checkpoint_count().await.map_err(|e| e.to_string())?;
        running.stop().await;
        Ok(Some(AppendReport { db, per_tx, events, secs, checkpoints }))
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) struct VerifyReport {
    pub events: u64,
    pub bytes: u64,
    pub secs: f64,
}

/// Generates an export of `n` events and times the real `brevet audit verify` on it. With
/// `keep`, the export, checkpoint and key are written there and left for profiling.
pub(crate) fn verify(n: u64, keep: Option<&std::path::Path>) -> Result<VerifyReport, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = keep.unwrap_or(tmp.path());
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let export = dir.join("export.jsonl");
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(&export).map_err(|e| e.to_string())?);
    let mut head = Head::GENESIS;
    let mut frontier = brevet_audit::Frontier::default();
    let mut line = Vec::new();
    for i in 0..n {
        let data = serde_json::json!({ "grant_id": "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d", "command": "/usr/bin/apt-get update", "cwd": "/root", "n": i });
        let (sealed, next) = brevet_audit::seal(
            &head,
            "grant.used",
            "device:web-01",
            "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d",
            data,
            "2026-11-28T10:00:00Z",
        )
        .map_err(|e| e.to_string())?;
        frontier.push(sealed.leaf().map_err(|e| e.to_string())?);
        head = next;
        line.clear();
        brevet_audit::write_export_line(&sealed, &mut line).map_err(|e| e.to_string())?;
        out.write_all(&line).map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map_err(|e| e.to_string())?;
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| e.to_string())?;
    let cp = Checkpoint::sign(n, &frontier.root(), "2026-11-28T10:00:01Z", &key);
    let cp_file = dir.join("checkpoint.json");
    std::fs::write(
        &cp_file,
        serde_json::to_vec(&cp).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let pub_b64 = data_encoding::BASE64.encode(key.public_key().as_ref());
    std::fs::write(dir.join("audit.pub"), &pub_b64).map_err(|e| e.to_string())?;
    let brevet = brevet_testkit::workspace_bin("brevet");
    let started = Instant::now();
    let status = std::process::Command::new(&brevet)
        .args(["audit", "verify"])
        .arg(&export)
        .args(["--key", &pub_b64, "--checkpoint"])
        .arg(&cp_file)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err("brevet audit verify failed on a genuine export".into());
    }
    let bytes = std::fs::metadata(&export).map_err(|e| e.to_string())?.len();
    Ok(VerifyReport {
        events: n,
        bytes,
        secs,
    })
}

/// `brevet-bench audit [--seconds S] [--workers W] [--events N] [--keep DIR] [--db sqlite|postgresql]
/// [--per-tx N]`: appends on SQLite and PostgreSQL, one event and 100 events per transaction
/// (skipped with `--seconds 0`), then verifies an export of N events (kept in DIR with `--keep`).
pub(crate) fn main(args: &[String]) -> Result<bool, String> {
    let mut seconds = 5;
    let mut workers = 4;
    let mut events = 1_000_000;
    let mut keep = None;
    let mut dbs = vec![Db::Sqlite, Db::Postgres];
    let mut sizes = vec![1, 100];
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
        if flag == "--keep" {
            keep = Some(std::path::PathBuf::from(value));
            continue;
        }
        if flag == "--db" {
            dbs.retain(|d| d.name().eq_ignore_ascii_case(value));
            continue;
        }
        let n: u64 = value
            .parse()
            .map_err(|_| format!("`{flag}` takes a whole number, not `{value}`"))?;
        match flag.as_str() {
            "--seconds" => seconds = n,
            "--workers" => workers = n as usize,
            "--events" => events = n,
            "--per-tx" => sizes = vec![n as usize],
            other => return Err(format!("unknown option `{other}` for `audit`")),
        }
    }
    if seconds > 0 {
        println!("| audit append | events/tx | events/s | events | checkpoints signed |");
        println!("|---|---|---|---|---|");
    }
    for &db in &dbs {
        for &per_tx in sizes.iter().filter(|_| seconds > 0) {
            if let Some(r) = append(db, seconds, workers, per_tx)? {
                println!(
                    "| {} | {} | {:.0} | {} | {} |",
                    r.db.name(),
                    r.per_tx,
                    r.rate(),
                    r.events,
                    r.checkpoints
                );
            }
        }
    }
    let v = verify(events, keep.as_deref())?;
    println!(
        "\n| audit verify (`brevet audit verify --checkpoint`) | events | MiB | seconds | events/s |\n|---|---|---|---|---|\n| export + checkpoint | {} | {:.0} | {:.2} | {:.0} |",
        v.events,
        v.bytes as f64 / 1048576.0,
        v.secs,
        v.events as f64 / v.secs
    );
    Ok(true)
}
