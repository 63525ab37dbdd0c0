//! The delivery task: one worker per webhook tails the audit log after that webhook's cursor and
//! POSTs the notable events ([`super::event::notable`]) in `seq` order.
//!
//! - **At least once, in order, across restarts.** The cursor lives in the database and moves
//!   only past events that were answered with a 2xx (or that are not notable); a failed POST is
//!   retried with exponential backoff up to [`MAX_BACKOFF`], and nothing after it is sent first.
//!   A crash between a 2xx and the cursor update sends that event again; receivers drop repeats
//!   by `seq`.
//! - **One deliverer per webhook.** Replicas sharing PostgreSQL take a lease on each webhook's
//!   row; the holder delivers, the others wait. A replica is named by host name and listen
//!   address, so a restarted one takes its own leases back at once.
//! - **Isolation.** Each webhook has its own worker, so a slow or dead endpoint delays only its
//!   own deliveries. A supervisor starts workers for new webhooks and stops those of removed
//!   ones, and ends them all when it is aborted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use brevet_audit::Event;
use brevet_proto::validate::{WebhookUrl, webhook_target, webhook_url};
use tokio::task::{AbortHandle, JoinSet};

use super::event::{body, notable, signature};
use super::post::{Delivery, PostError, post};
use super::secret_label;
use crate::app::App;
use crate::audit_tail::Tail;

/// Audit events read at once.
const BATCH: i64 = 200;
/// How often the log is read when there is nothing new.
const POLL: Duration = Duration::from_millis(250);
/// How often the list of webhooks is read.
const RESCAN: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a delivery lease lasts without renewal.
const LEASE_MS: i64 = 15_000;

/// Runs the workers until aborted. `addr` (with the host name) names this replica in the
/// leases, stable across restarts so a restarted server resumes at once.
pub async fn run(app: Arc<App>, addr: SocketAddr) {
    let allow_private = app.config.notify.allow_private_targets;
    // Loads the platform's CA roots from disk: off the async threads.
    let client = match tokio::task::spawn_blocking(move || super::post::client(allow_private)).await
    {
        Ok(Ok(client)) => Some(client),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "https:// webhooks cannot be delivered");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "webhooks: the client set-up failed");
            None
        }
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let owner = format!("{}/{addr}", host.trim());
    // Dropping the set (when this task is aborted) aborts every worker.
    let mut set = JoinSet::new();
    let mut workers: HashMap<String, AbortHandle> = HashMap::new();
    loop {
        while set.try_join_next().is_some() {}
        match app.store.webhooks().await {
            Ok(list) => {
                workers.retain(|id, handle| {
                    let keep = !handle.is_finished() && list.iter().any(|w| &w.id == id);
                    if !keep {
                        handle.abort();
                    }
                    keep
                });
                for w in list {
                    if workers.contains_key(&w.id) {
                        continue;
                    }
                    let worker = Worker {
                        app: app.clone(),
                        id: w.id.clone(),
                        url: w.url,
                        owner: owner.clone(),
                        client: client.clone(),
                    };
                    workers.insert(w.id, set.spawn(worker.run()));
                }
            }
            Err(e) => tracing::error!(error = %e, "webhooks: cannot read the webhook list"),
        }
        tokio::time::sleep(RESCAN).await;
    }
}

struct Worker {
    app: Arc<App>,
    id: String,
    url: String,
    owner: String,
    client: Option<reqwest::Client>,
}

struct State {
    url: WebhookUrl,
    secret: Option<String>,
    cursor: u64,
    holder: bool,
    lease_until: i64,
    backoff: Duration,
    tail: Tail,
}

enum Step {
    Busy,
    Idle,
    Standby,
}

enum Failure {
    Endpoint(String),
    Store(brevet_store::Error),
}

impl From<brevet_store::Error> for Failure {
    fn from(e: brevet_store::Error) -> Self {
        Failure::Store(e)
    }
}

