//! A parser of sudo's own log file in its default text format (`Defaults logfile=…`):
//!
//! ```text
//! Nov 29 00:50:19 : alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u
//! Nov 29 00:50:20 : alice : command not allowed ; PWD=/ ; USER=root ;
//!     COMMAND=/usr/bin/whoami
//! ```
//!
//! sudo wraps an entry at `loglinelen` (80) by replacing a space with a newline and four spaces;
//! [`entries`] joins those continuation lines back. It escapes control characters in arguments
//! (`#012`) and quotes arguments holding spaces, so a new entry only ever starts at a line that
//! does not start with a space, and the command part of an entry has balanced quotes. The working
//! directory is written as it is, so it may hold ` ; USER=` itself: [`parse`] therefore takes the
//! right-most ` ; USER=…` whose command part is well quoted, which a directory name cannot fake.
//! Nothing here panics on odd input: a line that does not parse is `None`.

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
///
/// Linear in the length of `msg`, however many ` ; USER=` and ` ; KEY=` imitations an argument
/// or a directory holds (the invoking user writes those, and a quadratic search let one long
/// entry hold up the agent for minutes): each field chain is walked once and remembered
/// ([`Walk`]), and the quoting of every suffix is known from one pass ([`Quoting`]).
fn command_part(msg: &str) -> Option<(&str, String, Option<String>, String)> {
    let mut candidates: Vec<usize> = msg.match_indices(" ; USER=").map(|(i, _)| i + 3).collect();
    if msg.starts_with("USER=") {
        candidates.insert(0, 0);
    }
    let quoting = Quoting::of(msg);
    let mut walk = Walk::new(msg);
    for &at in candidates.iter().rev() {
        let Some((runas, fields)) = msg
            .get(at + 5..)
            .and_then(|r| r.split_once(" ; "))
            .map(|(runas, _)| (runas, at + 5 + runas.len() + 3))
        else {
            continue;
        };
        if runas.is_empty() || runas.contains(' ') {
            continue;
        }
        let Some((command_at, group)) = walk.from(fields) else {
            continue;
        };
        let command = msg.get(command_at..).unwrap_or_default();
        if command.is_empty() || !quoting.balanced_from(command_at) {
            continue;
        }
        let prefix = msg.get(..at.saturating_sub(3)).unwrap_or_default();
        let group = group.and_then(|(a, b)| msg.get(a..b)).map(str::to_owned);
        return Some((prefix, runas.to_owned(), group, command.to_owned()));
    }
    None
}

/// Where a chain of `KEY=value ; ` fields starting at a byte offset leads: to the offset of
/// the command after `COMMAND=`, with the byte range of the last `GROUP=` value on the way, or
/// nowhere (a field that is not `KEY=value` with an upper-case key, or no `COMMAND=`). Results
/// are remembered by offset, so every field is read once whichever candidate reaches it.
struct Walk<'a> {
    msg: &'a str,
    seen: std::collections::HashMap<usize, Option<Reached>>,
}

type Reached = (usize, Option<(usize, usize)>);

impl<'a> Walk<'a> {
    fn new(msg: &'a str) -> Walk<'a> {
        Walk {
            msg,
            seen: std::collections::HashMap::new(),
        }
    }

    fn from(&mut self, start: usize) -> Option<Reached> {
        // Forward to a known or final offset, then fill in the offsets passed on the way.
        let mut path: Vec<(usize, Option<(usize, usize)>)> = Vec::new();
        let mut at = start;
        let mut reached = loop {
            if let Some(known) = self.seen.get(&at) {
                break *known;
            }
            let rest = self.msg.get(at..).unwrap_or_default();
            if rest.starts_with("COMMAND=") {
                break Some((at + 8, None));
            }
            // GROUP=, TSID=, ENV=, … : one `KEY=value ; ` field each.
            let Some((field, _)) = rest.split_once(" ; ") else {
                break None;
            };
            let Some((key, value)) = field.split_once('=') else {
                break None;
            };
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_uppercase()) {
                break None;
            }
            let group = (key == "GROUP").then(|| {
                let v = at + key.len() + 1;
                (v, v + value.len())
            });
            path.push((at, group));
            at += field.len() + 3;
        };
        self.seen.insert(at, reached);
        // The last GROUP= of a chain wins, as each field overwrote the one before.
        for (offset, group) in path.into_iter().rev() {
            reached = reached.map(|(command, later)| (command, later.or(group)));
            self.seen.insert(offset, reached);
        }
        reached
    }
}

