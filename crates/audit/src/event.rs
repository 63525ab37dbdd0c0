//! The audit event, its sealed form, and the RFC 6962 leaf hash that binds an event's contents.
//!
//! The leaf hash is `SHA-256(0x00 || canonical_json(event))`, where canonical JSON (from
//! `brevet_proto::canonical`) has sorted keys and no whitespace. It covers every field, `seq`
//! included, so the hash does not depend on how a record was stored or re-serialised, and any
//! edit to any field changes it.

use brevet_proto::canonical::{write_scalar, write_value};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::chain::Head;
use crate::hash::{self, Hash, LEAF};

/// An audit event as recorded. `seq` starts at 1 and has no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When it happened: RFC 3339 UTC, e.g. `2026-11-28T10:00:00Z`.
    pub at: String,
    /// What happened, e.g. `request.created`.
    pub kind: String,
    /// Who did it.
    pub actor: String,
    /// What it was done to.
    pub subject: String,
    /// Details; any JSON value.
    pub data: serde_json::Value,
}

/// An event with its leaf hash and chain hash (lower-case hex). This is the stored and exported
/// form: one JSON object with the event's fields plus `leaf_hash` and `chain_hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sealed {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// `SHA-256(0x00 || canonical_json(event))`, hex.
    pub leaf_hash: String,
    /// `SHA-256(0x02 || previous chain hash || leaf hash)`, hex.
    pub chain_hash: String,
}

impl Sealed {
    /// The chain head after this event, as written in the record (not re-verified).
    pub fn head(&self) -> Result<Head, Error> {
        Head::from_hex(self.event.seq, &self.chain_hash)
    }

    /// The leaf hash as written in the record (not re-verified). Feed these to
    /// [`merkle_root`](crate::merkle_root) to build a checkpoint without re-hashing events.
    pub fn leaf(&self) -> Result<[u8; 32], Error> {
        hash::parse_hex("leaf_hash", &self.leaf_hash)
    }
}

/// The API's view of a record is the record, field for field.
impl From<Sealed> for brevet_proto::api::AuditEventView {
    fn from(s: Sealed) -> Self {
        brevet_proto::api::AuditEventView {
            seq: s.event.seq,
            at: s.event.at,
            kind: s.event.kind,
            actor: s.event.actor,
            subject: s.event.subject,
            data: s.event.data,
            leaf_hash: s.leaf_hash,
            chain_hash: s.chain_hash,
        }
    }
}

impl From<brevet_proto::api::AuditEventView> for Sealed {
    fn from(v: brevet_proto::api::AuditEventView) -> Self {
        Sealed {
            event: Event {
                seq: v.seq,
                at: v.at,
                kind: v.kind,
                actor: v.actor,
                subject: v.subject,
                data: v.data,
            },
            leaf_hash: v.leaf_hash,
            chain_hash: v.chain_hash,
        }
    }
}

/// The RFC 6962 leaf hash of `event`: `SHA-256(0x00 || canonical_json(event))`.
///
/// The event's fields are laid out in sorted order here and `data` goes through
/// `brevet_proto::canonical::write_value`, the one canonical writer, without first building a
/// value of the whole event: verifying an export spends most of its time here. It yields
/// exactly the bytes of `brevet_proto::canonical::to_string` (checked by a property test).
pub fn leaf_hash(event: &Event) -> Result<[u8; 32], Error> {
    let mut json = Vec::with_capacity(256);
    canonical_event(event, &mut json)?;
    Ok(leaf_of(&json))
}

/// `{"actor":…,"at":…,"data":…,"kind":…,"seq":…,"subject":…}`: the fields in sorted order.
fn canonical_event(e: &Event, out: &mut Vec<u8>) -> Result<(), Error> {
    out.extend_from_slice(b"{\"actor\":");
    write_scalar(out, &e.actor)?;
    out.extend_from_slice(b",\"at\":");
    write_scalar(out, &e.at)?;
    out.extend_from_slice(b",\"data\":");
    write_value(&e.data, out)?;
    out.extend_from_slice(b",\"kind\":");
    write_scalar(out, &e.kind)?;
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(e.seq.to_string().as_bytes());
    out.extend_from_slice(b",\"subject\":");
    write_scalar(out, &e.subject)?;
    out.push(b'}');
    Ok(())
}

pub(crate) fn leaf_of(bytes: &[u8]) -> Hash {
    hash::sha256(&[&[LEAF], bytes])
}

/// Checks that `kind` is dotted lower-case words such as `request.created`.
pub(crate) fn check_kind(kind: &str) -> Result<(), Error> {
    let word_ok = |w: &str| {
        w.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
            && w.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
    };
    if kind.len() <= 64 && kind.split('.').all(word_ok) {
        Ok(())
    } else {
        Err(Error::invalid(
            "kind",
            kind,
            "expected dotted lower-case words such as `request.created`",
        ))
    }
}

