//! Every size the ledger accepts is bounded; these are the bounds.

/// Limits applied to every write and read. Units are in the names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// One event: data + metadata + type (KurrentDB's MaxAppendEventSize).
    pub event_bytes_max: usize,
    /// One append request, all its events together (KurrentDB's MaxAppendSize).
    pub append_bytes_max: usize,
    /// Events in one append request.
    pub append_events_max: usize,
    /// A stream name, in UTF-8 bytes.
    pub stream_name_bytes_max: usize,
    /// An event type, in UTF-8 bytes.
    pub event_type_bytes_max: usize,
    /// An event's metadata bytes.
    pub metadata_bytes_max: usize,
    /// Stream metadata (`$$stream` JSON) bytes.
    pub stream_metadata_bytes_max: usize,
    /// Bytes of requests gathered into one group commit.
    pub commit_bytes_max: usize,
    /// Requests gathered into one group commit.
    pub commit_requests_max: usize,
    /// Write requests waiting for the writer before appenders are made to wait.
    pub write_queue_requests_max: usize,
    /// Events a subscription buffers for a slow consumer before it stops reading ahead.
    pub subscription_buffer_events: usize,
    /// Events in one page of a read.
    pub read_page_events: usize,
    /// Write-ahead log size at which the next commit is a checkpoint (a durable redb commit
    /// after which the log is emptied).
    pub wal_checkpoint_bytes: u64,
    /// A commit writing at least this many bytes goes straight to a durable redb commit
    /// instead of through the write-ahead log.
    pub wal_direct_commit_bytes: u64,
    /// One snapshot of the layer above.
    pub snapshot_bytes_max: usize,
    /// Group commits (each durable in the write-ahead log, each answered) one redb transaction
    /// gathers before redb commits it. Readers needing what was answered commit it sooner.
    pub shared_commit_group_commits_max: usize,
    /// How long group commits go on adding to one redb transaction, checked between group
    /// commits (an idle writer leaves it open until a reader asks, or the ledger closes).
    pub shared_commit_micros_max: u64,
}

pub const MIB: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            event_bytes_max: 16 * MIB,
            append_bytes_max: 256 * MIB,
            append_events_max: 1_000_000,
            stream_name_bytes_max: 1024,
            event_type_bytes_max: 1024,
            metadata_bytes_max: MIB,
            stream_metadata_bytes_max: 64 * 1024,
            commit_bytes_max: 64 * MIB,
            commit_requests_max: 4096,
            write_queue_requests_max: 8192,
            subscription_buffer_events: 1024,
            read_page_events: 512,
            wal_checkpoint_bytes: 64 * MIB as u64,
            wal_direct_commit_bytes: 8 * MIB as u64,
            snapshot_bytes_max: 1024 * MIB,
            shared_commit_group_commits_max: 16,
            shared_commit_micros_max: 2_000,
        }
    }
}
