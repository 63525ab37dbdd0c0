//! A lenient reader for the parts of sudoers syntax the scan needs.
//!
//! It is not a validator (that is `visudo`'s job): it turns a file into logical lines and
//! classifies each as an include directive, a `Defaults` entry, an alias definition or a user
//! specification, the way sudo's lexer would split them:
//!
//! - `#` starts a comment, except in `#include`/`#includedir` at the start of a line, before a
//!   digit (`#1000` is a uid, `%#1000` a gid), inside double quotes or after `\`.
//! - A line whose last non-blank character is an unescaped `\` continues on the next line; a
//!   comment ends the line, so a `\` inside a comment does not continue it.
//! - `@include`/`@includedir` are the modern spellings of the `#` directives.
//!
//! Every function is total: any input (including random bytes) gives some result, never a panic.

/// One logical line: continuations joined, comment removed, trimmed, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Logical {
    /// 1-based number of the physical line it starts on.
    pub line: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry<'a> {
    Include {
        path: String,
        dir: bool,
    },
    /// `Defaults[:@!>]scope params`; `scope` is empty for plain `Defaults`.
    Defaults {
        scope: String,
        params: Vec<Param>,
    },
    Alias,
    /// `users hosts = ...`: the user list and everything after it.
    UserSpec {
        users: Vec<String>,
        rest: &'a str,
    },
    /// Anything else (sudo would reject it as a syntax error).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub negated: bool,
    pub name: String,
    pub value: Option<String>,
}

pub(crate) fn logical_lines(src: &str) -> Vec<Logical> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in src.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let no = i + 1;
        if cur.is_none() && directive(raw).is_some() {
            out.push(Logical {
                line: no,
                text: raw.trim().to_string(),
            });
            continue;
        }
        let (body, had_comment) = strip_comment(raw);
        let end = body.trim_end_matches([' ', '\t']);
        let continues = !had_comment && ends_with_odd_backslashes(end);
        let piece = if continues {
            &end[..end.len() - 1]
        } else {
            body
        };
        let (start, mut text) = cur.take().unwrap_or((no, String::new()));
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(piece);
        if continues {
            cur = Some((start, text));
        } else {
            push_line(&mut out, start, &text);
        }
    }
    if let Some((start, text)) = cur {
        push_line(&mut out, start, &text);
    }
    out
}

fn push_line(out: &mut Vec<Logical>, line: usize, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        out.push(Logical {
            line,
            text: text.to_string(),
        });
    }
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// The line without its comment, and whether there was one.
fn strip_comment(raw: &str) -> (&str, bool) {
    let b = raw.as_bytes();
    let mut in_quote = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1, // skip the escaped byte (ASCII markers never occur inside UTF-8)
            b'"' => in_quote = !in_quote,
            b'#' if !in_quote && !b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                return (&raw[..i], true);
            }
            _ => {}
        }
        i += 1;
    }
    (raw, false)
}

/// `(is_dir, argument)` of an include directive line.
fn directive(line: &str) -> Option<(bool, &str)> {
    let t = line.trim_start();
    for (prefix, dir) in [
        ("#includedir", true),
        ("@includedir", true),
        ("#include", false),
        ("@include", false),
    ] {
        if let Some(rest) = t
            .strip_prefix(prefix)
            .filter(|r| r.starts_with([' ', '\t']))
        {
            return Some((dir, rest.trim()));
        }
    }
    None
}

const ALIAS_KEYWORDS: [&str; 5] = [
    "User_Alias",
    "Runas_Alias",
    "Host_Alias",
    "Cmnd_Alias",
    "Cmd_Alias",
];

pub(crate) fn classify(text: &str) -> Entry<'_> {
    if let Some((dir, arg)) = directive(text) {
        return Entry::Include {
            path: unquote_word(arg),
            dir,
        };
    }
    if let Some(rest) = text.strip_prefix("Defaults") {
        let mut chars = rest.chars();
        match chars.next() {
            None => {
                return Entry::Defaults {
                    scope: String::new(),
                    params: Vec::new(),
                };
            }
            Some(c @ (':' | '@' | '!' | '>')) => {
                let (scope, params) = split_list_prefix(chars.as_str());
                return Entry::Defaults {
                    scope: format!("{c}{}", scope.join(",")),
                    params: parse_params(params),
                };
            }
            Some(c) if c.is_whitespace() => {
                return Entry::Defaults {
                    scope: String::new(),
                    params: parse_params(rest),
                };
            }
            Some(_) => {}
        }
    }
    let first = text.split_whitespace().next().unwrap_or("");
    if ALIAS_KEYWORDS.contains(&first) {
        return Entry::Alias;
    }
    let (users, rest) = split_list_prefix(text);
    if users.is_empty() || !rest.contains('=') {
        return Entry::Unknown;
    }
    Entry::UserSpec { users, rest }
}

