//! The redb tables and the small values stored in them. See `schema/ledger-format.md`.

use crate::record::config;
use bincode::{Decode, Encode};
use redb::TableDefinition;

/// Ledger-wide values: `format` (u32 LE), `next_stream_id` (u64 LE).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// First position of a segment → the segment (all records of one commit, split by size).
pub const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Stream name → [`StreamRecord`].
pub const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
/// `(stream id << 64) | first revision` → the `(position, event id)` entries of the revisions
/// one commit wrote to that stream (a "piece"); never rewritten.
pub const STREAM_INDEX: TableDefinition<u128, &[u8]> = TableDefinition::new("stream_index");
/// `(level << 56) | index` → hash of the complete subtree, for levels that are multiples of
/// [`STORED_LEVEL_STEP`].
pub const MERKLE: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("merkle");
/// Position → a snapshot of the layer above's state after that position (a cache it owns:
/// not part of the log, not hashed, may be dropped).
pub const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
/// Position → the byte length of the snapshot stored there, written with it: listing the
/// snapshots reads this small table, not the snapshots (a redb key is stored with its value,
/// so walking `snapshots` reads every snapshot in full).
pub const SNAPSHOT_SIZES: TableDefinition<u64, u64> = TableDefinition::new("snapshot_sizes");
/// `(tag, first position)` → the positions that carry the tag, from that one on (u64 LE each,
/// ascending; a "piece", written once by one commit): an index the layer above keeps over the
/// log (which positions carry a tag such as `actor:jdoe`), caught up to
/// `META_TAG_PIECES_WATERMARK`. The pieces of a tag never overlap, so in key order they list
/// its positions in order.
pub const TAG_PIECES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("tag_pieces");
/// The tag index of earlier builds, one key per (tag, position): removed when a ledger is
/// opened (it is derived; the layer above catches `tag_pieces` up instead).
pub const OLD_TAGS: TableDefinition<(&str, u64), ()> = TableDefinition::new("tags");
/// Recorded time (ns since the epoch) → first position recorded at that time.
pub const BY_TIME: TableDefinition<i64, u64> = TableDefinition::new("by_time");

pub const META_FORMAT: &str = "format";
pub const META_NEXT_STREAM_ID: &str = "next_stream_id";
pub const META_TAG_PIECES_WATERMARK: &str = "tag_pieces_watermark";
/// The watermark of [`OLD_TAGS`], removed with it.
pub const META_OLD_TAGS_WATERMARK: &str = "tags_watermark";
/// Present once `snapshot_sizes` lists every stored snapshot (ledgers made before that table
/// existed are brought up to date when opened).
pub const META_SNAPSHOT_SIZES: &str = "snapshot_sizes";
pub const LEDGER_FORMAT: u32 = 1;

/// For `Any`/`StreamExists` appends, a retry is recognised among at least this many of the
/// stream's last events (KurrentDB keeps a cache of recent ids; this window is exact and
/// survives restarts).
pub const IDEMPOTENCY_WINDOW_EVENTS: u64 = 128;
pub const INDEX_ENTRY_BYTES: usize = 24;
/// A commit that adds to a stream whose last piece is shorter than this extends that piece
/// instead of starting a new one, so streams written one event at a time keep few pieces.
pub const PIECE_MERGE_ENTRIES: u64 = 32;

/// Merkle levels stored: 4, 8, 12, ... (level 0 comes from the log, the rest is recomputed).
pub const STORED_LEVEL_STEP: u32 = 4;

pub fn merkle_key(level: u32, index: u64) -> u64 {
    (u64::from(level) << 56) | index
}

pub fn piece_key(stream_id: u64, first_revision: u64) -> u128 {
    (u128::from(stream_id) << 64) | u128::from(first_revision)
}

/// What the ledger knows of one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct StreamRecord {
    pub id: u64,
    /// Revision of the last event, if any was ever written (kept through a soft delete).
    pub last_revision: Option<u64>,
    /// Reads start at this revision (`$tb` of the stream's metadata). `i64::MAX` = soft-deleted.
    pub truncate_before: Option<u64>,
    /// Position of the tombstone record, once tombstoned.
    pub tombstone_position: Option<u64>,
    /// The stream's metadata: data of the last `$metadata` event in `$$<stream>`.
    pub metadata: Option<Vec<u8>>,
}

impl StreamRecord {
    pub fn encode(&self) -> Vec<u8> {
        bincode::encode_to_vec(self, config()).expect("encoding into a Vec")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        bincode::decode_from_slice(bytes, config())
            .map(|(r, _)| r)
            .map_err(|e| format!("stream record: {e}"))
    }

    pub fn is_soft_deleted(&self) -> bool {
        match (self.truncate_before, self.last_revision) {
            (Some(tb), Some(last)) => tb > last,
            (Some(_), None) => true,
            _ => false,
        }
    }

    pub fn is_tombstoned(&self) -> bool {
        self.tombstone_position.is_some()
    }

    /// First revision a reader sees.
    pub fn first_visible(&self) -> u64 {
        self.truncate_before.unwrap_or(0)
    }
}

/// One entry of the stream index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub position: u64,
    pub event_id: [u8; 16],
}

/// Consecutive revisions of one stream, from `first`, as one commit wrote them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Piece {
    pub first: u64,
    pub bytes: Vec<u8>,
}

impl Piece {
    pub fn len(&self) -> u64 {
        (self.bytes.len() / INDEX_ENTRY_BYTES) as u64
    }

    pub fn get(&self, revision: u64) -> Option<IndexEntry> {
        let i = usize::try_from(revision.checked_sub(self.first)?).ok()?;
        let e = self
            .bytes
            .get(i * INDEX_ENTRY_BYTES..(i + 1) * INDEX_ENTRY_BYTES)?;
        let mut p = [0u8; 8];
        p.copy_from_slice(&e[..8]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&e[8..24]);
        Some(IndexEntry {
            position: u64::from_le_bytes(p),
            event_id: id,
        })
    }

    pub fn push(&mut self, entry: IndexEntry) {
        self.bytes.extend_from_slice(&entry.position.to_le_bytes());
        self.bytes.extend_from_slice(&entry.event_id);
    }
}

/// The stored piece that holds `revision` of stream `stream_id`, if any.
pub fn piece_at(
    t: &impl redb::ReadableTable<u128, &'static [u8]>,
    stream_id: u64,
    revision: u64,
) -> Result<Option<Piece>, redb::StorageError> {
    let found = t
        .range(piece_key(stream_id, 0)..=piece_key(stream_id, revision))?
        .next_back()
        .transpose()?;
    Ok(found
        .map(|(k, v)| Piece {
            first: k.value() as u64,
            bytes: v.value().to_vec(),
        })
        .filter(|p| revision < p.first + p.len()))
}
