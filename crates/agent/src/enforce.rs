//! The enforcement core: applies verified grants, takes them away on time or on revocation, and
//! closes the fallback paths when it does.
//!
//! Guarantees:
//! - nothing is written for a grant that did not verify ([`crate::verify`]);
//! - a grant is in the journal before its drop-in or group change exists, and a removal's intent
//!   is in the journal before the removal starts, so a crash never leaves privilege the agent
//!   does not know about, and an unfinished removal is retried;
//! - expiry comes from the journal and the local clock only ([`crate::expiry`]); [`Agent::startup`]
//!   removes what expired while the agent was down before doing anything else;
//! - removal deletes the drop-in, undoes the group memberships the grant added, deletes the
//!   user's sudo timestamp records, and ends the processes the user started through sudo; while
//!   another grant of the same user is in force they are kept, and when the last of a run of
//!   overlapping grants ends, every process the user started through sudo since the first of
//!   them started is ended (the start of that run is kept in the journal, `sessions`);
//! - every acknowledgement is queued in the journal, saved, and delivered in order;
//! - the record of use ([`crate::usage`]) is kept alongside: a baseline when a grant is put in
//!   force, sudo's log read on every tick and right before a removal, the changes summarised
//!   after it. A failure there is logged and never stops enforcement.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use brevet_proto::agent::{Ack, AckAction, DeviceEvent, DeviceGrants, Finding};
use brevet_proto::grant::SignedGrant;
use brevet_proto::timefmt;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::expiry;
use crate::journal::{Entry, Journal};
use crate::linux::{accounts, fsio};
use crate::reconcile;
use crate::root::Root;
use crate::sudoers::{self, install};
use crate::system::System;
use crate::usage::{self, Usage};
use crate::verify::{Reason, Refusal, Verifier};
use crate::{Result, account};

/// Warned about in the ack of every group grant (DESIGN §5).
const GROUP_WARNING: &str =
    "supplementary groups stay in sessions that are already open until they end";

pub struct Agent<C: Clock, S: System> {
    pub(crate) root: Root,
    pub(crate) state_dir: PathBuf,
    pub(crate) clock: C,
    pub(crate) system: S,
    pub(crate) verifier: Verifier,
    pub(crate) journal: Journal,
    /// Whether drop-ins carry `NOTBEFORE`/`NOTAFTER` (the local sudo accepts them).
    pub(crate) time_bounds: bool,
    /// Whether removal ends the user's sudo processes (default: on the real root only).
    pub(crate) kill_processes: bool,
    /// Grants refused in this process, so a grant the server keeps delivering is acked once.
    rejected: BTreeSet<String>,
    /// The record of use: sudo's log, baselines, the event queue.
    pub(crate) usage: Usage,
    /// System accounts the administrator allow-listed as grant users ([`crate::account`]).
    system_users: Vec<String>,
    /// The enrollment this agent runs with (`enrollment_id`; empty for older enrollments).
    enrollment: String,
    /// The last refusal of a server-state stamp that was logged (logged once).
    state_refusal_told: Option<String>,
}

impl<C: Clock, S: System> Agent<C, S> {
    /// Opens the journal in `state_dir`. Nothing on the system is touched until
    /// [`startup`](Self::startup).
    pub fn new(
        root: Root,
        state_dir: impl Into<PathBuf>,
        clock: C,
        system: S,
        verifier: Verifier,
    ) -> Result<Self> {
        let state_dir = state_dir.into();
        let journal = Journal::load(&state_dir)?;
        let usage = Usage::open(&root, &state_dir)?;
        Ok(Agent {
            time_bounds: system.supports_time_bounds(),
            kill_processes: root.is_real(),
            root,
            state_dir,
            clock,
            system,
            verifier,
            journal,
            rejected: BTreeSet::new(),
            usage,
            system_users: Vec::new(),
            enrollment: String::new(),
            state_refusal_told: None,
        })
    }

    /// Watches `paths` (system paths) for changes during grants instead of `/etc`.
    pub fn with_watch(mut self, paths: Vec<String>) -> Self {
        self.usage.set_watch(paths);
        self
    }

