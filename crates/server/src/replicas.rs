//! Several `brevetd` replicas on one PostgreSQL: each listens for the others' grant changes
//! (`NOTIFY brevet_grants`, sent by [`App::grant_changed`]) and wakes the long-polls it holds
//! for that device, and its sweeper. On SQLite there is one process and nothing to do.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

/// Listens until the server stops. A lost connection is re-established; since notices may
/// have been missed meanwhile, every waiting long-poll is then answered once.
pub(crate) fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            let mut listener = match app.store.listen_grants_changed().await {
                Ok(Some(l)) => l,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other replicas' grant changes; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            // Whatever changed while not listening.
            app.wake_all_devices();
            loop {
                match listener.next().await {
                    Ok((sender, device)) if sender != app.epoch => {
                        app.local_grant_changed(&device);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the listen connection; reconnecting");
                        break;
                    }
                }
            }
        }
    })
}
