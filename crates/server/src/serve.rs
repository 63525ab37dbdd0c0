//! Serving the API over HTTPS (rustls), with the sweeper beside it.
//!
//! [`start`] binds, spawns the accept loop and the sweeper, and returns a [`Running`] handle;
//! tests use it to run a real server in-process on a free port and to stop and restart it.
//!
//! People and devices share the port. A client certificate is optional in the handshake but,
//! when sent, must chain to the Brevet CA (rustls checks that); the device name it carries is
//! then attached to every request of that connection as a `DeviceIdentity` extension, which
//! only the TLS layer can set. Every request also carries the TCP peer's address as a
//! [`ClientAddr`] extension (never taken from a header), for login throttling.
//!
//! What a connection may cost (timeouts, connection budgets, the open-file limit) is the
//! [`crate::edge`]'s business: the accept loop asks its pool before serving anything, and never
//! spins when `accept` runs out of file descriptors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::app::App;
use crate::clock::Clock;
use crate::datadir::DataDir;
use crate::devices::DeviceIdentity;
use crate::edge::conn::{InFlight, Watched};
use crate::edge::pool::{Pool, Slot};
use crate::edge::{ClientAddr, Closed, EdgeMetrics, Limits, nofile, source_key};
use crate::{Error, http, sweeper};

/// What to serve.
pub struct Options {
    pub listen: Option<String>,
    pub db: Option<String>,
    pub clock: Arc<dyn Clock>,
}

/// A running server. Dropping it does not stop it; call [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served in plain HTTP (`[server] metrics_listen`), if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    pub app: Arc<App>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, ends the sweeper, and closes the database.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        self.app.store.close().await;
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

pub async fn start(dir: &DataDir, opts: Options) -> Result<Running, Error> {
    let app = Arc::new(App::open(dir, opts.db.as_deref(), opts.clock).await?);
    // Listening for other replicas' changes starts before this one serves.
    let replicas = crate::replicas::start(app.clone()).await;
    let listen = opts
        .listen
        .unwrap_or_else(|| app.config.server.listen.clone());
    let tls = brevet_identity::tls::server_config(
        &dir.read(&dir.server_cert())?,
        &dir.read(&dir.server_key())?,
        Some(&dir.read(&dir.ca_cert())?),
    )?;
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on `{listen}`: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Io(format!("cannot read the listen address: {e}")))?;
    let limits = Limits::from_settings(&app.config.server).map_err(Error::Config)?;
    let budget = nofile::fit(limits.budget, nofile::raise());
    tracing::debug!(?budget, "connection budget");
    let pool = Pool::new(budget, app.metrics.edge.clone());
    let (stop, stopped) = watch::channel(false);
    let accept = tokio::spawn(accept_loop(
        listener,
        TlsAcceptor::from(tls),
        app.clone(),
        pool,
        limits,
        stopped,
    ));
    let sweep = tokio::spawn(sweeper::run(app.clone()));
    let checkpoints = tokio::spawn(crate::audit_checkpoints::run(app.clone()));
    let forward = crate::forward::spawn(&app, dir, addr)?;
    let webhooks = tokio::spawn(crate::webhooks::deliver::run(app.clone(), addr));
    let login_summaries = tokio::spawn(crate::throttle::run(app.clone()));
    let metrics = match app.config.server.metrics_listen.as_deref() {
        Some(listen) => {
            let at = crate::metrics_listener::parse(listen)?;
            Some(crate::metrics_listener::start(app.clone(), at).await?)
        }
        None => None,
    };
    let metrics_addr = metrics.as_ref().map(|(a, _)| *a);
    tracing::info!(%addr, engine = ?app.store.engine(), "brevetd serving");
    let mut tasks = vec![
        accept,
        sweep,
        checkpoints,
        forward,
        replicas,
        webhooks,
        login_summaries,
    ];
    tasks.extend(metrics.map(|(_, t)| t));
    Ok(Running {
        addr,
        metrics_addr,
        app,
        stop,
        tasks,
    })
}

