//! RFC 9162-shaped Merkle tree over record hashes, with blake3 and leaf/node domain separation.
//!
//! Pure functions on bytes: nothing here touches storage, so a checkpoint, an inclusion proof or a
//! consistency proof can be checked anywhere with only this module.
//!
//! - leaf hash  = blake3(0x00 ‖ record hash)
//! - node hash  = blake3(0x01 ‖ left ‖ right)
//! - empty tree = blake3("")
//!
//! `MTH(D[n])` for `n > 1` splits at `k`, the largest power of two below `n`, exactly as RFC 9162 §2.1.1.

pub type Hash = [u8; 32];

pub fn leaf_hash(record_hash: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(record_hash);
    *h.finalize().as_bytes()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

pub fn empty_root() -> Hash {
    *blake3::hash(&[]).as_bytes()
}

/// Largest power of two strictly below `n` (`n >= 2`).
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Root of a list of leaf hashes, computed directly (for tests and small trees).
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// A source of the hashes of complete, aligned subtrees: `(level, index)` covers leaves
/// `index·2^level .. (index+1)·2^level`. Level 0 is a leaf hash.
pub trait Subtrees {
    type Error;
    fn complete(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// `MTH(D[start .. start+len])` for a range whose shape RFC 9162's recursion produces.
pub fn range_hash<S: Subtrees>(src: &mut S, start: u64, len: u64) -> Result<Hash, S::Error> {
    debug_assert!(len > 0);
    if len.is_power_of_two() && start % len == 0 {
        return src.complete(len.trailing_zeros(), start / len);
    }
    let k = split_point(len);
    let left = range_hash(src, start, k)?;
    let right = range_hash(src, start + k, len - k)?;
    Ok(node_hash(&left, &right))
}

/// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 9162 §2.1.3.1).
pub fn inclusion_path<S: Subtrees>(
    src: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut path = Vec::new();
    let (mut start, mut len, mut m) = (0u64, size, index);
    let mut rev = Vec::new();
    while len > 1 {
        let k = split_point(len);
        if m < k {
            rev.push((start + k, len - k));
            len = k;
        } else {
            rev.push((start, k));
            start += k;
            m -= k;
            len -= k;
        }
    }
    // The RFC lists the deepest sibling first.
    for (s, l) in rev.into_iter().rev() {
        path.push(range_hash(src, s, l)?);
    }
    Ok(path)
}

/// Checks an audit path (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), String> {
    if index >= size {
        return Err(format!("leaf index {index} is not below tree size {size}"));
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return Err("the audit path is longer than the tree is deep".into());
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
        return Err("the audit path is shorter than the tree is deep".into());
    }
    if &r != root {
        return Err("the computed root differs from the checkpoint's root".into());
    }
    Ok(())
}

/// The consistency proof between the trees of the first `old` and the first `new` leaves
/// (RFC 9162 §2.1.4.1). `0 < old <= new`.
pub fn consistency_path<S: Subtrees>(
    src: &mut S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut rev = Vec::new();
    let (mut start, mut len, mut m, mut whole) = (0u64, new, old, true);
    while m != len {
        let k = split_point(len);
        if m <= k {
            rev.push((start + k, len - k));
            len = k;
        } else {
            rev.push((start, k));
            start += k;
            len -= k;
            m -= k;
            whole = false;
        }
    }
    let mut path = Vec::new();
    if !whole {
        path.push(range_hash(src, start, len)?);
    }
    for (s, l) in rev.into_iter().rev() {
        path.push(range_hash(src, s, l)?);
    }
    Ok(path)
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), String> {
    if old > new {
        return Err(format!("old size {old} is larger than new size {new}"));
    }
    if old == new {
        if !proof.is_empty() {
            return Err("a proof between equal sizes must be empty".into());
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err("equal sizes but different roots".into())
        };
    }
    if old == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err("a proof from the empty tree must be empty".into())
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err("the proof is empty".into());
    };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err("the proof is longer than the tree is deep".into());
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
        return Err("the proof is shorter than the tree is deep".into());
    }
    if &fr != old_root {
        return Err("the proof does not lead to the old root".into());
    }
    if &sr != new_root {
        return Err("the proof does not lead to the new root".into());
    }
    Ok(())
}

