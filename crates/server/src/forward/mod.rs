//! Forwarding the audit trail to a syslog collector: RFC 5424 messages over TLS (RFC 5425).
//!
//! One task tails the audit log in sequence order and writes each event as one message
//! ([`message`]) to the collector ([`conn`]). What it guarantees (`docs/siem.md`):
//!
//! - **In order, nothing skipped.** Events go out by ascending `seq`; the next batch starts after
//!   the last one written. A batch stops at a gap in the sequence (an event still being
//!   committed) and waits for it.
//! - **Across restarts, exactly once by `seq`.** The last forwarded `seq` is kept in the
//!   database (`syslog_cursor`) and advanced only after a batch was written and flushed; a new
//!   process resumes after it. A crash between the flush and that update sends the batch again
//!   (at most [`BATCH`] messages), so on the wire delivery is at-least-once; every message
//!   carries its `seq`, by which the collector drops the repeats.
//! - **Collector outages.** The task reconnects with exponential backoff (up to
//!   [`MAX_BACKOFF`]). When a connection breaks (reset, cut, timeout) rather than being closed
//!   cleanly, the events written on it in the last [`REPLAY_WINDOW`] are sent again, since
//!   syslog over TLS has no acknowledgements and a broken peer may have dropped them.
//! - **One forwarder per database.** Replicas sharing PostgreSQL compete for a lease in the
//!   cursor row; the holder forwards and renews it, the others wait.

mod conn;
mod message;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brevet_proto::api::AuditEventView;
use tokio::task::JoinHandle;

use crate::Error;
use crate::app::App;
use crate::audit_tail::Tail;
use crate::config::SyslogSettings;
use crate::datadir::DataDir;
use conn::{Conn, Ended, Target};
use message::Header;

/// Most events written (and then recorded) at once.
pub(crate) const BATCH: usize = 100;
/// How often the log is read when there is nothing new.
const POLL: Duration = Duration::from_millis(200);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Events written this recently on a connection that then broke are written again.
pub(crate) const REPLAY_WINDOW: Duration = Duration::from_secs(30);
/// How long the forwarding lease lasts without renewal.
const LEASE_MS: i64 = 15_000;

/// `brevet_syslog_*` metrics.
#[derive(Default)]
pub struct SyslogMetrics {
    forwarded: AtomicU64,
    lag: AtomicI64,
}

impl SyslogMetrics {
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP brevet_syslog_forwarded_total Audit events forwarded to the syslog collector.\n\
             # TYPE brevet_syslog_forwarded_total counter\nbrevet_syslog_forwarded_total {}\n\
             # HELP brevet_syslog_lag_events Audit events not yet forwarded to the syslog collector.\n\
             # TYPE brevet_syslog_lag_events gauge\nbrevet_syslog_lag_events {}",
            self.forwarded.load(Ordering::Relaxed),
            self.lag.load(Ordering::Relaxed),
        );
    }
}

/// Starts the forwarder when `[syslog]` is configured; otherwise a task that ends at once.
/// Fails when the collector's CA cannot be read, so a misconfigured server does not start.
pub fn spawn(app: &Arc<App>, dir: &DataDir, addr: SocketAddr) -> Result<JoinHandle<()>, Error> {
    let Some(settings) = app.config.syslog.clone() else {
        return Ok(tokio::spawn(async {}));
    };
    let forwarder = Forwarder::new(app.clone(), dir, &settings, addr)?;
    tracing::info!(collector = %settings.address, format = ?settings.format, "forwarding the audit trail to syslog");
    Ok(tokio::spawn(forwarder.run()))
}

struct Forwarder {
    app: Arc<App>,
    target: Target,
    header: Header,
    /// This replica's name in the lease: stable across restarts on the same address.
    owner: String,
    collector: String,
}

/// Where the forwarder is.
struct State {
    /// Events up to here were written on the current connection (or are being resent).
    position: u64,
    /// Events up to here are recorded as forwarded in the database.
    cursor: u64,
    holder: bool,
    lease_until: i64,
    conn: Option<Conn>,
    /// First `seq` of each batch written on `conn`, with when, for replay after a break.
    recent: VecDeque<(u64, Instant)>,
    backoff: Duration,
    /// Waiting at a gap in the sequence.
    tail: Tail,
}

enum Step {
    /// More may be waiting: go again at once.
    Busy,
    Idle,
    /// Another replica forwards.
    Standby,
}

