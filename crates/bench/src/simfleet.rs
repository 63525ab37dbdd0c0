//! A fleet of simulated devices in this process: enrolled the way `brevet-agent enroll` does it,
//! then each long-polling and acknowledging over mutual TLS the way `brevet-agent run` does,
//! judging every answer with the agent's own code ([`crate::simagent`]).
//!
//! Enrollment (blocking, a few threads): as admin, the device `dev-<i>` is added and a one-time
//! token issued; then the agent's own code makes the device key
//! (`brevet_agent::enroll::new_key`) and spends the token (`brevet_agent::net::Server::enroll`),
//! and the answer is checked as the agent checks it (device name, grant key). The certificate,
//! key and pinned grant key stay in memory.
//!
//! Running (one Tokio runtime with two worker threads): per device, a poll task holds one
//! connection with a long-poll always in flight (`wait=25`, the cursor of the last answer, as the
//! agent's poller), and an ack task sends acknowledgements in order on a second connection, one
//! batch at a time, retrying until the server takes them (as the agent's outbox). Like the
//! agent's HTTP client pool (ureq), the ack connection is kept for [`ACK_KEEP`] after use and
//! opened anew after that. Devices `100·b … 100·b+99` connect from `127.1.b/256.b%256+1`, so no
//! source address holds more than 200 connections (the edge counts connections per address
//! until they present a device certificate). Initial connections are opened
//! [`CONNECTING`] at a time; later ones (reconnects, acks) at once.
//!
//! What happens is recorded in [`Observed`] with the instant it happened: each device's first
//! answer, each grant verified (delivered), each removal acknowledged (the server answered the
//! ack with 2xx), and every failure (a refused grant, an answer that is not 2xx, a transport
//! error). Dropping the [`SimFleet`] stops the runtime and closes every connection.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brevet_agent::journal::Journal;
use brevet_cli::client::Client;
use brevet_proto::agent::{Ack, AckAction, DeviceGrants, EnrollRequest};
use brevet_proto::api::{AddDevice, ErrorBody};
use tokio::sync::{Semaphore, mpsc};

use crate::simagent::SimAgent;
use crate::simconn::{self, Conn, Target};

/// Devices enrolled at the same time.
const ENROLL_THREADS: usize = 6;
/// Initial connections opened at the same time.
const CONNECTING: usize = 64;
/// Devices per loopback source address.
const PER_SOURCE: usize = 100;
/// How long an idle acknowledgement connection is kept (ureq's default `max_idle_age`).
const ACK_KEEP: Duration = Duration::from_secs(15);
/// The long-poll wait the agent asks for (`brevet_agent::net::POLL_WAIT_SECS`).
const POLL_WAIT: u32 = brevet_agent::net::POLL_WAIT_SECS;
/// Most acknowledgements in one upload (the server's limit).
const ACK_BATCH: usize = 500;

/// One device's credentials, as `brevet-agent enroll` stores them.
pub(crate) struct Enrolled {
    pub(crate) device: String,
    cert_pem: String,
    key_pkcs8: Vec<u8>,
    grant_key: Vec<u8>,
}

/// Adds and enrolls `count` devices (`dev-0` …) through the server at `url`.
pub(crate) fn enroll(
    admin: &Client,
    url: &str,
    ca_pem: &str,
    count: usize,
) -> Result<Vec<Enrolled>, String> {
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(count));
    let first_error = Mutex::new(None::<String>);
    std::thread::scope(|s| {
        for _ in 0..ENROLL_THREADS.min(count) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || lock(&first_error).is_some() {
                        return;
                    }
                    match enroll_one(admin, url, ca_pem, i) {
                        Ok(e) => lock(&done).push((i, e)),
                        Err(e) => {
                            lock(&first_error).get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, e)| e).collect())
}

