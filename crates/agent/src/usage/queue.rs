//! The device's durable queue of audit events (`grant.used`, `grant.changes`) waiting for the
//! server.
//!
//! `STATE_DIR/events.jsonl` holds one event per line, appended and fsynced before the agent
//! moves past what the events describe (the sudo log position, the baseline file). The byte
//! offset of the first event the server has not accepted is in `STATE_DIR/events.pos`, replaced
//! atomically. Events therefore leave in order, survive restarts and server outages, and a crash
//! at any point at worst sends an event again, which the server ignores by its id. When
//! everything is delivered and the file has grown, it is emptied. A torn last line (a crash
//! while appending) is cut off; a line that does not parse is skipped and reported, never a
//! reason to stop.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use brevet_proto::agent::DeviceEvent;

use crate::linux::fsio;
use crate::{Error, Result};

pub const FILE: &str = "events.jsonl";
pub const POS_FILE: &str = "events.pos";
/// Most events kept waiting; beyond it new events are dropped (and counted), so a device cut
/// off for weeks cannot fill its disk.
pub const MAX_PENDING: usize = 200_000;
/// The file is emptied once everything in it is delivered and it is larger than this.
const COMPACT_AT: u64 = 1 << 20;

#[derive(Debug)]
pub struct Queue {
    path: PathBuf,
    pos_path: PathBuf,
    /// Pending events, oldest first, each with the file offset just after its line and the
    /// line's length.
    pending: VecDeque<(DeviceEvent, u64, u64)>,
    ids: HashSet<String>,
    /// Length of the file.
    len: u64,
    /// Events dropped because the queue was full, since start.
    pub dropped: u64,
}

