//! The crate's error type, and the translation of Cedar diagnostics (byte
//! offsets, `for policy ...` prefixes) into messages that name a policy and a
//! line of the file.

use std::fmt;

/// Why a policy file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the policy file has a syntax error: {}; fix it and run `brevet policy check` again", Problems(.0))]
    Syntax(Vec<Problem>),
    #[error("the policy file does not match the brevet schema: {}; see `SCHEMA` in the brevet-policy crate for what policies can use", Problems(.0))]
    Schema(Vec<Problem>),
    #[error("policy id `{id}` is used twice; give each policy its own @id(\"...\")")]
    DuplicateId { id: String },
    #[error(
        "a policy has an empty @id(\"\") (Cedar numbers it `{id}`, counting from 0 in file order); give it a name"
    )]
    EmptyId { id: String },
    #[error(
        "policy `{id}` is a template (it uses `?principal` or `?resource`); brevet does not link templates, so write a plain policy"
    )]
    Template { id: String },
    #[error("internal error in brevet-policy: {0}")]
    Internal(String),
}

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The policy's id, when the problem is inside a parsed policy.
    pub policy: Option<String>,
    /// 1-based line and column in the policy file, when Cedar reported a location.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.policy, self.line, self.column) {
            (Some(id), Some(line), _) => write!(f, "policy `{id}` (line {line}): ")?,
            (Some(id), None, _) => write!(f, "policy `{id}`: ")?,
            (None, Some(line), Some(col)) => write!(f, "line {line}, column {col}: ")?,
            (None, Some(line), None) => write!(f, "line {line}: ")?,
            (None, None, _) => {}
        }
        f.write_str(&self.message)
    }
}

/// Displays a list of problems on one line.
struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl Problem {
    /// Builds a problem from a Cedar diagnostic whose labels point into `src`.
    pub(crate) fn from_diagnostic(
        d: &dyn miette::Diagnostic,
        src: &str,
        policy: Option<String>,
    ) -> Problem {
        // Cedar's validation messages start with "for policy `ID`, "; we say
        // that ourselves, next to the line number.
        let prefix = policy.as_ref().map(|id| format!("for policy `{id}`, "));
        let strip = |text: String| match prefix.as_deref().and_then(|p| text.strip_prefix(p)) {
            Some(rest) => rest.to_string(),
            None => text,
        };
        let mut message = strip(d.to_string());
        if let Some(help) = d.help() {
            message = format!("{message} ({})", strip(help.to_string()));
        }
        let offset = d
            .labels()
            .and_then(|mut labels| labels.next())
            .map(|label| label.offset());
        let (line, column) = match offset {
            Some(offset) => {
                let (line, column) = line_and_column(src, offset);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        Problem {
            policy,
            line,
            column,
            message,
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `src`; an
/// offset past the end or inside a character is clamped.
fn line_and_column(src: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(src.len());
    while !src.is_char_boundary(end) {
        end -= 1;
    }
    let before = &src[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_cases() {
        let src = "ab\ncdé\nf";
        let cases = [
            (0, (1, 1)),
            (2, (1, 3)),
            (3, (2, 1)),
            (5, (2, 3)),
            (6, (2, 3)), // inside `é`: clamped back
            (7, (2, 4)),
            (8, (3, 1)),
            (100, (3, 2)),
        ];
        for (offset, want) in cases {
            assert_eq!(line_and_column(src, offset), want, "offset {offset}");
        }
    }

    #[test]
    fn problem_display() {
        let p = |policy: Option<&str>, line, column| Problem {
            policy: policy.map(str::to_string),
            line,
            column,
            message: "bad".into(),
        };
        let cases = [
            (p(Some("x"), Some(3), Some(1)), "policy `x` (line 3): bad"),
            (p(Some("x"), None, None), "policy `x`: bad"),
            (p(None, Some(3), Some(7)), "line 3, column 7: bad"),
            (p(None, None, None), "bad"),
        ];
        for (problem, want) in cases {
            assert_eq!(problem.to_string(), want);
        }
    }
}
