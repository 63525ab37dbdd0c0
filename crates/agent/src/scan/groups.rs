//! `admin_group_member`: standing membership of admin and root-equivalent groups.
//!
//! The table below is the one place that says which groups count and how bad each is. Members
//! come from `/etc/group` and from primary groups in `/etc/passwd`. `root`, allow-listed users
//! and the break-glass user are not reported: root already is root, and the other two are
//! standing rights the administrator chose to keep.

use brevet_proto::agent::{Finding, Severity};

use super::accounts::{Accounts, Via};
use super::{Allowlist, finding};

pub(crate) struct AdminGroup {
    pub name: &'static str,
    pub severity: Severity,
    /// Why membership is privileged, for the finding's detail.
    pub why: &'static str,
}

// Severities. Critical: membership is root with no password, no sudo rule and no sudo log entry,
// in one command. High: root through sudo (password asked and logged), or root-equivalent by an
// indirect path. Medium/low: reads secrets, no write.
//
// - docker, lxd, incus-admin: critical. The container daemon's socket runs a privileged
//   container with the host's `/` mounted (`docker run -v /:/host …`): root, silently.
// - disk: critical. Raw read/write of block devices reads /etc/shadow and rewrites any file
//   (`debugfs -w`), bypassing every permission check and log.
// - sudo, wheel, admin: high. These are the standing admin rights Brevet replaces; sudo still
//   asks for a password (unless NOPASSWD, reported on its own) and logs every command.
// - root (gid 0): high. Not uid 0 itself, but group-root-writable files and `pam_wheel`
//   setups (`su` restricted to group root) make it a short, well-known escalation path.
// - libvirt: high. `qemu:///system` can attach the host's disks to a guest: root-equivalent,
//   but through several visible steps.
// - shadow: medium. Reads every password hash for offline cracking; no direct write.
// - adm: low. Reads system logs, which can leak secrets; no write.
pub(crate) const ADMIN_GROUPS: &[AdminGroup] = &[
    AdminGroup {
        name: "docker",
        severity: Severity::Critical,
        why: "the docker socket starts a privileged container with the host's `/` mounted: \
              root without a password or a sudo log",
    },
    AdminGroup {
        name: "lxd",
        severity: Severity::Critical,
        why: "lxd runs privileged containers with host mounts: root without a password or a \
              sudo log",
    },
    AdminGroup {
        name: "incus-admin",
        severity: Severity::Critical,
        why: "incus runs privileged containers with host mounts: root without a password or a \
              sudo log",
    },
    AdminGroup {
        name: "disk",
        severity: Severity::Critical,
        why: "raw access to block devices reads and rewrites any file, bypassing permissions",
    },
    AdminGroup {
        name: "sudo",
        severity: Severity::High,
        why: "the distribution's sudoers gives this group full root through sudo",
    },
    AdminGroup {
        name: "wheel",
        severity: Severity::High,
        why: "the distribution's sudoers gives this group full root through sudo",
    },
    AdminGroup {
        name: "admin",
        severity: Severity::High,
        why: "older Ubuntu sudoers gives this group full root through sudo",
    },
    AdminGroup {
        name: "root",
        severity: Severity::High,
        why: "group root can write group-root files and often use `su`: a short path to root",
    },
    AdminGroup {
        name: "libvirt",
        severity: Severity::High,
        why: "libvirt can attach the host's disks to a virtual machine: root-equivalent",
    },
    AdminGroup {
        name: "shadow",
        severity: Severity::Medium,
        why: "it reads /etc/shadow, every password hash, for offline cracking",
    },
    AdminGroup {
        name: "adm",
        severity: Severity::Low,
        why: "it reads system logs, which can contain secrets",
    },
];

pub(crate) fn admin_group(name: &str) -> Option<&'static AdminGroup> {
    ADMIN_GROUPS.iter().find(|g| g.name == name)
}

/// Whether a user's admin-group membership is never reported nor removed.
pub(crate) fn exempt(user: &str, allow: &Allowlist) -> bool {
    user == "root"
        || allow.users.iter().any(|u| u == user)
        || allow.breakglass_user.as_deref() == Some(user)
}

pub(crate) fn findings(acc: &Accounts, allow: &Allowlist, out: &mut Vec<Finding>) {
    for g in ADMIN_GROUPS {
        for (user, via) in acc.members(g.name) {
            if exempt(&user, allow) {
                continue;
            }
            let group = g.name;
            let (source, remediation) = match via {
                Via::Listed => (
                    "listed in /etc/group",
                    format!(
                        "remove `{user}` from `{group}` (`gpasswd -d {user} {group}`) and grant \
                         the access just in time through Brevet; if it must stay, add `{user}` \
                         to the scan allow-list"
                    ),
                ),
                Via::Primary => (
                    "its primary group in /etc/passwd",
                    format!(
                        "give `{user}` another primary group (`usermod -g GROUP {user}`; \
                         `gpasswd` cannot remove a primary group) and grant `{group}` just in \
                         time through Brevet; if it must stay, add `{user}` to the allow-list"
                    ),
                ),
                Via::Both => (
                    "listed in /etc/group and its primary group",
                    format!(
                        "remove `{user}` from `{group}` (`gpasswd -d {user} {group}`), give it \
                         another primary group (`usermod -g GROUP {user}`) and grant the access \
                         just in time through Brevet"
                    ),
                ),
            };
            out.push(finding(
                format!("group-member:{group}:{user}"),
                super::KIND_ADMIN_GROUP_MEMBER,
                g.severity,
                &user,
                format!("`{user}` is in `{group}` ({source}): {}", g.why),
                remediation,
            ));
        }
    }
}
