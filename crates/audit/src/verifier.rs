//! Verifying an export one event at a time, in constant memory: the chain, and optionally that
//! the export extends a signed checkpoint.
//!
//! An export normally starts at event 1, and then the chain is checked from genesis. One made
//! with `--since` starts later: its first event's leaf hash is checked, its chain hash is taken
//! as given (nothing in the file can vouch for the events before it), and the chain is checked
//! from there; [`Summary::from_genesis`] says which. Checking against a checkpoint needs every
//! event from 1, so a later start is then a failure at event 1.
//!
//! With a checkpoint of size `S`, the leaves of events 1 to `S` are folded into a
//! [`Frontier`], whose root must equal the signed root. An export shorter than `S` was
//! truncated, and the error names the first missing event. A root that does not match while
//! the chain verifies means a rewrite with recomputed hashes; the root cannot say where, so the
//! error names event 1. Chain errors anywhere in the export are reported first (they are
//! precise), then truncation, then the root.

use crate::Error;
use crate::chain::{Head, Recorded, step};
use crate::checkpoint::Checkpoint;
use crate::error::VerifyError;
use crate::event::{Sealed, leaf_hash};
use crate::frontier::Frontier;
use crate::hash::Hash;

/// An event read from an export with its leaf hash recomputed, ready for
/// [`ExportVerifier::push_hashed`]: what the record says (its `seq` and two hashes) and the leaf
/// hash of its contents. Computing it is most of the work of verifying, and can be done on any
/// thread; it holds no text.
#[derive(Debug, Clone)]
pub struct Hashed {
    record: Recorded,
    leaf: Result<Hash, Error>,
}

impl Hashed {
    pub fn new(sealed: &Sealed) -> Hashed {
        Hashed {
            record: Recorded::of(sealed),
            leaf: leaf_hash(&sealed.event),
        }
    }

    /// A record whose leaf hash was already computed from its canonical bytes.
    pub(crate) fn with_leaf(record: Recorded, leaf: Hash) -> Hashed {
        Hashed {
            record,
            leaf: Ok(leaf),
        }
    }

    /// What the record says and the recomputed leaf hash (`None` if it could not be computed).
    pub(crate) fn parts(&self) -> (Recorded, Option<Hash>) {
        (self.record, self.leaf.as_ref().ok().copied())
    }

    #[cfg(test)]
    pub(crate) fn leaf_for_tests(&self) -> Option<Hash> {
        self.leaf.as_ref().ok().copied()
    }

    #[cfg(test)]
    pub(crate) fn record_for_tests(&self) -> Recorded {
        self.record
    }
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// How many events were read.
    pub events: u64,
    /// The first event's `seq` (None for an empty export).
    pub first_seq: Option<u64>,
    /// The head after the last event.
    pub head: Head,
    /// Whether the chain was checked from genesis (the export starts at event 1, or is empty).
    pub from_genesis: bool,
    /// The size of the checkpoint the export was shown to extend.
    pub checkpoint_size: Option<u64>,
}

/// A signed checkpoint the export must extend, once its signature has been checked.
#[derive(Debug, Clone)]
struct Pinned {
    size: u64,
    root: [u8; 32],
    at: String,
    /// Set when event `size` has been read. A mismatch is reported by `finish`, after the
    /// chain of the whole export, as a broken link is the more precise finding.
    root_matches: Option<bool>,
}

/// Feeds events in file order with [`ExportVerifier::push`], then calls
/// [`ExportVerifier::finish`].
#[derive(Debug, Clone)]
pub struct ExportVerifier {
    head: Option<Head>,
    first_seq: Option<u64>,
    events: u64,
    pinned: Option<Pinned>,
    frontier: Frontier,
}

impl Default for ExportVerifier {
    fn default() -> Self {
        ExportVerifier::new()
    }
}

impl ExportVerifier {
    /// A verifier of the chain alone.
    pub fn new() -> ExportVerifier {
        ExportVerifier {
            head: None,
            first_seq: None,
            events: 0,
            pinned: None,
            frontier: Frontier::new(),
        }
    }

