//! `/v1/devices/{name}/enroll-token` (admins) and `/v1/enroll` (the device, with its token).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use brevet_proto::agent::{EnrollRequest, EnrollResponse, EnrollToken};

use super::extract::Body;
use crate::app::App;
use crate::auth::Caller;
use crate::{Error, enroll};

pub async fn token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<EnrollToken>), Error> {
    Ok((
        StatusCode::CREATED,
        Json(enroll::create_enroll_token(&app, &caller, &name).await?),
    ))
}

pub async fn enroll(
    State(app): State<Arc<App>>,
    Body(body): Body<EnrollRequest>,
) -> Result<Json<EnrollResponse>, Error> {
    Ok(Json(enroll::enroll(&app, body).await?))
}
