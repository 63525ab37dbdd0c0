//! `/v1/grants`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use brevet_policy::Permission;
use brevet_proto::api::{GrantState, GrantView, ReasonBody};
use brevet_proto::validate;
use brevet_store::GrantFilter;
use serde::Deserialize;

use super::extract::Body;
use crate::app::App;
use crate::auth::Caller;
use crate::{Error, authz, grants};

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
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<GrantView>>, Error> {
    let want = q.limit.unwrap_or(200).clamp(1, 1000);
    let all = authz::holds(&app, &caller, Permission::ReadGrants);
    let filter = GrantFilter {
        live: q.active.unwrap_or(false),
        device: q.device.as_deref().map(validate::device_name).transpose()?,
        user: q
            .user
            .as_deref()
            .map(validate::user_name)
            .transpose()?
            .map(str::to_owned),
        // Scoped readers see a subset of what is read: read the most, keep what they may see.
        limit: Some(if all { want } else { 1000 }),
    };
    let found = app.store.grants(&filter).await?;
    let found = found.into_iter().map(crate::views::grant).collect();
    let mut visible = authz::visible_grants(&app, &caller, found).await?;
    visible.truncate(usize::try_from(want).unwrap_or(1000));
    Ok(Json(visible))
}

pub async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GrantView>, Error> {
    let grant = grants::fetch(&app, &id).await?;
    if !authz::sees_grant(&app, &caller, &grant).await? {
        return Err(Error::NotFound(format!("no grant `{id}`")));
    }
    Ok(Json(grant))
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
