//! Serving the API over HTTPS (rustls), with the sweeper beside it.
//!
//! [`start`] binds, spawns the accept loop and the sweeper, and returns a [`Running`] handle;
//! tests use it to run a real server in-process on a free port and to stop and restart it.
//!
//! People and devices share the port. A client certificate is optional in the handshake but,
//! when sent, must chain to the Brevet CA (rustls checks that); the device name it carries is
//! then attached to every request of that connection as a `DeviceIdentity` extension, which
//! only the TLS layer can set.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::app::App;
use crate::clock::Clock;
use crate::datadir::DataDir;
use crate::devices::DeviceIdentity;
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
    let (stop, stopped) = watch::channel(false);
    let accept = tokio::spawn(accept_loop(
        listener,
        TlsAcceptor::from(tls),
        app.clone(),
        stopped,
    ));
    let sweep = tokio::spawn(sweeper::run(app.clone()));
    let checkpoints = tokio::spawn(crate::audit_checkpoints::run(app.clone()));
    let forward = crate::forward::spawn(&app, dir, addr)?;
    let webhooks = tokio::spawn(crate::webhooks::deliver::run(app.clone(), addr));
    tracing::info!(%addr, engine = ?app.store.engine(), "brevetd serving");
    Ok(Running {
        addr,
        app,
        stop,
        tasks: vec![accept, sweep, checkpoints, forward, replicas, webhooks],
    })
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    app: Arc<App>,
    mut stopped: watch::Receiver<bool>,
) {
    let router = http::router(app);
    // Open connections end with the server: a stopped server must not keep answering from
    // connections accepted before (its database is closed).
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => {
                connections.abort_all();
                return;
            }
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let router = router.clone();
        connections.spawn(async move {
            let stream =
                match tokio::time::timeout(std::time::Duration::from_secs(10), tls.accept(tcp))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|leaf| DeviceIdentity::from_cert(leaf));
            let service = router.map_request(move |mut req: axum::extract::Request<_>| {
                if let Some(id) = &identity {
                    req.extensions_mut().insert(id.clone());
                }
                req
            });
            let service = TowerToHyperService::new(service);
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
