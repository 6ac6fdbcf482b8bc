//! `record`: append one domain event after checking it the way Connections would.

use crate::cli::{Format, RecordArgs};
use crate::exit::{with_code, ERROR};
use ledger::{AppendError, Direction, EventId, ExpectedRevision, Ledger, ReadError, StreamStart};
use projections::DomainEvent;

/// Attempts when another writer appends to the same stream between reading and appending.
const CONFLICT_RETRIES: usize = 5;

pub fn record(l: &Ledger, a: &RecordArgs, format: Format) -> anyhow::Result<()> {
    let occurred = crate::time_fmt::parse_flag(a.occurred.as_deref(), "--occurred")?;
    let recorded = record_in(
        Ends::Process,
        l,
        &a.event_type,
        a.data.as_bytes(),
        a.force,
        occurred,
        a.id,
    );
    l.close();
    show(&recorded?, format)
}

/// What ends after [`record_in`]: the process (`lifeline record`: what it built is left for
/// the operating system to reclaim), or only the call (a server, which goes on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ends {
    Process,
    Call,
}

/// Checks one domain event the way Connections would (unless `force`) and appends it; what was
/// recorded, as `record --format json` says it: `{"type", "stream", "id", "position",
/// "revision"}`. A rejected event appends nothing.
pub fn record_in(
    ends: Ends,
    l: &Ledger,
    event_type: &str,
    data: &[u8],
    force: bool,
    occurred: Option<ledger::Timestamp>,
    id: Option<uuid::Uuid>,
) -> anyhow::Result<serde_json::Value> {
    let event = projections::decode(event_type, data, b"")
        .map_err(|e| with_code(ERROR, format!("{e}; nothing was recorded")))?;
    let id = id.map_or_else(EventId::new_random, EventId);
    let stream = event.stream();
    let rejected = |r: &dyn std::fmt::Display| {
        with_code(
            ERROR,
            format!(
                "{event_type} rejected: {r}; nothing was recorded (--force records it as it \
                 happened)"
            ),
        )
    };
    if !force {
        check_delivery_report(l, &event).map_err(|r| rejected(&r))?;
    }
    for _ in 0..CONFLICT_RETRIES {
        let head = l.head();
        if !force {
            let point = crate::domain::Point {
                position: head,
                occurred_by: None,
            };
            let world = crate::world::checking_world(l, &point, &event)?;
            let verdict = projections::validate::validate(&world, &event);
            match ends {
                // Not freed: the process ends soon after (see `recover::release_at_exit`); a
                // retry after a conflict leaves one more, at most CONFLICT_RETRIES in all.
                Ends::Process => crate::recover::release_at_exit(world),
                Ends::Call => drop(world),
            }
            if let Err(r) = verdict {
                return Err(rejected(&r));
            }
        }
        // The stream must not have moved since the state was read.
        let expected = match l.stream_record(&stream)?.and_then(|r| r.last_revision) {
            Some(r) => ExpectedRevision::Exact(r),
            None => ExpectedRevision::NoStream,
        };
        let proposed = crate::domain::proposed(&event, id, occurred);
        match l.append_blocking(&stream, expected, vec![proposed]) {
            Ok(r) => {
                return Ok(serde_json::json!({
                    "type": event.type_name(), "stream": stream, "id": id.to_string(),
                    "position": r.position.unwrap_or(0), "revision": r.revision.to_string(),
                }))
            }
            Err(AppendError::WrongExpectedVersion { .. }) if !force => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(with_code(
        ERROR,
        format!("{stream} kept changing while recording; nothing was recorded, try again"),
    ))
}

/// Says what [`record_in`] recorded, in `format`.
pub fn show(v: &serde_json::Value, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => crate::output::json_line(v),
        Format::Table => {
            let text = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            println!(
                "recorded {} {} in {} at position {}",
                text("type"),
                text("id"),
                text("stream"),
                v["position"]
            );
            Ok(())
        }
    }
}

/// A delivery report must name a lifecycle event of the community it names: replays find a
/// community's failed and retried deliveries by that community (`history`, `replay
/// --community`), so a report naming another community's event, or an event never pushed to
/// the apps, would change the wrong community's state or none.
fn check_delivery_report(l: &Ledger, event: &DomainEvent) -> Result<(), String> {
    let (DomainEvent::DeliveryFailed(d) | DomainEvent::DeliveryRetried(d)) = event else {
        return Ok(());
    };
    let stream = projections::events::community_stream(d.community);
    let events = match l.read_stream(&stream, StreamStart::Start, Direction::Forwards, u64::MAX) {
        Ok(events) => events,
        Err(ReadError::StreamNotFound { .. }) => {
            return Err(format!("community {} has no events", d.community))
        }
        Err(e) => return Err(format!("reading {stream}: {e}")),
    };
    let Some(named) = events.iter().find(|e| e.id.0 == d.event) else {
        return Err(format!(
            "event {} is not an event of community {} ({stream})",
            d.event, d.community
        ));
    };
    match projections::decode(&named.event_type, &named.data, &named.metadata) {
        Ok(e) if projections::fold::is_lifecycle(&e) => Ok(()),
        Ok(_) => Err(format!(
            "event {} is a {}, which is not delivered to the apps",
            d.event, named.event_type
        )),
        Err(e) => Err(format!("event {} does not decode: {e}", d.event)),
    }
}
