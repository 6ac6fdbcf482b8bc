//! The single writer: gathers concurrent write requests into one durable redb transaction
//! (group commit), and answers each only after that commit is on disk.

use crate::error::{AppendError, StorageError};
use crate::event::*;
use crate::merkle::{Frontier, Hash};
use crate::staging::Staging;
use crate::store::Inner;
use crate::wal::Wal;
use redb::Durability;
use std::sync::Weak;
use std::thread::{JoinHandle, ThreadId};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// What the writer carries from one commit to the next.
#[derive(Clone, Debug)]
pub(crate) struct WriterState {
    pub head: Position,
    pub last_hash: Hash,
    pub frontier: Frontier,
    pub last_recorded: i64,
    pub next_stream_id: u64,
    /// The last position the tag index covers.
    pub tags_watermark: Position,
}

/// One event of an import: written exactly as given, at exactly this revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRecord {
    pub stream: String,
    pub revision: Revision,
    pub event: ProposedEvent,
    /// The recorded time to keep (raised to the ledger's latest if earlier).
    pub recorded: Timestamp,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub written: u64,
    /// Records already in the ledger with the same id at the same revision.
    pub already_present: u64,
    pub last_position: Position,
}

pub(crate) enum WriteOp {
    Append {
        stream: String,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    },
    Delete {
        stream: String,
        expected: ExpectedRevision,
    },
    Tombstone {
        stream: String,
        expected: ExpectedRevision,
    },
    Import(Vec<ImportRecord>),
    Snapshot {
        position: Position,
        bytes: Vec<u8>,
    },
    /// Removes the snapshots stored at these positions (a cache: the log is not touched).
    DropSnapshots(Vec<Position>),
    Tags {
        tags: Vec<(String, Vec<Position>)>,
        up_to: Position,
    },
}

