//! `record`: append one domain event after checking it the way Connections would.

use crate::cli::{Format, RecordArgs};
use crate::exit::{with_code, ERROR};
use ledger::{AppendError, EventId, ExpectedRevision, Ledger};

/// Attempts when another writer appends to the same stream between reading and appending.
const CONFLICT_RETRIES: usize = 5;

pub fn record(l: &Ledger, a: &RecordArgs, format: Format) -> anyhow::Result<()> {
    let event = projections::decode(&a.event_type, a.data.as_bytes(), b"")
        .map_err(|e| with_code(ERROR, format!("{e}; nothing was recorded")))?;
    let occurred = crate::time_fmt::parse_flag(a.occurred.as_deref(), "--occurred")?;
    let id = a.id.map_or_else(EventId::new_random, EventId);
    let stream = event.stream();
    let event_type = event.type_name();
    for _ in 0..CONFLICT_RETRIES {
        let head = l.head();
        if !a.force {
            let point = crate::domain::Point {
                position: head,
                occurred_by: None,
            };
            // The command ends soon after: not freed (see `recover::release_at_exit`); a
            // retry after a conflict leaves one more, at most CONFLICT_RETRIES in all.
            let world = std::mem::ManuallyDrop::new(crate::world::world_at(l, &point, true)?.world);
            if let Err(r) = projections::validate::validate(&world, &event) {
                return Err(with_code(
                    ERROR,
                    format!("{} rejected: {r}; nothing was recorded (--force records it as it happened)", a.event_type),
                ));
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
                l.close();
                let position = r.position.unwrap_or(0);
                return match format {
                    Format::Json => crate::output::json_line(&serde_json::json!({
                        "type": event_type, "stream": stream, "id": id.to_string(),
                        "position": position, "revision": r.revision.to_string(),
                    })),
                    Format::Table => {
                        println!("recorded {event_type} {id} in {stream} at position {position}");
                        Ok(())
                    }
                };
            }
            Err(AppendError::WrongExpectedVersion { .. }) if !a.force => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(with_code(
        ERROR,
        format!("{stream} kept changing while recording; nothing was recorded, try again"),
    ))
}