enum Failure {
    Collector(String),
    Store(brevet_store::Error),
}

impl From<brevet_store::Error> for Failure {
    fn from(e: brevet_store::Error) -> Self {
        Failure::Store(e)
    }
}

impl Forwarder {
    fn new(
        app: Arc<App>,
        dir: &DataDir,
        s: &SyslogSettings,
        addr: SocketAddr,
    ) -> Result<Forwarder, Error> {
        let (host, port) = s.host_port().map_err(Error::Config)?;
        let name = s.tls_name().map_err(Error::Config)?;
        let ca_path = dir.root.join(&s.ca_file);
        let ca = dir.read(&ca_path)?;
        let tls = brevet_identity::tls::client_config(&ca, None)
            .map_err(|e| Error::Config(format!("syslog.ca_file `{}`: {e}", ca_path.display())))?;
        let hostname = s.hostname.clone().unwrap_or_else(system_hostname);
        Ok(Forwarder {
            header: Header {
                facility: s.facility_code().map_err(Error::Config)?,
                hostname: hostname.clone(),
                app_name: s.app_name.clone(),
                format: s.format,
            },
            target: Target {
                host,
                port,
                name,
                tls,
            },
            owner: format!("{hostname}/{addr}"),
            collector: s.address.clone(),
            app,
        })
    }