impl WriteOp {
    pub(crate) fn append(
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Self {
        WriteOp::Append {
            stream: stream.to_owned(),
            expected,
            events,
        }
    }

    pub(crate) fn delete(stream: &str, expected: ExpectedRevision) -> Self {
        WriteOp::Delete {
            stream: stream.to_owned(),
            expected,
        }
    }

    pub(crate) fn tombstone(stream: &str, expected: ExpectedRevision) -> Self {
        WriteOp::Tombstone {
            stream: stream.to_owned(),
            expected,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            WriteOp::Append { events, .. } => events.iter().map(ProposedEvent::size_bytes).sum(),
            WriteOp::Import(r) => r.iter().map(|r| r.event.size_bytes()).sum(),
            WriteOp::Snapshot { bytes, .. } => bytes.len(),
            WriteOp::Tags { tags, .. } => tags.iter().map(|(t, p)| t.len() + 8 * p.len()).sum(),
            _ => 0,
        }
    }
}

pub(crate) enum Outcome {
    Appended(AppendResult),
    Deleted(Position),
    Imported(ImportSummary),
    Stored,
}

pub(crate) struct Request {
    pub(crate) op: WriteOp,
    pub(crate) reply: oneshot::Sender<Result<Outcome, AppendError>>,
}

pub(crate) struct Handle {
    pub(crate) tx: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<Wal>>,
    thread_id: ThreadId,
}

impl Handle {
    /// Stops the writer after the requests already queued, and hands back its write-ahead log.
    pub fn stop(mut self) -> Option<Wal> {
        self.tx.take();
        let t = self.thread.take()?;
        // Never called on the writer thread (it holds the ledger only while committing), but a
        // thread must not wait on itself whatever happens.
        if std::thread::current().id() == self.thread_id {
            return None;
        }
        t.join().ok()
    }
}

pub(crate) fn spawn(inner: Weak<Inner>, state: WriterState, wal: Wal) -> Handle {
    let capacity = inner
        .upgrade()
        .map_or(1, |i| i.limits.write_queue_requests_max.max(1));
    let (tx, rx) = mpsc::channel(capacity);
    let thread = std::thread::Builder::new()
        .name("lifeline-writer".into())
        .spawn(move || run(inner, rx, state, wal))
        .expect("spawning the writer thread");
    let thread_id = thread.thread().id();
    Handle {
        tx: Some(tx),
        thread: Some(thread),
        thread_id,
    }
}

/// Answers to send once the commit is done and the ledger let go.
type Answers = Vec<(
    oneshot::Sender<Result<Outcome, AppendError>>,
    Result<Outcome, AppendError>,
)>;

fn run(
    weak: Weak<Inner>,
    mut rx: mpsc::Receiver<Request>,
    mut state: WriterState,
    mut wal: Wal,
) -> Wal {
    let mut broken: Option<String> = None;
    while let Some(first) = rx.blocking_recv() {
        let Some(inner) = weak.upgrade() else { break };
        let mut bytes = first.op.bytes();
        let mut batch = vec![first];
        while batch.len() < inner.limits.commit_requests_max
            && bytes < inner.limits.commit_bytes_max
        {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += r.op.bytes();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        if let Some(why) = &broken {
            for r in batch {
                let _ = r
                    .reply
                    .send(Err(AppendError::Storage(StorageError(why.clone()))));
            }
            continue;
        }
        let (requests, head, began) = (batch.len(), state.head, Instant::now());
        let (answers, stop) = commit_batch(&inner, &mut state, batch, &mut wal);
        inner
            .stats
            .committed(requests, state.head - head, began.elapsed());
        if let Some(why) = stop {
            broken = Some(why);
        }
        // Let go of the ledger before answering: whoever drops the last handle after its
        // answer then closes the file there and then.
        drop(inner);
        for (reply, result) in answers {
            let _ = reply.send(result);
        }
    }
    wal
}

/// Makes everything committed so far durable in redb, and starts the write-ahead log's next
/// generation.
pub(crate) fn checkpoint(inner: &Inner, wal: &mut Wal) -> Result<(), StorageError> {
    if wal.len() == 0 {
        return Ok(());
    }
    make_durable(inner)?;
    wal.reset()
        .map_err(|e| StorageError(format!("{}: {e}", wal.path().display())))
}

/// A durable two-phase redb commit of nothing: everything committed before it is safe in redb.
pub(crate) fn make_durable(inner: &Inner) -> Result<(), StorageError> {
    let mut txn = inner.db.begin_write()?;
    txn.set_two_phase_commit(true);
    txn.set_durability(Durability::Immediate)
        .map_err(|e| StorageError(e.to_string()))?;
    txn.commit()?;
    inner.stats.checkpointed();
    Ok(())
}

/// Commits one batch; returns the answers to send and, when the writer can no longer go on
/// safely (a commit failed and its write-ahead frame could not be taken back), why.
fn commit_batch(
    inner: &Inner,
    state: &mut WriterState,
    batch: Vec<Request>,
    wal: &mut Wal,
) -> (Answers, Option<String>) {
    let (ops, replies): (Vec<WriteOp>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
    match try_commit(inner, state, ops, wal, false) {
        Ok((new_state, results)) => {
            let moved = new_state.head != state.head;
            *state = new_state;
            if moved {
                inner.head.send_replace(state.head);
            }
            (replies.into_iter().zip(results).collect(), None)
        }
        Err(Failure { error, fatal }) => {
            let answers = replies
                .into_iter()
                .map(|r| (r, Err(AppendError::Storage(StorageError(error.0.clone())))))
                .collect();
            let why = fatal.then(|| {
                format!(
                    "the writer stopped after a storage failure it could not undo ({}); reopen \
                     the ledger",
                    error.0
                )
            });
            (answers, why)
        }
    }
}

type Results = Vec<Result<Outcome, AppendError>>;

pub(crate) struct Failure {
    pub error: StorageError,
    /// The write-ahead log may hold a frame of this failed commit.
    pub fatal: bool,
}

impl<E: Into<StorageError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            error: e.into(),
            fatal: false,
        }
    }
}

