//! Property tests for the audit chain: a random log, one random act of tampering, and the check
//! that verification fails and names the right first bad sequence number.
//!
//! "Right" follows the contract of `VerifyError::seq`: every event below it verified. A forged
//! event with correctly computed hashes passes the chain (the chain has no secret), so it is
//! caught at the genuine event that follows it; a log cut short is caught only against a
//! checkpoint, at the first missing event.

#![allow(
    clippy::unwrap_used,
    reason = "integration test: a panic fails the test"
)]

use brevet_audit::{
    Checkpoint, Head, Sealed, VerifyError, merkle_root, seal, verify, verify_against_checkpoint,
};
use proptest::prelude::*;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Spec {
    kind: String,
    actor: String,
    subject: String,
    data: Value,
    at: String,
}

fn data() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        "[a-z][a-z0-9_]{0,7}(\\.[a-z][a-z0-9_-]{0,7}){0,2}",
        "[a-z_][a-z0-9_-]{0,10}",
        ".{0,16}",
        data(),
        (
            2000u32..2100,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
        ),
    )
        .prop_map(|(kind, actor, subject, data, (y, mo, d, h, mi, s))| Spec {
            kind,
            actor,
            subject,
            data,
            at: format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        })
}

fn build(specs: &[Spec]) -> Vec<Sealed> {
    let mut head = Head::GENESIS;
    specs
        .iter()
        .map(|s| {
            let (sealed, next) =
                seal(&head, &s.kind, &s.actor, &s.subject, s.data.clone(), &s.at).unwrap();
            head = next;
            sealed
        })
        .collect()
}

fn head_before(events: &[Sealed], i: usize) -> Head {
    if i == 0 {
        Head::GENESIS
    } else {
        events[i - 1].head().unwrap()
    }
}

fn key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[9; 32]).unwrap()
}

fn checkpoint(events: &[Sealed], size: usize) -> Checkpoint {
    let leaves: Vec<_> = events[..size].iter().map(|s| s.leaf().unwrap()).collect();
    Checkpoint::sign(
        size as u64,
        &merkle_root(&leaves),
        "2026-11-28T10:00:00Z",
        &key(),
    )
}

/// Changes one hex digit, so the string stays well formed but is wrong.
fn flip_hex(s: &mut String, at: usize) {
    let i = at % s.len();
    let c = if &s[i..=i] == "0" { "1" } else { "0" };
    s.replace_range(i..=i, c);
}