    /// Allows grants for these system accounts (below `UID_MIN`, UID 0, or not found).
    pub fn with_system_users(mut self, users: Vec<String>) -> Self {
        self.system_users = users;
        self
    }

    pub fn with_kill_processes(mut self, on: bool) -> Self {
        self.kill_processes = on;
        self
    }

    pub fn root(&self) -> &Root {
        &self.root
    }
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }
    pub fn clock(&self) -> &C {
        &self.clock
    }
    pub fn system(&self) -> &S {
        &self.system
    }
    pub fn journal(&self) -> &Journal {
        &self.journal
    }
    pub fn time_bounds(&self) -> bool {
        self.time_bounds
    }
    /// The system paths watched for changes during grants.
    pub fn watched(&self) -> &[String] {
        self.usage.watch()
    }

    /// At start, before any network: removes every grant whose window is over, then reconciles
    /// the drop-ins with the journal, then puts in force grants whose start has come.
    pub fn startup(&mut self) -> Result<Vec<Ack>> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for (id, reason) in expiry::due_removals(&self.journal.active, now) {
            self.remove_into(&id, &reason, now, &mut out)?;
        }
        self.journal.save()?;
        reconcile::reconcile(self)?;
        self.tick_into(now, &mut out)?;
        self.journal.save()?;
        Ok(out)
    }

    /// Takes in the server's list of this device's live grants: removes held grants that are no
    /// longer listed (`revoked`), verifies and records new ones, then applies what is due. An
    /// answer refused as a whole ([`answer`]: superseded enrollment, server state older than seen)
    /// still removes, but every grant in it the agent does not hold is rejected.
    pub fn sync(&mut self, delivered: &DeviceGrants) -> Result<Vec<Ack>> {
        let now = self.clock.now();
        let mut out = Vec::new();
        let refused = self.judge_answer(delivered)?;
        let live: BTreeMap<&str, &SignedGrant> = delivered
            .grants
            .iter()
            .filter(|g| g.state.is_live())
            .map(|g| (g.id.as_str(), &g.signed))
            .collect();
        let gone: Vec<String> = self
            .journal
            .active
            .iter()
            .filter(|(id, e)| e.removing.is_none() && !live.contains_key(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.remove_into(&id, "revoked", now, &mut out)?;
        }
        let server_time =
            timefmt::parse_rfc3339("server_time", &delivered.server_time).map_err(|_| Refusal {
                reason: Reason::Skew,
                message: format!(
                    "the server time `{}` is unreadable, so the clock cannot be checked",
                    delivered.server_time.escape_default()
                ),
            });
        for (&id, signed) in &live {
            if self.journal.active.contains_key(id) {
                continue;
            }
            let verdict = match &refused {
                Some(r) => Err(r.clone()),
                None => server_time.clone(),
            };
            let verdict = verdict
                .and_then(|st| self.verifier.verify(signed, now, Some(st), &self.journal))
                .and_then(|doc| {
                    if doc.grant_id == id {
                        Ok(doc)
                    } else {
                        Err(Refusal {
                            reason: Reason::Invalid,
                            message: format!(
                                "delivered as grant `{id}` but the document is grant `{}`",
                                doc.grant_id
                            ),
                        })
                    }
                })
                .and_then(|doc| {
                    account::check(&self.system, &self.root, &doc.user, &self.system_users)?;
                    Ok(doc)
                });
            match verdict {
                Ok(doc) => {
                    let drop_in = if doc.commands.is_empty() {
                        None
                    } else {
                        Some(sudoers::file_name(&doc.grant_id)?)
                    };
                    self.rejected.remove(id);
                    self.journal.active.insert(
                        id.to_owned(),
                        Entry {
                            signed: (*signed).clone(),
                            doc,
                            applied_at: None,
                            drop_in,
                            groups: Vec::new(),
                            removing: None,
                        },
                    );
                }
                Err(refusal) => {
                    if self.rejected.insert(id.to_owned()) {
                        self.ack(
                            &mut out,
                            id,
                            AckAction::Rejected,
                            Some(refusal.reason.as_str()),
                            json!({ "message": refusal.message }),
                            now,
                        );
                    }
                }
            }
        }
        // Recorded before any drop-in is written.
        self.journal.save()?;
        self.tick_into(now, &mut out)?;
        self.journal.save()?;
        Ok(out)
    }

    /// The timer: removes grants whose window is over (`expired`) and retries unfinished
    /// removals; puts in force grants whose start has come.
    pub fn tick(&mut self) -> Result<Vec<Ack>> {
        let now = self.clock.now();
        let mut out = Vec::new();
        self.tick_into(now, &mut out)?;
        self.journal.save()?;
        Ok(out)
    }

    /// Removes one grant now, giving `reason` in its ack (`revoked`, `expired`, `missing`, …).
    pub fn remove(&mut self, grant_id: &str, reason: &str) -> Result<Vec<Ack>> {
        let now = self.clock.now();
        let mut out = Vec::new();
        self.remove_into(grant_id, reason, now, &mut out)?;
        self.journal.save()?;
        Ok(out)
    }

    /// Removes every grant in force now (the server said this device is disabled). Returns
    /// the acks, which wait in the journal until the server takes them.
    pub fn remove_all(&mut self, reason: &str) -> Result<Vec<Ack>> {
        let now = self.clock.now();
        let ids: Vec<String> = self
            .journal
            .active
            .iter()
            .filter(|(_, e)| e.removing.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in ids {
            self.remove_into(&id, reason, now, &mut out)?;
        }
        self.journal.save()?;
        Ok(out)
    }

    /// When [`tick`](Self::tick) next has something to do (unix seconds; may be in the past).
    pub fn next_deadline(&self) -> Option<i64> {
        expiry::next_deadline(&self.journal.active)
    }

    /// Acknowledgements not yet accepted by the server, oldest first.
    pub fn pending_acks(&self) -> &[Ack] {
        &self.journal.pending_acks
    }

    /// The server accepted the first `count` pending acks.
    pub fn acks_delivered(&mut self, count: usize) -> Result<()> {
        self.journal.acks_delivered(count)
    }

    /// Audit events (`grant.used`, `grant.changes`) not yet accepted by the server, oldest
    /// first, at most `max`.
    pub fn pending_events(&self, max: usize) -> Vec<DeviceEvent> {
        self.usage.pending(max)
    }

    pub fn pending_event_count(&self) -> usize {
        self.usage.pending_len()
    }

    /// The server recorded the first `count` pending events.
    pub fn events_delivered(&mut self, count: usize) -> Result<()> {
        self.usage.delivered(count)
    }

    /// Reads sudo's log and queues what the grants' users ran. Saved with the journal by the
    /// caller; a failure is logged, never returned.
    fn collect_usage(&mut self, now: i64) {
        if let Err(e) = self.usage.collect(&self.root, &mut self.journal, now) {
            eprintln!("brevet-agent: reading `{}`: {e}", usage::SUDO_LOG);
        }
    }

    /// Drift findings not yet reported, oldest first.
    pub fn pending_drift(&self) -> &[Finding] {
        &self.journal.pending_drift
    }

    /// The first `count` drift findings were reported.
    pub fn drift_delivered(&mut self, count: usize) -> Result<()> {
        self.journal.drift_delivered(count)
    }

    fn tick_into(&mut self, now: i64, out: &mut Vec<Ack>) -> Result<()> {
        self.collect_usage(now);
        for (id, reason) in expiry::due_removals(&self.journal.active, now) {
            self.remove_into(&id, &reason, now, out)?;
        }
        for id in expiry::due_activations(&self.journal.active, now) {
            self.activate(&id, now, out)?;
        }
        self.journal.prune_ended(now);
        Ok(())
    }

    fn ack(
        &mut self,
        out: &mut Vec<Ack>,
        grant_id: &str,
        action: AckAction,
        reason: Option<&str>,
        detail: Value,
        now: i64,
    ) {
        let ack = Ack {
            grant_id: grant_id.to_owned(),
            action,
            at: timefmt::rfc3339(now),
            reason: reason.map(str::to_owned),
            detail,
        };
        self.journal.pending_acks.push(ack.clone());
        out.push(ack);
    }

    /// Puts a recorded grant in force: group memberships (recorded first), then the drop-in. On
    /// any failure everything done is undone and the grant is rejected for good.
    fn activate(&mut self, id: &str, now: i64, out: &mut Vec<Ack>) -> Result<()> {
        let Some(mut entry) = self.journal.active.get(id).cloned() else {
            return Ok(());
        };
        let user = entry.doc.user.clone();
        let mut failure: Option<(&str, String)> = None;
        let (mut already, mut to_add) = (Vec::new(), Vec::new());
        // The account is checked again: it may have changed since the grant was accepted.
        if let Err(r) = account::check(&self.system, &self.root, &user, &self.system_users) {
            failure = Some((r.reason.as_str(), r.message));
        } else {
            (already, to_add) = entry
                .doc
                .groups
                .iter()
                .cloned()
                .partition(|g| accounts::members(&self.root, g).contains(&user));
            entry.groups = to_add.clone();
            self.journal.active.insert(id.to_owned(), entry.clone());
            self.journal.save()?;
            // The baseline of what changes during the grant, before anything changes.
            if let Err(e) = self.usage.applied(&self.root, id, now) {
                eprintln!("brevet-agent: grant `{id}`: no baseline of changes: {e}");
            }
            for g in &to_add {
                if let Err(e) = self.system.group_add(&user, g) {
                    failure = Some(("group", e.to_string()));
                    break;
                }
            }
        }
        let mut drop_in_path = None;
        if failure.is_none() && entry.drop_in.is_some() {
            if let Err(e) = usage::ensure_log_dir(&self.root) {
                eprintln!("brevet-agent: sudo cannot log the commands of grant `{id}`: {e}");
            }
            let installed = sudoers::render(&entry.doc, self.time_bounds)
                .and_then(|text| install::install(&self.root, &self.system, id, &text));
            match installed {
                Ok(_) => {
                    drop_in_path = sudoers::file_name(id)
                        .ok()
                        .map(|n| format!("/etc/sudoers.d/{n}"))
                }
                Err(e) => failure = Some(("sudoers", e.to_string())),
            }
        }

        if let Some((reason, message)) = failure {
            // Undo with the removal machinery, then report a rejection instead of a removal.
            let mut undo = Vec::new();
            self.remove_into(id, reason, now, &mut undo)?;
            if self.journal.active.contains_key(id) {
                return Ok(()); // the undo did not finish; it is retried like any removal
            }
            self.journal.pending_acks.retain(|a| !undo.contains(a));
            self.usage.discard(id);
            self.rejected.insert(id.to_owned());
            self.ack(
                out,
                id,
                AckAction::Rejected,
                Some(reason),
                json!({ "message": message }),
                now,
            );
            return Ok(());
        }

        entry.applied_at = Some(now);
        self.journal.active.insert(id.to_owned(), entry.clone());
        // The user's run of overlapping grants started at the earliest start among them.
        let start = entry.window().0;
        self.journal
            .sessions
            .entry(user.clone())
            .and_modify(|s| *s = (*s).min(start))
            .or_insert(start);
        let mut detail = json!({
            "drop_in": drop_in_path,
            "time_bounds": drop_in_path.is_some() && self.time_bounds,
            "groups_added": to_add,
            "groups_already_member": already,
            "not_after": entry.doc.not_after,
        });
        if !entry.doc.groups.is_empty() {
            detail["warning"] = json!(GROUP_WARNING);
        }
        self.ack(out, id, AckAction::Applied, None, detail, now);
        self.journal.save()
    }

    /// Takes a grant away. The intent is saved first; if the drop-in or a group membership
    /// cannot be removed, the entry stays (marked) and the removal is retried by the timer.
    fn remove_into(&mut self, id: &str, reason: &str, now: i64, out: &mut Vec<Ack>) -> Result<()> {
        let Some(mut entry) = self.journal.active.get(id).cloned() else {
            return Ok(());
        };
        if entry.removing.is_none() {
            entry.removing = Some(reason.to_owned());
            self.journal.active.insert(id.to_owned(), entry.clone());
            self.journal.save()?;
        }
        // What was run so far still belongs to this grant.
        if entry.applied_at.is_some() {
            self.collect_usage(now);
        }
        let user = entry.doc.user.clone();
        let mut errors: Vec<String> = Vec::new();
        let mut unfinished = false;

        let drop_in = match install::remove(&self.root, id) {
            Ok(true) => sudoers::file_name(id)
                .ok()
                .map(|n| format!("/etc/sudoers.d/{n}")),
            Ok(false) => None,
            Err(e) => {
                errors.push(e.to_string());
                unfinished = true;
                None
            }
        };
        let mut groups_removed = Vec::new();
        for g in &entry.groups {
            match self.system.group_remove(&user, g) {
                Ok(()) => groups_removed.push(g.clone()),
                Err(e) => {
                    errors.push(e.to_string());
                    unfinished = true;
                }
            }
        }
        let (timestamps_removed, ts_errors) =
            remove_timestamps(&self.root, &user, self.system.uid(&user).ok().flatten());
        errors.extend(ts_errors);

        // Processes the user started through sudo end when the last of their overlapping grants
        // ends: all of them since the first of those grants started, not only since this one
        // started (a shell opened under an earlier grant must not outlive a later one).
        let other_in_force = self.journal.active.iter().any(|(other, e)| {
            other != id && e.doc.user == user && e.removing.is_none() && e.applied_at.is_some()
        });
        let last_of_run = entry.applied_at.is_some() && !other_in_force;
        let since = self
            .journal
            .sessions
            .get(&user)
            .copied()
            .unwrap_or(i64::MAX)
            .min(entry.window().0);
        let uid = self.system.uid(&user).ok().flatten();
        let processes_ended: Vec<u32> = if self.kill_processes && last_of_run {
            let pids = self.system.sudo_processes(&user, uid, since);
            if pids.is_empty() {
                pids
            } else {
                self.system.terminate(&pids)
            }
        } else {
            Vec::new()
        };

        if unfinished {
            eprintln!(
                "brevet-agent: removal of grant `{id}` is incomplete, will retry: {}",
                errors.join("; ")
            );
            return Ok(());
        }
        self.journal.active.remove(id);
        self.journal
            .record_ended(id, now, entry.window().1, self.verifier.max_skew_secs);
        if last_of_run {
            self.journal.sessions.remove(&user);
        }
        if entry.applied_at.is_none() {
            self.usage.discard(id);
        } else if let Err(e) = self.usage.ended(&self.root, &mut self.journal, &entry, now) {
            eprintln!("brevet-agent: grant `{id}`: changes not recorded: {e}");
        }
        let detail = json!({
            "drop_in": drop_in,
            "timestamps_removed": timestamps_removed,
            "processes_ended": processes_ended,
            "processes_kept": other_in_force && self.kill_processes,
            "processes_since": last_of_run.then(|| timefmt::rfc3339(since)),
            "groups_removed": groups_removed,
            "errors": errors,
        });
        self.ack(out, id, AckAction::Removed, Some(reason), detail, now);
        Ok(())
    }
}

/// Deletes the user's sudo timestamp records (`/run/sudo/ts/<user>`, sudo-rs
/// `/var/run/sudo-rs/ts/<uid>`); returns the system paths removed, and errors.
fn remove_timestamps(root: &Root, user: &str, uid: Option<u32>) -> (Vec<String>, Vec<String>) {
    let mut paths = vec![format!("/run/sudo/ts/{user}")];
    if let Some(uid) = uid {
        paths.push(format!("/var/run/sudo-rs/ts/{uid}"));
    }
    let (mut removed, mut errors) = (Vec::new(), Vec::new());
    for p in paths {
        match fsio::remove_if_present(&root.path(&p)) {
            Ok(true) => removed.push(p),
            Ok(false) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    (removed, errors)
}

mod answer;

#[cfg(test)]
pub(crate) mod tests;
