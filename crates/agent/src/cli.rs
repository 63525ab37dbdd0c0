//! The agent's command line (DESIGN §9), parsed with `lexopt` (no dependencies).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::{Error, Result};

pub const USAGE: &str = "usage:
  brevet-agent enroll --server URL --ca FILE --token TOKEN [--state-dir DIR]
  brevet-agent run [--state-dir DIR] [--root DIR] [--mode audit|enforce] [--no-kill]
                   [--allow-user USER]... [--allow-sudoers FILE]... [--breakglass-user USER]
                   [--allow-system-user USER]... [--reconcile-interval SECS] [--watch PATH]...
  brevet-agent scan [--root DIR] [--json]";

pub const DEFAULT_STATE_DIR: &str = "/var/lib/brevet-agent";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Report standing privilege.
    Audit,
    /// Also remove what the allow-list does not name.
    Enforce,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    pub state_dir: PathBuf,
    pub root: Option<PathBuf>,
    pub mode: Mode,
    pub kill_processes: bool,
    pub allow_users: Vec<String>,
    pub allow_sudoers: Vec<String>,
    pub breakglass_user: Option<String>,
    /// Seconds between reconciliations and scans (DESIGN §5: 30).
    pub reconcile_secs: u64,
    /// System paths whose changes during a grant are reported (default `/etc`).
    pub watch: Vec<String>,
    /// System accounts (missing, UID 0, below `UID_MIN`) that grants may still name.
    pub allow_system_users: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Enroll {
        server: String,
        ca: PathBuf,
        token: String,
        state_dir: PathBuf,
    },
    Run(RunArgs),
    Scan {
        root: Option<PathBuf>,
        json: bool,
    },
    Help,
    Version,
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let usage = |e: lexopt::Error| Error::Usage(e.to_string());
    let sub = match p.next().map_err(usage)? {
        Some(Value(v)) => v.string().map_err(usage)?,
        Some(Long("help") | Short('h')) => return Ok(Command::Help),
        Some(Long("version") | Short('V')) => return Ok(Command::Version),
        Some(other) => return Err(Error::Usage(other.unexpected().to_string())),
        None => return Err(Error::Usage("a command is required".into())),
    };
    let mut server = None;
    let mut ca = None;
    let mut token = None;
    let mut state_dir = PathBuf::from(DEFAULT_STATE_DIR);
    let mut root = None;
    let mut mode = Mode::Audit;
    let mut kill = true;
    let mut json = false;
    let mut allow_users = Vec::new();
    let mut allow_sudoers = Vec::new();
    let mut breakglass_user = None;
    let mut reconcile_secs = 30;
    let mut watch = Vec::new();
    let mut allow_system_users = Vec::new();
    while let Some(arg) = p.next().map_err(usage)? {
        match (sub.as_str(), arg) {
            (_, Long("help") | Short('h')) => return Ok(Command::Help),
            ("enroll", Long("server")) => {
                server = Some(p.value().map_err(usage)?.string().map_err(usage)?)
            }
            ("enroll", Long("ca")) => ca = Some(PathBuf::from(p.value().map_err(usage)?)),
            ("enroll", Long("token")) => {
                token = Some(p.value().map_err(usage)?.string().map_err(usage)?)
            }
            ("enroll" | "run", Long("state-dir")) => {
                state_dir = PathBuf::from(p.value().map_err(usage)?)
            }
            ("run" | "scan", Long("root")) => root = Some(PathBuf::from(p.value().map_err(usage)?)),
            ("run", Long("mode")) => {
                mode = match p.value().map_err(usage)?.string().map_err(usage)?.as_str() {
                    "audit" => Mode::Audit,
                    "enforce" => Mode::Enforce,
                    other => {
                        return Err(Error::Usage(format!(
                            "invalid --mode `{other}`: use audit or enforce"
                        )));
                    }
                }
            }
            ("run", Long("no-kill")) => kill = false,
            ("run", Long("allow-user")) => {
                let u = p.value().map_err(usage)?.string().map_err(usage)?;
                brevet_proto::validate::user_name(&u)?;
                allow_users.push(u);
            }
            ("run", Long("allow-sudoers")) => {
                allow_sudoers.push(p.value().map_err(usage)?.string().map_err(usage)?)
            }
            ("run", Long("allow-system-user")) => {
                let u = p.value().map_err(usage)?.string().map_err(usage)?;
                brevet_proto::validate::user_name(&u)?;
                allow_system_users.push(u);
            }
            ("run", Long("breakglass-user")) => {
                let u = p.value().map_err(usage)?.string().map_err(usage)?;
                brevet_proto::validate::user_name(&u)?;
                breakglass_user = Some(u);
            }
            ("run", Long("reconcile-interval")) => {
                let v = p.value().map_err(usage)?.string().map_err(usage)?;
                reconcile_secs = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=3600).contains(n))
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "invalid --reconcile-interval `{v}`: 1 to 3600 seconds"
                        ))
                    })?;
            }
            ("run", Long("watch")) => {
                let v = p.value().map_err(usage)?.string().map_err(usage)?;
                watch.push(watch_path(&v)?);
            }
            ("scan", Long("json")) => json = true,
            (_, other) => return Err(Error::Usage(format!("`{sub}`: {}", other.unexpected()))),
        }
    }
    let missing = |what: &str| Error::Usage(format!("`{sub}` needs {what}"));
    Ok(match sub.as_str() {
        "enroll" => Command::Enroll {
            server: server.ok_or_else(|| missing("--server URL"))?,
            ca: ca.ok_or_else(|| missing("--ca FILE"))?,
            token: token.ok_or_else(|| missing("--token TOKEN"))?,
            state_dir,
        },
        "run" => Command::Run(RunArgs {
            state_dir,
            root,
            mode,
            kill_processes: kill,
            allow_users,
            allow_sudoers,
            breakglass_user,
            reconcile_secs,
            watch,
            allow_system_users,
        }),
        "scan" => Command::Scan { root, json },
        other => return Err(Error::Usage(format!("unknown command `{other}`"))),
    })
}

