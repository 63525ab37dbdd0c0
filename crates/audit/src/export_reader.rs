//! Reading a whole JSON-lines export into an [`ExportVerifier`], on every core, in bounded
//! memory.
//!
//! The file is read in blocks of whole lines. Each block is cut into one range of lines per
//! thread; the threads recognise and hash their lines ([`Hashed::from_export_line`], most of
//! the work) while this thread walks the chain through the previous block in order. Blank lines
//! are skipped; a line that is not an audit event is the first bad event, named by its line
//! number.

use std::io::Read;

use crate::error::VerifyError;
use crate::verifier::{ExportVerifier, Hashed};

/// Bytes read at a time; a block grows only to hold a single longer line.
const BLOCK: usize = 8 << 20;

/// An export line longer than this is refused rather than buffered.
const MAX_LINE: usize = 64 << 20;

/// Feeds every non-blank line of `input` to `verifier`, in order, on up to `threads` threads.
/// Call [`ExportVerifier::finish`] afterwards.
pub fn verify_export(
    input: impl Read,
    verifier: &mut ExportVerifier,
    threads: usize,
) -> Result<(), VerifyError> {
    verify_in_blocks(input, verifier, threads, BLOCK)
}

pub(crate) fn verify_in_blocks(
    mut input: impl Read,
    verifier: &mut ExportVerifier,
    threads: usize,
    block_size: usize,
) -> Result<(), VerifyError> {
    let threads = threads.max(1);
    let mut buf: Vec<u8> = Vec::with_capacity(block_size);
    // Lines read before the current block.
    let mut lines_before = 0u64;
    let mut pending: Option<Block> = None;
    loop {
        let eof = fill(
            &mut input,
            &mut buf,
            block_size,
            verifier.next_seq(),
            lines_before,
        )?;
        // The block is every whole line; the rest (a partial line) waits for more input.
        let cut = if eof {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => i + 1,
                None if buf.len() >= MAX_LINE => {
                    return Err(VerifyError::new(
                        verifier.next_seq(),
                        format!(
                            "line {} is longer than {} MiB: not an audit event",
                            lines_before + 1,
                            MAX_LINE >> 20
                        ),
                    ));
                }
                None => {
                    // One line longer than the buffer: read more of it.
                    buf.reserve(buf.capacity());
                    continue;
                }
            }
        };
        let block = &buf[..cut];
        let parsed = std::thread::scope(|scope| {
            let workers: Vec<_> = split(block, threads)
                .into_iter()
                .map(|part| scope.spawn(move || hash_lines(part)))
                .collect();
            // While the workers hash this block, walk the chain through the previous one.
            let walked = pending
                .take()
                .map_or(Ok(()), |previous| walk(previous, verifier));
            let parts: Vec<Part> = workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect();
            walked.map(|()| parts)
        })?;
        let block_lines: u64 = parsed.iter().map(|p| p.lines).sum();
        pending = Some(Block {
            first_line: lines_before + 1,
            parts: parsed,
        });
        lines_before += block_lines;
        buf.drain(..cut);
        if eof {
            return pending.map_or(Ok(()), |last| walk(last, verifier));
        }
    }
}

/// Reads until `buf` is full or the input ends; returns whether it ended.
fn fill(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
    block_size: usize,
    next_seq: u64,
    lines_before: u64,
) -> Result<bool, VerifyError> {
    let want = buf.capacity().max(block_size);
    while buf.len() < want {
        let start = buf.len();
        buf.resize(want, 0);
        match input.read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                return Ok(true);
            }
            Ok(n) => buf.truncate(start + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => {
                return Err(VerifyError::new(
                    next_seq,
                    format!("cannot read the export after line {lines_before}: {e}"),
                ));
            }
        }
    }
    Ok(false)
}

/// Cuts `block` into up to `n` ranges of whole lines of about equal size.
fn split(block: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let mut rest = block;
    for k in (1..=n).rev() {
        if rest.is_empty() {
            break;
        }
        let target = rest.len() / k;
        let end = if k == 1 {
            rest.len()
        } else {
            memchr::memchr(b'\n', &rest[target..]).map_or(rest.len(), |i| target + i + 1)
        };
        let (part, tail) = rest.split_at(end);
        parts.push(part);
        rest = tail;
    }
    parts
}

/// The hashed lines of one range: each non-blank line in order, or the first that is not an
/// audit event with its line number within the block (from 0) and why.
struct Part {
    hashed: Vec<Hashed>,
    bad: Option<(u64, String)>,
    lines: u64,
}

struct Block {
    first_line: u64,
    parts: Vec<Part>,
}

fn hash_lines(text: &[u8]) -> Part {
    let mut hashed = Vec::with_capacity(text.len() / 256);
    let mut lines = 0u64;
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', text).map(|i| i + 1);
    // A last line without a newline ends the input.
    let ends = ends.chain((text.last() != Some(&b'\n') && !text.is_empty()).then_some(text.len()));
    for end in ends {
        let line = &text[start..end];
        start = end;
        lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Hashed::from_export_line(line) {
            Ok(h) => hashed.push(h),
            Err(e) => {
                return Part {
                    hashed,
                    bad: Some((lines - 1, e)),
                    lines,
                };
            }
        }
    }
    Part {
        hashed,
        bad: None,
        lines,
    }
}

/// Pushes a block's hashed lines into the verifier in order.
fn walk(block: Block, verifier: &mut ExportVerifier) -> Result<(), VerifyError> {
    let mut line = block.first_line;
    for part in block.parts {
        for h in &part.hashed {
            verifier.push_hashed(h)?;
        }
        if let Some((index, e)) = part.bad {
            return Err(VerifyError::new(
                verifier.next_seq(),
                format!("line {} is not an audit event ({e})", line + index),
            ));
        }
        line += part.lines;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
