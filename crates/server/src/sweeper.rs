//! The sweeper: ends grants at `not_after`, expires undecided requests, and raises an alert for
//! ended grants whose removal no device confirmed (`alerts`).
//!
//! It wakes at the next grant deadline (or every 250 ms at most, or when a new grant is stored),
//! so a grant ends within a fraction of a second of `not_after`. On PostgreSQL several replicas
//! may sweep at once: `FOR UPDATE SKIP LOCKED` gives each due grant to one of them.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::{alerts, grants, requests};

const MAX_SLEEP: Duration = Duration::from_millis(250);

pub async fn run(app: Arc<App>) {
    loop {
        if let Err(e) = sweep_once(&app).await {
            tracing::error!(error = %e, "sweep failed; retrying");
        }
        let sleep = match app.store.next_grant_expiry().await {
            Ok(Some(next)) => {
                let ms = next * 1000 - app.clock.now_ms();
                Duration::from_millis(ms.clamp(10, MAX_SLEEP.as_millis() as i64) as u64)
            }
            _ => MAX_SLEEP,
        };
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = app.sweeper_wake.notified() => {}
        }
    }
}

/// One pass: expire everything that is due and raise due alerts. Public for tests.
pub async fn sweep_once(app: &App) -> Result<(), crate::Error> {
    while grants::expire_due(app).await? == 200 {}
    while requests::expire_due(app).await? == 100 {}
    while alerts::raise_due(app).await? == alerts::BATCH {}
    Ok(())
}
