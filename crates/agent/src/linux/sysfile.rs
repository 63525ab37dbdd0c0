//! Reading files that someone else may have planted: every system file the agent reads (the
//! sudoers tree, `/etc/passwd`, `/etc/group`, `login.defs`, sudo's log, dpkg's status, the zone
//! file, its own state files) goes through here.
//!
//! Guarantees: a FIFO, socket or device is never read and never blocks the agent (the name is
//! looked at first, then opened with `O_NONBLOCK | O_NOCTTY`, and the open handle is checked
//! again with `fstat`, so a swap between the look and the open is caught); a symbolic link is
//! not followed unless the caller asks for it (`O_NOFOLLOW`); at most `max` bytes are read, and a
//! file larger than that is an error, never a silent truncation. Every refusal is an
//! [`Error::File`] naming the path and what it is.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::{Error, Result};

/// Whether a symbolic link at the path itself is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// A symlink is refused (`O_NOFOLLOW`): the sudoers tree, the account files, state files.
    Refuse,
    /// A symlink is followed (`/etc/localtime` usually is one); the target must still be a
    /// regular file.
    Follow,
}

/// Bigger than any sane `/etc/passwd`, `/etc/group`, `login.defs` or sudoers file.
pub const MAX_SYSTEM_FILE: u64 = 8 << 20;

/// What a non-regular file is, for messages.
fn describe(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

fn refused(path: &Path, what: String) -> Error {
    Error::file("read", path, io::Error::other(what))
}

/// Opens the regular file at `path` for reading. `Ok(None)` when nothing is there; anything but
/// a regular file (or a symlink, with [`Links::Refuse`]) is an error and is never opened.
pub fn open(path: &Path, links: Links) -> Result<Option<(File, Metadata)>> {
    let looked = match links {
        Links::Refuse => fs::symlink_metadata(path),
        Links::Follow => fs::metadata(path),
    };
    let meta = match looked {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file("inspect", path, e)),
    };
    if !meta.is_file() {
        return Err(refused(
            path,
            format!("it is {}; not read", describe(&meta)),
        ));
    }
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(path, "it is a symbolic link; not followed".into()));
        }
        Err(e) => return Err(Error::file("open", path, e)),
    };
    // The name may have been swapped between the look and the open: judge the handle.
    let meta = file
        .metadata()
        .map_err(|e| Error::file("inspect", path, e))?;
    if !meta.is_file() {
        return Err(refused(
            path,
            format!("it is {}; not read", describe(&meta)),
        ));
    }
    Ok(Some((file, meta)))
}

/// The bytes of the regular file at `path` (at most `max`), or `Ok(None)` when it is absent.
pub fn read(path: &Path, max: u64, links: Links) -> Result<Option<Vec<u8>>> {
    let Some((file, meta)) = open(path, links)? else {
        return Ok(None);
    };
    let too_big = || refused(path, format!("it is larger than {max} bytes; not read"));
    if meta.len() > max {
        return Err(too_big());
    }
    let mut buf = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Error::file("read", path, e))?;
    if buf.len() as u64 > max {
        return Err(too_big()); // it grew while being read
    }
    Ok(Some(buf))
}

/// [`read`] as text, invalid UTF-8 replaced.
pub fn read_text(path: &Path, max: u64, links: Links) -> Result<Option<String>> {
    Ok(read(path, max, links)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Makes a FIFO at `path` with `mkfifo`; false (and says so) where it is not available.
    pub(crate) fn mkfifo(path: &Path) -> bool {
        let made = std::process::Command::new("/usr/bin/mkfifo")
            .arg(path)
            .status();
        let ok = matches!(made, Ok(s) if s.success());
        if !ok {
            eprintln!("SKIP a FIFO case: `/usr/bin/mkfifo` is not available");
        }
        ok
    }

    #[test]
    fn reads_regular_files_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        fs::write(&f, "hello\n").unwrap();
        assert_eq!(read(&f, 100, Links::Refuse).unwrap().unwrap(), b"hello\n");
        assert_eq!(
            read(&tmp.path().join("none"), 100, Links::Refuse).unwrap(),
            None
        );

        let err = read(&f, 3, Links::Refuse).unwrap_err().to_string();
        assert!(err.contains("larger than 3 bytes"), "{err}");
        let err = read(tmp.path(), 100, Links::Follow)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a directory"), "{err}");

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let err = read(&link, 100, Links::Refuse).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(
            read(&link, 100, Links::Follow).unwrap().unwrap(),
            b"hello\n"
        );

        let fifo = tmp.path().join("fifo");
        if mkfifo(&fifo) {
            // Would block for ever in a plain open(2) without a writer.
            let err = read(&fifo, 100, Links::Refuse).unwrap_err().to_string();
            assert!(err.contains("a FIFO"), "{err}");
            std::os::unix::fs::symlink(&fifo, tmp.path().join("to-fifo")).unwrap();
            let err = read(&tmp.path().join("to-fifo"), 100, Links::Follow)
                .unwrap_err()
                .to_string();
            assert!(err.contains("a FIFO"), "{err}");
        }
        // A device is never opened.
        let err = read(Path::new("/dev/zero"), 100, Links::Follow)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a device"), "{err}");
    }
}
