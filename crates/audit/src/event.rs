//! The audit event, its sealed form, and the RFC 6962 leaf hash that binds an event's contents.
//!
//! The leaf hash is `SHA-256(0x00 || canonical_json(event))`, where canonical JSON (from
//! `brevet_proto::canonical`) has sorted keys and no whitespace. It covers every field, `seq`
//! included, so the hash does not depend on how a record was stored or re-serialised, and any
//! edit to any field changes it.

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

/// The RFC 6962 leaf hash of `event`: `SHA-256(0x00 || canonical_json(event))`.
pub fn leaf_hash(event: &Event) -> Result<[u8; 32], Error> {
    let json = brevet_proto::canonical::to_string(event)?;
    Ok(leaf_of(json.as_bytes()))
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
mod tests {
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
