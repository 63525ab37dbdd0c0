//! The agent's own record of what it enforces, `STATE_DIR/journal.json` (directory 0700, file
//! 0600), rewritten atomically (temp, fsync, rename, fsync directory) on every change.
//!
//! Expiry is enforced from this journal, never from the server: a grant is entered here before
//! its drop-in is written, so a crash never leaves a drop-in the agent does not know, and a server
//! that is down never extends a grant. It also holds the ids of ended grants (replay protection,
//! each kept until its own `not_after` plus the clock-skew bound has passed, so a replay is
//! refused for as long as the grant could be valid), the acknowledgements and drift findings not yet
//! delivered (in order), the drift baseline, where reading sudo's log stopped, the start of each
//! user's run of overlapping grants (whose sudo processes end with the last of them), the
//! newest server-state stamp seen (restore safety), and whether this enrollment was superseded.
//! A damaged journal is an error, never reset.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use brevet_proto::agent::{Ack, Finding};
use brevet_proto::canonical;
use brevet_proto::grant::{GrantDoc, SignedGrant};
use brevet_proto::state::ServerState;
use serde::{Deserialize, Serialize};

use crate::linux::fsio;
use crate::usage::UsageState;
use crate::{Error, Result};

pub const FILE: &str = "journal.json";
const VERSION: u32 = 1;
/// How long an ended id recorded by an older agent (without its `not_after`) is kept: the
/// latest a grant can start (30 days ahead), its longest window (7 days), and a day of slack.
pub const LEGACY_ENDED_RETENTION_SECS: i64 = (30 + 7 + 1) * 24 * 3600;

/// An ended grant, remembered so that a replay of it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "EndedRepr")]
pub struct Ended {
    /// When it ended here (unix seconds).
    pub at: i64,
    /// Forgotten from this time on: its `not_after` (or its end, if later) plus the skew bound.
    /// By then the verifier refuses it as expired anyway.
    pub keep_until: i64,
}

/// What the journal may hold for an ended id: the end time alone (older agents) or [`Ended`].
#[derive(Deserialize)]
#[serde(untagged)]
enum EndedRepr {
    Legacy(i64),
    Full(EndedFields),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndedFields {
    at: i64,
    keep_until: i64,
}

impl From<EndedRepr> for Ended {
    fn from(r: EndedRepr) -> Ended {
        match r {
            EndedRepr::Legacy(at) => Ended {
                at,
                keep_until: at.saturating_add(LEGACY_ENDED_RETENTION_SECS),
            },
            EndedRepr::Full(f) => Ended {
                at: f.at,
                keep_until: f.keep_until,
            },
        }
    }
}

/// One verified grant the agent holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The grant exactly as signed by the server.
    pub signed: SignedGrant,
    /// The verified document (`signed.doc` parsed).
    pub doc: GrantDoc,
    /// When it was put in force; `None` while waiting for `not_before`.
    pub applied_at: Option<i64>,
    /// The drop-in file name, recorded before the file is written; `None` for group-only grants.
    pub drop_in: Option<String>,
    /// Groups the agent added the user to (memberships the user already had are not listed, and
    /// so are not taken away).
    pub groups: Vec<String>,
    /// Set (and saved) before removal starts: why it is being removed. A removal that did not
    /// finish is retried, and reconciliation never restores such a grant.
    #[serde(default)]
    pub removing: Option<String>,
}

impl Entry {
    /// `(not_before, not_after)` in unix seconds. A window that does not parse reads as long
    /// over, so the grant is removed (fail closed).
    pub fn window(&self) -> (i64, i64) {
        match (self.doc.not_before_secs(), self.doc.not_after_secs()) {
            (Ok(nb), Ok(na)) => (nb, na),
            _ => (i64::MIN, i64::MIN),
        }
    }
}

/// What drift detection compares against: SHA-256 of privileged files, members of admin groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// System path → hex SHA-256 of its content.
    pub files: BTreeMap<String, String>,
    /// Group → sorted members (excluding memberships the agent granted).
    pub groups: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    active: BTreeMap<String, Entry>,
    ended: BTreeMap<String, Ended>,
    pending_acks: Vec<Ack>,
    #[serde(default)]
    pending_drift: Vec<Finding>,
    #[serde(default)]
    baseline: Option<Baseline>,
    #[serde(default)]
    usage: UsageState,
    #[serde(default)]
    sessions: BTreeMap<String, i64>,
    #[serde(default)]
    server_state: Option<ServerState>,
    #[serde(default)]
    superseded: Option<Superseded>,
}

/// The server said another enrollment of this device name superseded this agent's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Superseded {
    /// When the agent first heard it (unix seconds).
    pub at: i64,
    /// The enrollment that was superseded (`enrollment_id`); a new enrollment clears the mark.
    pub enrollment: String,
    /// What the server said.
    pub message: String,
}

