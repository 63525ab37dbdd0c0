//! `[server] metrics_listen`: `/metrics` in plain HTTP on a loopback address, for a Prometheus
//! scraper on the same machine (the HTTPS `/metrics` needs a session with `read_metrics`, which
//! a scraper does not have).
//!
//! Only loopback addresses are accepted (the page tells how busy the server is and how many
//! grants are in force: not for the network). Anything but `GET /metrics` is `404`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Error;
use crate::app::App;

/// Checks the configured address: it must parse and be a loopback address.
pub fn parse(listen: &str) -> Result<SocketAddr, Error> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        Error::Config(format!(
            "invalid metrics_listen `{listen}`: expected IP:PORT, e.g. 127.0.0.1:9464"
        ))
    })?;
    if !addr.ip().is_loopback() {
        return Err(Error::Config(format!(
            "metrics_listen `{listen}` is not a loopback address: /metrics is served there \
             without authentication, so only 127.0.0.0/8 or ::1 are allowed"
        )));
    }
    Ok(addr)
}

/// Binds `addr` and serves `/metrics` until the task is aborted. Returns the bound address.
pub async fn start(
    app: Arc<App>,
    addr: SocketAddr,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on `{addr}` for metrics: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Io(format!("cannot read the metrics address: {e}")))?;
    tracing::info!(%bound, "metrics served in plain HTTP on loopback");
    let router = Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only GET /metrics\n") })
        .with_state(app);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok((bound, task))
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    match app.store.live_grant_count().await {
        Ok(active) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/plain; version=0.0.4")],
            app.metrics.render(active),
        ),
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot count live grants");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(CONTENT_TYPE, "text/plain; version=0.0.4")],
                "internal error\n".to_owned(),
            )
        }
    }
}
