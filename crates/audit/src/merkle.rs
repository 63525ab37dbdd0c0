//! The RFC 6962 / RFC 9162 Merkle tree over leaf hashes: root, inclusion proofs and consistency
//! proofs, and their verification.
//!
//! Inputs are leaf hashes (see [`crate::leaf_hash`]), interior nodes are
//! `SHA-256(0x01 || left || right)`, the empty tree's root is `SHA-256("")`, and a tree of `n`
//! leaves splits at the largest power of two below `n` (RFC 9162 §2.1.1). Proofs are built with
//! the recursive definitions of §2.1.3.1 and §2.1.4.1 and checked with the iterative algorithms
//! of §2.1.3.2 and §2.1.4.2, so they interoperate with other RFC 9162 logs and witnesses.

use crate::hash::{self, Hash, node};

/// The Merkle tree hash (RFC 9162 `MTH`) of `leaves`.
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.is_empty() {
        hash::sha256(&[])
    } else {
        mth(leaves)
    }
}

/// `MTH` of a non-empty slice.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => hash::sha256(&[]),
        [only] => *only,
        _ => {
            let (left, right) = leaves.split_at(split(leaves.len()));
            node(&mth(left), &mth(right))
        }
    }
}

/// The largest power of two smaller than `n` (for `n >= 2`; 1 otherwise).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k < n - k {
        k <<= 1;
    }
    k
}

/// The audit path (RFC 9162 `PATH`) proving that `leaves[index]` is in the tree of all `leaves`.
/// Empty when `index` is out of range (and for a one-leaf tree, where none is needed).
pub fn inclusion_proof(leaves: &[[u8; 32]], index: usize) -> Vec<[u8; 32]> {
    let mut proof = Vec::new();
    if index < leaves.len() {
        path(index, leaves, &mut proof);
    }
    proof
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let (left, right) = leaves.split_at(split(leaves.len()));
    if m < left.len() {
        path(m, left, out);
        out.push(mth(right));
    } else {
        path(m - left.len(), right, out);
        out.push(mth(left));
    }
}

/// Checks that `leaf` is leaf number `index` (from 0) of the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    leaf: &[u8; 32],
    index: u64,
    size: u64,
    proof: &[[u8; 32]],
    root: &[u8; 32],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// The consistency proof (RFC 9162 `PROOF`) that the tree of the first `old_size` leaves is a
/// prefix of the tree of all `leaves`. Empty when `old_size` is 0, equal to `leaves.len()`
/// (no proof is needed) or larger (no proof exists).
pub fn consistency_proof(leaves: &[[u8; 32]], old_size: usize) -> Vec<[u8; 32]> {
    let mut proof = Vec::new();
    if old_size > 0 && old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut proof);
    }
    proof
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    if m >= leaves.len() {
        if !complete {
            out.push(mth(leaves));
        }
        return;
    }
    let (left, right) = leaves.split_at(split(leaves.len()));
    if m <= left.len() {
        subproof(m, left, complete, out);
        out.push(mth(right));
    } else {
        subproof(m - left.len(), right, false, out);
        out.push(mth(left));
    }
}

