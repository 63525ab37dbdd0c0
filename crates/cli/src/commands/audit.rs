//! `brevet audit export`: the whole audit trail, oldest first, one JSON object per line.
//!
//! Pages through `/v1/audit?after=N&limit=M` until a page comes back empty. Each page must
//! continue strictly after the last event seen; anything else is an error rather than a loop.

use std::io::Write;

use brevet_proto::api::AuditEventView;

use super::Ctx;
use crate::cli::{AuditCommand, AuditFormat};
use crate::error::Error;

/// Events asked for per page; the server may answer with fewer.
const PAGE: u32 = 500;

pub(crate) fn run(ctx: &mut Ctx<'_>, command: AuditCommand) -> Result<(), Error> {
    let AuditCommand::Export { format } = command;
    if format == AuditFormat::Ocsf {
        return Err(Error::UnsupportedFormat("ocsf"));
    }
    let client = ctx.client()?;
    export(|after| client.audit(after, PAGE), ctx.out)
}

/// Writes every event `fetch` pages out as JSON lines; returns after an empty page.
pub(crate) fn export(
    mut fetch: impl FnMut(u64) -> Result<Vec<AuditEventView>, Error>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut after = 0;
    loop {
        let page = fetch(after)?;
        if page.is_empty() {
            return Ok(());
        }
        for event in &page {
            if event.seq <= after {
                return Err(Error::AuditOrder {
                    seq: event.seq,
                    after,
                });
            }
            after = event.seq;
            let line = serde_json::to_string(event).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> AuditEventView {
        AuditEventView {
            seq,
            at: "2026-11-28T10:00:00Z".into(),
            kind: "request.created".into(),
            actor: "alice".into(),
            subject: "x".into(),
            data: serde_json::json!({"a": 1}),
            leaf_hash: "00".into(),
            chain_hash: "11".into(),
        }
    }

    #[test]
    fn pages_until_empty() {
        let mut calls = Vec::new();
        let mut out = Vec::new();
        export(
            |after| {
                calls.push(after);
                Ok(match after {
                    0 => vec![event(1), event(2)],
                    2 => vec![event(3)],
                    _ => vec![],
                })
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(calls, [0, 2, 3]);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["seq"], 1);
        assert_eq!(first["data"]["a"], 1);
    }

    #[test]
    fn a_server_that_repeats_itself_is_an_error_not_a_loop() {
        let mut out = Vec::new();
        let err = export(|_| Ok(vec![event(1)]), &mut out).unwrap_err();
        assert!(
            matches!(err, Error::AuditOrder { seq: 1, after: 1 }),
            "{err}"
        );
    }
}
