//! The hash chain: sealing a new event onto the head, and verifying a run of sealed events.
//!
//! Each event's chain hash is `SHA-256(0x02 || previous chain hash || leaf hash)`, starting from
//! 32 zero bytes at [`Head::GENESIS`]. Since the leaf hash covers the event's `seq` and contents,
//! the chain hash binds each event to every event before it: editing, deleting, inserting or
//! reordering any event breaks verification at that point or the next. The chain holds no
//! secret, so it cannot by itself expose a log rewritten from some point onward, or a tail cut
//! off; that is what signed checkpoints are for (see [`crate::verify_against_checkpoint`]).

use brevet_proto::canonical::write_value;

use crate::Error;
use crate::error::VerifyError;
use crate::event::{Event, Sealed, check_at, check_kind, leaf_hash};
use crate::hash::{self, CHAIN, Hash};

/// The end of the chain: the last sequence number and its chain hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The last event's `seq`; 0 before the first event.
    pub seq: u64,
    /// The last event's chain hash; all zeros before the first event.
    pub chain_hash: [u8; 32],
}

impl Head {
    /// The head of an empty log.
    pub const GENESIS: Head = Head {
        seq: 0,
        chain_hash: [0; 32],
    };

    /// Builds a head from a stored `seq` and hex chain hash.
    pub fn from_hex(seq: u64, hex: &str) -> Result<Head, Error> {
        Ok(Head {
            seq,
            chain_hash: hash::parse_hex("chain_hash", hex)?,
        })
    }

    /// The chain hash in lower-case hex.
    pub fn hex(&self) -> String {
        hash::to_hex(&self.chain_hash)
    }
}

/// `SHA-256(0x02 || prev || leaf)`.
pub(crate) fn link(prev: &Hash, leaf: &Hash) -> Hash {
    hash::sha256(&[&[CHAIN], prev, leaf])
}

/// Seals a new event onto `head`: assigns `seq = head.seq + 1`, computes its leaf and chain
/// hashes, and returns the record to store together with the new head.
///
/// Refuses what [`Draft::new`] refuses.
pub fn seal(
    head: &Head,
    kind: &str,
    actor: &str,
    subject: &str,
    data: serde_json::Value,
    at: &str,
) -> Result<(Sealed, Head), Error> {
    Draft::new(kind, actor, subject, data, at)?.seal(head)
}

/// An event checked and waiting for its place in the log: everything but its `seq` and hashes.
/// The storage layer drafts events while a transaction runs and seals them at commit, when it
/// holds the chain head, so the head is held for as short a time as possible.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The event with `seq` 0 until sealed.
    event: Event,
}

impl Draft {
    /// Refuses a `kind` that is not dotted lower-case words, an `at` that is not RFC 3339 UTC
    /// (`…Z`), and `data` whose JSON would not read back the same (checked by a round trip, so
    /// a stored record always verifies).
    pub fn new(
        kind: &str,
        actor: &str,
        subject: &str,
        data: serde_json::Value,
        at: &str,
    ) -> Result<Draft, Error> {
        check_kind(kind)?;
        check_at(at)?;
        check_round_trip(&data)?;
        Ok(Draft {
            event: Event {
                seq: 0,
                at: at.to_owned(),
                kind: kind.to_owned(),
                actor: actor.to_owned(),
                subject: subject.to_owned(),
                data,
            },
        })
    }

    /// The event as it will be sealed (its `seq` is 0 until then).
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// Places the event after `head`.
    pub fn seal(self, head: &Head) -> Result<(Sealed, Head), Error> {
        let seq = head
            .seq
            .checked_add(1)
            .ok_or(Error::SequenceExhausted(head.seq))?;
        let event = Event { seq, ..self.event };
        let leaf = leaf_hash(&event)?;
        let chain = link(&head.chain_hash, &leaf);
        let sealed = Sealed {
            event,
            leaf_hash: hash::to_hex(&leaf),
            chain_hash: hash::to_hex(&chain),
        };
        Ok((
            sealed,
            Head {
                seq,
                chain_hash: chain,
            },
        ))
    }
}

