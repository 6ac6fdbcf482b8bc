//! Inclusion and consistency proofs: made from the ledger, checked from bytes alone.

use crate::error::{ProofError, ReadError};
use crate::event::{Position, RecordedEvent};
use crate::merkle::{self, Hash};
use crate::record::{chain_hash, decode_body};
use crate::store::{Checkpoint, Ledger};
use serde::{Deserialize, Serialize};

/// Proof that the event at `position` is the `position`-th leaf of the tree of `tree_size`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub position: Position,
    pub tree_size: u64,
    /// The chain hash of the record before (zeros for position 1).
    #[serde(with = "crate::hex32")]
    pub prev_hash: Hash,
    /// The record's canonical bytes (schema/ledger-format.md).
    #[serde(with = "crate::hexbytes")]
    pub record: Vec<u8>,
    #[serde(with = "crate::hex32")]
    pub record_hash: Hash,
    /// Audit path, deepest sibling first (RFC 9162 §2.1.3).
    #[serde(with = "crate::hex32s")]
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Checks the proof against a checkpoint of the same size; needs no ledger.
    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<RecordedEvent, ProofError> {
        if checkpoint.size != self.tree_size {
            return Err(ProofError::Invalid(format!(
                "the proof is for a tree of {} events, the checkpoint covers {}",
                self.tree_size, checkpoint.size
            )));
        }
        if chain_hash(&self.prev_hash, &self.record) != self.record_hash {
            return Err(ProofError::Invalid(
                "record hash differs from blake3(previous hash ‖ record)".into(),
            ));
        }
        let body = decode_body(&self.record).map_err(ProofError::Invalid)?;
        if body.position != self.position || self.position == 0 {
            return Err(ProofError::Invalid(format!(
                "the record is at position {}, the proof says {}",
                body.position, self.position
            )));
        }
        merkle::verify_inclusion(
            &merkle::leaf_hash(&self.record_hash),
            self.position - 1,
            self.tree_size,
            &self.path,
            &checkpoint.root,
        )
        .map_err(ProofError::Invalid)?;
        Ok(body.to_event(self.record_hash))
    }
}

/// Proof that the tree of `new_size` extends the tree of `old_size`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    #[serde(with = "crate::hex32s")]
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    pub fn verify(&self, old: &Checkpoint, new: &Checkpoint) -> Result<(), ProofError> {
        if old.size != self.old_size || new.size != self.new_size {
            return Err(ProofError::Invalid(format!(
                "the proof is from {} to {} events, the checkpoints are {} and {}",
                self.old_size, self.new_size, old.size, new.size
            )));
        }
        merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &self.path)
            .map_err(ProofError::Invalid)
    }
}

impl Ledger {
    fn sized(&self, size: Option<u64>) -> Result<(redb::ReadTransaction, u64), ProofError> {
        let txn = self.read_txn().map_err(ReadError::from)?;
        let last = Ledger::tree_reader(&txn)?.size()?;
        let size = size.unwrap_or(last);
        if size > last {
            return Err(ProofError::SizeTooLarge { size, last });
        }
        Ok((txn, size))
    }

    /// The checkpoint of the first `size` events (all of them when `None`).
    pub fn checkpoint_at(&self, size: Option<u64>) -> Result<Checkpoint, ProofError> {
        let (txn, size) = self.sized(size)?;
        Ok(crate::store::checkpoint_of(&txn, size)?)
    }

    /// Proves the event at `position` is in the tree of `tree_size` events (default: all).
    pub fn prove_inclusion(
        &self,
        position: Position,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof, ProofError> {
        let (txn, size) = self.sized(tree_size)?;
        if position == 0 || position > size {
            return Err(ProofError::OutOfRange { position, size });
        }
        let mut tree = Ledger::tree_reader(&txn)?;
        let path = merkle::inclusion_path(&mut tree, position - 1, size)?;
        let (prev_hash, record, record_hash) = tree.segments.raw_owned(position)?;
        Ok(InclusionProof {
            position,
            tree_size: size,
            prev_hash,
            record,
            record_hash,
            path,
        })
    }

    /// Proves the tree of `new_size` events (default: all) extends that of `old_size`.
    pub fn prove_consistency(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<ConsistencyProof, ProofError> {
        let (txn, new) = self.sized(new_size)?;
        if old_size > new {
            return Err(ProofError::SizeTooLarge {
                size: old_size,
                last: new,
            });
        }
        let path = if old_size == 0 || old_size == new {
            Vec::new()
        } else {
            let mut tree = Ledger::tree_reader(&txn)?;
            merkle::consistency_path(&mut tree, old_size, new)?
        };
        Ok(ConsistencyProof {
            old_size,
            new_size: new,
            path,
        })
    }
}
