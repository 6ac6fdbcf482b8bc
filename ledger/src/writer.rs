//! The single writer: gathers concurrent write requests into one durable group commit, and
//! answers each only after that commit is on disk.
//!
//! A group commit is made durable by its write-ahead frame (or, when large, by a durable redb
//! commit). Its callers are answered as soon as the frame is synced; the redb transaction that
//! holds it stays open for the group commits that follow, and is committed when a reader needs
//! what was answered ([`Published::settle`], which wakes an idle writer), as soon as no request
//! waits while there are readers about, after a number of group commits or a time spent on them
//! ([`crate::Limits::shared_commit_group_commits_max`],
//! [`crate::Limits::shared_commit_micros_max`]), or when the ledger closes. Redb's commit (its
//! table roots, checksums and freed pages: on the order of 100 µs of CPU) is then paid once for
//! several group commits, and never while a caller waits for its answer.

use crate::error::{AppendError, StorageError};
use crate::event::*;
use crate::merkle::{Frontier, Hash};
use crate::staging::Staging;
use crate::stats::Counters;
use crate::store::Inner;
use crate::wal::Wal;
use redb::{Durability, WriteTransaction};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// What the writer has answered, and what readers of redb can see of it.
pub(crate) struct Published {
    /// The last position answered: durable in the write-ahead log, perhaps not yet in redb.
    answered: AtomicU64,
    /// The last position answered, for those who watch it.
    pub head: watch::Sender<Position>,
    /// A reader waits for what was answered to be committed in redb.
    wanted: AtomicBool,
    /// Reads begun (counted: the writer commits eagerly while there are readers about).
    reads: AtomicU64,
    /// Whether the writer has stopped: nothing more will become visible.
    stopped: AtomicBool,
    visible: Mutex<Position>,
    committed: Condvar,
    /// Wakes an idle writer holding an open transaction (weak: it does not keep the writer's
    /// queue open once the ledger closes).
    wake: Mutex<Option<mpsc::WeakSender<Request>>>,
}

impl Published {
    pub(crate) fn new(head: Position) -> Self {
        Published {
            answered: AtomicU64::new(head),
            head: watch::channel(head).0,
            wanted: AtomicBool::new(false),
            reads: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            visible: Mutex::new(head),
            committed: Condvar::new(),
            wake: Mutex::new(None),
        }
    }

    /// The last position answered to a writer.
    pub(crate) fn answered(&self) -> Position {
        self.answered.load(Ordering::Acquire)
    }

    /// Writes up to `head` are answered: watchers of the head are told (what they read next
    /// waits for redb's commit, see [`Published::settle`]).
    pub(crate) fn answer(&self, head: Position) {
        if self.answered.swap(head, Ordering::AcqRel) != head {
            self.head.send_replace(head);
        }
    }

    /// Redb's committed state now holds everything up to `head`.
    pub(crate) fn made_visible(&self, head: Position) {
        // All under the lock: a reader between its check and its wait cannot miss the call.
        let mut visible = self.visible();
        *visible = head;
        self.wanted.store(false, Ordering::Relaxed);
        self.committed.notify_all();
    }

    /// The position only ever holds a number: a panic elsewhere cannot leave it half-written.
    fn visible(&self) -> MutexGuard<'_, Position> {
        self.visible.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Nothing more will become visible (the writer stopped): readers stop waiting for it.
    fn stop(&self) {
        let _guard = self.visible();
        self.stopped.store(true, Ordering::Release);
        self.committed.notify_all();
    }

