//! Sudoers findings: rules Brevet did not write, `NOPASSWD`, `!authenticate` and credential
//! caching.
//!
//! The walk starts at `/etc/sudoers` (and sudo-rs's `/etc/sudoers-rs`), follows `#include`/`@include`/`#includedir` the way sudo
//! does (relative paths against the including file's directory, directories in byte order,
//! skipping names with `.` or ending in `~`), and then reads `/etc/sudoers.d` even if nothing
//! includes it. Every path is mapped into the [`Root`] and must stay there (`..` is refused,
//! symlinks are resolved and checked), each file is read once, and nesting stops at
//! [`MAX_DEPTH`].
//!
//! Drop-ins of exactly Brevet's shape (`brevet_` + 32 lower-case hex digits) in
//! `/etc/sudoers.d` are Brevet's own: their rules are not foreign. Any other `brevet_*` name is
//! treated like any foreign file. Brevet
//! never writes `NOPASSWD`, `!authenticate` or a non-zero `timestamp_timeout`, so those are
//! still reported there (someone edited the drop-in). An allow-listed file's rules are not
//! foreign either, but the same three are reported: the allow-list keeps a file, it does not
//! make a password-less rule safe.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;

use brevet_proto::agent::{Finding, Severity};

use super::accounts::Accounts;
use super::lexer::{self, Entry, Param};
use super::{Allowlist, files, finding, groups, scan_error, show};
use crate::root::Root;

/// The main policy files: sudo reads `/etc/sudoers`; sudo-rs reads `/etc/sudoers-rs` instead
/// when it exists. Both are scanned; Brevet edits neither.
pub(crate) const MAIN: [&str; 2] = ["/etc/sudoers", "/etc/sudoers-rs"];
pub(crate) const DROPIN_DIR: &str = "/etc/sudoers.d";
const MAX_DEPTH: usize = 8;

pub(crate) fn findings(root: &Root, acc: &Accounts, allow: &Allowlist, out: &mut Vec<Finding>) {
    let mut w = Walker {
        root,
        acc,
        allow,
        out,
        seen: HashSet::new(),
    };
    for main in MAIN {
        w.file(main.to_string(), 0);
    }
    w.dir(DROPIN_DIR, 0);
}

/// Where a file sits, which decides what its findings say and whether they count as foreign.
struct FileCtx<'s> {
    sys: &'s str,
    main: bool,
    in_dropin_dir: bool,
    brevet: bool,
    allowed: bool,
}

impl FileCtx<'_> {
    fn new<'s>(sys: &'s str, allow: &Allowlist) -> FileCtx<'s> {
        let name = sys
            .strip_prefix(DROPIN_DIR)
            .and_then(|r| r.strip_prefix('/'));
        let name = name.filter(|n| !n.is_empty() && !n.contains('/'));
        FileCtx {
            sys,
            main: MAIN.contains(&sys),
            in_dropin_dir: name.is_some(),
            brevet: name.is_some_and(crate::sudoers::is_drop_in_name),
            allowed: name.is_some_and(|n| allow.sudoers_files.iter().any(|a| a == n)),
        }
    }

    /// What the administrator should do about one line of this file.
    fn fix(&self, line: usize, what: &str) -> String {
        let sys = self.sys;
        if self.brevet {
            format!(
                "Brevet never writes {what}: `{sys}` was edited by hand; delete it and let the \
                 agent's reconciliation restore the drop-in of the active grant, if any"
            )
        } else if self.main {
            format!(
                "remove {what} from line {line} of `{sys}` with `visudo` (Brevet never edits \
                 this file) and grant the access just in time through Brevet"
            )
        } else if self.in_dropin_dir && !self.allowed {
            format!(
                "remove {what} from line {line} of `{sys}` with `visudo -f {sys}`, or move the \
                 file out of /etc/sudoers.d (enforce mode quarantines it); grant the access \
                 just in time through Brevet, or allow-list the file if it is sanctioned"
            )
        } else {
            format!("remove {what} from line {line} of `{sys}` with `visudo -f {sys}`")
        }
    }
}

struct Walker<'a> {
    root: &'a Root,
    acc: &'a Accounts,
    allow: &'a Allowlist,
    out: &'a mut Vec<Finding>,
    seen: HashSet<PathBuf>,
}