/// Splits a leading comma-separated list (`alice, %sudo,bob`) off `s`. The list ends at
/// whitespace that is neither next to a comma nor inside quotes; the rest is returned as is.
pub(crate) fn split_list_prefix(s: &str) -> (Vec<String>, &str) {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut after_comma = true;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if in_quote {
            match c {
                '"' => in_quote = false,
                '\\' => cur.extend(chars.next().map(|(_, n)| n)),
                _ => cur.push(c),
            }
            continue;
        }
        match c {
            '\\' => {
                cur.extend(chars.next().map(|(_, n)| n));
                after_comma = false;
            }
            '"' => {
                in_quote = true;
                after_comma = false;
            }
            ',' => {
                push_item(&mut items, &mut cur);
                after_comma = true;
            }
            c if c.is_whitespace() => {
                if after_comma {
                    continue;
                }
                let rest = &s[i..];
                if rest.trim_start().starts_with(',') {
                    continue;
                }
                push_item(&mut items, &mut cur);
                return (items, rest.trim_start());
            }
            c => {
                cur.push(c);
                after_comma = false;
            }
        }
    }
    push_item(&mut items, &mut cur);
    (items, "")
}

fn push_item(items: &mut Vec<String>, cur: &mut String) {
    let item = std::mem::take(cur);
    if !item.is_empty() {
        items.push(item);
    }
}

/// `Defaults` parameters: comma-separated outside quotes, each `[!…]name[(+|-)=value]`.
fn parse_params(s: &str) -> Vec<Param> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                cur.extend(chars.next());
            }
            '"' => {
                in_quote = !in_quote;
                cur.push(c);
            }
            ',' if !in_quote => out.extend(parse_param(&std::mem::take(&mut cur))),
            c => cur.push(c),
        }
    }
    out.extend(parse_param(&cur));
    out
}

fn parse_param(p: &str) -> Option<Param> {
    let mut p = p.trim();
    let mut negated = false;
    while let Some(rest) = p.strip_prefix('!') {
        negated = !negated;
        p = rest.trim_start();
    }
    let (name, value) = match p.split_once('=') {
        Some((n, v)) => {
            let n = n.trim_end();
            let n = n
                .strip_suffix('+')
                .or_else(|| n.strip_suffix('-'))
                .unwrap_or(n);
            (n.trim(), Some(unquote_word(v.trim())))
        }
        None => (p, None),
    };
    if name.is_empty() {
        return None;
    }
    Some(Param {
        negated,
        name: name.to_string(),
        value,
    })
}

/// A word with its surrounding double quotes and backslash escapes removed.
fn unquote_word(s: &str) -> String {
    let s = s.trim();
    let inner = s
        .strip_prefix('"')
        .map(|r| r.strip_suffix('"').unwrap_or(r))
        .unwrap_or(s);
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a user specification's command part carries `tag:` (e.g. `NOPASSWD:`).
pub(crate) fn has_tag(rest: &str, tag: &str) -> bool {
    let mut from = 0;
    while let Some(off) = rest.get(from..).and_then(|r| r.find(tag)) {
        let at = from + off;
        let before_ok = at == 0
            || rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| !(c.is_alphanumeric() || c == '_'));
        let after = rest.get(at + tag.len()..).unwrap_or("");
        if before_ok && after.trim_start().starts_with(':') {
            return true;
        }
        from = at + tag.len();
    }
    false
}

