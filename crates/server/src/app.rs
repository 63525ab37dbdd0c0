//! The running server's shared state.

use std::path::Path;
use std::sync::Arc;

use brevet_policy::Engine;
use brevet_store::Store;
use ring::signature::Ed25519KeyPair;
use tokio::sync::Notify;

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
    /// Wakes long-polling clients when any grant changes.
    pub changes: tokio::sync::watch::Sender<u64>,
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
        let config = Config::load(&dir.config())?;
        let durations = config.durations().map_err(Error::Config)?;
        let policy = load_policy(&dir.policy())?;
        let grant_key = dir.load_grant_key()?;
        let url = match db {
            Some(url) => url.to_owned(),
            None => dir.database_url(&config.server.db),
        };
        let store = Store::open(&url).await?;
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
            changes: tokio::sync::watch::channel(0).0,
        })
    }

    /// Tells waiting agents and the sweeper that grants changed.
    pub fn grants_changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        self.sweeper_wake.notify_one();
    }
}

fn load_policy(path: &Path) -> Result<Engine, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    Engine::new(&text).map_err(|e| Error::Config(format!("`{}`: {e}", path.display())))
}
