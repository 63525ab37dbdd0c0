//! Standing-privilege scan (`brevet-agent scan`, DESIGN §5): finds the admin rights that exist
//! outside Brevet's just-in-time grants, and in enforce mode takes them away.
//!
//! [`scan`] only reads, and only inside the [`Root`]: `/etc/passwd` and `/etc/group`
//! ([`accounts`], [`groups`]), the sudoers tree ([`sudoers`], read with [`lexer`]), root's
//! `authorized_keys` and sudo's timestamp records ([`timestamps`]). Each [`Finding`] has a stable
//! `id`, a `kind` (the `KIND_*` constants), a severity and a sentence an administrator can act
//! on. Odd input never panics the scan: a file that cannot be read becomes a `scan_error`
//! finding, so an incomplete scan says so.
//!
//! [`remediate`] acts on findings (enforce mode): it removes supplementary admin-group members
//! through a callback and moves foreign drop-ins into a quarantine directory. It never touches
//! `/etc/sudoers`, a `brevet_*` drop-in, `root`, the break-glass user or anything allow-listed.

mod accounts;
pub(crate) mod files;
mod groups;
pub(crate) mod lexer;
mod remediate;
mod sudoers;
mod timestamps;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt::Display;

use brevet_proto::agent::{Finding, Severity};
use serde::{Deserialize, Serialize};

use crate::root::Root;

pub(crate) use remediate::move_to_quarantine;
pub use remediate::{Remedy, remediate, remediate_at};

/// Member of an admin or root-equivalent group (`group-member:<group>:<user>`).
pub const KIND_ADMIN_GROUP_MEMBER: &str = "admin_group_member";
/// A sudoers user specification Brevet did not write (`sudoers-rule:<file>:<line>`).
pub const KIND_FOREIGN_SUDOERS_RULE: &str = "foreign_sudoers_rule";
/// A `%group` rule in /etc/sudoers, with the group's members (`sudoers-rule:<file>:<line>`).
pub const KIND_GROUP_SUDO_RULE: &str = "group_sudo_rule";
/// A rule tagged `NOPASSWD:` (`nopasswd:<file>:<line>`).
pub const KIND_NOPASSWD: &str = "nopasswd";
/// `Defaults … !authenticate` (`no-authenticate:<file>:<line>`).
pub const KIND_NO_AUTHENTICATE: &str = "no_authenticate";
/// Non-zero `timestamp_timeout`, `!tty_tickets`, `timestamp_type=global`
/// (`cached-credentials:<file>:<line>`).
pub const KIND_CACHED_CREDENTIALS: &str = "cached_credentials";
/// A UID 0 account other than root (`uid0-account:<user>`).
pub const KIND_UID0_ACCOUNT: &str = "uid0_account";
/// Keys in root's `authorized_keys` (`root-authorized-keys:<file>`).
pub const KIND_ROOT_AUTHORIZED_KEYS: &str = "root_authorized_keys";
/// A live sudo timestamp record (`sudo-timestamp:<file>`).
pub const KIND_SUDO_TIMESTAMP: &str = "sudo_timestamp";
/// A file the scan could not read or an include it did not follow (`scan-error:<path>`).
pub const KIND_SCAN_ERROR: &str = "scan_error";

/// What enforce mode keeps, and what the scan does not report as an admin-group member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Allowlist {
    /// Users whose admin-group memberships are intended.
    pub users: Vec<String>,
    /// File names in /etc/sudoers.d that are sanctioned: their rules are not foreign and they
    /// are never quarantined (`NOPASSWD`/`!authenticate`/caching in them are still reported).
    pub sudoers_files: Vec<String>,
    /// The break-glass account: never reported as a group member, never removed, and a
    /// drop-in that grants it is never quarantined.
    pub breakglass_user: Option<String>,
}

/// Reports every standing privilege under `root`, most severe first, then by `id`.
pub fn scan(root: &Root, allow: &Allowlist) -> Vec<Finding> {
    let mut out = Vec::new();
    let acc = accounts::Accounts::load(root, &mut out);
    groups::findings(&acc, allow, &mut out);
    accounts::uid0_findings(&acc, &mut out);
    sudoers::findings(root, &acc, allow, &mut out);
    accounts::root_key_findings(root, &acc, &mut out);
    timestamps::findings(root, &acc, &mut out);
    let mut seen = HashSet::new();
    out.retain(|f| seen.insert(f.id.clone()));
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
    out
}

pub(crate) fn finding(
    id: String,
    kind: &str,
    severity: Severity,
    subject: &str,
    detail: String,
    remediation: String,
) -> Finding {
    Finding {
        id,
        kind: kind.to_string(),
        severity,
        subject: subject.to_string(),
        detail,
        remediation,
    }
}

/// A `scan_error` finding: the scan is incomplete for `path`.
pub(crate) fn scan_error(path: &str, err: &dyn Display) -> Finding {
    finding(
        format!("scan-error:{path}"),
        KIND_SCAN_ERROR,
        Severity::Medium,
        path,
        format!("{err}; standing privileges it grants are missing from this scan"),
        format!("check `{path}` by hand (owner, permissions, type) and run the scan again"),
    )
}

/// Text from a scanned file made safe to quote in a finding: control characters replaced,
/// at most 160 characters.
pub(crate) fn show(text: &str) -> String {
    const MAX: usize = 160;
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}