impl Worker {
    async fn run(self) {
        let Some(mut st) = self.prepare().await else {
            // Logged; nothing can be delivered until an administrator replaces the webhook.
            return std::future::pending().await;
        };
        loop {
            match self.step(&mut st).await {
                Ok(Step::Busy) => {}
                Ok(Step::Idle) => tokio::time::sleep(POLL).await,
                Ok(Step::Standby) => {
                    tokio::time::sleep(Duration::from_millis(LEASE_MS as u64 / 3)).await
                }
                Err(Failure::Endpoint(why)) => {
                    tracing::warn!(webhook = %self.id, host = %st.url.authority(), error = %why,
                        after = st.cursor, retry_in = ?st.backoff, "webhook delivery failed");
                    tokio::time::sleep(st.backoff).await;
                    st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
                }
                Err(Failure::Store(e)) => {
                    tracing::error!(webhook = %self.id, error = %e, "webhook delivery: database error; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The parsed URL and the opened secret; `None` (logged) when either is unusable.
    async fn prepare(&self) -> Option<State> {
        let allow_private = self.app.config.notify.allow_private_targets;
        let url = match webhook_url(&self.url).and_then(|u| {
            webhook_target(&u, allow_private)?;
            Ok(u)
        }) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(webhook = %self.id, error = %e, "stored webhook url is invalid; not delivering");
                return None;
            }
        };
        let sealed = loop {
            match self.app.store.webhook_secret(&self.id).await {
                Ok(Some(s)) => break s,
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(webhook = %self.id, error = %e, "webhook delivery: database error; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let secret = match sealed {
            None => None,
            Some(sealed) => match self.app.totp_key.open(&secret_label(&self.id), &sealed) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(webhook = %self.id, error = %e, "cannot open the webhook secret; not delivering (remove and add the webhook again)");
                    return None;
                }
            },
        };
        Some(State {
            url,
            secret,
            cursor: 0,
            holder: false,
            lease_until: 0,
            backoff: FIRST_BACKOFF,
            tail: Tail::default(),
        })
    }

    /// One round: hold the lease, read the next events, deliver the notable ones in order, and
    /// move the cursor past what is done.
    async fn step(&self, st: &mut State) -> Result<Step, Failure> {
        if !self.hold_lease(st).await? {
            return Ok(Step::Standby);
        }
        let events = self.next_batch(st).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(Step::Idle);
        };
        for e in &events {
            if !notable(e) {
                continue;
            }
            if let Err(why) = self.deliver(st, e).await {
                // Keep the progress over the events before this one.
                let before = e.seq - 1;
                if before > st.cursor && !self.advance(st, before).await? {
                    return Ok(Step::Standby);
                }
                return Err(Failure::Endpoint(why));
            }
            st.backoff = FIRST_BACKOFF;
            tracing::debug!(webhook = %self.id, seq = e.seq, kind = %e.kind, "webhook delivered");
        }
        if !self.advance(st, last).await? {
            return Ok(Step::Standby);
        }
        Ok(Step::Busy)
    }

    async fn deliver(&self, st: &State, e: &Event) -> Result<(), String> {
        let body = body(e);
        let mut headers = vec![
            ("X-Brevet-Event", e.kind.clone()),
            ("X-Brevet-Seq", e.seq.to_string()),
        ];
        if let Some(secret) = &st.secret {
            headers.push(("X-Brevet-Signature", signature(secret, &body)));
        }
        let delivery = Delivery {
            url: &st.url,
            body,
            headers,
        };
        let allow_private = self.app.config.notify.allow_private_targets;
        let result = match post(self.client.as_ref(), delivery, allow_private).await {
            Ok(200..=299) => Ok(()),
            Ok(status) => Err(PostError::Failed(format!("answered HTTP {status}"))),
            Err(why) => Err(why),
        };
        let m = &self.app.metrics;
        let counter = match result {
            Ok(()) => &m.webhooks_delivered,
            Err(PostError::Blocked(_)) => &m.webhooks_blocked,
            Err(PostError::Failed(_)) => &m.webhooks_failed,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        result.map_err(|e| e.to_string())
    }

    /// Takes or renews the lease when due. False while another replica holds it (or the webhook
    /// was removed: the supervisor then stops this worker).
    async fn hold_lease(&self, st: &mut State) -> Result<bool, Failure> {
        let now = self.app.clock.now_ms();
        if st.holder && now < st.lease_until - LEASE_MS / 2 {
            return Ok(true);
        }
        let until = now + LEASE_MS;
        let store = &self.app.store;
        match store
            .webhook_claim(&self.id, &self.owner, now, until)
            .await?
        {
            Some(seq) => {
                if !st.holder {
                    tracing::info!(webhook = %self.id, host = %st.url.authority(), after = seq, "delivering to webhook");
                    st.cursor = seq;
                }
                st.holder = true;
                st.lease_until = until;
                Ok(true)
            }
            None => {
                st.holder = false;
                Ok(false)
            }
        }
    }

    async fn advance(&self, st: &mut State, to: u64) -> Result<bool, Failure> {
        let until = self.app.clock.now_ms() + LEASE_MS;
        let store = &self.app.store;
        if !store
            .webhook_advance(&self.id, &self.owner, to, until)
            .await?
        {
            st.holder = false;
            return Ok(false);
        }
        st.cursor = to;
        st.lease_until = until;
        Ok(true)
    }

    /// The next consecutive events after the cursor (see `audit_tail`).
    async fn next_batch(&self, st: &mut State) -> Result<Vec<Event>, Failure> {
        let who = format!("webhook {}", self.id);
        let batch = st
            .tail
            .next(&self.app.store, st.cursor, BATCH, &who)
            .await?;
        Ok(batch.into_iter().map(|s| s.event).collect())
    }
}