#[derive(Debug, Clone)]
enum Mutation {
    Edit {
        index: usize,
        field: u8,
        salt: usize,
    },
    Delete {
        index: usize,
    },
    InsertGarbage {
        at: usize,
        salt: usize,
    },
    InsertSealed {
        at: usize,
    },
    Duplicate {
        index: usize,
    },
    Swap {
        a: usize,
        b: usize,
    },
    Truncate {
        keep: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ix = any::<prop::sample::Index>();
    prop_oneof![
        3 => (ix.clone(), 0u8..8, any::<usize>())
            .prop_map(|(i, field, salt)| Mutation::Edit { index: i.index(usize::MAX), field, salt }),
        1 => ix.clone().prop_map(|i| Mutation::Delete { index: i.index(usize::MAX) }),
        1 => (ix.clone(), any::<usize>())
            .prop_map(|(i, salt)| Mutation::InsertGarbage { at: i.index(usize::MAX), salt }),
        1 => ix.clone().prop_map(|i| Mutation::InsertSealed { at: i.index(usize::MAX) }),
        1 => ix.clone().prop_map(|i| Mutation::Duplicate { index: i.index(usize::MAX) }),
        1 => (ix.clone(), ix.clone())
            .prop_map(|(a, b)| Mutation::Swap { a: a.index(usize::MAX), b: b.index(usize::MAX) }),
        1 => ix.prop_map(|i| Mutation::Truncate { keep: i.index(usize::MAX) }),
    ]
}

/// What each check should say about the tampered log: `None` passes, `Some(seq)` fails there.
struct Expect {
    chain: Option<u64>,
    checkpoint: Option<u64>,
}

/// Applies `m` to a log of `n >= 2` events; returns the tampered log and what to expect.
fn tamper(events: &[Sealed], m: &Mutation) -> (Vec<Sealed>, Expect) {
    let n = events.len();
    let mut out = events.to_vec();
    let both = |seq: usize| Expect {
        chain: Some(seq as u64),
        checkpoint: Some(seq as u64),
    };
    let expect = match *m {
        Mutation::Edit { index, field, salt } => {
            let i = index % n;
            let e = &mut out[i];
            match field {
                0 => e.event.at.push('x'),
                1 => e.event.kind.push_str(".x"),
                2 => e.event.actor.push('x'),
                3 => e.event.subject.push('x'),
                4 => e.event.data = json!({ "was": e.event.data.take() }),
                5 => {
                    e.event.seq = if salt % 2 == 0 {
                        0
                    } else {
                        e.event.seq + 1 + (salt % 5) as u64
                    }
                }
                6 => flip_hex(&mut e.leaf_hash, salt),
                _ => flip_hex(&mut e.chain_hash, salt),
            }
            both(i + 1)
        }
        Mutation::Delete { index } => {
            let i = index % n;
            out.remove(i);
            Expect {
                chain: (i + 1 < n).then_some(i as u64 + 1),
                checkpoint: Some(i as u64 + 1),
            }
        }
        Mutation::InsertGarbage { at, salt } => {
            let p = at % (n + 1);
            let mut forged = events[salt % n].clone();
            forged.event.seq = p as u64 + 1;
            forged.event.actor = format!("mallory{salt}");
            flip_hex(&mut forged.chain_hash, salt);
            out.insert(p, forged);
            both(p + 1)
        }
        Mutation::InsertSealed { at } => {
            // A forger who knows the scheme computes correct hashes for its position.
            let p = at % (n + 1);
            let head = head_before(events, p);
            let (forged, _) = seal(
                &head,
                "grant.approved",
                "mallory",
                "dev",
                json!({}),
                "2026-01-01T00:00:00Z",
            )
            .unwrap();
            out.insert(p, forged);
            if p == n {
                // Indistinguishable from a genuine append after the last checkpoint.
                Expect {
                    chain: None,
                    checkpoint: None,
                }
            } else {
                both(p + 2)
            }
        }
        Mutation::Duplicate { index } => {
            let i = index % n;
            out.insert(i + 1, events[i].clone());
            both(i + 2)
        }
        Mutation::Swap { a, b } => {
            let (a, b) = (a % n, b % n);
            let b = if a == b { (a + 1) % n } else { b };
            let (a, b) = (a.min(b), a.max(b));
            out.swap(a, b);
            both(a + 1)
        }
        Mutation::Truncate { keep } => {
            let k = keep % n;
            out.truncate(k);
            Expect {
                chain: None,
                checkpoint: Some(k as u64 + 1),
            }
        }
    };
    (out, expect)
}

fn seq_of(r: Result<impl Sized, VerifyError>) -> Option<u64> {
    r.err().map(|e| e.seq)
}

proptest! {
    #[test]
    fn genuine_logs_verify_after_a_json_lines_round_trip(specs in prop::collection::vec(spec(), 0..12)) {
        let events = build(&specs);
        let lines: Vec<String> = events.iter().map(|s| serde_json::to_string(s).unwrap()).collect();
        let back: Vec<Sealed> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        prop_assert_eq!(&back, &events);
        let head = verify(&Head::GENESIS, &back).unwrap();
        prop_assert_eq!(head.seq, events.len() as u64);
        let public = key().public_key().as_ref().to_vec();
        for size in 0..=events.len() {
            prop_assert!(verify_against_checkpoint(&back, &checkpoint(&events, size), &public).is_ok());
        }
    }

    #[test]
    fn any_single_tampering_names_the_first_bad_seq(
        specs in prop::collection::vec(spec(), 2..12),
        m in mutation(),
    ) {
        let events = build(&specs);
        let (tampered, expect) = tamper(&events, &m);
        let public = key().public_key().as_ref().to_vec();
        let cp = checkpoint(&events, events.len());
        let chain = verify(&Head::GENESIS, &tampered);
        prop_assert_eq!(seq_of(chain.clone()), expect.chain, "{:?}: {:?}", m, chain);
        let full = verify_against_checkpoint(&tampered, &cp, &public);
        prop_assert_eq!(seq_of(full.clone()), expect.checkpoint, "{:?}: {:?}", m, full);
    }

    #[test]
    fn truncation_is_judged_against_the_checkpoint_size(
        specs in prop::collection::vec(spec(), 1..10),
        size in any::<prop::sample::Index>(),
        keep in any::<prop::sample::Index>(),
    ) {
        let events = build(&specs);
        let n = events.len();
        let size = size.index(n + 1);
        let keep = keep.index(n + 1);
        let cp = checkpoint(&events, size);
        let public = key().public_key().as_ref().to_vec();
        let got = seq_of(verify_against_checkpoint(&events[..keep], &cp, &public));
        let want = (keep < size).then_some(keep as u64 + 1);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn a_rewritten_history_passes_the_chain_but_not_the_checkpoint(
        specs in prop::collection::vec(spec(), 1..10),
        from in any::<prop::sample::Index>(),
    ) {
        let events = build(&specs);
        let from = from.index(events.len());
        let mut head = head_before(&events, from);
        let mut forged = events[..from].to_vec();
        for (j, s) in events[from..].iter().enumerate() {
            let actor = if j == 0 { "mallory" } else { s.event.actor.as_str() };
            let (s, h) = seal(&head, &s.event.kind, actor, &s.event.subject, s.event.data.clone(), &s.event.at).unwrap();
            forged.push(s);
            head = h;
        }
        prop_assert!(verify(&Head::GENESIS, &forged).is_ok());
        let public = key().public_key().as_ref().to_vec();
        let err = verify_against_checkpoint(&forged, &checkpoint(&events, events.len()), &public).unwrap_err();
        prop_assert_eq!(err.seq, 1);
    }
}
