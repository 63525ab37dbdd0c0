//! The running server's shared state.
//!
//! Grant changes are announced per device: [`App::grant_changed`] bumps that device's change
//! counter and broadcasts its name, which wakes the device's long-poll (see `delivery`). The
//! counters live in memory and start again at zero with every process; the random [`App::epoch`]
//! in each cursor tells a device that it is talking to another process and must take a fresh
//! copy.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use brevet_identity::ca::Ca;
use brevet_policy::Engine;
use brevet_store::Store;
use ring::signature::Ed25519KeyPair;
use tokio::sync::{Notify, watch};

use crate::Error;
use crate::clock::Clock;
use crate::config::{Config, Durations};
use crate::datadir::DataDir;
use crate::metrics::Metrics;

pub struct App {
    pub store: Store,
    pub config: Config,
    pub durations: Durations,
    pub policy: Engine,
    pub grant_key: Ed25519KeyPair,
    pub grant_public_key: String,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    /// Wakes the sweeper when a grant or request with a new deadline is stored.
    pub sweeper_wake: Notify,
    /// The CA that signs device certificates.
    pub ca: Ca,
    /// Random per process: the first part of every long-poll cursor.
    pub epoch: String,
    /// How many times each device's grants changed in this process, one watch per device: a
    /// change wakes only that device's waiting long-polls.
    device_changes: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// The key that signs audit checkpoints.
    pub audit_key: crate::audit_key::AuditKey,
    /// Seals and opens the TOTP secrets in the database (`totp.key`).
    pub totp_key: brevet_identity::seal::SealKey,
    /// Where checkpoint signing has got to (the Merkle frontier).
    pub checkpoints: crate::audit_checkpoints::Checkpointer,
    /// The restore marker in the data directory, and whether a restore waits for
    /// acknowledgement (`restore.rs`).
    pub marker: crate::restore::Marker,
    pub restore: crate::restore::RestoreState,
}

pub type AppRef = Arc<App>;

impl App {
    /// Loads config, policy and keys from `dir` and opens the database (`db` overrides the
    /// configured one).
    pub async fn open(
        dir: &DataDir,
        db: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Result<App, Error> {
        let config_path = dir.config();
        let config_text = std::fs::read_to_string(&config_path)
            .map_err(|e| Error::Config(format!("cannot read `{}`: {e}", config_path.display())))?;
        let config = Config::parse(&config_text)
            .map_err(|e| Error::Config(format!("`{}`: {e}", config_path.display())))?;
        let durations = config.durations().map_err(Error::Config)?;
        let (policy, policy_text) = load_policy(&dir.policy())?;
        for (action, what) in [
            ("manage_people", "administers people"),
            ("read_own", "sees their own requests and grants"),
        ] {
            if !policy.power().ever_permitted(action) {
                tracing::warn!(
                    "the policy permits `{action}` to nobody, so nobody {what}: a policy written \
                     before authorization moved into Cedar needs the reading and administration \
                     permits of the default policy (docs/authorization.md)"
                );
            }
        }
        let grant_key = dir.load_grant_key()?;
        let audit_key = crate::audit_key::load_or_create(dir)?;
        let ca = Ca::from_pem(&dir.read(&dir.ca_cert())?, &dir.read(&dir.ca_key())?)
            .map_err(|e| Error::Config(format!("the CA in `{}`: {e}", dir.root.display())))?;
        let url = match db {
            Some(url) => url.to_owned(),
            None => dir.database_url(&config.server.db),
        };
        let store = Store::open(&url).await?;
        let loaded = crate::config_audit::Loaded {
            config: &config,
            config_text: &config_text,
            policy_ids: policy.ids(),
            policy_text: &policy_text,
        };
        crate::config_audit::record(&store, &loaded, clock.now()).await?;
        let totp_key = crate::totp_key::open(dir, &store).await?;
        let marker = crate::restore::Marker::new(dir);
        let pending = crate::restore::check_at_start(&store, &marker, clock.now()).await?;
        let restore = crate::restore::RestoreState::default();
        crate::restore::remember(&restore, pending);
        Ok(App {
            grant_public_key: brevet_proto::grant::public_key_b64(&grant_key),
            store,
            config,
            durations,
            policy,
            grant_key,
            clock,
            metrics: Metrics::default(),
            sweeper_wake: Notify::new(),
            ca,
            epoch: brevet_identity::token::new_token("")
                .chars()
                .take(12)
                .collect(),
            device_changes: Mutex::new(HashMap::new()),
            audit_key,
            totp_key,
            checkpoints: crate::audit_checkpoints::Checkpointer::default(),
            marker,
            restore,
        })
    }

    /// Tells the device's waiting long-polls and the sweeper that a grant of `device` changed.
    /// Call it after the change is committed.
    pub fn grant_changed(&self, device: &str) {
        self.local_grant_changed(device);
        // Other replicas on the same PostgreSQL may hold this device's long-poll.
        if self.store.engine() == brevet_store::Engine::Postgres
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (store, epoch, device) =
                (self.store.clone(), self.epoch.clone(), device.to_owned());
            runtime.spawn(async move {
                if let Err(e) = store.notify_grants_changed(&epoch, &device).await {
                    tracing::warn!(%device, error = %e, "cannot tell other replicas of a grant change; their agents catch up at their next poll");
                }
            });
        }
    }

    /// [`App::grant_changed`] within this process only (what another replica's notice does).
    pub fn local_grant_changed(&self, device: &str) {
        self.device_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(device.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .send_modify(|n| *n = n.wrapping_add(1));
        self.sweeper_wake.notify_one();
    }

    /// Wakes every waiting long-poll (after notices from other replicas may have been lost).
    pub fn wake_all_devices(&self) {
        for changes in self
            .device_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.sweeper_wake.notify_one();
    }

    /// How many times `device`'s grants changed in this process, and a receiver that wakes at
    /// the next change.
    pub fn device_changes(&self, device: &str) -> watch::Receiver<u64> {
        self.device_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(device.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// How many times `device`'s grants changed in this process.
    pub fn device_change_count(&self, device: &str) -> u64 {
        self.device_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(device)
            .map_or(0, |s| *s.borrow())
    }
}

fn load_policy(path: &Path) -> Result<(Engine, String), Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let engine =
        Engine::new(&text).map_err(|e| Error::Config(format!("`{}`: {e}", path.display())))?;
    Ok((engine, text))
}
