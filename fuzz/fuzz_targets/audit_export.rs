//! Verifying an audit export (`brevet audit verify`): the line recogniser and `verify_export`.
//!
//! - One line: whenever the strict fast recogniser takes a line, serde's full parse takes it
//!   too and both give the same `seq`, recorded hashes and recomputed leaf hash.
//! - Any input: `verify_export` gives the same verdict (error, or events read and head) as a
//!   plain line-by-line reference, whatever the block size and the number of threads.
//! - A real chain: events sealed from the fuzzer's values, exported, verify; after one byte
//!   of the export is changed, the export either fails to verify or still holds exactly the
//!   same events (tampering is never silent).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use brevet_audit::fuzzing::{
    export_line, export_line_fast, export_line_slow, verify_export_in_blocks,
};
use brevet_audit::{ExportVerifier, Head, Sealed, Summary, VerifyError, seal, write_export_line};
use libfuzzer_sys::fuzz_target;

fn line(bytes: &[u8]) {
    let Some(fast) = export_line_fast(bytes) else {
        return;
    };
    match export_line_slow(bytes) {
        Ok(slow) => assert_eq!(fast, slow, "fast and serde paths disagree"),
        Err(e) => panic!("the fast path took a line serde refuses ({e})"),
    }
    assert!(fast.1.is_some(), "fast path without a leaf hash");
}

/// The reference: every non-blank line in order, one thread, no blocks.
fn reference(input: &[u8]) -> Result<Summary, VerifyError> {
    let mut v = ExportVerifier::new();
    for (i, l) in input.split_inclusive(|&b| b == b'\n').enumerate() {
        if l.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Err(e) = export_line(l) {
            return Err(VerifyError {
                seq: v.next_seq(),
                reason: format!("line {} is not an audit event ({e})", i + 1),
            });
        }
        let hashed = brevet_audit::Hashed::from_export_line(l).expect("read above");
        v.push_hashed(&hashed)?;
    }
    v.finish()
}

fn export(input: &[u8], threads: u8, block: u16) {
    let want = reference(input);
    let threads = usize::from(threads % 4) + 1;
    let block = usize::from(block % 512) + 1;
    let mut v = ExportVerifier::new();
    let got = verify_export_in_blocks(input, &mut v, threads, block).and_then(|()| v.finish());
    assert_eq!(got, want, "blocks of {block} on {threads} threads");
    let mut v = ExportVerifier::new();
    let got = brevet_audit::verify_export(input, &mut v, 2).and_then(|()| v.finish());
    assert_eq!(got, want, "verify_export");
}

#[derive(Debug, Arbitrary)]
struct Chain {
    events: Vec<(u8, String, String, String)>,
    tamper: Vec<(u16, u8)>,
}

const KINDS: [&str; 4] = [
    "grant.used",
    "request.created",
    "grant.changes",
    "user.login",
];

fn chain(c: &Chain) {
    let mut head = Head::GENESIS;
    let mut sealed: Vec<Sealed> = Vec::new();
    let mut out = Vec::new();
    for (k, actor, subject, data) in c.events.iter().take(16) {
        // `data` from the fuzzer's JSON when it is JSON, else as a string.
        let data = serde_json::from_str(data).unwrap_or_else(|_| serde_json::json!(data));
        let kind = KINDS[usize::from(*k % 4)];
        let Ok((s, h)) = seal(&head, kind, actor, subject, data, "2026-11-28T10:00:00Z") else {
            continue;
        };
        write_export_line(&s, &mut out).expect("a sealed event is written");
        sealed.push(s);
        head = h;
    }
    let mut v = ExportVerifier::new();
    brevet_audit::verify_export(&out[..], &mut v, 2).expect("an untouched export verifies");
    let summary = v.finish().expect("an untouched export verifies");
    assert_eq!(summary.events, sealed.len() as u64);
    assert_eq!(summary.head, head);
    if out.is_empty() {
        return;
    }
    let mut t = out.clone();
    for (at, byte) in &c.tamper {
        let i = usize::from(*at) % t.len();
        t[i] = *byte;
    }
    if t == out {
        return;
    }
    let mut v = ExportVerifier::new();
    let ok = brevet_audit::verify_export(&t[..], &mut v, 2).and_then(|()| v.finish());
    if let Ok(s) = ok {
        // Accepted: it must still say exactly what was sealed (e.g. only whitespace changed).
        assert_eq!(s.head, head, "tampered export verified with another head");
        let read: Vec<Sealed> = t
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|l| serde_json::from_slice(l).expect("a verified line parses"))
            .collect();
        assert_eq!(read, sealed, "tampered export verified with other events");
    }
}

// The first byte chooses: 0 one line, 1 a whole export (threads and block size from the next
// three bytes), 2 a sealed chain then tampered.
fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => line(rest),
        1 => {
            if let [t, b0, b1, input @ ..] = rest {
                export(input, *t, u16::from_le_bytes([*b0, *b1]));
            }
        }
        _ => {
            if let Ok(c) = Chain::arbitrary_take_rest(Unstructured::new(rest)) {
                chain(&c);
            }
        }
    }
});
