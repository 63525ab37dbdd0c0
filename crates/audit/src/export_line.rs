//! One line of a JSON-lines export (`brevet audit export`): writing it, and reading it back for
//! verification, fast.
//!
//! [`write_export_line`] writes
//! `{"seq":N,"at":…,"kind":…,"actor":…,"subject":…,"data":…,"leaf_hash":"…","chain_hash":"…"}`
//! with `data` in canonical JSON (keys sorted at every level, no whitespace), whatever order the
//! value's map keeps.
//!
//! The leaf hash covers the canonical JSON of the event,
//! `{"actor":…,"at":…,"data":…,"kind":…,"seq":…,"subject":…}`. In a written line every field is
//! already in that form, so [`Hashed::from_export_line`] first tries a strict recogniser that
//! takes the field texts out of the line and hashes them in canonical order, without building
//! a JSON tree or allocating. It accepts a line only when it can prove each text is exactly what
//! canonical JSON would write: names and times without escapes, `data` with sorted unique keys,
//! serde_json's escapes, integers only, and valid UTF-8. Anything else (a line re-formatted by
//! another tool, an escape in a name, a fractional number) is parsed in full by serde_json and
//! hashed from the parsed value. For every line the recogniser accepts, both ways give the same
//! leaf hash (property-tested), so the verdict never depends on the path taken.

use brevet_proto::canonical::{write_scalar, write_value};
use serde::Deserialize;

use crate::Error;
use crate::chain::Recorded;
use crate::event::{Event, Sealed};
use crate::hash::{self, Hash, LEAF};
use crate::verifier::Hashed;

/// Appends `sealed` to `out` as one export line, newline included.
pub fn write_export_line(sealed: &Sealed, out: &mut Vec<u8>) -> Result<(), Error> {
    let e = &sealed.event;
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(e.seq.to_string().as_bytes());
    for (name, text) in [
        (&b",\"at\":"[..], &e.at),
        (b",\"kind\":", &e.kind),
        (b",\"actor\":", &e.actor),
        (b",\"subject\":", &e.subject),
    ] {
        out.extend_from_slice(name);
        write_scalar(out, text)?;
    }
    out.extend_from_slice(b",\"data\":");
    write_value(&e.data, out)?;
    out.extend_from_slice(b",\"leaf_hash\":");
    write_scalar(out, &sealed.leaf_hash)?;
    out.extend_from_slice(b",\"chain_hash\":");
    write_scalar(out, &sealed.chain_hash)?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

impl Hashed {
    /// Reads one export line and recomputes its leaf hash. Errors only when the line is not an
    /// audit event at all; a wrong hash is for the verifier to report.
    pub fn from_export_line(line: &[u8]) -> Result<Hashed, String> {
        let line = line.trim_ascii_end();
        match fast(line) {
            Some(hashed) => Ok(hashed),
            None => slow(line),
        }
    }
}

/// The fixed tail of a written line: `,"leaf_hash":"<64 hex>","chain_hash":"<64 hex>"}`.
const TAIL_LEN: usize = 14 + 64 + 16 + 64 + 2;

/// The strict recogniser: `None` when the line is not exactly as [`write_export_line`] writes
/// it for an event whose fields are all in canonical form.
pub(crate) fn fast(line: &[u8]) -> Option<Hashed> {
    let mut s = Scan { b: line, i: 0 };
    s.literal(b"{\"seq\":")?;
    let (seq, seq_text) = s.integer_u64()?;
    s.literal(b",\"at\":")?;
    let at = s.plain_string()?;
    s.literal(b",\"kind\":")?;
    let kind = s.plain_string()?;
    s.literal(b",\"actor\":")?;
    let actor = s.plain_string()?;
    s.literal(b",\"subject\":")?;
    let subject = s.plain_string()?;
    s.literal(b",\"data\":")?;
    let data_start = s.i;
    let data_end = line.len().checked_sub(TAIL_LEN)?;
    if data_end <= data_start {
        return None;
    }
    let end = s.canonical_value(0)?;
    if end != data_end {
        return None;
    }
    let data = &line[data_start..data_end];
    let tail = &line[data_end..];
    if &tail[..14] != b",\"leaf_hash\":\""
        || &tail[78..94] != b"\",\"chain_hash\":\""
        || &tail[158..] != b"\"}"
    {
        return None;
    }
    let recorded_leaf = lower_hex(&tail[14..78])?;
    let recorded_chain = lower_hex(&tail[94..158])?;
    // Serde would refuse invalid UTF-8 inside a string; every byte outside one is ASCII here.
    std::str::from_utf8(line).ok()?;
    let leaf = hash::sha256(&[
        &[LEAF],
        b"{\"actor\":",
        actor,
        b",\"at\":",
        at,
        b",\"data\":",
        data,
        b",\"kind\":",
        kind,
        b",\"seq\":",
        seq_text,
        b",\"subject\":",
        subject,
        b"}",
    ]);
    let record = Recorded {
        seq,
        leaf: Some(recorded_leaf),
        chain: Some(recorded_chain),
    };
    Some(Hashed::with_leaf(record, leaf))
}

/// A line in any JSON layout, read in full.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullLine {
    seq: u64,
    at: String,
    kind: String,
    actor: String,
    subject: String,
    data: serde_json::Value,
    leaf_hash: String,
    chain_hash: String,
}

