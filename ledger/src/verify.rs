//! Walks the whole log: the hash chain, the positions, and the stored Merkle nodes.
//! A problem found is a finding in the report, not an error.

use crate::error::{ReadError, StorageError};
use crate::merkle::{self, Frontier};
use crate::record::{check_record, segment_records};
use crate::store::{Checkpoint, Ledger};
use crate::tables::*;
use redb::{ReadableDatabase, ReadableTable};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The first position that does not verify.
    pub position: u64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events verified (all of them when there is no problem).
    pub events: u64,
    /// The checkpoint over the events verified.
    pub checkpoint: Checkpoint,
    pub problem: Option<Problem>,
    /// When a checkpoint was given: whether the log still begins with exactly those events.
    pub matches_checkpoint: Option<bool>,
}

impl Ledger {
    /// Verifies every record; `progress(done, total)` is called every few thousand events.
    pub fn verify(
        &self,
        against: Option<Checkpoint>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<VerifyReport, ReadError> {
        walk(&self.inner.db, self.head(), against, &mut progress)
    }
}

/// The verification walk over a database, usable before the ledger is open.
pub(crate) fn walk(
    db: &redb::Database,
    total: u64,
    against: Option<Checkpoint>,
    progress: &mut impl FnMut(u64, u64),
) -> Result<VerifyReport, ReadError> {
    {
        let txn = db.begin_read().map_err(StorageError::from)?;
        let log = txn.open_table(LOG).map_err(StorageError::from)?;
        let merkle_t = txn.open_table(MERKLE).map_err(StorageError::from)?;
        let mut frontier = Frontier::default();
        let mut prev = [0u8; 32];
        let mut expected = 1u64;
        let mut matches = None;
        let mut problem = None;
        'walk: for item in log.iter().map_err(StorageError::from)? {
            let (k, v) = item.map_err(StorageError::from)?;
            let first = k.value();
            if first != expected {
                problem = Some(Problem {
                    position: expected.min(first),
                    reason: format!("the log jumps from position {expected} to {first}"),
                });
                break;
            }
            for raw in segment_records(first, v.value()) {
                let raw = match raw {
                    Ok(r) => r,
                    Err((position, reason)) => {
                        problem = Some(Problem { position, reason });
                        break 'walk;
                    }
                };
                let position = expected;
                if let Err(reason) = check_record(&prev, position, &raw) {
                    problem = Some(Problem { position, reason });
                    break 'walk;
                }
                let mut bad_node = None;
                frontier.push(merkle::leaf_hash(&raw.hash), |level, index, h| {
                    if level % STORED_LEVEL_STEP == 0 && bad_node.is_none() {
                        let stored = merkle_t.get(merkle_key(level, index)).ok().flatten();
                        if stored.map(|g| *g.value()) != Some(*h) {
                            bad_node = Some((level, index));
                        }
                    }
                });
                if let Some((level, index)) = bad_node {
                    let from = (index << level) + 1;
                    problem = Some(Problem {
                        position: from,
                        reason: format!(
                            "stored Merkle node (level {level}, index {index}) over positions \
                             {from}–{} is missing or wrong",
                            (index + 1) << level
                        ),
                    });
                    break 'walk;
                }
                prev = raw.hash;
                expected += 1;
                if let Some(c) = against.filter(|c| c.size == frontier.size()) {
                    matches = Some(frontier.root() == c.root);
                }
                if position % 65_536 == 0 {
                    progress(position, total);
                }
            }
        }
        if let (None, Some(c)) = (&matches, against) {
            if c.size == 0 {
                matches = Some(c.root == merkle::empty_root());
            } else if problem.is_none() {
                matches = Some(false);
            }
        }
        progress(expected - 1, total);
        Ok(VerifyReport {
            events: expected - 1,
            checkpoint: Checkpoint {
                size: frontier.size(),
                root: frontier.root(),
            },
            problem,
            matches_checkpoint: matches,
        })
    }
}
