//! Brevet's storage: one API over SQLite (the embedded default) and PostgreSQL (for more than one
//! `brevetd`).
//!
//! Both engines run the same SQL through sqlx's `Any` driver: `$n` placeholders (SQLite accepts
//! them too), `BIGINT` and `TEXT` columns only, times as unix seconds. Where the engines differ
//! (row locks, `SKIP LOCKED`) the statement is chosen by [`Engine`]. Every state change happens in
//! a [`Tx`] together with its audit event ([`Tx::audit`]), so a change without its event, or an
//! event without its change, cannot be committed.
//!
//! SQLite allows one writer at a time; [`Store::begin`] takes an in-process lock and starts the
//! transaction with `BEGIN IMMEDIATE`, so concurrent writers queue instead of failing with
//! `SQLITE_BUSY`. PostgreSQL transactions lock the rows they change (`FOR UPDATE`), and the audit
//! head row, locked at commit only, serialises appends to the hash chain.

#[macro_use]
mod states;
#[cfg(test)]
#[macro_use]
mod test_db;

mod audit;
mod audit_terms;
mod checkpoints;
mod delivery;
mod device_events;
mod devices;
mod enroll;
mod error;
mod grants;
mod lockout;
mod meta;
mod migrations;
mod notify;
mod privileges;
mod reports;
mod requests;
mod restore;
mod sessions;
mod syslog;
mod users;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use audit::{AuditFilter, DeviceEventRecord};
pub use checkpoints::StoredCheckpoint;
pub use delivery::{AckTarget, DeviceGrant, Unconfirmed};
pub use devices::DeviceRecord;
pub use enroll::{DeviceCertStatus, EnrollTokenRecord, Superseded};
pub use error::Error;
pub use grants::{GrantFilter, GrantRecord, Holder, NewGrant};
pub use lockout::{ThrottleState, ThrottledCounts};
pub use notify::Listener;
pub use privileges::{PrivilegeRecord, PrivilegeState};
pub use reports::{NewReport, ReportRecord};
pub use requests::{ApprovalRecord, NewRequest, RequestFilter, RequestRecord};
pub use sessions::SessionRecord;
pub use users::UserRecord;
pub use webhooks::WebhookRecord;

pub type Result<T> = std::result::Result<T, Error>;

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// Serialises SQLite writers in this process (see the module docs). Unused for PostgreSQL.
    write_lock: Arc<Mutex<()>>,
    /// The PostgreSQL URL, for the connection that listens for other replicas' changes.
    pg_url: Option<String>,
}

/// A write transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) engine: Engine,
    /// Events drafted in this transaction, sealed onto the chain head and written in one go at
    /// commit ([`Tx::commit`]).
    pub(crate) audit_pending: Vec<audit::Pending>,
    /// Facts about grants and requests that audit events name, read once per transaction
    /// (`audit_terms.rs`).
    pub(crate) audit_facts:
        std::collections::HashMap<(&'static str, String), Vec<(&'static str, String)>>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl Engine {
    /// What ends a `SELECT` that locks the rows it reads: nothing on SQLite (its single writer
    /// already excludes others), `FOR UPDATE` on PostgreSQL.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        }
    }

    /// What ends a `SELECT` that claims rows for this transaction, passing over rows another
    /// transaction holds: nothing on SQLite, `FOR UPDATE SKIP LOCKED` on PostgreSQL (so
    /// replicas sweeping at once each get different rows).
    pub(crate) fn claim(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

impl Store {
    /// Opens `url` (`sqlite://PATH` or `postgres://…`), creating an SQLite file if needed, and
    /// brings the schema up to date (`migrations`).
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        migrations::migrate(&store).await?;
        audit_terms::backfill(&store).await?;
        Ok(store)
    }

    /// Opens `url` without touching the schema.
    pub(crate) async fn connect(url: &str) -> Result<Store> {
        install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            return Err(Error::Config(format!(
                "unsupported database url `{url}`: use sqlite://PATH or postgres://…"
            )));
        };
        let url = match engine {
            Engine::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let options = AnyPoolOptions::new()
            .max_connections(match engine {
                Engine::Sqlite => 8,
                Engine::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        conn.execute(
                            "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&url).await?;
        Ok(Store {
            pool,
            engine,
            write_lock: Arc::new(Mutex::new(())),
            pg_url: (engine == Engine::Postgres).then(|| url.clone()),
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        match self.engine {
            Engine::Sqlite => {
                let guard = self.write_lock.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(Tx {
                    tx,
                    engine: self.engine,
                    audit_pending: Vec::new(),
                    audit_facts: Default::default(),
                    _guard: Some(guard),
                })
            }
            Engine::Postgres => Ok(Tx {
                tx: self.pool.begin().await?,
                engine: self.engine,
                audit_pending: Vec::new(),
                audit_facts: Default::default(),
                _guard: None,
            }),
        }
    }

    /// Closes every connection (used before a restart in tests).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Tx {
    /// Writes the audit events sealed in this transaction, then commits: a change and its
    /// events land together or not at all.
    pub async fn commit(mut self) -> Result<()> {
        self.flush_audit().await?;
        self.tx.commit().await?;
        Ok(())
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }
}
