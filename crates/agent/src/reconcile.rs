//! Reconciliation: makes ROOT/etc/sudoers.d agree with the journal, and reports privileged
//! changes made behind the agent's back (drift).
//!
//! - a drop-in of exactly the agent's shape (`brevet_` + 32 lower-case hex digits, a regular
//!   file) that no grant in the journal owns is removed (an orphan);
//! - anything else named `brevet_*` (another shape, or not a regular file) is not the agent's:
//!   it is moved, never deleted, into `STATE_DIR/quarantine` and reported;
//! - the drop-in of a grant in force that is missing, altered or has another mode is rendered
//!   and installed again (through the same checked install);
//! - drift: SHA-256 of `/etc/sudoers` and of each non-Brevet file in `/etc/sudoers.d`, and the
//!   members of the admin groups in `/etc/group` (less the memberships grants added), compared
//!   with a baseline kept in the journal. The first run only records the baseline; each change
//!   after that is reported once (high severity), then becomes the baseline.
//!
//! Every repair is also reported as a drift finding, so the server hears of it. Nothing planted
//! in `/etc/sudoers.d` can stop a reconciliation: files are read through
//! [`crate::linux::sysfile`] (a FIFO, a link, a huge file are refused, never waited on), and a
//! file that cannot be handled becomes a finding instead of an error.

use std::collections::BTreeMap;

use brevet_proto::agent::{Finding, Severity};
use ring::digest::{SHA256, digest};

use crate::clock::Clock;
use crate::enforce::Agent;
use crate::journal::Baseline;
use crate::linux::sysfile::{self, Links};
use crate::linux::{accounts, fsio};
use crate::root::Root;
use crate::sudoers::{self, install};
use crate::system::System;
use crate::{Error, Result};

/// Groups whose members hold root or root-equivalent power.
pub const WATCHED_GROUPS: [&str; 7] = ["sudo", "wheel", "admin", "docker", "lxd", "adm", "root"];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Drop-ins of the agent's shape removed because no grant in the journal owns them.
    pub removed_orphans: Vec<String>,
    /// Entries named `brevet_*` that are not the agent's, and where they were moved.
    pub quarantined: Vec<(String, std::path::PathBuf)>,
    /// Grant ids whose drop-in was restored.
    pub restored: Vec<String>,
    /// What changed since the last run (also queued in the journal for the server).
    pub drift: Vec<Finding>,
}

fn finding(id: String, subject: String, detail: String, remediation: &str) -> Finding {
    Finding {
        id,
        kind: "drift".into(),
        severity: Severity::High,
        subject,
        detail,
        remediation: remediation.into(),
    }
}

/// Runs one reconciliation and saves the journal.
pub fn reconcile<C: Clock, S: System>(agent: &mut Agent<C, S>) -> Result<Report> {
    let mut report = Report::default();
    repair_drop_ins(agent, &mut report)?;
    let managed: Vec<(String, String)> = agent
        .journal
        .active
        .values()
        .flat_map(|e| e.groups.iter().map(|g| (e.doc.user.clone(), g.clone())))
        .collect();
    let now = observe(&agent.root, &managed);
    if let Some(before) = &agent.journal.baseline {
        report.drift.extend(compare(before, &now));
    }
    agent.journal.baseline = Some(now);
    agent
        .journal
        .pending_drift
        .extend(report.drift.iter().cloned());
    agent.journal.save()?;
    Ok(report)
}

