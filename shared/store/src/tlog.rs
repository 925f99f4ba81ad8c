//! The arithmetic of a transparency log (RFC 6962 §2.1, RFC 9162 §2.1): the
//! Merkle tree hash of a list of events, inclusion and consistency proofs,
//! and their verification. Pure: the hashes of complete subtrees come from a
//! [`Subtrees`] source (the store keeps one hash per complete subtree, so a
//! root or a proof reads O(log n) of them, whatever the size of the log).
//!
//! A complete subtree `(level, index)` covers the leaves
//! `[index · 2^level, (index + 1) · 2^level)`.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Where the hashes of complete subtrees come from.
pub trait Subtrees {
    /// Why a hash could not be read.
    type Error;
    /// The root of the complete subtree `(level, index)`.
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two strictly less than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The root of the leaves `[lo, hi)`, where `lo` is a multiple of the
/// largest power of two not above `hi − lo` (every range the RFC's recursion
/// from 0 reaches is).
fn range_root<S: Subtrees>(s: &S, lo: u64, hi: u64) -> Result<Hash, S::Error> {
    let n = hi - lo;
    if n.is_power_of_two() {
        let level = n.trailing_zeros();
        return s.subtree(level, lo >> level);
    }
    let k = split(n);
    Ok(node_hash(
        &range_root(s, lo, lo + k)?,
        &range_root(s, lo + k, hi)?,
    ))
}

/// The Merkle tree hash of the first `size` leaves.
pub fn root<S: Subtrees>(s: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_root(s, 0, size)
}

/// The audit path of leaf `index` in the tree of `size` leaves (RFC 9162
/// §2.1.3.1), leaf side first. Empty when `index ≥ size` is asked: callers
/// check the index first.
pub fn inclusion_proof<S: Subtrees>(s: &S, index: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if index < size {
        path(s, index, 0, size, &mut proof)?;
    }
    Ok(proof)
}

fn path<S: Subtrees>(s: &S, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) -> Result<(), S::Error> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(s, m, lo, lo + k, out)?;
        out.push(range_root(s, lo + k, hi)?);
    } else {
        path(s, m - k, lo + k, hi, out)?;
        out.push(range_root(s, lo, lo + k)?);
    }
    Ok(())
}

