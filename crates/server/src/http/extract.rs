//! Extractors that turn every rejection into the API's error body.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::app::App;
use crate::auth::{Caller, authenticate};
use crate::devices::{Device, DeviceIdentity, authorize};

/// A JSON body; a malformed one is an `invalid_input` error naming what is wrong.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(e) => Err(Error::Invalid(format!(
                "invalid request body: {}",
                e.body_text()
            ))),
        }
    }
}

/// Query parameters; malformed ones are an `invalid_input` error naming what is wrong.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(e) => Err(Error::Invalid(format!(
                "invalid query parameters: {}",
                e.body_text()
            ))),
        }
    }
}

/// A device, proven by the client certificate of the connection (set by `serve`), checked on
/// every request: current certificate, enabled device.
impl FromRequestParts<Arc<App>> for Device {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Error> {
        let Some(identity) = parts.extensions.get::<DeviceIdentity>() else {
            return Err(Error::Unauthenticated(
                "this endpoint is for enrolled devices: connect with the device's client \
                 certificate (`brevet-agent enroll`)"
                    .into(),
            ));
        };
        authorize(app, identity).await
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Error> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(token) = header.strip_prefix("Bearer ") else {
            return Err(Error::Unauthenticated(
                "not logged in: run `brevet login`".into(),
            ));
        };
        authenticate(app, token.trim()).await
    }
}
