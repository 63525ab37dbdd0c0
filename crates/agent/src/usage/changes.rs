//! What changed on the device while a grant was in force.
//!
//! When a grant is applied the agent takes a [`Snapshot`]: every file, directory and symlink
//! under the watched paths (default `/etc`, inside the [`Root`]) with its type, mode, size and
//! SHA-256 (files larger than [`HASH_LIMIT`], or past the hashing budget, by size and mtime
//! instead), and the installed packages from dpkg's status file. The walk never follows a
//! symlink, never opens anything but a regular file (non-blocking), and stops at [`MAX_FILES`]
//! entries, saying so. The agent's own drop-ins, sudo's timestamp records and Brevet's sudo log
//! are left out. At removal a second snapshot is compared with the first ([`diff`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use brevet_proto::agent::{ChangeCounts, ChangeSummary, PackageChange, PackageVersion};
use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use crate::linux::sysfile::{self, Links};
use crate::root::Root;

/// Most entries recorded per snapshot.
pub const MAX_FILES: usize = 50_000;
/// Files larger than this are recorded by size and mtime.
pub const HASH_LIMIT: u64 = 4 << 20;
/// Most bytes hashed per snapshot; later files are recorded by size and mtime.
const HASH_BUDGET: u64 = 256 << 20;
/// Longest list of paths or packages in a summary (the counts have the totals).
pub const MAX_LIST: usize = 100;
/// dpkg's record of installed packages.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// Largest dpkg status file read (a full desktop install has a few MiB).
const MAX_DPKG_STATUS: u64 = 64 << 20;

/// System paths (and everything under them) a snapshot leaves out.
const EXCLUDED: [&str; 5] = [
    "/run/sudo/ts",
    "/var/run/sudo/ts",
    "/var/lib/sudo/ts",
    "/var/run/sudo-rs/ts",
    super::LOG_DIR,
];

/// One entry under a watched path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    /// `f` file, `d` directory, `l` symlink, `o` anything else.
    pub kind: char,
    pub mode: u32,
    pub size: u64,
    /// `sha256:HEX`, `mtime:NANOS` (large files), `link:TARGET`, or empty.
    pub digest: String,
}

/// The state of the watched paths and packages at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub taken_at: i64,
    pub watched: Vec<String>,
    /// System path → state.
    pub files: BTreeMap<String, FileState>,
    /// The walk stopped at [`MAX_FILES`].
    pub incomplete: bool,
    /// Package → version; `None` without a dpkg status file.
    pub packages: Option<BTreeMap<String, String>>,
}

/// Takes a snapshot of `watched` (system paths) and the packages, inside `root`. `also_excluded`
/// are further system paths to leave out (e.g. the agent's state dir on a real root).
pub fn snapshot(root: &Root, watched: &[String], also_excluded: &[String], now: i64) -> Snapshot {
    let mut w = Walk {
        root,
        excluded: EXCLUDED
            .iter()
            .map(|s| s.to_string())
            .chain(also_excluded.iter().cloned())
            .collect(),
        out: BTreeMap::new(),
        incomplete: false,
        budget: HASH_BUDGET,
    };
    for p in watched {
        w.walk(p);
    }
    // Not there, or not a regular file of a sane size: no package record (never a hang).
    let packages = sysfile::read(&root.path(DPKG_STATUS), MAX_DPKG_STATUS, Links::Refuse)
        .ok()
        .flatten()
        .map(|b| dpkg_installed(&String::from_utf8_lossy(&b)));
    Snapshot {
        taken_at: now,
        watched: watched.to_vec(),
        files: w.out,
        incomplete: w.incomplete,
        packages,
    }
}

struct Walk<'a> {
    root: &'a Root,
    excluded: Vec<String>,
    out: BTreeMap<String, FileState>,
    incomplete: bool,
    budget: u64,
}