    /// A verifier that also checks the export extends `cp`, signed by Ed25519 `public_key`.
    /// A checkpoint that does not verify is an error at `seq` 0.
    pub fn with_checkpoint(
        cp: &Checkpoint,
        public_key: &[u8],
    ) -> Result<ExportVerifier, VerifyError> {
        cp.verify(public_key)
            .map_err(|e| VerifyError::new(0, e.to_string()))?;
        let root = cp
            .root_hash()
            .map_err(|e| VerifyError::new(0, e.to_string()))?;
        Ok(ExportVerifier {
            pinned: Some(Pinned {
                size: cp.size,
                root,
                at: cp.at.clone(),
                // The empty tree is complete before any event is read.
                root_matches: (cp.size == 0).then(|| Frontier::new().root() == root),
            }),
            ..ExportVerifier::new()
        })
    }

    /// The `seq` the next event must have (to name a line that cannot be read at all).
    pub fn next_seq(&self) -> u64 {
        self.head.map_or(1, |h| h.seq.saturating_add(1))
    }

    /// Checks the next event.
    pub fn push(&mut self, sealed: &Sealed) -> Result<(), VerifyError> {
        self.push_hashed(&Hashed::new(sealed))
    }

    /// Checks the next event, whose leaf hash [`Hashed::new`] computed (on any thread: that is
    /// most of the work of verifying).
    pub fn push_hashed(&mut self, hashed: &Hashed) -> Result<(), VerifyError> {
        let Hashed { record, leaf } = hashed;
        let start = match self.head {
            Some(head) => head,
            None => {
                self.first_seq = Some(record.seq);
                if record.seq <= 1 {
                    Head::GENESIS
                } else {
                    return self.start_later(record, leaf);
                }
            }
        };
        let (head, leaf) = step(&start, record, leaf)?;
        if self
            .pinned
            .as_ref()
            .is_some_and(|p| self.frontier.size() < p.size)
        {
            self.frontier.push(leaf);
        }
        self.head = Some(head);
        self.events += 1;
        if let Some(p) = &mut self.pinned
            && head.seq == p.size
        {
            p.root_matches = Some(self.frontier.root() == p.root);
        }
        Ok(())
    }

    /// The first event of an export that does not start at event 1.
    fn start_later(
        &mut self,
        record: &Recorded,
        leaf: &Result<Hash, Error>,
    ) -> Result<(), VerifyError> {
        let seq = record.seq;
        if self.pinned.is_some() {
            return Err(VerifyError::new(
                1,
                format!(
                    "the export starts at event {seq}: events 1 to {} are missing, and checking \
                     against a checkpoint needs every event from 1 (export without --since)",
                    seq - 1
                ),
            ));
        }
        let leaf = leaf
            .as_ref()
            .map_err(|e| VerifyError::new(seq, e.to_string()))?;
        if record.leaf.as_ref() != Some(leaf) {
            return Err(VerifyError::new(
                seq,
                "the leaf hash does not match the event's contents: the event or its hash was edited",
            ));
        }
        let chain_hash = record.chain.ok_or_else(|| {
            VerifyError::new(seq, "the chain hash is not 64 lower-case hex digits")
        })?;
        self.head = Some(Head { seq, chain_hash });
        self.events += 1;
        Ok(())
    }

