//! The `/v1` JSON API over HTTPS. Handlers are thin: they extract, call the lifecycle modules,
//! and return JSON. Errors become `{code, message}` bodies in one place ([`crate::Error`]).
//! People authenticate with a bearer session ([`crate::auth::Caller`]); devices, on
//! `/v1/device/*`, with the client certificate of their connection ([`crate::devices::Device`]).

mod admin;
mod audit;
mod device;
mod enroll;
mod extract;
mod grants;
mod meta;
mod notify;
mod requests;
mod sessions;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/info", get(meta::info))
        .route("/v1/openapi.json", get(meta::openapi))
        .route("/metrics", get(meta::metrics))
        .route("/v1/login", post(sessions::login))
        .route("/v1/logout", post(sessions::logout))
        .route("/v1/whoami", get(sessions::whoami))
        .route("/v1/requests", post(requests::create).get(requests::list))
        .route("/v1/requests/{id}", get(requests::show))
        .route("/v1/requests/{id}/approve", post(requests::approve))
        .route("/v1/requests/{id}/deny", post(requests::deny))
        .route("/v1/requests/{id}/cancel", post(requests::cancel))
        .route("/v1/breakglass", post(requests::breakglass))
        .route("/v1/grants", get(grants::list))
        .route("/v1/grants/{id}", get(grants::show))
        .route("/v1/grants/{id}/revoke", post(grants::revoke))
        .route("/v1/grants/{id}/done", post(grants::done))
        .route("/v1/users", post(admin::add_user).get(admin::users))
        .route("/v1/users/{name}/enable", post(admin::enable_user))
        .route("/v1/users/{name}/disable", post(admin::disable_user))
        .route("/v1/users/{name}/groups", post(admin::add_group))
        .route(
            "/v1/users/{name}/groups/{group}",
            delete(admin::remove_group),
        )
        .route("/v1/devices", post(admin::add_device).get(admin::devices))
        .route("/v1/devices/{name}/enable", post(admin::enable_device))
        .route("/v1/devices/{name}/disable", post(admin::disable_device))
        .route("/v1/devices/{name}/enroll-token", post(enroll::token))
        .route("/v1/enroll", post(enroll::enroll))
        .route("/v1/device/grants", get(device::grants))
        .route("/v1/device/acks", post(device::acks))
        .route("/v1/device/events", post(device::events))
        .route("/v1/device/renew", post(device::renew))
        .route("/v1/device/report", post(device::report))
        .route("/v1/findings", get(device::findings))
        .route("/v1/notify/webhooks", post(notify::add).get(notify::list))
        .route("/v1/notify/webhooks/{id}", delete(notify::remove))
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
        .route("/v1/audit/proof/inclusion", get(audit::inclusion))
        .route("/v1/audit/proof/consistency", get(audit::consistency))
        .fallback(meta::not_found)
        .with_state(app)
}
