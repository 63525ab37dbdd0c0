//! Entry points for the fuzz targets in `fuzz/` (not an API: hidden from the docs, may change).
//!
//! The scan's sudoers lexer is private to the crate; these wrappers hand its results out as
//! plain values so a target can check its properties. The checker ([`crate::sudoers::check`]),
//! the renderer ([`crate::sudoers::render`]) and the sudo log parser ([`crate::usage::sudolog`])
//! are public already.

use crate::scan::lexer;

/// One logical line: the physical line it starts on and its text.
pub fn sudoers_logical_lines(src: &str) -> Vec<(usize, String)> {
    lexer::logical_lines(src)
        .into_iter()
        .map(|l| (l.line, l.text))
        .collect()
}

/// How the scan reads one logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SudoersEntry {
    Include {
        path: String,
        dir: bool,
    },
    /// `(negated, name, value)` for each parameter.
    Defaults {
        scope: String,
        params: Vec<(bool, String, Option<String>)>,
    },
    Alias,
    /// The users, the rest of the line, and whether the scan sees `NOPASSWD:` and `ALL`
    /// commands in it.
    UserSpec {
        users: Vec<String>,
        rest: String,
        nopasswd: bool,
        all_commands: bool,
    },
    Unknown,
}

/// Classifies one logical line as the scan does.
pub fn sudoers_classify(text: &str) -> SudoersEntry {
    match lexer::classify(text) {
        lexer::Entry::Include { path, dir } => SudoersEntry::Include { path, dir },
        lexer::Entry::Defaults { scope, params } => SudoersEntry::Defaults {
            scope,
            params: params
                .into_iter()
                .map(|p| (p.negated, p.name, p.value))
                .collect(),
        },
        lexer::Entry::Alias => SudoersEntry::Alias,
        lexer::Entry::UserSpec { users, rest } => SudoersEntry::UserSpec {
            users,
            rest: rest.to_owned(),
            nopasswd: lexer::has_tag(rest, "NOPASSWD"),
            all_commands: lexer::grants_all_commands(rest),
        },
        lexer::Entry::Unknown => SudoersEntry::Unknown,
    }
}

/// The scan's split of a leading comma-separated list.
pub fn sudoers_split_list_prefix(s: &str) -> (Vec<String>, String) {
    let (items, rest) = lexer::split_list_prefix(s);
    (items, rest.to_owned())
}