    /// Ends the export: with a checkpoint, an export that stops before its size was truncated.
    pub fn finish(self) -> Result<Summary, VerifyError> {
        let head = self.head.unwrap_or(Head::GENESIS);
        if let Some(p) = &self.pinned
            && p.root_matches == Some(false)
        {
            return Err(VerifyError::new(
                1,
                format!(
                    "events 1 to {} do not match the checkpoint signed at {}: the log was \
                     rewritten with recomputed hashes",
                    p.size, p.at
                ),
            ));
        }
        if let Some(p) = &self.pinned
            && head.seq < p.size
        {
            let missing = head.seq + 1;
            return Err(VerifyError::new(
                missing,
                format!(
                    "the export ends after event {} but the checkpoint signed at {} covers {} \
                     events: events from {missing} on were removed",
                    head.seq, p.at, p.size
                ),
            ));
        }
        Ok(Summary {
            events: self.events,
            first_seq: self.first_seq,
            head,
            from_genesis: self.first_seq.is_none_or(|s| s <= 1),
            checkpoint_size: self.pinned.map(|p| p.size),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::seal;
    use crate::merkle::merkle_root;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::json;

    const AT: &str = "2026-11-28T10:00:00Z";

    fn log(n: usize) -> Vec<Sealed> {
        let mut head = Head::GENESIS;
        (0..n)
            .map(|i| {
                let (s, h) =
                    seal(&head, "test.event", "bob", "dev", json!({ "i": i }), AT).unwrap();
                head = h;
                s
            })
            .collect()
    }

    fn run(v: ExportVerifier, events: &[Sealed]) -> Result<Summary, VerifyError> {
        let mut v = v;
        for e in events {
            v.push(e)?;
        }
        v.finish()
    }

    fn key() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap()
    }

    fn checkpoint(events: &[Sealed], size: usize) -> Checkpoint {
        let leaves: Vec<_> = events[..size].iter().map(|s| s.leaf().unwrap()).collect();
        Checkpoint::sign(size as u64, &merkle_root(&leaves), AT, &key())
    }

    #[test]
    fn a_whole_export_verifies_from_genesis() {
        let events = log(6);
        let s = run(ExportVerifier::new(), &events).unwrap();
        assert_eq!(s.events, 6);
        assert_eq!(s.first_seq, Some(1));
        assert!(s.from_genesis);
        assert_eq!(s.head, events[5].head().unwrap());
        assert_eq!(s.checkpoint_size, None);
        let empty = run(ExportVerifier::new(), &[]).unwrap();
        assert_eq!((empty.events, empty.from_genesis), (0, true));
    }

    #[test]
    fn a_later_start_is_checked_from_there_and_said() {
        let events = log(6);
        let s = run(ExportVerifier::new(), &events[2..]).unwrap();
        assert_eq!((s.events, s.first_seq, s.from_genesis), (4, Some(3), false));
        let mut edited = events[2..].to_vec();
        edited[0].event.actor = "mallory".into();
        assert_eq!(run(ExportVerifier::new(), &edited).unwrap_err().seq, 3);
        let mut edited = events[2..].to_vec();
        edited[1].event.actor = "mallory".into();
        assert_eq!(run(ExportVerifier::new(), &edited).unwrap_err().seq, 4);
    }

    #[test]
    fn checkpoints_pin_the_prefix_and_catch_truncation() {
        let events = log(9);
        let public = key().public_key().as_ref().to_vec();
        for size in 0..=9 {
            let cp = checkpoint(&events, size);
            let v = ExportVerifier::with_checkpoint(&cp, &public).unwrap();
            let s = run(v, &events).unwrap();
            assert_eq!(s.checkpoint_size, Some(size as u64));
        }
        let cp = checkpoint(&events, 7);
        for keep in 0..7 {
            let v = ExportVerifier::with_checkpoint(&cp, &public).unwrap();
            assert_eq!(run(v, &events[..keep]).unwrap_err().seq, keep as u64 + 1);
        }
        let v = ExportVerifier::with_checkpoint(&cp, &public).unwrap();
        assert_eq!(run(v, &events[1..]).unwrap_err().seq, 1);
        let other = Ed25519KeyPair::from_seed_unchecked(&[8; 32]).unwrap();
        let err = ExportVerifier::with_checkpoint(&cp, other.public_key().as_ref()).unwrap_err();
        assert_eq!(err.seq, 0);
    }

    #[test]
    fn an_empty_checkpoint_must_have_the_empty_root() {
        let public = key().public_key().as_ref().to_vec();
        let events = log(2);
        let good = Checkpoint::sign(0, &merkle_root(&[]), AT, &key());
        let v = ExportVerifier::with_checkpoint(&good, &public).unwrap();
        assert_eq!(run(v, &events).unwrap().checkpoint_size, Some(0));
        let bad = Checkpoint::sign(0, &[1; 32], AT, &key());
        let v = ExportVerifier::with_checkpoint(&bad, &public).unwrap();
        assert_eq!(run(v, &events).unwrap_err().seq, 1);
    }

    #[test]
    fn a_rewritten_prefix_fails_the_root() {
        let events = log(5);
        let public = key().public_key().as_ref().to_vec();
        let cp = checkpoint(&events, 4);
        let mut head = events[0].head().unwrap();
        let mut forged = vec![events[0].clone()];
        for s in &events[1..] {
            let (s, h) = seal(&head, "test.event", "eve", "dev", s.event.data.clone(), AT).unwrap();
            forged.push(s);
            head = h;
        }
        assert!(run(ExportVerifier::new(), &forged).is_ok());
        let v = ExportVerifier::with_checkpoint(&cp, &public).unwrap();
        assert_eq!(run(v, &forged).unwrap_err().seq, 1);
    }
}
