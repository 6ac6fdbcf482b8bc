//! One error type per family of operations, each variant carrying what a user needs to act.

use crate::event::{CurrentRevision, EventId, ExpectedRevision, Position};
use thiserror::Error;

/// The storage engine failed (disk, corruption redb detected, ...). Nothing was acknowledged.
#[derive(Debug, Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

impl<E: Into<redb::Error>> From<E> for StorageError {
    fn from(e: E) -> Self {
        StorageError(e.into().to_string())
    }
}

#[derive(Debug, Error)]
pub enum OpenError {
    #[error("cannot open ledger {path}: {reason}")]
    Storage { path: String, reason: String },
    /// Another process has the file open: one process at a time holds a ledger.
    #[error("ledger {path} is already open elsewhere (one process at a time holds a ledger)")]
    InUse { path: String },
    #[error("ledger {path} has format version {found}; this build reads version {supported}")]
    UnsupportedFormat {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("ledger {path} is damaged at position {position}: {reason} (run `lifeline verify`)")]
    Damaged {
        path: String,
        position: Position,
        reason: String,
    },
}

#[derive(Debug, Error)]
pub enum AppendError {
    #[error("wrong expected revision on stream '{stream}': expected {expected}, actual {actual}")]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedRevision,
        actual: CurrentRevision,
    },
    #[error("stream '{stream}' is deleted (tombstoned); nothing more can be written to it")]
    StreamDeleted { stream: String },
    #[error("invalid stream name '{stream}': {reason}")]
    InvalidStreamName { stream: String, reason: String },
    #[error("event {id}: {reason}")]
    InvalidEvent { id: EventId, reason: String },
    #[error("event {id} is {size} bytes; the limit is {max} bytes")]
    EventTooLarge {
        id: EventId,
        size: usize,
        max: usize,
    },
    #[error("append of {size} bytes exceeds the limit of {max} bytes")]
    AppendTooLarge { size: usize, max: usize },
    #[error("append of {count} events exceeds the limit of {max} events")]
    TooManyEvents { count: usize, max: usize },
    #[error("import conflict on stream '{stream}' at revision {revision}: {reason}")]
    ImportConflict {
        stream: String,
        revision: u64,
        reason: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the ledger is closed")]
    Closed,
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("stream '{stream}' not found")]
    StreamNotFound { stream: String },
    #[error("stream '{stream}' is deleted (tombstoned)")]
    StreamDeleted { stream: String },
    #[error("position {position} is past the end of the log (last position {last})")]
    InvalidPosition { position: Position, last: Position },
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    #[error("record at position {position} cannot be decoded: {reason} (run `lifeline verify`)")]
    Corrupt { position: Position, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Debug, Error)]
pub enum ProofError {
    #[error("position {position} is not in the log (its positions are 1 to {size})")]
    OutOfRange { position: Position, size: u64 },
    #[error("checkpoint size {size} is larger than the log ({last} events)")]
    SizeTooLarge { size: u64, last: u64 },
    #[error("the proof does not verify: {0}")]
    Invalid(String),
    #[error(transparent)]
    Read(#[from] ReadError),
}