/// Stages and commits `ops`. Small commits are made durable by the write-ahead log; large
/// ones (and `durable`) by a checkpoint.
pub(crate) fn try_commit(
    inner: &Inner,
    state: &WriterState,
    ops: Vec<WriteOp>,
    wal: &mut Wal,
    durable: bool,
) -> Result<(WriterState, Results), Failure> {
    let mut txn = inner.db.begin_write()?;
    txn.set_two_phase_commit(true);
    // Made durable by the write-ahead log unless it turns out to be a checkpoint (below). Set
    // before the log's frame is written: every failure after the frame takes the frame back.
    txn.set_durability(Durability::None)
        .map_err(|e| StorageError(e.to_string()))?;
    let now = inner.clock.now().0.max(state.last_recorded);
    let mut st = Staging::new(&txn, &inner.limits, state.clone(), now)?;
    let results: Results = ops.into_iter().map(|op| st.apply(op)).collect();
    let segments = st.take_segments();
    let snapshots = st.flush_side(&txn)?;
    if segments.is_empty() && !snapshots {
        let new_state = st.into_state();
        txn.abort()?;
        return Ok((new_state, results));
    }
    let bytes: u64 = segments.iter().map(|(_, s)| s.len() as u64).sum();
    let limits = &inner.limits;
    // Snapshots and tags are not in the write-ahead log: a commit that stores them is a
    // checkpoint.
    if durable
        || snapshots
        || bytes >= limits.wal_direct_commit_bytes
        || wal.len() + bytes > limits.wal_checkpoint_bytes
    {
        st.flush_tables(&txn, &segments)?;
        let new_state = st.into_state();
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StorageError(e.to_string()))?;
        txn.commit()?;
        inner.stats.checkpointed();
        // Everything is in redb now; a log not reset only holds frames replay passes over.
        let _ = wal.reset();
        return Ok((new_state, results));
    }
    let began = Instant::now();
    let mark = match wal.write(&segments) {
        Ok(mark) => mark,
        Err(failed) => {
            return Err(Failure {
                error: wal_error(wal, failed.error),
                fatal: failed.left_behind,
            })
        }
    };
    let mut wal_took = began.elapsed();
    // The frame is on its way to disk while the tables are written; a failure from here on
    // takes it back, and when that fails too the writer stops.
    if let Err(error) = st.flush_tables(&txn, &segments) {
        let fatal = wal.take_back(mark).is_err();
        return Err(Failure { error, fatal });
    }
    let new_state = st.into_state();
    let waited = Instant::now();
    if let Err(e) = wal.sync() {
        let fatal = wal.take_back(mark).is_err();
        return Err(Failure {
            error: wal_error(wal, e),
            fatal,
        });
    }
    wal_took += waited.elapsed();
    if let Err(e) = txn.commit() {
        let fatal = wal.take_back(mark).is_err();
        return Err(Failure {
            error: e.into(),
            fatal,
        });
    }
    inner.stats.logged(wal_took);
    Ok((new_state, results))
}

fn wal_error(wal: &Wal, e: std::io::Error) -> StorageError {
    StorageError(format!("{}: {e}", wal.path().display()))
}

/// Writes the write-ahead log's records past `state.head` into redb with a durable commit,
/// checking they come out with the very hashes they had; then empties the log.
pub(crate) fn replay(
    inner: &Inner,
    state: &mut WriterState,
    frames: Vec<crate::wal::Frame>,
    wal: &mut Wal,
) -> Result<u64, (Position, String)> {
    let mut records = Vec::new();
    let mut expected_hash = None;
    let mut next = state.head + 1;
    for (first, seg) in frames.into_iter().flatten() {
        if first < next {
            continue; // already in redb
        }
        if first != next {
            return Err((
                next,
                format!("the write-ahead log jumps to position {first}"),
            ));
        }
        for (i, raw) in crate::record::segment_records(first, &seg).enumerate() {
            let raw = raw?;
            let position = first + i as u64;
            let body = crate::record::decode_at(raw.body, position).map_err(|r| (position, r))?;
            records.push(ImportRecord {
                stream: body.stream.to_owned(),
                revision: body.revision,
                recorded: Timestamp(body.recorded_ns),
                event: body.to_proposed(),
            });
            expected_hash = Some((position, raw.hash));
            next = position + 1;
        }
    }
    let Some((last, hash)) = expected_hash else {
        checkpoint(inner, wal).map_err(|e| (state.head, e.0))?;
        return Ok(0);
    };
    let n = records.len() as u64;
    let (new_state, mut results) =
        try_commit(inner, state, vec![WriteOp::Import(records)], wal, true)
            .map_err(|f| (state.head + 1, f.error.0))?;
    match results.pop() {
        Some(Ok(Outcome::Imported(s))) if s.written == n => {}
        Some(Err(e)) => {
            return Err((
                state.head + 1,
                format!("replaying the write-ahead log: {e}"),
            ))
        }
        _ => {
            return Err((
                state.head + 1,
                "replaying the write-ahead log wrote too little".into(),
            ))
        }
    }
    if new_state.head != last || new_state.last_hash != hash {
        return Err((
            last,
            "replaying the write-ahead log gave other hashes than it recorded".into(),
        ));
    }
    *state = new_state;
    Ok(n)
}