fn repair_drop_ins<C: Clock, S: System>(
    agent: &mut Agent<C, S>,
    report: &mut Report,
) -> Result<()> {
    let dir = agent.root.sudoers_d();
    let listing = match install::list(&agent.root) {
        Ok(l) => l,
        Err(e) => {
            report.drift.push(finding(
                "drift:sudoers-d".into(),
                "/etc/sudoers.d".into(),
                format!("`/etc/sudoers.d` cannot be listed: {e}"),
                "check /etc/sudoers.d by hand: it must be a directory owned by root",
            ));
            install::Listing::default()
        }
    };
    for t in listing.temps {
        // Only the agent writes these names; sudo skips them. A leftover that will not go is
        // harmless, and is tried again next time.
        let _ = fsio::remove_if_present(&dir.join(t));
    }
    let owned: BTreeMap<String, String> = agent
        .journal
        .active
        .iter()
        .filter_map(|(id, e)| e.drop_in.clone().map(|n| (n, id.clone())))
        .collect();
    let quarantine = agent.state_dir.join("quarantine");
    let now = agent.clock.now();
    let mut foreign = listing.impostors;
    for name in listing.drop_ins {
        if owned.contains_key(&name) {
            continue;
        }
        let path = dir.join(&name);
        // Only a regular file is the agent's own leftover; a link, FIFO or directory under the
        // agent's name is someone else's work and goes to the quarantine.
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            foreign.push(name.into());
            continue;
        }
        match install::remove_named(&agent.root, &name) {
            Ok(_) => {
                report.drift.push(finding(
                    format!("drift:orphan-drop-in:{name}"),
                    format!("/etc/sudoers.d/{name}"),
                    "a Brevet-named drop-in that no grant owns was found and removed".into(),
                    "find out who wrote it; Brevet drop-ins are written only by brevet-agent",
                ));
                report.removed_orphans.push(name);
            }
            Err(e) => report.drift.push(finding(
                format!("drift:orphan-drop-in:{name}"),
                format!("/etc/sudoers.d/{name}"),
                format!("a Brevet-named drop-in that no grant owns could not be removed: {e}"),
                "remove it by hand; Brevet drop-ins are written only by brevet-agent",
            )),
        }
    }
    for raw in foreign {
        let name = raw.to_string_lossy().into_owned();
        let shown = crate::scan::show(&name);
        let sys = format!("/etc/sudoers.d/{shown}");
        let (detail, moved) =
            match crate::scan::move_to_quarantine(&dir.join(&raw), &quarantine, now) {
                Ok(Some(to)) => (
                    format!(
                        "`{sys}` is named like a Brevet drop-in but is not one; it was moved to \
                         `{}`",
                        to.display()
                    ),
                    Some(to),
                ),
                Ok(None) => continue,
                Err(e) => (
                    format!(
                        "`{sys}` is named like a Brevet drop-in but is not one; moving it to the \
                         quarantine failed: {e}"
                    ),
                    None,
                ),
            };
        report.drift.push(finding(
            format!("drift:impostor-drop-in:{shown}"),
            sys.clone(),
            detail,
            "find out who wrote it: only brevet-agent writes brevet_* drop-ins, each named \
             brevet_ and the 32 hex digits of its grant id",
        ));
        if let Some(to) = moved {
            report.quarantined.push((sys, to));
        }
    }
    let in_force: Vec<String> = agent
        .journal
        .active
        .iter()
        .filter(|(_, e)| e.applied_at.is_some() && e.removing.is_none() && e.drop_in.is_some())
        .map(|(id, _)| id.clone())
        .collect();
    for id in in_force {
        let Some(entry) = agent.journal.active.get(&id) else {
            continue;
        };
        let want = sudoers::render(&entry.doc, agent.time_bounds);
        let state = match (&want, install::installed(&agent.root, &id)) {
            (_, Ok(None)) => "missing".to_owned(),
            (Ok(want), Ok(Some((text, mode)))) if text == *want && mode == install::MODE => {
                continue;
            }
            (_, Ok(Some(_))) => "altered".to_owned(),
            (_, Err(e)) => {
                // Not a regular file (a FIFO, a link, a directory) or too large: keep it as
                // evidence and make room for the real drop-in.
                let path = dir.join(sudoers::file_name(&id)?);
                match crate::scan::move_to_quarantine(&path, &quarantine, now) {
                    Ok(Some(to)) => format!(
                        "replaced by something that is not a drop-in ({e}; moved to `{}`)",
                        to.display()
                    ),
                    Ok(None) => format!("replaced by something that is not a drop-in ({e})"),
                    Err(q) => format!(
                        "replaced by something that is not a drop-in ({e}; it could not be \
                         moved to the quarantine: {q})"
                    ),
                }
            }
        };
        let result = want.and_then(|text| install::install(&agent.root, &agent.system, &id, &text));
        let detail = match &result {
            Ok(_) => format!("the drop-in of grant `{id}` was {state}; it was restored"),
            Err(e) => format!("the drop-in of grant `{id}` was {state}; restoring it failed: {e}"),
        };
        report.drift.push(finding(
            format!("drift:drop-in:{id}"),
            format!("/etc/sudoers.d/{}", sudoers::file_name(&id)?),
            detail,
            "find out who changed /etc/sudoers.d",
        ));
        if result.is_ok() {
            report.restored.push(id);
        }
    }
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(digest(&SHA256, bytes).as_ref())
}

