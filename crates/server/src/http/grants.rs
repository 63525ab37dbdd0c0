//! `/v1/grants`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use brevet_proto::api::{GrantState, GrantView, ReasonBody};
use brevet_proto::validate;
use brevet_store::GrantFilter;
use serde::Deserialize;

use super::extract::Body;
use crate::app::App;
use crate::auth::Caller;
use crate::{Error, grants};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    active: Option<bool>,
    device: Option<String>,
    user: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    _caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<GrantView>>, Error> {
    let filter = GrantFilter {
        live: q.active.unwrap_or(false),
        device: q.device.as_deref().map(validate::device_name).transpose()?,
        user: q
            .user
            .as_deref()
            .map(validate::user_name)
            .transpose()?
            .map(str::to_owned),
        limit: Some(q.limit.unwrap_or(200).clamp(1, 1000)),
    };
    Ok(Json(app.store.grants(&filter).await?))
}

pub async fn show(
    State(app): State<Arc<App>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, Error> {
    Ok(Json(grants::fetch(&app, &id).await?))
}

pub async fn revoke(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ReasonBody>,
) -> Result<Json<GrantView>, Error> {
    let reason = validate::reason(&body.reason)?;
    Ok(Json(
        grants::end(&app, &caller, &id, GrantState::Revoked, reason).await?,
    ))
}

pub async fn done(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, Error> {
    Ok(Json(
        grants::end(&app, &caller, &id, GrantState::Completed, "task done").await?,
    ))
}
