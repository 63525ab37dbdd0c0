//! Throwaway PostgreSQL clusters for integration tests.
//!
//! [`Postgres::start`] runs `initdb` into a fresh directory under `/dev/shm` (else `/tmp`) with
//! trust authentication, superuser `brevet` and no fsync, starts the server on a free loopback
//! port with its socket in the same directory, and creates the database `brevet`. Dropping the value stops the server
//! with `pg_ctl stop -m immediate` (killing the postmaster if that fails) and removes the
//! directory. Every cluster has its own directory and port, so parallel tests may each start one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::pg_bins::{self, Found, PgBins};
use crate::run_as::{self, RunAs};

/// The superuser `initdb` creates and every URL connects as.
const SUPERUSER: &str = "brevet";
/// The database created at start, the one [`Postgres::url`] names.
const DATABASE: &str = "brevet";
/// Lines of output or server log quoted in an error.
const TAIL_LINES: usize = 30;

/// A running throwaway PostgreSQL cluster; see the module documentation.
#[derive(Debug)]
pub struct Postgres {
    /// `None` only while dropping.
    dir: Option<TempDir>,
    port: u16,
    bins: PgBins,
    run_as: RunAs,
}

impl Postgres {
    /// Creates and starts a cluster, with the database `brevet` in it.
    ///
    /// Returns `Ok(None)` when no PostgreSQL server tools (`initdb`, `pg_ctl`) are installed;
    /// it prints nothing, and the caller reports the skip with [`crate::skip`]. Returns `Err`
    /// when the tools are there but the cluster cannot be made or started, quoting the tool's
    /// output or the server log.
    pub fn start() -> Result<Option<Postgres>, String> {
        let bins = match pg_bins::find() {
            Found::Nothing => return Ok(None),
            Found::NoPsql { server_dir } => {
                return Err(format!(
                    "PostgreSQL server tools are in `{}` but `psql` was found neither beside \
                     them nor on PATH: install the PostgreSQL client",
                    server_dir.display()
                ));
            }
            Found::Bins(bins) => bins,
        };
        let run_as = RunAs::detect()?;
        let dir = cluster_dir(&run_as)?;
        run_as.hand_over(dir.path())?;
        // From here on, Drop cleans up whatever has been started.
        let mut pg = Postgres {
            dir: Some(dir),
            port: 0,
            bins,
            run_as,
        };
        pg.initdb()?;
        pg.launch()?;
        pg.psql("postgres", &format!("CREATE DATABASE {DATABASE}"))?;
        Ok(Some(pg))
    }

    /// `postgres://brevet@127.0.0.1:{port}/brevet`; no password (trust authentication).
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// The TCP port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates the empty database `name` and returns its URL.
    ///
    /// `name` must be a plain lower-case identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub fn fresh_database(&self, name: &str) -> Result<String, String> {
        if !is_plain_identifier(name) {
            return Err(format!(
                "invalid database name `{name}`: use lower-case letters, digits and `_`, \
                 starting with a letter or `_`, at most 63 characters"
            ));
        }
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url_for(name))
    }

    /// Copies the database `from` into a new database `to` (`CREATE DATABASE to TEMPLATE from`),
    /// as a backup would; nobody may be connected to `from`. With `replace`, `to` is dropped
    /// first (a restore).
    pub fn copy_database(&self, from: &str, to: &str, replace: bool) -> Result<(), String> {
        for name in [from, to] {
            if !is_plain_identifier(name) {
                return Err(format!("invalid database name `{name}`"));
            }
        }
        if replace {
            self.psql("postgres", &format!("DROP DATABASE IF EXISTS {to}"))?;
        }
        self.psql("postgres", &format!("CREATE DATABASE {to} TEMPLATE {from}"))
    }

    fn url_for(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    fn dir(&self) -> &Path {
        // INVARIANT: `dir` is `Some` until `drop` takes it.
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), TempDir::path)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir().join("postgres.log")
    }

    fn initdb(&self) -> Result<(), String> {
        let args = [
            "-D".to_string(),
            path_arg(&self.data_dir()),
            "-A".into(),
            "trust".into(),
            "-U".into(),
            SUPERUSER.into(),
            "--no-sync".into(),
            "-E".into(),
            "UTF8".into(),
            "--locale=C".into(),
        ];
        let out = self.server_tool(&self.bins.initdb, &args)?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "`{}` failed ({}):\n{}",
            self.bins.initdb.display(),
            out.status,
            output_tail(&out)
        ))
    }

    /// Starts the server on a free port, trying a second port if the first was taken meanwhile.
    fn launch(&mut self) -> Result<(), String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.port = crate::free_port();
            let _ = std::fs::remove_file(self.log_file());
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                self.port,
                run_as::shell_quote(&path_arg(self.dir())),
            );
            let args = [
                "start".to_string(),
                "-w".into(),
                "-t".into(),
                "30".into(),
                "-D".into(),
                path_arg(&self.data_dir()),
                "-l".into(),
                path_arg(&self.log_file()),
                "-o".into(),
                options,
            ];
            let out = self.server_tool(&self.bins.pg_ctl, &args)?;
            if out.status.success() {
                return Ok(());
            }
            self.stop();
            let log = file_tail(&self.log_file());
            if attempt == 1 && (log.contains("could not bind") || log.contains("already in use")) {
                continue;
            }
            return Err(format!(
                "`pg_ctl start` failed on port {} ({}):\n{}\n--- server log `{}` ---\n{log}",
                self.port,
                out.status,
                output_tail(&out),
                self.log_file().display(),
            ));
        }
    }

    /// Stops the server if it runs: `pg_ctl stop -m immediate`, then SIGKILL as a last resort.
    fn stop(&self) {
        let pid_file = self.data_dir().join("postmaster.pid");
        if !pid_file.exists() {
            return;
        }
        let args = [
            "stop".to_string(),
            "-w".into(),
            "-t".into(),
            "10".into(),
            "-m".into(),
            "immediate".into(),
            "-D".into(),
            path_arg(&self.data_dir()),
        ];
        let _ = self.server_tool(&self.bins.pg_ctl, &args);
        let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
        else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .output();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `initdb` or `pg_ctl` as the cluster's owner, in the cluster's directory.
    fn server_tool(&self, program: &Path, args: &[String]) -> Result<Output, String> {
        self.run_as
            .command(program, args, self.dir())
            .output()
            .map_err(|e| format!("cannot run `{}`: {e}", program.display()))
    }

    /// Runs one SQL command with `psql`, as the current user, over TCP.
    fn psql(&self, database: &str, sql: &str) -> Result<(), String> {
        let mut cmd = Command::new(&self.bins.psql);
        run_as::clean_env(&mut cmd);
        cmd.env("PGCONNECT_TIMEOUT", "10")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url_for(database))
            .args(["-c", sql]);
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run `{}`: {e}", self.bins.psql.display()))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "`psql -c {sql:?}` on port {} failed ({}):\n{}\n--- server log ---\n{}",
            self.port,
            out.status,
            output_tail(&out),
            file_tail(&self.log_file()),
        ))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if dir.close().is_err() {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}