/// Whether a user specification may run every command (`ALL` in its command part). Runas lists
/// in parentheses are ignored; a second `Host = …` after `:` may be over-counted, which errs on
/// the side of a higher severity.
pub(crate) fn grants_all_commands(rest: &str) -> bool {
    let Some((_, cmnds)) = rest.split_once('=') else {
        return false;
    };
    let mut depth = 0usize;
    let mut word = String::new();
    let mut found = false;
    for c in cmnds.chars().chain(std::iter::once(' ')) {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 && (c.is_whitespace() || matches!(c, ',' | ':' | '=')) => {
                found |= word == "ALL";
                word.clear();
            }
            c if depth == 0 => word.push(c),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_lines_table() {
        let cases: &[(&str, &[(usize, &str)])] = &[
            ("", &[]),
            ("# only a comment\n\n   \n", &[]),
            (
                "root ALL=(ALL:ALL) ALL # trailing\n",
                &[(1, "root ALL=(ALL:ALL) ALL")],
            ),
            (
                "Defaults:deploy \\\n    !authenticate\nbob ALL=ALL\n",
                &[
                    (1, "Defaults:deploy      !authenticate"),
                    (3, "bob ALL=ALL"),
                ],
            ),
            ("a ALL=\\\n\\\nALL", &[(1, "a ALL=  ALL")]),
            // A backslash inside a comment does not continue the line.
            ("# note \\\nbob ALL=ALL\n", &[(2, "bob ALL=ALL")]),
            // Nor does one before a comment: the comment ends the line.
            (
                "a ALL=ALL \\ # c\nb ALL=ALL",
                &[(1, "a ALL=ALL \\"), (2, "b ALL=ALL")],
            ),
            // An escaped backslash does not continue either.
            (
                "x ALL=/bin/echo \\\\\ny ALL=ALL",
                &[(1, "x ALL=/bin/echo \\\\"), (2, "y ALL=ALL")],
            ),
            ("#1000 ALL=ALL\n", &[(1, "#1000 ALL=ALL")]),
            ("%#27 ALL=ALL #x\n", &[(1, "%#27 ALL=ALL")]),
            ("a ALL=/bin/echo \"#x\"\n", &[(1, "a ALL=/bin/echo \"#x\"")]),
            ("a ALL=/bin/echo \\#x\n", &[(1, "a ALL=/bin/echo \\#x")]),
            (
                "#includedir /etc/sudoers.d\r\n",
                &[(1, "#includedir /etc/sudoers.d")],
            ),
            ("@include \"/etc/x y\"\n", &[(1, "@include \"/etc/x y\"")]),
            ("#include_not_really x\n", &[]),
            ("trailing \\", &[(1, "trailing")]),
        ];
        for (src, want) in cases {
            let got = logical_lines(src);
            let got: Vec<(usize, &str)> = got.iter().map(|l| (l.line, l.text.as_str())).collect();
            assert_eq!(&got, want, "source {src:?}");
        }
    }

    #[test]
    fn classify_table() {
        let p = |negated, name: &str, value: Option<&str>| Param {
            negated,
            name: name.into(),
            value: value.map(Into::into),
        };
        let cases: Vec<(&str, Entry)> = vec![
            (
                "#includedir /etc/sudoers.d",
                Entry::Include {
                    path: "/etc/sudoers.d".into(),
                    dir: true,
                },
            ),
            (
                "@include \"/etc/x y\"",
                Entry::Include {
                    path: "/etc/x y".into(),
                    dir: false,
                },
            ),
            (
                "Defaults env_reset, !tty_tickets,timestamp_timeout = 15",
                Entry::Defaults {
                    scope: String::new(),
                    params: vec![
                        p(false, "env_reset", None),
                        p(true, "tty_tickets", None),
                        p(false, "timestamp_timeout", Some("15")),
                    ],
                },
            ),
            (
                "Defaults:deploy, ops  !authenticate",
                Entry::Defaults {
                    scope: ":deploy,ops".into(),
                    params: vec![p(true, "authenticate", None)],
                },
            ),
            (
                "Defaults secure_path=\"/usr/bin:/bin\", env_keep+=\"A,B\"",
                Entry::Defaults {
                    scope: String::new(),
                    params: vec![
                        p(false, "secure_path", Some("/usr/bin:/bin")),
                        p(false, "env_keep", Some("A,B")),
                    ],
                },
            ),
            ("Cmnd_Alias X = /bin/ls", Entry::Alias),
            (
                "%sudo   ALL=(ALL:ALL) ALL",
                Entry::UserSpec {
                    users: vec!["%sudo".into()],
                    rest: "ALL=(ALL:ALL) ALL",
                },
            ),
            (
                "alice , bob,%wheel host1=ALL",
                Entry::UserSpec {
                    users: vec!["alice".into(), "bob".into(), "%wheel".into()],
                    rest: "host1=ALL",
                },
            ),
            ("garbage without equals", Entry::Unknown),
            (
                "DefaultsX ALL=ALL",
                Entry::UserSpec {
                    users: vec!["DefaultsX".into()],
                    rest: "ALL=ALL",
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(classify(text), want, "{text}");
        }
    }

    #[test]
    fn tags_and_all_commands() {
        for (rest, nopasswd, all) in [
            ("ALL=(ALL) NOPASSWD: ALL", true, true),
            ("ALL=(ALL) NOPASSWD:/usr/bin/apt", true, false),
            (
                "ALL = (root) PASSWD: /bin/a, NOPASSWD : /bin/b",
                true,
                false,
            ),
            ("ALL=(ALL:ALL) ALL", false, true),
            ("ALL=(ALL) /usr/bin/NOPASSWDx", false, false),
            ("ALL=(ALL) XNOPASSWD: /bin/a", false, false),
            ("ALL=/usr/bin/systemctl restart nginx", false, false),
            ("ALL", false, false),
        ] {
            assert_eq!(has_tag(rest, "NOPASSWD"), nopasswd, "{rest}");
            assert_eq!(grants_all_commands(rest), all, "{rest}");
        }
    }
}