    /// Waits until a read transaction begun now sees every write answered before this call
    /// (at most one group commit and redb's commit, only while appends are being answered).
    pub(crate) fn settle(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let answered = self.answered();
        let mut visible = self.visible();
        while *visible < answered && !self.stopped.load(Ordering::Acquire) {
            if !self.wanted.swap(true, Ordering::Relaxed) {
                // The writer commits when it finishes its group commit, or at once when idle:
                // a wake-up request tells it so (a full queue means it is busy anyway).
                let wake = self.wake.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(tx) = wake.as_ref().and_then(mpsc::WeakSender::upgrade) {
                    let (reply, _) = oneshot::channel();
                    let _ = tx.try_send(Request {
                        op: WriteOp::Publish,
                        reply,
                    });
                }
            }
            visible = self
                .committed
                .wait(visible)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

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
    /// A reader waits for answered commits to reach redb: the writer commits them now. Never
    /// staged (the writer takes it out of its group commit) and never answered.
    Publish,
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
    thread: Option<JoinHandle<Option<Wal>>>,
    thread_id: ThreadId,
}

impl Handle {
    /// Stops the writer after the requests already queued, and hands back its write-ahead log
    /// (none when the log must stay as it is, for the next open to replay).
    pub fn stop(mut self) -> Option<Wal> {
        self.tx.take();
        let t = self.thread.take()?;
        // Never called on the writer thread (it holds the ledger only while committing), but a
        // thread must not wait on itself whatever happens.
        if std::thread::current().id() == self.thread_id {
            return None;
        }
        t.join().ok().flatten()
    }
}

pub(crate) fn spawn(inner: Weak<Inner>, state: WriterState, wal: Wal) -> Handle {
    let (capacity, shared) = inner.upgrade().map_or((1, None), |i| {
        let shared = (i.published.clone(), i.stats.clone());
        (i.limits.write_queue_requests_max.max(1), Some(shared))
    });
    let shared = shared.unwrap_or_else(|| (Arc::new(Published::new(state.head)), Arc::default()));
    let (tx, rx) = mpsc::channel(capacity);
    *shared.0.wake.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx.downgrade());
    let thread = std::thread::Builder::new()
        .name("lifeline-writer".into())
        .spawn(move || run(inner, rx, state, wal, shared))
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

/// A redb transaction holding answered group commits, not yet committed. It keeps its
/// database open: should the writer hold the ledger's last handle when it lets go of it, the
/// ledger closes without waiting for the writer, and the database must outlive the commit.
pub(crate) struct Open {
    txn: WriteTransaction,
    batches: usize,
    since: Instant,
    _db: Arc<redb::Database>,
}

fn run(
    weak: Weak<Inner>,
    mut rx: mpsc::Receiver<Request>,
    mut state: WriterState,
    mut wal: Wal,
    (published, stats): (Arc<Published>, Arc<Counters>),
) -> Option<Wal> {
    let mut broken: Option<String> = None;
    // Whether redb lost answered commits (the write-ahead log must be kept for the next open).
    let mut keep_log = false;
    // However this thread ends (a panic too), readers waiting on it stop waiting.
    let _stopped = StopOnExit(&published);
    let mut open: Option<Open> = None;
    let mut reads_seen = 0;
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
        batch.retain(|r| !matches!(r.op, WriteOp::Publish));
        if let Some(why) = &broken {
            for r in batch {
                let _ = r
                    .reply
                    .send(Err(AppendError::Storage(StorageError(why.clone()))));
            }
            continue;
        }
        let (requests, head, began) = (batch.len(), state.head, Instant::now());
        let (answers, stop) = if batch.is_empty() {
            (Vec::new(), None)
        } else {
            let done = commit_batch(&inner, &mut state, batch, &mut wal, &mut open);
            inner
                .stats
                .committed(requests, state.head - head, began.elapsed());
            done
        };
        if let Some(stop) = stop {
            halt(stop, &mut broken, &mut keep_log, &published);
        }
        // Let go of the ledger before answering: whoever drops the last handle after its
        // answer then closes the file there and then (after this thread commits what is open).
        let limits = &inner.limits;
        let (share_max, share_for) = (
            limits.shared_commit_group_commits_max,
            Duration::from_micros(limits.shared_commit_micros_max),
        );
        drop(inner);
        published.answer(state.head);
        for (reply, result) in answers {
            let _ = reply.send(result);
        }
        let Some(o) = &open else { continue };
        // While readers are about (reads since the last look), the transaction is committed as
        // soon as no request waits, so that they seldom wait; without them it stays open.
        let reads = published.reads.load(Ordering::Relaxed);
        let readers_about = reads != reads_seen;
        reads_seen = reads;
        if published.wanted.load(Ordering::Relaxed)
            || (readers_about && rx.is_empty())
            || o.batches >= share_max
            || o.since.elapsed() >= share_for
        {
            if let Err(stop) = commit_open(&mut open, &published, &stats, state.head) {
                halt(stop, &mut broken, &mut keep_log, &published);
            }
        }
    }
    keep_log |= commit_open(&mut open, &published, &stats, state.head).is_err();
    (!keep_log).then_some(wal)
}

/// The writer cannot go on: later requests are refused with `stop.why`; when redb lost answered
/// commits, readers stop waiting for them and the write-ahead log is kept for the next open.
fn halt(stop: Stop, broken: &mut Option<String>, keep_log: &mut bool, published: &Published) {
    if stop.lost_answered {
        *keep_log = true;
        published.stop();
    }
    *broken = Some(stop.why);
}

struct StopOnExit<'a>(&'a Published);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Commits the open redb transaction, if there is one, and makes what it holds visible. A
/// failure loses answered commits (they are in the write-ahead log).
fn commit_open(
    open: &mut Option<Open>,
    published: &Published,
    stats: &Counters,
    head: Position,
) -> Result<(), Stop> {
    let Some(o) = open.take() else { return Ok(()) };
    let began = Instant::now();
    match o.txn.commit() {
        Ok(()) => {
            stats.stored(began.elapsed());
            published.made_visible(head);
            Ok(())
        }
        Err(e) => Err(Stop {
            why: format!(
                "the writer stopped: redb could not commit what the write-ahead log holds \
                 ({e}); reopen the ledger, which replays the log"
            ),
            lost_answered: true,
        }),
    }
}

