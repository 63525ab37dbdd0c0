//! The server-state stamp: how far the server's state has got, signed with the grant key.
//!
//! Every answer to a device's long-poll carries a [`SignedState`] naming the device, the
//! server's restore `generation` and its audit sequence number at the time of the answer. A
//! genuine server never goes backwards: the audit sequence only grows, and `generation` grows by
//! one each time an administrator acknowledges a restore from backup (after which every grant
//! issued before the restore is revoked). The agent keeps the highest stamp it has seen and
//! refuses grants delivered with an older one: a server running on a restored copy of its
//! database cannot hand out grants that were revoked after the copy was taken.
//!
//! The signed bytes are a context line followed by canonical JSON, so a stamp can never be
//! taken for a grant document (whose signed bytes start with `{`) and a grant never for a stamp.

use std::cmp::Ordering;

use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::{Error, canonical, timefmt, validate};

/// Prefix of the signed bytes (domain separation from grant documents).
pub const CONTEXT: &str = "brevet server state v1\n";

/// What a stamp says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerState {
    pub v: u32,
    /// The device the answer is for.
    pub device: String,
    /// Restore generation: 1 on a new installation, one more after each acknowledged restore.
    pub generation: u64,
    /// The audit sequence number of the newest event the server had recorded.
    pub audit_seq: u64,
    pub issued_at: String,
}

impl ServerState {
    /// Compares two stamps by `(generation, audit_seq)`: a later generation is newer whatever
    /// its sequence number.
    pub fn order(&self, other: &ServerState) -> Ordering {
        (self.generation, self.audit_seq).cmp(&(other.generation, other.audit_seq))
    }

    /// Whether this stamp is older than `other` (a server that went backwards).
    pub fn is_older_than(&self, other: &ServerState) -> bool {
        self.order(other) == Ordering::Less
    }

    fn validate(&self) -> Result<(), Error> {
        if self.v != 1 {
            return Err(Error::Grant(format!(
                "unsupported server state version {}",
                self.v
            )));
        }
        if validate::device_name(&self.device)? != self.device {
            return Err(Error::Grant(
                "server state names a device not in lower case".into(),
            ));
        }
        if self.generation == 0 {
            return Err(Error::Grant("server state generation 0".into()));
        }
        timefmt::parse_rfc3339("issued_at", &self.issued_at)?;
        Ok(())
    }

    /// Signs this stamp with the grant key.
    pub fn sign(&self, key: &Ed25519KeyPair) -> Result<SignedState, Error> {
        self.validate()?;
        let doc = canonical::to_string(self)?;
        let sig = key.sign(signed_bytes(&doc).as_bytes());
        Ok(SignedState {
            doc,
            sig: data_encoding::BASE64.encode(sig.as_ref()),
        })
    }
}

/// A stamp as sent: its canonical JSON and a base64 Ed25519 signature over [`CONTEXT`] + JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedState {
    pub doc: String,
    pub sig: String,
}

impl SignedState {
    /// Verifies the signature with the pinned grant key, then that the stamp is canonical,
    /// valid, and for `device`.
    pub fn verify(&self, public_key: &[u8], device: &str) -> Result<ServerState, Error> {
        let sig = data_encoding::BASE64
            .decode(self.sig.as_bytes())
            .map_err(|_| Error::Grant("server state signature is not base64".into()))?;
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(signed_bytes(&self.doc).as_bytes(), &sig)
            .map_err(|_| {
                Error::Grant("server state signature does not verify with the pinned key".into())
            })?;
        let state: ServerState = serde_json::from_str(&self.doc)
            .map_err(|e| Error::Grant(format!("server state does not parse: {e}")))?;
        if canonical::to_string(&state)? != self.doc {
            return Err(Error::Grant("server state is not in canonical form".into()));
        }
        state.validate()?;
        if state.device != device {
            return Err(Error::Grant(format!(
                "server state is for device `{}`, not `{device}`",
                state.device
            )));
        }
        Ok(state)
    }
}

fn signed_bytes(doc: &str) -> String {
    format!("{CONTEXT}{doc}")
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::KeyPair;

    use super::*;
    use crate::grant::SignedGrant;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    /// Fixed bytes: the canonical stamp and its signature under a fixed key.
    #[test]
    fn fixed_vector() {
        let k = Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap();
        let signed = stamp(3, 42).sign(&k).unwrap();
        assert_eq!(
            signed.doc,
            r#"{"audit_seq":42,"device":"web-01","generation":3,"issued_at":"2026-12-04T10:00:00Z","v":1}"#
        );
        assert_eq!(
            signed.sig,
            "Q8RMrAQIeOw7TRjcokFd9OF3ut5qNqVrGzzc5X26vMtDJkTJ8P0JIwr+l1a4UxRresceG2rk1xaDyw8EKFWYBw=="
        );
    }

    fn stamp(generation: u64, audit_seq: u64) -> ServerState {
        ServerState {
            v: 1,
            device: "web-01".into(),
            generation,
            audit_seq,
            issued_at: "2026-12-04T10:00:00Z".into(),
        }
    }

    #[test]
    fn signs_verifies_and_orders() {
        let k = key();
        let pk = k.public_key().as_ref().to_vec();
        let signed = stamp(1, 42).sign(&k).unwrap();
        assert_eq!(signed.verify(&pk, "web-01").unwrap(), stamp(1, 42));
        assert!(signed.verify(&pk, "web-02").is_err(), "other device");
        assert!(
            signed
                .verify(key().public_key().as_ref(), "web-01")
                .is_err(),
            "other key"
        );
        let mut t = signed.clone();
        t.doc = t.doc.replace("42", "43");
        assert!(t.verify(&pk, "web-01").is_err(), "tampered");

        assert!(stamp(1, 41).is_older_than(&stamp(1, 42)));
        assert!(!stamp(1, 42).is_older_than(&stamp(1, 42)));
        assert!(stamp(1, 1_000).is_older_than(&stamp(2, 1)));
        assert!(!stamp(2, 1).is_older_than(&stamp(1, 1_000)));
    }

    #[test]
    fn a_stamp_is_never_a_grant_and_a_grant_never_a_stamp() {
        let k = key();
        let pk = k.public_key().as_ref().to_vec();
        let signed = stamp(1, 42).sign(&k).unwrap();
        let as_grant = SignedGrant {
            doc: signed.doc.clone(),
            sig: signed.sig.clone(),
        };
        assert!(as_grant.verify(&pk).is_err());
        // Raw bytes signed without the context line are refused as a stamp.
        let sig = data_encoding::BASE64.encode(k.sign(signed.doc.as_bytes()).as_ref());
        let raw = SignedState {
            doc: signed.doc,
            sig,
        };
        assert!(raw.verify(&pk, "web-01").is_err());
    }
}
