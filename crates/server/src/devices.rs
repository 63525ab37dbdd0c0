//! Devices proving who they are on every request (DESIGN §6): the identity the TLS handshake
//! proved, the check each device request passes, and disabling a device.
//!
//! Guarantees: a device's latest certificate is the only one accepted (enrolling again or
//! renewing replaces it, see `enroll`); a disabled device is refused on its next request, and a
//! long-poll it holds is woken and refused.

use brevet_identity::ca;
use brevet_proto::api::DeviceView;
use brevet_proto::validate;
use brevet_store::{Holder, Superseded};
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::auth::Caller;

/// What the TLS handshake proved about the peer: set on every request of a connection that
/// presented a Brevet device certificate. Never taken from a header or a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub name: String,
    /// SHA-256 of the certificate (lower-case hex).
    pub fingerprint: String,
}

impl DeviceIdentity {
    /// Reads the device name from a peer certificate that rustls has already verified against
    /// the Brevet CA; `None` if it is not shaped like a device certificate.
    pub fn from_cert(der: &[u8]) -> Option<DeviceIdentity> {
        match ca::client_device_name(der) {
            Ok(name) => Some(DeviceIdentity {
                name,
                fingerprint: ca::fingerprint_sha256(der),
            }),
            Err(e) => {
                tracing::debug!(error = %e, "client certificate is not a device certificate");
                None
            }
        }
    }
}

/// An enrolled, enabled device whose certificate the server still accepts.
#[derive(Debug, Clone)]
pub struct Device {
    pub name: String,
    pub fingerprint: String,
}

impl Device {
    /// How the device appears as an audit actor (device names cannot contain `:`).
    pub fn actor(&self) -> String {
        actor(&self.name)
    }
}

pub fn actor(device: &str) -> String {
    format!("device:{device}")
}

/// The check every device request passes: the certificate is still the device's current one
/// and unexpired, and the device is enabled.
pub async fn authorize(app: &App, id: &DeviceIdentity) -> Result<Device, Error> {
    let status = app.store.device_cert(&id.fingerprint).await?;
    let status = status.filter(|s| s.device == id.name);
    if let Some(s) = &status
        && s.superseded_by == Some(Superseded::Enrollment)
    {
        tracing::warn!(device = %id.name, fingerprint = %id.fingerprint, "certificate superseded by another enrollment refused");
        return Err(Error::DeviceSuperseded(format!(
            "device `{}` was enrolled again, which superseded this certificate: this agent \
             must remove what it holds and be enrolled again with a new token",
            id.name
        )));
    }
    let Some(status) = status.filter(|s| s.superseded_by.is_none()) else {
        tracing::warn!(device = %id.name, fingerprint = %id.fingerprint, "superseded device certificate refused");
        return Err(Error::Unauthenticated(format!(
            "this certificate of device `{}` is no longer accepted (the device enrolled again or \
             renewed it): use the current certificate, or enroll again with a new token",
            id.name
        )));
    };
    if status.not_after <= app.clock.now() {
        return Err(Error::Unauthenticated(format!(
            "the certificate of device `{}` has expired: enroll again with a new token",
            id.name
        )));
    }
    if !status.enabled {
        return Err(disabled(&id.name));
    }
    Ok(Device {
        name: id.name.clone(),
        fingerprint: id.fingerprint.clone(),
    })
}

/// Refuses a device that was disabled (or removed) since its request began.
pub async fn ensure_enabled(app: &App, name: &str) -> Result<(), Error> {
    match app.store.device(name).await? {
        Some(d) if d.enabled => Ok(()),
        _ => Err(disabled(name)),
    }
}

pub fn disabled(name: &str) -> Error {
    Error::DeviceDisabled(format!(
        "device `{name}` is disabled: an admin can enable it with `brevet device enable {name}`"
    ))
}

/// `brevet device disable|enable NAME`.
pub async fn set_enabled(
    app: &App,
    caller: &Caller,
    name: &str,
    enabled: bool,
) -> Result<DeviceView, Error> {
    crate::authz::require(app, caller, brevet_policy::Permission::ManageDevices)?;
    let name = validate::device_name(name)?;
    let now = app.clock.now();
    let mut tx = app.store.begin().await?;
    if !tx.set_device_enabled(&name, enabled).await? {
        return Err(Error::NotFound(format!("no device `{name}`")));
    }
    let kind = if enabled {
        "device.enabled"
    } else {
        "device.disabled"
    };
    let mut revoked = Vec::new();
    let mut cancelled = Vec::new();
    if !enabled {
        // Nothing granted on a device that is shut out stays live, and nothing waiting for it
        // can be granted later. Its agent, refused from now on, ends what it holds itself when
        // it hears the device is disabled.
        let of = Holder::Device(&name);
        let reason = "device disabled";
        revoked = crate::grants::revoke_live(&mut tx, of, reason, caller.name(), now)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        cancelled =
            crate::requests::cancel_pending(&mut tx, of, reason, caller.name(), now).await?;
    }
    tx.audit(
        kind,
        caller.name(),
        &name,
        json!({ "grants_revoked": revoked, "requests_cancelled": cancelled }),
        now,
    )
    .await?;
    tx.commit().await?;
    if !enabled {
        // Wake the device's long-poll so that it is refused now rather than at its timeout.
        app.grant_changed(&name);
    }
    app.store
        .device(&name)
        .await?
        .map(crate::views::device)
        .ok_or_else(|| Error::NotFound(format!("no device `{name}`")))
}
