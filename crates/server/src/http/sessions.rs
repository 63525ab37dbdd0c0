//! `/v1/login`, `/v1/logout`, `/v1/whoami`.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use brevet_proto::api::{LoginRequest, LoginResponse, Whoami};
use brevet_proto::timefmt::rfc3339;

use super::extract::Body;
use crate::Error;
use crate::app::App;
use crate::auth::{self, Caller};
use crate::edge::ClientAddr;

pub async fn login(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ClientAddr>>,
    Body(req): Body<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    // Set by `serve` from the TCP peer; without it (a router not behind `serve`) fail closed.
    let Some(Extension(ClientAddr(peer))) = peer else {
        return Err(Error::Internal("login without the client's address".into()));
    };
    Ok(Json(auth::login(&app, req, peer).await?))
}

pub async fn logout(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, Error> {
    auth::logout(&app, &caller).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

pub async fn whoami(caller: Caller) -> Json<Whoami> {
    Json(Whoami {
        user: caller.user.name.clone(),
        groups: caller.user.groups.clone(),
        session_expires_at: rfc3339(caller.session.expires_at),
        mfa_at: caller.session.mfa_at.map(rfc3339),
    })
}
