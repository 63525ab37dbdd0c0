//! The record of use: what was run under each grant, and what changed while it was in force.
//!
//! - Every drop-in tells sudo to log the grant user's commands to [`SUDO_LOG`] (sudo's default
//!   text format). [`Usage::collect`] reads what was added since the position saved in the
//!   journal ([`tail`]), parses it ([`sudolog`]), ties each entry to the grant of that user that
//!   was in force when it was written, and queues a `grant.used` event. Collection runs on every
//!   timer tick and right before a grant is removed, so its last commands are still tied to it.
//! - When a grant is applied a baseline of the watched paths and packages is saved in
//!   `STATE_DIR/baselines/`; when it is removed the difference is queued as `grant.changes`
//!   ([`changes`]).
//! - Events wait in a durable queue ([`queue`]) that the run loop delivers in order.
//!
//! Times: sudo writes local time without a zone (and the invoking user can skew it with `TZ`),
//! so a logged time is converted with the device's zone ([`localtime`]) and used only when it
//! falls between the previous read of the log and now; otherwise the event carries the time the
//! agent read the line, and says so. Nothing here stands in the way of enforcement: the caller
//! logs a failure and goes on.

pub mod changes;
pub mod localtime;
pub mod queue;
pub mod sudolog;
pub mod tail;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use brevet_proto::agent::{ChangeSummary, CommandUse, DeviceEvent, DeviceEventKind};
use brevet_proto::timefmt::rfc3339;
use brevet_proto::validate;
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

use crate::journal::{Entry, Journal};
use crate::linux::fsio;
use crate::root::Root;
use crate::{Error, Result};
use changes::Snapshot;
use localtime::Zone;
use queue::Queue;
use tail::LogCursor;

/// Brevet's sudo log directory (mode 0700) and file, as system paths.
pub const LOG_DIR: &str = "/var/log/brevet";
pub const SUDO_LOG: &str = "/var/log/brevet/sudo.log";
/// The paths watched for changes when the command line names none.
pub const DEFAULT_WATCH: &str = "/etc";
/// Most bytes of the log read per collection.
const READ_MAX: u64 = 4 << 20;
/// The agent moves the log aside past this size.
const ROTATE_AT: u64 = 16 << 20;
/// How long an ended grant can still be given lines (sudo may write just after the removal).
const RECENT_SECS: i64 = 600;
const AFTER_END_SLACK: i64 = 30;
/// Slack around the plausible window of a logged time.
const TIME_SLACK: i64 = 120;
/// How often an idle agent records that it read sudo's log (seconds).
const READ_AT_EVERY: i64 = 60;
/// Longest command kept in an event.
const MAX_COMMAND_CHARS: usize = 8192;
/// Largest `data` of a `grant.changes` event, as JSON.
const MAX_CHANGES_BYTES: usize = 48 * 1024;
/// Largest upload of events.
pub const MAX_BATCH_BYTES: u64 = 1 << 20;

/// What the journal keeps for the record of use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageState {
    /// Where reading sudo's log stopped.
    #[serde(default)]
    pub log: Option<LogCursor>,
    /// When the log was last read (unix seconds).
    #[serde(default)]
    pub read_at: Option<i64>,
    /// Grants ended in the last minutes: lines sudo writes just after a removal still go to
    /// them.
    #[serde(default)]
    pub recent: Vec<RecentGrant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentGrant {
    pub grant_id: String,
    pub user: String,
    pub applied_at: i64,
    pub ended_at: i64,
}

pub struct Usage {
    watch: Vec<String>,
    /// System paths left out of snapshots (the state dir, on a real root).
    excluded: Vec<String>,
    baselines: PathBuf,
    queue: Queue,
    zone: Zone,
}

impl Usage {
    /// Opens the event queue in `state_dir` and reads the device's time zone.
    pub fn open(root: &Root, state_dir: &Path) -> Result<Usage> {
        let (queue, notes) = Queue::open(state_dir)?;
        for n in notes {
            log(&n);
        }
        let excluded = if root.is_real() {
            vec![state_dir.to_string_lossy().into_owned()]
        } else {
            Vec::new()
        };
        Ok(Usage {
            watch: vec![DEFAULT_WATCH.to_owned()],
            excluded,
            baselines: state_dir.join("baselines"),
            queue,
            zone: Zone::load(&root.path("/etc/localtime")),
        })
    }