/// Checks that `at` looks like `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
pub(crate) fn check_at(at: &str) -> Result<(), Error> {
    if is_rfc3339_utc(at) {
        Ok(())
    } else {
        Err(Error::invalid(
            "at",
            at,
            "expected an RFC 3339 UTC time such as `2026-11-28T10:00:00Z`",
        ))
    }
}

fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |start: usize, len: usize| -> Option<u32> {
        b.get(start..start + len)?.iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !seps.iter().all(|&(i, c)| b.get(i) == Some(&c)) {
        return false;
    }
    let (Some(_), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return false;
    };
    if !((1..=12).contains(&mo) && (1..=31).contains(&d) && h <= 23 && mi <= 59 && sec <= 60) {
        return false;
    }
    match b.get(19..) {
        Some([b'Z']) => true,
        Some([b'.', frac @ .., b'Z']) => {
            (1..=9).contains(&frac.len()) && frac.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Event {
        Event {
            seq: 1,
            at: "2026-11-28T10:00:00Z".into(),
            kind: "request.created".into(),
            actor: "alice".into(),
            subject: "req-1".into(),
            data: json!({"role": "admin", "device": "web-1"}),
        }
    }

    #[test]
    fn leaf_hash_is_rfc6962_leaf_over_canonical_json() {
        let canonical = concat!(
            r#"{"actor":"alice","at":"2026-11-28T10:00:00Z","data":{"device":"web-1","role":"admin"},"#,
            r#""kind":"request.created","seq":1,"subject":"req-1"}"#
        );
        let mut input = vec![0u8];
        input.extend_from_slice(canonical.as_bytes());
        let want = ring::digest::digest(&ring::digest::SHA256, &input);
        assert_eq!(leaf_hash(&event()).unwrap().as_slice(), want.as_ref());
    }

    /// Any JSON value, with awkward strings and numbers.
    pub(crate) fn value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,8}|[\"\\\\\u{0}-\u{1f}\u{7f}-\u{ff}]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn the_direct_writer_matches_proto_canonical(
            data in value(),
            actor in "\\PC{0,8}",
            seq in proptest::prelude::any::<u64>(),
        ) {
            let e = Event { seq, actor, data, ..event() };
            let mut direct = Vec::new();
            canonical_event(&e, &mut direct).unwrap();
            let reference = brevet_proto::canonical::to_string(&e).unwrap();
            proptest::prop_assert_eq!(String::from_utf8(direct).unwrap(), reference);
        }
    }

    #[test]
    fn every_field_changes_the_leaf() {
        let base = leaf_hash(&event()).unwrap();
        let edits: [fn(&mut Event); 6] = [
            |e| e.seq = 2,
            |e| e.at = "2026-11-28T10:00:01Z".into(),
            |e| e.kind = "request.approved".into(),
            |e| e.actor = "mallory".into(),
            |e| e.subject = "req-2".into(),
            |e| e.data["role"] = json!("root"),
        ];
        for edit in edits {
            let mut e = event();
            edit(&mut e);
            assert_ne!(leaf_hash(&e).unwrap(), base, "{e:?}");
        }
    }

    #[test]
    fn sealed_serialises_flat() {
        let s = Sealed {
            event: event(),
            leaf_hash: "aa".into(),
            chain_hash: "bb".into(),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["kind"], "request.created");
        assert_eq!(v["leaf_hash"], "aa");
        let back: Sealed = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn kinds() {
        for good in [
            "request.created",
            "grant.expired",
            "x",
            "command.run_2",
            "a.b-c.d",
        ] {
            assert!(check_kind(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".x",
            "x.",
            "a..b",
            "Request.created",
            "1x",
            "a b",
            "x\n",
            &"a".repeat(65),
        ] {
            assert!(check_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        for good in [
            "2026-11-28T10:00:00Z",
            "2026-11-28T23:59:60Z",
            "2026-01-01T00:00:00.5Z",
            "2026-01-01T00:00:00.123456789Z",
        ] {
            assert!(check_at(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "2026-11-28",
            "2026-11-28T10:00:00",
            "2026-11-28T10:00:00+00:00",
            "2026-11-28t10:00:00z",
            "2026-13-28T10:00:00Z",
            "2026-11-00T10:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T10:00:00.Z",
            "2026-11-28T10:00:00.1234567890Z",
            "2026-11-28T10:00:00Zjunk",
            "２026-11-28T10:00:00Z",
        ] {
            assert!(check_at(bad).is_err(), "{bad}");
        }
    }
}
