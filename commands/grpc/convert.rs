//! Between the wire's messages and the ledger's types.

use super::errors::{self, invalid, MISSING_METADATA};
use super::proto::event_store::client::streams::read_resp;
use super::proto::event_store::client::{self as shared, Empty};
use ledger::{ContentType, EventId, ExpectedRevision, ProposedEvent, RecordedEvent};
use std::collections::HashMap;
use tonic::{Code, Status};

/// An id in either encoding: the two big-endian halves of the 16 bytes, or the text.
pub fn uuid_of(id: Option<shared::Uuid>) -> Result<uuid::Uuid, Status> {
    use shared::uuid::Value;
    match id.and_then(|u| u.value) {
        Some(Value::Structured(s)) => {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&s.most_significant_bits.to_be_bytes());
            bytes[8..].copy_from_slice(&s.least_significant_bits.to_be_bytes());
            Ok(uuid::Uuid::from_bytes(bytes))
        }
        Some(Value::String(s)) => uuid::Uuid::parse_str(&s)
            .map_err(|e| invalid(format!("event id '{s}' is not a UUID: {e}"))),
        None => Err(invalid("an event has no id")),
    }
}

/// An id in the encoding the client asked for.
pub fn uuid_to(id: uuid::Uuid, structured: bool) -> shared::Uuid {
    use shared::uuid::{Structured, Value};
    let value = if structured {
        let b = id.as_bytes();
        Value::Structured(Structured {
            most_significant_bits: i64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
            least_significant_bits: i64::from_be_bytes(b[8..].try_into().expect("8 bytes")),
        })
    } else {
        Value::String(id.hyphenated().to_string())
    };
    shared::Uuid { value: Some(value) }
}

pub fn stream_name(id: Option<shared::StreamIdentifier>) -> Result<String, Status> {
    let id = id.ok_or_else(|| invalid("the request names no stream"))?;
    String::from_utf8(id.stream_name.to_vec()).map_err(|_| invalid("the stream name is not UTF-8"))
}

pub fn stream_id(name: &str) -> shared::StreamIdentifier {
    shared::StreamIdentifier {
        stream_name: name.as_bytes().to_vec().into(),
    }
}

/// The expected revision of a write; each request spells its oneof apart, so each converts
/// its own into these four.
pub enum Expected {
    Revision(u64),
    NoStream,
    Any,
    StreamExists,
}

impl From<Expected> for ExpectedRevision {
    fn from(e: Expected) -> Self {
        match e {
            Expected::Revision(r) => ExpectedRevision::Exact(r),
            Expected::NoStream => ExpectedRevision::NoStream,
            Expected::Any => ExpectedRevision::Any,
            Expected::StreamExists => ExpectedRevision::StreamExists,
        }
    }
}

pub fn required<T>(v: Option<T>, what: &str) -> Result<T, Status> {
    v.ok_or_else(|| invalid(format!("the request has no {what}")))
}

/// A proposed event from its wire parts. `type` and `content-type` are required metadata; the
/// event is JSON when the content type is `application/json`, else bytes.
pub fn proposed(
    id: Option<shared::Uuid>,
    metadata: HashMap<String, String>,
    custom_metadata: prost::bytes::Bytes,
    data: prost::bytes::Bytes,
) -> Result<ProposedEvent, Status> {
    let id = uuid_of(id)?;
    let missing = |key: &str| {
        errors::with_trailers(
            Code::InvalidArgument,
            format!("event {id} has no '{key}' in its metadata (both 'type' and 'content-type' are required)"),
            &[("exception", MISSING_METADATA.into())],
        )
    };
    let event_type = metadata.get("type").ok_or_else(|| missing("type"))?;
    let content_type = metadata
        .get("content-type")
        .ok_or_else(|| missing("content-type"))?;
    Ok(ProposedEvent {
        id: EventId(id),
        event_type: event_type.clone(),
        content_type: ContentType::from_mime(content_type),
        data: data.into(),
        metadata: custom_metadata.into(),
        occurred: None,
    })
}

/// A Lifeline domain event must be well-formed and in its own stream, whoever appends it;
/// other types are the client's business.
pub fn check_domain(stream: &str, e: &ProposedEvent) -> Result<(), Status> {
    if !projections::events::is_domain_type(&e.event_type) {
        return Ok(());
    }
    if e.content_type != ContentType::Json {
        return Err(invalid(format!(
            "event {}: a {} is JSON (content-type application/json); nothing was appended",
            e.id, e.event_type
        )));
    }
    let decoded = projections::decode(&e.event_type, &e.data, &e.metadata)
        .map_err(|err| invalid(format!("event {}: {err}; nothing was appended", e.id)))?;
    let home = decoded.stream();
    if home != stream {
        return Err(invalid(format!(
            "event {}: a {} about this community belongs in stream '{home}', not '{stream}'; nothing was appended",
            e.id, e.event_type
        )));
    }
    Ok(())
}

/// An event as reads send it: `type`, `content-type` and `created` (100 ns ticks since the
/// Unix epoch) in the metadata map; commit and prepare positions are both the ledger position.
/// Takes the event, so that its data goes out without a copy.
pub fn read_event(e: RecordedEvent, structured: bool) -> read_resp::ReadEvent {
    let mut metadata = HashMap::with_capacity(3);
    metadata.insert("type".to_owned(), e.event_type);
    metadata.insert("content-type".to_owned(), e.content_type.mime().to_owned());
    metadata.insert("created".to_owned(), e.recorded.ticks().to_string());
    read_resp::ReadEvent {
        event: Some(read_resp::read_event::RecordedEvent {
            id: Some(uuid_to(e.id.0, structured)),
            stream_identifier: Some(shared::StreamIdentifier {
                stream_name: e.stream.into_bytes().into(),
            }),
            stream_revision: e.revision,
            prepare_position: e.position,
            commit_position: e.position,
            metadata,
            custom_metadata: e.metadata.into(),
            data: e.data.into(),
        }),
        link: None,
        position: Some(read_resp::read_event::Position::CommitPosition(e.position)),
    }
}

pub fn empty() -> Empty {
    Empty {}
}

/// Now, as a protobuf time.
pub fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}

/// The call's deadline from `grpc-timeout` (digits and a unit: H M S m u n), if it sent one.
pub fn deadline(metadata: &tonic::metadata::MetadataMap) -> Option<tokio::time::Instant> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    let d = match unit {
        "H" => std::time::Duration::from_secs(n.saturating_mul(3600)),
        "M" => std::time::Duration::from_secs(n.saturating_mul(60)),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    };
    tokio::time::Instant::now().checked_add(d)
}

/// Runs a write until `deadline` (if any).
pub async fn until<T>(
    deadline: Option<tokio::time::Instant>,
    what: &str,
    f: impl std::future::Future<Output = T>,
) -> Result<T, Status> {
    match deadline {
        None => Ok(f.await),
        Some(at) => tokio::time::timeout_at(at, f)
            .await
            .map_err(|_| errors::deadline_passed(what)),
    }
}
