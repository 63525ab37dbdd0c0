//! Telling other `brevetd` replicas on the same PostgreSQL that a device's grants changed
//! (`NOTIFY brevet_grants`), so a replica holding that device's long-poll wakes it at once. On
//! SQLite there is one process and nothing to tell.
//!
//! The payload is `<sender> <device>`: the sender's per-process id lets a replica ignore its
//! own notices. Device names are validated (no spaces) before they reach here.

use sqlx::postgres::PgListener;

use crate::{Engine, Result, Store};

const CHANNEL: &str = "brevet_grants";

impl Store {
    /// Tells the other replicas that `device`'s grants changed. A no-op on SQLite.
    pub async fn notify_grants_changed(&self, sender: &str, device: &str) -> Result<()> {
        if self.engine != Engine::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{sender} {device}"))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A connection that hears other replicas' notices; `None` on SQLite.
    pub async fn listen_grants_changed(&self) -> Result<Option<Listener>> {
        let Some(url) = &self.pg_url else {
            return Ok(None);
        };
        let mut inner = PgListener::connect(url).await?;
        inner.listen(CHANNEL).await?;
        Ok(Some(Listener { inner }))
    }
}

/// Hears `notify_grants_changed` from every replica.
pub struct Listener {
    inner: PgListener,
}

impl Listener {
    /// The next notice as `(sender, device)`. After a lost connection it reconnects by
    /// itself; notices sent meanwhile are lost (the agents' next poll, at most 25 s later,
    /// catches up).
    pub async fn next(&mut self) -> Result<(String, String)> {
        loop {
            let n = self.inner.recv().await?;
            if let Some((sender, device)) = n.payload().split_once(' ') {
                return Ok((sender.to_owned(), device.to_owned()));
            }
        }
    }
}
