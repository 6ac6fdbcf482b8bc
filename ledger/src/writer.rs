//! The single writer: gathers concurrent write requests into one durable redb transaction
//! (group commit), and answers each only after that commit is on disk.

use crate::error::{AppendError, StorageError};
use crate::event::*;
use crate::merkle::{self, Frontier, Hash};
use crate::record::{RecordBody, SegmentMark, SegmentWriter};
use crate::store::{load_stream, Inner, Ledger};
use crate::stream_meta;
use crate::tables::*;
use crate::wal::Wal;
use foldhash::HashMap;
use redb::{Durability, ReadableTable, Table, WriteTransaction};
use std::sync::Weak;
use std::thread::{JoinHandle, ThreadId};
use tokio::sync::{mpsc, oneshot};

/// What the writer carries from one commit to the next.
#[derive(Clone, Debug)]
pub(crate) struct WriterState {
    pub head: Position,
    pub last_hash: Hash,
    pub frontier: Frontier,
    pub last_recorded: i64,
    pub next_stream_id: u64,
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
    Tags {
        entries: Vec<(String, Position)>,
        up_to: Position,
    },
}

impl WriteOp {
    fn append(stream: &str, expected: ExpectedRevision, events: Vec<ProposedEvent>) -> Self {
        WriteOp::Append {
            stream: stream.to_owned(),
            expected,
            events,
        }
    }

    fn delete(stream: &str, expected: ExpectedRevision) -> Self {
        WriteOp::Delete {
            stream: stream.to_owned(),
            expected,
        }
    }

    fn tombstone(stream: &str, expected: ExpectedRevision) -> Self {
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
            WriteOp::Tags { entries, .. } => entries.iter().map(|(t, _)| t.len() + 8).sum(),
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

struct Request {
    op: WriteOp,
    reply: oneshot::Sender<Result<Outcome, AppendError>>,
}

pub(crate) struct Handle {
    tx: Option<mpsc::Sender<Request>>,
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
        let (answers, stop) = commit_batch(&inner, &mut state, batch, &mut wal);
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

/// Makes everything committed so far durable in redb, and empties the write-ahead log.
pub(crate) fn checkpoint(inner: &Inner, wal: &mut Wal) -> Result<(), StorageError> {
    if wal.len() == 0 {
        return Ok(());
    }
    let mut txn = inner.db.begin_write()?;
    txn.set_two_phase_commit(true);
    txn.set_durability(Durability::Immediate)
        .map_err(|e| StorageError(e.to_string()))?;
    txn.commit()?;
    wal.truncate_to(0)
        .map_err(|e| StorageError(format!("{}: {e}", wal.path().display())))
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
    let now = inner.clock.now().0.max(state.last_recorded);
    let (new_state, results, segments, snapshots) = {
        let mut st = Staging::new(&txn, &inner.limits, state.clone(), now)?;
        let results: Results = ops.into_iter().map(|op| st.apply(op)).collect();
        let segments = st.flush(&txn)?;
        let side = st.flush_side(&txn)?;
        (st.state, results, segments, side)
    };
    if segments.is_empty() && !snapshots {
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
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StorageError(e.to_string()))?;
        txn.commit()?;
        // Everything is in redb now; a log not emptied only holds frames replay passes over.
        let _ = wal.truncate_to(0);
        return Ok((new_state, results));
    }
    let mark = wal
        .append(&segments)
        .map_err(|e| StorageError(format!("{}: {e}", wal.path().display())))?;
    txn.set_durability(Durability::None)
        .map_err(|e| StorageError(e.to_string()))?;
    if let Err(e) = txn.commit() {
        let fatal = wal.truncate_to(mark).is_err();
        return Err(Failure {
            error: e.into(),
            fatal,
        });
    }
    Ok((new_state, results))
}

/// One commit being built: the stream records it touches and the index pieces it writes, over the
/// tables, and the records it writes.
struct Staging<'t> {
    limits: &'t crate::limits::Limits,
    streams_t: Table<'t, &'static str, &'static [u8]>,
    index_t: Table<'t, u128, &'static [u8]>,
    /// Streams touched by this commit: name, record, written since loaded.
    streams: Vec<(String, StreamRecord, bool)>,
    stream_slots: HashMap<String, usize>,
    /// Index pieces this commit writes: stream id → the piece and its stored length in bytes
    /// (non-zero when the commit extends the stream's last stored piece).
    pieces: HashMap<u64, (Piece, usize)>,
    segments: SegmentWriter,
    merkle_nodes: Vec<(u64, Hash)>,
    times: Vec<(i64, Position)>,
    state: WriterState,
    first_stream_id: u64,
    now: i64,
    /// What the operation being applied changed, to undo it if it fails.
    undo: Vec<Undo>,
    /// Snapshots to store (not part of the log).
    snapshots: Vec<(Position, Vec<u8>)>,
    /// Tag index entries to store, and the watermark they bring it to.
    tags: Vec<(String, Position)>,
    tags_up_to: Option<Position>,
}

enum Undo {
    Stream(usize, StreamRecord, bool),
    Piece(u64, usize),
}

/// Where the staging stood before an operation.
struct Mark {
    state: WriterState,
    segments: SegmentMark,
    merkle_nodes: usize,
    times: usize,
}

type Op<T> = Result<T, AppendError>;

impl<'t> Staging<'t> {
    fn new(
        txn: &'t WriteTransaction,
        limits: &'t crate::limits::Limits,
        state: WriterState,
        now: i64,
    ) -> Result<Self, StorageError> {
        Ok(Staging {
            limits,
            streams_t: txn.open_table(STREAMS)?,
            index_t: txn.open_table(STREAM_INDEX)?,
            streams: Vec::new(),
            stream_slots: HashMap::default(),
            pieces: HashMap::default(),
            segments: SegmentWriter::default(),
            merkle_nodes: Vec::new(),
            times: Vec::new(),
            first_stream_id: state.next_stream_id,
            state,
            now,
            undo: Vec::new(),
            snapshots: Vec::new(),
            tags: Vec::new(),
            tags_up_to: None,
        })
    }

