//! A throwaway database for one test, on SQLite or PostgreSQL, named by URL.
//!
//! [`ScratchDb::sqlite`] makes a file URL in a fresh temporary directory; [`ScratchDb::postgres`]
//! starts a [`Postgres`] cluster, or reports the skip with [`crate::skip`] and returns `None`
//! when this machine has no PostgreSQL server tools. Dropping the value removes the directory or
//! stops the cluster. Tests that run the same body on both engines call [`ScratchDb::start`].

use tempfile::TempDir;

use crate::Postgres;

/// Which engine a scratch database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbEngine {
    Sqlite,
    Postgres,
}

/// A database that lives as long as this value; see the module documentation.
#[derive(Debug)]
pub struct ScratchDb {
    url: String,
    engine: DbEngine,
    _sqlite_dir: Option<TempDir>,
    pg: Option<Postgres>,
}

impl ScratchDb {
    /// A database on `engine`, or `None` (after printing why) when `engine` is PostgreSQL and
    /// its server tools are not installed.
    ///
    /// # Panics
    ///
    /// When the temporary directory cannot be made, or the PostgreSQL tools are installed but
    /// the cluster does not start (the message quotes its log).
    pub fn start(engine: DbEngine, test: &str) -> Option<ScratchDb> {
        match engine {
            DbEngine::Sqlite => Some(ScratchDb::sqlite()),
            DbEngine::Postgres => ScratchDb::postgres(test),
        }
    }

    /// An empty SQLite database file in a new temporary directory (created on first open).
    ///
    /// # Panics
    ///
    /// When the temporary directory cannot be made.
    pub fn sqlite() -> ScratchDb {
        let dir = tempfile::tempdir()
            .unwrap_or_else(|e| panic!("cannot make a temporary directory for SQLite: {e}"));
        let url = format!("sqlite://{}", dir.path().join("brevet.db").display());
        ScratchDb {
            url,
            engine: DbEngine::Sqlite,
            _sqlite_dir: Some(dir),
            pg: None,
        }
    }

    /// An empty database in a new PostgreSQL cluster; see [`ScratchDb::start`].
    ///
    /// # Panics
    ///
    /// As [`ScratchDb::start`].
    pub fn postgres(test: &str) -> Option<ScratchDb> {
        match Postgres::start() {
            Ok(Some(pg)) => Some(ScratchDb {
                url: pg.url(),
                engine: DbEngine::Postgres,
                _sqlite_dir: None,
                pg: Some(pg),
            }),
            Ok(None) => {
                crate::skip(
                    test,
                    "no PostgreSQL server binaries (initdb, pg_ctl) on this machine",
                );
                None
            }
            Err(e) => panic!("PostgreSQL failed to start: {e}"),
        }
    }

    /// The URL to open (`sqlite://…` or `postgres://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn engine(&self) -> DbEngine {
        self.engine
    }

    /// The cluster behind a PostgreSQL scratch database, for more databases in it.
    pub fn cluster(&self) -> Option<&Postgres> {
        self.pg.as_ref()
    }
}
