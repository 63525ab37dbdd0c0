//! Validation of every untrusted input (DESIGN §10).
//!
//! Each function takes raw text and returns either a value that is safe to place in a sudoers
//! drop-in, a SQL parameter and a log line, or an [`Error::Invalid`] that names the input. The
//! rules are allow-lists: a character is refused unless it is known to be harmless in sudoers
//! syntax. The server, the CLI and the agent all call these, so a value refused by one is refused
//! by all.

use crate::Error;

/// The longest grant or request any role may configure, whatever its `max_duration` says.
pub const MAX_DURATION_SECS: u64 = 7 * 24 * 3600;

/// A Unix user name: `^[a-z_][a-z0-9_-]{0,31}$`.
pub fn user_name(s: &str) -> Result<&str, Error> {
    unix_name("user name", s)
}

/// A Unix or Brevet group name: same rule as user names.
pub fn group_name(s: &str) -> Result<&str, Error> {
    unix_name("group name", s)
}

fn unix_name<'a>(field: &'static str, s: &'a str) -> Result<&'a str, Error> {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return Err(Error::invalid(field, s, "must not be empty"));
    };
    if b.len() > 32 {
        return Err(Error::invalid(field, s, "must be at most 32 characters"));
    }
    if !(first.is_ascii_lowercase() || first == b'_') {
        return Err(Error::invalid(
            field,
            s,
            "must start with a lower-case letter or `_`",
        ));
    }
    if !b
        .iter()
        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
    {
        return Err(Error::invalid(
            field,
            s,
            "may contain only a-z, 0-9, `_` and `-`",
        ));
    }
    Ok(s)
}

/// A device name: an RFC 1123 host name, returned in lower case.
pub fn device_name(s: &str) -> Result<String, Error> {
    const FIELD: &str = "device name";
    if s.is_empty() {
        return Err(Error::invalid(FIELD, s, "must not be empty"));
    }
    if s.len() > 253 {
        return Err(Error::invalid(FIELD, s, "must be at most 253 characters"));
    }
    for label in s.split('.') {
        let b = label.as_bytes();
        if b.is_empty() || b.len() > 63 {
            return Err(Error::invalid(
                FIELD,
                s,
                "each dot-separated label must be 1 to 63 characters",
            ));
        }
        if !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
            return Err(Error::invalid(
                FIELD,
                s,
                "may contain only letters, digits, `-` and `.` (RFC 1123)",
            ));
        }
        if b[0] == b'-' || b[b.len() - 1] == b'-' {
            return Err(Error::invalid(
                FIELD,
                s,
                "a label must not start or end with `-`",
            ));
        }
    }
    Ok(s.to_ascii_lowercase())
}

/// A role name: `^[a-z][a-z0-9-]{0,63}$`.
pub fn role_name(s: &str) -> Result<&str, Error> {
    const FIELD: &str = "role";
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 64 {
        return Err(Error::invalid(FIELD, s, "must be 1 to 64 characters"));
    }
    if !b[0].is_ascii_lowercase()
        || !b
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        return Err(Error::invalid(
            FIELD,
            s,
            "must start with a-z and contain only a-z, 0-9 and `-`",
        ));
    }
    Ok(s)
}

/// A command a role may run, as it will appear in a sudoers drop-in: an absolute path followed by
/// zero or more arguments separated by single spaces.
///
/// Refused: relative paths, `.`/`..` components, a trailing `/` (sudo reads it as "every command in
/// this directory"), wildcards, shell metacharacters, quotes, and the characters sudoers gives a
/// meaning inside a command (`,` `:` `=` `\`). `ALL` is accepted only where the caller allows it
/// (role definitions in the server's own config), never from a request.
pub fn command(s: &str, allow_all: bool) -> Result<&str, Error> {
    const FIELD: &str = "command";
    if s == "ALL" {
        return if allow_all {
            Ok(s)
        } else {
            Err(Error::invalid(
                FIELD,
                s,
                "`ALL` is only allowed in a role definition",
            ))
        };
    }
    if s.len() > 1024 {
        return Err(Error::invalid(FIELD, s, "must be at most 1024 characters"));
    }
    let mut words = s.split(' ');
    let path = words.next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(Error::invalid(FIELD, s, "must start with an absolute path"));
    }
    if path.ends_with('/') {
        return Err(Error::invalid(
            FIELD,
            s,
            "must name a file, not a directory (no trailing `/`)",
        ));
    }
    for component in path[1..].split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return Err(Error::invalid(
                FIELD,
                s,
                "path must not contain empty, `.` or `..` components",
            ));
        }
        if !component.bytes().all(safe_path_byte) {
            return Err(Error::invalid(
                FIELD,
                s,
                "path may contain only letters, digits and `._+-`",
            ));
        }
    }
    let mut count = 0;
    for arg in words {
        count += 1;
        if arg.is_empty() {
            return Err(Error::invalid(
                FIELD,
                s,
                "arguments must be separated by single spaces",
            ));
        }
        if let Some(bad) = arg
            .chars()
            .find(|&c| !(c.is_ascii() && safe_arg_byte(c as u8)))
        {
            return Err(Error::invalid(
                FIELD,
                s,
                format!(
                    "argument contains the unsafe character `{}`",
                    bad.escape_default()
                ),
            ));
        }
        if arg.starts_with('-') && arg.len() == 1 {
            return Err(Error::invalid(
                FIELD,
                s,
                "a bare `-` argument is not allowed",
            ));
        }
    }
    if count > 32 {
        return Err(Error::invalid(FIELD, s, "at most 32 arguments"));
    }
    Ok(s)
}

