//! One commit being built: the stream records it touches and the index pieces, records and
//! Merkle nodes it writes, over the tables of one redb transaction, with a journal that undoes an
//! operation that fails.

use crate::error::{AppendError, StorageError};
use crate::event::*;
use crate::merkle::{self, Hash};
use crate::record::{RecordBody, SegmentMark, SegmentWriter};
use crate::store::load_stream;
use crate::tables::*;
use crate::writer::{Outcome, WriteOp, WriterState};
use foldhash::HashMap;
use redb::{ReadableTable, Table, WriteTransaction};

/// One commit being built: the stream records it touches and the index pieces it writes, over the
/// tables, and the records it writes.
pub(crate) struct Staging<'t> {
    pub(crate) limits: &'t crate::limits::Limits,
    pub(crate) streams_t: Table<'t, &'static str, &'static [u8]>,
    pub(crate) index_t: Table<'t, u128, &'static [u8]>,
    /// Streams touched by this commit: name, record, written since loaded.
    pub(crate) streams: Vec<(String, StreamRecord, bool)>,
    pub(crate) stream_slots: HashMap<String, usize>,
    /// Index pieces this commit writes: stream id → the piece and its stored length in bytes
    /// (non-zero when the commit extends the stream's last stored piece).
    pub(crate) pieces: HashMap<u64, (Piece, usize)>,
    pub(crate) segments: SegmentWriter,
    pub(crate) merkle_nodes: Vec<(u64, Hash)>,
    pub(crate) times: Vec<(i64, Position)>,
    pub(crate) state: WriterState,
    pub(crate) first_stream_id: u64,
    pub(crate) now: i64,
    /// What the operation being applied changed, to undo it if it fails.
    pub(crate) undo: Vec<Undo>,
    /// Snapshots to store (not part of the log).
    pub(crate) snapshots: Vec<(Position, Vec<u8>)>,
    /// Positions whose stored snapshots this commit removes.
    dropped_snapshots: Vec<Position>,
    /// Tag index positions to store, by tag, each above the watermark before this commit.
    pub(crate) tags: Vec<(String, Vec<Position>)>,
    /// Whether this commit moves the tag index's watermark (to `state.tags_watermark`).
    pub(crate) tags_moved: bool,
}

pub(crate) enum Undo {
    Stream(usize, StreamRecord, bool),
    Piece(u64, usize),
}

/// Where the staging stood before an operation.
struct Mark {
    pub(crate) state: WriterState,
    pub(crate) segments: SegmentMark,
    pub(crate) merkle_nodes: usize,
    pub(crate) times: usize,
}

pub(crate) type Op<T> = Result<T, AppendError>;

