//! `/v1/users` and `/v1/devices`: administration, for members of `admins`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use brevet_policy::Permission;
use brevet_proto::api::{AddDevice, AddUser, DeviceView, GroupChange, UserCreated, UserView};
use brevet_proto::timefmt::rfc3339;
use brevet_proto::validate;
use serde_json::json;

use super::extract::Body;
use crate::app::App;
use crate::auth::Caller;
use crate::{Error, authz, devices, init};

pub async fn add_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<AddUser>,
) -> Result<(StatusCode, Json<UserCreated>), Error> {
    authz::require(&app, &caller, Permission::ManagePeople)?;
    let created = init::create_user(
        &app.store,
        &*app.clock,
        &app.totp_key,
        &body.name,
        &body.groups,
        caller.name(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn users(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, Error> {
    authz::require(&app, &caller, Permission::ReadUsers)?;
    Ok(Json(
        app.store.users().await?.iter().map(user_view).collect(),
    ))
}

pub async fn enable_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserView>, Error> {
    set_enabled(&app, &caller, &name, true).await
}

pub async fn disable_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserView>, Error> {
    set_enabled(&app, &caller, &name, false).await
}

async fn set_enabled(
    app: &App,
    caller: &Caller,
    name: &str,
    enabled: bool,
) -> Result<Json<UserView>, Error> {
    authz::require(app, caller, Permission::ManagePeople)?;
    validate::user_name(name)?;
    if !enabled && name == caller.name() {
        return Err(Error::Invalid("you cannot disable your own account".into()));
    }
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    if !tx.set_user_enabled(name, enabled).await? {
        return Err(Error::NotFound(format!("no user `{name}`")));
    }
    if enabled {
        // Enabling is also how an administrator lifts a lock after failed logins.
        tx.clear_login_failures(name).await?;
    } else {
        tx.revoke_user_sessions(name, now).await?;
    }
    let kind = if enabled {
        "user.enabled"
    } else {
        "user.disabled"
    };
    tx.audit(kind, caller.name(), name, json!({}), now).await?;
    tx.commit().await?;
    user(app, name).await
}

pub async fn add_group(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<GroupChange>,
) -> Result<Json<UserView>, Error> {
    change_group(&app, &caller, &name, &body.group, true).await
}

pub async fn remove_group(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, group)): Path<(String, String)>,
) -> Result<Json<UserView>, Error> {
    change_group(&app, &caller, &name, &group, false).await
}

async fn change_group(
    app: &App,
    caller: &Caller,
    name: &str,
    group: &str,
    add: bool,
) -> Result<Json<UserView>, Error> {
    authz::require(app, caller, Permission::ManagePeople)?;
    validate::user_name(name)?;
    validate::group_name(group)?;
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    if tx.user(name).await?.is_none() {
        return Err(Error::NotFound(format!("no user `{name}`")));
    }
    let changed = if add {
        tx.add_user_group(name, group).await?
    } else {
        tx.remove_user_group(name, group).await?
    };
    if changed {
        let kind = if add {
            "user.group_added"
        } else {
            "user.group_removed"
        };
        tx.audit(kind, caller.name(), name, json!({ "group": group }), now)
            .await?;
    }
    tx.commit().await?;
    user(app, name).await
}

async fn user(app: &App, name: &str) -> Result<Json<UserView>, Error> {
    let u = app
        .store
        .user(name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user `{name}`")))?;
    Ok(Json(user_view(&u)))
}

fn user_view(u: &brevet_store::UserRecord) -> UserView {
    UserView {
        name: u.name.clone(),
        groups: u.groups.clone(),
        enabled: u.enabled,
        created_at: rfc3339(u.created_at),
    }
}

pub async fn add_device(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(body): Body<AddDevice>,
) -> Result<(StatusCode, Json<DeviceView>), Error> {
    authz::require(&app, &caller, Permission::ManageDevices)?;
    let name = validate::device_name(&body.name)?;
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
    let device = DeviceView {
        name: name.clone(),
        tags: body.tags,
        groups: body.groups,
        os,
        enabled: true,
        created_at: rfc3339(now),
    };
    let mut tx = app.store.begin().await?;
    if app.store.device(&name).await?.is_some() {
        return Err(Error::AlreadyExists(format!(
            "device `{name}` already exists"
        )));
    }
    tx.insert_device(&device, now).await?;
    tx.audit(
        "device.added",
        caller.name(),
        &name,
        json!({ "tags": device.tags, "groups": device.groups, "os": device.os }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(device)))
}

pub async fn devices(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<DeviceView>>, Error> {
    let all = app.store.devices().await?;
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
