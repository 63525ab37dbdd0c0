//! Reading `/etc/passwd`, `/etc/group` and `/etc/login.defs` (under the Root, through
//! [`sysfile`], so a planted FIFO or link is refused and never blocks), and the pure edit the
//! sandbox uses to add or remove a group member. Lines the agent does not edit are kept byte for
//! byte.

use std::path::Path;

use crate::linux::fsio;
use crate::linux::sysfile::{self, Links, MAX_SYSTEM_FILE};
use crate::root::Root;
use crate::{Error, Result};

/// The system's default `UID_MIN` when login.defs does not set one.
pub const DEFAULT_UID_MIN: u32 = 1000;

fn read_etc(root: &Root, sys: &str) -> Result<Option<String>> {
    sysfile::read_text(&root.path(sys), MAX_SYSTEM_FILE, Links::Refuse)
}

/// The uid of `user` in the text of a passwd file.
pub fn uid_in(text: &str, user: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != user {
            return None;
        }
        f.nth(1)?.trim().parse().ok()
    })
}

/// The uid of `user` from ROOT/etc/passwd: `Ok(None)` when the file or the account is absent, an
/// error when the file cannot be read safely.
pub fn uid_checked(root: &Root, user: &str) -> Result<Option<u32>> {
    Ok(read_etc(root, "/etc/passwd")?.and_then(|t| uid_in(&t, user)))
}

/// The uid of `user` from ROOT/etc/passwd, if listed and readable.
pub fn uid_of(root: &Root, user: &str) -> Option<u32> {
    uid_checked(root, user).ok().flatten()
}

/// `UID_MIN` in the text of a login.defs file (`UID_MIN<blanks>NUMBER`, `#` comments).
pub fn uid_min_in(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == "UID_MIN").then_some(())?;
        words.next()?.parse().ok()
    })
}

/// The lowest uid of a person's account: `UID_MIN` from ROOT/etc/login.defs, or
/// [`DEFAULT_UID_MIN`] when the file or the setting is absent. A file that cannot be read safely
/// (a FIFO, a link, too large) is an error: the caller refuses rather than guesses.
pub fn uid_min(root: &Root) -> Result<u32> {
    Ok(read_etc(root, "/etc/login.defs")?
        .and_then(|t| uid_min_in(&t))
        .unwrap_or(DEFAULT_UID_MIN))
}

/// The members listed for `group` in the text of a group file; `None` if the group is absent.
pub fn members_in(text: &str, group: &str) -> Option<Vec<String>> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() != 4 || f[0] != group {
            return None;
        }
        Some(
            f[3].split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    })
}

/// The members of `group` in ROOT/etc/group (empty when the file or the group is absent).
pub fn members(root: &Root, group: &str) -> Vec<String> {
    read_etc(root, "/etc/group")
        .ok()
        .flatten()
        .and_then(|t| members_in(&t, group))
        .unwrap_or_default()
}

/// Returns the group file text with `user` added to (`add`) or removed from `group`, or `None`
/// when nothing changes. An absent group is an error.
pub fn edit_members(text: &str, group: &str, user: &str, add: bool) -> Result<Option<String>> {
    let mut found = false;
    let mut changed = false;
    let mut out = String::with_capacity(text.len() + user.len() + 1);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let f: Vec<&str> = body.split(':').collect();
        if f.len() == 4 && f[0] == group && !found {
            found = true;
            let mut list: Vec<&str> = f[3].split(',').filter(|m| !m.is_empty()).collect();
            let present = list.contains(&user);
            if add && !present {
                list.push(user);
                changed = true;
            } else if !add && present {
                list.retain(|m| *m != user);
                changed = true;
            }
            out.push_str(&format!("{}:{}:{}:{}", f[0], f[1], f[2], list.join(",")));
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    if !found {
        return Err(Error::Command {
            command: format!(
                "group {} `{user}` {} `{group}`",
                if add { "add" } else { "remove" },
                if add { "to" } else { "from" }
            ),
            detail: format!("there is no group `{group}`; create it first"),
        });
    }
    Ok(changed.then_some(out))
}

/// Rewrites the group file at `path` atomically with `user` added to or removed from `group`,
/// keeping the file's mode.
pub fn rewrite_group_file(path: &Path, group: &str, user: &str, add: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bytes = sysfile::read(path, MAX_SYSTEM_FILE, Links::Refuse)?
        .ok_or_else(|| Error::file("read", path, std::io::ErrorKind::NotFound.into()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::file(
            "edit",
            path,
            std::io::Error::other("it is not UTF-8; edit it by hand"),
        )
    })?;
    let mode = std::fs::symlink_metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    match edit_members(&text, group, user, add)? {
        Some(new) => fsio::write_atomic(path, new.as_bytes(), mode),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = "root:x:0:\nsudo:x:27:carol\ndocker:x:999:bob,carol\n";

    #[test]
    fn reads_members() {
        assert_eq!(members_in(GROUP, "root"), Some(vec![]));
        assert_eq!(
            members_in(GROUP, "docker"),
            Some(vec!["bob".into(), "carol".into()])
        );
        assert_eq!(members_in(GROUP, "wheel"), None);
    }

    #[test]
    fn edits_only_the_named_group() {
        let added = edit_members(GROUP, "sudo", "alice", true).unwrap().unwrap();
        assert_eq!(
            added,
            "root:x:0:\nsudo:x:27:carol,alice\ndocker:x:999:bob,carol\n"
        );
        let removed = edit_members(&added, "sudo", "alice", false)
            .unwrap()
            .unwrap();
        assert_eq!(removed, GROUP);
        let first = edit_members(GROUP, "root", "alice", true).unwrap().unwrap();
        assert!(first.starts_with("root:x:0:alice\n"));
        assert_eq!(edit_members(GROUP, "docker", "bob", true).unwrap(), None);
        assert_eq!(edit_members(GROUP, "docker", "alice", false).unwrap(), None);
        assert!(edit_members(GROUP, "wheel", "alice", true).is_err());
    }

    #[test]
    fn uid_from_passwd() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
        std::fs::write(
            tmp.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        )
        .unwrap();
        let root = Root::new(tmp.path());
        assert_eq!(uid_of(&root, "alice"), Some(1000));
        assert_eq!(uid_of(&root, "bob"), None);
        assert_eq!(uid_checked(&root, "root").unwrap(), Some(0));
    }

    #[test]
    fn uid_min_from_login_defs() {
        assert_eq!(
            uid_min_in("# UID_MIN 5\nUID_MIN\t\t 500\nUID_MAX 60000\n"),
            Some(500)
        );
        assert_eq!(uid_min_in("UID_MINX 5\nSYS_UID_MIN 100\n"), None);
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        assert_eq!(uid_min(&root).unwrap(), DEFAULT_UID_MIN, "no file");
        std::fs::create_dir_all(root.path("/etc")).unwrap();
        std::fs::write(root.path("/etc/login.defs"), "UMASK 022\n").unwrap();
        assert_eq!(uid_min(&root).unwrap(), DEFAULT_UID_MIN, "no setting");
        std::fs::write(root.path("/etc/login.defs"), "UID_MIN 2000\n").unwrap();
        assert_eq!(uid_min(&root).unwrap(), 2000);
        std::fs::remove_file(root.path("/etc/login.defs")).unwrap();
        if crate::linux::sysfile::tests::mkfifo(&root.path("/etc/login.defs")) {
            assert!(uid_min(&root).is_err(), "a FIFO is refused, not waited on");
        }
    }
}