/// What drift compares for one entry: the SHA-256 of a regular file, the target of a link, or
/// why it could not be read (a FIFO or a huge file is named, never waited on).
fn fingerprint(path: &std::path::Path) -> String {
    if let Ok(target) = std::fs::read_link(path) {
        return format!("link:{}", target.display());
    }
    match sysfile::read(path, sysfile::MAX_SYSTEM_FILE, Links::Refuse) {
        Ok(Some(b)) => sha256_hex(&b),
        Ok(None) => "absent".into(),
        Err(Error::File { source, .. }) => format!("unreadable: {source}"),
        Err(e) => format!("unreadable: {e}"),
    }
}

/// The current state of what drift watches. `managed` memberships (granted by Brevet) are left
/// out, so a grant's own change is not reported as drift.
pub fn observe(root: &Root, managed: &[(String, String)]) -> Baseline {
    let mut files = BTreeMap::new();
    let main = root.path("/etc/sudoers");
    if std::fs::symlink_metadata(&main).is_ok() {
        files.insert("/etc/sudoers".to_owned(), fingerprint(&main));
    }
    if let Ok(dir) = std::fs::read_dir(root.sudoers_d()) {
        for entry in dir.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if sudoers::is_drop_in_name(&name) || sudoers::is_temp_name(&name) {
                continue;
            }
            files.insert(format!("/etc/sudoers.d/{name}"), fingerprint(&entry.path()));
        }
    }
    let groups = WATCHED_GROUPS
        .iter()
        .map(|g| {
            let mut m: Vec<String> = accounts::members(root, g)
                .into_iter()
                .filter(|u| !managed.iter().any(|(mu, mg)| mu == u && mg == g))
                .collect();
            m.sort();
            m.dedup();
            ((*g).to_owned(), m)
        })
        .collect();
    Baseline { files, groups }
}

/// What changed from `before` to `now`, one finding per file or membership.
pub fn compare(before: &Baseline, now: &Baseline) -> Vec<Finding> {
    let mut out = Vec::new();
    let paths: std::collections::BTreeSet<&String> =
        before.files.keys().chain(now.files.keys()).collect();
    for path in paths {
        let what = match (before.files.get(path), now.files.get(path)) {
            (None, Some(_)) => "was added",
            (Some(_), None) => "was removed",
            (Some(a), Some(b)) if a != b => "was changed",
            _ => continue,
        };
        out.push(finding(
            format!("drift:file:{path}"),
            path.clone(),
            format!("`{path}` {what} outside Brevet"),
            "review the change; standing sudo rules should go through Brevet roles",
        ));
    }
    let empty = Vec::new();
    let groups: std::collections::BTreeSet<&String> =
        before.groups.keys().chain(now.groups.keys()).collect();
    for g in groups {
        let (a, b) = (
            before.groups.get(g).unwrap_or(&empty),
            now.groups.get(g).unwrap_or(&empty),
        );
        for u in b.iter().filter(|u| !a.contains(u)) {
            out.push(finding(
                format!("drift:group:{g}:{u}"),
                g.clone(),
                format!("`{u}` was added to group `{g}` outside Brevet"),
                "remove the membership, or grant it through a Brevet role",
            ));
        }
        for u in a.iter().filter(|u| !b.contains(u)) {
            out.push(finding(
                format!("drift:group:{g}:{u}"),
                g.clone(),
                format!("`{u}` was removed from group `{g}` outside Brevet"),
                "confirm the change was intended",
            ));
        }
    }
    out
}
