//! Signed checkpoints: the log's size and Merkle root at a moment, signed with Ed25519 so that
//! anyone holding the public key can check the log offline, and an outside witness can keep them.
//!
//! The signature is over the text `"brevet-audit-checkpoint v1\n{size}\n{root}\n{at}\n"`, with
//! `size` in decimal and `root` in lower-case hex, and is written in standard base64 (as grant
//! signatures are). A checkpoint pins the first `size` events: a log cut short, or rewritten
//! before that point even with every chain hash recomputed, no longer matches it.

use data_encoding::BASE64;
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::error::VerifyError;
use crate::event::Sealed;
use crate::hash;
use crate::verifier::ExportVerifier;

/// A signed statement of the log's size and Merkle root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Number of events covered: `seq` 1 to `size`.
    pub size: u64,
    /// Merkle root of those events' leaf hashes, lower-case hex.
    pub root: String,
    /// When it was signed, RFC 3339 UTC.
    pub at: String,
    /// Ed25519 signature over [`Checkpoint::signed_text`], standard base64.
    pub signature: String,
}

impl Checkpoint {
    /// Signs a checkpoint of `size` events with Merkle `root` at time `at`.
    pub fn sign(size: u64, root: &[u8; 32], at: &str, key: &Ed25519KeyPair) -> Checkpoint {
        let root = hash::to_hex(root);
        let signature = BASE64.encode(key.sign(text(size, &root, at).as_bytes()).as_ref());
        Checkpoint {
            size,
            root,
            at: at.to_owned(),
            signature,
        }
    }

    /// The exact text the signature covers.
    pub fn signed_text(&self) -> String {
        text(self.size, &self.root, &self.at)
    }

    /// The Merkle root as bytes.
    pub fn root_hash(&self) -> Result<[u8; 32], Error> {
        hash::parse_hex("root", &self.root)
    }

    /// Checks the signature with a 32-byte Ed25519 public key.
    pub fn verify(&self, public_key: &[u8]) -> Result<(), Error> {
        self.root_hash()?;
        let signature = BASE64
            .decode(self.signature.as_bytes())
            .map_err(|_| Error::invalid("signature", &self.signature, "expected base64"))?;
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(self.signed_text().as_bytes(), &signature)
            .map_err(|_| Error::BadSignature)
    }
}

fn text(size: u64, root_hex: &str, at: &str) -> String {
    format!("brevet-audit-checkpoint v1\n{size}\n{root_hex}\n{at}\n")
}