/// Fails closed if `data`, stored as JSON text and read back, would not hash the same.
fn check_round_trip(data: &serde_json::Value) -> Result<(), Error> {
    let encoding = |e: serde_json::Error| Error::Encoding(e.to_string());
    let text = serde_json::to_string(data).map_err(encoding)?;
    let back: serde_json::Value = serde_json::from_str(&text).map_err(encoding)?;
    let (mut want, mut got) = (Vec::new(), Vec::new());
    write_value(data, &mut want)?;
    write_value(&back, &mut got)?;
    if want == got {
        Ok(())
    } else {
        Err(Error::invalid(
            "data",
            &text,
            "does not read back as written (write very large or fractional numbers as strings)",
        ))
    }
}

/// Verifies `events`, which must continue the chain at `start` (use [`Head::GENESIS`] for a
/// whole log), and returns the new head.
///
/// On failure the error names the first bad sequence number: every earlier event verified. It
/// checks, for each record in order, that `seq` is the next number, that `leaf_hash` is the hash
/// of the event's contents, and that `chain_hash` follows from the previous record.
pub fn verify<'a>(
    start: &Head,
    events: impl IntoIterator<Item = &'a Sealed>,
) -> Result<Head, VerifyError> {
    verify_with(start, events, |_| {})
}

/// [`verify`], also handing each verified leaf hash to `on_leaf` in order.
pub(crate) fn verify_with<'a>(
    start: &Head,
    events: impl IntoIterator<Item = &'a Sealed>,
    mut on_leaf: impl FnMut(Hash),
) -> Result<Head, VerifyError> {
    let mut head = *start;
    for sealed in events {
        let (next, leaf) = step(&head, &Recorded::of(sealed), &leaf_hash(&sealed.event))?;
        on_leaf(leaf);
        head = next;
    }
    Ok(head)
}

/// What a record says of itself: its `seq` and its two hashes. A hash that is not 64 lower-case
/// hex digits is `None`, which matches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub seq: u64,
    pub leaf: Option<Hash>,
    pub chain: Option<Hash>,
}

impl Recorded {
    pub(crate) fn of(sealed: &Sealed) -> Recorded {
        Recorded {
            seq: sealed.event.seq,
            leaf: hash::parse_hex("leaf_hash", &sealed.leaf_hash).ok(),
            chain: hash::parse_hex("chain_hash", &sealed.chain_hash).ok(),
        }
    }
}

