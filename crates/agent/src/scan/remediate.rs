//! Enforce mode: take away what the scan found and the allow-list does not name.
//!
//! - `admin_group_member`: the user is removed from the group through the caller's
//!   `group_remove` (on a real system `gpasswd -d`), after checking the membership against the
//!   current `/etc/group`. A primary group cannot be removed that way and is reported back.
//! - Findings about a drop-in in `/etc/sudoers.d`: the file is moved (never deleted) into the
//!   quarantine directory (mode 0700) as `<name>.<UTC time>`, by `rename` where possible, else by
//!   copy, fsync and remove, so that at every moment the file exists in at least one place.
//!
//! Never touched: `root`, the break-glass user, allow-listed users and files, `/etc/sudoers`,
//! `brevet_*` drop-ins, and a drop-in that names the break-glass user (removing it could lock
//! everyone out). Only the findings passed in are acted on, so a caller drops those that belong
//! to an active Brevet group grant before calling.

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use brevet_proto::agent::Finding;
use serde::Serialize;

use super::accounts::{Accounts, Via};
use super::sudoers::DROPIN_DIR;
use super::{Allowlist, files, groups, lexer};
use crate::clock::{Clock, SystemClock};
use crate::linux::sysfile::{self, Links};
use crate::root::Root;
use crate::{Error, Result};

/// One thing enforce mode changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Remedy {
    RemovedFromGroup {
        user: String,
        group: String,
    },
    /// `file` is the system path (`/etc/sudoers.d/NAME`), `to` where it is now.
    Quarantined {
        file: String,
        to: PathBuf,
    },
}

/// Finding kinds whose subject is a sudoers file that a quarantine resolves.
const FILE_KINDS: [&str; 4] = [
    super::KIND_FOREIGN_SUDOERS_RULE,
    super::KIND_NOPASSWD,
    super::KIND_NO_AUTHENTICATE,
    super::KIND_CACHED_CREDENTIALS,
];

/// [`remediate_at`] with the system clock naming the quarantined files.
pub fn remediate(
    root: &Root,
    findings: &[Finding],
    allow: &Allowlist,
    quarantine_dir: &Path,
    group_remove: &dyn Fn(&str, &str) -> Result<()>,
) -> (Vec<Remedy>, Vec<Error>) {
    let now = SystemClock.now();
    remediate_at(root, findings, allow, quarantine_dir, group_remove, now)
}

/// Acts on `findings`; `now` (unix seconds) timestamps the quarantined names. `quarantine_dir`
/// is a real path (callers map it through the root). Returns what was done and, separately,
/// every failure or deliberate refusal; one failure does not stop the rest.
pub fn remediate_at(
    root: &Root,
    findings: &[Finding],
    allow: &Allowlist,
    quarantine_dir: &Path,
    group_remove: &dyn Fn(&str, &str) -> Result<()>,
    now: i64,
) -> (Vec<Remedy>, Vec<Error>) {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    remove_members(root, findings, allow, group_remove, &mut done, &mut errors);
    quarantine_files(
        root,
        findings,
        allow,
        quarantine_dir,
        now,
        &mut done,
        &mut errors,
    );
    (done, errors)
}

fn not_remediated(subject: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::NotRemediated {
        subject: subject.into(),
        reason: reason.into(),
    }
}