/// Verifies a whole log (from `seq` 1) against a signed checkpoint.
///
/// In order: the checkpoint's signature (`seq` 0 on failure); the hash chain of every event
/// (the first bad `seq`); that the log is not shorter than the checkpoint (the first missing
/// `seq`); and that the first `cp.size` leaves have the checkpoint's Merkle root. A root that
/// does not match while the chain verifies means the log was rewritten with recomputed hashes;
/// the root cannot say which event changed, so the error names `seq` 1, the first event no
/// longer vouched for. Events after `cp.size` are chain-checked only. For exports too large to
/// hold in memory, feed an [`ExportVerifier`] instead (this is a loop over one).
pub fn verify_against_checkpoint(
    events: &[Sealed],
    cp: &Checkpoint,
    key: &[u8],
) -> Result<(), VerifyError> {
    let mut verifier = ExportVerifier::with_checkpoint(cp, key)?;
    for sealed in events {
        verifier.push(sealed)?;
    }
    verifier.finish().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Head, seal};
    use crate::merkle::merkle_root;
    use ring::signature::KeyPair;
    use serde_json::json;

    const AT: &str = "2026-11-28T10:00:00Z";

    fn key(seed: u8) -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
    }

    fn log(n: usize) -> Vec<Sealed> {
        let mut head = Head::GENESIS;
        (0..n)
            .map(|i| {
                let (s, h) = seal(&head, "test.event", "bob", "dev", json!([i]), AT).unwrap();
                head = h;
                s
            })
            .collect()
    }

    fn checkpoint(events: &[Sealed], size: usize, k: &Ed25519KeyPair) -> Checkpoint {
        let leaves: Vec<_> = events[..size].iter().map(|s| s.leaf().unwrap()).collect();
        Checkpoint::sign(size as u64, &merkle_root(&leaves), AT, k)
    }

    #[test]
    fn signs_the_documented_text() {
        let k = key(1);
        let cp = Checkpoint::sign(3, &[0xab; 32], AT, &k);
        let want = format!("brevet-audit-checkpoint v1\n3\n{}\n{AT}\n", "ab".repeat(32));
        assert_eq!(cp.signed_text(), want);
        let sig = BASE64.decode(cp.signature.as_bytes()).unwrap();
        UnparsedPublicKey::new(&ED25519, k.public_key().as_ref())
            .verify(want.as_bytes(), &sig)
            .unwrap();
        assert_eq!(cp.verify(k.public_key().as_ref()), Ok(()));
    }

    #[test]
    fn any_edit_or_wrong_key_fails() {
        let k = key(1);
        let public = k.public_key().as_ref().to_vec();
        let cp = Checkpoint::sign(3, &[0xab; 32], AT, &k);
        let edits: [fn(&mut Checkpoint); 5] = [
            |c| c.size += 1,
            |c| c.root = "cd".repeat(32),
            |c| c.at = "2026-11-28T10:00:01Z".into(),
            |c| c.signature = BASE64.encode(&[0u8; 64]),
            |c| c.signature = "not base64!".into(),
        ];
        for edit in edits {
            let mut bad = cp.clone();
            edit(&mut bad);
            assert!(bad.verify(&public).is_err(), "{bad:?}");
        }
        assert_eq!(
            cp.verify(key(2).public_key().as_ref()),
            Err(Error::BadSignature)
        );
        assert_eq!(cp.verify(&[1, 2, 3]), Err(Error::BadSignature));
        let mut upper = cp.clone();
        upper.root = upper.root.to_uppercase();
        assert!(matches!(
            upper.verify(&public),
            Err(Error::Invalid { field: "root", .. })
        ));
    }

    #[test]
    fn serialises_as_plain_fields() {
        let cp = Checkpoint::sign(0, &merkle_root(&[]), AT, &key(3));
        let v = serde_json::to_value(&cp).unwrap();
        assert_eq!(v["size"], 0);
        assert_eq!(v["root"], cp.root);
        assert_eq!(serde_json::from_value::<Checkpoint>(v).unwrap(), cp);
    }

    #[test]
    fn whole_log_verifies_against_each_of_its_checkpoints() {
        let k = key(4);
        let public = k.public_key().as_ref().to_vec();
        let events = log(9);
        for size in 0..=9 {
            let cp = checkpoint(&events, size, &k);
            assert_eq!(
                verify_against_checkpoint(&events, &cp, &public),
                Ok(()),
                "{size}"
            );
        }
    }

    #[test]
    fn truncation_names_the_first_missing_event() {
        let k = key(4);
        let public = k.public_key().as_ref().to_vec();
        let events = log(6);
        let cp = checkpoint(&events, 5, &k);
        for keep in 0..5 {
            let err = verify_against_checkpoint(&events[..keep], &cp, &public).unwrap_err();
            assert_eq!(err.seq, keep as u64 + 1, "{err}");
        }
        assert!(verify_against_checkpoint(&events[..5], &cp, &public).is_ok());
    }

    #[test]
    fn a_rewritten_log_fails_the_root() {
        let k = key(4);
        let public = k.public_key().as_ref().to_vec();
        let events = log(4);
        let cp = checkpoint(&events, 4, &k);
        // Rewrite event 3 and re-seal everything after it: the chain alone cannot tell.
        let mut head = events[1].head().unwrap();
        let mut forged = events[..2].to_vec();
        for (i, s) in events[2..].iter().enumerate() {
            let data = if i == 0 {
                json!("forged")
            } else {
                s.event.data.clone()
            };
            let (s, h) = seal(
                &head,
                &s.event.kind,
                &s.event.actor,
                &s.event.subject,
                data,
                AT,
            )
            .unwrap();
            forged.push(s);
            head = h;
        }
        assert!(crate::verify(&Head::GENESIS, &forged).is_ok());
        let err = verify_against_checkpoint(&forged, &cp, &public).unwrap_err();
        assert_eq!(err.seq, 1, "{err}");
    }

    #[test]
    fn a_bad_checkpoint_is_seq_zero() {
        let events = log(2);
        let cp = checkpoint(&events, 2, &key(4));
        let err =
            verify_against_checkpoint(&events, &cp, key(5).public_key().as_ref()).unwrap_err();
        assert_eq!(err.seq, 0);
    }
}