impl<'t> Staging<'t> {
    pub(crate) fn new(
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
            dropped_snapshots: Vec::new(),
            tags: Vec::new(),
            tags_moved: false,
        })
    }

    /// Applies one operation: all of it, or — when it fails — nothing of it.
    pub(crate) fn apply(&mut self, op: WriteOp) -> Result<Outcome, AppendError> {
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
                self.dropped_snapshots.retain(|p| *p != position);
                self.snapshots.push((position, bytes));
                Ok(Outcome::Stored)
            }
            WriteOp::DropSnapshots(positions) => {
                // Later in the same commit than a put at the same position: the drop wins.
                self.snapshots.retain(|(p, _)| !positions.contains(p));
                self.dropped_snapshots.extend(positions);
                Ok(Outcome::Stored)
            }
            WriteOp::Publish => Ok(Outcome::Stored),
            WriteOp::Tags { tags, up_to } => {
                let beyond = tags
                    .iter()
                    .flat_map(|(_, p)| p)
                    .copied()
                    .chain([up_to])
                    .max();
                if beyond.is_some_and(|p| p > self.state.head) {
                    return Err(AppendError::InvalidEvent {
                        id: EventId(uuid::Uuid::nil()),
                        reason: format!("tags past the log's end ({})", self.state.head),
                    });
                }
                let covered = self.state.tags_watermark;
                for (tag, mut positions) in tags {
                    positions.retain(|p| *p > covered);
                    if !positions.is_empty() {
                        self.tags.push((tag, positions));
                    }
                }
                self.state.tags_watermark = covered.max(up_to);
                self.tags_moved = true;
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

    pub(crate) fn stream(&mut self, name: &str) -> Op<StreamRecord> {
        let slot = self.slot(name)?;
        Ok(self.streams[slot].1.clone())
    }

    /// Gives a new stream its id (undone with the rest of the writer state on rollback).
    pub(crate) fn ensure_id(&mut self, rec: &mut StreamRecord) {
        if rec.id == 0 {
            rec.id = self.state.next_stream_id;
            self.state.next_stream_id += 1;
        }
    }

    pub(crate) fn put_stream(&mut self, name: &str, mut rec: StreamRecord) -> Op<()> {
        self.ensure_id(&mut rec);
        let slot = self.slot(name)?;
        let entry = &mut self.streams[slot];
        let before = std::mem::replace(&mut entry.1, rec);
        let dirty = std::mem::replace(&mut entry.2, true);
        self.undo.push(Undo::Stream(slot, before, dirty));
        Ok(())
    }

    pub(crate) fn entry(&mut self, stream_id: u64, revision: Revision) -> Op<Option<IndexEntry>> {
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

    /// The revision of `event_id` among at least the stream's last
    /// [`IDEMPOTENCY_WINDOW_EVENTS`] events, the latest if it occurs more than once. Reads the
    /// stored pieces in place, last first, and stops once the window is covered.
    pub(crate) fn find_recent(
        &mut self,
        stream_id: u64,
        current: Revision,
        event_id: &[u8; 16],
    ) -> Op<Option<Revision>> {
        let mut before = current + 1;
        if let Some((p, _)) = self.pieces.get(&stream_id) {
            if let Some(i) = rfind_id(&p.bytes, event_id) {
                return Ok(Some(p.first + i));
            }
            before = p.first;
        }
        let window_start = (current + 1).saturating_sub(IDEMPOTENCY_WINDOW_EVENTS);
        if before > window_start {
            let stored = self
                .index_t
                .range(piece_key(stream_id, 0)..piece_key(stream_id, before))
                .map_err(StorageError::from)?;
            for piece in stored.rev() {
                let (key, bytes) = piece.map_err(StorageError::from)?;
                let first = key.value() as u64;
                if let Some(i) = rfind_id(bytes.value(), event_id) {
                    return Ok(Some(first + i));
                }
                if first <= window_start {
                    break;
                }
            }
        }
        Ok(None)
    }

    /// Writes one record; returns its position. The caller updates the stream record.
    pub(crate) fn write(
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

    /// Writes what the layer above keeps beside the log (snapshots, tags); whether it wrote any.
    pub(crate) fn flush_side(&mut self, txn: &WriteTransaction) -> Result<bool, StorageError> {
        let dropped = std::mem::take(&mut self.dropped_snapshots);
        let snapshots = std::mem::take(&mut self.snapshots);
        if !dropped.is_empty() || !snapshots.is_empty() {
            let mut t = txn.open_table(SNAPSHOTS)?;
            let mut sizes = txn.open_table(SNAPSHOT_SIZES)?;
            for position in &dropped {
                t.remove(position)?;
                sizes.remove(position)?;
            }
            for (position, bytes) in &snapshots {
                t.insert(position, bytes.as_slice())?;
                sizes.insert(position, bytes.len() as u64)?;
            }
        }
        if !std::mem::take(&mut self.tags_moved) {
            return Ok(!snapshots.is_empty() || !dropped.is_empty());
        }
        // One piece per tag per commit: the positions of every operation of the commit, each
        // above the watermark it started from, so no piece overlaps a stored one.
        let mut pieces: std::collections::BTreeMap<String, Vec<Position>> = Default::default();
        for (tag, positions) in std::mem::take(&mut self.tags) {
            pieces.entry(tag).or_default().extend(positions);
        }
        let mut t = txn.open_table(TAG_PIECES)?;
        let mut bytes = Vec::new();
        for (tag, mut positions) in pieces {
            positions.sort_unstable();
            positions.dedup();
            bytes.clear();
            bytes.extend(positions.iter().flat_map(|p| p.to_le_bytes()));
            t.insert((tag.as_str(), positions[0]), bytes.as_slice())?;
        }
        let mut meta = txn.open_table(META)?;
        meta.insert(
            META_TAG_PIECES_WATERMARK,
            self.state.tags_watermark.to_le_bytes().as_slice(),
        )?;
        Ok(true)
    }

    /// What the writer carries to its next commit; lets go of the transaction.
    pub(crate) fn into_state(self) -> WriterState {
        self.state
    }

    /// The staged segments of the log, in order (none: nothing was staged).
    pub(crate) fn take_segments(&mut self) -> Vec<(u64, Vec<u8>)> {
        std::mem::take(&mut self.segments).finish()
    }

    /// Writes `segments` (from [`Staging::take_segments`]) and the indexes staged beside them.
    pub(crate) fn flush_tables(
        &mut self,
        txn: &WriteTransaction,
        segments: &[(u64, Vec<u8>)],
    ) -> Result<(), StorageError> {
        if segments.is_empty() {
            return Ok(());
        }
        let mut log = txn.open_table(LOG)?;
        for (first, bytes) in segments {
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
        Ok(())
    }
}

/// The index (from the piece's first revision) of the last entry of `piece` with `event_id`.
fn rfind_id(piece: &[u8], event_id: &[u8; 16]) -> Option<u64> {
    piece
        .chunks_exact(INDEX_ENTRY_BYTES)
        .rposition(|entry| &entry[8..] == event_id)
        .map(|i| i as u64)
}
