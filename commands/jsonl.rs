//! The JSON Lines form of an event (schema/jsonl.md): what `read --format json` and `export`
//! write and `import` reads. Data and metadata that are JSON are embedded byte for byte, so an
//! export imported into an empty ledger gives the same records and the same checkpoint root.
//! Every line carries `data` and `metadata`: `null` when there are no bytes (or they are in the
//! `_base64` field beside it), so the bytes `null` themselves go in base64.

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use ledger::{ContentType, EventId, ImportRecord, ProposedEvent, RecordedEvent, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[derive(Serialize, Deserialize, Debug)]
pub struct Line<'a> {
    pub stream: String,
    pub revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    pub id: uuid::Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default = "json_mime")]
    pub content_type: String,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
    #[serde(borrow, default)]
    pub metadata: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

fn json_mime() -> String {
    ContentType::Json.mime().to_owned()
}

/// Bytes that can stand in a JSON line verbatim: valid JSON with no line breaks, other than
/// `null` (which a line reads as no bytes at all).
fn embeddable(bytes: &[u8]) -> Option<Box<RawValue>> {
    if bytes.is_empty() || bytes == b"null" || bytes.contains(&b'\n') || bytes.contains(&b'\r') {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    RawValue::from_string(text.to_owned())
        .ok()
        .filter(|r| r.get().len() == text.len())
}

/// Bytes as a line carries them: embedded JSON, or base64 (none when there are no bytes).
fn carried(bytes: &[u8]) -> (Option<Box<RawValue>>, Option<String>) {
    let json = embeddable(bytes);
    let b64 = (json.is_none() && !bytes.is_empty())
        .then(|| base64::engine::general_purpose::STANDARD.encode(bytes));
    (json, b64)
}

/// Writes one event as a JSON line.
pub fn write_event(out: &mut impl std::io::Write, e: &RecordedEvent) -> anyhow::Result<()> {
    let (data, data_base64) = carried(&e.data);
    let (metadata, metadata_base64) = carried(&e.metadata);
    let line = Line {
        stream: e.stream.clone(),
        revision: e.revision,
        position: Some(e.position),
        id: e.id.0,
        event_type: e.event_type.clone(),
        content_type: e.content_type.mime().to_owned(),
        data: data.as_deref(),
        data_base64,
        metadata: metadata.as_deref(),
        metadata_base64,
        recorded: Some(crate::time_fmt::format(e.recorded)),
        occurred: Some(crate::time_fmt::format(e.occurred)),
        hash: Some(ledger::hex32::encode(&e.hash)),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes up to `count` events of `$all` from `start` as JSON lines, reading as it writes;
/// `progress(position)` is called every few thousand events.
pub fn write_all(
    l: &ledger::Ledger,
    start: ledger::AllStart,
    direction: ledger::Direction,
    count: u64,
    out: &mut impl std::io::Write,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<()> {
    let mut left = count;
    let mut failed = None;
    if left > 0 {
        l.scan_all(start, direction, |body, hash| {
            if let Err(e) = write_event(out, &body.to_event(*hash)) {
                failed = Some(e);
                return std::ops::ControlFlow::Break(());
            }
            if body.position % 4096 == 0 {
                progress(body.position);
            }
            left -= 1;
            if left == 0 {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })?;
    }
    failed.map_or(Ok(()), Err)
}

/// Parses one line into the record an import writes. `now` is the recorded time of lines
/// that carry none.
pub fn parse_line(text: &str, now: Timestamp) -> anyhow::Result<ImportRecord> {
    let line: Line<'_> = serde_json::from_str(text).map_err(|e| anyhow!("{e}"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let data = match (line.data, &line.data_base64) {
        (Some(_), Some(_)) => bail!("give data or data_base64, not both"),
        (Some(raw), None) => raw.get().as_bytes().to_vec(),
        (None, Some(s)) => b64.decode(s).context("data_base64 is not base64")?,
        (None, None) => Vec::new(),
    };
    let metadata = match (line.metadata, &line.metadata_base64) {
        (Some(_), Some(_)) => bail!("give metadata or metadata_base64, not both"),
        (Some(raw), None) => raw.get().as_bytes().to_vec(),
        (None, Some(s)) => b64.decode(s).context("metadata_base64 is not base64")?,
        (None, None) => Vec::new(),
    };
    let recorded = match &line.recorded {
        Some(t) => crate::time_fmt::parse(t).context("recorded")?,
        None => now,
    };
    let occurred = match &line.occurred {
        Some(t) => crate::time_fmt::parse(t).context("occurred")?,
        None => recorded,
    };
    if line.stream.is_empty() {
        bail!("stream is empty");
    }
    if line.event_type.is_empty() {
        bail!("type is empty");
    }
    Ok(ImportRecord {
        stream: line.stream,
        revision: line.revision,
        recorded,
        event: ProposedEvent {
            id: EventId(line.id),
            event_type: line.event_type,
            content_type: ContentType::from_mime(&line.content_type),
            data,
            metadata,
            occurred: Some(occurred),
        },
    })
}
