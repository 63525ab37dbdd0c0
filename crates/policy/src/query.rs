//! The question put to the engine: who wants to do what, on which device, in
//! which circumstances.

use std::collections::BTreeMap;

/// `mfa_age_seconds` for a person who has no second factor on record: older
/// than any sensible freshness limit, and still far from overflow.
pub const NO_MFA: i64 = 1 << 31;

/// The Cedar actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Ask for a role on a device.
    Request,
    /// Approve somebody else's request.
    Approve,
    /// Take a role at once, without approval.
    Breakglass,
    /// Let a request through with no human approver.
    AutoApprove,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 4] = [
        Action::Request,
        Action::Approve,
        Action::Breakglass,
        Action::AutoApprove,
    ];

    /// The Cedar action id, as in `Action::"request"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Request => "request",
            Action::Approve => "approve",
            Action::Breakglass => "breakglass",
            Action::AutoApprove => "auto_approve",
        }
    }
}

/// What a person may do to the installation itself (resource `Brevet::"brevet"`): read
/// everybody's records, administer people and devices, and so on. Each is a Cedar action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// One's own requests and grants, and their stories.
    ReadOwn,
    ReadRequests,
    ReadGrants,
    ReadDevices,
    ReadFindings,
    ReadAudit,
    ReadUsers,
    ReadMetrics,
    /// Add people, change their groups, enable and disable them, confirm privilege changes.
    ManagePeople,
    /// Add, enable and disable devices; enrollment tokens.
    ManageDevices,
    /// Cancel anybody's request, revoke any grant.
    ManageRequests,
    ManageNotifications,
    /// Acknowledge a restore from backup.
    ManageRestore,
}

impl Permission {
    /// Every permission, in declaration order.
    pub const ALL: [Permission; 13] = [
        Permission::ReadOwn,
        Permission::ReadRequests,
        Permission::ReadGrants,
        Permission::ReadDevices,
        Permission::ReadFindings,
        Permission::ReadAudit,
        Permission::ReadUsers,
        Permission::ReadMetrics,
        Permission::ManagePeople,
        Permission::ManageDevices,
        Permission::ManageRequests,
        Permission::ManageNotifications,
        Permission::ManageRestore,
    ];

    /// The Cedar action id, as in `Action::"read_grants"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadOwn => "read_own",
            Permission::ReadRequests => "read_requests",
            Permission::ReadGrants => "read_grants",
            Permission::ReadDevices => "read_devices",
            Permission::ReadFindings => "read_findings",
            Permission::ReadAudit => "read_audit",
            Permission::ReadUsers => "read_users",
            Permission::ReadMetrics => "read_metrics",
            Permission::ManagePeople => "manage_people",
            Permission::ManageDevices => "manage_devices",
            Permission::ManageRequests => "manage_requests",
            Permission::ManageNotifications => "manage_notifications",
            Permission::ManageRestore => "manage_restore",
        }
    }

    /// Whether it changes things (the `administration` group) rather than reading them.
    pub fn is_administration(self) -> bool {
        self.as_str().starts_with("manage_")
    }
}

/// One question about a [`Permission`]: may this person do it now?
#[derive(Debug, Clone, Copy)]
pub struct PermissionQuery<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub kind: PrincipalKind,
    pub permission: Permission,
    pub context: &'a ServiceContext,
}

/// The circumstances of a [`PermissionQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceContext {
    /// Seconds since the person's last second factor; [`NO_MFA`] when none.
    pub mfa_age_seconds: i64,
    pub hour_utc: i64,
    /// `"mon"` .. `"sun"`.
    pub weekday: String,
}

impl Default for ServiceContext {
    /// Like [`Context::default`], never claims a fresh second factor.
    fn default() -> Self {
        ServiceContext {
            mfa_age_seconds: NO_MFA,
            hour_utc: 0,
            weekday: String::new(),
        }
    }
}

/// Whether the principal is a person or a workload identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    Human,
    Workload,
}

impl PrincipalKind {
    /// The value of `principal.kind` and `context.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Human => "human",
            PrincipalKind::Workload => "workload",
        }
    }
}

/// One decision to make. Borrows everything, so building one costs nothing.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub kind: PrincipalKind,
    pub action: Action,
    pub device: &'a str,
    pub device_groups: &'a [String],
    pub device_tags: &'a BTreeMap<String, String>,
    pub device_os: &'a str,
    pub role: &'a str,
    pub context: &'a Context,
}

/// The circumstances of a query, as facts the caller has already established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub duration_seconds: i64,
    pub ticket: Ticket,
    /// Seconds since the person's last second factor; [`NO_MFA`] when none.
    pub mfa_age_seconds: i64,
    pub hour_utc: i64,
    /// `"mon"` .. `"sun"`.
    pub weekday: String,
}

impl Default for Context {
    /// Everything zero or empty, except `mfa_age_seconds`, which is [`NO_MFA`]:
    /// a default must never claim a fresh second factor.
    fn default() -> Self {
        Context {
            duration_seconds: 0,
            ticket: Ticket::default(),
            mfa_age_seconds: NO_MFA,
            hour_utc: 0,
            weekday: String::new(),
        }
    }
}

/// What the ticket system said about the ticket named in a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ticket {
    pub present: bool,
    pub id: String,
    pub valid: bool,
    pub state: String,
    pub assignee_matches: bool,
    pub device_listed: bool,
    pub window_ok: bool,
}
