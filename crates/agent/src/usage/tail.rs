//! Reading sudo's log from where the agent left off.
//!
//! The position is a [`LogCursor`] (device, inode, byte offset) saved in the journal, so a
//! restarted agent goes on where it stopped and never reads a line twice. Only complete lines
//! are consumed. When the file at the path is another inode (rotated: by the agent, see
//! [`rotate_if_large`], or by logrotate), the rest of the old file is read first from `NAME.1`
//! or `NAME.0` if it is there, then the new file from its start. A file shorter than the offset,
//! or whose first bytes are no longer those seen before, was truncated (and maybe written
//! again): it is read again from the start. Only regular files are read (never through a
//! symlink), at most a bounded number of bytes per call.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::linux::sysfile::{self, Links};
use crate::{Error, Result};

/// Where the agent stopped reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogCursor {
    pub dev: u64,
    pub ino: u64,
    /// Bytes consumed (always just after a newline).
    pub offset: u64,
    /// The first bytes of the file (up to [`HEAD`]), hex: a file truncated and written again
    /// past the offset is recognised by them.
    #[serde(default)]
    pub head: String,
}

/// How many leading bytes identify a file's content.
const HEAD: u64 = 32;

impl LogCursor {
    fn at_start(dev: u64, ino: u64) -> LogCursor {
        LogCursor {
            dev,
            ino,
            offset: 0,
            head: String::new(),
        }
    }

    /// Identifies the file in event ids.
    pub fn file_id(&self) -> String {
        format!("{}:{}", self.dev, self.ino)
    }
}

/// Complete lines read from one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// `dev:ino` of the file.
    pub file_id: String,
    /// Offset of the first byte of `text` in that file.
    pub start: u64,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub chunks: Vec<Chunk>,
    /// The new position (`None`: no file yet).
    pub cursor: Option<LogCursor>,
    /// Things the administrator should hear about (truncation, skipped data).
    pub notes: Vec<String>,
}

/// Names a rotated log may have.
const ROTATED: [&str; 2] = [".1", ".0"];

/// `(dev, ino, len)` of a regular file at `path`; `None` when absent or not a regular file.
fn identity(path: &Path, notes: &mut Vec<String>) -> Result<Option<(u64, u64, u64)>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(Some((m.dev(), m.ino(), m.len()))),
        Ok(_) => {
            notes.push(format!(
                "`{}` is not a regular file; not read",
                path.display()
            ));
            Ok(None)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::file("inspect", path, e)),
    }
}

/// Reads what was added to the log at `path` since `cursor`, at most `max` bytes.
pub fn read_new(path: &Path, cursor: Option<&LogCursor>, max: u64) -> Result<Batch> {
    let mut out = Batch {
        cursor: cursor.cloned(),
        ..Batch::default()
    };
    let current = identity(path, &mut out.notes)?;
    let mut budget = max;
    if let Some(c) = cursor {
        let same = current.is_some_and(|(dev, ino, _)| (dev, ino) == (c.dev, c.ino));
        if !same {
            // Rotated or removed: finish the old file if it is still around.
            for suffix in ROTATED {
                let old = with_suffix(path, suffix);
                let Some((dev, ino, len)) = identity(&old, &mut Vec::new())? else {
                    continue;
                };
                if (dev, ino) != (c.dev, c.ino) || len <= c.offset {
                    continue;
                }
                let (next, more) = read_into(&old, c.clone(), len, &mut budget, max, &mut out)?;
                out.cursor = Some(next);
                if more {
                    return Ok(out); // the old file first; the rest on the next call
                }
                break;
            }
            match current {
                Some((dev, ino, _)) => out.cursor = Some(LogCursor::at_start(dev, ino)),
                None => return Ok(out),
            }
        }
    }
    let Some((dev, ino, len)) = current else {
        return Ok(out);
    };
    let mut c = out
        .cursor
        .take()
        .unwrap_or_else(|| LogCursor::at_start(dev, ino));
    let rewritten = c.offset > 0 && len >= c.offset && head(path, c.offset)? != c.head;
    if len < c.offset || rewritten {
        out.notes.push(format!(
            "`{}` was truncated (from {} to {len} bytes); reading it again from the start",
            path.display(),
            c.offset
        ));
        c = LogCursor::at_start(dev, ino);
    }
    let (mut next, _) = read_into(path, c, len, &mut budget, max, &mut out)?;
    if (next.head.len() as u64) < 2 * next.offset.min(HEAD) {
        next.head = head(path, next.offset)?;
    }
    out.cursor = Some(next);
    Ok(out)
}

