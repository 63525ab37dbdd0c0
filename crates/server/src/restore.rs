//! Restores from backup cannot bring privilege back.
//!
//! A database restored from a copy forgets what happened after the copy: a grant revoked since
//! is live again and would be delivered. So the server keeps a marker outside the database, in
//! the data directory (`restore-marker.json`): the size and root of the newest audit checkpoint
//! it signed, and the restore generation. At start, a database that lacks that checkpoint, or
//! whose generation is older, or a marker that was deleted after one had been written, means
//! the server runs on older state than it has served before. It then records
//! `alert.restore_detected`, keeps `restore_pending` in the database (so a restart does not
//! forget it) and refuses to deliver grants (`503 restore_pending`) until an administrator with
//! `manage_restore` acknowledges it with a fresh second factor. Acknowledging revokes every live
//! grant issued before the restore was noticed, cancels every request still pending from then,
//! and raises the restore generation, which every device answer carries in its signed
//! server-state stamp: agents that saw newer state refuse anything older (`brevet_proto::state`).

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use brevet_policy::Permission;
use brevet_proto::api::RestoreView;
use brevet_proto::timefmt::rfc3339;
use brevet_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::auth::{Caller, step_up};
use crate::authz;
use crate::datadir::DataDir;

/// `meta` key: the pending restore, as JSON ([`Pending`]).
const PENDING_KEY: &str = "restore_pending";
/// `meta` key: set once a marker has been written for this database.
const MARKED_KEY: &str = "restore_marker_written";

/// The file in the data directory.
#[derive(Debug, Clone)]
pub struct Marker {
    path: PathBuf,
    dir: DataDir,
}

/// What the marker says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerDoc {
    v: u32,
    generation: u64,
    /// Size and root of the newest checkpoint signed (0 and "" before the first).
    size: u64,
    root: String,
}

/// A restore noticed and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub detected_at: i64,
    pub reason: String,
    pub generation: u64,
}

/// This process's view of the restore state; [`RestoreState::check`] also reads the database
/// while a restore is pending, so an acknowledgement on another replica is seen at once.
#[derive(Debug, Default)]
pub struct RestoreState {
    pending: Mutex<Option<Pending>>,
}

impl Marker {
    pub fn new(dir: &DataDir) -> Marker {
        Marker {
            path: dir.root.join("restore-marker.json"),
            dir: dir.clone(),
        }
    }

    fn read(&self) -> Result<Option<MarkerDoc>, Error> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                Error::Config(format!(
                    "`{}` does not parse ({e}); restore it from the data directory's backup, or \
                     delete it and acknowledge the restore",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &self.path, e)),
        }
    }

    /// Records that this server signed a checkpoint of `size` events with `root`.
    pub fn record(&self, generation: u64, size: u64, root: &str) -> Result<(), Error> {
        let doc = MarkerDoc {
            v: 1,
            generation,
            size,
            root: root.to_owned(),
        };
        let text = serde_json::to_string(&doc).map_err(|e| Error::Internal(e.to_string()))?;
        self.dir.write_replace(&self.path, &text)
    }
}

impl RestoreState {
    /// Refuses while a restore waits for acknowledgement.
    pub async fn check(&self, store: &Store) -> Result<(), Error> {
        if self.current().is_none() {
            return Ok(());
        }
        // Another replica may have acknowledged it.
        let still = store.meta(PENDING_KEY).await?.is_some();
        if !still {
            self.set(None);
            return Ok(());
        }
        Err(Error::RestorePending(
            "the server runs on a database restored from backup and delivers no grants until \
             an administrator acknowledges the restore (`brevet restore acknowledge`)"
                .into(),
        ))
    }

    pub fn current(&self) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, p: Option<Pending>) {
        *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = p;
    }
}

