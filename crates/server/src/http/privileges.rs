//! `/v1/privileges`: changes that give power, under the two-person rule (`people.rs`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use brevet_proto::api::{ConfirmBody, PrivilegeView, ReasonBody};
use serde::Deserialize;

use super::extract::{Body, Params};
use crate::app::App;
use crate::auth::Caller;
use crate::{Error, people};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<ListQuery>,
) -> Result<Json<Vec<PrivilegeView>>, Error> {
    Ok(Json(people::list(&app, &caller, q.state.as_deref()).await?))
}

pub async fn confirm(
    State(app): State<Arc<App>>,
    mut caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ConfirmBody>,
) -> Result<Json<PrivilegeView>, Error> {
    Ok(Json(
        people::confirm(&app, &mut caller, &id, body.totp.as_deref()).await?,
    ))
}

pub async fn reject(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ReasonBody>,
) -> Result<Json<PrivilegeView>, Error> {
    Ok(Json(
        people::reject(&app, &caller, &id, &body.reason).await?,
    ))
}