impl Walk<'_> {
    fn walk(&mut self, start: &str) {
        let mut stack = vec![start.trim_end_matches('/').to_owned()];
        while let Some(sys) = stack.pop() {
            if self.is_excluded(&sys) || self.out.contains_key(&sys) {
                continue;
            }
            if self.out.len() >= MAX_FILES {
                self.incomplete = true;
                return;
            }
            let host = self.root.path(&sys);
            let Ok(meta) = fs::symlink_metadata(&host) else {
                continue;
            };
            let ft = meta.file_type();
            let mode = meta.mode() & 0o7777;
            let state = if ft.is_dir() {
                if let Ok(entries) = fs::read_dir(&host) {
                    let mut names: Vec<String> = entries
                        .flatten()
                        .filter_map(|e| e.file_name().into_string().ok())
                        .collect();
                    names.sort_unstable_by(|a, b| b.cmp(a)); // popped in byte order
                    let base = if sys.is_empty() {
                        String::new()
                    } else {
                        sys.clone()
                    };
                    stack.extend(names.into_iter().map(|n| format!("{base}/{n}")));
                }
                FileState {
                    kind: 'd',
                    mode,
                    size: 0,
                    digest: String::new(),
                }
            } else if ft.is_symlink() {
                let target = fs::read_link(&host)
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                FileState {
                    kind: 'l',
                    mode: 0,
                    size: 0,
                    digest: format!("link:{target}"),
                }
            } else if ft.is_file() {
                FileState {
                    kind: 'f',
                    mode,
                    size: meta.len(),
                    digest: self.digest(&host, &meta),
                }
            } else {
                FileState {
                    kind: 'o',
                    mode,
                    size: 0,
                    digest: String::new(),
                }
            };
            self.out
                .insert(if sys.is_empty() { "/".into() } else { sys }, state);
        }
    }

    fn is_excluded(&self, sys: &str) -> bool {
        let name = sys.rsplit('/').next().unwrap_or_default();
        let in_sudoers_d = sys.strip_suffix(name) == Some("/etc/sudoers.d/");
        if in_sudoers_d
            && (crate::sudoers::is_drop_in_name(name) || crate::sudoers::is_temp_name(name))
        {
            return true;
        }
        self.excluded.iter().any(|x| {
            sys == x
                || sys
                    .strip_prefix(x.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }

    fn digest(&mut self, host: &Path, meta: &fs::Metadata) -> String {
        let by_time = || format!("mtime:{}", meta.mtime() * 1_000_000_000 + meta.mtime_nsec());
        if meta.len() > HASH_LIMIT || meta.len() > self.budget {
            return by_time();
        }
        let Ok(Some((f, _))) = sysfile::open(host, Links::Refuse) else {
            return by_time();
        };
        let mut ctx = Context::new(&SHA256);
        let mut buf = [0u8; 64 * 1024];
        let mut f = f.take(HASH_LIMIT + 1);
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    ctx.update(&buf[..n]);
                    self.budget = self.budget.saturating_sub(n as u64);
                }
                Err(_) => return by_time(),
            }
        }
        format!(
            "sha256:{}",
            data_encoding::HEXLOWER.encode(ctx.finish().as_ref())
        )
    }
}

/// Installed packages in dpkg's status file: name → version, for every paragraph whose
/// `Status` is `install|hold ok installed`. Packages of `Multi-Arch: same` are keyed
/// `name:arch`.
pub fn dpkg_installed(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for para in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut status, mut same) = ("", "", "", "", false);
        for line in para.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k {
                "Package" => name = v,
                "Version" => version = v,
                "Architecture" => arch = v,
                "Status" => status = v,
                "Multi-Arch" => same = v == "same",
                _ => {}
            }
        }
        let installed = matches!(
            status.split_whitespace().collect::<Vec<_>>().as_slice(),
            ["install" | "hold", "ok", "installed"]
        );
        if installed && !name.is_empty() {
            let key = if same && !arch.is_empty() {
                format!("{name}:{arch}")
            } else {
                name.to_owned()
            };
            out.insert(key, version.to_owned());
        }
    }
    out
}