fn remove_members(
    root: &Root,
    findings: &[Finding],
    allow: &Allowlist,
    group_remove: &dyn Fn(&str, &str) -> Result<()>,
    done: &mut Vec<Remedy>,
    errors: &mut Vec<Error>,
) {
    let pairs: BTreeSet<(&str, &str)> = findings
        .iter()
        .filter(|f| f.kind == super::KIND_ADMIN_GROUP_MEMBER)
        .filter_map(|f| {
            let mut p = f.id.splitn(3, ':');
            match (p.next(), p.next(), p.next()) {
                (Some("group-member"), Some(g), Some(u)) => Some((g, u)),
                _ => None,
            }
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    // Check against the files as they are now, not as they were when the scan ran.
    let read = |sys: &str| files::read_text(root, &root.path(sys));
    let acc = match (read("/etc/passwd"), read("/etc/group")) {
        (Ok(p), Ok(g)) => Accounts::parse(&p.unwrap_or_default(), &g.unwrap_or_default()),
        (Err(e), _) | (_, Err(e)) => return errors.push(e),
    };
    for (group, user) in pairs {
        let subject = format!("{user} in {group}");
        if groups::exempt(user, allow) {
            continue;
        }
        if groups::admin_group(group).is_none() {
            errors.push(not_remediated(
                subject,
                "not an admin group the scan reports",
            ));
            continue;
        }
        let via = acc
            .members(group)
            .into_iter()
            .find(|(u, _)| u == user)
            .map(|(_, v)| v);
        let primary = "it is the user's primary group; change it with `usermod -g`";
        match via {
            None => {} // already gone
            Some(Via::Primary) => errors.push(not_remediated(subject, primary)),
            Some(via) => {
                let safe = brevet_proto::validate::user_name(user).is_ok()
                    && brevet_proto::validate::group_name(group).is_ok();
                if !safe {
                    let why = "the name is not safe to pass to `gpasswd`; remove it by hand";
                    errors.push(not_remediated(subject, why));
                    continue;
                }
                match group_remove(user, group) {
                    Ok(()) => done.push(Remedy::RemovedFromGroup {
                        user: user.to_string(),
                        group: group.to_string(),
                    }),
                    Err(e) => errors.push(e),
                }
                if via == Via::Both {
                    errors.push(not_remediated(format!("{user} in {group}"), primary));
                }
            }
        }
    }
}

fn quarantine_files(
    root: &Root,
    findings: &[Finding],
    allow: &Allowlist,
    qdir: &Path,
    now: i64,
    done: &mut Vec<Remedy>,
    errors: &mut Vec<Error>,
) {
    let names: BTreeSet<&str> = findings
        .iter()
        .filter(|f| FILE_KINDS.contains(&f.kind.as_str()))
        .filter_map(|f| f.subject.strip_prefix(DROPIN_DIR)?.strip_prefix('/'))
        // Only what sudo reads through `#includedir`: moving a file named by an explicit
        // `#include` could leave sudo unable to start.
        .filter(|n| files::sudo_reads_name(n) && !n.contains(['/', '\0']))
        .filter(|n| {
            !crate::sudoers::is_drop_in_name(n) && !allow.sudoers_files.iter().any(|a| a == n)
        })
        .collect();
    if names.is_empty() {
        return;
    }
    let dropins = root.sudoers_d();
    match files::contained(root, &dropins) {
        Ok(Some(_)) => {}
        Ok(None) => return,
        Err(e) => return errors.push(e),
    }
    if let Err(e) = ensure_private_dir(qdir) {
        return errors.push(e);
    }
    let stamp = stamp(now);
    for name in names {
        let sys = format!("{DROPIN_DIR}/{name}");
        let src = dropins.join(name);
        if let Some(bg) = allow.breakglass_user.as_deref() {
            match files::read_text(root, &src) {
                Ok(Some(text)) if names_user(&text, bg) => {
                    let why = format!(
                        "it names the break-glass user `{bg}`; allow-list it or move that rule \
                         to an allow-listed file"
                    );
                    errors.push(not_remediated(sys, why));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            }
        }
        match quarantine(&src, &dropins, qdir, &format!("{name}.{stamp}")) {
            Ok(Some(to)) => done.push(Remedy::Quarantined { file: sys, to }),
            Ok(None) => {} // already gone
            Err(e) => errors.push(e),
        }
    }
}

/// Whether `user` appears as a word on any non-comment line (rules, aliases, Defaults).
fn names_user(text: &str, user: &str) -> bool {
    lexer::logical_lines(text).iter().any(|l| {
        l.text
            .split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '$')))
            .any(|w| w == user)
    })
}

/// `20261128T100000Z`: the UTC time a quarantined file is suffixed with.
fn stamp(now: i64) -> String {
    brevet_proto::timefmt::rfc3339(now)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect()
}

/// Moves the entry at `src` (any type; never opened) into the private directory `qdir` as
/// `<name>.<UTC time>`, creating `qdir` with mode 0700. `Ok(None)` if `src` is gone.
pub(crate) fn move_to_quarantine(src: &Path, qdir: &Path, now: i64) -> Result<Option<PathBuf>> {
    let (Some(dir), Some(name)) = (src.parent(), src.file_name()) else {
        let e = io::Error::other("it has no directory or name");
        return Err(Error::file("quarantine", src, e));
    };
    ensure_private_dir(qdir)?;
    let name = format!("{}.{}", name.to_string_lossy(), stamp(now));
    quarantine(src, dir, qdir, &name)
}