    /// Watches `paths` (system paths) instead of the default.
    pub fn set_watch(&mut self, paths: Vec<String>) {
        if !paths.is_empty() {
            self.watch = paths;
        }
    }

    pub fn watch(&self) -> &[String] {
        &self.watch
    }

    /// Events waiting for the server, oldest first: at most `max`, and at most about
    /// [`MAX_BATCH_BYTES`] of them (the server's body limit is larger).
    pub fn pending(&self, max: usize) -> Vec<DeviceEvent> {
        self.queue.front(max, MAX_BATCH_BYTES)
    }

    pub fn pending_len(&self) -> usize {
        self.queue.len()
    }

    /// The server has the oldest `count` pending events.
    pub fn delivered(&mut self, count: usize) -> Result<()> {
        self.queue.delivered(count)
    }

    /// Reads sudo's log from where it stopped and queues a `grant.used` event for each entry of
    /// a grant's user; updates the position in `journal` (saved by the caller). Returns how many
    /// events were queued.
    pub fn collect(&mut self, root: &Root, journal: &mut Journal, now: i64) -> Result<usize> {
        let path = root.path(SUDO_LOG);
        journal
            .usage
            .recent
            .retain(|r| now.saturating_sub(r.ended_at) < RECENT_SECS);
        let batch = tail::read_new(&path, journal.usage.log.as_ref(), READ_MAX)?;
        for n in &batch.notes {
            log(n);
        }
        let earliest = journal.usage.read_at.unwrap_or(now - 30 * 86_400) - TIME_SLACK;
        let (mut events, mut odd, mut nobody) = (Vec::new(), 0usize, 0usize);
        for chunk in &batch.chunks {
            for raw in sudolog::entries(&chunk.text, chunk.start) {
                let Some(rec) = sudolog::parse(&raw.text) else {
                    odd += 1;
                    continue;
                };
                let logged = self
                    .logged_utc(&rec.time, now)
                    .filter(|t| (earliest..=now + TIME_SLACK).contains(t));
                let plausible = logged.is_some();
                let at = logged.unwrap_or(now);
                let Some(grant) = tie(&journal.active, &journal.usage.recent, &rec.user, at) else {
                    nobody += 1;
                    continue;
                };
                events.push(used_event(
                    &grant,
                    &chunk.file_id,
                    &raw,
                    rec,
                    at,
                    plausible,
                )?);
            }
        }
        let n = events.len();
        self.queue.push(events)?;
        // An idle read changes nothing worth a journal write: `read_at` (the earliest time a new
        // line may claim) then moves at most once a minute, widening that bound by under 60 s.
        let idle = n == 0 && odd == 0 && nobody == 0 && batch.cursor == journal.usage.log;
        if !idle
            || journal
                .usage
                .read_at
                .is_none_or(|t| now - t >= READ_AT_EVERY)
        {
            journal.usage.read_at = Some(now);
        }
        journal.usage.log = batch.cursor;
        if odd > 0 {
            log(&format!(
                "{odd} entries of `{SUDO_LOG}` not understood; skipped"
            ));
        }
        if nobody > 0 {
            log(&format!(
                "{nobody} entries of `{SUDO_LOG}` belong to no grant this agent holds; skipped"
            ));
        }
        if tail::rotate_if_large(&path, journal.usage.log.as_ref(), ROTATE_AT, now) {
            log(&format!("`{SUDO_LOG}` moved to `{SUDO_LOG}.1`"));
        }
        Ok(n)
    }

