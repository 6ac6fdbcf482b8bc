//! `ledger`: Lifeline's immutable, hash-chained event log, embedded on redb.
//!
//! It speaks the KurrentDB model — streams with revisions from 0, one global order (`$all`) with
//! positions from 1, expected-revision appends with idempotent retries, soft delete and
//! tombstone, filtered reads and catch-up subscriptions — and knows nothing of Connections.
//!
//! Every record is chained to the one before (`blake3(prev_hash ‖ record)`) and is a leaf of an
//! RFC 9162-shaped Merkle tree, so a checkpoint (size, root) written down elsewhere can later
//! prove that one event is in the log, or that the log only grew. `schema/ledger-format.md`
//! documents every stored byte.

pub mod clock;
pub mod error;
pub mod event;
pub mod filter;
pub mod limits;
pub mod merkle;
pub mod proof;
pub mod read;
pub mod record;
mod semantics;
mod staging;
pub mod stats;
mod store;
pub mod stream_meta;
pub mod subscribe;
mod tables;
mod validate;
pub mod verify;
mod wal;
mod write_api;
mod writer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AppendError, OpenError, ProofError, ReadError, StorageError};
pub use event::*;
pub use filter::{Filter, FilterOn};
pub use limits::Limits;
pub use proof::{ConsistencyProof, InclusionProof};
pub use read::AllPage;
pub use stats::WriterStats;
pub use store::{Checkpoint, Compacted, Ledger, Options};
pub use subscribe::{AllSubscription, Subscription, SubscriptionMessage};
pub use tables::{StreamRecord, IDEMPOTENCY_WINDOW_EVENTS};
pub use verify::{Problem, VerifyReport};
pub use write_api::{QueuedAppend, QueuedImport};
pub use writer::{ImportRecord, ImportSummary};

/// Test access to the raw tables (tamper tests rewrite stored bytes through redb).
#[doc(hidden)]
pub mod raw {
    pub use crate::tables::{LOG, MERKLE, STREAMS, STREAM_INDEX};
}

/// Serde: a 32-byte hash as lowercase hex.
pub mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(h))
    }

    pub fn encode(h: &[u8; 32]) -> String {
        hex::encode(h)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    pub fn parse(s: &str) -> Result<[u8; 32], String> {
        let v = hex::decode(s).map_err(|e| format!("'{s}' is not hex: {e}"))?;
        v.try_into()
            .map_err(|v: Vec<u8>| format!("a hash is 32 bytes, '{s}' is {}", v.len()))
    }
}

/// Serde: a list of 32-byte hashes as hex strings.
pub mod hex32s {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| super::hex32::parse(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Serde: bytes as hex.
pub mod hexbytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map_err(serde::de::Error::custom)
    }
}
