//! `brevet audit verify FILE --key PUB [--checkpoint CP]`: checks an export offline, with the
//! server's own verification code (`brevet_audit::ExportVerifier`), reading the file once in
//! constant memory.
//!
//! It names the first bad sequence number for an edited, deleted, inserted or reordered event,
//! and with a checkpoint also for a truncated export or a rewritten history, and proves that
//! the export extends the checkpoint. A line that is not an audit event at all is the first bad
//! event too. Lines are parsed and hashed on every core; the chain is checked in order. Success prints `ok: N events, chain verified[, extends checkpoint of size S]`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use brevet_audit::{Checkpoint, ExportVerifier, Hashed, Summary, VerifyError};
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
    let summary = verify_lines(BufReader::with_capacity(1 << 20, input), &mut verifier)
        .and_then(|()| verifier.finish())
        .map_err(|e| Error::AuditVerify {
            seq: e.seq,
            reason: e.reason,
        })?;
    report(ctx, &summary)
}

/// Lines one thread parses and hashes at a time.
const CHUNK: usize = 4096;

/// A line that is not an audit event: its number and why.
type BadLine = (u64, String);

/// A batch of lines read into one buffer: the text, and each non-blank line's number and span.
#[derive(Default)]
struct Batch {
    text: Vec<u8>,
    lines: Vec<(u64, std::ops::Range<usize>)>,
}

/// Feeds every non-blank line to `verifier`, in order. Parsing a line and recomputing its leaf
/// hash (most of the work) runs on every core, a batch of lines at a time; the chain is then
/// checked in order on this thread.
fn verify_lines(mut input: impl BufRead, verifier: &mut ExportVerifier) -> Result<(), VerifyError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let mut number = 0u64;
    let mut batch = Batch::default();
    loop {
        batch.text.clear();
        batch.lines.clear();
        let mut read_error = None;
        while batch.lines.len() < threads * CHUNK {
            let start = batch.text.len();
            match input.read_until(b'\n', &mut batch.text) {
                Ok(0) => break,
                Ok(_) => {
                    number += 1;
                    let span = start..batch.text.len();
                    if !batch.text[span.clone()].iter().all(u8::is_ascii_whitespace) {
                        batch.lines.push((number, span));
                    }
                }
                Err(e) => {
                    read_error = Some(format!("cannot read the export after line {number}: {e}"));
                    break;
                }
            }
        }
        let done = batch.lines.len() < threads * CHUNK;
        for hashed in hash_batch(&batch, threads)? {
            match hashed {
                Ok(h) => verifier.push_hashed(&h)?,
                Err((line, e)) => {
                    return Err(VerifyError {
                        seq: verifier.next_seq(),
                        reason: format!("line {line} is not an audit event ({e})"),
                    });
                }
            }
        }
        if let Some(reason) = read_error {
            let seq = verifier.next_seq();
            return Err(VerifyError { seq, reason });
        }
        if done {
            return Ok(());
        }
    }
}

/// Parses and hashes the lines of `batch` in order, `CHUNK` lines per thread.
fn hash_batch(batch: &Batch, threads: usize) -> Result<Vec<Result<Hashed, BadLine>>, VerifyError> {
    let parse = |lines: &[(u64, std::ops::Range<usize>)]| -> Vec<Result<Hashed, BadLine>> {
        lines
            .iter()
            .map(|(n, span)| {
                Hashed::from_export_line(&batch.text[span.clone()]).map_err(|e| (*n, e))
            })
            .collect()
    };
    if threads <= 1 || batch.lines.len() <= CHUNK {
        return Ok(parse(&batch.lines));
    }
    let (first, rest) = batch.lines.split_at(CHUNK);
    std::thread::scope(|scope| {
        let handles: Vec<_> = rest
            .chunks(CHUNK)
            .map(|chunk| scope.spawn(move || parse(chunk)))
            .collect();
        // This thread takes the first chunk itself rather than wait idle.
        let mut out = Vec::with_capacity(batch.lines.len());
        out.extend(parse(first));
        for handle in handles {
            out.extend(handle.join().map_err(|_| VerifyError {
                seq: 0,
                reason: "a verification thread failed".into(),
            })?);
        }
        Ok(out)
    })
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
    use brevet_audit::{Head, Sealed, merkle_root, seal};
    use ring::signature::{Ed25519KeyPair, KeyPair};

    const AT: &str = "2026-11-28T10:00:00Z";

    fn log(n: u64) -> Vec<Sealed> {
        let mut head = Head::GENESIS;
        (0..n)
            .map(|i| {
                let (s, h) = seal(&head, "t.e", "a", "s", json!({ "i": i }), AT).unwrap();
                head = h;
                s
            })
            .collect()
    }

    fn lines(events: &[Sealed]) -> String {
        events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect()
    }

    fn check(text: &str, v: &mut ExportVerifier) -> Result<Summary, VerifyError> {
        verify_lines(text.as_bytes(), v)?;
        v.clone().finish()
    }

    #[test]
    fn lines_are_verified_and_junk_is_named() {
        let events = log(4);
        let text = lines(&events);
        let s = check(&text, &mut ExportVerifier::new()).unwrap();
        assert_eq!(s.events, 4);
        let with_blank = text.replacen('\n', "\n\n", 1);
        assert!(check(&with_blank, &mut ExportVerifier::new()).is_ok());
        let mut bad: Vec<&str> = text.lines().collect();
        bad[2] = "{\"seq\": 3, \"oops\": true}";
        let e = check(&bad.join("\n"), &mut ExportVerifier::new()).unwrap_err();
        assert_eq!(e.seq, 3);
        assert!(e.reason.contains("line 3 is not an audit event"), "{e}");
    }

    #[test]
    fn many_lines_are_checked_in_order_across_threads() {
        let events = log(3 * CHUNK as u64 + 17);
        let text = lines(&events);
        let s = check(&text, &mut ExportVerifier::new()).unwrap();
        assert_eq!(s.events, events.len() as u64);
        let mut edited: Vec<String> = text.lines().map(str::to_owned).collect();
        edited[2 * CHUNK + 5] = edited[2 * CHUNK + 5].replacen("\"a\"", "\"b\"", 1);
        edited[3 * CHUNK] = "junk".into();
        let e = check(&edited.join("\n"), &mut ExportVerifier::new()).unwrap_err();
        assert_eq!(e.seq, 2 * CHUNK as u64 + 6, "{e}");
        edited[2 * CHUNK + 5] = text.lines().nth(2 * CHUNK + 5).unwrap().to_owned();
        let e = check(&edited.join("\n"), &mut ExportVerifier::new()).unwrap_err();
        assert_eq!(e.seq, 3 * CHUNK as u64 + 1, "{e}");
        assert!(e.reason.contains(&format!("line {}", 3 * CHUNK + 1)), "{e}");
    }

    #[test]
    fn a_checkpoint_catches_the_missing_tail() {
        let key = Ed25519KeyPair::from_seed_unchecked(&[5; 32]).unwrap();
        let events = log(5);
        let leaves: Vec<_> = events.iter().map(|s| s.leaf().unwrap()).collect();
        let cp = Checkpoint::sign(5, &merkle_root(&leaves), AT, &key);
        let mut v = ExportVerifier::with_checkpoint(&cp, key.public_key().as_ref()).unwrap();
        assert_eq!(check(&lines(&events[..3]), &mut v).unwrap_err().seq, 4);
    }

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
