//! `/v1/notify/webhooks`: the webhooks notable events are POSTed to, for members of `admins`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use brevet_proto::api::{AddWebhook, WebhookView};

use super::extract::Body;
use crate::app::App;
use crate::auth::Caller;
use crate::{Error, webhooks};

pub async fn add(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<AddWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), Error> {
    let w = webhooks::add(&app, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(w)))
}

pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<WebhookView>>, Error> {
    Ok(Json(webhooks::list(&app, &caller).await?))
}

pub async fn remove(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, Error> {
    Ok(Json(webhooks::remove(&app, &caller, &id).await?))
}