/// A `--watch` path: absolute, normalised (no `.`, `..` or empty components), printable.
fn watch_path(v: &str) -> Result<String> {
    let bad = |why: &str| Error::Usage(format!("invalid --watch `{}`: {why}", v.escape_default()));
    let rest = v
        .strip_prefix('/')
        .ok_or_else(|| bad("use an absolute path such as /etc"))?;
    if v.len() > 1024 || v.chars().any(char::is_control) {
        return Err(bad("too long or holds control characters"));
    }
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(bad("`.` and `..` are not allowed"));
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_the_contract() {
        assert_eq!(
            p(&[
                "enroll",
                "--server",
                "https://s:8443",
                "--ca",
                "/c.pem",
                "--token",
                "bve_x"
            ])
            .unwrap(),
            Command::Enroll {
                server: "https://s:8443".into(),
                ca: "/c.pem".into(),
                token: "bve_x".into(),
                state_dir: DEFAULT_STATE_DIR.into()
            }
        );
        let Command::Run(r) = p(&[
            "run",
            "--root",
            "/sb",
            "--mode",
            "enforce",
            "--allow-user",
            "ops",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(r.mode, Mode::Enforce);
        assert!(r.watch.is_empty());
        assert!(r.allow_system_users.is_empty());
        let Command::Run(s) = p(&[
            "run",
            "--allow-system-user",
            "admin",
            "--allow-system-user",
            "svc_ops",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.allow_system_users, ["admin", "svc_ops"]);
        let Command::Run(w) = p(&["run", "--watch", "/etc", "--watch", "/usr/local/bin/"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(w.watch, ["/etc", "/usr/local/bin"]);
        assert_eq!(r.root, Some(PathBuf::from("/sb")));
        assert_eq!(
            p(&["scan", "--json"]).unwrap(),
            Command::Scan {
                root: None,
                json: true
            }
        );
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [
            &["run", "--mode", "yolo"][..],
            &["enroll", "--server", "x"],
            &["scan", "--token", "x"],
            &["frobnicate"],
            &["run", "--allow-user", "bob ALL"],
            &["run", "--allow-system-user", "root ALL=(ALL)"],
            &["run", "--allow-system-user"],
            &["run", "--watch", "etc"],
            &["run", "--watch", "/etc/../root"],
            &["run", "--watch", "/etc\n"],
            &["scan", "--watch", "/etc"],
            &[],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}
