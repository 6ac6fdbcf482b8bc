//! Checks made before anything is staged, so that a rejected write writes nothing.

use crate::error::AppendError;
use crate::event::ProposedEvent;
use crate::limits::Limits;

pub(crate) fn stream_name(stream: &str, limits: &Limits) -> Result<(), AppendError> {
    let invalid = |reason: String| AppendError::InvalidStreamName {
        stream: stream.chars().take(200).collect(),
        reason,
    };
    if stream.is_empty() {
        return Err(invalid("a stream name cannot be empty".into()));
    }
    // Room for the `$$` of the metadata stream.
    if stream.len() + 2 > limits.stream_name_bytes_max {
        return Err(invalid(format!(
            "{} bytes; the limit is {}",
            stream.len(),
            limits.stream_name_bytes_max - 2
        )));
    }
    if stream == "$all" {
        return Err(invalid("$all is the whole log, not a stream".into()));
    }
    if stream.chars().any(char::is_control) {
        return Err(invalid("control characters are not allowed".into()));
    }
    Ok(())
}

pub(crate) fn events(events: &[ProposedEvent], limits: &Limits) -> Result<(), AppendError> {
    if events.len() > limits.append_events_max {
        return Err(AppendError::TooManyEvents {
            count: events.len(),
            max: limits.append_events_max,
        });
    }
    let mut total = 0usize;
    for e in events {
        let invalid = |reason: String| AppendError::InvalidEvent { id: e.id, reason };
        if e.event_type.is_empty() {
            return Err(invalid("the event type cannot be empty".into()));
        }
        if e.event_type.len() > limits.event_type_bytes_max {
            return Err(invalid(format!(
                "the event type is {} bytes; the limit is {}",
                e.event_type.len(),
                limits.event_type_bytes_max
            )));
        }
        if e.metadata.len() > limits.metadata_bytes_max {
            return Err(invalid(format!(
                "metadata is {} bytes; the limit is {}",
                e.metadata.len(),
                limits.metadata_bytes_max
            )));
        }
        let size = e.size_bytes();
        if size > limits.event_bytes_max {
            return Err(AppendError::EventTooLarge {
                id: e.id,
                size,
                max: limits.event_bytes_max,
            });
        }
        total += size;
    }
    if total > limits.append_bytes_max {
        return Err(AppendError::AppendTooLarge {
            size: total,
            max: limits.append_bytes_max,
        });
    }
    Ok(())
}
