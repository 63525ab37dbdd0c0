//! `/v1/device/*`, called by agents over mutual TLS, and `/v1/findings` for people.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use brevet_proto::agent::{
    Ack, AckResponse, DeviceEvent, DeviceFindings, DeviceGrants, DeviceReport, EventsResponse,
    RenewRequest, RenewResponse, ReportResponse,
};
use serde::Deserialize;

use super::extract::{Body, Params};
use crate::app::App;
use crate::auth::Caller;
use crate::devices::Device;
use crate::{Error, delivery, device_events, enroll, reports};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    cursor: Option<String>,
    wait: Option<u64>,
}

pub async fn grants(
    State(app): State<Arc<App>>,
    device: Device,
    Params(q): Params<PollQuery>,
) -> Result<Json<DeviceGrants>, Error> {
    let wait = q.wait.unwrap_or(delivery::DEFAULT_WAIT);
    Ok(Json(
        delivery::poll(&app, &device, q.cursor.as_deref(), wait).await?,
    ))
}

pub async fn acks(
    State(app): State<Arc<App>>,
    device: Device,
    Body(body): Body<Vec<Ack>>,
) -> Result<Json<AckResponse>, Error> {
    Ok(Json(delivery::acks(&app, &device, body).await?))
}

/// The record of use: commands run under grants and what changed while they were in force.
pub async fn events(
    State(app): State<Arc<App>>,
    device: Device,
    Body(body): Body<Vec<DeviceEvent>>,
) -> Result<Json<EventsResponse>, Error> {
    Ok(Json(device_events::record(&app, &device, body).await?))
}

pub async fn renew(
    State(app): State<Arc<App>>,
    device: Device,
    Body(body): Body<RenewRequest>,
) -> Result<Json<RenewResponse>, Error> {
    Ok(Json(enroll::renew(&app, &device, body).await?))
}

pub async fn report(
    State(app): State<Arc<App>>,
    device: Device,
    Body(body): Body<DeviceReport>,
) -> Result<Json<ReportResponse>, Error> {
    Ok(Json(reports::report(&app, &device, body).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    device: Option<String>,
}

pub async fn findings(
    State(app): State<Arc<App>>,
    caller: Caller,
    Params(q): Params<FindingsQuery>,
) -> Result<Json<Vec<DeviceFindings>>, Error> {
    crate::authz::require(&app, &caller, brevet_policy::Permission::ReadFindings)?;
    Ok(Json(reports::findings(&app, q.device.as_deref()).await?))
}
