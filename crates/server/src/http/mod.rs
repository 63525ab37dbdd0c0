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
mod privileges;
mod requests;
mod restore;
mod sessions;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::app::App;

/// Declares the route table once: [`ROUTES`] lists it (the authorization matrix test walks it,
/// so a route without an expectation fails that test) and [`router`] serves it.
macro_rules! routes {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every route served, as `(method, path)`.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn table(router: Router<Arc<App>>) -> Router<Arc<App>> {
            router $(.route($path, $method($handler)))*
        }
    };
}

routes! {
    get "/v1/info" => meta::info;
    get "/v1/openapi.json" => meta::openapi;
    get "/metrics" => meta::metrics;
    post "/v1/login" => sessions::login;
    post "/v1/logout" => sessions::logout;
    get "/v1/whoami" => sessions::whoami;
    post "/v1/requests" => requests::create;
    get "/v1/requests" => requests::list;
    get "/v1/requests/{id}" => requests::show;
    post "/v1/requests/{id}/approve" => requests::approve;
    post "/v1/requests/{id}/deny" => requests::deny;
    post "/v1/requests/{id}/cancel" => requests::cancel;
    post "/v1/breakglass" => requests::breakglass;
    get "/v1/grants" => grants::list;
    get "/v1/grants/{id}" => grants::show;
    post "/v1/grants/{id}/revoke" => grants::revoke;
    post "/v1/grants/{id}/done" => grants::done;
    post "/v1/users" => admin::add_user;
    get "/v1/users" => admin::users;
    post "/v1/users/{name}/enable" => admin::enable_user;
    post "/v1/users/{name}/disable" => admin::disable_user;
    post "/v1/users/{name}/groups" => admin::add_group;
    delete "/v1/users/{name}/groups/{group}" => admin::remove_group;
    get "/v1/privileges" => privileges::list;
    post "/v1/privileges/{id}/confirm" => privileges::confirm;
    post "/v1/privileges/{id}/reject" => privileges::reject;
    post "/v1/devices" => admin::add_device;
    get "/v1/devices" => admin::devices;
    post "/v1/devices/{name}/enable" => admin::enable_device;
    post "/v1/devices/{name}/disable" => admin::disable_device;
    post "/v1/devices/{name}/enroll-token" => enroll::token;
    post "/v1/enroll" => enroll::enroll;
    get "/v1/device/grants" => device::grants;
    post "/v1/device/acks" => device::acks;
    post "/v1/device/events" => device::events;
    post "/v1/device/renew" => device::renew;
    post "/v1/device/report" => device::report;
    get "/v1/findings" => device::findings;
    post "/v1/notify/webhooks" => notify::add;
    get "/v1/notify/webhooks" => notify::list;
    delete "/v1/notify/webhooks/{id}" => notify::remove;
    get "/v1/restore" => restore::status;
    post "/v1/restore/acknowledge" => restore::acknowledge;
    get "/v1/audit" => audit::list;
    get "/v1/audit/checkpoint" => audit::checkpoint;
    get "/v1/audit/proof/inclusion" => audit::inclusion;
    get "/v1/audit/proof/consistency" => audit::consistency;
}

pub fn router(app: Arc<App>) -> Router {
    table(Router::new())
        .fallback(meta::not_found)
        .with_state(app)
}
