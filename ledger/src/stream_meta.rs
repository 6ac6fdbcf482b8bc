//! Stream metadata (`$$<stream>`): the JSON object whose `$tb` ("truncate before") hides a
//! stream's earlier revisions. A soft delete sets `$tb` to `i64::MAX`.

use crate::error::AppendError;
use crate::event::{ContentType, EventId, ProposedEvent, METADATA_TYPE};
use crate::limits::Limits;
use serde_json::Value;

pub const TRUNCATE_BEFORE: &str = "$tb";

/// The stream whose metadata `stream` holds, if it is a metadata stream.
pub fn target_of(stream: &str) -> Option<&str> {
    stream.strip_prefix("$$").filter(|t| !t.is_empty())
}

pub fn metadata_stream(stream: &str) -> String {
    format!("$${stream}")
}

pub(crate) struct Parsed {
    pub truncate_before: Option<u64>,
    pub data: Vec<u8>,
}

/// Validates every `$metadata` event of an append to a metadata stream; returns the last one.
pub(crate) fn last_metadata(
    events: &[ProposedEvent],
    limits: &Limits,
) -> Result<Option<Parsed>, AppendError> {
    let mut last = None;
    for e in events.iter().filter(|e| e.event_type == METADATA_TYPE) {
        let invalid = |reason: String| AppendError::InvalidEvent { id: e.id, reason };
        if e.data.len() > limits.stream_metadata_bytes_max {
            return Err(invalid(format!(
                "stream metadata is {} bytes; the limit is {}",
                e.data.len(),
                limits.stream_metadata_bytes_max
            )));
        }
        let value: Value = serde_json::from_slice(&e.data)
            .map_err(|err| invalid(format!("stream metadata is not JSON: {err}")))?;
        let Value::Object(map) = value else {
            return Err(invalid("stream metadata must be a JSON object".into()));
        };
        let truncate_before = match map.get(TRUNCATE_BEFORE) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                invalid(format!(
                    "{TRUNCATE_BEFORE} must be a non-negative integer, not {v}"
                ))
            })?),
        };
        last = Some(Parsed {
            truncate_before,
            data: e.data.clone(),
        });
    }
    Ok(last)
}

/// `existing` metadata with `$tb` set; other keys are kept.
pub(crate) fn with_truncate_before(existing: Option<&[u8]>, revision: u64) -> Vec<u8> {
    let mut map = existing
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    map.insert(TRUNCATE_BEFORE.into(), Value::from(revision));
    serde_json::to_vec(&Value::Object(map)).expect("a JSON map serialises")
}

pub(crate) fn metadata_event(data: Vec<u8>) -> ProposedEvent {
    ProposedEvent {
        id: EventId::new_random(),
        event_type: METADATA_TYPE.into(),
        content_type: ContentType::Json,
        data,
        metadata: Vec::new(),
        occurred: None,
    }
}
