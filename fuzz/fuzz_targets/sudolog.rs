//! The parser of sudo's log (`usage/sudolog.rs`), which ties each command run under a grant to
//! that grant.
//!
//! - Any text: total; entries start at increasing offsets, each at the start of a line whose
//!   text it begins with, and hold no newline; a parsed record has a user and run-as user
//!   without spaces, a non-empty command with sudo's quoting balanced, a valid time; and writing
//!   a record back out in sudo's format and parsing it again gives the same record.
//! - Entries written the way sudo writes them (arguments escaped and quoted, the working
//!   directory as it is, lines wrapped at any space with four spaces of indent): the parser
//!   gives back exactly the user, run-as user, directory, terminal, refusal and command that
//!   were written, whatever the directory and the arguments hold. A directory or an argument
//!   that imitates the fields cannot change which command is recorded.
//! - Any text: the parser gives the same records as its earlier quadratic version
//!   (`src/sudolog_before.rs`), the oracle for its linear-time rewrite.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use brevet_agent::usage::sudolog::{Record, entries, parse};
use libfuzzer_sys::fuzz_target;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const USERS: [&str; 4] = ["alice", "bob", "root", "_svc-x"];
const REFUSALS: [&str; 4] = [
    "command not allowed",
    "a password is required",
    "user NOT in sudoers",
    "3 incorrect password attempts",
];

#[derive(Debug, Arbitrary)]
struct Entry {
    month: u8,
    day: u8,
    hms: (u8, u8, u8),
    year: Option<u16>,
    user: u8,
    runas: u8,
    host: Option<u8>,
    refusal: Option<u8>,
    tty: Option<u8>,
    cwd: String,
    group: Option<u8>,
    path: String,
    args: Vec<String>,
    /// Which spaces become line breaks (bit i: the i-th space).
    wraps: u64,
}

/// An argument as sudo logs it: `\` and `'` escaped with `\`, control characters as `#ooo`,
/// and the whole in single quotes when it holds a space.
fn sudo_arg(a: &str) -> String {
    let mut out = String::new();
    for c in a.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_ascii_control() => out.push_str(&format!("#{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    if out.contains(' ') {
        format!("'{out}'")
    } else {
        out
    }
}

/// The one-line form of a record, as sudo writes it before wrapping.
fn line(r: &Record) -> String {
    let mut s = format!("{} : {} : ", r.time_text, r.user);
    if let Some(x) = &r.refusal {
        s.push_str(&format!("{x} ; "));
    }
    if let Some(t) = &r.tty {
        s.push_str(&format!("TTY={t} ; "));
    }
    s.push_str(&format!("PWD={} ; USER={} ; ", r.cwd, r.runas));
    if let Some(g) = &r.group {
        s.push_str(&format!("GROUP={g} ; "));
    }
    s.push_str(&format!("COMMAND={}", r.command));
    s
}

/// Replaces the chosen spaces after the first `keep` bytes (sudo never wraps inside the time
/// and user, which stand in the first 80 columns) with a newline and four spaces.
fn wrap(s: &str, keep: usize, wraps: u64) -> String {
    let mut out = s[..keep].to_owned();
    let mut space = 0;
    for c in s[keep..].chars() {
        if c == ' ' {
            if space < 64 && wraps >> space & 1 == 1 {
                out.push_str("\n    ");
            } else {
                out.push(' ');
            }
            space += 1;
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

fn any_text(text: &str) {
    let mut last: Option<u64> = None;
    for e in entries(text, 7) {
        assert!(last.is_none_or(|l| e.offset > l), "offsets go back");
        last = Some(e.offset);
        let start = usize::try_from(e.offset - 7).unwrap();
        assert!(
            start == 0 || text.as_bytes()[start - 1] == b'\n',
            "not at a line start"
        );
        let first = text[start..].split('\n').next().unwrap_or("");
        assert!(e.text.starts_with(first), "{:?} / {first:?}", e.text);
        assert!(!e.text.contains('\n'));
        let r = parse(&e.text);
        if e.text.len() <= 1 << 16 {
            let before = brevet_fuzz::sudolog_before::parse(&e.text);
            assert_eq!(
                format!("{r:?}"),
                format!("{before:?}"),
                "differs from before the rewrite"
            );
        }
        let Some(r) = r else { continue };
        assert!(!r.user.is_empty() && !r.user.contains(' '), "{r:?}");
        assert!(!r.runas.is_empty() && !r.runas.contains(' '), "{r:?}");
        assert!(!r.command.is_empty(), "{r:?}");
        assert!(e.text.ends_with(&format!("COMMAND={}", r.command)), "{r:?}");
        let t = r.time;
        assert!((1..=12).contains(&t.month) && (1..=31).contains(&t.day));
        assert!(t.hour <= 23 && t.minute <= 59 && t.second <= 59);
        assert!(e.text.starts_with(&r.time_text));
        let again = line(&r);
        assert_eq!(
            parse(&again).as_ref(),
            Some(&r),
            "written back as {again:?}"
        );
    }
}

fn written(e: &Entry) {
    let day = e.day % 31 + 1;
    let mut time_text = format!(
        "{} {day:>2} {:02}:{:02}:{:02}",
        MONTHS[usize::from(e.month % 12)],
        e.hms.0 % 24,
        e.hms.1 % 60,
        e.hms.2 % 60
    );
    if let Some(y) = e.year {
        time_text.push_str(&format!(" {}", 1970 + y % 8000));
    }
    // A working directory holds anything but a newline (a limitation noted in docs/fuzzing.md).
    let cwd = format!("/{}", e.cwd.replace('\n', "_"));
    let path = format!(
        "/{}",
        e.path
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '\\' | '\'' | '#'))
            .collect::<String>()
    );
    let args: Vec<String> = e
        .args
        .iter()
        .filter(|a| !a.is_empty())
        .map(|a| sudo_arg(a))
        .collect();
    let command = std::iter::once(path)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    let want = Record {
        time_text: time_text.clone(),
        time: parse(&format!("{time_text} : a : PWD=/ ; USER=r ; COMMAND=/x"))
            .expect("the time parses")
            .time,
        user: USERS[usize::from(e.user % 4)].into(),
        runas: USERS[usize::from(e.runas % 4)].into(),
        group: e.group.map(|g| USERS[usize::from(g % 4)].to_owned()),
        cwd,
        tty: e.tty.map(|t| format!("pts/{t}")),
        command,
        refusal: e.refusal.map(|r| REFUSALS[usize::from(r % 4)].to_owned()),
    };
    let mut one = line(&want);
    if let Some(h) = e.host {
        let at = one.find(" : ").unwrap() + 3;
        let at = at + one[at..].find(" : ").unwrap() + 3;
        one.insert_str(at, &format!("HOST=host{h} : "));
    }
    let keep = time_text.len() + 3 + want.user.len();
    let text = wrap(&one, keep, e.wraps);
    let got = entries(&text, 0);
    assert_eq!(got.len(), 1, "{text:?} -> {got:?}");
    let r = parse(&got[0].text);
    assert_eq!(r.as_ref(), Some(&want), "{text:?}");
}

// The first byte chooses: 0 any text, 1 entries written as sudo writes them.
fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        any_text(&String::from_utf8_lossy(rest));
    } else if let Ok(e) = Entry::arbitrary_take_rest(Unstructured::new(rest)) {
        written(&e);
    }
});
