//! The saved login: `session.json` in the configuration directory.
//!
//! `brevet login` writes the server URL, the absolute path of its CA file, the session token, the
//! user name and the expiry; later commands use them when no flag or environment variable says
//! otherwise. The token is a secret: the file is written as a temporary file with mode 0600 and
//! renamed into place, a directory the client creates is mode 0700, and a session file that other
//! users can read is refused rather than used.
//!
//! The directory is a parameter everywhere, so tests use a temporary one and run in parallel.

use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

const FILE: &str = "session.json";

/// What `brevet login` keeps for later commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// `https://host:port`, as normalized by the client.
    pub server: String,
    /// Absolute path of the CA certificate (PEM) that the server's certificate chains to.
    pub ca: PathBuf,
    pub token: String,
    pub user: String,
    /// RFC 3339, as the server returned it.
    pub expires_at: String,
}

impl Session {
    /// Whether the session is over at `now` (unix seconds). An unreadable expiry counts as over.
    pub fn expired(&self, now: i64) -> bool {
        brevet_proto::timefmt::parse_rfc3339("expires_at", &self.expires_at)
            .map_or(true, |at| at <= now)
    }
}

/// The configuration directory: `$BREVET_CONFIG_DIR`, else `$XDG_CONFIG_HOME/brevet`, else
/// `$HOME/.config/brevet`. Empty values count as unset, as does a relative `XDG_CONFIG_HOME`
/// (the XDG specification says to ignore it).
pub fn config_dir(
    brevet_config_dir: Option<OsString>,
    xdg_config_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(brevet_config_dir) {
        return Some(dir);
    }
    if let Some(xdg) = set(xdg_config_home).filter(|p| p.is_absolute()) {
        return Some(xdg.join("brevet"));
    }
    set(home).map(|h| h.join(".config").join("brevet"))
}

/// Where the session lives inside `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Reads the session in `dir`; `None` when there is none.
pub fn load(dir: &Path) -> Result<Option<Session>, Error> {
    let path = path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::File {
                action: "read",
                path,
                source,
            });
        }
    };
    if readable_by_others(&path)? {
        return Err(Error::SessionPermissions { path });
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::SessionCorrupt {
            path,
            detail: e.to_string(),
        })
}

/// Writes `session` to `dir` (created 0700 if missing) as a 0600 file, atomically.
pub fn save(dir: &Path, session: &Session) -> Result<(), Error> {
    create_private_dir(dir)?;
    let path = path(dir);
    let tmp = dir.join(format!(".{FILE}.tmp-{}", std::process::id()));
    let file_err = |action, source| Error::File {
        action,
        path: tmp.clone(),
        source,
    };
    let text = serde_json::to_string_pretty(session).map_err(std::io::Error::other);
    let text = text.map_err(|e| file_err("write", e))?;
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(file_err("remove", e)),
        _ => {}
    }
    let mut file = private_file(&tmp).map_err(|e| file_err("create", e))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(file_err("write", e));
    }
    fs::rename(&tmp, &path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        Error::File {
            action: "write",
            path,
            source,
        }
    })
}

/// Deletes the session in `dir`; whether there was one.
pub fn remove(dir: &Path) -> Result<bool, Error> {
    let path = path(dir);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::File {
            action: "remove",
            path,
            source,
        }),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        // An existing directory keeps its mode: it may be shared (BREVET_CONFIG_DIR=/tmp/x);
        // the session file itself is 0600 either way.
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::File {
            action: "create directory",
            path: dir.to_owned(),
            source,
        })
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|source| Error::File {
        action: "create directory",
        path: dir.to_owned(),
        source,
    })
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> Result<bool, Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|source| Error::File {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    Ok(meta.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> Result<bool, Error> {
    Ok(false)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> Session {
        Session {
            server: "https://127.0.0.1:8443".into(),
            ca: "/var/lib/brevet/ca.pem".into(),
            token: "brv_secret".into(),
            user: "alice".into(),
            expires_at: "2026-11-28T18:00:00Z".into(),
        }
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trips_with_private_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("brevet");
        assert_eq!(load(&dir).unwrap(), None);
        save(&dir, &sample()).unwrap();
        assert_eq!(load(&dir).unwrap(), Some(sample()));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path(&dir)), 0o600);
        // Overwriting keeps the mode and leaves no temporary file behind.
        let mut s = sample();
        s.user = "bob".into();
        save(&dir, &s).unwrap();
        assert_eq!(load(&dir).unwrap(), Some(s));
        assert_eq!(mode(&path(&dir)), 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(remove(&dir).unwrap());
        assert!(!remove(&dir).unwrap());
        assert_eq!(load(&dir).unwrap(), None);
    }

    #[test]
    fn a_session_others_can_read_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        save(tmp.path(), &sample()).unwrap();
        fs::set_permissions(path(tmp.path()), fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("readable by other users"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_damaged_session_says_how_to_recover() {
        let tmp = tempfile::tempdir().unwrap();
        save(tmp.path(), &sample()).unwrap();
        fs::write(path(tmp.path()), "{").unwrap();
        let err = load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("brevet login"), "{err}");
    }

    #[test]
    fn expiry_fails_closed() {
        let mut s = sample();
        let at = brevet_proto::timefmt::parse_rfc3339("t", &s.expires_at).unwrap();
        assert!(!s.expired(at - 1));
        assert!(s.expired(at));
        s.expires_at = "soon".into();
        assert!(s.expired(0));
    }

    #[test]
    fn config_dir_precedence() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            config_dir(os("/c"), os("/x"), os("/h")),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            config_dir(os(""), os("/x"), os("/h")),
            Some(PathBuf::from("/x/brevet"))
        );
        assert_eq!(
            config_dir(None, os("rel"), os("/h")),
            Some(PathBuf::from("/h/.config/brevet"))
        );
        assert_eq!(config_dir(None, None, None), None);
    }
}
