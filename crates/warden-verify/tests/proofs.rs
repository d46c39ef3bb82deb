//! Property tests of the Merkle proofs: any log and any earlier checkpoint of it are
//! consistent; any rewrite of what the checkpoint covered is not.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use warden_verify::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
};
use warden_verify::Frontier;

fn log(entries: &[Vec<u8>]) -> Vec<[u8; 32]> {
    entries.iter().map(|e| leaf_hash(e)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_log_extends_any_earlier_checkpoint(
        entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..300),
        cut in any::<prop::sample::Index>(),
    ) {
        let leaves = log(&entries);
        let n = leaves.len() as u64;
        let m = cut.index(leaves.len() + 1) as u64;
        let old_root = root(&leaves[..m as usize]);
        // The incremental right edge gives the same roots.
        prop_assert_eq!(Frontier::from_leaves(&leaves[..m as usize]).root(), old_root);
        let proof = consistency_proof(&leaves, m).unwrap();
        prop_assert!(verify_consistency(m, n, &old_root, &root(&leaves), &proof).is_ok());
    }

    #[test]
    fn any_rewrite_of_a_checkpointed_record_fails(
        entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 2..300),
        cut in any::<prop::sample::Index>(),
        victim in any::<prop::sample::Index>(),
        flip in any::<u8>(),
        grow in 0usize..20,
    ) {
        let leaves = log(&entries);
        let m = 1 + cut.index(leaves.len() - 1);
        let old_root = root(&leaves[..m]);
        // Rewrite one record the checkpoint covered (a change of its bytes), recompute
        // everything after it, perhaps append more: no proof from the new tree convinces.
        let v = victim.index(m);
        let mut rewritten = entries.clone();
        rewritten[v].push(flip);
        rewritten.extend((0..grow).map(|i| vec![i as u8; 3]));
        let new_leaves = log(&rewritten);
        let n = new_leaves.len() as u64;
        let proof = consistency_proof(&new_leaves, m as u64).unwrap();
        prop_assert!(verify_consistency(m as u64, n, &old_root, &root(&new_leaves), &proof).is_err());
        // And the rewritten record is not included in the old tree.
        let p = inclusion_proof(&new_leaves[..m], v as u64).unwrap();
        prop_assert!(verify_inclusion(v as u64, m as u64, &new_leaves[v], &p, &old_root).is_err());
    }

    #[test]
    fn truncating_and_regrowing_the_log_fails(
        entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 2..200),
        cut in any::<prop::sample::Index>(),
        drop in 1usize..10,
    ) {
        // Checkpoint at m, then drop the last `drop` records it covered and append others
        // until the log is as long as before.
        let leaves = log(&entries);
        let m = 1 + cut.index(leaves.len() - 1);
        let old_root = root(&leaves[..m]);
        let keep = m.saturating_sub(drop);
        let mut regrown: Vec<Vec<u8>> = entries[..keep].to_vec();
        while regrown.len() < entries.len() {
            regrown.push(format!("replacement {}", regrown.len()).into_bytes());
        }
        let new_leaves = log(&regrown);
        let proof = consistency_proof(&new_leaves, m as u64).unwrap();
        prop_assert!(
            verify_consistency(m as u64, new_leaves.len() as u64, &old_root, &root(&new_leaves), &proof).is_err()
        );
    }
}