/// Checks one record after `head`, given its recomputed leaf hash (`leaf`, which may have been
/// computed elsewhere); returns the new head and the leaf.
pub(crate) fn step(
    head: &Head,
    record: &Recorded,
    leaf: &Result<Hash, Error>,
) -> Result<(Head, Hash), VerifyError> {
    let Some(expected) = head.seq.checked_add(1) else {
        return Err(VerifyError::new(
            head.seq,
            "the log continues past the largest sequence number",
        ));
    };
    let found = record.seq;
    if found != expected {
        let what = if found < expected {
            "a duplicated, replayed or inserted event"
        } else {
            "events are missing or out of order"
        };
        return Err(VerifyError::new(
            expected,
            format!("expected event {expected} but found event {found}: {what}"),
        ));
    }
    let leaf = leaf
        .as_ref()
        .map_err(|e| VerifyError::new(expected, e.to_string()))?;
    if record.leaf.as_ref() != Some(leaf) {
        return Err(VerifyError::new(
            expected,
            "the leaf hash does not match the event's contents: the event or its hash was edited",
        ));
    }
    let chain = link(&head.chain_hash, leaf);
    if record.chain != Some(chain) {
        return Err(VerifyError::new(
            expected,
            "the chain hash does not follow from the previous event: an event before it was \
             removed, replaced or rewritten, or this hash was edited",
        ));
    }
    Ok((
        Head {
            seq: expected,
            chain_hash: chain,
        },
        *leaf,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AT: &str = "2026-11-28T10:00:00Z";

    fn log(n: usize) -> (Vec<Sealed>, Head) {
        let mut head = Head::GENESIS;
        let mut out = Vec::new();
        for i in 0..n {
            let (s, h) = seal(&head, "test.event", "alice", "dev-1", json!({"i": i}), AT).unwrap();
            out.push(s);
            head = h;
        }
        (out, head)
    }

    #[test]
    fn seal_assigns_seq_and_hashes() {
        let (s, h) = seal(
            &Head::GENESIS,
            "request.created",
            "alice",
            "r1",
            json!(null),
            AT,
        )
        .unwrap();
        assert_eq!(s.event.seq, 1);
        assert_eq!(h.seq, 1);
        let leaf = leaf_hash(&s.event).unwrap();
        assert_eq!(s.leaf_hash, hash::to_hex(&leaf));
        let mut input = vec![0x02];
        input.extend_from_slice(&[0; 32]);
        input.extend_from_slice(&leaf);
        let want = ring::digest::digest(&ring::digest::SHA256, &input);
        assert_eq!(h.chain_hash.as_slice(), want.as_ref());
        assert_eq!(s.chain_hash, h.hex());
        assert_eq!(s.head(), Ok(h));
        assert_eq!(s.leaf(), Ok(leaf));
    }

    #[test]
    fn verify_returns_the_head_and_resumes() {
        let (events, head) = log(5);
        assert_eq!(verify(&Head::GENESIS, &events), Ok(head));
        let mid = events[1].head().unwrap();
        assert_eq!(verify(&mid, &events[2..]), Ok(head));
        assert_eq!(verify(&head, []), Ok(head));
        assert_eq!(verify(&Head::GENESIS, &events[2..]).unwrap_err().seq, 1);
    }

    #[test]
    fn seal_refuses_bad_input() {
        let g = Head::GENESIS;
        assert!(seal(&g, "Bad Kind", "a", "s", json!(1), AT).is_err());
        assert!(seal(&g, "ok", "a", "s", json!(1), "yesterday").is_err());
        let full = Head {
            seq: u64::MAX,
            chain_hash: [0; 32],
        };
        assert_eq!(
            seal(&full, "ok", "a", "s", json!(1), AT).unwrap_err(),
            Error::SequenceExhausted(u64::MAX)
        );
    }

    #[test]
    fn a_draft_seals_later_as_seal_would_now() {
        let (_, head) = log(2);
        let draft = Draft::new("grant.used", "a", "s", json!({"n": 1}), AT).unwrap();
        assert_eq!(draft.event().seq, 0);
        let now = seal(&head, "grant.used", "a", "s", json!({"n": 1}), AT).unwrap();
        assert_eq!(draft.seal(&head).unwrap(), now);
        assert!(Draft::new("Bad Kind", "a", "s", json!({}), AT).is_err());
        assert!(Draft::new("ok", "a", "s", json!({}), "yesterday").is_err());
    }

    #[test]
    fn floats_survive_the_round_trip() {
        for x in [
            0.1,
            1e300,
            -2.5e-308,
            123_456.789_012_345_67,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let (s, _) = seal(&Head::GENESIS, "ok", "a", "s", json!({ "x": x }), AT).unwrap();
            let back: Sealed = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            assert!(verify(&Head::GENESIS, [&back]).is_ok(), "{x}");
        }
    }

    #[test]
    fn head_hex_round_trips() {
        let (_, h) = log(3);
        assert_eq!(Head::from_hex(h.seq, &h.hex()), Ok(h));
        assert!(Head::from_hex(1, "zz").is_err());
        assert_eq!(Head::GENESIS.hex(), "0".repeat(64));
    }
}
