//! Versioned migration steps and the runner that applies them at start (`docs/migrations.md`).
//!
//! A [`Step`] is a list of statements for both engines, or one list per engine when they need
//! different SQL (a table rebuild on SQLite, `ALTER COLUMN` on PostgreSQL). Each applied step
//! is recorded in `schema_migrations (version, name, checksum, applied_at)` with the SHA-256 of
//! the statements this engine ran, and `meta.schema_version` keeps the level (older releases
//! read it to refuse a database newer than themselves).
//!
//! Guarantees, checked on every start before anything is changed:
//! - a database at a version this binary does not know is refused (upgrade `brevetd`);
//! - a recorded checksum that differs from the binary's step is refused, naming the version:
//!   a released step was edited;
//! - a database from before checksums (`meta.schema_version` = N, no `schema_migrations` rows)
//!   gets the checksums of steps 1..=N recorded, then is upgraded as usual.
//!
//! All of it runs in one transaction: a failing step leaves the database as it was. On
//! PostgreSQL the transaction first takes an advisory lock, so replicas starting at once
//! migrate one after the other (the second finds the work done). On SQLite it runs with
//! `foreign_keys` off, as SQLite's table-rebuild procedure requires, and checks every foreign
//! key (`PRAGMA foreign_key_check`) before it commits.

mod steps;
#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use data_encoding::HEXLOWER;
use sqlx::{Any, Connection, Executor, Row, Transaction};

use crate::{Engine, Error, Result, Store};

pub(crate) use steps::STEPS;

/// The advisory lock key PostgreSQL replicas take while migrating.
const PG_LOCK: i64 = 7_162_534;

/// One migration step.
pub(crate) struct Step {
    /// 1 for the first step, one more for each after it.
    pub(crate) version: u32,
    /// A short name for people (`schema_migrations.name`, error messages); not checked.
    pub(crate) name: &'static str,
    pub(crate) sql: Sql,
}

/// The statements of a step.
pub(crate) enum Sql {
    /// The same statements on both engines.
    Both(&'static [&'static str]),
    /// Different statements per engine; an empty list makes a step for one engine only.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "no released step needs it yet; the tests use it")
    )]
    PerEngine {
        sqlite: &'static [&'static str],
        postgres: &'static [&'static str],
    },
}

impl Step {
    /// The statements this step runs on `engine`.
    pub(crate) fn statements(&self, engine: Engine) -> &'static [&'static str] {
        match (&self.sql, engine) {
            (Sql::Both(all), _) => all,
            (Sql::PerEngine { sqlite, .. }, Engine::Sqlite) => sqlite,
            (Sql::PerEngine { postgres, .. }, Engine::Postgres) => postgres,
        }
    }

    /// The SHA-256 (hex) of the statements this step runs on `engine`, with each run of
    /// whitespace counted as one space, so re-indenting a step does not change it.
    pub(crate) fn checksum(&self, engine: Engine) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for statement in self.statements(engine) {
            let mut words = statement.split_whitespace();
            if let Some(first) = words.next() {
                ctx.update(first.as_bytes());
            }
            for w in words {
                ctx.update(b" ");
                ctx.update(w.as_bytes());
            }
            ctx.update(b";\n");
        }
        HEXLOWER.encode(ctx.finish().as_ref())
    }
}

/// A row of `schema_migrations`.
struct Applied {
    version: i64,
    name: String,
    checksum: String,
}

/// Brings `store`'s schema up to the newest step.
pub(crate) async fn migrate(store: &Store) -> Result<()> {
    run(store, STEPS).await
}

/// Brings `store`'s schema up to the last of `steps` (tests pass fewer, or extra, steps).
pub(crate) async fn run(store: &Store, steps: &[Step]) -> Result<()> {
    for (i, step) in steps.iter().enumerate() {
        if usize::try_from(step.version).ok() != Some(i + 1) {
            return Err(Error::Schema(format!(
                "migration `{}` is numbered {} at position {}: steps must be numbered 1, 2, 3, …",
                step.name,
                step.version,
                i + 1
            )));
        }
    }
    if store.engine == Engine::Sqlite {
        // Persistent in the file: readers never block the writer.
        store.pool().execute("PRAGMA journal_mode = WAL").await?;
    }
    // A connection of its own: on SQLite it runs with foreign keys off, and must never go
    // back to the pool that way.
    let mut conn = store.pool().acquire().await?.detach();
    let result = run_on(&mut conn, store.engine, steps).await;
    let _ = conn.close().await;
    result
}

