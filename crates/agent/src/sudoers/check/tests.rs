//! The checker against hand-written cases, against the renderer (property tests with a seeded
//! generator: `proptest` is not among the agent's dependencies), and against the real `visudo`.

use super::*;
use crate::linux::visudo;
use crate::sudoers::render;
use brevet_proto::grant::{GrantDoc, GrantKind};

const HEAD: &str = "# Brevet grant 0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d: alice as root on web-01, ticket none, until 2026-11-28T10:30:00Z. Managed by brevet-agent; do not edit.\n";

fn file(defaults: &str, rule: &str) -> String {
    format!("{HEAD}{defaults}\n{rule}\n")
}

/// Files both the checker and sudo 1.9.13's visudo accept.
fn good() -> Vec<String> {
    let d = "Defaults:alice timestamp_timeout=0";
    vec![
        file(d, "alice ALL=(root) NOPASSWD: ALL"),
        file(
            d,
            "alice ALL=(root) NOPASSWD: /usr/bin/apt-get update, /usr/bin/apt-get upgrade",
        ),
        file(
            d,
            "alice ALL=(root) NOTBEFORE=20261128100000Z NOTAFTER=20261128103000Z NOPASSWD: /usr/bin/ls",
        ),
        file(
            d,
            "alice ALL=(postgres) NOPASSWD: /usr/bin/pg_ctl -D /var/lib/pg restart, /usr/local/bin/x+y a@b %c",
        ),
        file(
            "Defaults:_svc-1 timestamp_timeout=0",
            "_svc-1 ALL=(r-1) NOPASSWD: /opt/.../tool --flag-on",
        ),
        file(
            "Defaults:alice timestamp_timeout=0\nDefaults:alice logfile=/var/log/brevet/sudo.log",
            "alice ALL=(root) NOPASSWD: /usr/bin/ls",
        ),
    ]
}

/// Files visudo rejects; the checker must too.
fn bad() -> Vec<String> {
    let d = "Defaults:alice timestamp_timeout=0";
    vec![
        file(d, "alice ALL=(root) NOPASSWD /usr/bin/ls"),
        file(d, "alice ALL=(root) NOPASSWD: /usr/bin/ls a:b"),
        file(d, "alice ALL=(root) NOPASSWD: /usr/bin/ls a,b"),
        file(
            d,
            "alice ALL=(root) NOPASSWD: NOTBEFORE=20261128100000Z /usr/bin/ls",
        ),
        file(
            d,
            "alice ALL=(root) NOTBEFORE=2026112810000Z NOPASSWD: /usr/bin/ls",
        ),
        file(d, "alice ALL=(root) NOPASSWD: /usr/bin/sudoedit /etc/hosts"),
        file(d, "alice ALL=(root) NOPASSWD: usr/bin/ls"),
        file(d, "alice ALL=(root) NOPASSWD: /usr/bin/ls, usr/bin/id"),
        file(d, "alice ALL=(root) NOPASSWD: /usr/bin/ls, /usr/bin/id a:b"),
        file(d, "alice ALL=(root NOPASSWD: /usr/bin/ls"),
        file(d, "alice ALL=(root) BOGUS=1 NOPASSWD: /usr/bin/ls"),
        format!("{HEAD}#include /etc/evil\n{d}\n"),
    ]
}