/// Compares two snapshots. `since`/`until` are written into the summary as given.
pub fn diff(before: &Snapshot, after: &Snapshot, since: String, until: String) -> ChangeSummary {
    let mut s = ChangeSummary {
        watched: after.watched.clone(),
        since,
        until,
        incomplete: before.incomplete || after.incomplete,
        packages_tracked: before.packages.is_some() && after.packages.is_some(),
        ..ChangeSummary::default()
    };
    let mut counts = ChangeCounts::default();
    for (path, state) in &after.files {
        match before.files.get(path) {
            None => push(&mut s.added, &mut counts.added, path.clone()),
            Some(old) if old != state => push(&mut s.changed, &mut counts.changed, path.clone()),
            Some(_) => {}
        }
    }
    for path in before.files.keys() {
        if !after.files.contains_key(path) {
            push(&mut s.removed, &mut counts.removed, path.clone());
        }
    }
    if let (Some(b), Some(a)) = (&before.packages, &after.packages) {
        for (package, version) in a {
            match b.get(package) {
                None => push(
                    &mut s.packages_installed,
                    &mut counts.packages_installed,
                    PackageVersion {
                        package: package.clone(),
                        version: version.clone(),
                    },
                ),
                Some(old) if old != version => push(
                    &mut s.packages_upgraded,
                    &mut counts.packages_upgraded,
                    PackageChange {
                        package: package.clone(),
                        from: old.clone(),
                        to: version.clone(),
                    },
                ),
                Some(_) => {}
            }
        }
        for (package, version) in b {
            if !a.contains_key(package) {
                push(
                    &mut s.packages_removed,
                    &mut counts.packages_removed,
                    PackageVersion {
                        package: package.clone(),
                        version: version.clone(),
                    },
                );
            }
        }
    }
    s.counts = counts;
    s
}