impl Walker<'_> {
    fn dir(&mut self, sys: &str, depth: usize) {
        let real = self.root.path(sys);
        let names = match files::list_dir(self.root, &real) {
            Ok(Some(names)) => names,
            Ok(None) => return,
            Err(e) => return self.out.push(scan_error(sys, &e)),
        };
        for name in names {
            let shown = name.to_string_lossy();
            // sudo reads regular files only; a subdirectory is not a finding.
            let is_dir = fs::metadata(real.join(&name)).is_ok_and(|m| m.is_dir());
            if !files::sudo_reads_name(&shown) || is_dir {
                continue;
            }
            let path = format!("{sys}/{shown}");
            if name.to_str().is_none() {
                let err = "the file name is not UTF-8; not read, check it by hand";
                self.out.push(scan_error(&path, &err));
                continue;
            }
            self.file(path, depth);
        }
    }

    fn file(&mut self, sys: String, depth: usize) {
        if depth > MAX_DEPTH {
            let err = format!("includes nest deeper than {MAX_DEPTH} levels; not followed");
            return self.out.push(scan_error(&sys, &err));
        }
        let real = self.root.path(&sys);
        match files::contained(self.root, &real) {
            Ok(Some(canon)) => {
                if !self.seen.insert(canon) {
                    return; // already read
                }
            }
            Ok(None) => return,
            Err(e) => return self.out.push(scan_error(&sys, &e)),
        }
        let text = match files::read_text(self.root, &real) {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e) => return self.out.push(scan_error(&sys, &e)),
        };
        let ctx = FileCtx::new(&sys, self.allow);
        for l in lexer::logical_lines(&text) {
            match lexer::classify(&l.text) {
                Entry::Include { path, dir } => match resolve_include(&sys, &path) {
                    Ok(p) if dir => self.dir(&p, depth + 1),
                    Ok(p) => self.file(p, depth + 1),
                    Err(why) => {
                        let err = format!("include `{}` not followed: {why}", show(&path));
                        self.out
                            .push(scan_error(&format!("{sys}:{}", l.line), &err));
                    }
                },
                Entry::Defaults { scope, params } => {
                    self.defaults(&ctx, l.line, &scope, &params);
                }
                Entry::UserSpec { users, rest } => {
                    self.user_spec(&ctx, l.line, &l.text, &users, rest);
                }
                Entry::Alias | Entry::Unknown => {}
            }
        }
    }

    fn defaults(&mut self, ctx: &FileCtx, line: usize, scope: &str, params: &[Param]) {
        let sys = ctx.sys;
        let who = if scope.is_empty() {
            "for every user".to_string()
        } else {
            format!("for `{}`", show(scope))
        };
        let mut cached = Vec::new();
        for p in params {
            let value = p.value.as_deref();
            match p.name.as_str() {
                "authenticate" if p.negated => self.out.push(finding(
                    format!("no-authenticate:{sys}:{line}"),
                    super::KIND_NO_AUTHENTICATE,
                    Severity::Critical,
                    sys,
                    format!(
                        "`Defaults{} !authenticate` at `{sys}` line {line}: sudo asks no \
                         password at all {who}",
                        show(scope)
                    ),
                    ctx.fix(line, "`!authenticate`"),
                )),
                "tty_tickets" if p.negated => cached.push("`!tty_tickets`".to_string()),
                "timestamp_type" if value.is_some_and(|v| v.eq_ignore_ascii_case("global")) => {
                    cached.push("`timestamp_type=global`".to_string());
                }
                "timestamp_timeout" if !p.negated => {
                    if let Some(v) = value.filter(|v| v.parse::<f64>() != Ok(0.0)) {
                        cached.push(format!("`timestamp_timeout={}`", show(v)));
                    }
                }
                _ => {}
            }
        }
        if !cached.is_empty() {
            let what = cached.join(", ");
            self.out.push(finding(
                format!("cached-credentials:{sys}:{line}"),
                super::KIND_CACHED_CREDENTIALS,
                Severity::Medium,
                sys,
                format!(
                    "{what} at `{sys}` line {line} {who}: sudo credentials are cached beyond a \
                     single command, outliving Brevet's `timestamp_timeout=0`"
                ),
                ctx.fix(line, &what),
            ));
        }
    }

    fn user_spec(&mut self, ctx: &FileCtx, line: usize, text: &str, users: &[String], rest: &str) {
        if users.iter().all(|u| u == "root") {
            return; // root's own rule grants nothing root does not have
        }
        let sys = ctx.sys;
        let who = users.iter().map(|u| show(u)).collect::<Vec<_>>().join(", ");
        if lexer::has_tag(rest, "NOPASSWD") {
            self.out.push(finding(
                format!("nopasswd:{sys}:{line}"),
                super::KIND_NOPASSWD,
                Severity::High,
                sys,
                format!(
                    "`{}` at `{sys}` line {line}: `{who}` run sudo commands without a password",
                    show(text)
                ),
                ctx.fix(line, "`NOPASSWD:`"),
            ));
        }
        if ctx.brevet || ctx.allowed {
            return;
        }
        let all = lexer::grants_all_commands(rest);
        let scope = if all {
            "every command"
        } else {
            "the listed commands"
        };
        let id = format!("sudoers-rule:{sys}:{line}");
        if ctx.main && users.iter().all(|u| u.starts_with('%')) {
            return self.group_rule(ctx.sys, id, line, text, users, scope);
        }
        let severity = if users.iter().any(|u| u == "ALL") {
            Severity::Critical
        } else if all {
            Severity::High
        } else {
            Severity::Medium
        };
        self.out.push(finding(
            id,
            super::KIND_FOREIGN_SUDOERS_RULE,
            severity,
            sys,
            format!(
                "`{}` at `{sys}` line {line} was not written by Brevet: a standing grant of {scope} \
                 to `{who}`",
                show(text)
            ),
            ctx.fix(line, "the rule"),
        ));
    }

    /// `group_sudo_rule`: a `%group` rule in a main policy file, with the group's members.
    fn group_rule(
        &mut self,
        sys: &str,
        id: String,
        line: usize,
        text: &str,
        users: &[String],
        scope: &str,
    ) {
        let mut names = Vec::new();
        let mut members = Vec::new();
        let mut active = false;
        for item in users {
            let g = item.trim_start_matches('%').trim_start_matches(':');
            let g = match g.strip_prefix('#').map(str::parse::<u32>) {
                Some(Ok(gid)) => self.acc.group_by_gid(gid).unwrap_or(g).to_string(),
                _ => g.to_string(),
            };
            for (user, _) in self.acc.members(&g) {
                if user == "root" {
                    continue;
                }
                if groups::exempt(&user, self.allow) {
                    members.push(format!("{user} (allow-listed)"));
                } else {
                    members.push(user);
                    active = true;
                }
            }
            names.push(g);
        }
        members.sort();
        members.dedup();
        let groups = names.join("`, `");
        let who = if members.is_empty() {
            "no members besides root".to_string()
        } else {
            format!("members: {}", members.join(", "))
        };
        self.out.push(finding(
            id,
            super::KIND_GROUP_SUDO_RULE,
            if active {
                Severity::High
            } else {
                Severity::Info
            },
            &users.join(","),
            format!(
                "`{}` at `{sys}` line {line} grants {scope} to group `{groups}` ({who})",
                show(text)
            ),
            format!(
                "remove the members from `{groups}` (`gpasswd -d USER GROUP`; enforce mode does \
                 this for admin groups) so the rule grants nothing standing, and grant admin \
                 rights just in time through Brevet; Brevet leaves `{sys}` itself alone"
            ),
        ));
    }
}

