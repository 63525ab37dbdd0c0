//! Read-only access to the scanned tree. Every read is confined to the [`Root`]: the path is
//! canonicalised and must stay under the canonical base, so a symlink or an `#include` cannot
//! make a `--root` scan read the host's files. Only regular files are opened ([`sysfile`]: a FIFO
//! planted in `/etc/sudoers.d` cannot hang the agent) and at most [`MAX_BYTES`] are read.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::linux::sysfile::{self, Links};
use crate::root::Root;

/// Bigger than any sane `/etc/group` or sudoers file; anything larger is reported, not read.
pub(crate) const MAX_BYTES: u64 = sysfile::MAX_SYSTEM_FILE;

/// Resolves `path` (already inside the root) to its canonical form, refusing anything that
/// ends up outside the root. `Ok(None)` when it does not exist.
pub(crate) fn contained(root: &Root, path: &Path) -> Result<Option<PathBuf>, Error> {
    let canon = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file("resolve", path, e)),
    };
    let base_path = root.path("/");
    let base = fs::canonicalize(&base_path).map_err(|e| Error::file("resolve", base_path, e))?;
    if !canon.starts_with(&base) {
        return Err(Error::file(
            "read",
            path,
            io::Error::other("it resolves outside the scanned root; not followed"),
        ));
    }
    Ok(Some(canon))
}

/// The bytes of a regular file, or `Ok(None)` when it does not exist. Read through
/// [`sysfile`] from its canonical path: a FIFO or device is never opened, a name swapped for a
/// link after the check is refused, and at most `max` bytes are read.
pub(crate) fn read_bytes(root: &Root, path: &Path, max: u64) -> Result<Option<Vec<u8>>, Error> {
    let Some(canon) = contained(root, path)? else {
        return Ok(None);
    };
    sysfile::read(&canon, max, Links::Refuse)
}

/// A text file read leniently (invalid UTF-8 replaced), or `Ok(None)` when it does not exist.
pub(crate) fn read_text(root: &Root, path: &Path) -> Result<Option<String>, Error> {
    Ok(read_bytes(root, path, MAX_BYTES)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// The entry names of a directory in byte order (the order sudo reads `#includedir`), or
/// `Ok(None)` when it does not exist.
pub(crate) fn list_dir(root: &Root, path: &Path) -> Result<Option<Vec<OsString>>, Error> {
    let Some(canon) = contained(root, path)? else {
        return Ok(None);
    };
    let entries = fs::read_dir(&canon).map_err(|e| Error::file("list", path, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::file("list", path, e))?;
        names.push(entry.file_name());
    }
    names.sort();
    Ok(Some(names))
}

/// Whether sudo's `#includedir` reads a file of this name: not if it contains `.` or ends in `~`
/// (editor backups, package-manager leftovers, Brevet's own temp files).
pub(crate) fn sudo_reads_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('.') && !name.ends_with('~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_symlinks_out_of_the_root() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret"), "x").expect("write");
        let tmp = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path().join("secret"), tmp.path().join("link"))
            .expect("symlink");
        let root = Root::new(tmp.path());
        assert!(read_text(&root, &root.path("/link")).is_err());
        assert!(matches!(read_text(&root, &root.path("/missing")), Ok(None)));
    }

    #[test]
    fn refuses_fifos_and_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Root::new(tmp.path());
        std::fs::create_dir(tmp.path().join("d")).expect("mkdir");
        assert!(read_text(&root, &root.path("/d")).is_err());
        let fifo = tmp.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if matches!(made, Ok(s) if s.success()) {
            assert!(read_text(&root, &fifo).is_err());
        } else {
            eprintln!("skipped the FIFO case: `mkfifo` is not available");
        }
    }

    #[test]
    fn sudo_name_rule() {
        for (name, read) in [
            ("90-cloud", true),
            ("brevet_abc", true),
            ("README", true),
            ("x.bak", false),
            ("x~", false),
            (".hidden", false),
            ("", false),
        ] {
            assert_eq!(sudo_reads_name(name), read, "{name}");
        }
    }
}