/// What every connection task needs.
struct Edge {
    tls: TlsAcceptor,
    router: axum::Router,
    pool: Arc<Pool>,
    limits: Limits,
    metrics: Arc<EdgeMetrics>,
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    app: Arc<App>,
    pool: Arc<Pool>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let edge = Arc::new(Edge {
        tls,
        router: http::router(app.clone()),
        pool,
        limits,
        metrics: app.metrics.edge.clone(),
    });
    // Open connections end with the server: a stopped server must not keep answering from
    // connections accepted before (its database is closed).
    let mut connections = tokio::task::JoinSet::new();
    let mut fd_warned: Option<tokio::time::Instant> = None;
    loop {
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    out_of_fds(&edge, &e, &mut fd_warned).await;
                    continue;
                }
            },
            _ = stopped.changed() => {
                connections.abort_all();
                return;
            }
        };
        let slot = match edge.pool.admit(source_key(peer.ip())) {
            Ok(slot) => slot,
            Err(why) => {
                // Closed at once: the source has its fill of connections.
                edge.metrics.closed(why);
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        connections.spawn(connection(edge.clone(), tcp, peer, slot));
    }
}

/// After a failed `accept`: when file descriptors ran out, free one (the oldest handshake or
/// idle anonymous connection) and wait until a connection closes or 100 ms pass, so the loop
/// never spins; warns at most once a second.
async fn out_of_fds(edge: &Edge, e: &std::io::Error, warned: &mut Option<tokio::time::Instant>) {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or the system is out of resources.
    let exhausted = matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12));
    if !exhausted {
        // A connection that failed between the SYN and `accept` (ECONNABORTED and the like).
        tracing::debug!(error = %e, "accept failed");
        return;
    }
    edge.metrics
        .accept_fd_errors
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = tokio::time::Instant::now();
    if warned.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
        *warned = Some(now);
        let [handshake, anonymous, device] = edge.pool.counts();
        tracing::warn!(error = %e, handshake, anonymous, device,
            "accept failed: out of file descriptors; closing the oldest idle connection");
    }
    edge.pool.evict_for_fd();
    let _ = tokio::time::timeout(Duration::from_millis(100), edge.pool.freed.notified()).await;
}

/// One connection: the TLS handshake under its timeout, its place in the pool (device or
/// anonymous), then HTTP under the watch of `ConnState::deadline` until it ends, times out
/// or is evicted.
async fn connection(edge: Arc<Edge>, tcp: TcpStream, peer: SocketAddr, slot: Slot) {
    let conn = slot.conn.clone();
    let handshake = tokio::time::timeout(edge.limits.handshake_timeout, edge.tls.accept(tcp));
    let stream = tokio::select! {
        r = handshake => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                edge.metrics.closed(Closed::HandshakeTimeout);
                return;
            }
        },
        _ = conn.evicted() => return,
    };
    let identity = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| DeviceIdentity::from_cert(leaf));
    if let Err(why) = edge
        .pool
        .classify(&slot, identity.as_ref().map(|i| i.name.as_str()))
    {
        tracing::debug!(%peer, reason = ?why, "connection refused: budget full");
        edge.metrics.closed(why);
        return;
    }
    conn.ready();
    let client = ClientAddr(peer.ip());
    let router = edge.router.clone();
    let watched = conn.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(&watched);
        if let Some(id) = &identity {
            req.extensions_mut().insert(id.clone());
        }
        req.extensions_mut().insert(client);
        let router = router.clone();
        async move {
            let response = router.oneshot(req).await;
            drop(in_flight);
            response
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let serving =
        builder.serve_connection(TokioIo::new(Watched::new(stream, conn.clone())), service);
    tokio::pin!(serving);
    loop {
        let deadline = conn.deadline(&edge.limits);
        // While a request is in flight, look again after a while: it may have ended.
        let wake = deadline.map_or_else(
            || tokio::time::Instant::now() + edge.limits.idle_timeout,
            |(at, _)| at,
        );
        tokio::select! {
            r = serving.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = conn.evicted() => return,
            _ = tokio::time::sleep_until(wake) => {
                if let Some((at, why)) = conn.deadline(&edge.limits)
                    && at <= tokio::time::Instant::now()
                {
                    tracing::debug!(%peer, reason = ?why, "connection closed");
                    edge.metrics.closed(why);
                    return;
                }
            }
        }
    }
}
