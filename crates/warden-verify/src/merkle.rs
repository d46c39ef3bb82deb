//! RFC 6962 / RFC 9162 §2.1 Merkle tree hashes and proofs.
//!
//! - leaf hash: `SHA-256(0x00 || entry)`; interior node: `SHA-256(0x01 || left || right)`;
//!   the hash of an empty tree is `SHA-256("")`.
//! - `MTH(D[n])` splits `D` at `k`, the largest power of two smaller than `n`.
//! - inclusion proofs (`PATH`, RFC 9162 §2.1.3) and consistency proofs (`PROOF`/`SUBPROOF`,
//!   §2.1.4) are generated from the leaf hashes and verified with the algorithms of
//!   §2.1.3.2 and §2.1.4.2.
//!
//! [`Frontier`] keeps only the right edge of a growing tree (one hash per set bit of its size),
//! so a writer can extend the tree and take its root without rehashing old leaves.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// RFC 6962 leaf prefix.
const LEAF_PREFIX: u8 = 0x00;
/// RFC 6962 interior-node prefix.
const NODE_PREFIX: u8 = 0x01;

/// `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

fn split(leaves: &[Hash]) -> (&[Hash], &[Hash]) {
    let k = usize::try_from(split_point(leaves.len() as u64)).unwrap_or(0);
    leaves.split_at_checked(k).unwrap_or((leaves, &[]))
}

/// `MTH(D[n])` over leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let (l, r) = split(leaves);
            node_hash(&root(l), &root(r))
        }
    }
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// The index or sizes are outside the tree.
    OutOfRange(String),
    /// The proof has the wrong number of hashes for the sizes given.
    WrongLength,
    /// The proof does not lead to the expected root(s).
    Mismatch,
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutOfRange(what) => write!(f, "out of range: {what}"),
            Self::WrongLength => write!(f, "the proof has the wrong number of hashes"),
            Self::Mismatch => write!(f, "the proof does not lead to the expected root hash"),
        }
    }
}

impl std::error::Error for ProofError {}

/// Inclusion proof (`PATH(m, D[n])`, RFC 9162 §2.1.3.1) of leaf `index` in the tree of
/// `leaves`, deepest sibling first.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= leaves.len() as u64 {
        return Err(ProofError::OutOfRange(format!(
            "leaf {index} in a tree of {}",
            leaves.len()
        )));
    }
    let mut proof = Vec::new();
    path(leaves, index, &mut proof);
    Ok(proof)
}

fn path(leaves: &[Hash], m: u64, out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let (l, r) = split(leaves);
    let k = l.len() as u64;
    if m < k {
        path(l, m, out);
        out.push(root(r));
    } else {
        path(r, m - k, out);
        out.push(root(l));
    }
}

