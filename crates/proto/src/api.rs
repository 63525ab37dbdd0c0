//! JSON bodies of the `/v1` API. Field names are the contract that scripts rely on (DESIGN §9).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::grant::{GrantKind, SignedGrant};

/// Every error the API returns: a stable machine `code` and a one-line human `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// Stable error codes. Clients branch on these, never on messages.
pub mod code {
    pub const INVALID_INPUT: &str = "invalid_input";
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    pub const MFA_REQUIRED: &str = "mfa_required";
    pub const FORBIDDEN: &str = "forbidden";
    /// The device was disabled by an administrator: its agent ends every grant it holds.
    pub const DEVICE_DISABLED: &str = "device_disabled";
    /// The device enrolled again: this agent's certificate was superseded by a newer enrollment.
    /// The superseded agent ends every grant it holds.
    pub const DEVICE_SUPERSEDED: &str = "device_superseded";
    /// The server runs on state older than it has served before (a restore from backup) and
    /// delivers no grants until an administrator acknowledges the restore.
    pub const RESTORE_PENDING: &str = "restore_pending";
    /// Too many attempts from this client or for this account: wait and try again.
    pub const THROTTLED: &str = "throttled";
    pub const POLICY_DENIED: &str = "policy_denied";
    pub const SEPARATION_OF_DUTIES: &str = "separation_of_duties";
    pub const NOT_FOUND: &str = "not_found";
    pub const CONFLICT: &str = "conflict";
    pub const ALREADY_EXISTS: &str = "already_exists";
    pub const INTERNAL: &str = "internal";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    Pending,
    Approved,
    Denied,
    Cancelled,
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantState {
    Issued,
    Active,
    Expired,
    Revoked,
    Completed,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(RequestState { Pending => "pending", Approved => "approved", Denied => "denied", Cancelled => "cancelled", Expired => "expired" });
str_enum!(GrantState { Issued => "issued", Active => "active", Expired => "expired", Revoked => "revoked", Completed => "completed" });

impl GrantState {
    /// Whether the grant is still in force (or about to be).
    pub fn is_live(self) -> bool {
        matches!(self, GrantState::Issued | GrantState::Active)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
    pub totp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub user: String,
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Whoami {
    pub user: String,
    pub groups: Vec<String>,
    pub session_expires_at: String,
    pub mfa_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRequest {
    pub device: String,
    pub role: String,
    pub duration: String,
    #[serde(default)]
    pub ticket: Option<String>,
    pub reason: String,
    /// RFC 3339; the grant window starts here (inside the approved window) instead of at approval.
    #[serde(default)]
    pub start: Option<String>,
}

/// `POST /v1/breakglass`: take the configured break-glass role on `device` at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BreakglassBody {
    pub device: String,
    pub reason: String,
    /// A TOTP code, when the session's second factor is older than `step_up_max_age`.
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub at: String,
}

/// The policy decision recorded with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionView {
    pub outcome: String,
    pub policies: Vec<String>,
    pub explain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub state: RequestState,
    pub user: String,
    pub device: String,
    pub role: String,
    pub duration_seconds: u64,
    pub ticket: Option<String>,
    pub reason: String,
    pub start: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub decided_at: Option<String>,
    pub approvals_required: u32,
    pub approvals: Vec<Approval>,
    pub decision: DecisionView,
    pub grant_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApproveBody {
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DenyBody {
    pub reason: String,
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReasonBody {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantView {
    pub id: String,
    pub request_id: String,
    pub state: GrantState,
    pub user: String,
    pub device: String,
    pub role: String,
    pub runas: String,
    pub commands: Vec<String>,
    pub groups: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub ticket: Option<String>,
    pub approvers: Vec<String>,
    pub kind: GrantKind,
    pub issued_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    pub ended_by: Option<String>,
    pub revocation_confirmed_at: Option<String>,
    pub signed: SignedGrant,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddUser {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Returned once, when a user is created: the initial password and TOTP enrolment URI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserCreated {
    pub name: String,
    pub password: String,
    pub totp_uri: String,
    /// The groups in effect now.
    pub groups: Vec<String>,
    /// Privilege changes this creation made: `pending` ones wait for a second administrator
    /// (`brevet privilege confirm ID`), `unconfirmed` ones are in effect but still need one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<PrivilegeView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub groups: Vec<String>,
    pub enabled: bool,
    pub created_at: String,
    /// Open privilege changes for this person (pending or unconfirmed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<PrivilegeView>,
}

/// A change that gives a person power (approve, break-glass, administration), under the
/// two-person rule: `pending` (waits for a second administrator, no effect yet), `unconfirmed`
/// (in effect on a single-administrator installation, still needs a second administrator),
/// `confirmed` or `rejected`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegeView {
    pub id: String,
    pub user: String,
    /// The group joined; absent when the policy names the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub state: String,
    pub requested_by: String,
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /v1/restore`, and the answer to `POST /v1/restore/acknowledge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreView {
    /// A restore from backup was noticed and waits for acknowledgement; no grants are delivered.
    pub pending: bool,
    /// The restore generation: 1 on a new installation, one more after each acknowledged restore.
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/privileges/{id}/confirm`: a second administrator confirms, with a fresh second
/// factor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupChange {
    pub group: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddDevice {
    pub name: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub os: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub groups: Vec<String>,
    pub os: String,
    pub enabled: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyCheck {
    pub policy: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyCheckResult {
    pub ok: bool,
    pub policies: usize,
}

/// `GET /v1/info`: what a client needs to talk to this server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    pub now: String,
    pub grant_public_key: String,
    /// The Ed25519 key that signs audit checkpoints, base64 (as in the data dir's `audit.pub`).
    #[serde(default)]
    pub audit_public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEventView {
    pub seq: u64,
    pub at: String,
    pub kind: String,
    pub actor: String,
    pub subject: String,
    pub data: serde_json::Value,
    pub leaf_hash: String,
    pub chain_hash: String,
}

/// `POST /v1/notify/webhooks` (admins): where to POST the events people must act on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddWebhook {
    pub url: String,
    /// Signs each delivery (`X-Brevet-Signature`); never returned by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A webhook as the API shows it: the secret only as `has_secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub has_secret: bool,
    pub created_by: String,
    pub created_at: String,
}
