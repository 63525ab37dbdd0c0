//! Bodies of the agent API: enrollment, grant delivery, acknowledgements, renewal and reports.
//!
//! Everything after enrollment travels over mutual TLS; the server takes the device name from
//! the client certificate, never from a body.

use serde::{Deserialize, Serialize};

use crate::api::GrantState;
use crate::grant::SignedGrant;

/// `POST /v1/enroll` (server TLS only; the one-time token authenticates).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub token: String,
    /// The device's public key as base64 DER SubjectPublicKeyInfo (Ed25519). The private key
    /// never leaves the device.
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub device: String,
    /// Client certificate for mutual TLS, bound to the device name.
    pub cert_pem: String,
    pub cert_not_after: String,
    pub ca_pem: String,
    /// The Ed25519 grant-signing public key the agent pins (base64, 32 bytes).
    pub grant_public_key: String,
    pub server_time: String,
}

/// `POST /v1/device/renew` (mTLS): a new certificate for a new key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenewResponse {
    pub cert_pem: String,
    pub cert_not_after: String,
}

/// One grant as delivered to its device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredGrant {
    pub id: String,
    pub state: GrantState,
    pub signed: SignedGrant,
}

/// `GET /v1/device/grants?cursor=C&wait=SECS` (mTLS, long-poll): the device's live grants.
///
/// The server answers at once when anything changed for this device since `cursor` (or the
/// cursor is from another server process), otherwise when something changes or `wait` runs
/// out. A grant the agent holds that is not in `grants` has ended and must be removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceGrants {
    pub cursor: String,
    pub server_time: String,
    pub grants: Vec<DeliveredGrant>,
}

/// What the agent did with a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckAction {
    /// The drop-in (or group membership) is in force.
    Applied,
    /// The grant's privileges are gone from the device.
    Removed,
    /// The agent refused the grant (signature, device, window, replay, skew).
    Rejected,
}

/// `POST /v1/device/acks` (mTLS). Acks are queued on the device while the server is away and
/// delivered in order; the server ignores duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub grant_id: String,
    pub action: AckAction,
    /// When the agent did it (device clock, RFC 3339).
    pub at: String,
    /// Why (for `rejected`), or which trigger removed it: `expired`, `revoked`, `missing`.
    #[serde(default)]
    pub reason: Option<String>,
    /// What was done: files written or removed, timestamp records deleted, processes ended.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// The answer to `POST /v1/device/acks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckResponse {
    /// Acks recorded now.
    pub recorded: u32,
    /// Acks the server had already recorded (ignored).
    pub duplicates: u32,
    pub server_time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// A standing-privilege finding or a drift observation on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable key, e.g. `group-member:sudo:bob`, so the same finding is recognised across scans.
    pub id: String,
    /// e.g. `admin_group_member`, `foreign_sudoers_rule`, `nopasswd`, `uid0_account`.
    pub kind: String,
    pub severity: Severity,
    /// The user, group, file or rule concerned.
    pub subject: String,
    pub detail: String,
    pub remediation: String,
}

/// `POST /v1/device/report` (mTLS): the latest scan and drift seen, replacing the previous one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceReport {
    pub agent_version: String,
    pub agent_time: String,
    pub mode: String,
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub drift: Vec<Finding>,
}

/// The answer to `POST /v1/device/report`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportResponse {
    pub findings: usize,
    pub drift: usize,
    pub server_time: String,
}

/// `GET /v1/findings[?device=D]` (people): the latest report per device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceFindings {
    pub device: String,
    pub reported_at: String,
    pub findings: Vec<Finding>,
    pub drift: Vec<Finding>,
}

/// `POST /v1/devices/{name}/enroll-token` (admins).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollToken {
    pub device: String,
    pub token: String,
    pub expires_at: String,
}