    /// The UTC time of a logged local time; without a year, the year that puts it nearest to
    /// `now`. `None` when no such date exists (sudo never writes one).
    fn logged_utc(&self, t: &sudolog::LoggedTime, now: i64) -> Option<i64> {
        let at = |year: i64| {
            self.zone
                .to_utc(year, t.month, t.day, (t.hour, t.minute, t.second))
        };
        match t.year {
            Some(y) => at(i64::from(y)),
            None => {
                let y = self.zone.year_at(now);
                [y - 1, y, y + 1]
                    .into_iter()
                    .filter_map(at)
                    .min_by_key(|u| u.abs_diff(now))
            }
        }
    }

    /// Records the baseline of a grant being applied.
    pub fn applied(&mut self, root: &Root, grant_id: &str, now: i64) -> Result<()> {
        let snap = changes::snapshot(root, &self.watch, &self.excluded, now);
        let bytes = serde_json::to_vec(&snap)
            .map_err(|e| Error::State(format!("cannot encode a baseline: {e}")))?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.baselines)
            .map_err(|e| Error::file("create", &self.baselines, e))?;
        fsio::write_atomic(&self.baseline_path(grant_id)?, &bytes, 0o600)
    }

    /// Forgets the baseline of a grant that was never put in force.
    pub fn discard(&mut self, grant_id: &str) {
        if let Ok(p) = self.baseline_path(grant_id) {
            let _ = fsio::remove_if_present(&p);
        }
    }

    /// A grant was removed: queues its `grant.changes` summary, then forgets its baseline.
    pub fn ended(
        &mut self,
        root: &Root,
        journal: &mut Journal,
        entry: &Entry,
        now: i64,
    ) -> Result<()> {
        let id = &entry.doc.grant_id;
        let applied_at = entry.applied_at.unwrap_or(now);
        journal.usage.recent.retain(|r| r.grant_id != *id);
        journal.usage.recent.push(RecentGrant {
            grant_id: id.clone(),
            user: entry.doc.user.clone(),
            applied_at,
            ended_at: now,
        });
        let path = self.baseline_path(id)?;
        let before: Option<Snapshot> = match fsio::read_if_present(&path)? {
            Some(b) => match serde_json::from_slice(&b) {
                Ok(s) => Some(s),
                Err(e) => {
                    log(&format!(
                        "the baseline `{}` is damaged ({e})",
                        path.display()
                    ));
                    None
                }
            },
            None => None,
        };
        let summary = match &before {
            Some(b) => {
                let after = changes::snapshot(root, &b.watched, &self.excluded, now);
                changes::diff(b, &after, rfc3339(b.taken_at), rfc3339(now))
            }
            None => ChangeSummary {
                watched: self.watch.clone(),
                since: rfc3339(applied_at),
                until: rfc3339(now),
                baseline_missing: true,
                ..ChangeSummary::default()
            },
        };
        let event = DeviceEvent {
            id: event_id(&["grant.changes", id]),
            kind: DeviceEventKind::GrantChanges,
            grant_id: id.clone(),
            at: rfc3339(now),
            data: fit(summary)?,
        };
        self.queue.push(vec![event])?;
        fsio::remove_if_present(&path)?;
        Ok(())
    }

    fn baseline_path(&self, grant_id: &str) -> Result<PathBuf> {
        validate::id("grant id", grant_id)?;
        Ok(self.baselines.join(format!("{grant_id}.json")))
    }
}

/// Creates ROOT/var/log/brevet with mode 0700 (sudo creates the file in it).
pub fn ensure_log_dir(root: &Root) -> Result<()> {
    let dir = root.path(LOG_DIR);
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {
            if m.permissions().mode() & 0o777 != 0o700 {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| Error::file("set permissions on", &dir, e))?;
            }
            Ok(())
        }
        Ok(_) => Err(Error::file(
            "use",
            &dir,
            std::io::Error::other("it is not a directory"),
        )),
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::file("create", &dir, e)),
    }
}