impl Queue {
    /// Opens (or starts) the queue in `state_dir`; returns it and notes about what was repaired.
    pub fn open(state_dir: &Path) -> Result<(Queue, Vec<String>)> {
        let path = state_dir.join(FILE);
        let pos_path = state_dir.join(POS_FILE);
        let mut notes = Vec::new();
        let bytes = fsio::read_if_present(&path)?.unwrap_or_default();
        let mut pos = match fsio::read_if_present(&pos_path)? {
            None => 0,
            Some(b) => match String::from_utf8_lossy(&b).trim().parse::<u64>() {
                Ok(p) => p,
                Err(_) => {
                    // Sending everything again is safe: the server ignores ids it has.
                    notes.push(format!(
                        "`{}` is damaged; every queued event will be sent again",
                        pos_path.display()
                    ));
                    0
                }
            },
        };
        if pos > bytes.len() as u64 {
            pos = 0; // emptied by a compaction whose position update did not land
        }
        let mut q = Queue {
            path,
            pos_path,
            pending: VecDeque::new(),
            ids: HashSet::new(),
            len: bytes.len() as u64,
            dropped: 0,
        };
        let mut at = usize::try_from(pos).unwrap_or(0);
        while at < bytes.len() {
            let Some(nl) = bytes[at..].iter().position(|&b| b == b'\n') else {
                notes.push(format!(
                    "`{}`: an incomplete last event (a crash while writing it) was cut off",
                    q.path.display()
                ));
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(&q.path)
                    .map_err(|e| Error::file("open", &q.path, e))?;
                f.set_len(at as u64)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| Error::file("repair", &q.path, e))?;
                q.len = at as u64;
                break;
            };
            let line = &bytes[at..at + nl];
            at += nl + 1;
            match serde_json::from_slice::<DeviceEvent>(line) {
                Ok(e) => {
                    q.ids.insert(e.id.clone());
                    q.pending.push_back((e, at as u64, nl as u64 + 1));
                }
                Err(e) => notes.push(format!(
                    "`{}`: an event that does not parse was skipped ({e})",
                    q.path.display()
                )),
            }
        }
        Ok((q, notes))
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The oldest pending events: at most `max`, and no more than `max_bytes` of JSON (but
    /// always the first one).
    pub fn front(&self, max: usize, max_bytes: u64) -> Vec<DeviceEvent> {
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for (e, _, len) in self.pending.iter().take(max) {
            bytes += len;
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// Appends events (those already pending, by id, are skipped) and fsyncs.
    pub fn push(&mut self, events: Vec<DeviceEvent>) -> Result<()> {
        let mut text = Vec::new();
        let mut added: Vec<(DeviceEvent, u64, u64)> = Vec::new();
        let mut batch_ids = HashSet::new();
        for e in events {
            if self.ids.contains(&e.id) || !batch_ids.insert(e.id.clone()) {
                continue;
            }
            if self.pending.len() + added.len() >= MAX_PENDING {
                self.dropped += 1;
                continue;
            }
            let line = serde_json::to_vec(&e)
                .map_err(|err| Error::State(format!("cannot encode an event: {err}")))?;
            text.extend_from_slice(&line);
            text.push(b'\n');
            added.push((e, self.len + text.len() as u64, line.len() as u64 + 1));
        }
        if text.is_empty() {
            return Ok(());
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| Error::file("open", &self.path, e))?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::file("append to", &self.path, e))?;
        if self.len == 0 {
            fsio::sync_parent(&self.path)?;
        }
        self.len += text.len() as u64;
        for (e, end, len) in added {
            self.ids.insert(e.id.clone());
            self.pending.push_back((e, end, len));
        }
        Ok(())
    }

    /// The server has the oldest `count` events: they leave the queue.
    pub fn delivered(&mut self, count: usize) -> Result<()> {
        let mut end = None;
        for _ in 0..count.min(self.pending.len()) {
            if let Some((e, at, _)) = self.pending.pop_front() {
                self.ids.remove(&e.id);
                end = Some(at);
            }
        }
        let Some(end) = end else { return Ok(()) };
        if self.pending.is_empty() && self.len > COMPACT_AT {
            fsio::write_atomic(&self.path, b"", 0o600)?;
            self.len = 0;
            return fsio::write_atomic(&self.pos_path, b"0\n", 0o600);
        }
        fsio::write_atomic(&self.pos_path, format!("{end}\n").as_bytes(), 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brevet_proto::agent::DeviceEventKind;

    fn ev(n: u32) -> DeviceEvent {
        DeviceEvent {
            id: format!("{n:064x}"),
            kind: DeviceEventKind::GrantUsed,
            grant_id: "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into(),
            at: "2026-11-28T10:00:00Z".into(),
            data: serde_json::json!({ "n": n }),
        }
    }

    fn ids(q: &Queue) -> Vec<String> {
        q.front(usize::MAX, u64::MAX)
            .into_iter()
            .map(|e| e.id)
            .collect()
    }

    #[test]
    fn survives_restarts_in_order_without_repeats() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut q, notes) = Queue::open(tmp.path()).unwrap();
        assert!(q.is_empty() && notes.is_empty());
        q.push(vec![ev(1), ev(2), ev(2)]).unwrap();
        q.push(vec![ev(1), ev(3)]).unwrap();
        assert_eq!(q.len(), 3, "ids already pending are not queued twice");
        // Batches are bounded by count and by size, but never empty.
        assert_eq!(q.front(2, u64::MAX).len(), 2);
        assert_eq!(q.front(10, 1).len(), 1);
        let line = serde_json::to_vec(&ev(1)).unwrap().len() as u64 + 1;
        assert_eq!(q.front(10, 2 * line).len(), 2);
        q.delivered(1).unwrap();
        let (mut q, _) = Queue::open(tmp.path()).unwrap();
        assert_eq!(ids(&q), [ev(2).id, ev(3).id]);
        q.delivered(2).unwrap();
        let (q, _) = Queue::open(tmp.path()).unwrap();
        assert!(q.is_empty());
    }

    #[test]
    fn a_torn_last_line_is_cut_and_a_bad_line_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut q, _) = Queue::open(tmp.path()).unwrap();
        q.push(vec![ev(1)]).unwrap();
        let path = tmp.path().join(FILE);
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"not json\n").unwrap();
        f.write_all(&serde_json::to_vec(&ev(2)).unwrap()).unwrap();
        f.write_all(b"\n{\"id\":\"torn").unwrap();
        drop(f);
        let (mut q, notes) = Queue::open(tmp.path()).unwrap();
        assert_eq!(ids(&q), [ev(1).id, ev(2).id]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        q.push(vec![ev(3)]).unwrap();
        let (q, notes) = Queue::open(tmp.path()).unwrap();
        assert_eq!(ids(&q), [ev(1).id, ev(2).id, ev(3).id]);
        assert_eq!(notes.len(), 1, "only the bad line is left: {notes:?}");
    }

    #[test]
    fn an_emptied_queue_is_compacted() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut q, _) = Queue::open(tmp.path()).unwrap();
        let big: Vec<DeviceEvent> = (0..3000)
            .map(|n| DeviceEvent {
                data: serde_json::json!({ "pad": "x".repeat(400) }),
                ..ev(n)
            })
            .collect();
        q.push(big).unwrap();
        q.delivered(2999).unwrap();
        assert!(fs::metadata(tmp.path().join(FILE)).unwrap().len() > COMPACT_AT);
        q.delivered(5).unwrap();
        assert_eq!(fs::metadata(tmp.path().join(FILE)).unwrap().len(), 0);
        q.push(vec![ev(7)]).unwrap();
        let (q, _) = Queue::open(tmp.path()).unwrap();
        assert_eq!(ids(&q), [ev(7).id]);
        // A compaction whose position update was lost: the position is past the end.
        fs::write(tmp.path().join(POS_FILE), "999999\n").unwrap();
        let (q, _) = Queue::open(tmp.path()).unwrap();
        assert_eq!(ids(&q), [ev(7).id]);
    }
}
