//! Enrollment (DESIGN §6): one-time tokens, and client certificates that the Brevet CA issues for
//! keys generated on the device, at enrollment and at renewal.
//!
//! Guarantees: a token is used at most once, even by concurrent enrollments (it is consumed by a
//! conditional `UPDATE` in the transaction that records the certificate), and a new token
//! replaces the device's unused ones; only the SHA-256 of a token is stored; a certificate is
//! accepted only once it is recorded, and recording it retires the device's previous one.
//! Enrolling a device whose certificate is still valid raises `alert.device_reenrolled`, and
//! the superseded certificate is then answered `device_superseded`, on which its agent removes
//! every grant it holds.

use std::time::{Duration, UNIX_EPOCH};

use brevet_identity::{ca, token};
use brevet_proto::agent::{
    EnrollRequest, EnrollResponse, EnrollToken, RenewRequest, RenewResponse,
};
use brevet_proto::timefmt::rfc3339;
use brevet_proto::validate;
use brevet_store::Superseded;
use serde_json::json;

use crate::Error;
use crate::app::App;
use crate::auth::Caller;
use crate::devices::{Device, actor, ensure_enabled};

/// How long an enrollment token stays usable.
pub const ENROLL_TOKEN_TTL: i64 = 3600;

/// How long a device certificate is valid; agents renew at two thirds of it.
pub const CERT_LIFETIME: i64 = 24 * 3600;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// `brevet device enroll-token NAME`: a one-time token, valid for [`ENROLL_TOKEN_TTL`].
pub async fn create_enroll_token(
    app: &App,
    caller: &Caller,
    name: &str,
) -> Result<EnrollToken, Error> {
    crate::authz::require(app, caller, brevet_policy::Permission::ManageDevices)?;
    issue_token(&app.store, app.clock.now(), name, caller.name()).await
}