#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    /// Grant id → the grant in force or waiting for its start.
    pub active: BTreeMap<String, Entry>,
    /// Grant id → when it ended, and until when it is remembered.
    pub ended: BTreeMap<String, Ended>,
    /// Acknowledgements not yet accepted by the server, oldest first.
    pub pending_acks: Vec<Ack>,
    /// Drift findings not yet reported, oldest first.
    pub pending_drift: Vec<Finding>,
    pub baseline: Option<Baseline>,
    /// The position in sudo's log and the grants that ended moments ago ([`crate::usage`]).
    pub usage: UsageState,
    /// User → start (unix seconds, the earliest `not_before`) of their current run of
    /// overlapping grants in force. When the last grant of the run ends, every process the user
    /// started through sudo since then is ended, and the entry goes.
    pub sessions: BTreeMap<String, i64>,
    /// The newest server-state stamp seen ([`crate::server_state`]); answers with an older one,
    /// or none, are refused.
    pub server_state: Option<ServerState>,
    /// Set when the server said this enrollment was superseded: nothing is applied any more
    /// until the device is enrolled again.
    pub superseded: Option<Superseded>,
    /// SHA-256 of what this process last wrote: an unchanged journal is not written again, so
    /// an idle agent does not write to disk every second.
    last_saved: std::sync::Mutex<Option<Vec<u8>>>,
}

