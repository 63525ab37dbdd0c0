//! Running the PostgreSQL server tools as an unprivileged user.
//!
//! `initdb` and `postgres` refuse to run as root. When the harness is root, the cluster's
//! directory is handed to the `postgres` account (owner, mode 0700) and the tools run through
//! `runuser -u postgres --`, or `su postgres -s /bin/sh -c` where `runuser` is missing. Otherwise
//! they run as the current user. Root is read from the owner of `/proc/self`, so no libc binding
//! is needed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const SERVICE_USER: &str = "postgres";

/// Whether this process runs with effective user id 0.
pub fn is_root() -> bool {
    match std::fs::metadata("/proc/self") {
        Ok(meta) => meta.uid() == 0,
        Err(_) => id(&["-u"]) == Some(0),
    }
}

/// Who runs `initdb` and `pg_ctl`.
#[derive(Debug)]
pub(crate) enum RunAs {
    CurrentUser,
    Service { uid: u32, gid: u32, via: Via },
}

#[derive(Debug)]
pub(crate) enum Via {
    Runuser(PathBuf),
    Su(PathBuf),
}

impl RunAs {
    pub(crate) fn detect() -> Result<RunAs, String> {
        if !is_root() {
            return Ok(RunAs::CurrentUser);
        }
        let (Some(uid), Some(gid)) = (id(&["-u", SERVICE_USER]), id(&["-g", SERVICE_USER])) else {
            return Err(format!(
                "running as root, and PostgreSQL refuses root, but there is no `{SERVICE_USER}` \
                 user to run it as: install the PostgreSQL server package or run tests as a \
                 normal user"
            ));
        };
        let via = match find_tool("runuser") {
            Some(path) => Via::Runuser(path),
            None => Via::Su(find_tool("su").ok_or(
                "running as root but neither `runuser` nor `su` was found to drop to `postgres`",
            )?),
        };
        Ok(RunAs::Service { uid, gid, via })
    }

    /// Whether the tools run as another user, who needs to reach the cluster's directory.
    pub(crate) fn is_other_user(&self) -> bool {
        matches!(self, RunAs::Service { .. })
    }

    /// Makes `dir` the tools' own: owner (when dropping privileges) and mode 0700.
    pub(crate) fn hand_over(&self, dir: &Path) -> Result<(), String> {
        if let RunAs::Service { uid, gid, .. } = self {
            std::os::unix::fs::chown(dir, Some(*uid), Some(*gid))
                .map_err(|e| format!("cannot give `{}` to `{SERVICE_USER}`: {e}", dir.display()))?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make `{}` mode 0700: {e}", dir.display()))
    }

    /// A command that runs `program args…` as the tools' user, in `cwd`, with a C locale (so log
    /// messages are English) and none of the caller's `PG*` variables.
    pub(crate) fn command(&self, program: &Path, args: &[String], cwd: &Path) -> Command {
        let mut cmd = match self {
            RunAs::CurrentUser => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            RunAs::Service {
                via: Via::Runuser(runuser),
                ..
            } => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", SERVICE_USER, "--"]).arg(program).args(args);
                cmd
            }
            RunAs::Service {
                via: Via::Su(su), ..
            } => {
                let mut line = String::from("exec");
                for word in std::iter::once(program.to_string_lossy().into_owned())
                    .chain(args.iter().cloned())
                {
                    line.push(' ');
                    line.push_str(&shell_quote(&word));
                }
                let mut cmd = Command::new(su);
                cmd.args([SERVICE_USER, "-s", "/bin/sh", "-c"]).arg(line);
                cmd
            }
        };
        clean_env(&mut cmd);
        cmd.current_dir(cwd);
        cmd
    }
}

/// Removes the caller's `PG*` variables and sets a C locale.
pub(crate) fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env("LC_ALL", "C").env("LANG", "C");
}

/// `id ARGS` as a number.
fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Single-quotes `word` for `sh`.
pub(crate) fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_root_agrees_with_id() {
        assert_eq!(is_root(), id(&["-u"]) == Some(0));
    }

    #[test]
    fn shell_quote_survives_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote("x'y \"z\" $HOME")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "x'y \"z\" $HOME");
    }

    #[test]
    fn su_command_runs_program_with_arguments() {
        let via = Via::Su(PathBuf::from("/bin/su"));
        let run_as = RunAs::Service {
            uid: 1,
            gid: 1,
            via,
        };
        let cmd = run_as.command(
            Path::new("/usr/bin/pg_ctl"),
            &["-o".into(), "-p 1 -k /tmp/x".into()],
            Path::new("/tmp"),
        );
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        assert_eq!(
            args,
            [
                "postgres",
                "-s",
                "/bin/sh",
                "-c",
                "exec '/usr/bin/pg_ctl' '-o' '-p 1 -k /tmp/x'"
            ]
        );
    }
}
