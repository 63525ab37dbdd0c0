//! Inclusion and consistency proofs as the API serves them (hashes in lower-case hex), and
//! their checking.
//!
//! A proof only relates roots to each other; what makes a root worth anything is a signed
//! [`Checkpoint`] with that size and root. So a client checks the proof, then checks that the
//! roots it names are those of checkpoints it holds or has verified ([`ConsistencyProof::links`]).

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::checkpoint::Checkpoint;
use crate::hash::{self, Hash};
use crate::merkle::{verify_consistency, verify_inclusion};

/// Proof that event `seq` is leaf `seq - 1` of the tree of the first `size` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub seq: u64,
    pub size: u64,
    /// The event's leaf hash.
    pub leaf_hash: String,
    /// The Merkle root of the first `size` events.
    pub root: String,
    /// The audit path, leaf to root.
    pub proof: Vec<String>,
    /// The stored checkpoint of exactly `size` events, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

impl InclusionProof {
    pub fn new(seq: u64, size: u64, leaf: &Hash, root: &Hash, path: &[Hash]) -> InclusionProof {
        InclusionProof {
            seq,
            size,
            leaf_hash: hash::to_hex(leaf),
            root: hash::to_hex(root),
            proof: path.iter().map(hash::to_hex).collect(),
            checkpoint: None,
        }
    }

    /// Checks that the path leads from `leaf_hash` at position `seq - 1` to `root`.
    pub fn verify(&self) -> Result<(), Error> {
        let leaf = hash::parse_hex("leaf_hash", &self.leaf_hash)?;
        let root = hash::parse_hex("root", &self.root)?;
        let path = parse_all(&self.proof)?;
        let index = self.seq.checked_sub(1);
        if index.is_some_and(|i| verify_inclusion(&leaf, i, self.size, &path, &root)) {
            Ok(())
        } else {
            Err(Error::BadProof(format!(
                "the inclusion proof of event {} in the first {} events does not verify",
                self.seq, self.size
            )))
        }
    }
}

/// Proof that the tree of the first `from` events is a prefix of the tree of the first `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
    /// The stored checkpoint of exactly `to` events, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

impl ConsistencyProof {
    pub fn new(from: u64, to: u64, from_root: &Hash, to_root: &Hash, path: &[Hash]) -> Self {
        ConsistencyProof {
            from,
            to,
            from_root: hash::to_hex(from_root),
            to_root: hash::to_hex(to_root),
            proof: path.iter().map(hash::to_hex).collect(),
            checkpoint: None,
        }
    }

    /// Checks the proof between `from_root` and `to_root`.
    pub fn verify(&self) -> Result<(), Error> {
        let old = hash::parse_hex("from_root", &self.from_root)?;
        let new = hash::parse_hex("to_root", &self.to_root)?;
        let path = parse_all(&self.proof)?;
        if verify_consistency(self.from, self.to, &old, &new, &path) {
            Ok(())
        } else {
            Err(Error::BadProof(format!(
                "the consistency proof from {} to {} events does not verify",
                self.from, self.to
            )))
        }
    }

    /// Checks the proof, and that it joins checkpoint `old` to checkpoint `new` (whose
    /// signatures the caller has checked).
    pub fn links(&self, old: &Checkpoint, new: &Checkpoint) -> Result<(), Error> {
        if (self.from, &self.from_root) != (old.size, &old.root)
            || (self.to, &self.to_root) != (new.size, &new.root)
        {
            return Err(Error::BadProof(format!(
                "the consistency proof is for sizes {} to {}, not for the checkpoints of {} and \
                 {} events, or its roots differ from theirs",
                self.from, self.to, old.size, new.size
            )));
        }
        self.verify()
    }
}

fn parse_all(hexes: &[String]) -> Result<Vec<Hash>, Error> {
    hexes.iter().map(|h| hash::parse_hex("proof", h)).collect()
}

/// Reads an Ed25519 public key written as standard base64 (the form of `audit.pub`).
pub fn parse_public_key(text: &str) -> Result<[u8; 32], Error> {
    let text = text.trim();
    let bytes = data_encoding::BASE64
        .decode(text.as_bytes())
        .map_err(|_| Error::invalid("public key", text, "expected base64"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| Error::invalid("public key", text, "expected a 32-byte Ed25519 key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::leaf_of;
    use crate::merkle::{consistency_proof, inclusion_proof, merkle_root};
    use ring::signature::Ed25519KeyPair;

    fn leaves(n: u32) -> Vec<Hash> {
        (0..n).map(|i| leaf_of(&i.to_be_bytes())).collect()
    }

    #[test]
    fn inclusion_round_trips_through_json_and_verifies() {
        let l = leaves(11);
        let root = merkle_root(&l);
        let p = InclusionProof::new(4, 11, &l[3], &root, &inclusion_proof(&l, 3));
        let back: InclusionProof =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert_eq!(p.verify(), Ok(()));
        let mut bad = p.clone();
        bad.seq = 5;
        assert!(matches!(bad.verify(), Err(Error::BadProof(_))));
        bad.seq = 0;
        assert!(bad.verify().is_err());
        let mut bad = p;
        bad.proof[0] = "zz".into();
        assert!(matches!(bad.verify(), Err(Error::Invalid { .. })));
    }

    #[test]
    fn consistency_links_two_checkpoints() {
        let key = Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap();
        let l = leaves(13);
        let (old_root, new_root) = (merkle_root(&l[..5]), merkle_root(&l));
        let old = Checkpoint::sign(5, &old_root, "2026-01-01T00:00:00Z", &key);
        let new = Checkpoint::sign(13, &new_root, "2026-01-01T00:00:09Z", &key);
        let p = ConsistencyProof::new(5, 13, &old_root, &new_root, &consistency_proof(&l, 5));
        assert_eq!(p.links(&old, &new), Ok(()));
        assert!(p.links(&new, &old).is_err());
        let forked = Checkpoint::sign(5, &merkle_root(&l[1..6]), "2026-01-01T00:00:00Z", &key);
        assert!(p.links(&forked, &new).is_err());
    }

    #[test]
    fn public_keys_are_base64_of_32_bytes() {
        let b64 = data_encoding::BASE64.encode(&[3; 32]);
        assert_eq!(parse_public_key(&format!("{b64}\n")), Ok([3; 32]));
        assert!(parse_public_key("AAAA").is_err());
        assert!(parse_public_key("not base64!").is_err());
    }
}
