//! `/v1/users` and `/v1/devices`: administration (`manage_people`, `manage_devices`).

use brevet_store::DeviceRecord;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use brevet_policy::Permission;
use brevet_proto::api::{AddDevice, AddUser, DeviceView, GroupChange, UserCreated, UserView};
use brevet_proto::validate;
use serde_json::json;

use super::extract::Body;
use crate::app::App;
use crate::auth::Caller;
use crate::views;
use crate::{Error, authz, devices, people};

pub async fn add_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<AddUser>,
) -> Result<(StatusCode, Json<UserCreated>), Error> {
    let created = people::create(&app, &caller, &body.name, &body.groups).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn users(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, Error> {
    Ok(Json(people::users(&app, &caller).await?))
}

pub async fn enable_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(people::set_enabled(&app, &caller, &name, true).await?))
}

pub async fn disable_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(
        people::set_enabled(&app, &caller, &name, false).await?,
    ))
}

pub async fn add_group(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<GroupChange>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(
        people::change_group(&app, &caller, &name, &body.group, true).await?,
    ))
}

pub async fn remove_group(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, group)): Path<(String, String)>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(
        people::change_group(&app, &caller, &name, &group, false).await?,
    ))
}

pub async fn add_device(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<AddDevice>,
) -> Result<(StatusCode, Json<DeviceView>), Error> {
    authz::require(&app, &caller, Permission::ManageDevices)?;
    let name = validate::new_device_name(&body.name)?;
    for (k, v) in &body.tags {
        validate::tag(&format!("{k}={v}"))?;
    }
    for g in &body.groups {
        validate::group_name(g)?;
    }
    let os = body.os.unwrap_or_else(|| "linux".into());
    validate::role_name(&os)
        .map_err(|_| Error::Invalid(format!("invalid os `{os}`: expected a word such as linux")))?;
    let now = app.clock.now();
    let device = DeviceRecord {
        name: name.clone(),
        tags: body.tags,
        groups: body.groups,
        os,
        enabled: true,
        created_at: now,
    };
    let mut tx = app.store.begin().await?;
    if app.store.device(&name).await?.is_some() {
        return Err(Error::AlreadyExists(format!(
            "device `{name}` already exists"
        )));
    }
    tx.insert_device(&device).await?;
    tx.audit(
        "device.added",
        caller.name(),
        &name,
        json!({ "tags": device.tags, "groups": device.groups, "os": device.os }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(views::device(device))))
}

pub async fn devices(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<DeviceView>>, Error> {
    let all = app
        .store
        .devices()
        .await?
        .into_iter()
        .map(views::device)
        .collect();
    Ok(Json(authz::visible_devices(&app, &caller, all)))
}

pub async fn enable_device(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<DeviceView>, Error> {
    Ok(Json(
        devices::set_enabled(&app, &caller, &name, true).await?,
    ))
}

pub async fn disable_device(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<DeviceView>, Error> {
    Ok(Json(
        devices::set_enabled(&app, &caller, &name, false).await?,
    ))
}
