//! The sudo log parser as it was before the linear-time rewrite of `command_part` (agent
//! `usage/sudolog.rs` at commit 32a3552), kept as an oracle: on inputs small enough for its
//! quadratic search, the `sudolog` target checks that both give the same records.
#![allow(dead_code)]

/// One entry of the log: where its first line starts, and its text with continuations joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub offset: u64,
    pub text: String,
}

/// The wall-clock time sudo wrote (local time, no zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedTime {
    /// 1–12.
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Only with `Defaults log_year`.
    pub year: Option<i32>,
}

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The time text as written, e.g. `Nov 29 00:50:19`.
    pub time_text: String,
    pub time: LoggedTime,
    pub user: String,
    pub runas: String,
    pub group: Option<String>,
    pub cwd: String,
    pub tty: Option<String>,
    pub command: String,
    /// sudo's reason when it refused (`command not allowed`, `a password is required`, …).
    pub refusal: Option<String>,
}

impl Record {
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }
}

/// Splits complete lines (`text` starts at file offset `base`) into entries, joining each
/// continuation line (four leading spaces) to the entry before it with one space. Continuation
/// lines with no entry before them are dropped.
pub fn entries(text: &str, base: u64) -> Vec<RawEntry> {
    let mut out: Vec<RawEntry> = Vec::new();
    let mut offset = base;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len() as u64;
        let line = line.trim_end_matches('\n');
        if let Some(rest) = line.strip_prefix("    ") {
            // sudo wrote exactly this indent in place of one space: any further space is text
            // (a run of spaces in a quoted argument or a directory name).
            if let Some(last) = out.last_mut() {
                last.text.push(' ');
                last.text.push_str(rest);
            }
        } else if !line.trim().is_empty() {
            out.push(RawEntry {
                offset: start,
                text: line.to_owned(),
            });
        }
    }
    out
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses one joined entry; `None` when it is not a command entry.
pub fn parse(entry: &str) -> Option<Record> {
    let (time_text, rest) = entry.split_once(" : ")?;
    let time = parse_time(time_text)?;
    let (user, mut msg) = rest.split_once(" : ")?;
    if user.is_empty() || user.contains(' ') {
        return None;
    }
    // `Defaults log_host` adds `HOST=name : ` here.
    if let Some(after) = msg.strip_prefix("HOST=") {
        msg = after.split_once(" : ")?.1;
    }
    let (prefix, runas, group, command) = command_part(msg)?;
    let (refusal, tty, cwd) = prefix_part(prefix)?;
    Some(Record {
        time_text: time_text.to_owned(),
        time,
        user: user.to_owned(),
        runas,
        group,
        cwd,
        tty,
        command,
        refusal,
    })
}

/// `Mon DD HH:MM:SS` (`%h %e %H:%M:%S`), optionally followed by ` YYYY`.
fn parse_time(s: &str) -> Option<LoggedTime> {
    let mut words = s.split_whitespace();
    let name = words.next()?;
    let month = MONTHS.iter().position(|m| *m == name)? as u32 + 1;
    let day: u32 = words.next()?.parse().ok()?;
    let mut hms = words.next()?.split(':');
    let mut num = |max: u32| hms.next()?.parse::<u32>().ok().filter(|n| *n <= max);
    let (hour, minute, second) = (num(23)?, num(59)?, num(60)?);
    let year = match words.next() {
        Some(y) => Some(
            y.parse::<i32>()
                .ok()
                .filter(|y| (1970..=9999).contains(y))?,
        ),
        None => None,
    };
    if words.next().is_some() || !(1..=31).contains(&day) {
        return None;
    }
    Some(LoggedTime {
        month,
        day,
        hour,
        minute,
        second: second.min(59),
        year,
    })
}

/// Finds `USER=<runas> ; [KEY=value ; ]…COMMAND=<command>` from the right: the left-most part
/// (before ` ; USER=`) is returned for [`prefix_part`].
fn command_part(msg: &str) -> Option<(&str, String, Option<String>, String)> {
    let mut candidates: Vec<usize> = msg.match_indices(" ; USER=").map(|(i, _)| i + 3).collect();
    if msg.starts_with("USER=") {
        candidates.insert(0, 0);
    }
    for &at in candidates.iter().rev() {
        let Some(tail) = msg.get(at..) else { continue };
        if let Some((runas, group, command)) = user_to_command(tail) {
            let prefix = msg.get(..at.saturating_sub(3)).unwrap_or_default();
            return Some((prefix, runas, group, command));
        }
    }
    None
}

fn user_to_command(tail: &str) -> Option<(String, Option<String>, String)> {
    let (runas, mut rest) = tail.strip_prefix("USER=")?.split_once(" ; ")?;
    if runas.is_empty() || runas.contains(' ') {
        return None;
    }
    let mut group = None;
    loop {
        if let Some(command) = rest.strip_prefix("COMMAND=") {
            if command.is_empty() || !balanced(command) {
                return None;
            }
            return Some((runas.to_owned(), group, command.to_owned()));
        }
        // GROUP=, TSID=, ENV=, … : one `KEY=value ; ` field each.
        let (field, next) = rest.split_once(" ; ")?;
        let (key, value) = field.split_once('=')?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        if key == "GROUP" {
            group = Some(value.to_owned());
        }
        rest = next;
    }
}

/// Whether sudo's quoting in a logged command is complete: single quotes pair up, and a
/// backslash escapes the next character.
fn balanced(command: &str) -> bool {
    let mut quoted = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return false,
            '\'' => quoted = !quoted,
            _ => {}
        }
    }
    !quoted
}

/// `[reason ; ][TTY=t ; ][CHROOT=… ; ]PWD=cwd`: the refusal, the terminal and the directory.
fn prefix_part(prefix: &str) -> Option<(Option<String>, Option<String>, String)> {
    let pwd_at = if prefix.starts_with("PWD=") {
        0
    } else {
        prefix.find(" ; PWD=")? + 3
    };
    let cwd = prefix.get(pwd_at + 4..)?.to_owned();
    let head = prefix.get(..pwd_at.saturating_sub(3)).unwrap_or_default();
    let (mut refusal, mut tty) = (None, None);
    if pwd_at > 0 {
        for (i, field) in head.split(" ; ").enumerate() {
            match field.split_once('=') {
                Some(("TTY", t)) => tty = Some(t.to_owned()),
                Some((k, _)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase()) => {}
                _ if i == 0 && !field.is_empty() => refusal = Some(field.to_owned()),
                _ => return None,
            }
        }
    }
    Some((refusal, tty, cwd))
}