/// A new directory for one cluster: in `/dev/shm` when it is a world-writable directory (a
/// tmpfs, where `initdb` takes a third of the time it takes on disk), else in `/tmp` (when the
/// tools run as `postgres`, who must reach it) or the caller's temporary directory.
fn cluster_dir(run_as: &RunAs) -> Result<TempDir, String> {
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix("brevet-pg-");
        b
    };
    let shm = Path::new("/dev/shm");
    let in_shm = is_world_writable_dir(shm).then(|| builder().tempdir_in(shm).ok());
    if let Some(dir) = in_shm.flatten() {
        return Ok(dir);
    }
    let parent = if run_as.is_other_user() {
        PathBuf::from("/tmp")
    } else {
        std::env::temp_dir()
    };
    builder().tempdir_in(&parent).map_err(|e| {
        format!(
            "cannot make a cluster directory in `{}`: {e}",
            parent.display()
        )
    })
}

fn is_world_writable_dir(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o777 == 0o777)
}

/// `[a-z_][a-z0-9_]*`, at most 63 bytes: safe to splice into SQL unquoted.
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    name.len() <= 63
        && (first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The last lines of a command's stdout and stderr.
fn output_tail(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    tail(&text)
}

fn file_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => tail(&String::from_utf8_lossy(&bytes)),
        Err(e) => format!("(cannot read `{}`: {e})", path.display()),
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_identifiers() {
        for ok in ["brevet", "_x", "t1_store_42", &"a".repeat(63)] {
            assert!(is_plain_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "1x",
            "Brevet",
            "a-b",
            "a b",
            "x;drop",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_plain_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn tail_keeps_last_lines() {
        let text: String = (0..100).map(|i| format!("{i}\n")).collect();
        let t = tail(&text);
        assert!(t.starts_with("70\n") && t.ends_with("99"), "{t}");
        assert_eq!(tail("one\ntwo"), "one\ntwo");
    }

    /// `psql -tA -c SQL URL`, as a test would run it.
    fn query(pg: &Postgres, url: &str, sql: &str) -> String {
        let out = Command::new(&pg.bins.psql)
            .args(["-X", "-tA", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", output_tail(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn cluster_lifecycle() {
        let started = Instant::now();
        let pg = match Postgres::start() {
            Ok(Some(pg)) => pg,
            Ok(None) => return crate::skip("cluster_lifecycle", "no PostgreSQL server tools"),
            Err(e) => panic!("{e}"),
        };
        println!("cluster started in {:?}", started.elapsed());
        let port = pg.port();
        assert_eq!(
            pg.url(),
            format!("postgres://brevet@127.0.0.1:{port}/brevet")
        );
        assert_eq!(query(&pg, &pg.url(), "select 1"), "1");
        assert_eq!(query(&pg, &pg.url(), "select current_user"), "brevet");

        let url = pg.fresh_database("lifecycle_extra").unwrap();
        assert!(url.ends_with("/lifecycle_extra"), "{url}");
        assert_eq!(
            query(&pg, &url, "select current_database()"),
            "lifecycle_extra"
        );
        let again = pg.fresh_database("lifecycle_extra").unwrap_err();
        assert!(again.contains("already exists"), "{again}");
        let bad = pg.fresh_database("x; drop database brevet").unwrap_err();
        assert!(bad.contains("invalid database name"), "{bad}");

        let dir = pg.dir().to_path_buf();
        assert!(dir.join("data/PG_VERSION").is_file());
        let stopping = Instant::now();
        drop(pg);
        println!("cluster stopped and removed in {:?}", stopping.elapsed());
        assert!(!dir.exists(), "{} should be gone", dir.display());
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("port should be free after drop");
    }
}
