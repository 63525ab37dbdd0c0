//! `brevet audit export | checkpoint | verify | search`.
//!
//! `export` pages through `/v1/audit?after=N&limit=M` until a page comes back empty; each page
//! must continue strictly after the last event seen, anything else is an error rather than a
//! loop. `checkpoint` saves the latest signed checkpoint after checking its signature (and,
//! with `--extends`, the server's proof that it extends an older one). `verify` needs no
//! server (`audit_verify`); `search` is in `audit_search`.

use std::io::Write;
use std::path::{Path, PathBuf};

use brevet_audit::Checkpoint;
use brevet_proto::api::AuditEventView;
use brevet_proto::timefmt::parse_rfc3339;

use super::Ctx;
use super::audit_search;
use super::audit_verify::{self, read_checkpoint, read_key};
use crate::cli::{AuditCommand, AuditFormat};
use crate::client::AuditQuery;
use crate::error::Error;

/// Events asked for per page; the server may answer with fewer.
const PAGE: u32 = 500;

pub(crate) fn run(ctx: &mut Ctx<'_>, command: AuditCommand) -> Result<(), Error> {
    match command {
        AuditCommand::Export { format, since } => {
            if let Some(s) = &since {
                parse_rfc3339("since", s)?;
            }
            let client = ctx.client()?;
            let mut q = AuditQuery {
                limit: PAGE,
                since,
                ..AuditQuery::default()
            };
            export(
                |after| {
                    q.after = after;
                    client.audit_search(&q)
                },
                format,
                ctx.out,
            )
        }
        AuditCommand::Checkpoint { out, key, extends } => {
            checkpoint(ctx, out.as_deref(), key.as_deref(), extends.as_deref())
        }
        AuditCommand::Verify {
            file,
            key,
            checkpoint,
        } => audit_verify::run(ctx, &file, &key, checkpoint.as_deref()),
        AuditCommand::Search(args) => audit_search::run(ctx, &args),
    }
}

/// Writes every event `fetch` pages out, one per line in `format`; returns after an empty page.
pub(crate) fn export(
    mut fetch: impl FnMut(u64) -> Result<Vec<AuditEventView>, Error>,
    format: AuditFormat,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let mut after = 0;
    let mut line = Vec::new();
    loop {
        let page = fetch(after)?;
        if page.is_empty() {
            return Ok(());
        }
        for event in page {
            if event.seq <= after {
                return Err(Error::AuditOrder {
                    seq: event.seq,
                    after,
                });
            }
            after = event.seq;
            match format {
                AuditFormat::Jsonl => {
                    line.clear();
                    brevet_audit::write_export_line(&event.into(), &mut line)
                        .map_err(std::io::Error::other)?;
                    out.write_all(&line)?;
                }
                AuditFormat::Ocsf => {
                    let ocsf = serde_json::to_string(&brevet_proto::ocsf::event_to_ocsf(&event))
                        .map_err(std::io::Error::other)?;
                    writeln!(out, "{ocsf}")?;
                }
            }
        }
        out.flush()?;
    }
}

/// `brevet audit checkpoint`: fetch, check, optionally prove it extends `extends`, save.
fn checkpoint(
    ctx: &mut Ctx<'_>,
    out: Option<&Path>,
    key: Option<&str>,
    extends: Option<&Path>,
) -> Result<(), Error> {
    let pinned = key.map(read_key).transpose()?;
    let old = extends.map(read_checkpoint).transpose()?;
    let client = ctx.client()?;
    let key = match pinned {
        Some(k) => k,
        None => {
            let announced = client.info()?.audit_public_key;
            brevet_audit::parse_public_key(&announced).map_err(|e| {
                Error::ServerCheckpoint(format!("cannot be checked: the server's key: {e}"))
            })?
        }
    };
    let cp = client.audit_checkpoint()?;
    cp.verify(&key)
        .map_err(|e| Error::ServerCheckpoint(format!("of {} events: {e}", cp.size)))?;
    let mut note = String::new();
    if let (Some(old), Some(path)) = (&old, extends) {
        extends_old(&client, old, path, &cp, &key)?;
        note = format!("; it extends `{}` ({} events)", path.display(), old.size);
    }
    let text = serde_json::to_string_pretty(&cp).map_err(std::io::Error::other)? + "\n";
    match out {
        None => write!(ctx.out, "{text}")?,
        Some(path) => {
            save(path, &text)?;
            writeln!(
                ctx.out,
                "checkpoint of {} events signed at {} saved to {}{note}",
                cp.size,
                cp.at,
                path.display()
            )?;
        }
    }
    Ok(())
}

