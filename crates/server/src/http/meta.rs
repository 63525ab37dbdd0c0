//! `/v1/info`, `/v1/openapi.json`, `/metrics`, and the JSON 404.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use brevet_proto::api::ServerInfo;
use brevet_proto::timefmt::rfc3339;

use crate::Error;
use crate::app::App;
use crate::auth::Caller;

pub async fn info(State(app): State<Arc<App>>) -> Json<ServerInfo> {
    Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        now: rfc3339(app.clock.now()),
        grant_public_key: app.grant_public_key.clone(),
        audit_public_key: app.audit_key.public_b64.clone(),
    })
}

pub async fn openapi() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

pub async fn metrics(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<impl IntoResponse, Error> {
    crate::authz::require(&app, &caller, brevet_policy::Permission::ReadMetrics)?;
    let active = app.store.live_grant_count().await?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(active),
    ))
}

pub async fn not_found() -> Error {
    Error::NotFound("no such API endpoint; see /v1/openapi.json".into())
}