fn ensure_private_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            let e = io::Error::other("it exists and is not a directory");
            return Err(Error::file("use as quarantine", dir, e));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::file("create", dir, e))?,
        Err(e) => return Err(Error::file("inspect", dir, e)),
    }
    fs::set_permissions(dir, Permissions::from_mode(0o700))
        .map_err(|e| Error::file("restrict to 0700", dir, e))
}

/// Moves `src` into `qdir` under `name` (or `name.N` if taken). `Ok(None)` if `src` is gone.
/// Within a filesystem any entry is renamed (never opened); across filesystems only a regular
/// file or a symlink can be copied, anything else is left in place and reported.
fn quarantine(src: &Path, src_dir: &Path, qdir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let meta = match fs::symlink_metadata(src) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file("inspect", src, e)),
    };
    let mut dest = qdir.join(name);
    let mut n = 1;
    while fs::symlink_metadata(&dest).is_ok() {
        dest = qdir.join(format!("{name}.{n}"));
        n += 1;
    }
    match fs::rename(src, &dest) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::CrossesDevices => copy_then_remove(src, &dest, &meta)?,
        Err(e) => return Err(Error::file("move", src, e)),
    }
    sync_dir(qdir)?;
    sync_dir(src_dir)?;
    Ok(Some(dest))
}

/// The cross-filesystem move: the copy is durable before the original goes.
fn copy_then_remove(src: &Path, dest: &Path, meta: &fs::Metadata) -> Result<()> {
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).map_err(|e| Error::file("read link", src, e))?;
        std::os::unix::fs::symlink(target, dest).map_err(|e| Error::file("create", dest, e))?;
    } else {
        if !meta.is_file() {
            let e = io::Error::other(
                "not a regular file, so it cannot be copied to the quarantine on another \
                 filesystem; left in place",
            );
            return Err(Error::file("quarantine", src, e));
        }
        let (mut from, _) = sysfile::open(src, Links::Refuse)?
            .ok_or_else(|| Error::file("open", src, io::Error::from(ErrorKind::NotFound)))?;
        let mut to = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)
            .map_err(|e| Error::file("create", dest, e))?;
        if let Err(e) = io::copy(&mut from, &mut to).and_then(|_| to.sync_all()) {
            // Only the partial copy goes; the original is still in place.
            let _ = fs::remove_file(dest);
            return Err(Error::file("copy into quarantine", src, e));
        }
    }
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    fs::remove_file(src).map_err(|e| Error::file("remove", src, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::file("fsync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_user_is_word_exact() {
        let text = "# breakglass in a comment\nUser_Alias BG = breakglass\n";
        assert!(names_user(text, "breakglass"));
        assert!(!names_user(
            "# breakglass\nbreakglass2 ALL=ALL\n",
            "breakglass"
        ));
        assert!(names_user("Defaults:bg !lecture\n", "bg"));
    }

    #[test]
    fn private_dir_is_0700_and_must_be_a_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let q = tmp.path().join("a/b/quarantine");
        ensure_private_dir(&q).expect("create");
        let mode = fs::metadata(&q).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::set_permissions(&q, Permissions::from_mode(0o755)).expect("chmod");
        ensure_private_dir(&q).expect("again");
        let mode = fs::metadata(&q).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let f = tmp.path().join("file");
        fs::write(&f, "x").expect("write");
        assert!(ensure_private_dir(&f).is_err());
    }

    #[test]
    fn copy_fallback_keeps_content_and_removes_original() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        let dest = tmp.path().join("dest");
        fs::write(&src, "alice ALL=ALL\n").expect("write");
        let meta = fs::symlink_metadata(&src).expect("stat");
        copy_then_remove(&src, &dest, &meta).expect("copy");
        assert!(!src.exists());
        assert_eq!(fs::read_to_string(&dest).expect("read"), "alice ALL=ALL\n");
        // A failed copy leaves the original where it was.
        fs::write(&src, "x").expect("write");
        let meta = fs::symlink_metadata(&src).expect("stat");
        assert!(copy_then_remove(&src, &dest, &meta).is_err()); // dest exists: create_new fails
        assert!(src.exists());
        assert_eq!(fs::read_to_string(&dest).expect("read"), "alice ALL=ALL\n");
    }
}