impl Journal {
    /// Opens the journal in `state_dir` (created 0700, or tightened to 0700). A missing journal
    /// is an empty one; a damaged one is an error naming the file.
    pub fn load(state_dir: &Path) -> Result<Journal> {
        std::fs::create_dir_all(state_dir).map_err(|e| Error::file("create", state_dir, e))?;
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::file("set permissions on", state_dir, e))?;
        let path = state_dir.join(FILE);
        let stored = match fsio::read_if_present(&path)? {
            None => Stored {
                version: VERSION,
                ..Stored::default()
            },
            Some(bytes) => parse(&path, &bytes)?,
        };
        Ok(Journal {
            dir: state_dir.to_owned(),
            active: stored.active,
            ended: stored.ended,
            pending_acks: stored.pending_acks,
            pending_drift: stored.pending_drift,
            baseline: stored.baseline,
            usage: stored.usage,
            sessions: stored.sessions,
            server_state: stored.server_state,
            superseded: stored.superseded,
            last_saved: std::sync::Mutex::new(None),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Writes the journal atomically with mode 0600.
    pub fn save(&self) -> Result<()> {
        let stored = Stored {
            version: VERSION,
            active: self.active.clone(),
            ended: self.ended.clone(),
            pending_acks: self.pending_acks.clone(),
            pending_drift: self.pending_drift.clone(),
            baseline: self.baseline.clone(),
            usage: self.usage.clone(),
            sessions: self.sessions.clone(),
            server_state: self.server_state.clone(),
            superseded: self.superseded.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&stored)
            .map_err(|e| Error::State(format!("cannot encode the journal: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes)
            .as_ref()
            .to_vec();
        let mut last = self
            .last_saved
            .lock()
            .map_err(|_| Error::State("journal lock poisoned".into()))?;
        if last.as_deref() == Some(digest.as_slice()) && self.path().exists() {
            return Ok(());
        }
        fsio::write_atomic(&self.path(), &bytes, 0o600)?;
        *last = Some(digest);
        Ok(())
    }

    /// Records that grant `id`, whose window ends at `not_after`, ended at `at`: it is refused
    /// as a replay until `not_after` (or `at`, if later) plus `skew` has passed.
    pub fn record_ended(&mut self, id: &str, at: i64, not_after: i64, skew: i64) {
        let keep_until = not_after.max(at).saturating_add(skew.max(0));
        self.ended.insert(id.to_owned(), Ended { at, keep_until });
    }

    /// Forgets ended ids whose windows are over (plus the skew bound): a replay of them is
    /// refused as expired anyway.
    pub fn prune_ended(&mut self, now: i64) {
        self.ended.retain(|_, e| now < e.keep_until);
    }

    /// Drops the first `count` acknowledgements (the server accepted them) and saves.
    pub fn acks_delivered(&mut self, count: usize) -> Result<()> {
        let n = count.min(self.pending_acks.len());
        self.pending_acks.drain(..n);
        self.save()
    }

    /// Drops the first `count` drift findings (reported) and saves.
    pub fn drift_delivered(&mut self, count: usize) -> Result<()> {
        let n = count.min(self.pending_drift.len());
        self.pending_drift.drain(..n);
        self.save()
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Stored> {
    let damaged = |why: String| {
        Error::State(format!(
            "the journal `{}` is damaged ({why}); it is never reset automatically: inspect it, \
             remove the brevet_* drop-ins by hand if needed, then move it aside",
            path.display()
        ))
    };
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
    if stored.version != VERSION {
        return Err(damaged(format!("unknown version {}", stored.version)));
    }
    for (id, entry) in &stored.active {
        if *id != entry.doc.grant_id {
            return Err(damaged(format!(
                "entry `{id}` holds grant `{}`",
                entry.doc.grant_id
            )));
        }
        entry
            .doc
            .validate()
            .map_err(|e| damaged(format!("entry `{id}`: {e}")))?;
        let canonical_doc = canonical::to_string(&entry.doc).map_err(|e| damaged(e.to_string()))?;
        if canonical_doc != entry.signed.doc {
            return Err(damaged(format!(
                "entry `{id}` does not match its signed document"
            )));
        }
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brevet_proto::agent::AckAction;

    #[test]
    fn an_unchanged_journal_is_not_rewritten() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let mut j = Journal::load(tmp.path()).unwrap();
        j.save().unwrap();
        let inode = || std::fs::metadata(tmp.path().join(FILE)).unwrap().ino();
        let first = inode();
        j.save().unwrap();
        assert_eq!(inode(), first, "rewritten although nothing changed");
        j.record_ended("0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d", 1, 2, 0);
        j.save().unwrap();
        assert_ne!(
            inode(),
            first,
            "a change is written (atomically, as a new file)"
        );
        std::fs::remove_file(tmp.path().join(FILE)).unwrap();
        j.save().unwrap();
        assert!(
            tmp.path().join(FILE).exists(),
            "a missing journal is written again"
        );
    }

    fn entry() -> Entry {
        let doc = crate::sudoers::render_tests_doc();
        Entry {
            signed: SignedGrant {
                doc: canonical::to_string(&doc).unwrap(),
                sig: "c2ln".into(),
            },
            doc,
            applied_at: Some(5),
            drop_in: Some("brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d".into()),
            groups: vec![],
            removing: None,
        }
    }

    #[test]
    fn round_trips_privately() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let mut j = Journal::load(&dir).unwrap();
        assert!(j.active.is_empty());
        let e = entry();
        j.active.insert(e.doc.grant_id.clone(), e.clone());
        j.record_ended("x", 7, 100, 120);
        j.pending_acks.push(Ack {
            grant_id: "x".into(),
            action: AckAction::Removed,
            at: "2026-11-28T10:30:00Z".into(),
            reason: Some("expired".into()),
            detail: serde_json::json!({}),
        });
        j.save().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(FILE)), 0o600);
        let again = Journal::load(&dir).unwrap();
        assert_eq!(again.active, j.active);
        assert_eq!(again.ended, j.ended);
        assert_eq!(again.pending_acks, j.pending_acks);
        let mut again = again;
        again.acks_delivered(5).unwrap();
        assert!(Journal::load(&dir).unwrap().pending_acks.is_empty());
    }

    #[test]
    fn a_damaged_journal_is_an_error_not_a_reset() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(FILE);
        for bad in [
            "{\"version\":1,\"active\":{}".to_owned(),
            "{\"version\":2,\"active\":{},\"ended\":{},\"pending_acks\":[]}".to_owned(),
            "{\"version\":1,\"active\":{},\"ended\":{},\"pending_acks\":[],\"surprise\":1}"
                .to_owned(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            assert!(
                matches!(Journal::load(tmp.path()), Err(Error::State(_))),
                "{bad}"
            );
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                bad,
                "left as it was"
            );
        }
        // An entry whose document was edited no longer matches what was signed.
        let mut j = Journal::load(&tmp.path().join("other")).unwrap();
        let mut e = entry();
        e.doc.user = "mallory".into();
        j.active.insert(e.doc.grant_id.clone(), e);
        j.save().unwrap();
        assert!(Journal::load(&tmp.path().join("other")).is_err());
    }

    #[test]
    fn ended_ids_are_kept_until_their_own_window_is_over() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = Journal::load(tmp.path()).unwrap();
        let day = 24 * 3600;
        // Revoked at 0, before a window of days 30..37 had even started.
        j.record_ended("future", 0, 37 * day, 120);
        // Expired at its end.
        j.record_ended("past", 10, 10, 120);
        j.prune_ended(129);
        assert_eq!(j.ended.keys().collect::<Vec<_>>(), ["future", "past"]);
        j.prune_ended(130);
        assert_eq!(j.ended.keys().collect::<Vec<_>>(), ["future"]);
        j.prune_ended(37 * day + 119);
        assert!(j.ended.contains_key("future"), "kept past thirty days");
        j.prune_ended(37 * day + 120);
        assert!(j.ended.is_empty());
    }

    #[test]
    fn ended_ids_of_an_older_journal_are_kept_for_the_longest_possible_window() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join(FILE),
            r#"{"version":1,"active":{},"ended":{"old":50,"new":{"at":5,"keep_until":9}},"pending_acks":[]}"#,
        )
        .unwrap();
        let j = Journal::load(tmp.path()).unwrap();
        assert_eq!(
            j.ended["old"],
            Ended {
                at: 50,
                keep_until: 50 + LEGACY_ENDED_RETENTION_SECS
            }
        );
        assert_eq!(
            j.ended["new"],
            Ended {
                at: 5,
                keep_until: 9
            }
        );
    }
}
