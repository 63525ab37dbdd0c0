//! `brevet audit verify FILE --key PUB [--checkpoint CP]`: checks an export offline, with the
//! server's own verification code (`brevet_audit::ExportVerifier`), reading the file once in
//! bounded memory.
//!
//! It names the first bad sequence number for an edited, deleted, inserted or reordered event,
//! and with a checkpoint also for a truncated export or a rewritten history, and proves that
//! the export extends the checkpoint. A line that is not an audit event at all is the first bad
//! event too. Lines are parsed and hashed on every core while the chain is checked in order
//! (`brevet_audit::verify_export`). Success prints
//! `ok: N events, chain verified[, extends checkpoint of size S]`.

use std::fs::File;
use std::path::Path;

use brevet_audit::{Checkpoint, ExportVerifier, Summary};
use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::output::sanitize;

pub(crate) fn run(
    ctx: &mut Ctx<'_>,
    file: &Path,
    key: &str,
    checkpoint: Option<&Path>,
) -> Result<(), Error> {
    let key = read_key(key)?;
    let mut verifier = match checkpoint {
        None => ExportVerifier::new(),
        Some(path) => {
            let cp = read_checkpoint(path)?;
            ExportVerifier::with_checkpoint(&cp, &key).map_err(|e| Error::CheckpointRejected {
                path: path.to_owned(),
                reason: e.reason,
            })?
        }
    };
    let input = File::open(file).map_err(|source| Error::File {
        action: "read the export",
        path: file.to_owned(),
        source,
    })?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let summary = brevet_audit::verify_export(input, &mut verifier, threads)
        .and_then(|()| verifier.finish())
        .map_err(|e| Error::AuditVerify {
            seq: e.seq,
            reason: e.reason,
        })?;
    report(ctx, &summary)
}

fn report(ctx: &mut Ctx<'_>, s: &Summary) -> Result<(), Error> {
    if ctx.global.json {
        let value = json!({
            "ok": true,
            "events": s.events,
            "first_seq": s.first_seq,
            "last_seq": s.head.seq,
            "chain_hash": s.head.hex(),
            "from_genesis": s.from_genesis,
            "checkpoint_size": s.checkpoint_size,
        });
        return crate::output::json(ctx.out, &value);
    }
    let mut line = format!("ok: {} events, chain verified", s.events);
    if !s.from_genesis {
        let first = s.first_seq.unwrap_or(1);
        line.push_str(&format!(
            " from seq {first} (the export does not start at seq 1: nothing before seq {first} \
             is checked)"
        ));
    }
    if let Some(size) = s.checkpoint_size {
        line.push_str(&format!(", extends checkpoint of size {size}"));
    }
    writeln!(ctx.out, "{line}")?;
    Ok(())
}

/// An Ed25519 public key from a file (such as `audit.pub`) or from its base64 text.
pub(crate) fn read_key(text: &str) -> Result<[u8; 32], Error> {
    let path = Path::new(text);
    let content = if path.is_file() {
        std::fs::read_to_string(path).map_err(|source| Error::File {
            action: "read the audit public key",
            path: path.to_owned(),
            source,
        })?
    } else {
        text.to_owned()
    };
    brevet_audit::parse_public_key(&content).map_err(|_| {
        let shown: String = sanitize(text).chars().take(64).collect();
        Error::AuditKey(shown)
    })
}

/// A checkpoint saved by `brevet audit checkpoint` (its signature is checked by the caller).
pub(crate) fn read_checkpoint(path: &Path) -> Result<Checkpoint, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::File {
        action: "read the checkpoint",
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::CheckpointFile {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_files_or_text() {
        let b64 = data_encoding::BASE64.encode(&[9; 32]);
        assert_eq!(read_key(&b64).unwrap(), [9; 32]);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("audit.pub");
        std::fs::write(&path, format!("{b64}\n")).unwrap();
        assert_eq!(read_key(path.to_str().unwrap()).unwrap(), [9; 32]);
        let e = read_key("nope").unwrap_err().to_string();
        assert!(e.starts_with("invalid audit public key `nope`"), "{e}");
    }
}