/// The system path an include names, relative paths taken from the including file's
/// directory. Refuses `..` (it could leave the root) and sudo's `%h` host-name escape.
fn resolve_include(including: &str, path: &str) -> Result<String, &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.contains("%h") {
        return Err("it uses `%h` (the host name), which the scan does not expand");
    }
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        let dir = including.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{path}")
    };
    let mut parts = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("it contains `..`"),
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_includes() {
        for (from, path, want) in [
            (
                "/etc/sudoers",
                "/etc/sudoers.d",
                Ok("/etc/sudoers.d".to_string()),
            ),
            (
                "/etc/sudoers",
                "/etc/sudoers.d/",
                Ok("/etc/sudoers.d".to_string()),
            ),
            (
                "/etc/sudoers",
                "sudoers.local",
                Ok("/etc/sudoers.local".to_string()),
            ),
            ("/etc/sudoers", "./x//y", Ok("/etc/x/y".to_string())),
            (
                "/etc/sudoers",
                "../../host/etc/shadow",
                Err("it contains `..`"),
            ),
            (
                "/etc/sudoers",
                "/etc/sudoers.%h",
                Err("it uses `%h` (the host name), which the scan does not expand"),
            ),
            ("/etc/sudoers", "", Err("the path is empty")),
        ] {
            assert_eq!(resolve_include(from, path), want, "{path}");
        }
    }

    #[test]
    fn file_context() {
        let allow = Allowlist {
            sudoers_files: vec!["ops".into()],
            ..Allowlist::default()
        };
        let c = FileCtx::new(
            "/etc/sudoers.d/brevet_0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d",
            &allow,
        );
        assert!(c.brevet && c.in_dropin_dir && !c.main && !c.allowed);
        let c = FileCtx::new("/etc/sudoers.d/brevet_0a1b", &allow);
        assert!(!c.brevet && c.in_dropin_dir, "not Brevet's shape: foreign");
        let c = FileCtx::new("/etc/sudoers.d/ops", &allow);
        assert!(c.allowed && !c.brevet);
        let c = FileCtx::new("/etc/sudoers", &allow);
        assert!(c.main && !c.in_dropin_dir);
        let c = FileCtx::new("/etc/sudoers.d/sub/brevet_x", &allow);
        assert!(!c.brevet && !c.in_dropin_dir);
    }
}
