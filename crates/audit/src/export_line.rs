//! Reading one line of a JSON-lines export (`brevet audit export`) for verification, fast.
//!
//! The server hashes the canonical JSON of each event, and the export writes every field in that
//! same canonical form. So the leaf hash can be recomputed from the line's raw field texts,
//! reassembled in sorted order, without building a JSON tree of `data`. When that hash matches
//! the recorded one, the raw texts *are* the canonical bytes (SHA-256 is collision resistant).
//! When it does not — an edited event, or a line re-formatted by another tool — the line is
//! parsed fully and hashed the slow way, so the verdict is the same as [`Hashed::new`]'s.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{Event, Sealed, leaf_of};
use crate::hash;
use crate::verifier::Hashed;

#[derive(Deserialize)]
struct RawLine<'a> {
    seq: u64,
    #[serde(borrow)]
    at: &'a RawValue,
    #[serde(borrow)]
    kind: &'a RawValue,
    #[serde(borrow)]
    actor: &'a RawValue,
    #[serde(borrow)]
    subject: &'a RawValue,
    #[serde(borrow)]
    data: &'a RawValue,
    leaf_hash: String,
    chain_hash: String,
}

#[derive(Deserialize)]
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

impl Hashed {
    /// Parses one export line and recomputes its leaf hash. Errors only when the line is not an
    /// audit event at all; a wrong hash is for the verifier to report.
    pub fn from_export_line(line: &[u8]) -> Result<Hashed, String> {
        let raw: RawLine<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        let mut canonical = Vec::with_capacity(line.len());
        for (name, value) in [
            ("{\"actor\":", raw.actor.get()),
            (",\"at\":", raw.at.get()),
            (",\"data\":", raw.data.get()),
            (",\"kind\":", raw.kind.get()),
        ] {
            canonical.extend_from_slice(name.as_bytes());
            canonical.extend_from_slice(value.as_bytes());
        }
        canonical.extend_from_slice(b",\"seq\":");
        canonical.extend_from_slice(raw.seq.to_string().as_bytes());
        canonical.extend_from_slice(b",\"subject\":");
        canonical.extend_from_slice(raw.subject.get().as_bytes());
        canonical.push(b'}');
        let leaf = leaf_of(&canonical);
        if hash::to_hex(&leaf) != raw.leaf_hash {
            return Hashed::slow(line);
        }
        let text =
            |v: &RawValue| serde_json::from_str::<String>(v.get()).map_err(|e| e.to_string());
        Ok(Hashed::with_leaf(
            Sealed {
                event: Event {
                    seq: raw.seq,
                    at: text(raw.at)?,
                    kind: text(raw.kind)?,
                    actor: text(raw.actor)?,
                    subject: text(raw.subject)?,
                    // Hashed above from its raw text; not needed again.
                    data: serde_json::Value::Null,
                },
                leaf_hash: raw.leaf_hash,
                chain_hash: raw.chain_hash,
            },
            leaf,
        ))
    }

    fn slow(line: &[u8]) -> Result<Hashed, String> {
        let f: FullLine = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        Ok(Hashed::new(Sealed {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Head, seal};

    fn line(s: &Sealed) -> String {
        serde_json::json!({
            "seq": s.event.seq, "at": s.event.at, "kind": s.event.kind, "actor": s.event.actor,
            "subject": s.event.subject, "data": s.event.data, "leaf_hash": s.leaf_hash,
            "chain_hash": s.chain_hash,
        })
        .to_string()
    }

    #[test]
    fn fast_and_slow_paths_agree() {
        let data = serde_json::json!({"z": 1.5, "a": ["é\"\n", {"y": null, "b": true}], "cmd": "/usr/bin/id -u"});
        let (s, _) = seal(
            &Head::GENESIS,
            "grant.used",
            "device:web-01",
            "g\u{1}1",
            data,
            "2026-11-28T10:00:00Z",
        )
        .unwrap();
        let fast = Hashed::from_export_line(line(&s).as_bytes()).unwrap();
        let slow = Hashed::new(s.clone());
        assert_eq!(fast.leaf_for_tests(), slow.leaf_for_tests());
        // Re-formatted but equal: the slow path still accepts it.
        let spaced = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&line(&s)).unwrap(),
        )
        .unwrap();
        let again = Hashed::from_export_line(spaced.as_bytes()).unwrap();
        assert_eq!(again.leaf_for_tests(), slow.leaf_for_tests());
        // Edited: a different leaf, for the verifier to refuse.
        let edited = line(&s).replace("/usr/bin/id -u", "/bin/sh");
        let bad = Hashed::from_export_line(edited.as_bytes()).unwrap();
        assert_ne!(bad.leaf_for_tests(), slow.leaf_for_tests());
        assert!(Hashed::from_export_line(b"not json").is_err());
    }
}
