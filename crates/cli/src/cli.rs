//! The command line of `brevet` (DESIGN §9), as clap derive types.
//!
//! Only the shape is decided here; values are validated with `brevet_proto::validate` by the
//! commands, so the error names the input and nothing invalid leaves the machine.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// brevet: ask for, approve and end just-in-time admin rights on endpoints.
#[derive(Debug, Parser)]
#[command(name = "brevet", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Connection and output options, accepted before or after the subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct Global {
    /// Server URL, e.g. https://brevet.example.com:8443 (default: the saved session's)
    #[arg(long, global = true, env = "BREVET_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// CA certificate (PEM) the server's certificate chains to (default: the saved session's)
    #[arg(long, global = true, env = "BREVET_CA", value_name = "FILE", value_parser = any_path)]
    pub ca: Option<PathBuf>,
    /// Session token (default: the saved session's)
    #[arg(long, global = true, env = "BREVET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API objects as JSON (arrays for listings)
    #[arg(long, global = true)]
    pub json: bool,
}

/// Like clap's path parser, but lets an empty value through (`BREVET_CA=` counts as unset).
fn any_path(s: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(s))
}

impl Global {
    /// Treats an empty value (`BREVET_SERVER=` in the environment) as not given.
    pub(crate) fn without_empty_values(self) -> Global {
        Global {
            server: self.server.filter(|s| !s.is_empty()),
            ca: self.ca.filter(|p| !p.as_os_str().is_empty()),
            token: self.token.filter(|t| !t.is_empty()),
            json: self.json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in and keep the session for later commands
    Login(LoginArgs),
    /// End the session and forget it
    Logout,
    /// Show who the session belongs to
    Whoami,
    /// Manage user accounts (admin)
    #[command(subcommand)]
    User(UserCommand),
    /// Add users to groups or remove them (admin)
    #[command(subcommand)]
    Group(GroupCommand),
    /// Register, list, enroll, disable and enable devices (admin)
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Changes that give power (approve, break-glass, administration): a second
    /// administrator confirms or rejects them
    #[command(subcommand)]
    Privilege(PrivilegeCommand),
    /// A restore of the server's database from backup: see whether one waits, acknowledge it
    #[command(subcommand)]
    Restore(RestoreCommand),
    /// Ask for a role on a device
    Request(RequestArgs),
    /// List requests
    Requests {
        /// Only requests waiting for a decision
        #[arg(long)]
        pending: bool,
    },
    /// Approve a pending request
    Approve {
        /// Request id
        id: String,
        /// A current TOTP code (step-up; needed when the last one is older than 5 minutes)
        #[arg(long)]
        totp: Option<String>,
    },
    /// Emergency: take the configured break-glass role on a device at once, without an
    /// approver (policy and a fresh second factor still apply; every use raises an alert)
    Breakglass {
        #[arg(long)]
        device: String,
        #[arg(long, allow_hyphen_values = true)]
        reason: String,
        /// A current TOTP code (step-up; needed when the last one is older than 5 minutes)
        #[arg(long)]
        totp: Option<String>,
    },
    /// Deny a pending request
    Deny {
        /// Request id
        id: String,
        #[arg(long, allow_hyphen_values = true)]
        reason: String,
        /// A current TOTP code (step-up)
        #[arg(long)]
        totp: Option<String>,
    },
    /// Withdraw your own pending request
    Cancel {
        /// Request id
        id: String,
    },
    /// List grants (`brevet grants show ID` tells one grant's whole story)
    #[command(args_conflicts_with_subcommands = true)]
    Grants {
        /// Only grants in force (issued or active)
        #[arg(long)]
        active: bool,
        /// Only grants on this device
        #[arg(long, value_name = "D")]
        device: Option<String>,
        #[command(subcommand)]
        show: Option<GrantCommand>,
    },
    /// Show one grant
    #[command(subcommand)]
    Grant(GrantCommand),
    /// End a grant early
    Revoke {
        /// Grant id
        id: String,
        #[arg(long, allow_hyphen_values = true)]
        reason: String,
    },
    /// Say the task is done: end your grant now
    Done {
        /// Grant id
        id: String,
    },
    /// Show the standing-privilege findings and drift devices reported
    Findings {
        /// Only this device
        #[arg(long, value_name = "D")]
        device: Option<String>,
    },
    /// A compliance report: requests, grants, break-glass, unconfirmed removals, findings
    Report {
        /// Start of the period (RFC 3339; default: 30 days ago); it ends now
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Write the report as a self-contained HTML page to FILE and print its path
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Export, search and verify the audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Work with policy files
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Webhooks told at once about requests to approve, decisions, break-glass and alerts (admin)
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Print the current TOTP code for an otpauth:// URI (a stand-in for an authenticator app in
    /// demos and scripts; keep real secrets in an authenticator)
    Totp {
        /// The otpauth:// URI that `brevet user add` or `brevetd init` printed
        #[arg(long)]
        uri: String,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// The six-digit code from your authenticator app
    #[arg(long, value_name = "CODE")]
    pub totp: Option<String>,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    #[arg(long, value_name = "D")]
    pub device: String,
    #[arg(long, value_name = "R")]
    pub role: String,
    /// How long, with a unit: 30m, 2h, 1h30m
    #[arg(long, allow_hyphen_values = true)]
    pub duration: String,
    /// Ticket or change record, e.g. CHG-1234
    #[arg(long, value_name = "T")]
    pub ticket: Option<String>,
    /// What the elevation is for
    #[arg(long, allow_hyphen_values = true)]
    pub reason: String,
    /// Start of the grant window (RFC 3339), inside the approved change window
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints the initial password and TOTP URI once
    Add {
        name: String,
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
    },
    /// List users
    List,
    /// Stop a user from signing in
    Disable { name: String },
    /// Let a disabled user sign in again (also lifts a lock after failed logins)
    Enable { name: String },
}

#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Whether a restore waits for acknowledgement, and the restore generation
    Status,
    /// Acknowledge the restore: grants issued before it are revoked, requests still pending
    /// from before it cancelled, and delivery resumes (needs a fresh second factor)
    Acknowledge {
        /// A current TOTP code (step-up; needed when the last one is older than 5 minutes)
        #[arg(long)]
        totp: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrivilegeCommand {
    /// List changes (all, or in one state: pending, unconfirmed, confirmed, rejected)
    List {
        #[arg(long, value_parser = ["pending", "unconfirmed", "confirmed", "rejected"])]
        state: Option<String>,
    },
    /// Confirm a change someone else asked for (needs a fresh second factor)
    Confirm {
        id: String,
        /// A current TOTP code (step-up; needed when the last one is older than 5 minutes)
        #[arg(long)]
        totp: Option<String>,
    },
    /// Refuse a change; one already in effect (unconfirmed) is taken back
    Reject {
        id: String,
        #[arg(long, allow_hyphen_values = true)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Add USER to GROUP
    Add { user: String, group: String },
    /// Remove USER from GROUP
    Remove { user: String, group: String },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a device
    Add {
        name: String,
        /// A tag key=value (repeatable)
        #[arg(long = "tag", value_name = "K=V")]
        tags: Vec<String>,
        /// A device group (repeatable)
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        /// Operating system, e.g. linux
        #[arg(long)]
        os: Option<String>,
    },
    /// List devices
    List,
    /// Make a one-time enrollment token (valid 1 h) for `brevet-agent enroll`
    EnrollToken { name: String },
    /// Refuse the device's agent at once (its certificate stops working)
    Disable { name: String },
    /// Let a disabled device's agent connect again
    Enable { name: String },
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Show one grant in full, with its story from the audit trail
    Show { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print audit events, oldest first (what `audit verify` checks)
    Export {
        #[arg(long, value_enum, default_value_t = AuditFormat::Jsonl)]
        format: AuditFormat,
        /// Only events at or after this time (RFC 3339); such an export cannot be checked
        /// against a checkpoint
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
    /// Save the latest signed checkpoint: what an outside witness keeps
    Checkpoint {
        /// Write it to FILE instead of standard output
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Check the signature with this key (a file such as audit.pub, or its base64) rather
        /// than the one the server announces
        #[arg(long, value_name = "PUBKEY")]
        key: Option<String>,
        /// Also prove, with the server's consistency proof, that it extends this older
        /// checkpoint
        #[arg(long, value_name = "FILE")]
        extends: Option<PathBuf>,
    },
    /// Verify an export offline: the hash chain, and with --checkpoint that the export
    /// extends it
    Verify {
        /// A JSON-lines export (`brevet audit export`)
        file: PathBuf,
        /// The audit public key: the server's audit.pub file, or its base64
        #[arg(long, value_name = "PUBKEY")]
        key: String,
        /// A checkpoint saved earlier with `brevet audit checkpoint`
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Find events by person, device, ticket, grant, kind or time
    Search(AuditSearchArgs),
}

#[derive(Debug, Args)]
pub struct AuditSearchArgs {
    /// Events by or about this person
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    #[arg(long, value_name = "D")]
    pub device: Option<String>,
    #[arg(long, value_name = "T")]
    pub ticket: Option<String>,
    /// Everything about one grant and its request
    #[arg(long, value_name = "ID")]
    pub grant: Option<String>,
    /// Only events of this kind, e.g. grant.used
    #[arg(long, value_name = "K")]
    pub kind: Option<String>,
    /// Only events at or after this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many events (the oldest that match)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// One JSON object per line
    Jsonl,
    /// OCSF 1.3 events, one JSON object per line
    Ocsf,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Add a webhook (https://; plain http:// only to 127.0.0.1 or localhost)
    Add {
        #[arg(long, value_name = "URL")]
        webhook: String,
        /// Signs each delivery: X-Brevet-Signature: sha256=HMAC-SHA256(body) (16-256 characters)
        #[arg(
            long,
            value_name = "S",
            env = "BREVET_WEBHOOK_SECRET",
            hide_env_values = true
        )]
        secret: Option<String>,
    },
    /// List webhooks (secrets are never shown)
    List,
    /// Remove a webhook
    Remove {
        /// Webhook id
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a Cedar policy file against the Brevet schema (no server needed)
    Check { file: PathBuf },
}
