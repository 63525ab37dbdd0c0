//! What `brevet` prints: aligned tables and `key  value` blocks for people, the API objects as
//! they are for `--json`.
//!
//! Text that came from the server is passed through [`sanitize`] before it reaches a terminal, so
//! a hostile reason or name cannot move the cursor or rewrite earlier lines. Ids are printed in
//! full so they can be pasted into the next command.

use std::io::Write;

use serde::Serialize;

use crate::error::Error;

/// Replaces control characters (escape sequences, newlines) with `?`.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Prints `value` as pretty JSON followed by a newline.
pub(crate) fn json(out: &mut dyn Write, value: &(impl Serialize + ?Sized)) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// `-` for a missing value, the sanitized value otherwise.
pub(crate) fn opt(v: Option<&str>) -> String {
    v.map_or_else(|| "-".to_owned(), sanitize)
}

/// A comma-separated list, `-` when empty.
pub(crate) fn joined(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        sanitize(&items.join(","))
    }
}

/// Columns separated by two spaces, each as wide as its widest cell; no trailing blanks.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| sanitize(c)).collect());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.len() <= 1
    }

    pub(crate) fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }

    /// Prints the table, or `none` (e.g. `no grants`) when it has no rows.
    pub(crate) fn print(&self, out: &mut dyn Write, none: &str) -> Result<(), Error> {
        if self.is_empty() {
            writeln!(out, "{none}")?;
        } else {
            write!(out, "{}", self.render())?;
        }
        Ok(())
    }
}

/// A `key  value` block, keys aligned.
pub(crate) struct Fields {
    pairs: Vec<(&'static str, String)>,
}

impl Fields {
    pub(crate) fn new() -> Fields {
        Fields { pairs: Vec::new() }
    }

    pub(crate) fn add(&mut self, key: &'static str, value: impl AsRef<str>) -> &mut Fields {
        self.pairs.push((key, sanitize(value.as_ref())));
        self
    }

    /// One line per value, the key on the first only; `-` when there are none.
    pub(crate) fn add_all(&mut self, key: &'static str, values: &[String]) -> &mut Fields {
        match values.split_first() {
            None => self.add(key, "-"),
            Some((first, rest)) => {
                self.add(key, first);
                for v in rest {
                    self.add("", v);
                }
                self
            }
        }
    }

    pub(crate) fn render(&self) -> String {
        let width = self.pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        self.pairs
            .iter()
            .map(|(k, v)| format!("{}\n", format!("{k:width$}  {v}").trim_end()))
            .collect()
    }

    pub(crate) fn print(&self, out: &mut dyn Write) -> Result<(), Error> {
        write!(out, "{}", self.render())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_without_trailing_blanks() {
        let mut t = Table::new(&["ID", "STATE", "NOTE"]);
        t.row(vec!["a".into(), "pending".into(), "".into()]);
        t.row(vec!["bbbb".into(), "ok".into(), "x".into()]);
        assert_eq!(
            t.render(),
            "ID    STATE    NOTE\na     pending\nbbbb  ok       x\n"
        );
    }

    #[test]
    fn empty_tables_say_so() {
        let t = Table::new(&["ID"]);
        let mut out = Vec::new();
        t.print(&mut out, "no grants").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "no grants\n");
    }

    #[test]
    fn server_text_cannot_inject_terminal_controls() {
        let mut t = Table::new(&["REASON"]);
        t.row(vec!["ok\x1b[2J\nfake line".into()]);
        assert_eq!(t.render(), "REASON\nok?[2J?fake line\n");
        let mut f = Fields::new();
        f.add("reason", "a\rb");
        assert_eq!(f.render(), "reason  a?b\n");
    }

    #[test]
    fn fields_align_keys() {
        let mut f = Fields::new();
        f.add("id", "x").add("state", "pending").add("ticket", "");
        f.add_all("commands", &["/a b".into(), "/c".into()]);
        f.add_all("groups", &[]);
        assert_eq!(
            f.render(),
            "id        x\nstate     pending\nticket\ncommands  /a b\n          /c\ngroups    -\n"
        );
    }

    #[test]
    fn lists_and_options_show_a_dash_when_empty() {
        assert_eq!(joined(&[]), "-");
        assert_eq!(joined(&["a".into(), "b".into()]), "a,b");
        assert_eq!(opt(None), "-");
        assert_eq!(opt(Some("x")), "x");
    }
}
