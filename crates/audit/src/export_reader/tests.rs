use super::*;
use crate::chain::{Head, seal};
use crate::checkpoint::Checkpoint;
use crate::event::Sealed;
use crate::export_line::write_export_line;
use crate::merkle::merkle_root;
use crate::verifier::Summary;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

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
    let mut out = Vec::new();
    for e in events {
        write_export_line(e, &mut out).unwrap();
    }
    String::from_utf8(out).unwrap()
}

/// Verifies `text` with small blocks, so that many blocks and parts are crossed.
fn check(text: &str, v: &mut ExportVerifier, threads: usize) -> Result<Summary, VerifyError> {
    verify_in_blocks(text.as_bytes(), v, threads, 1000)?;
    v.clone().finish()
}

#[test]
fn lines_are_verified_and_junk_is_named() {
    let events = log(4);
    let text = lines(&events);
    let s = check(&text, &mut ExportVerifier::new(), 2).unwrap();
    assert_eq!(s.events, 4);
    let with_blanks = text.replacen('\n', "\n\n  \r\n", 1);
    assert_eq!(
        check(&with_blanks, &mut ExportVerifier::new(), 2)
            .unwrap()
            .events,
        4
    );
    let no_final_newline = text.trim_end();
    assert_eq!(
        check(no_final_newline, &mut ExportVerifier::new(), 2)
            .unwrap()
            .events,
        4
    );
    let mut bad: Vec<&str> = text.lines().collect();
    bad[2] = "{\"seq\": 3, \"oops\": true}";
    let e = check(&bad.join("\n"), &mut ExportVerifier::new(), 2).unwrap_err();
    assert_eq!(e.seq, 3);
    assert!(e.reason.contains("line 3 is not an audit event"), "{e}");
    assert_eq!(check("", &mut ExportVerifier::new(), 2).unwrap().events, 0);
}

#[test]
fn many_lines_are_checked_in_order_across_blocks_and_threads() {
    let events = log(2_000);
    let text = lines(&events);
    for threads in [1, 2, 3, 8] {
        let s = check(&text, &mut ExportVerifier::new(), threads).unwrap();
        assert_eq!(s.events, 2_000);
        // Through the public entry point, with its large blocks, too.
        let mut v = ExportVerifier::new();
        verify_export(text.as_bytes(), &mut v, threads).unwrap();
        assert_eq!(v.finish().unwrap().events, 2_000);
    }
    let mut edited: Vec<String> = text.lines().map(str::to_owned).collect();
    edited[1_205] = edited[1_205].replacen("\"a\"", "\"b\"", 1);
    edited[1_700] = "junk".into();
    for threads in [1, 2, 3] {
        let e = check(&edited.join("\n"), &mut ExportVerifier::new(), threads).unwrap_err();
        assert_eq!(e.seq, 1_206, "{e}");
    }
    edited[1_205] = text.lines().nth(1_205).unwrap().to_owned();
    let e = check(&edited.join("\n"), &mut ExportVerifier::new(), 2).unwrap_err();
    assert_eq!(e.seq, 1_701, "{e}");
    assert!(e.reason.contains("line 1701 "), "{e}");
    // Reordered across a block boundary.
    let mut swapped: Vec<&str> = text.lines().collect();
    swapped.swap(10, 1_500);
    let e = check(&swapped.join("\n"), &mut ExportVerifier::new(), 2).unwrap_err();
    assert_eq!(e.seq, 11, "{e}");
}

#[test]
fn a_line_longer_than_a_block_is_read_whole() {
    let mut head = Head::GENESIS;
    let mut events = Vec::new();
    for i in 0..5 {
        let big = "x".repeat(if i == 2 { 5_000 } else { 10 });
        let (s, h) = seal(&head, "t.e", "a", "s", json!({ "big": big }), AT).unwrap();
        head = h;
        events.push(s);
    }
    let s = check(&lines(&events), &mut ExportVerifier::new(), 2).unwrap();
    assert_eq!(s.events, 5);
}

#[test]
fn a_checkpoint_catches_the_missing_tail() {
    let key = Ed25519KeyPair::from_seed_unchecked(&[5; 32]).unwrap();
    let events = log(5);
    let leaves: Vec<_> = events.iter().map(|s| s.leaf().unwrap()).collect();
    let cp = Checkpoint::sign(5, &merkle_root(&leaves), AT, &key);
    let mut v = ExportVerifier::with_checkpoint(&cp, key.public_key().as_ref()).unwrap();
    assert_eq!(check(&lines(&events[..3]), &mut v, 2).unwrap_err().seq, 4);
    let mut v = ExportVerifier::with_checkpoint(&cp, key.public_key().as_ref()).unwrap();
    let s = check(&lines(&events), &mut v, 2).unwrap();
    assert_eq!(s.checkpoint_size, Some(5));
}

/// A reader that fails part way, as a disk or network file can.
struct Failing(Vec<u8>);

impl Read for Failing {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("device went away"));
        }
        let n = out.len().min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0.drain(..n);
        Ok(n)
    }
}

#[test]
fn a_read_error_is_reported_not_taken_for_the_end() {
    let text = lines(&log(3));
    let mut v = ExportVerifier::new();
    let e = verify_in_blocks(Failing(text.into_bytes()), &mut v, 2, 1000).unwrap_err();
    assert!(
        e.reason.contains("cannot read the export after line"),
        "{e}"
    );
    assert!(e.reason.contains("device went away"), "{e}");
}
