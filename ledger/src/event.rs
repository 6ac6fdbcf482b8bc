//! The event model: what an appender proposes and what a reader gets back.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Global position in the one log (`$all`). Strictly increasing, never 0; the first event is 1.
/// Commit position and prepare position are the same number.
pub type Position = u64;

/// Revision of an event within its stream, from 0.
pub type Revision = u64;

/// The revision a tombstone record carries (KurrentDB's `i64::MAX`).
pub const TOMBSTONE_REVISION: Revision = i64::MAX as u64;

/// The event type of a tombstone record.
pub const TOMBSTONE_TYPE: &str = "$streamDeleted";

/// The event type of a stream-metadata event in `$$<stream>`.
pub const METADATA_TYPE: &str = "$metadata";

/// A point in time: nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);

    pub fn from_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    pub fn nanos(self) -> i64 {
        self.0
    }

    /// KurrentDB's `created` metadata: 100 ns ticks since the Unix epoch.
    pub fn ticks(self) -> i64 {
        self.0.div_euclid(100)
    }
}

/// An event id: a UUID, unique per event (appending the same id again is an idempotent retry).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId(pub uuid::Uuid);

impl EventId {
    pub fn new_random() -> Self {
        EventId(uuid::Uuid::new_v4())
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        EventId(uuid::Uuid::from_bytes(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

/// How the data bytes are to be read. KurrentDB only keeps "is JSON or not".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentType {
    Json,
    Binary,
}

impl ContentType {
    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Binary => "application/octet-stream",
        }
    }

    pub fn from_mime(mime: &str) -> Self {
        if mime.eq_ignore_ascii_case("application/json") {
            ContentType::Json
        } else {
            ContentType::Binary
        }
    }
}

/// An event as an appender proposes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedEvent {
    pub id: EventId,
    pub event_type: String,
    pub content_type: ContentType,
    pub data: Vec<u8>,
    pub metadata: Vec<u8>,
    /// When it happened in Connections; the ledger's recorded time when absent.
    pub occurred: Option<Timestamp>,
}

impl ProposedEvent {
    /// A JSON event with a fresh id.
    pub fn json(event_type: impl Into<String>, data: &serde_json::Value) -> Self {
        ProposedEvent {
            id: EventId::new_random(),
            event_type: event_type.into(),
            content_type: ContentType::Json,
            data: serde_json::to_vec(data).unwrap_or_default(),
            metadata: Vec::new(),
            occurred: None,
        }
    }

    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = id;
        self
    }

    pub fn occurred_at(mut self, at: Timestamp) -> Self {
        self.occurred = Some(at);
        self
    }

    /// Bytes this event counts against the event size limit.
    pub fn size_bytes(&self) -> usize {
        self.data.len() + self.metadata.len() + self.event_type.len()
    }
}

/// An event as it stands in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    pub position: Position,
    pub stream: String,
    pub revision: Revision,
    pub id: EventId,
    pub event_type: String,
    pub content_type: ContentType,
    pub data: Vec<u8>,
    pub metadata: Vec<u8>,
    pub recorded: Timestamp,
    pub occurred: Timestamp,
    /// `blake3(prev_hash ‖ canonical record bytes)`.
    pub hash: [u8; 32],
}

impl RecordedEvent {
    pub fn is_tombstone(&self) -> bool {
        self.revision == TOMBSTONE_REVISION && self.event_type == TOMBSTONE_TYPE
    }
}

/// What an appender expects of the stream before its append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedRevision {
    /// No check.
    Any,
    /// The stream has no events (or was soft-deleted).
    NoStream,
    /// The stream has events and is not soft-deleted.
    StreamExists,
    /// The stream's last revision is exactly this.
    Exact(Revision),
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedRevision::Any => f.write_str("any"),
            ExpectedRevision::NoStream => f.write_str("no-stream"),
            ExpectedRevision::StreamExists => f.write_str("exists"),
            ExpectedRevision::Exact(r) => write!(f, "{r}"),
        }
    }
}

impl std::str::FromStr for ExpectedRevision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(ExpectedRevision::Any),
            "no-stream" => Ok(ExpectedRevision::NoStream),
            "exists" | "stream-exists" => Ok(ExpectedRevision::StreamExists),
            n => n.parse::<u64>().map(ExpectedRevision::Exact).map_err(|_| {
                format!("expected revision '{s}' is not any, no-stream, exists or a number")
            }),
        }
    }
}

/// What a stream's last revision actually is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CurrentRevision {
    NoStream,
    Current(Revision),
}

impl CurrentRevision {
    pub fn from_option(r: Option<Revision>) -> Self {
        r.map_or(CurrentRevision::NoStream, CurrentRevision::Current)
    }
}

impl fmt::Display for CurrentRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurrentRevision::NoStream => f.write_str("no-stream"),
            CurrentRevision::Current(r) => write!(f, "{r}"),
        }
    }
}

/// The result of a successful append (or an idempotent retry of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// The stream's revision after the append: that of the last event written.
    pub revision: CurrentRevision,
    /// The position of the last event written; `None` when nothing was written to an empty stream.
    pub position: Option<Position>,
}

/// Where a read in a stream starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStart {
    Start,
    End,
    Revision(Revision),
}

/// Where a read of `$all` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllStart {
    Start,
    End,
    Position(Position),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forwards,
    Backwards,
}
