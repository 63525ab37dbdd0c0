//! Running the local `visudo -cf`: the authority on what the local sudo accepts. Its verdict is
//! final on a real root; the agent never installs a drop-in it rejected.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Error, Result};

/// The `visudo` executable, if installed in a fixed system directory (never through `$PATH`).
pub fn find() -> Option<PathBuf> {
    super::tools::find("visudo")
}

/// `visudo -cf FILE`; a rejection carries visudo's own words.
pub fn check_file(visudo: &Path, file: &Path) -> Result<()> {
    let out = Command::new(visudo)
        .arg("-cf")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: format!("{} -cf {}", visudo.display(), file.display()),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        if !detail.is_empty() {
            detail.push('\n');
        }
        detail.push_str(stdout.trim());
    }
    if detail.is_empty() {
        detail = format!("visudo exited with {}", out.status);
    }
    Err(Error::SudoersRejected {
        path: file.to_owned(),
        detail,
    })
}

/// `visudo -cf -` on `text` from stdin: true when accepted.
pub fn accepts(visudo: &Path, text: &str) -> bool {
    let child = Command::new(visudo)
        .args(["-cf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let wrote = child
        .stdin
        .take()
        .is_some_and(|mut s| s.write_all(text.as_bytes()).is_ok());
    let ok = child.wait().is_ok_and(|s| s.success());
    wrote && ok
}

/// A drop-in of the shape the agent writes, with `NOTBEFORE`/`NOTAFTER`.
const PROBE: &str = "# Brevet probe: does the local sudo accept time bounds?\n\
Defaults:brevet_probe timestamp_timeout=0\n\
brevet_probe ALL=(root) NOTBEFORE=20260101000000Z NOTAFTER=20260101003000Z NOPASSWD: /usr/bin/true\n";

/// Whether the local `visudo` accepts `NOTBEFORE=`/`NOTAFTER=` in the agent's drop-in shape
/// (sudo ≥ 1.9 does; sudo-rs does not).
pub fn probe_time_bounds(visudo: &Path) -> bool {
    accepts(visudo, PROBE)
        && !accepts(
            visudo,
            "brevet_probe ALL=(root) BOGUS=1 NOPASSWD: /usr/bin/true\n",
        )
}