/// Checks that the tree of `old_size` leaves with `old_root` is a prefix of the tree of
/// `new_size` leaves with `new_root`. Equal sizes need an empty proof and equal roots; an empty
/// old tree needs an empty proof and the empty-tree root.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &[u8; 32],
    new_root: &[u8; 32],
    proof: &[[u8; 32]],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty() && *old_root == merkle_root(&[]);
    }
    let mut rest = proof.iter();
    // A power-of-two old tree is a complete subtree, so its root starts the path (step 1).
    let first = if old_size.is_power_of_two() {
        *old_root
    } else {
        match rest.next() {
            Some(h) => *h,
            None => return false,
        }
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *old_root && sr == *new_root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::leaf_of;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_of(format!("leaf {i}").as_bytes()))
            .collect()
    }

    fn hex(h: &Hash) -> String {
        hash::to_hex(h)
    }

    #[test]
    fn split_is_largest_power_of_two_below() {
        let want = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (16, 8),
            (17, 16),
        ];
        for (n, k) in want {
            assert_eq!(split(n), k, "n={n}");
        }
    }

    #[test]
    fn small_trees_by_hand() {
        let l = leaves(7);
        let n = |a: &Hash, b: &Hash| node(a, b);
        assert_eq!(merkle_root(&[]), hash::sha256(&[]));
        assert_eq!(merkle_root(&l[..1]), l[0]);
        assert_eq!(merkle_root(&l[..2]), n(&l[0], &l[1]));
        assert_eq!(merkle_root(&l[..3]), n(&n(&l[0], &l[1]), &l[2]));
        let four = n(&n(&l[0], &l[1]), &n(&l[2], &l[3]));
        assert_eq!(merkle_root(&l[..4]), four);
        assert_eq!(merkle_root(&l[..5]), n(&four, &l[4]));
        assert_eq!(merkle_root(&l[..6]), n(&four, &n(&l[4], &l[5])));
        assert_eq!(merkle_root(&l[..7]), n(&four, &n(&n(&l[4], &l[5]), &l[6])));
        // The node tag is 0x01 over the raw 32-byte children.
        let mut input = vec![0x01];
        input.extend_from_slice(&l[0]);
        input.extend_from_slice(&l[1]);
        let want = ring::digest::digest(&ring::digest::SHA256, &input);
        assert_eq!(merkle_root(&l[..2]).as_slice(), want.as_ref());
    }

    /// The reference tree of the Certificate Transparency test suites (RFC 6962 leaf inputs).
    #[test]
    fn rfc6962_reference_roots() {
        let inputs: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let l: Vec<Hash> = inputs.iter().map(|d| leaf_of(d)).collect();
        for (n, want) in roots.iter().enumerate() {
            assert_eq!(hex(&merkle_root(&l[..=n])), *want, "size {}", n + 1);
        }
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_every_size() {
        let all = leaves(20);
        for n in 1..=20 {
            let l = &all[..n];
            let root = merkle_root(l);
            let size = n as u64;
            for i in 0..n {
                let idx = i as u64;
                let proof = inclusion_proof(l, i);
                assert!(
                    verify_inclusion(&l[i], idx, size, &proof, &root),
                    "n={n} i={i}"
                );
                // Tampering: any flipped bit, wrong leaf, index, size or root, extra or
                // missing step.
                for j in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[j][0] ^= 1;
                    assert!(!verify_inclusion(&l[i], idx, size, &bad, &root));
                    let mut short = proof.clone();
                    short.remove(j);
                    assert!(!verify_inclusion(&l[i], idx, size, &short, &root));
                }
                let mut long = proof.clone();
                long.push(l[0]);
                assert!(!verify_inclusion(&l[i], idx, size, &long, &root));
                let other = leaf_of(b"forged");
                assert!(!verify_inclusion(&other, idx, size, &proof, &root));
                let mut bad_root = root;
                bad_root[31] ^= 0x80;
                assert!(!verify_inclusion(&l[i], idx, size, &proof, &bad_root));
                if n > 1 {
                    let wrong = (idx + 1) % size;
                    assert!(
                        !verify_inclusion(&l[i], wrong, size, &proof, &root),
                        "n={n} i={i}"
                    );
                }
                // (A proof does not pin the tree size on its own: for some sizes it also
                // verifies against `size + 1`. The signed checkpoint is what binds the size.)
                assert!(!verify_inclusion(&l[i], size, size, &proof, &root));
            }
            assert!(inclusion_proof(l, n).is_empty());
        }
        assert!(inclusion_proof(&[], 0).is_empty());
        assert!(!verify_inclusion(&all[0], 0, 0, &[], &merkle_root(&[])));
    }

    #[test]
    fn consistency_proofs_verify_for_every_pair_of_sizes() {
        let all = leaves(20);
        let empty = merkle_root(&[]);
        for n in 1..=20 {
            let l = &all[..n];
            let new_root = merkle_root(l);
            let new = n as u64;
            assert!(verify_consistency(0, new, &empty, &new_root, &[]));
            assert!(!verify_consistency(0, new, &new_root, &new_root, &[]));
            for m in 1..=n {
                let old_root = merkle_root(&l[..m]);
                let old = m as u64;
                let proof = consistency_proof(l, m);
                assert!(
                    verify_consistency(old, new, &old_root, &new_root, &proof),
                    "{m}->{n}"
                );
                for j in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[j][5] ^= 4;
                    assert!(!verify_consistency(old, new, &old_root, &new_root, &bad));
                    let mut short = proof.clone();
                    short.remove(j);
                    assert!(!verify_consistency(old, new, &old_root, &new_root, &short));
                }
                let mut long = proof.clone();
                long.push(all[0]);
                assert!(!verify_consistency(old, new, &old_root, &new_root, &long));
                // A forked history: same size, different leaf.
                let mut fork = l.to_vec();
                fork[m - 1] = leaf_of(b"forged");
                let fork_root = merkle_root(&fork[..m]);
                assert!(!verify_consistency(old, new, &fork_root, &new_root, &proof));
                if m < n {
                    let mut bad_new = new_root;
                    bad_new[0] ^= 1;
                    assert!(!verify_consistency(old, new, &old_root, &bad_new, &proof));
                    assert!(!verify_consistency(new, old, &new_root, &old_root, &proof));
                    let off = if m > 1 { old - 1 } else { old + 1 };
                    assert!(
                        !verify_consistency(off, new, &old_root, &new_root, &proof),
                        "{m}->{n}"
                    );
                } else {
                    assert!(proof.is_empty());
                }
            }
            assert!(consistency_proof(l, 0).is_empty());
            assert!(consistency_proof(l, n + 1).is_empty());
        }
    }
}
