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
    /// How far the server's state has got, signed with the grant key (see
    /// [`crate::state`]). An agent that has seen a stamp refuses answers without one or with an
    /// older one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::state::SignedState>,
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

/// What an [`DeviceEvent`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceEventKind {
    /// One command run (or refused) through sudo under a grant; `data` is a [`CommandUse`].
    #[serde(rename = "grant.used")]
    GrantUsed,
    /// What changed on the device while a grant was in force; `data` is a [`ChangeSummary`].
    #[serde(rename = "grant.changes")]
    GrantChanges,
}

impl DeviceEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceEventKind::GrantUsed => "grant.used",
            DeviceEventKind::GrantChanges => "grant.changes",
        }
    }
}

/// `POST /v1/device/events` (mTLS) takes a list of these, oldest first. The agent queues them
/// durably and sends them in order until the server has them; the server records each `id`
/// once, so sending a batch again (after a lost answer or a restart) changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEvent {
    /// Stable across retries: 64 lower-case hex digits (SHA-256 of what identifies the event on
    /// the device, e.g. the grant id and the position of the line in sudo's log).
    pub id: String,
    pub kind: DeviceEventKind,
    pub grant_id: String,
    /// When it happened (RFC 3339).
    pub at: String,
    /// A [`CommandUse`] or a [`ChangeSummary`], by `kind`.
    pub data: serde_json::Value,
}

/// The `data` of a `grant.used` event: one entry of sudo's log for the grant's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandUse {
    /// Who ran sudo.
    pub user: String,
    /// The user the command ran as (`USER=`).
    pub runas: String,
    /// The group, when one was asked for (`GROUP=`).
    #[serde(default)]
    pub group: Option<String>,
    /// The working directory (`PWD=`).
    pub cwd: String,
    /// The command line as sudo logged it (full path, arguments quoted by sudo).
    pub command: String,
    /// The terminal (`TTY=`), absent when sudo ran without one.
    #[serde(default)]
    pub tty: Option<String>,
    /// Whether sudo ran the command; false for `command not allowed`, `a password is required`
    /// and the like, with sudo's words in `refusal`.
    pub allowed: bool,
    #[serde(default)]
    pub refusal: Option<String>,
    /// The time as sudo wrote it (local time of the device, no zone), kept for the auditor:
    /// `at` is that time in UTC when it is plausible, else when the agent read the line.
    pub logged_time: String,
    /// `sudo-log` or `agent` (the logged time was not plausible; see `logged_time`).
    pub time_source: String,
}

/// A package and its version, from dpkg's status file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageVersion {
    pub package: String,
    pub version: String,
}

/// A package whose version changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageChange {
    pub package: String,
    pub from: String,
    pub to: String,
}

/// How many changes there were in all; the lists of a [`ChangeSummary`] are cut short.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeCounts {
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
    pub packages_installed: u64,
    pub packages_removed: u64,
    pub packages_upgraded: u64,
}

/// The `data` of a `grant.changes` event: files under the watched paths and installed packages,
/// compared between when the grant was applied and when it was removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSummary {
    /// The watched paths (system paths, e.g. `/etc`).
    pub watched: Vec<String>,
    /// When the baseline was taken and when the comparison was made (RFC 3339).
    pub since: String,
    pub until: String,
    /// Paths added, changed (content, mode, size or type) and removed, sorted, at most a few
    /// hundred each; `counts` has the totals.
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub packages_installed: Vec<PackageVersion>,
    pub packages_removed: Vec<PackageVersion>,
    pub packages_upgraded: Vec<PackageChange>,
    pub counts: ChangeCounts,
    /// Whether installed packages were compared (false without a dpkg status file).
    pub packages_tracked: bool,
    /// True when a walk stopped at its file limit: changes beyond it are not seen.
    #[serde(default)]
    pub incomplete: bool,
    /// True when no baseline was found (e.g. the grant was applied by an older agent): nothing
    /// could be compared.
    #[serde(default)]
    pub baseline_missing: bool,
}

/// A device event the server did not record, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedEvent {
    pub id: String,
    /// A stable error code (`not_found`, `forbidden`).
    pub code: String,
    pub message: String,
}

/// The answer to `POST /v1/device/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsResponse {
    /// Events recorded now, each as one audit event.
    pub recorded: u32,
    /// Events recorded before (ignored).
    pub duplicates: u32,
    /// Events not recorded: for a grant this server does not know or of another device.
    #[serde(default)]
    pub refused: Vec<RefusedEvent>,
    pub server_time: String,
}