/// Issues and records (hashed) a one-time enrollment token for an enabled device.
pub async fn issue_token(
    store: &brevet_store::Store,
    now: i64,
    name: &str,
    actor: &str,
) -> Result<EnrollToken, Error> {
    let name = validate::device_name(name)?;
    let device = store.device(&name).await?.ok_or_else(|| {
        Error::NotFound(format!(
            "unknown device `{name}`: add it with `brevet device add`"
        ))
    })?;
    if !device.enabled {
        return Err(Error::Conflict(format!(
            "device `{name}` is disabled: enable it first with `brevet device enable {name}`"
        )));
    }
    let expires_at = now + ENROLL_TOKEN_TTL;
    let secret = token::new_token("bve_");
    let mut tx = store.begin().await?;
    // A new token replaces the device's unused ones: only the latest can enroll it.
    let invalidated = tx.invalidate_enroll_tokens(&name).await?;
    tx.insert_enroll_token(&token::hash_token(&secret), &name, now, expires_at)
        .await?;
    tx.audit(
        "device.enroll_token_created",
        actor,
        &name,
        json!({ "expires_at": rfc3339(expires_at), "tokens_invalidated": invalidated }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(EnrollToken {
        device: name,
        token: secret,
        expires_at: rfc3339(expires_at),
    })
}

/// `POST /v1/enroll`: trades an unused token and a device public key for a client certificate.
pub async fn enroll(app: &App, req: EnrollRequest) -> Result<EnrollResponse, Error> {
    let refused = || {
        Error::Unauthenticated(
            "the enrollment token is unknown, used or expired: ask an admin for a new one \
             (`brevet device enroll-token NAME`)"
                .into(),
        )
    };
    let spki = ed25519_spki(&req.public_key)?;
    if req.token.len() > 200 || !req.token.starts_with("bve_") {
        return Err(refused());
    }
    let hash = token::hash_token(&req.token);
    let now = app.clock.now();
    let Some(t) = app.store.enroll_token(&hash).await? else {
        return Err(refused());
    };
    if t.used_at.is_some() || t.expires_at <= now {
        let why = if t.used_at.is_some() {
            "used"
        } else {
            "expired"
        };
        enroll_refused(app, &t.device, why, now).await?;
        return Err(refused());
    }
    ensure_enabled(app, &t.device).await?;
    let cert = issue(app, &t.device, &spki, now)?;
    let mut tx = app.store.begin().await?;
    if !tx.use_enroll_token(&hash, now).await? {
        drop(tx);
        enroll_refused(app, &t.device, "used", now).await?;
        return Err(refused());
    }
    let previous = tx
        .current_device_cert(&t.device)
        .await?
        .filter(|(_, not_after)| *not_after > now);
    tx.replace_device_cert(
        &t.device,
        &cert.fingerprint,
        cert.not_after,
        now,
        Superseded::Enrollment,
    )
    .await?;
    tx.audit(
        "device.enrolled",
        &actor(&t.device),
        &t.device,
        json!({
            "fingerprint": cert.fingerprint, "cert_not_after": rfc3339(cert.not_after),
            "previous_fingerprint": previous.as_ref().map(|(f, _)| f),
        }),
        now,
    )
    .await?;
    if let Some((old, _)) = &previous {
        // The device was enrolled and its certificate still valid: either it was reinstalled,
        // or someone else now holds its name. Its previous agent is told `device_superseded`
        // and removes what it holds.
        tracing::warn!(device = %t.device, "a live device enrolled again");
        tx.audit(
            "alert.device_reenrolled",
            "brevetd",
            &t.device,
            json!({
                "device": t.device, "previous_fingerprint": old,
                "fingerprint": cert.fingerprint,
            }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    app.metrics
        .enrollments
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A long-poll held with a superseded certificate ends now.
    app.grant_changed(&t.device);
    Ok(EnrollResponse {
        device: t.device,
        cert_pem: cert.pem,
        cert_not_after: rfc3339(cert.not_after),
        ca_pem: app.ca.cert_pem().to_owned(),
        grant_public_key: app.grant_public_key.clone(),
        server_time: rfc3339(app.clock.now()),
    })
}

async fn enroll_refused(app: &App, device: &str, why: &str, now: i64) -> Result<(), Error> {
    tracing::warn!(%device, why, "enrollment with a spent token refused");
    let mut tx = app.store.begin().await?;
    tx.audit(
        "device.enroll_refused",
        "anonymous",
        device,
        json!({ "token": why }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /v1/device/renew`: a new certificate for a new key; the old certificate stops working.
pub async fn renew(app: &App, device: &Device, req: RenewRequest) -> Result<RenewResponse, Error> {
    let spki = ed25519_spki(&req.public_key)?;
    let now = app.clock.now();
    let cert = issue(app, &device.name, &spki, now)?;
    let mut tx = app.store.begin().await?;
    tx.replace_device_cert(
        &device.name,
        &cert.fingerprint,
        cert.not_after,
        now,
        Superseded::Renewal,
    )
    .await?;
    tx.audit(
        "device.cert_renewed",
        &device.actor(),
        &device.name,
        json!({
            "fingerprint": cert.fingerprint,
            "previous_fingerprint": device.fingerprint,
            "cert_not_after": rfc3339(cert.not_after),
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    app.metrics
        .renewals
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(RenewResponse {
        cert_pem: cert.pem,
        cert_not_after: rfc3339(cert.not_after),
    })
}

struct DeviceCert {
    pem: String,
    fingerprint: String,
    not_after: i64,
}

/// Signs a certificate for `device`'s key, valid for [`CERT_LIFETIME`] from `now`.
fn issue(app: &App, device: &str, spki: &[u8], now: i64) -> Result<DeviceCert, Error> {
    let start = UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
    let lifetime = Duration::from_secs(CERT_LIFETIME.unsigned_abs());
    let pem = app
        .ca
        .issue_client_for_public_key_at(device, spki, lifetime, start)?;
    Ok(DeviceCert {
        fingerprint: ca::fingerprint_sha256(&pem),
        pem,
        not_after: now + CERT_LIFETIME,
    })
}

/// Decodes a base64 DER SubjectPublicKeyInfo and accepts only an Ed25519 key.
fn ed25519_spki(b64: &str) -> Result<Vec<u8>, Error> {
    let invalid = |why: &str| {
        Error::Invalid(format!(
            "invalid public_key: {why}; send the device's Ed25519 public key as base64 DER \
             SubjectPublicKeyInfo"
        ))
    };
    if b64.len() > 200 {
        return Err(invalid("too long"));
    }
    let der = data_encoding::BASE64
        .decode(b64.trim().as_bytes())
        .map_err(|_| invalid("not base64"))?;
    let is_ed25519 =
        der.len() == ED25519_SPKI_PREFIX.len() + 32 && der.starts_with(&ED25519_SPKI_PREFIX);
    if !is_ed25519 {
        return Err(invalid("not an Ed25519 SubjectPublicKeyInfo"));
    }
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ed25519_keys_are_accepted() {
        let key = [7u8; 32];
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&key);
        let b64 = data_encoding::BASE64.encode(&der);
        assert_eq!(ed25519_spki(&b64).unwrap(), der);
        for bad in [
            "".to_owned(),
            "not base64!".to_owned(),
            data_encoding::BASE64.encode(&der[..40]),
            data_encoding::BASE64.encode(&[0u8; 44]),
            "A".repeat(500),
        ] {
            let e = ed25519_spki(&bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid public_key: "), "{bad}: {e}");
        }
    }
}
