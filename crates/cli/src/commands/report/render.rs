//! Rendering a [`Report`]: the text tables, and the self-contained HTML page (every value
//! escaped, no script, no external asset) written atomically.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;
use crate::error::Error;
use crate::output::{Table, sanitize};

fn warnings(r: &Report) -> Vec<String> {
    let mut notes = Vec::new();
    for (cut, what) in [
        (r.truncated.requests, "requests"),
        (r.truncated.grants, "grants"),
    ] {
        if cut {
            notes.push(format!(
                "the server lists at most {LISTING_CAP} {what}, newest first: older {what} of \
                 the period are not counted"
            ));
        }
    }
    let unconfirmed = r
        .open_privileges
        .iter()
        .filter(|p| p.state == "unconfirmed")
        .count();
    if unconfirmed > 0 {
        notes.push(format!(
            "{unconfirmed} privilege change(s) are in effect without a second administrator's \
             confirmation: `brevet privilege confirm ID` (by another administrator) or reject"
        ));
    }
    notes
}

/// One part of the report as the text and the HTML page show it: a title, a table (or what to
/// say when it has no rows) and a line after it. Cells are raw server text: the renderers
/// sanitize or escape them.
struct Section {
    title: String,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    none: &'static str,
    after: Option<String>,
}

impl Section {
    fn new(title: String, header: &[&'static str], rows: Vec<Vec<String>>) -> Section {
        Section {
            title,
            header: header.to_vec(),
            rows,
            none: "none",
            after: None,
        }
    }
}

fn count_rows(counts: &Counts) -> Vec<Vec<String>> {
    counts
        .0
        .iter()
        .map(|(k, n)| vec![(*k).to_owned(), n.to_string()])
        .collect()
}

fn dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_owned()
}

fn ranked_rows(ranked: &[Ranked]) -> Vec<Vec<String>> {
    ranked
        .iter()
        .map(|x| vec![x.name.clone(), x.grants.to_string()])
        .collect()
}

/// The report, section by section, in the order both renderers print it.
fn sections(r: &Report) -> Vec<Section> {
    let d = &r.requests.time_to_decision;
    let mut requests = Section::new(
        format!("requests: {}", r.requests.total),
        &["STATE", "COUNT"],
        count_rows(&r.requests.by_state),
    );
    requests.after = Some(format!(
        "time to decision: median {}, max {} ({} decided)",
        duration(d.median_seconds),
        duration(d.max_seconds),
        d.decided
    ));
    let grant_rows = r
        .grants
        .items
        .iter()
        .map(|g| {
            vec![
                g.id.clone(),
                g.user.clone(),
                g.device.clone(),
                g.role.clone(),
                g.kind.clone(),
                g.state.clone(),
                dash(g.ticket.as_deref()),
                if g.approvers.is_empty() {
                    "-".to_owned()
                } else {
                    g.approvers.join(",")
                },
                g.issued_at.clone(),
                dash(g.ended_at.as_deref()),
            ]
        })
        .collect();
    let mut grant_list = Section::new(
        "grants in the period:".to_owned(),
        &[
            "ID",
            "USER",
            "DEVICE",
            "ROLE",
            "KIND",
            "STATE",
            "TICKET",
            "APPROVERS",
            "ISSUED_AT",
            "ENDED_AT",
        ],
        grant_rows,
    );
    grant_list.none = "no grants in the period";
    let unconfirmed = r
        .unconfirmed_removals
        .iter()
        .map(|g| {
            vec![
                g.id.clone(),
                g.user.clone(),
                g.device.clone(),
                g.role.clone(),
                g.state.clone(),
                dash(g.ended_at.as_deref()),
            ]
        })
        .collect();
    let breakglass = r
        .breakglass
        .iter()
        .map(|g| {
            vec![
                g.id.clone(),
                g.user.clone(),
                g.device.clone(),
                g.state.clone(),
                g.issued_at.clone(),
                dash(g.ticket.as_deref()),
                dash(g.reason.as_deref()),
            ]
        })
        .collect();
    let findings = r
        .findings
        .by_severity
        .0
        .iter()
        .map(|(k, n)| {
            let drift = r.findings.drift_by_severity.get(k);
            vec![(*k).to_owned(), n.to_string(), drift.to_string()]
        })
        .collect();
    let privileges = r
        .open_privileges
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.user.clone(),
                dash(p.group.as_deref()),
                p.state.clone(),
                p.requested_by.clone(),
                p.requested_at.clone(),
            ]
        })
        .collect();
    let mut privileges = Section::new(
        format!(
            "privilege changes without a second administrator: {}",
            r.open_privileges.len()
        ),
        &[
            "ID",
            "USER",
            "GROUP",
            "STATE",
            "REQUESTED_BY",
            "REQUESTED_AT",
        ],
        privileges,
    );
    privileges.none = "none: every change that gives power was confirmed";
    vec![
        requests,
        privileges,
        Section::new(
            format!("grants: {}", r.grants.total),
            &["STATE", "COUNT"],
            count_rows(&r.grants.by_state),
        ),
        Section::new(
            "grants by kind:".to_owned(),
            &["KIND", "COUNT"],
            count_rows(&r.grants.by_kind),
        ),
        grant_list,
        Section::new(
            format!(
                "removals not confirmed by the device: {}",
                r.unconfirmed_removals.len()
            ),
            &["ID", "USER", "DEVICE", "ROLE", "STATE", "ENDED_AT"],
            unconfirmed,
        ),
        Section::new(
            format!("break-glass grants: {}", r.breakglass.len()),
            &[
                "ID",
                "USER",
                "DEVICE",
                "STATE",
                "ISSUED_AT",
                "TICKET",
                "REASON",
            ],
            breakglass,
        ),
        Section::new(
            "top users by grants:".to_owned(),
            &["USER", "GRANTS"],
            ranked_rows(&r.top_users),
        ),
        Section::new(
            "top devices by grants:".to_owned(),
            &["DEVICE", "GRANTS"],
            ranked_rows(&r.top_devices),
        ),
        Section::new(
            format!(
                "standing-privilege findings ({} devices reporting):",
                r.findings.devices_reporting
            ),
            &["SEVERITY", "FINDINGS", "DRIFT"],
            findings,
        ),
    ]
}

