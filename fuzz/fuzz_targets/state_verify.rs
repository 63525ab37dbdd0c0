//! `SignedState::verify` (the server-state stamp an agent checks on every answer).
//!
//! Same three ways in as `grant_verify`: arbitrary document and signature, arbitrary bytes
//! signed with the fixed test key (with the context line, as the server signs), and a stamp
//! built from fields. Whatever verifies re-serialises canonically to the signed bytes, names the
//! device it was checked for, has generation >= 1 and a parseable time, is re-signed to the same
//! bytes, and never verifies as a grant document (domain separation), nor the other way round.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use brevet_fuzz::*;
use brevet_proto::canonical;
use brevet_proto::grant::SignedGrant;
use brevet_proto::state::{CONTEXT, SignedState};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

#[derive(Debug, Arbitrary)]
struct Fields {
    v: u8,
    device: Pick,
    generation: u64,
    audit_seq: u64,
    issued_at: Pick,
    extra: Option<(String, String)>,
    drop: Option<u8>,
}

impl Fields {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("v".into(), json!(if self.v < 250 { 1 } else { self.v }));
        m.insert("device".into(), json!(self.device.get(DEVICES)));
        m.insert("generation".into(), json!(self.generation));
        m.insert("audit_seq".into(), json!(self.audit_seq));
        m.insert("issued_at".into(), json!(self.issued_at.get(TIMES)));
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

fn accepted(s: &SignedState, device: &str) {
    let pk = test_public_key();
    let Ok(st) = s.verify(&pk, device) else {
        return;
    };
    assert_eq!(canonical::to_string(&st).unwrap(), s.doc, "not canonical");
    assert_eq!(st.device, device);
    assert!(is_lower_hostname(&st.device), "device {:?}", st.device);
    assert_eq!(st.v, 1);
    assert!(st.generation >= 1);
    brevet_proto::timefmt::parse_rfc3339("issued_at", &st.issued_at).expect("time parses");
    assert_eq!(
        s.sig,
        sign_b64(&test_key(), format!("{CONTEXT}{}", s.doc).as_bytes())
    );
    assert_eq!(&st.sign(&test_key()).unwrap(), s);
    // A stamp is never a grant.
    let as_grant = SignedGrant {
        doc: s.doc.clone(),
        sig: s.sig.clone(),
    };
    assert!(as_grant.verify(&pk).is_err(), "a stamp verified as a grant");
}

fn signed(doc: String, device: &str) {
    let key = test_key();
    let pk = test_public_key();
    let s = SignedState {
        sig: sign_b64(&key, format!("{CONTEXT}{doc}").as_bytes()),
        doc: doc.clone(),
    };
    accepted(&s, device);
    // Signed without the context line (as a grant is): never a stamp.
    let raw = SignedState {
        sig: sign_b64(&key, doc.as_bytes()),
        doc,
    };
    assert!(
        raw.verify(&pk, device).is_err(),
        "a grant signature verified as a stamp"
    );
}

/// The device the stamp is checked for: the first byte picks it from the table.
fn device(b: u8) -> &'static str {
    DEVICES[usize::from(b) % DEVICES.len()]
}

// The first byte chooses the way in: 0 arbitrary document and signature (`{"doc":…,"sig":…}` or
// two lines), 1 arbitrary bytes signed, 2 a stamp from fields. The second picks the device.
fuzz_target!(|data: &[u8]| {
    let [mode, dev, rest @ ..] = data else { return };
    let device = device(*dev);
    match mode % 3 {
        0 => {
            let s = serde_json::from_slice::<SignedState>(rest)
                .ok()
                .or_else(|| {
                    let text = std::str::from_utf8(rest).ok()?;
                    let (doc, sig) = text.split_once('\n').unwrap_or((text, ""));
                    Some(SignedState {
                        doc: doc.to_owned(),
                        sig: sig.to_owned(),
                    })
                });
            if let Some(s) = s {
                accepted(&s, device);
            }
        }
        1 => {
            if let Ok(doc) = std::str::from_utf8(rest) {
                signed(doc.to_owned(), device);
            }
        }
        _ => {
            if let Ok(f) = Fields::arbitrary_take_rest(Unstructured::new(rest)) {
                signed(canonical::to_string(&f.to_json()).unwrap(), device);
            }
        }
    }
});
