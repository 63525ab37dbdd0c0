//! The Merkle frontier (an RFC 9162 "compact range" from leaf 0): the roots of the perfect
//! subtrees along the right edge of the tree, one per set bit of the size, largest first.
//!
//! It is all a log needs to keep in memory to append a leaf and to compute the current root in
//! O(log n), whatever the size: appending merges equal-sized subtrees like a binary counter
//! carries, and the root folds the subtrees from the right. [`Frontier::root`] equals
//! [`crate::merkle_root`] over the same leaves (tested for every size up to 130).

use crate::Error;
use crate::hash::{self, Hash, node};

/// The right-edge subtree roots of a tree of [`Frontier::size`] leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// INVARIANT: one hash per set bit of `size`, from the most significant bit down.
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// How many leaves have been pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: [u8; 32]) {
        let mut carry = leaf;
        let mut bits = self.size;
        while bits & 1 == 1 {
            // INVARIANT: a set low bit means a subtree of that height ends the list.
            let Some(left) = self.nodes.pop() else { break };
            carry = node(&left, &carry);
            bits >>= 1;
        }
        self.nodes.push(carry);
        self.size += 1;
    }

    /// The RFC 9162 Merkle tree hash of every leaf pushed so far.
    pub fn root(&self) -> [u8; 32] {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return hash::sha256(&[]);
        };
        nodes.fold(*last, |right, left| node(left, &right))
    }

    /// The subtree roots as lower-case hex joined by commas (for storage beside a checkpoint).
    pub fn to_text(&self) -> String {
        self.nodes
            .iter()
            .map(hash::to_hex)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads [`Frontier::to_text`] back for a tree of `size` leaves. Refuses a list whose length
    /// is not the number of set bits of `size`. It cannot tell whether the hashes are right:
    /// compare [`Frontier::root`] with a signed root before trusting it.
    pub fn from_text(size: u64, text: &str) -> Result<Frontier, Error> {
        let nodes = if text.is_empty() {
            Vec::new()
        } else {
            text.split(',')
                .map(|h| hash::parse_hex("frontier", h))
                .collect::<Result<Vec<_>, _>>()?
        };
        if nodes.len() != size.count_ones() as usize {
            return Err(Error::invalid(
                "frontier",
                text,
                format!("expected {} hashes for a tree of {size}", size.count_ones()),
            ));
        }
        Ok(Frontier { size, nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::leaf_of;
    use crate::merkle::merkle_root;

    #[test]
    fn root_matches_the_recursive_definition_for_every_size() {
        let leaves: Vec<Hash> = (0..130u32).map(|i| leaf_of(&i.to_be_bytes())).collect();
        let mut f = Frontier::new();
        assert_eq!(f.root(), merkle_root(&[]));
        for (i, leaf) in leaves.iter().enumerate() {
            f.push(*leaf);
            assert_eq!(f.size(), i as u64 + 1);
            assert_eq!(f.root(), merkle_root(&leaves[..=i]), "size {}", i + 1);
            assert_eq!(f.nodes.len(), f.size.count_ones() as usize);
        }
    }

    #[test]
    fn text_round_trips_and_is_checked() {
        let mut f = Frontier::new();
        assert_eq!(Frontier::from_text(0, &f.to_text()), Ok(f.clone()));
        for i in 0..11u32 {
            f.push(leaf_of(&i.to_be_bytes()));
        }
        let text = f.to_text();
        assert_eq!(text.split(',').count(), 3);
        assert_eq!(Frontier::from_text(11, &text), Ok(f));
        assert!(Frontier::from_text(12, &text).is_err());
        assert!(Frontier::from_text(11, "zz").is_err());
        assert!(Frontier::from_text(1, "").is_err());
    }
}
