//! `/v1/login`, `/v1/logout`, `/v1/whoami`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use brevet_proto::api::{LoginRequest, LoginResponse, Whoami};
use brevet_proto::timefmt::rfc3339;

use super::extract::Body;
use crate::Error;
use crate::app::App;
use crate::auth::{self, Caller};

pub async fn login(
    State(app): State<Arc<App>>,
    Body(req): Body<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    Ok(Json(auth::login(&app, req).await?))
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