    /// Applies one operation: all of it, or — when it fails — nothing of it.
    fn apply(&mut self, op: WriteOp) -> Result<Outcome, AppendError> {
        let mark = Mark {
            state: self.state.clone(),
            segments: self.segments.mark(),
            merkle_nodes: self.merkle_nodes.len(),
            times: self.times.len(),
        };
        let result = self.apply_op(op);
        if result.is_err() {
            self.rollback(mark);
        }
        self.undo.clear();
        result
    }

    fn rollback(&mut self, mark: Mark) {
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::Stream(slot, rec, dirty) => {
                    self.streams[slot].1 = rec;
                    self.streams[slot].2 = dirty;
                }
                Undo::Piece(stream_id, len) => {
                    if len == 0 {
                        self.pieces.remove(&stream_id);
                    } else if let Some((p, _)) = self.pieces.get_mut(&stream_id) {
                        p.bytes.truncate(len);
                    }
                }
            }
        }
        self.state = mark.state;
        self.segments.rollback(&mark.segments);
        self.merkle_nodes.truncate(mark.merkle_nodes);
        self.times.truncate(mark.times);
    }

    fn apply_op(&mut self, op: WriteOp) -> Result<Outcome, AppendError> {
        match op {
            WriteOp::Append {
                stream,
                expected,
                events,
            } => self
                .append(&stream, expected, &events)
                .map(Outcome::Appended),
            WriteOp::Delete { stream, expected } => {
                self.soft_delete(&stream, expected).map(Outcome::Deleted)
            }
            WriteOp::Tombstone { stream, expected } => {
                self.tombstone(&stream, expected).map(Outcome::Deleted)
            }
            WriteOp::Import(records) => self.import(&records).map(Outcome::Imported),
            WriteOp::Snapshot { position, bytes } => {
                if position > self.state.head {
                    return Err(AppendError::InvalidEvent {
                        id: EventId(uuid::Uuid::nil()),
                        reason: format!(
                            "a snapshot at position {position} is past the log's end ({})",
                            self.state.head
                        ),
                    });
                }
                if bytes.len() > self.limits.snapshot_bytes_max {
                    return Err(AppendError::AppendTooLarge {
                        size: bytes.len(),
                        max: self.limits.snapshot_bytes_max,
                    });
                }
                self.snapshots.push((position, bytes));
                Ok(Outcome::Stored)
            }
            WriteOp::Tags { entries, up_to } => {
                let beyond = entries.iter().map(|(_, p)| *p).chain([up_to]).max();
                if beyond.is_some_and(|p| p > self.state.head) {
                    return Err(AppendError::InvalidEvent {
                        id: EventId(uuid::Uuid::nil()),
                        reason: format!("tags past the log's end ({})", self.state.head),
                    });
                }
                self.tags.extend(entries);
                self.tags_up_to = Some(self.tags_up_to.unwrap_or(0).max(up_to));
                Ok(Outcome::Stored)
            }
        }
    }

    /// The slot of a stream in this commit's staging, loading it on first touch.
    fn slot(&mut self, name: &str) -> Op<usize> {
        if let Some(slot) = self.stream_slots.get(name) {
            return Ok(*slot);
        }
        let rec = load_stream(&self.streams_t, name)
            .map_err(|e| AppendError::Storage(StorageError(e.to_string())))?
            .unwrap_or_default();
        let slot = self.streams.len();
        self.streams.push((name.to_owned(), rec, false));
        self.stream_slots.insert(name.to_owned(), slot);
        Ok(slot)
    }

    fn stream(&mut self, name: &str) -> Op<StreamRecord> {
        let slot = self.slot(name)?;
        Ok(self.streams[slot].1.clone())
    }

    /// Gives a new stream its id (undone with the rest of the writer state on rollback).
    fn ensure_id(&mut self, rec: &mut StreamRecord) {
        if rec.id == 0 {
            rec.id = self.state.next_stream_id;
            self.state.next_stream_id += 1;
        }
    }

    fn put_stream(&mut self, name: &str, mut rec: StreamRecord) -> Op<()> {
        self.ensure_id(&mut rec);
        let slot = self.slot(name)?;
        let entry = &mut self.streams[slot];
        let before = std::mem::replace(&mut entry.1, rec);
        let dirty = std::mem::replace(&mut entry.2, true);
        self.undo.push(Undo::Stream(slot, before, dirty));
        Ok(())
    }

    fn entry(&mut self, stream_id: u64, revision: Revision) -> Op<Option<IndexEntry>> {
        if let Some((p, _)) = self.pieces.get(&stream_id) {
            if revision >= p.first {
                return Ok(p.get(revision));
            }
        }
        let stored = piece_at(&self.index_t, stream_id, revision).map_err(StorageError::from)?;
        Ok(stored.and_then(|p| p.get(revision)))
    }

    /// The piece a commit's first write to a stream goes into: the stream's last stored piece
    /// when it is short and ends just before `revision`, else a new one.
    fn last_short_piece(&mut self, stream_id: u64, revision: Revision) -> Op<Piece> {
        if let Some(before) = revision.checked_sub(1) {
            let last = piece_at(&self.index_t, stream_id, before).map_err(StorageError::from)?;
            if let Some(p) = last.filter(|p| p.len() < PIECE_MERGE_ENTRIES) {
                if p.first + p.len() == revision {
                    return Ok(p);
                }
            }
        }
        Ok(Piece {
            first: revision,
            bytes: Vec::new(),
        })
    }

    /// At least the last [`IDEMPOTENCY_WINDOW_EVENTS`] index entries of a stream, last first.
    fn recent_entries(&mut self, stream_id: u64, current: Revision) -> Op<Vec<(u64, IndexEntry)>> {
        let mut out = Vec::new();
        let mut before = current + 1;
        if let Some((p, _)) = self.pieces.get(&stream_id) {
            out.extend(p.rev_entries());
            before = p.first;
        }
        let window_start = (current + 1).saturating_sub(IDEMPOTENCY_WINDOW_EVENTS);
        if before > window_start {
            for piece in
                pieces_before(&self.index_t, stream_id, before).map_err(StorageError::from)?
            {
                let piece = piece.map_err(StorageError::from)?;
                out.extend(piece.rev_entries());
                if piece.first <= window_start {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Writes one record; returns its position. The caller updates the stream record.
    fn write(
        &mut self,
        stream: &str,
        stream_id: u64,
        revision: Revision,
        event: &ProposedEvent,
        recorded: i64,
    ) -> Op<Position> {
        let position = self.state.head + 1;
        let body = RecordBody {
            position,
            stream,
            revision,
            event_id: *event.id.as_bytes(),
            event_type: &event.event_type,
            is_json: u8::from(event.content_type == ContentType::Json),
            data: &event.data,
            metadata: &event.metadata,
            recorded_ns: recorded,
            occurred_ns: event.occurred.map_or(recorded, |t| t.0),
        };
        let hash = self.segments.push(&body, &self.state.last_hash);
        self.state.last_hash = hash;
        self.state.head = position;
        let nodes = &mut self.merkle_nodes;
        self.state
            .frontier
            .push(merkle::leaf_hash(&hash), |level, index, h| {
                if level % STORED_LEVEL_STEP == 0 {
                    nodes.push((merkle_key(level, index), *h));
                }
            });
        if recorded > self.state.last_recorded {
            self.times.push((recorded, position));
            self.state.last_recorded = recorded;
        }
        if revision != TOMBSTONE_REVISION {
            if !self.pieces.contains_key(&stream_id) {
                let piece = self.last_short_piece(stream_id, revision)?;
                let stored = piece.bytes.len();
                self.pieces.insert(stream_id, (piece, stored));
            }
            let (piece, _) = self.pieces.get_mut(&stream_id).expect("inserted above");
            debug_assert_eq!(piece.first + piece.len(), revision);
            self.undo.push(Undo::Piece(stream_id, piece.bytes.len()));
            piece.push(IndexEntry {
                position,
                event_id: *event.id.as_bytes(),
            });
        }
        Ok(position)
    }

    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedRevision,
        events: &[ProposedEvent],
    ) -> Op<AppendResult> {
        crate::validate::stream_name(stream, self.limits)?;
        crate::validate::events(events, self.limits)?;
        let meta_target = stream_meta::target_of(stream);
        let new_meta = match meta_target {
            Some(_) => stream_meta::last_metadata(events, self.limits)?,
            None => None,
        };
        let rec = self.stream(stream)?;
        if rec.is_tombstoned() {
            return Err(AppendError::StreamDeleted {
                stream: stream.into(),
            });
        }
        let current = rec.last_revision;
        let soft = rec.is_soft_deleted();
        let wev = || AppendError::WrongExpectedVersion {
            stream: stream.into(),
            expected,
            actual: CurrentRevision::from_option(current),
        };
        match expected {
            ExpectedRevision::Exact(e) if current == Some(e) => {}
            ExpectedRevision::NoStream if current.is_none() || soft => {}
            ExpectedRevision::Exact(e) => return self.retry_at(&rec, Some(e), events, wev),
            ExpectedRevision::NoStream => return self.retry_at(&rec, None, events, wev),
            ExpectedRevision::Any | ExpectedRevision::StreamExists => {
                if expected == ExpectedRevision::StreamExists {
                    let exists = current.is_some() || self.has_metadata_stream(stream)?;
                    if !exists || soft {
                        return Err(wev());
                    }
                }
                if let Some(done) = self.retry_in_window(&rec, events, wev)? {
                    return Ok(done);
                }
            }
        }
        if events.is_empty() {
            return Ok(AppendResult {
                revision: CurrentRevision::from_option(current),
                position: None,
            });
        }
        let mut rec = rec;
        self.ensure_id(&mut rec);
        let first = current.map_or(0, |c| c + 1);
        let mut position = 0;
        for (i, event) in events.iter().enumerate() {
            position = self.write(stream, rec.id, first + i as u64, event, self.now)?;
        }
        let last = first + events.len() as u64 - 1;
        rec.last_revision = Some(last);
        if soft {
            rec.truncate_before = Some(first);
        }
        let metadata = rec.metadata.clone();
        self.put_stream(stream, rec)?;
        if let (Some(target), Some(meta)) = (meta_target, new_meta) {
            self.apply_metadata(target, meta)?;
        }
        if soft {
            // Appending after a soft delete continues the stream: its `$tb` moves to the first
            // new revision, keeping the rest of its metadata.
            let data = stream_meta::with_truncate_before(metadata.as_deref(), first);
            self.append(
                &stream_meta::metadata_stream(stream),
                ExpectedRevision::Any,
                &[stream_meta::metadata_event(data)],
            )?;
        }
        Ok(AppendResult {
            revision: CurrentRevision::Current(last),
            position: Some(position),
        })
    }

    fn has_metadata_stream(&mut self, stream: &str) -> Op<bool> {
        let meta = stream_meta::metadata_stream(stream);
        Ok(self.stream(&meta)?.last_revision.is_some())
    }

    fn apply_metadata(&mut self, target: &str, meta: stream_meta::Parsed) -> Op<()> {
        let mut rec = self.stream(target)?;
        rec.truncate_before = meta.truncate_before;
        rec.metadata = Some(meta.data);
        self.put_stream(target, rec)?;
        Ok(())
    }

    /// An exact or no-stream append behind the stream's end: an idempotent retry when the ids
    /// at the following revisions are exactly the proposed ones.
    fn retry_at(
        &mut self,
        rec: &StreamRecord,
        expected: Option<Revision>,
        events: &[ProposedEvent],
        wev: impl Fn() -> AppendError,
    ) -> Op<AppendResult> {
        let Some(current) = rec.last_revision else {
            return Err(wev());
        };
        let start = expected.map_or(0, |e| e + 1);
        if events.is_empty() || start > current {
            return Err(wev());
        }
        self.match_ids(rec, start, current, events)?.ok_or_else(wev)
    }

    /// The ids at `start..` equal the proposed ones: the original result. Otherwise `None`.
    fn match_ids(
        &mut self,
        rec: &StreamRecord,
        start: Revision,
        current: Revision,
        events: &[ProposedEvent],
    ) -> Op<Option<AppendResult>> {
        let mut position = 0;
        for (i, event) in events.iter().enumerate() {
            let revision = start + i as u64;
            if revision > current {
                return Ok(None);
            }
            match self.entry(rec.id, revision)? {
                Some(e) if &e.event_id == event.id.as_bytes() => position = e.position,
                _ => return Ok(None),
            }
        }
        Ok(Some(AppendResult {
            revision: CurrentRevision::Current(start + events.len() as u64 - 1),
            position: Some(position),
        }))
    }

    /// `Any`/`StreamExists` retries: the first id is looked for among the stream's last
    /// [`IDEMPOTENCY_WINDOW_EVENTS`] or more events; found, the rest must follow it exactly.
    fn retry_in_window(
        &mut self,
        rec: &StreamRecord,
        events: &[ProposedEvent],
        wev: impl Fn() -> AppendError,
    ) -> Op<Option<AppendResult>> {
        let (Some(first), Some(current)) = (events.first(), rec.last_revision) else {
            return Ok(None);
        };
        let found = self
            .recent_entries(rec.id, current)?
            .into_iter()
            .find(|(_, e)| &e.event_id == first.id.as_bytes())
            .map(|(revision, _)| revision);
        let Some(start) = found else { return Ok(None) };
        match self.match_ids(rec, start, current, events)? {
            Some(done) => Ok(Some(done)),
            None => Err(wev()),
        }
    }

    fn soft_delete(&mut self, stream: &str, expected: ExpectedRevision) -> Op<Position> {
        crate::validate::stream_name(stream, self.limits)?;
        let rec = self.stream(stream)?;
        if rec.is_tombstoned() {
            return Err(AppendError::StreamDeleted {
                stream: stream.into(),
            });
        }
        let ok = match (expected, rec.last_revision) {
            (_, None) => false,
            (ExpectedRevision::Any, _) => true,
            (ExpectedRevision::NoStream, _) => false,
            (ExpectedRevision::StreamExists, _) => !rec.is_soft_deleted(),
            (ExpectedRevision::Exact(e), Some(last)) => e == last,
        };
        if !ok {
            return Err(AppendError::WrongExpectedVersion {
                stream: stream.into(),
                expected,
                actual: CurrentRevision::from_option(rec.last_revision),
            });
        }
        let data = stream_meta::with_truncate_before(rec.metadata.as_deref(), TOMBSTONE_REVISION);
        let done = self.append(
            &stream_meta::metadata_stream(stream),
            ExpectedRevision::Any,
            &[stream_meta::metadata_event(data)],
        )?;
        Ok(done.position.unwrap_or(self.state.head))
    }

    fn tombstone(&mut self, stream: &str, expected: ExpectedRevision) -> Op<Position> {
        crate::validate::stream_name(stream, self.limits)?;
        let rec = self.stream(stream)?;
        if rec.is_tombstoned() {
            return Err(AppendError::StreamDeleted {
                stream: stream.into(),
            });
        }
        let soft = rec.is_soft_deleted();
        let ok = match expected {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => rec.last_revision.is_none() || soft,
            ExpectedRevision::StreamExists => rec.last_revision.is_some() && !soft,
            ExpectedRevision::Exact(e) => rec.last_revision == Some(e),
        };
        if !ok {
            return Err(AppendError::WrongExpectedVersion {
                stream: stream.into(),
                expected,
                actual: CurrentRevision::from_option(rec.last_revision),
            });
        }
        let mut rec = rec;
        self.ensure_id(&mut rec);
        let event = tombstone_event(EventId::new_random());
        let position = self.write(stream, rec.id, TOMBSTONE_REVISION, &event, self.now)?;
        rec.tombstone_position = Some(position);
        self.put_stream(stream, rec)?;
        Ok(position)
    }

    fn import(&mut self, records: &[ImportRecord]) -> Op<ImportSummary> {
        let mut summary = ImportSummary::default();
        for r in records {
            crate::validate::stream_name(&r.stream, self.limits)?;
            crate::validate::events(std::slice::from_ref(&r.event), self.limits)?;
            if self.import_one(r)? {
                summary.written += 1;
            } else {
                summary.already_present += 1;
            }
        }
        summary.last_position = self.state.head;
        Ok(summary)
    }

    /// Writes one imported record; `false` when it was already there.
    fn import_one(&mut self, r: &ImportRecord) -> Op<bool> {
        let conflict = |reason: String| AppendError::ImportConflict {
            stream: r.stream.clone(),
            revision: r.revision,
            reason,
        };
        let rec = self.stream(&r.stream)?;
        let recorded = r.recorded.0.max(self.state.last_recorded);
        if r.revision == TOMBSTONE_REVISION && r.event.event_type == TOMBSTONE_TYPE {
            if rec.is_tombstoned() {
                return Ok(false);
            }
            let mut rec = rec;
            self.ensure_id(&mut rec);
            let position = self.write(&r.stream, rec.id, TOMBSTONE_REVISION, &r.event, recorded)?;
            rec.tombstone_position = Some(position);
            self.put_stream(&r.stream, rec)?;
            return Ok(true);
        }
        if rec.is_tombstoned() {
            return Err(conflict("the stream is tombstoned in this ledger".into()));
        }
        let next = rec.last_revision.map_or(0, |l| l + 1);
        if r.revision < next {
            return match self.entry(rec.id, r.revision)? {
                Some(e) if &e.event_id == r.event.id.as_bytes() => Ok(false),
                _ => Err(conflict(format!(
                    "this revision already holds another event (not {})",
                    r.event.id
                ))),
            };
        }
        if r.revision > next {
            return Err(conflict(format!(
                "revisions must follow on: the stream's next revision is {next}"
            )));
        }
        let new_meta = match stream_meta::target_of(&r.stream) {
            Some(t) => stream_meta::last_metadata(std::slice::from_ref(&r.event), self.limits)?
                .map(|m| (t, m)),
            None => None,
        };
        let mut rec = rec;
        self.ensure_id(&mut rec);
        self.write(&r.stream, rec.id, r.revision, &r.event, recorded)?;
        rec.last_revision = Some(r.revision);
        self.put_stream(&r.stream, rec)?;
        if let Some((target, meta)) = new_meta {
            self.apply_metadata(target, meta)?;
        }
        Ok(true)
    }

    /// Writes what the layer above keeps beside the log (snapshots, tags); whether it wrote any.
    fn flush_side(&mut self, txn: &WriteTransaction) -> Result<bool, StorageError> {
        let snapshots = std::mem::take(&mut self.snapshots);
        if !snapshots.is_empty() {
            let mut t = txn.open_table(SNAPSHOTS)?;
            for (position, bytes) in &snapshots {
                t.insert(position, bytes.as_slice())?;
            }
        }
        let Some(up_to) = self.tags_up_to.take() else {
            return Ok(!snapshots.is_empty());
        };
        let mut tags = std::mem::take(&mut self.tags);
        tags.sort_unstable();
        let mut t = txn.open_table(TAGS)?;
        for (tag, position) in &tags {
            t.insert((tag.as_str(), *position), ())?;
        }
        let mut meta = txn.open_table(META)?;
        let current = meta
            .get(META_TAGS_WATERMARK)?
            .and_then(|g| g.value().try_into().ok())
            .map_or(0, u64::from_le_bytes);
        meta.insert(
            META_TAGS_WATERMARK,
            current.max(up_to).to_le_bytes().as_slice(),
        )?;
        Ok(true)
    }

    /// Writes everything staged; returns the segments written (none: nothing was written).
    fn flush(&mut self, txn: &WriteTransaction) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let segments = std::mem::take(&mut self.segments).finish();
        if segments.is_empty() {
            return Ok(segments);
        }
        let mut log = txn.open_table(LOG)?;
        for (first, bytes) in &segments {
            log.insert(first, bytes.as_slice())?;
        }
        for (stream_id, (piece, stored)) in &self.pieces {
            if piece.bytes.len() > *stored {
                self.index_t
                    .insert(piece_key(*stream_id, piece.first), piece.bytes.as_slice())?;
            }
        }
        for (name, rec, dirty) in &self.streams {
            if *dirty {
                self.streams_t
                    .insert(name.as_str(), rec.encode().as_slice())?;
            }
        }
        let mut merkle = txn.open_table(MERKLE)?;
        for (key, hash) in &self.merkle_nodes {
            merkle.insert(key, hash)?;
        }
        let mut by_time = txn.open_table(BY_TIME)?;
        for (t, p) in &self.times {
            by_time.insert(t, p)?;
        }
        if self.state.next_stream_id != self.first_stream_id {
            let mut meta = txn.open_table(META)?;
            meta.insert(
                META_NEXT_STREAM_ID,
                self.state.next_stream_id.to_le_bytes().as_slice(),
            )?;
        }
        Ok(segments)
    }
}

fn tombstone_event(id: EventId) -> ProposedEvent {
    ProposedEvent {
        id,
        event_type: TOMBSTONE_TYPE.into(),
        content_type: ContentType::Binary,
        data: Vec::new(),
        metadata: Vec::new(),
        occurred: None,
    }
}

impl Ledger {
    async fn submit(&self, op: WriteOp) -> Result<Outcome, AppendError> {
        let tx = self.sender()?;
        let (reply, rx) = oneshot::channel();
        tx.send(Request { op, reply })
            .await
            .map_err(|_| AppendError::Closed)?;
        rx.await.map_err(|_| AppendError::Closed)?
    }

    fn submit_blocking(&self, op: WriteOp) -> Result<Outcome, AppendError> {
        let tx = self.sender()?;
        let (reply, rx) = oneshot::channel();
        tx.blocking_send(Request { op, reply })
            .map_err(|_| AppendError::Closed)?;
        rx.blocking_recv().map_err(|_| AppendError::Closed)?
    }

    fn sender(&self) -> Result<mpsc::Sender<Request>, AppendError> {
        let guard = self.inner.writer.lock().map_err(|_| AppendError::Closed)?;
        guard
            .as_ref()
            .and_then(|h| h.tx.clone())
            .ok_or(AppendError::Closed)
    }

    /// Appends events to a stream once the expected revision holds; returns after the commit
    /// is durable.
    pub async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult, AppendError> {
        appended(
            self.submit(WriteOp::append(stream, expected, events))
                .await?,
        )
    }

    /// [`Ledger::append`] for callers outside an async runtime.
    pub fn append_blocking(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult, AppendError> {
        appended(self.submit_blocking(WriteOp::append(stream, expected, events))?)
    }

    /// Soft delete: reads of the stream find nothing, and an append continues it.
    pub async fn delete(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> Result<Position, AppendError> {
        deleted(self.submit(WriteOp::delete(stream, expected)).await?)
    }

    pub fn delete_blocking(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> Result<Position, AppendError> {
        deleted(self.submit_blocking(WriteOp::delete(stream, expected))?)
    }

    /// Tombstone: the stream can never be written again.
    pub async fn tombstone(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> Result<Position, AppendError> {
        deleted(self.submit(WriteOp::tombstone(stream, expected)).await?)
    }

    pub fn tombstone_blocking(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> Result<Position, AppendError> {
        deleted(self.submit_blocking(WriteOp::tombstone(stream, expected))?)
    }

    /// Writes records exactly as given, in one commit; records already present (same id at the
    /// same revision) are passed over, so an interrupted import can be run again.
    pub fn import_blocking(
        &self,
        records: Vec<ImportRecord>,
    ) -> Result<ImportSummary, AppendError> {
        match self.submit_blocking(WriteOp::Import(records))? {
            Outcome::Imported(s) => Ok(s),
            _ => unreachable!("an import answers with a summary"),
        }
    }

    /// Stores tag index entries (tag, position) and moves the index's watermark to `up_to`.
    pub fn put_tags_blocking(
        &self,
        entries: Vec<(String, Position)>,
        up_to: Position,
    ) -> Result<(), AppendError> {
        match self.submit_blocking(WriteOp::Tags { entries, up_to })? {
            Outcome::Stored => Ok(()),
            _ => unreachable!("tags answer with stored"),
        }
    }

    /// Stores a snapshot of the layer above's state after `position` (durably; not in the log).
    pub fn put_snapshot_blocking(
        &self,
        position: Position,
        bytes: Vec<u8>,
    ) -> Result<(), AppendError> {
        match self.submit_blocking(WriteOp::Snapshot { position, bytes })? {
            Outcome::Stored => Ok(()),
            _ => unreachable!("a snapshot answers with stored"),
        }
    }

    pub async fn import(&self, records: Vec<ImportRecord>) -> Result<ImportSummary, AppendError> {
        match self.submit(WriteOp::Import(records)).await? {
            Outcome::Imported(s) => Ok(s),
            _ => unreachable!("an import answers with a summary"),
        }
    }
}

fn appended(o: Outcome) -> Result<AppendResult, AppendError> {
    match o {
        Outcome::Appended(r) => Ok(r),
        _ => unreachable!("an append answers with an append result"),
    }
}

fn deleted(o: Outcome) -> Result<Position, AppendError> {
    match o {
        Outcome::Deleted(p) => Ok(p),
        _ => unreachable!("a delete answers with a position"),
    }
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