/// Files visudo accepts but that are outside the subset: the checker is stricter.
fn stricter() -> Vec<String> {
    let d = "Defaults:alice timestamp_timeout=0";
    vec![
        file(d, "alice ALL=(ALL) NOPASSWD: ALL"),
        file(d, "alice ALL=(root) ALL"),
        file(d, "bob ALL=(root) NOPASSWD: /usr/bin/ls"),
        file(d, "alice ALL=(root) NOPASSWD: /usr/bin/ls \"\""),
        file(d, "alice ALL=(root) NOPASSWD: /usr/bin/ls a!b"),
        file(d, "alice ALL=(root) NOPASSWD: /usr/bin/ls --flag=on"),
        file(
            d,
            "alice ALL=(root) NOTBEFORE=20261328100000Z NOTAFTER=20261428100000Z NOPASSWD: /usr/bin/ls",
        ),
        file(
            d,
            "alice ALL=(root) NOTBEFORE=20261128103000Z NOTAFTER=20261128100000Z NOPASSWD: /usr/bin/ls",
        ),
        file(d, "alice ALL=(root) NOPASSWD: /usr/bin/ls,/usr/bin/id"),
        format!("{HEAD}{d}\nalice ALL=(root) NOPASSWD: /usr/bin/ls\nbob ALL=(ALL) ALL\n"),
        format!("{HEAD}{d}\nalice ALL=(root) NOPASSWD: /usr/bin/ls"),
        format!("{HEAD}{d}\nalice ALL=(root) NOPASSWD: /usr/bin/ls \\\n, ALL\n"),
        format!("{HEAD}{d}\r\nalice ALL=(root) NOPASSWD: /usr/bin/ls\n"),
        format!("# something else\n{d}\nalice ALL=(root) NOPASSWD: /usr/bin/ls\n"),
        // Only Brevet's own log, only for the rule's user.
        file(
            &format!("{d}\nDefaults:alice logfile=/tmp/elsewhere.log"),
            "alice ALL=(root) NOPASSWD: /usr/bin/ls",
        ),
        file(
            &format!("{d}\nDefaults:bob logfile=/var/log/brevet/sudo.log"),
            "alice ALL=(root) NOPASSWD: /usr/bin/ls",
        ),
        file(
            &format!("{d}\nDefaults:alice log_input"),
            "alice ALL=(root) NOPASSWD: /usr/bin/ls",
        ),
    ]
}