fn enroll_one(admin: &Client, url: &str, ca_pem: &str, i: usize) -> Result<Enrolled, String> {
    let device = crate::fleet::device_name(i);
    admin
        .add_device(&AddDevice {
            name: device.clone(),
            tags: Default::default(),
            groups: vec![],
            os: Some("linux".into()),
        })
        .map_err(|e| format!("cannot add the device `{device}`: {e}"))?;
    let token = admin
        .enroll_token(&device)
        .map_err(|e| format!("cannot issue an enrollment token for `{device}`: {e}"))?
        .token;
    let (key_pkcs8, public_key) =
        brevet_agent::enroll::new_key().map_err(|e| format!("device key: {e}"))?;
    let resp = brevet_agent::net::Server::anonymous(url, ca_pem)
        .and_then(|s| s.enroll(&EnrollRequest { token, public_key }))
        .map_err(|e| format!("enrolling `{device}` failed: {e}"))?;
    brevet_proto::validate::device_name(&resp.device)
        .map_err(|e| format!("enrolling `{device}`: {e}"))?;
    if resp.device != device {
        return Err(format!(
            "enrolled `{device}` but the server named it `{}`",
            resp.device
        ));
    }
    let grant_key = brevet_proto::grant::public_key_from_b64(&resp.grant_public_key)
        .map_err(|e| format!("enrolling `{device}`: {e}"))?;
    Ok(Enrolled {
        device,
        cert_pem: resp.cert_pem,
        key_pkcs8,
        grant_key,
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the devices saw, with when.
#[derive(Default)]
pub(crate) struct Seen {
    /// Devices that had their first answer.
    pub(crate) answered: usize,
    /// Grant id → when its device verified it.
    pub(crate) delivered: HashMap<String, Instant>,
    /// Grant id → when the server took its `applied` ack.
    pub(crate) applied_acked: HashMap<String, Instant>,
    /// Grant id → when the server took its `removed` ack.
    pub(crate) removal_acked: HashMap<String, Instant>,
    pub(crate) failures: usize,
    pub(crate) first_error: Option<String>,
    /// Connections opened after the first (poll reconnects and ack connections).
    pub(crate) connections: usize,
}

/// [`Seen`] behind a lock, with a condition to wait on.
#[derive(Default)]
pub(crate) struct Observed {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl Observed {
    fn update(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut lock(&self.seen));
        self.changed.notify_all();
    }

    fn failure(&self, e: String) {
        self.update(|s| {
            s.failures += 1;
            s.first_error.get_or_insert(e);
        });
    }

    /// Reads the record.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&lock(&self.seen))
    }

    /// Waits until `f` gives something, or `timeout` passes (then `None`).
    pub(crate) fn wait<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&Seen) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut seen = lock(&self.seen);
        loop {
            if let Some(t) = f(&seen) {
                return Some(t);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            seen = self
                .changed
                .wait_timeout(seen, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The running devices; see the module documentation.
pub(crate) struct SimFleet {
    runtime: Option<tokio::runtime::Runtime>,
    pub(crate) observed: Arc<Observed>,
    pub(crate) devices: Vec<String>,
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

struct Shared {
    observed: Arc<Observed>,
    connecting: Semaphore,
    /// An empty journal for the agent's verifier (its replay list is kept per device).
    empty: Journal,
    _journal_dir: tempfile::TempDir,
}

/// The source address of device `i`.
fn source(i: usize) -> Ipv4Addr {
    let b = i / PER_SOURCE;
    Ipv4Addr::new(127, 1, (b / 256) as u8, (b % 256) as u8 + 1)
}

impl SimFleet {
    /// Starts every device; device `i` uses `targets[i % targets.len()]`.
    pub(crate) fn start(
        enrolled: Vec<Enrolled>,
        targets: &[Target],
        ca_pem: &str,
    ) -> Result<SimFleet, String> {
        if targets.is_empty() {
            return Err("no server to connect to".into());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a Tokio runtime: {e}"))?;
        let journal_dir = tempfile::Builder::new()
            .prefix("brevet-bench-sim-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let empty = Journal::load(journal_dir.path()).map_err(|e| e.to_string())?;
        let observed = Arc::new(Observed::default());
        let shared = Arc::new(Shared {
            observed: observed.clone(),
            connecting: Semaphore::new(CONNECTING),
            empty,
            _journal_dir: journal_dir,
        });
        let roots = simconn::roots(ca_pem)?;
        let mut devices = Vec::with_capacity(enrolled.len());
        for (i, e) in enrolled.into_iter().enumerate() {
            let tls = simconn::client_config(&roots, &e.cert_pem, &e.key_pkcs8)?;
            let agent = SimAgent::new(&e.device, e.grant_key);
            devices.push(e.device);
            let target = targets[i % targets.len()].clone();
            let (acks, outbox) = mpsc::unbounded_channel();
            let from = source(i);
            runtime.spawn(send_acks(
                shared.clone(),
                from,
                target.clone(),
                tls.clone(),
                outbox,
            ));
            runtime.spawn(poll(shared.clone(), from, target, tls, agent, acks));
        }
        Ok(SimFleet {
            runtime: Some(runtime),
            observed,
            devices,
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A refusal the server states (`device_disabled` …) or the status alone.
fn refusal(what: &str, status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => format!("{what}: HTTP {status} {}: {}", e.code, e.message),
        Err(_) => format!("{what}: HTTP {status}"),
    }
}

/// The device's poller: long-polls, judges each answer, hands acks to [`send_acks`].
async fn poll(
    shared: Arc<Shared>,
    from: Ipv4Addr,
    target: Target,
    tls: Arc<rustls::ClientConfig>,
    mut agent: SimAgent,
    acks: mpsc::UnboundedSender<Vec<Ack>>,
) {
    let observed = &shared.observed;
    let mut conn: Option<Conn> = None;
    let mut cursor = String::new();
    let mut first = true;
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut c = match conn.take() {
            Some(c) if !c.is_closed() => c,
            _ => {
                let opened = if first {
                    let _permit = shared.connecting.acquire().await;
                    Conn::open(from, &target, tls.clone()).await
                } else {
                    observed.update(|s| s.connections += 1);
                    Conn::open(from, &target, tls.clone()).await
                };
                match opened {
                    Ok(c) => c,
                    Err(e) => {
                        observed.failure(format!("`{}`: {e}", agent.device()));
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(15));
                        continue;
                    }
                }
            }
        };
        let path = format!(
            "/v1/device/grants?cursor={}&wait={POLL_WAIT}",
            cursor.replace(':', "%3A")
        );
        let (status, body) = match c.get(&path).await {
            Ok(r) => r,
            Err(e) => {
                observed.failure(format!("`{}`: {e}", agent.device()));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(15));
                continue;
            }
        };
        conn = Some(c);
        if !(200..300).contains(&status) {
            observed.failure(refusal(
                &format!("`{}` poll", agent.device()),
                status,
                &body,
            ));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(15));
            continue;
        }
        let answer: DeviceGrants = match serde_json::from_slice(&body) {
            Ok(a) => a,
            Err(e) => {
                observed.failure(format!("`{}`: unexpected answer: {e}", agent.device()));
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        cursor = answer.cursor.clone();
        let outcome = agent.sync(&answer, unix_now(), &shared.empty);
        let at = Instant::now();
        observed.update(|s| {
            if first {
                s.answered += 1;
            }
            for id in &outcome.applied {
                s.delivered.insert(id.clone(), at);
            }
            for (id, why) in &outcome.refused {
                s.failures += 1;
                s.first_error.get_or_insert_with(|| {
                    format!("`{}` refused grant `{id}`: {why}", agent.device())
                });
            }
        });
        first = false;
        if !outcome.acks.is_empty() && acks.send(outcome.acks).is_err() {
            return;
        }
    }
}

/// The device's outbox: acknowledgements in order, one upload at a time, retried until taken.
async fn send_acks(
    shared: Arc<Shared>,
    from: Ipv4Addr,
    target: Target,
    tls: Arc<rustls::ClientConfig>,
    mut outbox: mpsc::UnboundedReceiver<Vec<Ack>>,
) {
    let observed = &shared.observed;
    let mut kept: Option<(Conn, Instant)> = None;
    let mut pending: Vec<Ack> = Vec::new();
    while let Some(batch) = outbox.recv().await {
        pending.extend(batch);
        while let Ok(more) = outbox.try_recv() {
            pending.extend(more);
        }
        while !pending.is_empty() {
            let n = pending.len().min(ACK_BATCH);
            let body = match serde_json::to_vec(&pending[..n]) {
                Ok(b) => b,
                Err(e) => {
                    observed.failure(format!("acks do not serialise: {e}"));
                    return;
                }
            };
            let mut backoff = Duration::from_millis(250);
            loop {
                let mut c = match kept.take() {
                    Some((c, used)) if !c.is_closed() && used.elapsed() < ACK_KEEP => c,
                    _ => {
                        observed.update(|s| s.connections += 1);
                        match Conn::open(from, &target, tls.clone()).await {
                            Ok(c) => c,
                            Err(e) => {
                                observed.failure(format!("ack connection: {e}"));
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_secs(15));
                                continue;
                            }
                        }
                    }
                };
                match c.post("/v1/device/acks", body.clone()).await {
                    Ok((status, _)) if (200..300).contains(&status) => {
                        let at = Instant::now();
                        kept = Some((c, at));
                        observed.update(|s| {
                            for a in &pending[..n] {
                                let map = match a.action {
                                    AckAction::Applied => &mut s.applied_acked,
                                    AckAction::Removed => &mut s.removal_acked,
                                    AckAction::Rejected => continue,
                                };
                                map.insert(a.grant_id.clone(), at);
                            }
                        });
                        break;
                    }
                    Ok((status, body))
                        if (400..500).contains(&status) && status != 401 && status != 403 =>
                    {
                        observed.failure(refusal("acks refused", status, &body));
                        kept = Some((c, Instant::now()));
                        break;
                    }
                    Ok((status, body)) => {
                        observed.failure(refusal("acks", status, &body));
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(15));
                    }
                    Err(e) => {
                        observed.failure(format!("acks: {e}"));
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(15));
                    }
                }
            }
            pending.drain(..n);
        }
    }
}
