//! The agent's sudoers readers: the scan's lenient lexer (`scan/lexer.rs`), the strict checker
//! used where `visudo` is absent (`sudoers/check.rs`), and the renderer against both.
//!
//! - Lexer, any text: total; logical lines are trimmed, non-empty, single physical-line text
//!   with line numbers that only grow and stay within the file; a user specification has
//!   non-empty users, an `=` in its rest, and its rest is the tail of the line; `NOPASSWD`
//!   and `ALL` are only reported where those words occur (outside parentheses).
//! - Checker, any text: what it accepts is printable ASCII without `\`, ends in a newline, has
//!   one rule whose users, run-as user and commands have DESIGN §10's shapes, and reads through
//!   the scan's lexer as exactly that rule (the two independent parsers agree).
//! - With `BREVET_FUZZ_VISUDO` set (the corpus replay of `scripts/fuzz.sh`): every drop-in the
//!   checker accepts or the renderer writes also passes the real `visudo -cf`.
//! - Renderer, grants built from fields: a grant that validates renders (unless the renderer
//!   must refuse it), and whatever it writes passes the checker and reads as one rule for the
//!   grant's user.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use brevet_agent::fuzzing::{SudoersEntry, sudoers_classify, sudoers_logical_lines};
use brevet_agent::sudoers::check::check;
use brevet_fuzz::*;
use brevet_proto::grant::{GrantDoc, GrantKind};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Grant {
    user: Pick,
    runas: Pick,
    commands: Vec<Pick>,
    groups: Vec<Pick>,
    not_before: Pick,
    not_after: Pick,
    ticket: Option<Pick>,
    time_bounds: bool,
}

fn lex(src: &str) {
    let physical = src.split('\n').count();
    let mut last = 0;
    for (line, text) in sudoers_logical_lines(src) {
        assert!(
            line > last && line <= physical,
            "line {line} after {last} of {physical}"
        );
        last = line;
        assert!(!text.is_empty() && text.trim() == text, "{text:?}");
        assert!(!text.contains('\n'), "{text:?}");
        match sudoers_classify(&text) {
            SudoersEntry::UserSpec {
                users,
                rest,
                nopasswd,
                all_commands,
            } => {
                assert!(!users.is_empty() && users.iter().all(|u| !u.is_empty()));
                assert!(rest.contains('='), "{rest:?}");
                assert!(text.ends_with(&rest), "{text:?} / {rest:?}");
                assert!(!nopasswd || rest.contains("NOPASSWD"));
                // What stands in parentheses is skipped, inside a word too (`A(root)LL` and
                // `AL)L` count as `ALL`): that over-reports, the safe direction.
                let commands = rest.split_once('=').map_or("", |(_, c)| c);
                assert!(
                    !all_commands || outside_parens(commands).contains("ALL"),
                    "{rest:?}"
                );
            }
            SudoersEntry::Defaults { params, .. } => {
                assert!(text.starts_with("Defaults"));
                assert!(params.iter().all(|(_, n, _)| !n.is_empty()));
            }
            SudoersEntry::Include { .. } | SudoersEntry::Alias | SudoersEntry::Unknown => {}
        }
    }
}

/// With `BREVET_FUZZ_VISUDO` set to a `visudo` binary (the replay step of `scripts/fuzz.sh`),
/// every drop-in the checker accepts must also pass `visudo -cf`: the checker stands in for
/// visudo where sudo is absent, so it may accept nothing sudo would refuse.
fn visudo_accepts(text: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let Some(visudo) = std::env::var_os("BREVET_FUZZ_VISUDO") else {
        return;
    };
    let path = std::env::temp_dir().join(format!(
        "brevet-fuzz-visudo-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).expect("write a temporary drop-in");
    let out = std::process::Command::new(visudo)
        .arg("-cf")
        .arg(&path)
        .output()
        .expect("run visudo");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "the checker accepts what visudo refuses:\n{text}\nvisudo: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `s` without what stands inside parentheses, nor the parentheses.
fn outside_parens(s: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn checked(text: &str) {
    if check(text).is_err() {
        return;
    }
    assert!(text.ends_with('\n'));
    assert!(
        text.bytes()
            .all(|b| b == b'\n' || (0x20..0x7f).contains(&b) && b != b'\\'),
        "{text:?}"
    );
    let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
    assert!((3..=4).contains(&lines.len()), "{text:?}");
    assert!(lines[0].starts_with("# Brevet grant "));
    let rule = lines[lines.len() - 1];
    let (user, rest) = rule.split_once(" ALL=(").expect("rule shape");
    assert!(is_unix_name(user), "user {user:?}");
    let (runas, rest) = rest.split_once(") ").expect("runas");
    assert!(is_unix_name(runas), "runas {runas:?}");
    let (_, cmds) = rest.split_once("NOPASSWD: ").expect("NOPASSWD");
    let mut all = false;
    for c in cmds.split(", ") {
        assert!(is_safe_command(c, true), "command {c:?} in {text:?}");
        all |= c == "ALL";
    }
    assert_drop_in_reads_as(text, user, all);
    visudo_accepts(text);
}

fn rendered(g: &Grant) {
    let list = |items: &[Pick], table| items.iter().map(|p| p.get(table)).collect::<Vec<_>>();
    let doc = GrantDoc {
        v: 1,
        grant_id: IDS[0].into(),
        request_id: IDS[1].into(),
        device: "web-01".into(),
        user: g.user.get(USERS),
        role: "pkg-update".into(),
        runas: g.runas.get(USERS),
        commands: list(&g.commands, COMMANDS),
        groups: list(&g.groups, GROUPS),
        not_before: g.not_before.get(TIMES),
        not_after: g.not_after.get(TIMES),
        ticket: g.ticket.as_ref().map(|t| t.get(TICKETS)),
        approvers: vec!["bob".into()],
        issued_at: TIMES[0].into(),
        kind: GrantKind::Normal,
    };
    match brevet_agent::sudoers::render(&doc, g.time_bounds) {
        Ok(text) => {
            assert!(doc.validate().is_ok(), "rendered an invalid grant");
            assert_grant_accepted(&doc);
            if let Err(r) = check(&text) {
                panic!("checker refuses the renderer's output ({r}):\n{text}");
            }
            visudo_accepts(&text);
        }
        Err(_) => {
            if doc.validate().is_ok() {
                // The renderer may refuse only a grant without commands or with sudoedit.
                assert_grant_accepted(&doc);
                let sudoedit = doc.commands.iter().any(|c| {
                    c.split(' ')
                        .next()
                        .is_some_and(|p| p.rsplit('/').next() == Some("sudoedit"))
                });
                assert!(
                    doc.commands.is_empty() || sudoedit,
                    "valid grant refused: {doc:?}"
                );
            }
        }
    }
}

// The first byte chooses: 0 the lexer on the text, 1 the checker (and the lexer) on the text,
// 2 the renderer on a grant built from fields.
fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => lex(&String::from_utf8_lossy(rest)),
        1 => {
            let text = String::from_utf8_lossy(rest);
            lex(&text);
            checked(&text);
        }
        _ => {
            if let Ok(g) = Grant::arbitrary_take_rest(Unstructured::new(rest)) {
                rendered(&g);
            }
        }
    }
});
