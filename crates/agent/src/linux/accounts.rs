//! Reading `/etc/passwd` and `/etc/group` (under the Root), and the pure edit the sandbox uses to
//! add or remove a group member. Lines the agent does not edit are kept byte for byte.

use std::path::Path;

use crate::linux::fsio;
use crate::root::Root;
use crate::{Error, Result};

/// The uid of `user` from ROOT/etc/passwd, if listed.
pub fn uid_of(root: &Root, user: &str) -> Option<u32> {
    let text = std::fs::read_to_string(root.path("/etc/passwd")).ok()?;
    text.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != user {
            return None;
        }
        f.nth(1)?.parse().ok()
    })
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
    std::fs::read_to_string(root.path("/etc/group"))
        .ok()
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
    let text = std::fs::read_to_string(path).map_err(|e| Error::file("read", path, e))?;
    let mode = std::fs::metadata(path)
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
    }
}