/// The report as sections of aligned tables; server text is sanitized by [`Table`].
pub(crate) fn text(out: &mut dyn Write, r: &Report) -> Result<(), Error> {
    writeln!(out, "compliance report {} to {}", r.since, r.until)?;
    for note in warnings(r) {
        writeln!(out, "note: {note}")?;
    }
    for s in sections(r) {
        writeln!(out, "\n{}", sanitize(&s.title))?;
        let mut t = Table::new(&s.header);
        for row in s.rows {
            t.row(row);
        }
        t.print(out, s.none)?;
        if let Some(after) = &s.after {
            writeln!(out, "{}", sanitize(after))?;
        }
    }
    Ok(())
}

/// Escapes text for HTML element content and quoted attribute values; control characters
/// become U+FFFD.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The page's style: inline, as nothing may be loaded from elsewhere.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\n\
    table{border-collapse:collapse;margin:.5em 0 1em}\n\
    th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\n\
    th{background:#f2f2f2}\n.note{color:#a40}\n.none{color:#777}\n";

/// A self-contained page: inline style, no scripts (the content security policy forbids them
/// too), nothing loaded from elsewhere, every value escaped.
pub(crate) fn render_html(r: &Report) -> String {
    let title = escape(&format!(
        "Brevet compliance report {} to {}",
        r.since, r.until
    ));
    let mut p = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n<title>{title}</title>\n<style>\n{STYLE}</style>\n\
         </head>\n<body>\n<h1>{title}</h1>\n"
    );
    for note in warnings(r) {
        let _ = writeln!(p, "<p class=\"note\">note: {}</p>", escape(&note));
    }
    for s in sections(r) {
        let _ = writeln!(p, "<h2>{}</h2>", escape(s.title.trim_end_matches(':')));
        if s.rows.is_empty() {
            let _ = writeln!(p, "<p class=\"none\">{}</p>", escape(s.none));
        } else {
            p.push_str("<table>\n<tr>");
            for h in &s.header {
                let _ = write!(p, "<th>{}</th>", escape(h));
            }
            p.push_str("</tr>\n");
            for row in &s.rows {
                p.push_str("<tr>");
                for cell in row {
                    let _ = write!(p, "<td>{}</td>", escape(cell));
                }
                p.push_str("</tr>\n");
            }
            p.push_str("</table>\n");
        }
        if let Some(after) = &s.after {
            let _ = writeln!(p, "<p>{}</p>", escape(after));
        }
    }
    p.push_str("</body>\n</html>\n");
    p
}

/// Writes `bytes` to a temporary file beside `path` (mode 0600), then renames it into place, so
/// a reader never sees half a report.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let file_err = |action, path: &Path, source| Error::File {
        action,
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        file_err(
            "write the report to",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(file_err("remove", &tmp, e));
        }
        _ => {}
    }
    let mut file = new_file(&tmp).map_err(|e| file_err("create", &tmp, e))?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(file_err("write", &tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        file_err("write", path, e)
    })
}

#[cfg(unix)]
fn new_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn new_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