/// Checks `old` (a witness's copy) and the server's proof that `new` extends it.
fn extends_old(
    client: &crate::client::Client,
    old: &Checkpoint,
    path: &Path,
    new: &Checkpoint,
    key: &[u8],
) -> Result<(), Error> {
    old.verify(key).map_err(|e| Error::CheckpointRejected {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if old.size > new.size {
        return Err(Error::ServerCheckpoint(format!(
            "covers {} events, fewer than the {} of `{}`: the log was cut short or rolled back",
            new.size,
            old.size,
            path.display()
        )));
    }
    let proof = client.audit_consistency(old.size, Some(new.size))?;
    proof.links(old, new).map_err(|e| {
        Error::ServerCheckpoint(format!(
            "of {} events does not extend `{}` ({} events): {e}; keep both checkpoints, they \
             are evidence that the log was rewritten",
            new.size,
            path.display(),
            old.size
        ))
    })
}

/// Writes `text` to `path` through a temporary file, so a witness never keeps half a file.
fn save(path: &Path, text: &str) -> Result<(), Error> {
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".tmp");
    let file_err = |action, source| Error::File {
        action,
        path: path.to_owned(),
        source,
    };
    std::fs::write(&tmp, text).map_err(|e| file_err("write the checkpoint to", e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_err("write the checkpoint to", e))
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
            AuditFormat::Jsonl,
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
    fn ocsf_is_one_object_per_line() {
        let mut out = Vec::new();
        let pages = |after| Ok(if after == 0 { vec![event(1)] } else { vec![] });
        export(pages, AuditFormat::Ocsf, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(v["class_uid"].is_u64(), "{v}");
    }

    #[test]
    fn a_server_that_repeats_itself_is_an_error_not_a_loop() {
        let mut out = Vec::new();
        let err = export(|_| Ok(vec![event(1)]), AuditFormat::Jsonl, &mut out).unwrap_err();
        assert!(
            matches!(err, Error::AuditOrder { seq: 1, after: 1 }),
            "{err}"
        );
    }

    #[test]
    fn data_is_written_in_canonical_form_whatever_order_it_arrived_in() {
        // serde_json keeps insertion order in this build (Cedar enables `preserve_order`).
        let data: serde_json::Value = serde_json::from_str(r#"{"z":1,"a":{"y":2,"b":3}}"#).unwrap();
        let (sealed, _) = brevet_audit::seal(
            &brevet_audit::Head::GENESIS,
            "grant.used",
            "device:web-01",
            "g-1",
            data.clone(),
            "2026-11-28T10:00:00Z",
        )
        .unwrap();
        let view = AuditEventView {
            data,
            leaf_hash: sealed.leaf_hash.clone(),
            chain_hash: sealed.chain_hash.clone(),
            ..event(1)
        };
        let view = AuditEventView {
            kind: "grant.used".into(),
            actor: "device:web-01".into(),
            subject: "g-1".into(),
            ..view
        };
        let mut out = Vec::new();
        let pages = |after| {
            Ok(if after == 0 {
                vec![view.clone()]
            } else {
                vec![]
            })
        };
        export(pages, AuditFormat::Jsonl, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""data":{"a":{"b":3,"y":2},"z":1}"#),
            "{text}"
        );
        let mut v = brevet_audit::ExportVerifier::new();
        brevet_audit::verify_export(text.as_bytes(), &mut v, 1).unwrap();
        assert_eq!(v.finish().unwrap().events, 1);
    }
}