/// The consistency proof between the trees of `old` and `new` leaves (RFC
/// 9162 §2.1.4.1). Empty when `old` is 0, or not below `new`.
pub fn consistency_proof<S: Subtrees>(s: &S, old: u64, new: u64) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if 0 < old && old < new {
        subproof(s, old, 0, new, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<S: Subtrees>(
    s: &S,
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(range_root(s, lo, hi)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(s, m, lo, lo + k, whole, out)?;
        out.push(range_root(s, lo + k, hi)?);
    } else {
        subproof(s, m - k, lo + k, hi, false, out)?;
        out.push(range_root(s, lo, lo + k)?);
    }
    Ok(())
}

/// Whether `proof` shows the leaf whose hash is `leaf` at `index` in the
/// tree of `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
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
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Whether `proof` shows that the tree of `old` leaves with root `old_root`
/// is a prefix of the tree of `new` leaves with root `new_root` (RFC 9162
/// §2.1.4.2). Equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 || old > new || proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

/// The complete subtrees that appending leaf `index` completes, lowest
/// first: `(level, index_at_level)` for level 0 and every level whose right
/// child this leaf finishes. The store writes one hash for each.
pub fn completed_by(index: u64) -> impl Iterator<Item = (u32, u64)> {
    let levels = (index + 1).trailing_zeros();
    (0..=levels).map(move |l| (l, index >> l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// Leaves in memory; a complete subtree's hash computed from them.
    struct Leaves(Vec<Hash>);

    impl Subtrees for Leaves {
        type Error = Infallible;
        fn subtree(&self, level: u32, index: u64) -> Result<Hash, Infallible> {
            let lo = (index << level) as usize;
            let hi = lo + (1usize << level);
            Ok(naive(&self.0[lo..hi]))
        }
    }

    /// RFC 6962's MTH written straight from its definition.
    fn naive(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&naive(&leaves[..k]), &naive(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Leaves {
        Leaves(
            (0..n)
                .map(|i| leaf_hash(format!("event {i}").as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn the_empty_tree_and_a_known_root_match_rfc_6962() {
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // The hash of the empty leaf (RFC 6962 test vectors of Certificate Transparency).
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn roots_from_complete_subtrees_equal_the_definition_for_every_size_to_70() {
        let all = leaves(70);
        for n in 0..=70u64 {
            assert_eq!(
                root(&all, n).unwrap(),
                naive(&all.0[..n as usize]),
                "size {n}"
            );
        }
    }

    #[test]
    fn every_inclusion_proof_to_size_40_verifies_and_a_changed_one_does_not() {
        let all = leaves(40);
        for n in 1..=40u64 {
            let r = root(&all, n).unwrap();
            for m in 0..n {
                let p = inclusion_proof(&all, m, n).unwrap();
                let leaf = all.0[m as usize];
                assert!(verify_inclusion(&leaf, m, n, &p, &r), "{m} in {n}");
                // Another leaf, its sibling's index, an index past the end, a
                // flipped byte: refused. (The size is not checked here: a
                // checkpoint signs the size with its root.)
                let other = all.0[((m + 1) % n) as usize];
                assert!(n == 1 || !verify_inclusion(&other, m, n, &p, &r));
                if (m ^ 1) < n {
                    assert!(
                        !verify_inclusion(&leaf, m ^ 1, n, &p, &r),
                        "{m} as {}",
                        m ^ 1
                    );
                }
                assert!(!verify_inclusion(&leaf, n, n, &p, &r));
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert_ne!(bad[0], *first);
                    assert!(!verify_inclusion(&leaf, m, n, &bad, &r));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_to_size_40_verifies_and_a_rewritten_history_does_not() {
        let all = leaves(40);
        for n in 1..=40u64 {
            let rn = root(&all, n).unwrap();
            for m in 1..=n {
                let rm = root(&all, m).unwrap();
                let p = consistency_proof(&all, m, n).unwrap();
                assert!(verify_consistency(m, n, &rm, &rn, &p), "{m} → {n}");
                if m < n {
                    // The old tree with one event rewritten is not a prefix.
                    let mut forged = all.0.clone();
                    forged[0] = leaf_hash(b"rewritten");
                    let forged_rm = naive(&forged[..m as usize]);
                    assert!(!verify_consistency(m, n, &forged_rm, &rn, &p), "{m} → {n}");
                    // A truncated log claimed as a later size is not either.
                    assert!(!verify_consistency(m, n, &rm, &rm, &p));
                }
            }
        }
        assert!(!verify_consistency(
            0,
            5,
            &empty_root(),
            &root(&all, 5).unwrap(),
            &[]
        ));
    }

    #[test]
    fn appending_a_leaf_completes_the_subtrees_it_closes() {
        assert_eq!(completed_by(0).collect::<Vec<_>>(), vec![(0, 0)]);
        assert_eq!(completed_by(1).collect::<Vec<_>>(), vec![(0, 1), (1, 0)]);
        assert_eq!(completed_by(2).collect::<Vec<_>>(), vec![(0, 2)]);
        assert_eq!(
            completed_by(7).collect::<Vec<_>>(),
            vec![(0, 7), (1, 3), (2, 1), (3, 0)]
        );
        // Over 1,000 leaves, two hashes per leaf on average, and every
        // subtree a root needs has been completed by then.
        let n = 1000u64;
        let total: usize = (0..n).map(|i| completed_by(i).count()).sum();
        assert_eq!(total as u64, 2 * n - u64::from(n.count_ones()));
    }
}