/// Reads complete lines of `path` from `c.offset` up to `len` within the budget; returns the
/// new cursor and whether complete lines remain unread.
fn read_into(
    path: &Path,
    c: LogCursor,
    len: u64,
    budget: &mut u64,
    max: u64,
    out: &mut Batch,
) -> Result<(LogCursor, bool)> {
    if len <= c.offset || *budget == 0 {
        let more = len > c.offset;
        return Ok((c, more));
    }
    let Some((mut f, m)) = sysfile::open(path, Links::Refuse)? else {
        return Ok((c, false)); // gone between the look and the open: next time
    };
    if (m.dev(), m.ino()) != (c.dev, c.ino) {
        return Ok((c, false)); // replaced between the look and the open: next time
    }
    let want = (len - c.offset).min(*budget);
    let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    f.seek(SeekFrom::Start(c.offset))
        .and_then(|_| f.by_ref().take(want).read_to_end(&mut buf))
        .map_err(|e| Error::file("read", path, e))?;
    *budget -= buf.len() as u64;
    let used = match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if want == max && want < len - c.offset => {
            // A whole read's worth without a newline: nothing sudo writes; skip it.
            out.notes.push(format!(
                "`{}`: {} bytes without a line end at offset {} skipped",
                path.display(),
                buf.len(),
                c.offset
            ));
            let next = LogCursor {
                offset: c.offset + buf.len() as u64,
                ..c
            };
            let more = next.offset < len;
            return Ok((next, more));
        }
        None => 0,
    };
    if used > 0 {
        out.chunks.push(Chunk {
            file_id: c.file_id(),
            start: c.offset,
            text: String::from_utf8_lossy(&buf[..used]).into_owned(),
        });
    }
    let next = LogCursor {
        offset: c.offset + used as u64,
        ..c
    };
    let more = *budget == 0 && next.offset < len;
    Ok((next, more))
}

