//! `SignedGrant::verify` (the agent's gate before anything is applied).
//!
//! Three ways in: an arbitrary document and signature (nothing may verify that the fixed key did
//! not sign, and a signature has one encoding only); arbitrary document bytes signed with the
//! fixed test key (the JSON parser, the canonical-form check and validation run on hostile
//! text); and a document built from fields, mostly realistic values with hostile ones mixed in,
//! signed with the test key (validation and the renderer run on near-valid grants).
//!
//! Whatever verifies re-serialises canonically to exactly the signed bytes, has every field in
//! the shape DESIGN §10 requires, renders to a drop-in that the built-in checker accepts and
//! that the scan reads as one rule for the grant's user, and fails to verify once one byte of
//! the document changes.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use brevet_fuzz::*;
use brevet_proto::canonical;
use brevet_proto::grant::SignedGrant;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

#[derive(Debug, Arbitrary)]
struct Fields {
    v: u8,
    grant_id: Pick,
    request_id: Pick,
    device: Pick,
    user: Pick,
    role: Pick,
    runas: Pick,
    commands: Vec<Pick>,
    groups: Vec<Pick>,
    not_before: Pick,
    not_after: Pick,
    ticket: Option<Pick>,
    approvers: Vec<Pick>,
    issued_at: Pick,
    breakglass: bool,
    /// An extra key, or a key left out.
    extra: Option<(String, String)>,
    drop: Option<u8>,
}

impl Fields {
    fn to_json(&self) -> Value {
        let list = |items: &[Pick], table| {
            Value::from(items.iter().map(|p| p.get(table)).collect::<Vec<_>>())
        };
        let mut m = Map::new();
        m.insert("v".into(), json!(if self.v < 250 { 1 } else { self.v }));
        m.insert("grant_id".into(), json!(self.grant_id.get(IDS)));
        m.insert("request_id".into(), json!(self.request_id.get(IDS)));
        m.insert("device".into(), json!(self.device.get(DEVICES)));
        m.insert("user".into(), json!(self.user.get(USERS)));
        m.insert("role".into(), json!(self.role.get(ROLES)));
        m.insert("runas".into(), json!(self.runas.get(USERS)));
        m.insert("commands".into(), list(&self.commands, COMMANDS));
        if !self.groups.is_empty() {
            m.insert("groups".into(), list(&self.groups, GROUPS));
        }
        m.insert("not_before".into(), json!(self.not_before.get(TIMES)));
        m.insert("not_after".into(), json!(self.not_after.get(TIMES)));
        if let Some(t) = &self.ticket {
            m.insert("ticket".into(), json!(t.get(TICKETS)));
        }
        m.insert("approvers".into(), list(&self.approvers, USERS));
        m.insert("issued_at".into(), json!(self.issued_at.get(TIMES)));
        m.insert(
            "kind".into(),
            json!(if self.breakglass {
                "breakglass"
            } else {
                "normal"
            }),
        );
        if let Some(i) = self.drop {
            let keys: Vec<String> = m.keys().cloned().collect();
            m.remove(&keys[usize::from(i) % keys.len()]);
        }
        if let Some((k, v)) = &self.extra {
            m.insert(k.clone(), json!(v));
        }
        Value::Object(m)
    }
}

fn check(doc: String, tamper_at: usize) {
    let key = test_key();
    let pk = test_public_key();
    let signed = SignedGrant {
        sig: sign_b64(&key, doc.as_bytes()),
        doc,
    };
    let Ok(g) = signed.verify(&pk) else { return };
    assert_eq!(
        canonical::to_string(&g).unwrap(),
        signed.doc,
        "not canonical"
    );
    assert_grant_accepted(&g);
    // The server's own signing path gives the very same bytes.
    assert_eq!(g.sign(&key).unwrap(), signed);
    // One changed byte (kept valid UTF-8) and the signature no longer covers it.
    let mut bytes = signed.doc.clone().into_bytes();
    let i = tamper_at % bytes.len();
    bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
    if let Ok(doc) = String::from_utf8(bytes) {
        let t = SignedGrant {
            doc,
            sig: signed.sig.clone(),
        };
        assert!(t.verify(&pk).is_err(), "tampered grant verified");
    }
}

/// A signed grant as JSON (`{"doc":…,"sig":…}`), or else the document and the signature on
/// two lines.
fn signed_grant(text: &[u8]) -> Option<SignedGrant> {
    if let Ok(s) = serde_json::from_slice(text) {
        return Some(s);
    }
    let text = std::str::from_utf8(text).ok()?;
    let (doc, sig) = text.split_once('\n').unwrap_or((text, ""));
    Some(SignedGrant {
        doc: doc.to_owned(),
        sig: sig.to_owned(),
    })
}

fn raw(signed: SignedGrant, pk: &[u8]) {
    if let Ok(g) = signed.verify(pk) {
        assert_eq!(canonical::to_string(&g).unwrap(), signed.doc);
        assert_grant_accepted(&g);
        if pk == test_public_key() {
            // Only the one encoding of the one signature the key makes.
            assert_eq!(signed.sig, sign_b64(&test_key(), signed.doc.as_bytes()));
        }
    }
}

// The first byte chooses the way in: 0 arbitrary document and signature (fixed key), 1 the same
// with the key taken from the next 32 bytes, 2 arbitrary bytes signed, 3 a document from fields.
fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Some(s) = signed_grant(rest) {
                raw(s, &test_public_key());
            }
        }
        1 => {
            if rest.len() >= 32
                && let Some(s) = signed_grant(&rest[32..])
            {
                raw(s, &rest[..32]);
            }
        }
        2 => {
            if let Ok(doc) = std::str::from_utf8(rest) {
                check(doc.to_owned(), rest.len() / 2);
            }
        }
        _ => {
            if let Ok(f) = Fields::arbitrary_take_rest(Unstructured::new(rest)) {
                let doc = canonical::to_string(&f.to_json()).unwrap();
                let at = usize::from(f.v);
                check(doc, at);
            }
        }
    }
});
