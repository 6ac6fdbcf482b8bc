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
        self.inner.published.settle();
        walk(&self.inner.db, self.head(), against, &mut progress)
    }
}

/// Segments handed to the record checker at a time.
const CHECK_BATCH_SEGMENTS: usize = 32;

/// The verification walk over a database, usable before the ledger is open. Two threads:
/// this one walks the segments and the Merkle tree over the stored hashes; a checker decodes
/// every record and recomputes the hash chain. The first problem is the lowest position either
/// names.
pub(crate) fn walk(
    db: &redb::Database,
    total: u64,
    against: Option<Checkpoint>,
    progress: &mut impl FnMut(u64, u64),
) -> Result<VerifyReport, ReadError> {
    let txn = db.begin_read().map_err(StorageError::from)?;
    let log = txn.open_table(LOG).map_err(StorageError::from)?;
    let merkle_t = txn.open_table(MERKLE).map_err(StorageError::from)?;
    let (to_checker, batches) = std::sync::mpsc::sync_channel::<Vec<(u64, Vec<u8>)>>(4);
    std::thread::scope(|scope| {
        let checker = scope.spawn(move || check_chain(batches));
        let walked = walk_tree(&log, &merkle_t, against, total, progress, to_checker);
        let chain_problem = checker.join().unwrap_or_else(|_| {
            Some(Problem {
                position: 1,
                reason: "the record checker failed".into(),
            })
        });
        let mut report = walked?;
        if let Some(p) = chain_problem {
            if report
                .problem
                .as_ref()
                .is_none_or(|q| p.position <= q.position)
            {
                report.events = p.position - 1;
                report.problem = Some(p);
            }
        }
        Ok(report)
    })
}

/// Decodes every record and checks `hash = blake3(prev ‖ body)`, in order.
fn check_chain(batches: std::sync::mpsc::Receiver<Vec<(u64, Vec<u8>)>>) -> Option<Problem> {
    let mut prev = [0u8; 32];
    for batch in batches {
        for (first, bytes) in &batch {
            for (i, raw) in segment_records(*first, bytes).enumerate() {
                // Damage to the segment's framing is the tree walk's to name.
                let Ok(raw) = raw else { break };
                let position = first + i as u64;
                if let Err(reason) = check_record(&prev, position, &raw) {
                    return Some(Problem { position, reason });
                }
                prev = raw.hash;
            }
        }
    }
    None
}

fn walk_tree(
    log: &redb::ReadOnlyTable<u64, &'static [u8]>,
    merkle_t: &redb::ReadOnlyTable<u64, &'static [u8; 32]>,
    against: Option<Checkpoint>,
    total: u64,
    progress: &mut impl FnMut(u64, u64),
    to_checker: std::sync::mpsc::SyncSender<Vec<(u64, Vec<u8>)>>,
) -> Result<VerifyReport, ReadError> {
    let mut frontier = Frontier::default();
    let mut expected = 1u64;
    let mut matches = None;
    let mut problem = None;
    let mut batch = Vec::with_capacity(CHECK_BATCH_SEGMENTS);
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
        batch.push((first, v.value().to_vec()));
        let (_, bytes) = batch.last().expect("pushed above");
        for raw in segment_records(first, bytes) {
            let raw = match raw {
                Ok(r) => r,
                Err((position, reason)) => {
                    problem = Some(Problem { position, reason });
                    break 'walk;
                }
            };
            let position = expected;
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
                // Named where it is found: at the leaf that completes the subtree.
                problem = Some(Problem {
                    position,
                    reason: format!(
                        "stored Merkle node (level {level}, index {index}) over positions \
                         {}–{position} is missing or wrong",
                        (index << level) + 1
                    ),
                });
                break 'walk;
            }
            expected += 1;
            if let Some(c) = against.filter(|c| c.size == frontier.size()) {
                matches = Some(frontier.root() == c.root);
            }
            if position % 65_536 == 0 {
                progress(position, total);
            }
        }
        if batch.len() == CHECK_BATCH_SEGMENTS
            && to_checker.send(std::mem::take(&mut batch)).is_err()
        {
            break; // the checker found a problem and stopped
        }
    }
    let _ = to_checker.send(batch);
    drop(to_checker);
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
