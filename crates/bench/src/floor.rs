//! The floor the agent's latencies are compared with: what installing and removing one drop-in
//! costs on this machine with nothing else in the way, done here the way the agent does it
//! (DESIGN §5): write `.brevet_<id>.tmp` with mode 0440, fsync it, `visudo -cf` it, rename it
//! to `brevet_<id>`, fsync the directory. Removal is unlink and directory fsync. Each step is
//! timed, in the benchmark's temporary directory (the same disk as the agents' sandboxes).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::stats::Summary;

/// What the floor measured.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Floor {
    /// Write, fsync, `visudo -cf`, rename, directory fsync.
    pub(crate) install: Summary,
    /// The parts of `install`: write + fsync, `visudo -cf`, rename + directory fsync.
    pub(crate) write_fsync: Summary,
    pub(crate) visudo: Summary,
    pub(crate) rename_fsync: Summary,
    /// Unlink and directory fsync.
    pub(crate) remove: Summary,
}

/// The `visudo` the sandboxed agents use: on `$PATH`, else in sbin.
pub(crate) fn find_visudo() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .map(|d| d.join("visudo"))
        .find(|p| p.is_file())
}

/// Installs and removes `n` drop-ins in a new directory under `dir`.
pub(crate) fn measure(visudo: &Path, dir: &Path, n: usize) -> Result<Floor, String> {
    let d = dir.join("floor");
    fs::create_dir_all(&d).map_err(|e| format!("cannot create `{}`: {e}", d.display()))?;
    let (mut install, mut write, mut check, mut rename, mut remove) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let id = format!("{i:032x}");
        let tmp = d.join(format!(".brevet_{id}.tmp"));
        let dest = d.join(format!("brevet_{id}"));
        let t0 = Instant::now();
        write_synced(&tmp, drop_in_text(i).as_bytes())?;
        let t1 = Instant::now();
        visudo_check(visudo, &tmp)?;
        let t2 = Instant::now();
        fs::rename(&tmp, &dest).map_err(|e| format!("cannot rename `{}`: {e}", tmp.display()))?;
        sync_dir(&d)?;
        let t3 = Instant::now();
        install.push(t3 - t0);
        write.push(t1 - t0);
        check.push(t2 - t1);
        rename.push(t3 - t2);

        let t = Instant::now();
        fs::remove_file(&dest).map_err(|e| format!("cannot remove `{}`: {e}", dest.display()))?;
        sync_dir(&d)?;
        remove.push(t.elapsed());
    }
    let _ = fs::remove_dir(&d);
    Ok(Floor {
        install: Summary::of(&mut install),
        write_fsync: Summary::of(&mut write),
        visudo: Summary::of(&mut check),
        rename_fsync: Summary::of(&mut rename),
        remove: Summary::of(&mut remove),
    })
}

/// A drop-in of the shape the agent writes for the benchmark's role.
fn drop_in_text(i: usize) -> String {
    format!(
        "# Brevet grant {i:032x}: op01 as root on dev-0, ticket none. Managed by brevet-agent.\n\
         Defaults:op01 timestamp_timeout=0\n\
         Defaults:op01 logfile=/var/log/brevet/sudo.log\n\
         op01 ALL=(root) NOTBEFORE=20260101000000Z NOTAFTER=20260101000005Z NOPASSWD: /usr/bin/id\n"
    )
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o440)
        .open(path)
        .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot fsync `{}`: {e}", dir.display()))
}

fn visudo_check(visudo: &Path, file: &Path) -> Result<(), String> {
    let out = Command::new(visudo)
        .arg("-cf")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", visudo.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`visudo -cf` rejected the floor's drop-in: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Floor {
    pub(crate) fn print(&self) {
        use crate::stats::ms;
        let p = |name: &str, s: &Summary| {
            println!(
                "    {name:<34} p50 {} ms, p99 {} ms, max {} ms",
                ms(s.p50),
                ms(s.p99),
                ms(s.max)
            );
        };
        println!("  floor ({} drop-ins):", self.install.count);
        p("install (write..dir fsync)", &self.install);
        p("  write + fsync", &self.write_fsync);
        p("  visudo -cf", &self.visudo);
        p("  rename + directory fsync", &self.rename_fsync);
        p("remove (unlink + directory fsync)", &self.remove);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_drop_in_is_accepted_by_visudo() {
        let Some(visudo) = find_visudo() else {
            eprintln!("SKIP the_floor_drop_in_is_accepted_by_visudo: visudo is not installed");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let f = measure(&visudo, dir.path(), 3).expect("floor");
        assert_eq!(f.install.count, 3);
        assert!(f.install.p50 >= f.visudo.p50);
    }
}