    async fn run(self) {
        let mut st = State {
            position: 0,
            cursor: 0,
            holder: false,
            lease_until: 0,
            conn: None,
            recent: VecDeque::new(),
            backoff: FIRST_BACKOFF,
            tail: Tail::default(),
        };
        loop {
            match self.step(&mut st).await {
                Ok(Step::Busy) => {}
                Ok(Step::Idle) => self.idle(&mut st).await,
                Ok(Step::Standby) => {
                    tokio::time::sleep(Duration::from_millis(LEASE_MS as u64 / 3)).await
                }
                Err(Failure::Collector(e)) => {
                    tracing::warn!(collector = %self.collector, error = %e, retry_in = ?st.backoff, "syslog collector unreachable");
                    self.update_lag(&st).await;
                    tokio::time::sleep(st.backoff).await;
                    st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
                }
                Err(Failure::Store(e)) => {
                    tracing::error!(error = %e, "syslog forwarding: database error; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One round: hold the lease, record what was written, write the next batch.
    async fn step(&self, st: &mut State) -> Result<Step, Failure> {
        if !self.hold_lease(st).await? {
            return Ok(Step::Standby);
        }
        if st.position > st.cursor && !self.advance(st, st.position).await? {
            return Ok(Step::Standby);
        }
        let events = self.next_batch(st).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            self.app.metrics.syslog.lag.store(0, Ordering::Relaxed);
            return Ok(Step::Idle);
        };
        if st.conn.is_none() {
            let conn = self
                .target
                .connect()
                .await
                .map_err(|e| Failure::Collector(e.to_string()))?;
            tracing::info!(collector = %self.collector, resume_after = st.position, "connected to the syslog collector");
            st.conn = Some(conn);
        }
        let mut bytes = Vec::with_capacity(events.len() * 1024);
        for e in &events {
            message::frame(&self.header, e, &mut bytes);
        }
        let written = match st.conn.as_mut() {
            Some(conn) => write(conn, &bytes).await,
            None => Err((Ended::Broken(std::io::Error::other("not connected")), false)),
        };
        if let Err((_, true)) | Ok(()) = &written {
            st.recent.push_back((events[0].seq, Instant::now()));
            while st
                .recent
                .front()
                .is_some_and(|(_, t)| t.elapsed() > REPLAY_WINDOW)
            {
                st.recent.pop_front();
            }
            st.position = last;
        }
        if let Err((ended, _)) = written {
            return Err(Failure::Collector(self.lost(st, ended)));
        }
        st.backoff = FIRST_BACKOFF;
        if last > st.cursor && !self.advance(st, last).await? {
            return Ok(Step::Standby);
        }
        if events.len() < BATCH {
            self.app.metrics.syslog.lag.store(0, Ordering::Relaxed);
        } else {
            self.update_lag(st).await;
        }
        Ok(Step::Busy)
    }

    /// Takes or renews the lease when it is due. False while another replica holds it.
    async fn hold_lease(&self, st: &mut State) -> Result<bool, Failure> {
        let now = self.app.clock.now_ms();
        if st.holder && now < st.lease_until - LEASE_MS / 2 {
            return Ok(true);
        }
        let until = now + LEASE_MS;
        match self.app.store.syslog_claim(&self.owner, now, until).await? {
            Some(seq) => {
                if !st.holder {
                    tracing::info!(owner = %self.owner, after = seq, "syslog forwarding lease taken");
                    st.position = seq;
                    st.cursor = seq;
                    st.recent.clear();
                }
                st.holder = true;
                st.lease_until = until;
                Ok(true)
            }
            None => {
                self.standby(st);
                Ok(false)
            }
        }
    }

    /// Records `seq` as forwarded. False when the lease was lost meanwhile.
    async fn advance(&self, st: &mut State, seq: u64) -> Result<bool, Failure> {
        let until = self.app.clock.now_ms() + LEASE_MS;
        if !self
            .app
            .store
            .syslog_advance(&self.owner, seq, until)
            .await?
        {
            tracing::warn!(owner = %self.owner, "syslog forwarding lease lost to another replica");
            self.standby(st);
            return Ok(false);
        }
        let new = seq.saturating_sub(st.cursor);
        self.app
            .metrics
            .syslog
            .forwarded
            .fetch_add(new, Ordering::Relaxed);
        st.cursor = seq;
        st.lease_until = until;
        Ok(true)
    }

    fn standby(&self, st: &mut State) {
        st.holder = false;
        st.conn = None;
        st.recent.clear();
    }

    /// The next consecutive events after `position` (see `audit_tail`).
    async fn next_batch(&self, st: &mut State) -> Result<Vec<AuditEventView>, Failure> {
        let limit = i64::try_from(BATCH).unwrap_or(i64::MAX);
        let batch = st
            .tail
            .next(&self.app.store, st.position, limit, "syslog forwarding")
            .await?;
        Ok(batch.into_iter().map(AuditEventView::from).collect())
    }

    /// Waits for new events, noticing meanwhile when the collector ends the connection.
    async fn idle(&self, st: &mut State) {
        let ended = match st.conn.as_mut() {
            Some(conn) => tokio::select! {
                () = tokio::time::sleep(POLL) => None,
                ended = conn.ended() => Some(ended),
            },
            None => {
                tokio::time::sleep(POLL).await;
                None
            }
        };
        if let Some(ended) = ended {
            let why = self.lost(st, ended);
            tracing::info!(collector = %self.collector, reason = %why, "syslog connection ended; reconnecting when there is more to send");
        }
    }

    /// Drops the connection; after a break, rewinds to replay what may have been lost.
    fn lost(&self, st: &mut State, ended: Ended) -> String {
        st.conn = None;
        let why = match ended {
            Ended::Clean => "the collector closed the connection".to_owned(),
            Ended::Broken(e) => {
                let replay_from = st
                    .recent
                    .iter()
                    .find(|(_, t)| t.elapsed() <= REPLAY_WINDOW)
                    .map(|(seq, _)| seq - 1);
                if let Some(from) = replay_from.filter(|from| *from < st.position) {
                    tracing::info!(
                        from = from + 1,
                        to = st.position,
                        "resending events written before the connection broke"
                    );
                    st.position = from;
                }
                e.to_string()
            }
        };
        st.recent.clear();
        why
    }

    async fn update_lag(&self, st: &State) {
        if let Ok(lag) = self.app.store.syslog_lag(st.cursor).await {
            let lag = i64::try_from(lag).unwrap_or(i64::MAX);
            self.app.metrics.syslog.lag.store(lag, Ordering::Relaxed);
        }
    }
}

/// Writes one batch. On failure, says how the connection ended and whether bytes went out. An
/// end noticed just after the write counts as a break: the batch may not have been read.
async fn write(conn: &mut Conn, bytes: &[u8]) -> Result<(), (Ended, bool)> {
    if let Some(ended) = conn.check().await {
        return Err((ended, false));
    }
    conn.send(bytes)
        .await
        .map_err(|e| (Ended::Broken(e), true))?;
    // Reading also drains what the collector's TLS stack sent (session tickets), so that closing
    // this socket later sends FIN, not a reset that could discard data the collector has not
    // read yet.
    match conn.check().await {
        None => Ok(()),
        Some(Ended::Clean) => {
            let e = std::io::Error::other("the collector closed the connection during a write");
            Err((Ended::Broken(e), true))
        }
        Some(broken) => Err((broken, true)),
    }
}

/// This machine's host name, or `-` (RFC 5424's nil value).
fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}
