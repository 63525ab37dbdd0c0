//! Shared parts of Brevet's fuzz targets: the fixed test key, sample field values that make
//! structured inputs reach past the first check, and the properties an accepted value must have,
//! written here independently of the code under test (a second implementation of DESIGN §10).

pub mod sudolog_before;

use arbitrary::Arbitrary;
use brevet_agent::fuzzing::{SudoersEntry, sudoers_classify, sudoers_logical_lines};
use brevet_proto::grant::GrantDoc;
use ring::signature::Ed25519KeyPair;

/// The fixed key the "signed" paths sign with. Never a real key.
pub fn test_key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[0x42; 32]).expect("a 32-byte seed is a valid key")
}

pub fn test_public_key() -> Vec<u8> {
    use ring::signature::KeyPair;
    test_key().public_key().as_ref().to_vec()
}

pub fn sign_b64(key: &Ed25519KeyPair, bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(key.sign(bytes).as_ref())
}

/// Characters sudoers gives a meaning to, plus line breaks and NUL: none may reach a drop-in
/// inside a name, an id or a ticket.
pub const SUDOERS_META: &[char] = &[
    '\0', '\n', '\r', '\t', ' ', ',', ':', '=', '(', ')', '\\', '#', '!', '*', '?', '[', ']', '"',
    '\'', '$', ';', '|', '&', '<', '>', '~', '`', '{', '}', '%', '@', '+', '/', '^',
];

/// Panics (a finding) if `s` holds a sudoers metacharacter, a control character or non-ASCII.
pub fn assert_sudoers_word(what: &str, s: &str) {
    assert!(!s.is_empty(), "{what}: accepted empty");
    for c in s.chars() {
        assert!(
            c.is_ascii() && !c.is_ascii_control() && !SUDOERS_META.contains(&c),
            "{what}: accepted {s:?} holding {c:?}"
        );
    }
}

/// `^[a-z_][a-z0-9_-]{0,31}$` (DESIGN §10), written out.
pub fn is_unix_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// `^[a-z][a-z0-9-]{0,63}$`.
pub fn is_role(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// An RFC 1123 host name in lower case.
pub fn is_lower_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            (1..=63).contains(&b.len())
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
                && b.iter()
                    .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        })
}

/// A canonical lower-case UUID.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => matches!(c, b'0'..=b'9' | b'a'..=b'f'),
        })
}

/// A ticket: 1–64 of `A-Za-z0-9-_.#`, starting with a letter or digit.
pub fn is_ticket(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'#'))
}

/// A command that is safe in a sudoers `Cmnd` list: `ALL` (when allowed), or an absolute path
/// of plain components and single-space separated arguments of `A-Za-z0-9._+-/@%`, with none of
/// sudoers' special characters (`,` `:` `=` `\` `*` `?` `[` `!` `"` `#`, whitespace other than
/// the single separating space, controls).
pub fn is_safe_command(s: &str, allow_all: bool) -> bool {
    if s == "ALL" {
        return allow_all;
    }
    let mut words = s.split(' ');
    let Some(path) = words.next().and_then(|p| p.strip_prefix('/')) else {
        return false;
    };
    let path_ok = path.split('/').all(|c| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
    });
    path_ok
        && words.all(|a| {
            !a.is_empty()
                && a.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'_' | b'+' | b'-' | b'/' | b'@' | b'%')
                })
        })
}

/// What every grant document the verifier accepts must satisfy: each field has the shape of
/// DESIGN §10, and the drop-in the agent would write from it passes the built-in checker and
/// reads, through the scan's lexer, as exactly one rule for the grant's user.
pub fn assert_grant_accepted(g: &GrantDoc) {
    assert_eq!(g.v, 1);
    assert!(is_uuid(&g.grant_id), "grant id {:?}", g.grant_id);
    assert!(is_uuid(&g.request_id), "request id {:?}", g.request_id);
    assert!(is_lower_hostname(&g.device), "device {:?}", g.device);
    assert!(is_unix_name(&g.user), "user {:?}", g.user);
    assert!(is_unix_name(&g.runas), "runas {:?}", g.runas);
    assert!(is_role(&g.role), "role {:?}", g.role);
    for a in &g.approvers {
        assert!(is_unix_name(a), "approver {a:?}");
    }
    for grp in &g.groups {
        assert!(is_unix_name(grp), "group {grp:?}");
    }
    if let Some(t) = &g.ticket {
        assert!(is_ticket(t), "ticket {t:?}");
        assert_sudoers_word_except("ticket", t, &['#']);
    }
    for w in [&g.grant_id, &g.device, &g.user, &g.runas, &g.role] {
        assert_sudoers_word_except("field", w, &['-', '.', '_']);
    }
    assert!(!g.commands.is_empty() || !g.groups.is_empty());
    for c in &g.commands {
        assert!(is_safe_command(c, true), "command {c:?}");
    }
    let nb = g.not_before_secs().expect("accepted not_before parses");
    let na = g.not_after_secs().expect("accepted not_after parses");
    assert!(na > nb && na - nb <= 7 * 24 * 3600, "window {nb}..{na}");

    let sudoedit = g.commands.iter().any(|c| {
        c.split(' ')
            .next()
            .is_some_and(|p| p.rsplit('/').next() == Some("sudoedit"))
    });
    for time_bounds in [false, true] {
        let rendered = brevet_agent::sudoers::render(g, time_bounds);
        if g.commands.is_empty() || sudoedit {
            assert!(rendered.is_err(), "rendered a grant it must refuse: {g:?}");
            continue;
        }
        let text = rendered.unwrap_or_else(|e| panic!("valid grant not rendered ({e}): {g:?}"));
        if let Err(r) = brevet_agent::sudoers::check::check(&text) {
            panic!("the checker refused what the renderer wrote ({r}):\n{text}");
        }
        assert_drop_in_reads_as(&text, &g.user, g.commands.iter().any(|c| c == "ALL"));
    }
}