/// Whether sudo's quoting is complete in each suffix of a message (single quotes pair up, and
/// a backslash escapes the next character), computed for every suffix in one pass from the end.
/// Bytes stand for characters: `\` and `'` are ASCII and never part of a longer UTF-8 sequence.
struct Quoting {
    /// Bit 0: the suffix from here is balanced; bit 1: it would be, starting inside quotes.
    at: Vec<u8>,
}

impl Quoting {
    fn of(msg: &str) -> Quoting {
        let b = msg.as_bytes();
        let mut at = vec![0u8; b.len() + 1];
        // At the end: balanced when not inside quotes.
        at[b.len()] = 0b01;
        for i in (0..b.len()).rev() {
            at[i] = match b[i] {
                b'\\' if i + 1 == b.len() => 0,
                b'\\' => at[i + 2],
                // A quote swaps the two states.
                b'\'' => (at[i + 1] >> 1) | ((at[i + 1] & 1) << 1),
                _ => at[i + 1],
            };
        }
        Quoting { at }
    }

    fn balanced_from(&self, i: usize) -> bool {
        self.at.get(i).is_some_and(|s| s & 1 == 1)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Option<Record> {
        let e = entries(text, 0);
        assert_eq!(e.len(), 1, "{e:?}");
        parse(&e[0].text)
    }

    #[test]
    fn reads_what_sudo_1_9_13_writes() {
        // (text, user, runas, cwd, tty, command, refusal)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a str,
            Option<&'a str>,
            &'a str,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "Nov 29 00:50:19 : alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u\n",
                "alice",
                "root",
                "/home/alice",
                Some("pts/0"),
                "/usr/bin/id -u",
                None,
            ),
            (
                "Nov 29 00:56:16 : alice : PWD=/tmp ; USER=root ; COMMAND=/usr/bin/id -u\n",
                "alice",
                "root",
                "/tmp",
                None,
                "/usr/bin/id -u",
                None,
            ),
            (
                "Nov 29 00:56:17 : alice : a password is required ; PWD=/tmp ; USER=root ;\n    COMMAND=/usr/bin/whoami\n",
                "alice",
                "root",
                "/tmp",
                None,
                "/usr/bin/whoami",
                Some("a password is required"),
            ),
            (
                "Nov  2 09:05:01 : bob : command not allowed ; TTY=pts/3 ; PWD=/root ; USER=root ; COMMAND=/bin/sh\n",
                "bob",
                "root",
                "/root",
                Some("pts/3"),
                "/bin/sh",
                Some("command not allowed"),
            ),
            (
                "Nov 29 00:56:17 : alice : PWD=/tmp ; USER=root ; COMMAND=/usr/bin/ls\n    /tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    /tmp/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb /tmp/cccccccccccc\n",
                "alice",
                "root",
                "/tmp",
                None,
                "/usr/bin/ls /tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa /tmp/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb /tmp/cccccccccccc",
                None,
            ),
            // A directory name that imitates the fields: the right-most well-quoted part wins.
            (
                "Nov 29 00:57:43 : alice : PWD=/tmp/x ; USER=nobody ; COMMAND=/bin/fake ;\n    USER=root ; COMMAND=/usr/bin/id -u\n",
                "alice",
                "root",
                "/tmp/x ; USER=nobody ; COMMAND=/bin/fake",
                None,
                "/usr/bin/id -u",
                None,
            ),
            // An argument that imitates the fields is quoted by sudo: not split there.
            (
                "Nov 29 00:57:51 : alice : PWD=/ ; USER=root ; COMMAND=/usr/bin/id 'x ; USER=root\n    ; COMMAND=/bin/y'\n",
                "alice",
                "root",
                "/",
                None,
                "/usr/bin/id 'x ; USER=root ; COMMAND=/bin/y'",
                None,
            ),
            (
                "Nov 29 00:57:51 : alice : PWD=/ ; USER=root ; COMMAND=/usr/bin/id it\\'s 'a b'\n    'x\\'y z' q\"r p\\\\s\n",
                "alice",
                "root",
                "/",
                None,
                "/usr/bin/id it\\'s 'a b' 'x\\'y z' q\"r p\\\\s",
                None,
            ),
            (
                "Nov 29 00:57:31 : alice : PWD=/ ; USER=root ; COMMAND=/usr/bin/id 'x#012Nov 29\n    00:00:00 : bob : PWD=/ ; USER=root ; COMMAND=/bin/evil'\n",
                "alice",
                "root",
                "/",
                None,
                "/usr/bin/id 'x#012Nov 29 00:00:00 : bob : PWD=/ ; USER=root ; COMMAND=/bin/evil'",
                None,
            ),
            (
                "Dec 31 23:59:59 2026 : carol : HOST=web-01 : TTY=pts/1 ; PWD=/srv ; USER=postgres ; GROUP=postgres ; ENV=A=1 ; COMMAND=/usr/bin/pg_ctl restart\n",
                "carol",
                "postgres",
                "/srv",
                Some("pts/1"),
                "/usr/bin/pg_ctl restart",
                None,
            ),
        ];
        for (text, user, runas, cwd, tty, command, refusal) in cases {
            let r = one(text).unwrap_or_else(|| panic!("did not parse: {text}"));
            assert_eq!(r.user, user, "{text}");
            assert_eq!(r.runas, runas, "{text}");
            assert_eq!(r.cwd, cwd, "{text}");
            assert_eq!(r.tty.as_deref(), tty, "{text}");
            assert_eq!(r.command, command, "{text}");
            assert_eq!(r.refusal.as_deref(), refusal, "{text}");
            assert_eq!(r.allowed(), refusal.is_none());
        }
        let r = one("Dec 31 23:59:59 2026 : carol : HOST=h : PWD=/ ; USER=root ; GROUP=wheel ; COMMAND=/x\n").unwrap();
        assert_eq!(r.group.as_deref(), Some("wheel"));
        assert_eq!(
            r.time,
            LoggedTime {
                month: 12,
                day: 31,
                hour: 23,
                minute: 59,
                second: 59,
                year: Some(2026)
            }
        );
        assert_eq!(r.time_text, "Dec 31 23:59:59 2026");
        assert_eq!(
            one("Nov  2 09:05:01 : bob : PWD=/ ; USER=root ; COMMAND=/x\n")
                .unwrap()
                .time
                .day,
            2
        );
    }

    #[test]
    fn entries_keep_their_offsets() {
        let text = "Nov 29 00:56:16 : a : PWD=/ ; USER=root ; COMMAND=/x\n\
                    Nov 29 00:56:17 : a : PWD=/ ; USER=root ;\n    COMMAND=/y\n\
                    Nov 29 00:56:18 : a : PWD=/ ; USER=root ; COMMAND=/z\n";
        let e = entries(text, 100);
        let offsets: Vec<u64> = e.iter().map(|e| e.offset).collect();
        assert_eq!(offsets, [100, 153, 210]);
        assert_eq!(
            e[1].text,
            "Nov 29 00:56:17 : a : PWD=/ ; USER=root ; COMMAND=/y"
        );
        // A continuation with nothing before it (e.g. after truncation) is dropped.
        assert_eq!(entries("    COMMAND=/y\n", 0), []);
    }

    #[test]
    fn a_wrap_inside_a_run_of_spaces_keeps_every_space() {
        // Found by fuzzing (sudolog): sudo replaced the first of three spaces with the break;
        // the two after the indent are part of the argument and of the directory.
        let r = one(
            "Nov 29 00:57:51 : alice : PWD=/tmp/a\n      b ; USER=root ; COMMAND=/usr/bin/echo 'x\n      y'\n",
        )
        .unwrap();
        assert_eq!(r.cwd, "/tmp/a   b");
        assert_eq!(r.command, "/usr/bin/echo 'x   y'");
    }

    #[test]
    fn a_line_of_imitation_fields_parses_in_linear_time() {
        // Found while writing the fuzz target (sudolog): every ` ; USER=` in an argument was
        // tried with a scan to the end of the line, so one refused `sudo` call with a 2 MB
        // argument (any grant's user can make one) held the agent's loop for minutes. 2 MiB
        // took about 2 minutes in a release build; now well under a second in a debug build.
        let arg = "x ; USER=r ; GROUP=g ; A=b ; COMMAND=y ".repeat(2 << 20 >> 5);
        let text = format!(
            "Nov 29 00:57:51 : alice : command not allowed ; PWD=/ ; USER=root ; \
             COMMAND=/usr/bin/apt-get update '{arg}'"
        );
        let started = std::time::Instant::now();
        let r = parse(&text).unwrap();
        eprintln!("parsed {} bytes in {:?}", text.len(), started.elapsed());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!((r.runas.as_str(), r.cwd.as_str()), ("root", "/"));
        assert_eq!(r.command, format!("/usr/bin/apt-get update '{arg}'"));
        // The last GROUP= of the chain wins; a chain that breaks is not the command.
        let r = parse("Nov 29 00:57:51 : a : PWD=/ ; USER=root ; GROUP=a ; GROUP=b ; COMMAND=/x")
            .unwrap();
        assert_eq!(r.group.as_deref(), Some("b"));
        assert_eq!(
            parse("Nov 29 00:57:51 : a : PWD=/ ; USER=root ; lower=1 ; COMMAND=/x"),
            None
        );
    }

    #[test]
    fn odd_lines_are_none_never_a_panic() {
        for bad in [
            "",
            " : : ",
            "Nov 29 00:56:16",
            "Nov 29 00:56:16 : alice",
            "Nov 29 00:56:16 : alice : ",
            "Nov 29 00:56:16 : alice : unable to open /etc/sudoers",
            "Nov 29 00:56:16 : alice : PWD=/ ; USER=root ; COMMAND=",
            "Nov 29 00:56:16 : alice : PWD=/ ; USER=root ; COMMAND=/x 'unbalanced",
            "Nov 29 00:56:16 : alice : PWD=/ ; USER=root ; COMMAND=/x \\",
            "Nov 29 00:56:16 : alice : USER=root ; COMMAND=/x",
            "Foo 29 00:56:16 : alice : PWD=/ ; USER=root ; COMMAND=/x",
            "Nov 32 00:56:16 : alice : PWD=/ ; USER=root ; COMMAND=/x",
            "Nov 29 24:56:16 : alice : PWD=/ ; USER=root ; COMMAND=/x",
            "Nov 29 00:56 : alice : PWD=/ ; USER=root ; COMMAND=/x",
            "Nov 29 00:56:16 1 : alice : PWD=/ ; USER=root ; COMMAND=/x",
            "Nov 29 00:56:16 : al ice : PWD=/ ; USER=root ; COMMAND=/x",
            "Nov 29 00:56:16 : alice : PWD=/ ; USER= ; COMMAND=/x",
            "Nov 29 00:56:16 : alice : a ; b ; PWD=/ ; USER=root ; COMMAND=/x",
            "Nov 29 00:56:16 : alice : PWD=/ ; USER=root ; lower=1 ; COMMAND=/x",
            "Nov 29 00:56:16 : alice : HOST=x",
            "\u{0} : \u{ffff} : PWD=é ; USER=é ; COMMAND=é",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        // Arbitrary bytes through the whole path: no panic.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet: Vec<char> = " :;=USERPWDCOMAND'\\\n/éx0Nov29".chars().collect();
        for _ in 0..5000 {
            let mut s = String::from("Nov 29 00:00:00 : a : ");
            for _ in 0..(seed % 60) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            for e in entries(&s, 0) {
                let _ = parse(&e.text);
            }
        }
    }
}
