//! Locating the PostgreSQL tools: `initdb` and `pg_ctl` from the first `PATH` entry that has
//! both, else from the highest version under `/usr/lib/postgresql/*/bin` (Debian's layout); `psql`
//! from beside them, else from `PATH`.
//!
//! Symlinks are resolved first, so `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb`
//! finds the `psql` of the same version rather than Debian's version-picking wrapper.

use std::path::{Path, PathBuf};

const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The tools a throwaway cluster needs.
#[derive(Debug, Clone)]
pub(crate) struct PgBins {
    pub(crate) initdb: PathBuf,
    pub(crate) pg_ctl: PathBuf,
    pub(crate) psql: PathBuf,
}

/// What the search found.
pub(crate) enum Found {
    /// No server tools at all: the caller skips.
    Nothing,
    /// Server tools without a client.
    NoPsql {
        server_dir: PathBuf,
    },
    Bins(PgBins),
}

pub(crate) fn find() -> Found {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path_dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let server = path_dirs
        .iter()
        .find(|d| is_server_dir(d))
        .cloned()
        .or_else(|| highest_debian_dir(Path::new(DEBIAN_ROOT)));
    let Some(server) = server else {
        return Found::Nothing;
    };
    let initdb = resolve(&server.join("initdb"));
    let pg_ctl = resolve(&server.join("pg_ctl"));
    let beside = initdb.parent().map(|d| d.join("psql"));
    let psql = beside.filter(|p| is_executable(p)).or_else(|| {
        path_dirs
            .iter()
            .map(|d| d.join("psql"))
            .find(|p| is_executable(p))
    });
    match psql {
        Some(psql) => Found::Bins(PgBins {
            initdb,
            pg_ctl,
            psql,
        }),
        None => Found::NoPsql { server_dir: server },
    }
}

fn is_server_dir(dir: &Path) -> bool {
    is_executable(&dir.join("initdb")) && is_executable(&dir.join("pg_ctl"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn resolve(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `root/<version>/bin` with the highest version that holds the server tools.
fn highest_debian_dir(root: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(root).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = parse_version(e.file_name().to_str()?)?;
            let bin = e.path().join("bin");
            is_server_dir(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// "15" → [15], "9.6" → [9, 6]; anything else is not a version directory.
fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|p| p.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("15"), Some(vec![15]));
        assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
        assert_eq!(parse_version("common"), None);
        assert!(parse_version("10") > parse_version("9.6"));
    }

    fn fake_tool(dir: &Path, name: &str) {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn picks_highest_version_with_both_tools() {
        let root = tempfile::tempdir().unwrap();
        for (version, tools) in [
            ("9.6", &["initdb", "pg_ctl"][..]),
            ("13", &["initdb", "pg_ctl"][..]),
            ("17", &["initdb"][..]),
        ] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for tool in tools {
                fake_tool(&bin, tool);
            }
        }
        std::fs::create_dir_all(root.path().join("common/bin")).unwrap();
        assert_eq!(
            highest_debian_dir(root.path()),
            Some(root.path().join("13/bin"))
        );
    }

    #[test]
    fn no_versions_no_dir() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(highest_debian_dir(root.path()), None);
        assert_eq!(highest_debian_dir(&root.path().join("missing")), None);
    }
}