fn safe_path_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-')
}

fn safe_arg_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-' | b'/' | b'@' | b'%')
}

/// A duration such as `30m`, `2h`, `1h30m`, `90s` or `1d`, in seconds. A unit is required; zero,
/// negative and over-long durations are refused.
pub fn duration(s: &str) -> Result<u64, Error> {
    const FIELD: &str = "duration";
    let hint = "expected a positive number with a unit, such as 30m, 2h or 1h30m";
    if s.is_empty() || s.len() > 24 {
        return Err(Error::invalid(FIELD, s, hint));
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            let n = number.unwrap_or(0);
            number = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or_else(|| Error::invalid(FIELD, s, "is too long"))?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(Error::invalid(FIELD, s, hint)),
        };
        let n = number
            .take()
            .ok_or_else(|| Error::invalid(FIELD, s, hint))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| Error::invalid(FIELD, s, "is too long"))?;
    }
    if number.is_some() {
        return Err(Error::invalid(FIELD, s, "needs a unit (s, m, h or d)"));
    }
    if total == 0 {
        return Err(Error::invalid(FIELD, s, "must be longer than zero"));
    }
    if total > MAX_DURATION_SECS {
        return Err(Error::invalid(FIELD, s, "must be at most 7 days"));
    }
    Ok(total)
}

/// Formats seconds the way [`duration`] reads them (`1h30m`).
pub fn format_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, u) in [(d, 'd'), (h, 'h'), (m, 'm'), (s, 's')] {
        if n > 0 {
            out.push_str(&format!("{n}{u}"));
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

/// A ticket or change-record id such as `CHG-1234` or `INC0012345`.
pub fn ticket(s: &str) -> Result<&str, Error> {
    const FIELD: &str = "ticket";
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 64 {
        return Err(Error::invalid(FIELD, s, "must be 1 to 64 characters"));
    }
    if !b[0].is_ascii_alphanumeric()
        || !b
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'#'))
    {
        return Err(Error::invalid(
            FIELD,
            s,
            "may contain only letters, digits and `-_.#`, starting with a letter or digit",
        ));
    }
    Ok(s)
}

/// A reason a person gives: one line of 3 to 500 characters that says something (at least three
/// letters or digits), with no control characters, no Unicode line or paragraph separator and no
/// bidirectional formatting character (which would let a reason shown to an approver read
/// differently from what was stored).
pub fn reason(s: &str) -> Result<&str, Error> {
    const FIELD: &str = "reason";
    let t = s.trim();
    if t.chars().any(|c| c.is_control() || line_or_bidi(c)) {
        return Err(Error::invalid(
            FIELD,
            s,
            "must be a single line without control, line-separator or text-direction characters",
        ));
    }
    let n = t.chars().count();
    if !(3..=500).contains(&n) {
        return Err(Error::invalid(FIELD, s, "must be 3 to 500 characters"));
    }
    if t.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
        return Err(Error::invalid(
            FIELD,
            s,
            "must say why (at least three letters or digits)",
        ));
    }
    Ok(t)
}

/// U+2028/U+2029 (line and paragraph separators) and the bidirectional formatting characters
/// (marks, embeddings, overrides, isolates).
fn line_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{2028}'
            | '\u{2029}'
            | '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// A device tag `key=value`; key `^[a-z][a-z0-9_.-]{0,63}$`, value 1–128 of `A-Za-z0-9_.:/-`.
pub fn tag(s: &str) -> Result<(String, String), Error> {
    const FIELD: &str = "tag";
    let Some((k, v)) = s.split_once('=') else {
        return Err(Error::invalid(FIELD, s, "expected key=value"));
    };
    let kb = k.as_bytes();
    if kb.is_empty()
        || kb.len() > 64
        || !kb[0].is_ascii_lowercase()
        || !kb.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')
        })
    {
        return Err(Error::invalid(
            FIELD,
            s,
            "key must start with a-z and contain only a-z, 0-9 and `_.-`",
        ));
    }
    let vb = v.as_bytes();
    if vb.is_empty()
        || vb.len() > 128
        || !vb
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'/' | b'-'))
    {
        return Err(Error::invalid(
            FIELD,
            s,
            "value must be 1 to 128 of A-Z, a-z, 0-9 and `_.:/-`",
        ));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// A six-digit TOTP code.
pub fn totp_code(s: &str) -> Result<&str, Error> {
    if s.len() == 6 && s.bytes().all(|c| c.is_ascii_digit()) {
        Ok(s)
    } else {
        Err(Error::invalid("TOTP code", s, "must be six digits"))
    }
}

/// An id issued by the server (a UUID in its canonical lower-case form).
pub fn id<'a>(field: &'static str, s: &'a str) -> Result<&'a str, Error> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        });
    if ok {
        Ok(s)
    } else {
        Err(Error::invalid(field, s, "is not a valid id"))
    }
}

mod reserved;
mod webhook;
pub use reserved::{new_device_name, new_person_name, reserved};
pub use webhook::{
    MAX_WEBHOOK_URL, WebhookUrl, address_kind, public_ip, webhook_target, webhook_url,
};

#[cfg(test)]
mod tests;