fn push<T>(list: &mut Vec<T>, count: &mut u64, item: T) {
    *count += 1;
    if list.len() < MAX_LIST {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const STATUS: &str = "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2\nArchitecture: amd64\n\n\
        Package: libc6\nStatus: install ok installed\nMulti-Arch: same\nArchitecture: amd64\nVersion: 2.36-9\nDescription: GNU C Library\n  more text: here\n\n\
        Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
        Package: held\nStatus: hold ok installed\nVersion: 3\n";

    fn tree() -> (tempfile::TempDir, Root) {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path());
        for d in [
            "/etc/sudoers.d",
            "/etc/ssh",
            "/run/sudo/ts",
            "/var/lib/dpkg",
        ] {
            fs::create_dir_all(root.path(d)).unwrap();
        }
        fs::write(root.path("/etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        fs::write(root.path("/etc/ssh/sshd_config"), "PermitRootLogin no\n").unwrap();
        fs::write(root.path("/etc/sudoers.d/README"), "#\n").unwrap();
        fs::write(root.path(DPKG_STATUS), STATUS).unwrap();
        (tmp, root)
    }

    #[test]
    fn reads_installed_packages() {
        let p = dpkg_installed(STATUS);
        assert_eq!(
            p.into_iter().collect::<Vec<_>>(),
            [
                ("bash".into(), "5.2.15-2".into()),
                ("held".into(), "3".into()),
                ("libc6:amd64".into(), "2.36-9".into())
            ]
        );
        assert!(dpkg_installed("").is_empty());
        assert!(dpkg_installed("Package:\nStatus: install ok installed\n").is_empty());
        assert!(dpkg_installed(":::\n\n\n\u{0}").is_empty());
    }

    #[test]
    fn finds_what_was_added_changed_and_removed() {
        let (_tmp, root) = tree();
        let watched = vec!["/etc".to_owned(), "/run".to_owned()];
        let before = snapshot(&root, &watched, &[], 100);
        assert!(before.files.contains_key("/etc/hosts"));
        assert!(before.files.contains_key("/etc"));
        assert!(!before.incomplete);
        assert_eq!(before.packages.as_ref().unwrap().len(), 3);

        fs::write(root.path("/etc/motd"), "hello\n").unwrap();
        fs::write(root.path("/etc/hosts"), "127.0.0.1 localhost evil\n").unwrap();
        fs::set_permissions(
            root.path("/etc/ssh/sshd_config"),
            fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        fs::remove_file(root.path("/etc/sudoers.d/README")).unwrap();
        std::os::unix::fs::symlink("/bin/sh", root.path("/etc/shell")).unwrap();
        // Left out: the agent's drop-ins and temp files, sudo's timestamps, Brevet's log.
        fs::write(
            root.path("/etc/sudoers.d/brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d"),
            "x",
        )
        .unwrap();
        fs::write(
            root.path("/etc/sudoers.d/.brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d.tmp"),
            "x",
        )
        .unwrap();
        fs::write(root.path("/run/sudo/ts/alice"), "x").unwrap();
        let status = STATUS
            .replace("5.2.15-2", "5.2.15-3")
            .replace("Package: held\nStatus: hold ok installed\nVersion: 3\n", "")
            + "\nPackage: nginx\nStatus: install ok installed\nVersion: 1.22\n";
        fs::write(root.path(DPKG_STATUS), status).unwrap();

        let after = snapshot(&root, &watched, &[], 200);
        let s = diff(&before, &after, "a".into(), "b".into());
        assert_eq!(s.added, ["/etc/motd", "/etc/shell"]);
        assert_eq!(s.changed, ["/etc/hosts", "/etc/ssh/sshd_config"]);
        assert_eq!(s.removed, ["/etc/sudoers.d/README"]);
        assert_eq!(
            s.packages_installed,
            [PackageVersion {
                package: "nginx".into(),
                version: "1.22".into()
            }]
        );
        assert_eq!(
            s.packages_removed,
            [PackageVersion {
                package: "held".into(),
                version: "3".into()
            }]
        );
        assert_eq!(
            s.packages_upgraded,
            [PackageChange {
                package: "bash".into(),
                from: "5.2.15-2".into(),
                to: "5.2.15-3".into()
            }]
        );
        assert_eq!(s.counts.added, 2);
        assert!(s.packages_tracked && !s.incomplete);
        assert_eq!((s.since.as_str(), s.until.as_str()), ("a", "b"));

        // Nothing changed: an empty summary.
        let again = snapshot(&root, &watched, &[], 300);
        let s = diff(&after, &again, "a".into(), "b".into());
        assert!(s.added.is_empty() && s.changed.is_empty() && s.removed.is_empty());
        assert_eq!(s.counts, ChangeCounts::default());
    }

    #[test]
    fn lists_are_bounded_and_counts_are_not() {
        let (_tmp, root) = tree();
        let watched = vec!["/etc".to_owned()];
        let before = snapshot(&root, &watched, &[], 1);
        fs::create_dir(root.path("/etc/many")).unwrap();
        for i in 0..(MAX_LIST + 50) {
            fs::write(root.path(&format!("/etc/many/{i:04}")), "x").unwrap();
        }
        let s = diff(
            &before,
            &snapshot(&root, &watched, &[], 2),
            "".into(),
            "".into(),
        );
        assert_eq!(s.added.len(), MAX_LIST);
        assert_eq!(
            s.counts.added,
            MAX_LIST as u64 + 51,
            "the files and their directory"
        );
    }

    #[test]
    fn odd_trees_are_walked_safely() {
        let (_tmp, root) = tree();
        // A FIFO is recorded, never opened; a symlink loop is not followed; a missing watched
        // path is simply empty; without dpkg packages are not tracked.
        let fifo = root.path("/etc/fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        std::os::unix::fs::symlink(root.path("/etc"), root.path("/etc/loop")).unwrap();
        fs::remove_file(root.path(DPKG_STATUS)).unwrap();
        let s = snapshot(
            &root,
            &["/etc".into(), "/nope".into()],
            &["/etc/ssh".into()],
            1,
        );
        assert_eq!(s.files["/etc/fifo"].kind, 'o');
        assert_eq!(s.files["/etc/loop"].kind, 'l');
        assert!(!s.files.contains_key("/etc/loop/hosts"));
        assert!(
            !s.files.contains_key("/etc/ssh/sshd_config"),
            "excluded by the caller"
        );
        assert!(s.packages.is_none());
        let d = diff(&s, &s, "".into(), "".into());
        assert!(!d.packages_tracked);
    }
}
