//! The programs the agent runs as root, found by absolute path in fixed system directories and
//! never through `$PATH`: whoever sets the agent's environment (a unit file, a shell with a
//! planted `~/bin`) cannot change what runs as root.
//!
//! A tool is accepted only as a regular, executable file that neither its group nor others may
//! write. A tool that is not found is not run: the caller says so and refuses the operation.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where tools are looked for, in this order. Nothing else is searched.
pub const DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// The absolute path of `name` in [`DIRS`], if a safe executable is there.
pub fn find(name: &str) -> Option<PathBuf> {
    find_in(&DIRS, name)
}

fn find_in(dirs: &[&str], name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') {
        return None;
    }
    dirs.iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| is_safe_executable(p))
}

/// A regular file (after symlinks: `/sbin` is often a link to `/usr/sbin`) with an execute bit,
/// not writable by group or others.
fn is_safe_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| {
        let mode = m.permissions().mode();
        m.is_file() && mode & 0o111 != 0 && mode & 0o022 == 0
    })
}

/// The message for a tool that was not found.
pub fn missing(name: &str) -> String {
    format!(
        "`{name}` was not found in {}; brevet-agent never looks it up through $PATH (install it \
         there)",
        DIRS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fixed_directories_and_safe_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_str().unwrap().to_owned();
        let tool = tmp.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let set = |mode| std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(mode));
        set(0o755).unwrap();
        assert_eq!(find_in(&[&dir], "tool"), Some(tool.clone()));
        set(0o775).unwrap();
        assert_eq!(find_in(&[&dir], "tool"), None, "group-writable");
        set(0o644).unwrap();
        assert_eq!(find_in(&[&dir], "tool"), None, "not executable");
        set(0o755).unwrap();
        assert_eq!(find_in(&[&dir], "../tool"), None);
        assert_eq!(find_in(&[&dir], ""), None);
        // The real tools of this machine are absolute paths in the fixed directories.
        if let Some(kill) = find("kill") {
            assert!(DIRS.iter().any(|d| kill.starts_with(d)), "{kill:?}");
        }
    }
}
