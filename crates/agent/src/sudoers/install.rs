//! Installing and removing drop-ins under ROOT/etc/sudoers.d.
//!
//! Install writes `.brevet_<id>.tmp` (sudo ignores dotted names) with mode 0440, fsyncs it, has
//! the [`System`] check it (`visudo -cf`), and only then renames it into place and fsyncs the
//! directory. A drop-in the checker rejected is never installed, and its temp file is removed.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

use crate::linux::fsio;
use crate::linux::sysfile::{self, Links};
use crate::root::Root;
use crate::sudoers::{file_name, is_drop_in_name, is_temp_name};
use crate::system::System;
use crate::{Error, Result};

/// The mode of every drop-in (sudo ignores world-writable files).
pub const MODE: u32 = 0o440;

/// ROOT/etc/sudoers.d, created with mode 0750 if absent.
fn sudoers_d(root: &Root) -> Result<PathBuf> {
    let dir = root.sudoers_d();
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(&dir)
            .map_err(|e| Error::file("create", &dir, e))?;
    }
    Ok(dir)
}

/// Installs `content` as the drop-in of `grant_id`; returns its path.
pub fn install<S: System + ?Sized>(
    root: &Root,
    system: &S,
    grant_id: &str,
    content: &str,
) -> Result<PathBuf> {
    let name = file_name(grant_id)?;
    let dir = sudoers_d(root)?;
    let dest = dir.join(&name);
    let tmp = fsio::temp_path(&dest)?;
    let staged = fsio::write_new(&tmp, content.as_bytes(), MODE).and_then(|()| {
        if root.is_real() {
            std::os::unix::fs::chown(&tmp, Some(0), Some(0))
                .map_err(|e| Error::file("chown", &tmp, e))?;
        }
        system.check_sudoers(&tmp)
    });
    if let Err(e) = staged {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = fsio::commit(&tmp, &dest) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(dest)
}

/// Removes the drop-in of `grant_id`; `Ok(false)` if there was none.
pub fn remove(root: &Root, grant_id: &str) -> Result<bool> {
    let path = root.sudoers_d().join(file_name(grant_id)?);
    remove_path(&path)
}

/// Removes a drop-in by file name (reconciliation of orphans).
pub fn remove_named(root: &Root, name: &str) -> Result<bool> {
    remove_path(&root.sudoers_d().join(name))
}

fn remove_path(path: &std::path::Path) -> Result<bool> {
    let removed = fsio::remove_if_present(path)?;
    if removed {
        fsio::sync_parent(path)?;
    }
    Ok(removed)
}

/// The installed drop-in of `grant_id`: its text (lossy) and mode, or `None` when absent.
/// Anything but a regular file at that name (a FIFO, a link, a directory, a huge file) is an
/// error naming it, and is never opened in a way that could block.
pub fn installed(root: &Root, grant_id: &str) -> Result<Option<(String, u32)>> {
    let path = root.sudoers_d().join(file_name(grant_id)?);
    let Some(bytes) = sysfile::read(&path, sysfile::MAX_SYSTEM_FILE, Links::Refuse)? else {
        return Ok(None);
    };
    let mode = fs::symlink_metadata(&path)
        .map_err(|e| Error::file("inspect", &path, e))?
        .permissions()
        .mode();
    Ok(Some((
        String::from_utf8_lossy(&bytes).into_owned(),
        mode & 0o7777,
    )))
}

/// The names in ROOT/etc/sudoers.d that concern the agent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Exactly the shape the agent writes: `brevet_<32 lower-case hex>`.
    pub drop_ins: Vec<String>,
    /// Named `brevet_…` but not of that shape: not the agent's (quarantined by reconciliation).
    /// Raw names, as they may not be UTF-8.
    pub impostors: Vec<OsString>,
    /// The agent's leftover temp files, `.brevet_<32 hex>.tmp`.
    pub temps: Vec<String>,
}

/// Lists ROOT/etc/sudoers.d (sorted); an absent directory is an empty listing.
pub fn list(root: &Root) -> Result<Listing> {
    let dir = root.sudoers_d();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Listing::default()),
        Err(e) => return Err(Error::file("list", &dir, e)),
    };
    let mut out = Listing::default();
    for entry in entries {
        let entry = entry.map_err(|e| Error::file("list", &dir, e))?;
        let raw = entry.file_name();
        match raw.to_str() {
            Some(name) if is_drop_in_name(name) => out.drop_ins.push(name.to_owned()),
            Some(name) if is_temp_name(name) => out.temps.push(name.to_owned()),
            _ if raw.as_encoded_bytes().starts_with(super::PREFIX.as_bytes()) => {
                out.impostors.push(raw)
            }
            _ => {}
        }
    }
    out.drop_ins.sort();
    out.impostors.sort();
    out.temps.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sudoers::render;
    use crate::system::FakeSystem;

    const ID: &str = "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d";

    #[test]
    fn installs_with_mode_0440_and_no_temp_left() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        let sys = FakeSystem::new();
        let text = render(&crate::sudoers::render_tests_doc(), false).unwrap();
        let path = install(&root, &sys, ID, &text).unwrap();
        assert_eq!(
            path,
            root.path("/etc/sudoers.d/brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d")
        );
        assert_eq!(installed(&root, ID).unwrap(), Some((text, 0o440)));
        let dir_mode = fs::metadata(root.sudoers_d()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o750);
        assert_eq!(
            sys.calls(),
            ["check .brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d.tmp"]
        );
        assert_eq!(
            list(&root).unwrap(),
            Listing {
                drop_ins: vec!["brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d".into()],
                ..Listing::default()
            }
        );
        assert!(remove(&root, ID).unwrap());
        assert!(!remove(&root, ID).unwrap());
        assert_eq!(installed(&root, ID).unwrap(), None);
    }

    #[test]
    fn a_rejected_drop_in_is_never_installed_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        let sys = FakeSystem::new();
        sys.state().reject = Some(">>> syntax error near line 3 <<<".into());
        let text = render(&crate::sudoers::render_tests_doc(), false).unwrap();
        let err = install(&root, &sys, ID, &text).unwrap_err();
        assert!(matches!(err, Error::SudoersRejected { .. }), "{err}");
        assert_eq!(fs::read_dir(root.sudoers_d()).unwrap().count(), 0);

        // The built-in checker (FakeSystem's default) rejects text outside the subset too.
        sys.state().reject = None;
        assert!(install(&root, &sys, ID, "bob ALL=(ALL) ALL\n").is_err());
        assert_eq!(fs::read_dir(root.sudoers_d()).unwrap().count(), 0);
    }
}