async fn run_on(conn: &mut sqlx::AnyConnection, engine: Engine, steps: &[Step]) -> Result<()> {
    let mut tx = match engine {
        Engine::Sqlite => {
            conn.execute("PRAGMA foreign_keys = OFF").await?;
            conn.begin_with("BEGIN IMMEDIATE").await?
        }
        Engine::Postgres => {
            let mut tx = conn.begin().await?;
            // Two replicas starting at once must not both migrate: the second waits here,
            // then finds every step recorded.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_LOCK)
                .execute(&mut *tx)
                .await?;
            tx
        }
    };
    tx.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        .await?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at BIGINT NOT NULL)",
    )
    .await?;
    let level = legacy_level(&mut tx).await?;
    let mut applied = recorded(&mut tx).await?;
    let now = unix_now();
    if applied.is_empty() && level > 0 {
        // A database from before checksums: what it ran is what this binary has (released
        // steps are never edited), so record that.
        let known = known_level(level, steps)?;
        for step in &steps[..known] {
            record(&mut tx, engine, step, now).await?;
        }
        tracing::info!(
            through = level,
            "recorded the checksums of the migrations an earlier brevetd applied"
        );
        applied = recorded(&mut tx).await?;
    }
    let done = check(&applied, level, engine, steps)?;
    for step in &steps[done..] {
        for statement in step.statements(engine) {
            tx.execute(*statement).await.map_err(|e| {
                Error::Schema(format!(
                    "migration {} `{}` failed: {e}; the database was left unchanged",
                    step.version, step.name
                ))
            })?;
        }
        record(&mut tx, engine, step, now).await?;
        tracing::info!(
            version = step.version,
            name = step.name,
            "applied migration"
        );
    }
    if done < steps.len() {
        if engine == Engine::Sqlite {
            foreign_key_check(&mut tx).await?;
        }
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(steps.len().to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `meta.schema_version`: how far the database has come (0 for a new one).
async fn legacy_level(tx: &mut Transaction<'_, Any>) -> Result<usize> {
    let v: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'schema_version'")
            .fetch_optional(&mut **tx)
            .await?;
    match v {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| Error::Corrupt(format!("meta.schema_version `{v}` is not a number"))),
    }
}

async fn recorded(tx: &mut Transaction<'_, Any>) -> Result<Vec<Applied>> {
    sqlx::query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| {
            Ok(Applied {
                version: r.try_get("version")?,
                name: r.try_get("name")?,
                checksum: r.try_get("checksum")?,
            })
        })
        .collect()
}

async fn record(
    tx: &mut Transaction<'_, Any>,
    engine: Engine,
    step: &Step,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(i64::from(step.version))
    .bind(step.name)
    .bind(step.checksum(engine))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// `level` if this binary has that many steps; the "newer database" error otherwise.
fn known_level(level: usize, steps: &[Step]) -> Result<usize> {
    if level > steps.len() {
        return Err(Error::Schema(format!(
            "the database schema is at migration {level}, newer than this brevetd (which knows \
             {}): run the brevetd release that upgraded it, or a later one",
            steps.len()
        )));
    }
    Ok(level)
}

/// Checks what the database recorded against `steps`; returns how many steps are applied.
fn check(applied: &[Applied], level: usize, engine: Engine, steps: &[Step]) -> Result<usize> {
    for (i, a) in applied.iter().enumerate() {
        if usize::try_from(a.version).ok() != Some(i + 1) {
            return Err(Error::Corrupt(format!(
                "schema_migrations has migration {} where {} was expected: the table was \
                 edited; restore the database from a backup",
                a.version,
                i + 1
            )));
        }
    }
    if let Some(newest) = applied.last().filter(|_| applied.len() > steps.len()) {
        return Err(Error::Schema(format!(
            "the database schema is at migration {} `{}`, newer than this brevetd (which knows \
             {}): run the brevetd release that upgraded it, or a later one",
            newest.version,
            newest.name,
            steps.len()
        )));
    }
    known_level(level, steps)?;
    if applied.len() != level {
        return Err(Error::Corrupt(format!(
            "meta.schema_version is {level} but schema_migrations records {} migrations: \
             restore the database from a backup",
            applied.len()
        )));
    }
    for (a, step) in applied.iter().zip(steps) {
        let expected = step.checksum(engine);
        if a.checksum != expected {
            return Err(Error::Schema(format!(
                "migration {} `{}` differs from the one applied to this database (recorded \
                 checksum {}, this brevetd has {expected}): a released migration must never be \
                 edited; run a brevetd whose migration {} is the released one, and put the \
                 change in a new migration",
                a.version, step.name, a.checksum, a.version
            )));
        }
    }
    Ok(applied.len())
}

/// Fails if any foreign key does not resolve (SQLite, after steps ran with them off).
async fn foreign_key_check(tx: &mut Transaction<'_, Any>) -> Result<()> {
    let bad = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut **tx)
        .await?;
    if let Some(row) = bad.first() {
        let table: String = row.try_get(0)?;
        return Err(Error::Schema(format!(
            "after migrating, {} row(s) refer to rows that do not exist (the first in \
             `{table}`); the database was left unchanged",
            bad.len()
        )));
    }
    Ok(())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