/// Makes everything committed so far durable in redb, and starts the write-ahead log's next
/// generation.
pub(crate) fn checkpoint(inner: &Inner, wal: &mut Wal) -> Result<(), StorageError> {
    if wal.len() == 0 {
        return Ok(());
    }
    make_durable(inner)?;
    wal.reset().map_err(|e| wal_error(wal, e))
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

/// Why the writer stops.
struct Stop {
    why: String,
    /// Redb lost group commits already answered: the write-ahead log must be kept.
    lost_answered: bool,
}

/// Commits one batch; returns the answers to send and, when the writer can no longer go on
/// safely (a commit failed and its write-ahead frame could not be taken back, or an open
/// transaction holding answered commits was lost), why.
fn commit_batch(
    inner: &Inner,
    state: &mut WriterState,
    batch: Vec<Request>,
    wal: &mut Wal,
    open: &mut Option<Open>,
) -> (Answers, Option<Stop>) {
    let (ops, replies): (Vec<WriteOp>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
    let answered_before = open.is_some();
    match try_commit(inner, state, ops, wal, false, open) {
        Ok((new_state, results)) => {
            *state = new_state;
            (replies.into_iter().zip(results).collect(), None)
        }
        Err(Failure { error, fatal }) => {
            // A frame that could not be taken back is replayed when the ledger is reopened:
            // the callers are told that their writes may then be kept after all.
            let told = if fatal {
                format!(
                    "{}; the write-ahead log could not take this commit back, so reopening the \
                     ledger may keep it: read the stream before writing again",
                    error.0
                )
            } else {
                error.0.clone()
            };
            let answers = replies
                .into_iter()
                .map(|r| (r, Err(AppendError::Storage(StorageError(told.clone())))))
                .collect();
            let stop = (fatal || answered_before).then(|| Stop {
                why: format!(
                    "the writer stopped after a storage failure it could not undo ({}); reopen \
                     the ledger",
                    error.0
                ),
                lost_answered: answered_before,
            });
            (answers, stop)
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

/// How a staged batch is to be committed.
enum Commit {
    /// Nothing to write.
    Nothing,
    /// Durable by a redb commit of its own (everything open before it included).
    Checkpoint,
    /// Durable by its write-ahead frame; redb's commit can wait.
    Logged,
}

/// Stages and commits `ops`. Small commits are made durable by the write-ahead log and left in
/// `open` for redb to commit later; large ones (and `durable`) by a checkpoint, which commits
/// whatever `open` held too. On failure `open` is gone (its commits are in the log).
pub(crate) fn try_commit(
    inner: &Inner,
    state: &WriterState,
    ops: Vec<WriteOp>,
    wal: &mut Wal,
    durable: bool,
    open: &mut Option<Open>,
) -> Result<(WriterState, Results), Failure> {
    let (mut txn, batches, since) = match open.take() {
        Some(o) => (o.txn, o.batches, o.since),
        None => {
            let mut txn = inner.db.begin_write()?;
            txn.set_two_phase_commit(true);
            // Made durable by the write-ahead log unless it turns out to be a checkpoint. Set
            // before the log's frame is written: every failure after the frame takes it back.
            txn.set_durability(Durability::None)
                .map_err(|e| StorageError(e.to_string()))?;
            (txn, 0, Instant::now())
        }
    };
    let (new_state, results, commit) = stage(inner, state, ops, wal, durable, &txn)?;
    match commit {
        Commit::Nothing if batches == 0 => txn.abort()?,
        Commit::Nothing | Commit::Logged => {
            let logged = matches!(commit, Commit::Logged);
            *open = Some(Open {
                txn,
                batches: batches + usize::from(logged),
                since,
                _db: inner.db.clone(),
            })
        }
        Commit::Checkpoint => {
            txn.set_durability(Durability::Immediate)
                .map_err(|e| StorageError(e.to_string()))?;
            txn.commit()?;
            inner.stats.checkpointed();
            inner.published.made_visible(new_state.head);
            // Everything is in redb now; a log not reset only holds frames replay passes over.
            let _ = wal.reset();
        }
    }
    Ok((new_state, results))
}

/// Stages `ops` in `txn` and writes them to its tables; for a commit made durable by the
/// write-ahead log, writes and syncs its frame too.
fn stage(
    inner: &Inner,
    state: &WriterState,
    ops: Vec<WriteOp>,
    wal: &mut Wal,
    durable: bool,
    txn: &WriteTransaction,
) -> Result<(WriterState, Results, Commit), Failure> {
    let now = inner.clock.now().0.max(state.last_recorded);
    let mut st = Staging::new(txn, &inner.limits, state.clone(), now)?;
    let results: Results = ops.into_iter().map(|op| st.apply(op)).collect();
    let segments = st.take_segments();
    let snapshots = st.flush_side(txn)?;
    if segments.is_empty() && !snapshots {
        return Ok((st.into_state(), results, Commit::Nothing));
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
        st.flush_tables(txn, &segments)?;
        return Ok((st.into_state(), results, Commit::Checkpoint));
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
    if let Err(error) = st.flush_tables(txn, &segments) {
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
    inner.stats.logged(wal_took);
    Ok((new_state, results, Commit::Logged))
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
    let (new_state, mut results) = try_commit(
        inner,
        state,
        vec![WriteOp::Import(records)],
        wal,
        true,
        &mut None,
    )
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
