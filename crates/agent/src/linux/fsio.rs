//! Crash-safe file replacement: write a dotted temp file beside the target, fsync it, rename it
//! over the target, fsync the directory. A reader (sudo, the agent after a crash) sees either the
//! old file or the new one, never a torn one.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The temp name used for `path`: `.NAME.tmp` in the same directory (sudo ignores dotted names).
pub fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::State(format!("`{}` has no file name", path.display())))?;
    Ok(path.with_file_name(format!(".{name}.tmp")))
}

/// Creates `tmp` afresh (a stale one is removed first; `create_new` never follows a planted
/// symlink), writes `bytes`, sets `mode` exactly (the umask does not apply) and fsyncs.
pub fn write_new(tmp: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    match fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::file("remove stale", tmp, e)),
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .map_err(|e| Error::file("create", tmp, e))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::file("set permissions on", tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::file("write", tmp, e))
}

/// Renames `tmp` over `dest` and fsyncs the directory holding them.
pub fn commit(tmp: &Path, dest: &Path) -> Result<()> {
    fs::rename(tmp, dest).map_err(|e| Error::file("rename into", dest, e))?;
    sync_parent(dest)
}

/// The whole sequence: temp, fsync, rename, fsync directory.
pub fn write_atomic(dest: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = temp_path(dest)?;
    if let Err(e) = write_new(&tmp, bytes, mode) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    commit(&tmp, dest)
}

/// Fsyncs the directory that holds `path`, so a rename or unlink in it is durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::file("sync", dir, e))
}

/// Removes `path`; `Ok(false)` when it was not there.
pub fn remove_if_present(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::file("remove", path, e)),
    }
}

/// Largest state file the agent reads back (journal, event queue, baselines).
pub const MAX_STATE_FILE: u64 = 1 << 30;

/// Reads the agent's own file at `path` (a regular file, not through a symlink, never blocking:
/// [`super::sysfile`]); `Ok(None)` when it does not exist.
pub fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    super::sysfile::read(path, MAX_STATE_FILE, super::sysfile::Links::Refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_atomically_with_exact_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("f");
        write_atomic(&dest, b"one", 0o600).unwrap();
        write_atomic(&dest, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert!(!tmp.path().join(".f.tmp").exists());
        assert!(remove_if_present(&dest).unwrap());
        assert!(!remove_if_present(&dest).unwrap());
        assert_eq!(read_if_present(&dest).unwrap(), None);
    }

    #[test]
    fn a_planted_symlink_at_the_temp_name_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let dest = tmp.path().join("f");
        std::os::unix::fs::symlink(&victim, tmp.path().join(".f.tmp")).unwrap();
        write_atomic(&dest, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(fs::read(&dest).unwrap(), b"new");
    }
}
