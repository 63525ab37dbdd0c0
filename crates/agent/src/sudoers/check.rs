//! A strict parser of exactly the sudoers subset [`render`](super::render) writes, used in place
//! of `visudo` in a `--root` sandbox where sudo is not installed.
//!
//! It accepts three or four lines — the `# Brevet grant …` comment, `Defaults:<user>
//! timestamp_timeout=0`, optionally `Defaults:<user> logfile=/var/log/brevet/sudo.log` (exactly
//! that path), and one `<user> ALL=(<runas>) [NOTBEFORE=… NOTAFTER=… ]NOPASSWD: <cmd>, …` rule —
//! and refuses everything else. It is written independently of the validators in
//! `brevet_proto::validate`, so a renderer bug is caught by a second implementation; anything it
//! accepts is also accepted by sudo 1.9's `visudo` (tested against the real one when installed).

use std::fmt;
use std::path::Path;

use crate::{Error, Result};

/// Why the checker refused a file: the 1-based line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Reads and checks `file`; a refusal is [`Error::SudoersRejected`].
pub fn check_file(file: &Path) -> Result<()> {
    use crate::linux::sysfile::{self, Links, MAX_SYSTEM_FILE};
    let bytes = sysfile::read(file, MAX_SYSTEM_FILE, Links::Refuse)?
        .ok_or_else(|| Error::file("read", file, std::io::ErrorKind::NotFound.into()))?;
    let text = String::from_utf8_lossy(&bytes);
    check(&text).map_err(|r| Error::SudoersRejected {
        path: file.to_owned(),
        detail: format!("built-in checker: {r}"),
    })
}

/// Checks a whole drop-in text.
pub fn check(text: &str) -> std::result::Result<(), Rejection> {
    let fail = |line: usize, message: &str| Rejection {
        line,
        message: message.to_owned(),
    };
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| fail(0, "file must end with a newline"))?;
    let lines: Vec<&str> = body.split('\n').collect();
    for (i, l) in lines.iter().enumerate() {
        if !l.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\') {
            return Err(fail(i + 1, "only printable ASCII without `\\` is allowed"));
        }
    }
    let (comment, defaults, logfile, rule) = match lines.as_slice() {
        [c, d, r] => (c, d, None, r),
        [c, d, l, r] => (c, d, Some(l), r),
        _ => return Err(fail(0, "expected three or four lines")),
    };
    if !comment.starts_with("# Brevet grant ") {
        return Err(fail(1, "expected the `# Brevet grant` comment"));
    }
    let user = defaults
        .strip_prefix("Defaults:")
        .and_then(|r| r.strip_suffix(" timestamp_timeout=0"))
        .filter(|u| is_name(u))
        .ok_or_else(|| fail(2, "expected `Defaults:<user> timestamp_timeout=0`"))?;
    if let Some(l) = logfile {
        let want = format!("Defaults:{user} logfile={}", crate::usage::SUDO_LOG);
        if **l != want {
            return Err(fail(3, &format!("expected `{want}`")));
        }
    }
    let rule_line = if logfile.is_some() { 4 } else { 3 };
    check_rule(rule, user).map_err(|m| fail(rule_line, &m))
}

fn check_rule(rule: &str, user: &str) -> std::result::Result<(), String> {
    let rest = rule
        .strip_prefix(user)
        .and_then(|r| r.strip_prefix(" ALL=("))
        .ok_or("expected `<user> ALL=(` with the user of the Defaults line")?;
    let (runas, rest) = rest.split_once(") ").ok_or("expected `(<runas>) `")?;
    if !is_name(runas) {
        return Err(format!("`{runas}` is not a user name"));
    }
    let rest = match rest.strip_prefix("NOTBEFORE=") {
        Some(r) => {
            let (nb, r) = r
                .split_once(" NOTAFTER=")
                .ok_or("expected ` NOTAFTER=` after NOTBEFORE")?;
            let (na, r) = r.split_once(' ').ok_or("expected a space after NOTAFTER")?;
            if !is_time(nb) || !is_time(na) {
                return Err("times must be YYYYMMDDHHMMSSZ".into());
            }
            if na <= nb {
                return Err("NOTAFTER must be after NOTBEFORE".into());
            }
            r
        }
        None => rest,
    };
    let list = rest
        .strip_prefix("NOPASSWD: ")
        .ok_or("expected `NOPASSWD: `")?;
    for cmd in list.split(", ") {
        check_command(cmd).map_err(|m| format!("command `{cmd}`: {m}"))?;
    }
    Ok(())
}

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=32).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

fn is_time(s: &str) -> bool {
    let Some(d) = s.strip_suffix('Z') else {
        return false;
    };
    if d.len() != 14 || !d.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let n = |r: std::ops::Range<usize>| d[r].parse::<u32>().unwrap_or(u32::MAX);
    (1..=12).contains(&n(4..6))
        && (1..=31).contains(&n(6..8))
        && n(8..10) <= 23
        && n(10..12) <= 59
        && n(12..14) <= 59
}

fn check_command(cmd: &str) -> std::result::Result<(), &'static str> {
    if cmd == "ALL" {
        return Ok(());
    }
    let mut words = cmd.split(' ');
    let path = words.next().unwrap_or_default();
    let Some(rel) = path.strip_prefix('/') else {
        return Err("must be `ALL` or start with an absolute path");
    };
    let mut base = "";
    for part in rel.split('/') {
        let ok = !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-'));
        if !ok {
            return Err("path components may hold only letters, digits and `._+-`");
        }
        base = part;
    }
    if base == "sudoedit" {
        return Err("sudo refuses `sudoedit` with a path");
    }
    for arg in words {
        let ok = !arg.is_empty()
            && arg.bytes().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, b'.' | b'_' | b'+' | b'-' | b'/' | b'@' | b'%')
            });
        if !ok {
            return Err(
                "arguments are single-space separated words of letters, digits and `._+-/@%`",
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