/// At start: compares the marker with the database and records a restore if the database is
/// older than what this server has served. Returns the pending restore, if any.
pub async fn check_at_start(
    store: &Store,
    marker: &Marker,
    now: i64,
) -> Result<Option<Pending>, Error> {
    if let Some(text) = store.meta(PENDING_KEY).await? {
        let p: Pending = serde_json::from_str(&text)
            .map_err(|e| Error::Internal(format!("meta restore_pending: {e}")))?;
        return Ok(Some(p));
    }
    let (generation, _) = store.server_state().await?;
    let reason = match marker.read()? {
        None if store.meta(MARKED_KEY).await?.is_some() => Some(format!(
            "the restore marker `{}` is missing although this database had one",
            marker.path.display()
        )),
        None => {
            // The first start with a marker: this database is what the server has served.
            let latest = store.latest_checkpoint().await?;
            let (size, root) = latest
                .map(|c| (c.checkpoint.size, c.checkpoint.root))
                .unwrap_or((0, String::new()));
            marker.record(generation, size, &root)?;
            let mut tx = store.begin().await?;
            tx.set_meta(MARKED_KEY, "1").await?;
            tx.commit().await?;
            None
        }
        Some(m) if m.generation > generation => Some(format!(
            "the database is at restore generation {generation}, older than the {} this server \
             has served",
            m.generation
        )),
        Some(m) if m.generation == generation && m.size > 0 => {
            match store.checkpoint(m.size).await? {
                Some(cp) if cp.root == m.root => None,
                Some(_) => Some(format!(
                    "the database's audit checkpoint of {} events differs from the one this \
                     server signed",
                    m.size
                )),
                None => Some(format!(
                    "the database lacks the audit checkpoint of {} events this server signed",
                    m.size
                )),
            }
        }
        Some(_) => None,
    };
    let Some(reason) = reason else {
        return Ok(None);
    };
    tracing::error!(%reason, "restore from backup detected: no grants are delivered until an administrator acknowledges it");
    let pending = Pending {
        detected_at: now,
        reason,
        generation,
    };
    let text = serde_json::to_string(&pending).map_err(|e| Error::Internal(e.to_string()))?;
    let mut tx = store.begin().await?;
    tx.set_meta(PENDING_KEY, &text).await?;
    tx.set_meta(MARKED_KEY, "1").await?;
    tx.audit(
        "alert.restore_detected",
        "brevetd",
        "restore",
        json!({ "reason": pending.reason, "generation": generation, "detected_at": rfc3339(now) }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(pending))
}

/// Records a newly signed checkpoint in the marker, unless a restore is pending (the marker
/// keeps describing the newer state until the restore is acknowledged).
pub async fn checkpoint_signed(app: &App, size: u64, root: &str) -> Result<(), Error> {
    if app.restore.current().is_some() {
        return Ok(());
    }
    let (generation, _) = app.store.server_state().await?;
    app.marker.record(generation, size, root)
}

/// `GET /v1/restore`.
pub async fn status(app: &App, caller: &Caller) -> Result<RestoreView, Error> {
    authz::require(app, caller, Permission::ManageRestore)?;
    let _ = app.restore.check(&app.store).await;
    let (generation, _) = app.store.server_state().await?;
    Ok(view(app.restore.current(), generation))
}

/// `brevet restore acknowledge`: an administrator says the restore is known. Every live grant
/// issued before it was noticed is revoked, every request pending from then is cancelled, and
/// the restore generation goes up by one.
pub async fn acknowledge(
    app: &App,
    caller: &mut Caller,
    totp: Option<&str>,
) -> Result<RestoreView, Error> {
    authz::require(app, caller, Permission::ManageRestore)?;
    step_up(app, caller, totp, "acknowledging a restore").await?;
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    let Some(text) = tx.meta(PENDING_KEY).await? else {
        app.restore.set(None);
        return Err(Error::Conflict(
            "no restore is waiting for acknowledgement".into(),
        ));
    };
    let pending: Pending = serde_json::from_str(&text)
        .map_err(|e| Error::Internal(format!("meta restore_pending: {e}")))?;
    let why = "issued before a restore from backup";
    let mut revoked = Vec::new();
    for g in tx
        .lock_live_grants_issued_before(pending.detected_at)
        .await?
    {
        if tx
            .end_grant(
                &g.id,
                brevet_proto::api::GrantState::Revoked,
                now,
                why,
                caller.name(),
            )
            .await?
        {
            let data = json!({
                "reason": why, "device": g.device, "user": g.user,
                "request_id": g.request_id, "ticket": g.doc.ticket,
            });
            tx.audit("grant.revoked", caller.name(), &g.id, data, now)
                .await?;
            revoked.push((g.id, g.device));
        }
    }
    let mut cancelled = Vec::new();
    for r in tx
        .lock_pending_requests_created_before(pending.detected_at)
        .await?
    {
        use brevet_proto::api::RequestState::{Cancelled, Pending as Waiting};
        if tx
            .set_request_state(&r.id, Waiting, Cancelled, now, None)
            .await?
        {
            let data = json!({
                "reason": "created before a restore from backup",
                "user": r.user, "device": r.device, "ticket": r.ticket,
            });
            tx.audit("request.cancelled", caller.name(), &r.id, data, now)
                .await?;
            cancelled.push(r.id);
        }
    }
    let generation = tx.bump_restore_generation().await?;
    tx.delete_meta(PENDING_KEY).await?;
    let revoked_ids: Vec<&str> = revoked.iter().map(|(id, _)| id.as_str()).collect();
    tx.audit(
        "restore.acknowledged",
        caller.name(),
        "restore",
        json!({
            "reason": pending.reason, "detected_at": rfc3339(pending.detected_at),
            "generation": generation, "grants_revoked": revoked_ids,
            "requests_cancelled": cancelled,
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    app.restore.set(None);
    let latest = app.store.latest_checkpoint().await?;
    let (size, root) = latest
        .map(|c| (c.checkpoint.size, c.checkpoint.root))
        .unwrap_or((0, String::new()));
    app.marker.record(generation, size, &root)?;
    tracing::warn!(generation, revoked = revoked.len(), "restore acknowledged");
    app.wake_all_devices();
    Ok(view(None, generation))
}

fn view(pending: Option<Pending>, generation: u64) -> RestoreView {
    RestoreView {
        pending: pending.is_some(),
        generation,
        detected_at: pending.as_ref().map(|p| rfc3339(p.detected_at)),
        reason: pending.map(|p| p.reason),
    }
}

/// Loads the state at start into `state`.
pub fn remember(state: &RestoreState, pending: Option<Pending>) {
    state.set(pending);
}