/// The first `min(offset, HEAD)` bytes of `path`, hex.
fn head(path: &Path, offset: u64) -> Result<String> {
    let mut buf = Vec::new();
    if let Some((f, _)) = sysfile::open(path, Links::Refuse)? {
        f.take(offset.min(HEAD))
            .read_to_end(&mut buf)
            .map_err(|e| Error::file("read", path, e))?;
    }
    Ok(data_encoding::HEXLOWER.encode(&buf))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Moves the log to `NAME.1` when it is larger than `limit`, everything in it has been read,
/// and sudo has not written it for a minute (so no sudo still holds it open); sudo makes a new
/// one on its next entry. Returns whether it rotated.
pub fn rotate_if_large(path: &Path, cursor: Option<&LogCursor>, limit: u64, now: i64) -> bool {
    let (Some(c), Ok(m)) = (cursor, fs::symlink_metadata(path)) else {
        return false;
    };
    let quiet = now.saturating_sub(m.mtime()) >= 60;
    if !m.is_file() || (m.dev(), m.ino()) != (c.dev, c.ino) || m.len() != c.offset {
        return false;
    }
    quiet && m.len() > limit && fs::rename(path, with_suffix(path, ".1")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, s: &str) {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(s.as_bytes())
            .unwrap();
    }

    fn texts(r: &Batch) -> String {
        r.chunks.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn reads_only_complete_lines_once() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("sudo.log");
        let r = read_new(&log, None, 1 << 20).unwrap();
        assert!(r.chunks.is_empty() && r.cursor.is_none());

        append(&log, "one\ntw");
        let r = read_new(&log, None, 1 << 20).unwrap();
        assert_eq!(texts(&r), "one\n");
        let c = r.cursor.unwrap();
        assert_eq!(c.offset, 4);
        assert_eq!(r.chunks[0].start, 0);

        let r = read_new(&log, Some(&c), 1 << 20).unwrap();
        assert_eq!(texts(&r), "", "the half line waits");
        append(&log, "o\nthree\n");
        let r = read_new(&log, Some(&c), 1 << 20).unwrap();
        assert_eq!(texts(&r), "two\nthree\n");
        assert_eq!(r.chunks[0].start, 4);
        let c = r.cursor.unwrap();
        assert_eq!(c.offset, 14);
        assert!(read_new(&log, Some(&c), 1 << 20).unwrap().chunks.is_empty());
    }

    #[test]
    fn a_small_budget_reads_in_steps() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("sudo.log");
        append(&log, "aaaa\nbbbb\ncccc\n");
        let mut cursor = None;
        let mut all = String::new();
        for _ in 0..10 {
            let r = read_new(&log, cursor.as_ref(), 6).unwrap();
            all.push_str(&texts(&r));
            cursor = r.cursor;
        }
        assert_eq!(all, "aaaa\nbbbb\ncccc\n");
        // A line longer than the whole budget is skipped, not a stall.
        append(&log, "0123456789\nok\n");
        let mut notes = Vec::new();
        for _ in 0..10 {
            let r = read_new(&log, cursor.as_ref(), 6).unwrap();
            all.push_str(&texts(&r));
            notes.extend(r.notes);
            cursor = r.cursor;
        }
        assert!(all.ends_with("ok\n"), "{all:?}");
        assert!(!notes.is_empty());
    }

    #[test]
    fn truncation_starts_again() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("sudo.log");
        append(&log, "first line\nsecond line\n");
        let c = read_new(&log, None, 1 << 20).unwrap().cursor;
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        append(&log, "new\n");
        let r = read_new(&log, c.as_ref(), 1 << 20).unwrap();
        assert_eq!(texts(&r), "new\n");
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
        // Truncated and written again past the old offset: the first bytes tell.
        let c = r.cursor;
        fs::write(&log, "another line\n").unwrap();
        let r = read_new(&log, c.as_ref(), 1 << 20).unwrap();
        assert_eq!(texts(&r), "another line\n");
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
        // Appending keeps the head: no false alarm.
        append(&log, "more\n");
        let r = read_new(&log, r.cursor.as_ref(), 1 << 20).unwrap();
        assert_eq!(texts(&r), "more\n");
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn rotation_finishes_the_old_file_first() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("sudo.log");
        append(&log, "a\n");
        let c = read_new(&log, None, 1 << 20).unwrap().cursor;
        // Written after the last read, then rotated away (logrotate), then a new file.
        append(&log, "b\n");
        fs::rename(&log, tmp.path().join("sudo.log.1")).unwrap();
        let r = read_new(&log, c.as_ref(), 1 << 20).unwrap();
        assert_eq!(
            texts(&r),
            "b\n",
            "the old file's rest, with no new file yet"
        );
        let c = r.cursor.clone();
        assert!(
            read_new(&log, c.as_ref(), 1 << 20)
                .unwrap()
                .chunks
                .is_empty()
        );
        append(&log, "c\n");
        let r = read_new(&log, c.as_ref(), 1 << 20).unwrap();
        assert_eq!(texts(&r), "c\n");
        assert_ne!(r.chunks[0].file_id, c.as_ref().unwrap().file_id());
        assert_eq!(r.cursor.as_ref().unwrap().offset, 2);

        // The old file's rest and the new file in one call.
        let c = r.cursor.clone();
        append(&log, "d\n");
        fs::rename(&log, tmp.path().join("sudo.log.1")).unwrap();
        append(&log, "e\n");
        let r = read_new(&log, c.as_ref(), 1 << 20).unwrap();
        assert_eq!(texts(&r), "d\ne\n");
        // Gone altogether: the cursor stays.
        fs::remove_file(&log).unwrap();
        fs::remove_file(tmp.path().join("sudo.log.1")).unwrap();
        assert_eq!(
            read_new(&log, r.cursor.as_ref(), 1 << 20).unwrap().cursor,
            r.cursor
        );
    }

    #[test]
    fn the_agent_rotates_a_large_quiet_file_it_has_read() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("sudo.log");
        append(&log, "0123456789\n");
        let now = fs::metadata(&log).unwrap().mtime();
        assert!(!rotate_if_large(&log, None, 5, now + 120), "never unread");
        let c = read_new(&log, None, 1 << 20).unwrap().cursor;
        assert!(
            !rotate_if_large(&log, c.as_ref(), 5, now),
            "not while sudo may write"
        );
        assert!(!rotate_if_large(&log, c.as_ref(), 100, now + 120), "small");
        assert!(rotate_if_large(&log, c.as_ref(), 5, now + 120));
        assert!(tmp.path().join("sudo.log.1").exists() && !log.exists());
    }

    #[test]
    fn a_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("shadow");
        fs::write(&secret, "root:x\n").unwrap();
        let log = tmp.path().join("sudo.log");
        std::os::unix::fs::symlink(&secret, &log).unwrap();
        let r = read_new(&log, None, 1 << 20).unwrap();
        assert!(r.chunks.is_empty() && r.cursor.is_none());
        assert_eq!(r.notes.len(), 1);
    }
}