/// The right edge of a growing tree: for each set bit of `size`, the root of that complete
/// subtree. Appending a leaf yields the complete subtrees it closes, so a store can keep them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `nodes[level]` is the pending complete subtree at that level, if bit `level` of size is set.
    nodes: Vec<Option<Hash>>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Builds the frontier of a tree of `size` leaves from its complete subtrees.
    pub fn from_source<S: Subtrees>(src: &mut S, size: u64) -> Result<Self, S::Error> {
        let mut nodes = vec![None; 64];
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                nodes[level as usize] = Some(src.complete(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(Frontier { size, nodes })
    }

    /// Adds a leaf; calls `closed(level, index, hash)` for every complete subtree of level >= 1
    /// the leaf completes.
    pub fn push(&mut self, leaf: Hash, mut closed: impl FnMut(u32, u64, &Hash)) {
        if self.nodes.is_empty() {
            self.nodes = vec![None; 64];
        }
        let mut carry = leaf;
        let mut level = 0usize;
        let mut index = self.size;
        while let Some(left) = self.nodes[level].take() {
            carry = node_hash(&left, &carry);
            level += 1;
            index >>= 1;
            closed(level as u32, index, &carry);
        }
        self.nodes[level] = Some(carry);
        self.size += 1;
    }

    pub fn root(&self) -> Hash {
        let mut acc: Option<Hash> = None;
        for node in self.nodes.iter().flatten() {
            acc = Some(match acc {
                None => *node,
                Some(right) => node_hash(node, &right),
            });
        }
        acc.unwrap_or_else(empty_root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Leaves(Vec<Hash>);
    impl Subtrees for Leaves {
        type Error = ();
        fn complete(&mut self, level: u32, index: u64) -> Result<Hash, ()> {
            let w = 1usize << level;
            let s = index as usize * w;
            Ok(root_of(&self.0[s..s + w]))
        }
    }

    fn leaves(n: usize) -> Leaves {
        Leaves(
            (0..n)
                .map(|i| leaf_hash(blake3::hash(&i.to_le_bytes()).as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn frontier_root_matches_direct_root() {
        for n in 0..70 {
            let l = leaves(n);
            let mut f = Frontier::default();
            for h in &l.0 {
                f.push(*h, |_, _, _| {});
            }
            assert_eq!(f.root(), root_of(&l.0), "size {n}");
            let mut src = leaves(n);
            assert_eq!(Frontier::from_source(&mut src, n as u64).unwrap(), {
                let mut g = f.clone();
                g.nodes.resize(64, None);
                g
            });
        }
    }

    #[test]
    fn frontier_reports_closed_subtrees() {
        let l = leaves(16);
        let mut f = Frontier::default();
        let mut closed = Vec::new();
        for h in &l.0 {
            f.push(*h, |lv, i, h| closed.push((lv, i, *h)));
        }
        assert_eq!(closed.len(), 15);
        let mut src = leaves(16);
        for (lv, i, h) in closed {
            assert_eq!(src.complete(lv, i).unwrap(), h);
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_wrong_ones_do_not() {
        for n in 1..40u64 {
            let mut src = leaves(n as usize);
            let root = root_of(&src.0);
            for i in 0..n {
                let path = inclusion_path(&mut src, i, n).unwrap();
                let leaf = src.0[i as usize];
                verify_inclusion(&leaf, i, n, &path, &root).unwrap();
                if n > 1 {
                    let other = (i + 1) % n;
                    assert!(verify_inclusion(&leaf, other, n, &path, &root).is_err());
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies() {
        let all = leaves(40);
        for new in 1..40u64 {
            let new_root = root_of(&all.0[..new as usize]);
            for old in 1..=new {
                let old_root = root_of(&all.0[..old as usize]);
                let mut src = Leaves(all.0[..new as usize].to_vec());
                let proof = consistency_path(&mut src, old, new).unwrap();
                verify_consistency(old, new, &old_root, &new_root, &proof)
                    .unwrap_or_else(|e| panic!("{old}->{new}: {e}"));
                if old < new {
                    let wrong = root_of(&all.0[1..old as usize + 1]);
                    assert!(verify_consistency(old, new, &wrong, &new_root, &proof).is_err());
                }
            }
        }
    }
}
