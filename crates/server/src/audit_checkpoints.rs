//! Signing audit checkpoints: a task that, twice a second, reads the events appended since the
//! last checkpoint, re-verifies them (contents, leaf hash, chain link), folds their leaf hashes
//! into the Merkle frontier, and signs and stores a checkpoint of the new size and root.
//!
//! Nothing is signed when nothing was appended. The frontier keeps the work per tick
//! proportional to the new events (never to the whole log). At start it is taken from the
//! latest stored checkpoint, after checking that checkpoint's signature and that the stored
//! frontier folds to its root; failing that, it is rebuilt by re-reading the whole log once.
//!
//! Events that fail re-verification (a database edited under the server) are never signed: the
//! task logs the first bad sequence number and stops there until the log is repaired. Several
//! replicas may run this at once; the store keeps one checkpoint per size.

use std::sync::Arc;
use std::time::Duration;

use brevet_audit::{Checkpoint, Frontier, Head};
use brevet_proto::timefmt::rfc3339;
use tokio::sync::Mutex;

use crate::Error;
use crate::app::App;

/// How often new events are looked for.
pub const INTERVAL: Duration = Duration::from_millis(500);
/// Events read per query while catching up.
const PAGE: i64 = 2000;

/// The signing progress of this process.
#[derive(Default)]
pub struct Checkpointer {
    state: Mutex<Option<Progress>>,
}

/// The log as far as it has been verified and folded.
struct Progress {
    frontier: Frontier,
    /// The chain head at `frontier.size()`.
    head: Head,
    /// The size of the latest checkpoint known to be stored.
    signed: u64,
    /// The first event that failed verification, so it is logged once.
    bad: Option<u64>,
}

/// Signs checkpoints until the task is aborted.
pub async fn run(app: Arc<App>) {
    loop {
        if let Err(e) = tick(&app).await {
            tracing::error!(error = %e, "audit checkpoint failed; retrying");
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// One pass: fold in new events and sign a checkpoint if the log grew. Returns the latest
/// checkpoint this process stored or found stored. Public for tests and benchmarks.
pub async fn tick(app: &App) -> Result<Option<u64>, Error> {
    let mut guard = app.checkpoints.state.lock().await;
    let progress = match guard.as_mut() {
        Some(p) => p,
        None => guard.insert(resume(app).await?),
    };
    catch_up(app, progress).await?;
    let size = progress.frontier.size();
    if size == 0 || size <= progress.signed {
        return Ok((progress.signed > 0).then_some(progress.signed));
    }
    let at = rfc3339(app.clock.now());
    let cp = Checkpoint::sign(size, &progress.frontier.root(), &at, &app.audit_key.pair);
    if !app
        .store
        .insert_checkpoint(
            &cp,
            &progress.frontier.to_text(),
            (progress.signed > 0).then_some(progress.signed),
        )
        .await?
    {
        tracing::debug!(size, "another replica stored this checkpoint first");
    }
    progress.signed = size;
    crate::restore::checkpoint_signed(app, size, &cp.root).await?;
    Ok(Some(size))
}

/// Starts from the latest stored checkpoint when it checks out, else from the empty log.
async fn resume(app: &App) -> Result<Progress, Error> {
    let fresh = Progress {
        frontier: Frontier::new(),
        head: Head::GENESIS,
        signed: 0,
        bad: None,
    };
    let Some(stored) = app.store.latest_checkpoint().await? else {
        return Ok(fresh);
    };
    let cp = stored.checkpoint;
    let signed = cp.size;
    let size = app.store.audit_size().await?;
    if size < cp.size {
        tracing::error!(
            log = size,
            checkpoint = cp.size,
            "the audit log is shorter than its latest checkpoint: events were removed"
        );
    }
    let usable = async {
        let public = brevet_audit::parse_public_key(&app.audit_key.public_b64).ok()?;
        cp.verify(&public).ok()?;
        let frontier = Frontier::from_text(cp.size, &stored.frontier).ok()?;
        if Ok(frontier.root()) != cp.root_hash() {
            return None;
        }
        let event = app.store.audit_event(cp.size).await.ok()??;
        Some((frontier, event.head().ok()?))
    };
    match usable.await {
        Some((frontier, head)) => Ok(Progress {
            frontier,
            head,
            signed,
            bad: None,
        }),
        None => {
            tracing::warn!(
                size = cp.size,
                "the latest audit checkpoint cannot be resumed from (another key, or its \
                 frontier does not match); re-reading the whole log"
            );
            Ok(Progress { signed, ..fresh })
        }
    }
}

/// Verifies and folds every event after the frontier, stopping at the first bad one.
async fn catch_up(app: &App, p: &mut Progress) -> Result<(), Error> {
    loop {
        let page = app.store.audit_events(p.frontier.size(), PAGE).await?;
        if page.is_empty() {
            return Ok(());
        }
        for sealed in &page {
            match brevet_audit::verify(&p.head, [sealed]) {
                Ok(head) => {
                    let leaf = sealed.leaf().map_err(|e| Error::Internal(e.to_string()))?;
                    p.frontier.push(leaf);
                    p.head = head;
                    p.bad = None;
                }
                Err(e) => {
                    if p.bad != Some(e.seq) {
                        tracing::error!(
                            seq = e.seq,
                            error = %e,
                            "the stored audit trail does not verify; no checkpoint will cover it"
                        );
                        p.bad = Some(e.seq);
                    }
                    return Ok(());
                }
            }
        }
    }
}
