//! `/v1/requests`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use brevet_policy::Permission;
use brevet_proto::api::{
    ApproveBody, BreakglassBody, CreateRequest, DenyBody, RequestState, RequestView,
};
use brevet_store::RequestFilter;
use serde::Deserialize;

use super::extract::Body;
use crate::app::App;
use crate::auth::Caller;
use crate::{Error, authz, requests};

pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<CreateRequest>,
) -> Result<(StatusCode, Json<RequestView>), Error> {
    Ok((
        StatusCode::CREATED,
        Json(requests::create(&app, &caller, body).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    user: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<RequestView>>, Error> {
    let state = q
        .state
        .as_deref()
        .map(|s| {
            RequestState::parse(s).ok_or_else(|| Error::Invalid(format!("invalid state `{s}`")))
        })
        .transpose()?;
    let user = q
        .user
        .as_deref()
        .map(brevet_proto::validate::user_name)
        .transpose()?
        .map(str::to_owned);
    let want = q.limit.unwrap_or(200).clamp(1, 1000);
    let all = authz::holds(&app, &caller, Permission::ReadRequests);
    let filter = RequestFilter {
        state,
        user,
        // Scoped readers see a subset of what is read: read the most, keep what they may see.
        limit: Some(if all { want } else { 1000 }),
    };
    let found = crate::views::requests(app.store.requests(&filter).await?)?;
    let mut visible = authz::visible_requests(&app, &caller, found).await?;
    visible.truncate(usize::try_from(want).unwrap_or(1000));
    Ok(Json(visible))
}

pub async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, Error> {
    Ok(Json(requests::fetch_for(&app, &caller, &id).await?))
}

pub async fn approve(
    State(app): State<Arc<App>>,
    mut caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ApproveBody>,
) -> Result<Json<RequestView>, Error> {
    Ok(Json(requests::approve(&app, &mut caller, &id, body).await?))
}

pub async fn breakglass(
    State(app): State<Arc<App>>,
    mut caller: Caller,
    Body(body): Body<BreakglassBody>,
) -> Result<(StatusCode, Json<RequestView>), Error> {
    let view = crate::breakglass::breakglass(&app, &mut caller, body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn deny(
    State(app): State<Arc<App>>,
    mut caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<DenyBody>,
) -> Result<Json<RequestView>, Error> {
    Ok(Json(requests::deny(&app, &mut caller, &id, body).await?))
}

pub async fn cancel(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, Error> {
    Ok(Json(requests::cancel(&app, &caller, &id).await?))
}