/// Verify an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root_hash: &Hash,
) -> Result<(), ProofError> {
    if index >= tree_size {
        return Err(ProofError::OutOfRange(format!(
            "leaf {index} in a tree of {tree_size}"
        )));
    }
    let mut fnode = index;
    let mut snode = tree_size - 1;
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root_hash {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// Consistency proof (`PROOF(m, D[n])`, RFC 9162 §2.1.4.1) that the tree of the first
/// `old_size` leaves is a prefix of the tree of all `leaves`. Empty when `old_size` is 0 or
/// the whole tree.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let n = leaves.len() as u64;
    if old_size > n {
        return Err(ProofError::OutOfRange(format!(
            "older size {old_size} is larger than the tree ({n})"
        )));
    }
    let mut proof = Vec::new();
    if old_size > 0 && old_size < n {
        subproof(old_size, leaves, true, &mut proof);
    }
    Ok(proof)
}

fn subproof(m: u64, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len() as u64;
    if m == n {
        if !whole {
            out.push(root(leaves));
        }
        return;
    }
    let (l, r) = split(leaves);
    let k = l.len() as u64;
    if m <= k {
        subproof(m, l, whole, out);
        out.push(root(r));
    } else {
        subproof(m - k, r, false, out);
        out.push(root(l));
    }
}

/// Verify a consistency proof (RFC 9162 §2.1.4.2): the tree of `old_size` leaves with root
/// `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OutOfRange(format!(
            "older size {old_size} is larger than the newer size {new_size}"
        )));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if old_size == 0 {
        // The empty tree is a prefix of every tree.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let mut fnode = old_size - 1;
    let mut snode = new_size - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest (leftmost)
/// first — one per set bit of the size. Appending a leaf costs one hash plus one per carry;
/// the root folds these from the right, so neither rehashes old leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuild from a stored size and its subtree roots; `None` when the count of hashes does
    /// not match the size.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { size, hashes })
    }

    /// The frontier of a whole list of leaves.
    pub fn from_leaves(leaves: &[Hash]) -> Self {
        let mut f = Self::new();
        for l in leaves {
            f.push(*l);
        }
        f
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, leftmost first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Append one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            match self.hashes.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break,
            }
            s >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// `MTH` of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::hex_encode;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn empty_tree_root_is_sha256_of_nothing() {
        assert_eq!(
            hex_encode(&root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// RFC 6962 test vectors as used by Certificate Transparency implementations: the eight
    /// leaves "", 0x00, 0x10, 0x2021, 0x3031, 0x40414243, 0x5051525354555657,
    /// 0x606162636465666768696a6b6c6d6e6f.
    #[test]
    fn roots_match_certificate_transparency_vectors() {
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
        let l: Vec<Hash> = inputs.iter().map(|d| leaf_hash(d)).collect();
        assert_eq!(
            hex_encode(&root(&l[..1])),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            hex_encode(&root(&l[..2])),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
        );
        assert_eq!(
            hex_encode(&root(&l[..3])),
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"
        );
        assert_eq!(
            hex_encode(&root(&l[..8])),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
    }

    #[test]
    fn frontier_root_equals_recursive_root_at_every_size() {
        let all = leaves(70);
        let mut f = Frontier::new();
        for n in 0..=70usize {
            assert_eq!(f.root(), root(&all[..n]), "size {n}");
            assert_eq!(f.hashes().len(), n.count_ones() as usize);
            let again = Frontier::from_parts(f.size(), f.hashes().to_vec()).unwrap();
            assert_eq!(again, f);
            if n < 70 {
                f.push(all[n]);
            }
        }
        assert!(Frontier::from_parts(3, vec![[0; 32]]).is_none());
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_wrong_one_does_not() {
        for n in 1..=33u64 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = inclusion_proof(&l, i).unwrap();
                verify_inclusion(i, n, &l[i as usize], &p, &r).unwrap();
                let other = leaf_hash(b"not in the tree");
                assert!(verify_inclusion(i, n, &other, &p, &r).is_err());
                if n > 1 {
                    assert!(verify_inclusion(i, n, &l[i as usize], &p[1..], &r).is_err());
                    let mut longer = p.clone();
                    longer.push(r);
                    assert!(verify_inclusion(i, n, &l[i as usize], &longer, &r).is_err());
                }
            }
            assert!(inclusion_proof(&l, n).is_err());
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_a_rewrite_does_not() {
        for n in 1..=33u64 {
            let l = leaves(n);
            let new_root = root(&l);
            for m in 0..=n {
                let old_root = root(&l[..m as usize]);
                let p = consistency_proof(&l, m).unwrap();
                verify_consistency(m, n, &old_root, &new_root, &p).unwrap();
                if m > 0 {
                    // The old tree had a different leaf: the same proof must fail.
                    let mut changed = l[..m as usize].to_vec();
                    changed[(m - 1) as usize] = leaf_hash(b"rewritten");
                    assert!(verify_consistency(m, n, &root(&changed), &new_root, &p).is_err());
                }
                if m > 0 && m < n {
                    assert!(verify_consistency(m, n, &old_root, &new_root, &p[1..]).is_err());
                }
            }
        }
    }
}
