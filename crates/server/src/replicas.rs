//! Several `brevetd` replicas on one PostgreSQL: each listens for the others' grant changes
//! (`NOTIFY brevet_grants`, sent by [`App::grant_changed`]) and wakes the long-polls it holds
//! for that device, and its sweeper. On SQLite there is one process and nothing to do.

use std::sync::Arc;
use std::time::Duration;

use brevet_store::Listener;

use crate::app::App;

/// Starts listening before the server serves, so no change can slip between the two, then
/// listens until the server stops. A connection lost later is re-established; since notices may
/// have been missed meanwhile, every waiting long-poll is then answered once.
pub(crate) async fn start(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    let first = match app.store.listen_grants_changed().await {
        Ok(None) => return tokio::spawn(async {}),
        Ok(Some(listener)) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for other replicas' grant changes yet; retrying");
            None
        }
    };
    tokio::spawn(run(app, first))
}

async fn run(app: Arc<App>, mut listener: Option<Listener>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut current = match listener.take() {
            Some(l) => l,
            None => match app.store.listen_grants_changed().await {
                Ok(Some(l)) => {
                    backoff = Duration::from_millis(200);
                    // Whatever changed while not listening.
                    app.wake_all_devices();
                    l
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other replicas' grant changes; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            },
        };
        loop {
            match current.next().await {
                Ok((sender, device)) if sender != app.epoch => app.local_grant_changed(&device),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "lost the listen connection; reconnecting");
                    break;
                }
            }
        }
    }
}
