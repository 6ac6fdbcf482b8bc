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
/// `(stream id << 64) | chunk number` → up to [`CHUNK_ENTRIES`] `(position, event id)` entries.
pub const STREAM_INDEX: TableDefinition<u128, &[u8]> = TableDefinition::new("stream_index");
/// `(level << 56) | index` → hash of the complete subtree, for levels that are multiples of
/// [`STORED_LEVEL_STEP`].
pub const MERKLE: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("merkle");
/// Recorded time (ns since the epoch) → first position recorded at that time.
pub const BY_TIME: TableDefinition<i64, u64> = TableDefinition::new("by_time");

pub const META_FORMAT: &str = "format";
pub const META_NEXT_STREAM_ID: &str = "next_stream_id";
pub const LEDGER_FORMAT: u32 = 1;

/// Revisions per stream-index chunk. Also the idempotency window for `Any`/`StreamExists`
/// appends: the ids of the stream's last one or two chunks (at least this many events).
pub const CHUNK_ENTRIES: u64 = 128;
pub const CHUNK_ENTRY_BYTES: usize = 24;

/// Merkle levels stored: 4, 8, 12, ... (level 0 comes from the log, the rest is recomputed).
pub const STORED_LEVEL_STEP: u32 = 4;

pub fn merkle_key(level: u32, index: u64) -> u64 {
    (u64::from(level) << 56) | index
}

pub fn chunk_key(stream_id: u64, chunk: u64) -> u128 {
    (u128::from(stream_id) << 64) | u128::from(chunk)
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

/// One entry of a stream-index chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkEntry {
    pub position: u64,
    pub event_id: [u8; 16],
}

pub fn chunk_entries(bytes: &[u8]) -> impl Iterator<Item = ChunkEntry> + '_ {
    bytes.chunks_exact(CHUNK_ENTRY_BYTES).map(|e| {
        let mut p = [0u8; 8];
        p.copy_from_slice(&e[..8]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&e[8..24]);
        ChunkEntry {
            position: u64::from_le_bytes(p),
            event_id: id,
        }
    })
}

pub fn chunk_entry_at(bytes: &[u8], slot: usize) -> Option<ChunkEntry> {
    chunk_entries(bytes.get(slot * CHUNK_ENTRY_BYTES..)?).next()
}

pub fn push_chunk_entry(bytes: &mut Vec<u8>, entry: ChunkEntry) {
    bytes.extend_from_slice(&entry.position.to_le_bytes());
    bytes.extend_from_slice(&entry.event_id);
}
