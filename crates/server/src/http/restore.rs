//! `/v1/restore`: a restore from backup noticed at start, and its acknowledgement
//! (`restore.rs`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use brevet_proto::api::{ConfirmBody, RestoreView};

use super::extract::Body;
use crate::app::App;
use crate::auth::Caller;
use crate::{Error, restore};

pub async fn status(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<RestoreView>, Error> {
    Ok(Json(restore::status(&app, &caller).await?))
}

pub async fn acknowledge(
    State(app): State<Arc<App>>,
    mut caller: Caller,
    Body(body): Body<ConfirmBody>,
) -> Result<Json<RestoreView>, Error> {
    Ok(Json(
        restore::acknowledge(&app, &mut caller, body.totp.as_deref()).await?,
    ))
}