#[test]
fn table() {
    for f in good() {
        assert_eq!(check(&f), Ok(()), "{f}");
    }
    for f in bad().into_iter().chain(stricter()) {
        assert!(check(&f).is_err(), "accepted:\n{f}");
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub(crate) struct Gen(u64);

impl Gen {
    pub(crate) fn new(seed: u64) -> Gen {
        Gen(seed | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn string(&mut self, alphabet: &[u8], max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }
}

const SAFE_NAME: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_-";
const HOSTILE: &[u8] = b"abcxyzABC019_-/ ,:=!\\\"'()#*?[]@%+.\n\r\t~$`;&|<>{}";
const ARG: &[u8] = b"abcXYZ019._+-/@%";

fn base_doc() -> GrantDoc {
    GrantDoc {
        v: 1,
        grant_id: "0b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into(),
        request_id: "1b7f5b1e-8a4e-4c41-9d1e-2f7c8a9b0c1d".into(),
        device: "web-01".into(),
        user: "alice".into(),
        role: "pkg-update".into(),
        runas: "root".into(),
        commands: vec!["/usr/bin/ls".into()],
        groups: vec![],
        not_before: "2026-11-28T10:00:00Z".into(),
        not_after: "2026-11-28T10:30:00Z".into(),
        ticket: None,
        approvers: vec![],
        issued_at: "2026-11-28T10:00:00Z".into(),
        kind: GrantKind::Normal,
    }
}

fn valid_command(g: &mut Gen) -> String {
    if g.below(10) == 0 {
        return "ALL".into();
    }
    let mut c = String::new();
    for _ in 0..=g.below(3) {
        c.push('/');
        let seg = g.string(b"abcdefgh0123._+-", 8);
        c.push_str(if seg.is_empty() || seg == "." || seg == ".." {
            "x"
        } else {
            &seg
        });
    }
    for _ in 0..g.below(4) {
        c.push(' ');
        let a = g.string(ARG, 6);
        c.push_str(if a.is_empty() || a == "-" { "y" } else { &a });
    }
    c
}

fn valid_name(g: &mut Gen) -> String {
    let first = g.pick(&["a", "z", "_", "m"]);
    format!("{first}{}", g.string(SAFE_NAME, 31))
}

#[test]
fn every_valid_grant_renders_to_text_the_checker_accepts() {
    let mut g = Gen::new(0x5eed_0001);
    for i in 0..3000 {
        let mut d = base_doc();
        d.user = valid_name(&mut g);
        d.runas = valid_name(&mut g);
        d.commands = (0..=g.below(4)).map(|_| valid_command(&mut g)).collect();
        d.ticket = (g.below(2) == 0).then(|| format!("CHG-{i}"));
        for bounds in [false, true] {
            match render(&d, bounds) {
                Ok(text) => assert_eq!(check(&text), Ok(()), "{text}"),
                // Only the one sudo-specific refusal may stop a valid document.
                Err(e) => assert!(
                    d.commands.iter().any(|c| c.contains("sudoedit")),
                    "{e}: {d:?}"
                ),
            }
        }
    }
}

#[test]
fn hostile_strings_either_fail_validation_or_render_without_injection() {
    let mut g = Gen::new(0xbad_c0de);
    let seeds = [
        "bob ALL=(ALL) NOPASSWD: ALL",
        "ALL",
        "/bin/ls, ALL",
        "/bin/ls\nALL",
        "root) ALL=(ALL",
        "/bin/sh -c id",
        "/usr/bin/ls \\",
    ];
    let mut rendered = 0;
    for _ in 0..20_000 {
        let mut d = base_doc();
        let hostile = |g: &mut Gen| {
            if g.below(4) == 0 {
                g.pick(&seeds).to_owned()
            } else if g.below(2) == 0 {
                format!("/{}", g.string(HOSTILE, 20))
            } else {
                g.string(HOSTILE, 20)
            }
        };
        match g.below(3) {
            0 => d.user = hostile(&mut g),
            1 => d.runas = hostile(&mut g),
            _ => d.commands = (0..=g.below(2)).map(|_| hostile(&mut g)).collect(),
        }
        let Ok(text) = render(&d, g.below(2) == 0) else {
            continue;
        };
        rendered += 1;
        assert_eq!(check(&text), Ok(()), "{text}");
        assert_eq!(text.matches('\n').count(), 4, "{text}");
        let rule = text.lines().nth(3).unwrap_or_default();
        assert_eq!(rule.matches(',').count() + 1, d.commands.len(), "{text}");
        assert!(!rule.contains('\\') && !rule.contains('#'), "{text}");
        assert!(rule.starts_with(&format!("{} ALL=({}) ", d.user, d.runas)));
    }
    assert!(
        rendered > 100,
        "the generator produced too few renderable documents ({rendered})"
    );
}

fn visudo_or_skip(test: &str) -> Option<std::path::PathBuf> {
    let v = visudo::find();
    if v.is_none() {
        eprintln!("SKIP {test}: visudo not installed");
    }
    v
}

fn visudo_accepts(v: &Path, text: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("brevet_probe");
    std::fs::write(&path, text).unwrap();
    visudo::check_file(v, &path).is_ok()
}

#[test]
fn real_visudo_accepts_rendered_drop_ins_with_and_without_time_bounds() {
    let Some(v) = visudo_or_skip("real_visudo_accepts_rendered_drop_ins") else {
        return;
    };
    let mut g = Gen::new(42);
    for _ in 0..25 {
        let mut d = base_doc();
        d.user = valid_name(&mut g);
        d.runas = valid_name(&mut g);
        d.commands = (0..=g.below(3)).map(|_| valid_command(&mut g)).collect();
        for bounds in [false, true] {
            if let Ok(text) = render(&d, bounds) {
                assert!(visudo_accepts(&v, &text), "visudo rejected:\n{text}");
            }
        }
    }
    assert!(
        visudo::probe_time_bounds(&v),
        "sudo 1.9.13 accepts NOTBEFORE/NOTAFTER"
    );
}

#[test]
fn built_in_checker_agrees_with_real_visudo() {
    let Some(v) = visudo_or_skip("built_in_checker_agrees_with_real_visudo") else {
        return;
    };
    for f in good() {
        assert!(visudo_accepts(&v, &f), "visudo rejected a good file:\n{f}");
    }
    for f in bad() {
        assert!(!visudo_accepts(&v, &f), "visudo accepted a bad file:\n{f}");
    }
    // Stricter is allowed; looser never: whatever the checker accepts, visudo accepts.
    for f in stricter() {
        assert!(check(&f).is_err());
    }
}