/// The grant of `user` a log entry written at `at` belongs to: one in force (or ended moments
/// ago) at that time, the latest applied if several; else the user's grant in force now; else
/// the one that ended last.
fn tie(
    active: &BTreeMap<String, Entry>,
    recent: &[RecentGrant],
    user: &str,
    at: i64,
) -> Option<String> {
    // (grant, from, to) with `to` None while in force.
    let mut spans: Vec<(&str, i64, Option<i64>)> = active
        .values()
        .filter(|e| e.doc.user == user)
        .filter_map(|e| e.applied_at.map(|a| (e.doc.grant_id.as_str(), a, None)))
        .collect();
    spans.extend(recent.iter().filter(|r| r.user == user).map(|r| {
        (
            r.grant_id.as_str(),
            r.applied_at,
            Some(r.ended_at + AFTER_END_SLACK),
        )
    }));
    let containing = spans
        .iter()
        .filter(|(_, from, to)| *from - 2 <= at && to.is_none_or(|to| at <= to))
        .max_by_key(|(_, from, _)| *from);
    let in_force = || {
        spans
            .iter()
            .filter(|(_, _, to)| to.is_none())
            .max_by_key(|(_, from, _)| *from)
    };
    let last_ended = || spans.iter().max_by_key(|(_, _, to)| *to);
    containing
        .or_else(in_force)
        .or_else(last_ended)
        .map(|(id, _, _)| (*id).to_owned())
}

fn used_event(
    grant_id: &str,
    file_id: &str,
    raw: &sudolog::RawEntry,
    rec: sudolog::Record,
    at: i64,
    plausible: bool,
) -> Result<DeviceEvent> {
    let allowed = rec.allowed();
    let data = CommandUse {
        user: clean(&rec.user, 64),
        runas: clean(&rec.runas, 64),
        group: rec.group.map(|g| clean(&g, 64)),
        cwd: clean(&rec.cwd, 4096),
        command: clean(&rec.command, MAX_COMMAND_CHARS),
        tty: rec.tty.map(|t| clean(&t, 64)),
        allowed,
        refusal: rec.refusal.map(|r| clean(&r, 200)),
        logged_time: clean(&rec.time_text, 40),
        time_source: if plausible { "sudo-log" } else { "agent" }.into(),
    };
    Ok(DeviceEvent {
        id: event_id(&[
            "grant.used",
            grant_id,
            file_id,
            &raw.offset.to_string(),
            &raw.text,
        ]),
        kind: DeviceEventKind::GrantUsed,
        grant_id: grant_id.to_owned(),
        at: rfc3339(at),
        data: serde_json::to_value(&data)
            .map_err(|e| Error::State(format!("cannot encode an event: {e}")))?,
    })
}

/// At most `max` characters, control characters written the way sudo does (`#012`).
fn clean(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars().take(max) {
        if c.is_control() {
            out.push_str(&format!("#{:03o}", u32::from(c) & 0o377));
        } else {
            out.push(c);
        }
    }
    out
}

/// SHA-256 of the parts, each followed by a newline, as lower-case hex.
fn event_id(parts: &[&str]) -> String {
    let mut text = String::new();
    for p in parts {
        text.push_str(p);
        text.push('\n');
    }
    data_encoding::HEXLOWER.encode(digest(&SHA256, text.as_bytes()).as_ref())
}

/// Encodes a summary, halving its lists until it fits the server's limit.
fn fit(mut s: ChangeSummary) -> Result<serde_json::Value> {
    loop {
        let v = serde_json::to_value(&s)
            .map_err(|e| Error::State(format!("cannot encode a change summary: {e}")))?;
        let lists = [s.added.len(), s.changed.len(), s.removed.len()];
        let packages = [
            s.packages_installed.len(),
            s.packages_removed.len(),
            s.packages_upgraded.len(),
        ];
        let nothing_to_cut = lists.iter().chain(&packages).all(|n| *n == 0);
        if v.to_string().len() <= MAX_CHANGES_BYTES || nothing_to_cut {
            return Ok(v);
        }
        for list in [&mut s.added, &mut s.changed, &mut s.removed] {
            list.truncate(list.len() / 2);
        }
        s.packages_installed
            .truncate(s.packages_installed.len() / 2);
        s.packages_removed.truncate(s.packages_removed.len() / 2);
        s.packages_upgraded.truncate(s.packages_upgraded.len() / 2);
    }
}

fn log(msg: &str) {
    eprintln!("brevet-agent: {msg}");
}

#[cfg(test)]
mod tests;