/// `assert_sudoers_word`, except for the characters in `allowed`.
pub fn assert_sudoers_word_except(what: &str, s: &str, allowed: &[char]) {
    let filtered: String = s.chars().filter(|c| !allowed.contains(c)).collect();
    if !filtered.is_empty() {
        assert_sudoers_word(what, &filtered);
    }
}

/// A drop-in the checker accepted, read as the standing-privilege scan reads it: the comment
/// disappears, the `Defaults` lines are scoped to `user` and set `timestamp_timeout=0` (and the
/// log file), and there is exactly one rule, for `user` alone, tagged `NOPASSWD`, which runs
/// every command exactly when `all` is set.
pub fn assert_drop_in_reads_as(text: &str, user: &str, all: bool) {
    let lines = sudoers_logical_lines(text);
    assert!(
        (2..=3).contains(&lines.len()),
        "the scan reads {lines:?} from\n{text}"
    );
    let (rule, defaults) = lines.split_last().expect("two or three lines");
    for (_, d) in defaults {
        match sudoers_classify(d) {
            SudoersEntry::Defaults { scope, params } => {
                assert_eq!(scope, format!(":{user}"), "{text}");
                assert_eq!(params.len(), 1, "{text}");
                let (negated, name, value) = &params[0];
                assert!(!negated, "{text}");
                match name.as_str() {
                    "timestamp_timeout" => assert_eq!(value.as_deref(), Some("0"), "{text}"),
                    "logfile" => assert_eq!(
                        value.as_deref(),
                        Some(brevet_agent::usage::SUDO_LOG),
                        "{text}"
                    ),
                    other => panic!("unexpected Defaults `{other}` in\n{text}"),
                }
            }
            other => panic!("expected a Defaults line, the scan read {other:?} in\n{text}"),
        }
    }
    match sudoers_classify(&rule.1) {
        SudoersEntry::UserSpec {
            users,
            nopasswd,
            all_commands,
            ..
        } => {
            assert_eq!(users, [user.to_owned()], "{text}");
            assert!(nopasswd, "{text}");
            assert_eq!(all_commands, all, "{text}");
        }
        other => panic!("expected one rule, the scan read {other:?} in\n{text}"),
    }
}

/// Picks a value from a table of realistic ones (valid and hostile) or takes the fuzzer's text.
#[derive(Debug, Arbitrary)]
pub enum Pick {
    Table(u8),
    Text(String),
}

impl Pick {
    pub fn get(&self, table: &[&str]) -> String {
        match self {
            Pick::Table(i) => table[usize::from(*i) % table.len()].to_owned(),
            Pick::Text(s) => s.clone(),
        }
    }
}

pub const IDS: &[&str] = &[
    "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d",
    "1b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d",
    "0B7F5B1E-8A4E-4C41-9D1E-2F7C8A9B0C1D",
    "0b7f5b1e8a4e4c419d1e2f7c8a9b0c1d",
    "../../etc/sudoers",
];
pub const DEVICES: &[&str] = &[
    "web-01",
    "db.example.com",
    "WEB-01",
    "a",
    "web-01\nALL",
    "-x",
];
pub const USERS: &[&str] = &[
    "alice",
    "bob",
    "root",
    "_svc-x",
    "ALL",
    "bob ALL=(ALL) NOPASSWD: ALL",
    "%sudo",
    "a,b",
    "#0",
];
pub const ROLES: &[&str] = &["pkg-update", "admin", "a", "Admin", "x y"];
pub const COMMANDS: &[&str] = &[
    "/usr/bin/apt-get update",
    "/usr/bin/apt-get upgrade",
    "ALL",
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/sudoedit /etc/hosts",
    "/bin/ls, ALL",
    "/bin/*",
    "/usr/bin/id -",
    "/usr/bin/env a=b",
    "/bin/sh -c id",
    "/usr/bin/",
    "sudoedit",
];
pub const GROUPS: &[&str] = &["docker", "adm", "sudo", "Docker", "a b"];
pub const TIMES: &[&str] = &[
    "2026-11-28T10:00:00Z",
    "2026-11-28T10:30:00Z",
    "2026-11-28T11:30:00+01:00",
    "2026-12-05T10:00:00Z",
    "2026-12-05T10:00:01Z",
    "2026-11-28T10:00:00.5Z",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-11-28",
];
pub const TICKETS: &[&str] = &["CHG-1234", "INC0012345", "#1", "a#b", "X\n#include /tmp/x"];