pub(crate) fn slow(line: &[u8]) -> Result<Hashed, String> {
    let f: FullLine = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    Ok(Hashed::new(&Sealed {
        event: Event {
            seq: f.seq,
            at: f.at,
            kind: f.kind,
            actor: f.actor,
            subject: f.subject,
            data: f.data,
        },
        leaf_hash: f.leaf_hash,
        chain_hash: f.chain_hash,
    }))
}

/// The value of each lower-case hex digit; `0xff` for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// 64 lower-case hex digits (a table lookup per digit: this runs twice per line).
fn lower_hex(text: &[u8]) -> Option<Hash> {
    let text: &[u8; 64] = text.try_into().ok()?;
    let mut out = [0u8; 32];
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        invalid |= hi | lo;
        *byte = hi << 4 | lo;
    }
    (invalid & 0xf0 == 0).then_some(out)
}

/// Nesting deeper than this goes to serde (whose own limit is 128).
const MAX_DEPTH: usize = 64;

/// A cursor over a line. Every method returns `None` for anything it cannot prove canonical,
/// which sends the line to the slow path.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn literal(&mut self, text: &[u8]) -> Option<()> {
        let end = self.i.checked_add(text.len())?;
        (self.b.get(self.i..end)? == text).then(|| self.i = end)
    }

    /// A `u64` as Rust prints it: no sign, no leading zero. Returns the value and its text.
    fn integer_u64(&mut self) -> Option<(u64, &'a [u8])> {
        let start = self.i;
        let mut value: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let text = &self.b[start..self.i];
        (!text.is_empty() && (text[0] != b'0' || text.len() == 1)).then_some((value, text))
    }

    /// A string with no escape and no control character, quotes included.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        self.literal(b"\"")?;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        self.i += 1;
        Some(&self.b[start..self.i])
    }

    /// A string as serde_json writes it: only `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` and
    /// `\u00xx` (lower-case, for the other control characters) as escapes.
    fn canonical_string(&mut self) -> Option<()> {
        self.literal(b"\"")?;
        loop {
            match self.peek()? {
                b'"' => break,
                0..=0x1f => return None,
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            self.literal(b"u00")?;
                            let code = lower_hex_digit(self.peek()?)? << 4;
                            self.i += 1;
                            let code = code | lower_hex_digit(self.peek()?)?;
                            self.i += 1;
                            if code >= 0x20 || matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                        }
                        _ => return None,
                    }
                }
                _ => self.i += 1,
            }
        }
        self.i += 1;
        Some(())
    }

    /// An integer that any JSON reader holds exactly as an `i64` or `u64`: at most 18 digits,
    /// no leading zero, no `-0`.
    fn canonical_integer(&mut self) -> Option<()> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let digits = &self.b[start..self.i];
        let ok = match digits {
            [] => false,
            [b'0'] => !negative,
            [b'0', ..] => false,
            _ => digits.len() <= 18,
        };
        // A fraction or exponent: serde's float form is left to the slow path.
        ok.then_some(())
            .filter(|()| !matches!(self.peek(), Some(b'.' | b'e' | b'E')))
    }

    /// One value in canonical JSON; returns the index just past it.
    fn canonical_value(&mut self, depth: usize) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.i += 1;
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(self.i);
                }
                let mut previous: Option<&[u8]> = None;
                loop {
                    // Keys without escapes compare as their text does: sorted, hence unique.
                    // Compared without their quotes (`"a b"` sorts after `"a"`, but a quote
                    // would sort after the space).
                    let quoted = self.plain_string()?;
                    let key = &quoted[1..quoted.len() - 1];
                    if previous.is_some_and(|p| p >= key) {
                        return None;
                    }
                    previous = Some(key);
                    self.literal(b":")?;
                    self.canonical_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => break,
                        _ => return None,
                    }
                }
                self.i += 1;
            }
            b'[' => {
                self.i += 1;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(self.i);
                }
                loop {
                    self.canonical_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => break,
                        _ => return None,
                    }
                }
                self.i += 1;
            }
            b'"' => self.canonical_string()?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.canonical_integer()?,
        }
        Some(self.i)
    }
}

fn lower_hex_digit(c: u8) -> Option<u8> {
    let v = HEX_VALUE[usize::from(c)];
    (v < 16).then_some(v)
}

#[cfg(test)]
mod tests;
