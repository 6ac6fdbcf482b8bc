//! Between the ledger and the domain: reading Lifeline's domain events out of the log, and
//! resolving a point in time (`--at`).

use anyhow::{anyhow, bail};
use ledger::{
    AllStart, ContentType, Direction, EventId, Ledger, Position, ProposedEvent, Timestamp,
};
use projections::{DomainEvent, Recorded};
use std::ops::ControlFlow;

/// The domain events of the log, in order, and what could not be read as one.
pub struct Loaded {
    pub events: Vec<Recorded>,
    /// (position, why) of events with a domain type whose data does not decode.
    pub unreadable: Vec<(Position, String)>,
}

/// Says on standard error which positions were passed over, and why.
pub fn warn_unreadable(unreadable: &[(Position, String)]) {
    for (p, why) in unreadable {
        eprintln!("lifeline: position {p} passed over: {why}");
    }
}

/// Domain events up to `until` (inclusive); with `occurred_by`, only those that happened by then.
pub fn load(l: &Ledger, until: Position, occurred_by: Option<Timestamp>) -> anyhow::Result<Loaded> {
    load_range(l, 1, until, occurred_by)
}

/// Domain events from `from` to `until`, both inclusive.
pub fn load_range(
    l: &Ledger,
    from: Position,
    until: Position,
    occurred_by: Option<Timestamp>,
) -> anyhow::Result<Loaded> {
    let mut out = Loaded {
        events: Vec::new(),
        unreadable: Vec::new(),
    };
    if until == 0 || from > until {
        return Ok(out);
    }
    l.scan_all(
        AllStart::Position(from.max(1)),
        Direction::Forwards,
        |body, _| {
            if body.position > until {
                return ControlFlow::Break(());
            }
            if !projections::events::is_domain_type(body.event_type) {
                return ControlFlow::Continue(());
            }
            if occurred_by.is_some_and(|t| body.occurred_ns > t.0) {
                return ControlFlow::Continue(());
            }
            match projections::decode(body.event_type, body.data, body.metadata) {
                Ok(event) => out.events.push(Recorded {
                    position: body.position,
                    id: uuid::Uuid::from_bytes(body.event_id),
                    recorded_ns: body.recorded_ns,
                    occurred_ns: body.occurred_ns,
                    event,
                }),
                Err(e) => out.unreadable.push((body.position, e.to_string())),
            }
            ControlFlow::Continue(())
        },
    )?;
    Ok(out)
}

/// The domain events at `positions` (sorted), read in one transaction, each segment once: for
/// the events an index points at. A position that holds no domain event is passed over.
pub fn load_positions(l: &Ledger, positions: &[Position]) -> anyhow::Result<Vec<Recorded>> {
    let mut out = Vec::with_capacity(positions.len());
    for (&p, e) in positions.iter().zip(l.events_at(positions)?) {
        let Some(e) = e else { continue };
        if let Ok(event) = projections::decode(&e.event_type, &e.data, &e.metadata) {
            out.push(Recorded {
                position: p,
                id: e.id.0,
                recorded_ns: e.recorded.0,
                occurred_ns: e.occurred.0,
                event,
            });
        }
    }
    Ok(out)
}

/// The position of the last domain event at or before `position` that is not the bookkeeping
/// of a repair (a plan recorded, a step done); 0 if there is none.
pub fn last_change(l: &Ledger, position: Position) -> anyhow::Result<Position> {
    let mut found = 0;
    if position == 0 {
        return Ok(0);
    }
    l.scan_all(
        AllStart::Position(position.min(l.head()) + 1),
        Direction::Backwards,
        |body, _| {
            let bookkeeping = matches!(body.event_type, "RepairPlanned" | "RepairStepApplied");
            if projections::events::is_domain_type(body.event_type) && !bookkeeping {
                found = body.position;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        },
    )?;
    Ok(found)
}

/// The ledger form of a domain event: its id, and when it happened when that is known.
pub fn proposed(e: &DomainEvent, id: EventId, occurred: Option<Timestamp>) -> ProposedEvent {
    let (event_type, data, metadata) = e.encode();
    ProposedEvent {
        id,
        event_type,
        content_type: ContentType::Json,
        data,
        metadata,
        occurred,
    }
}

/// A point in the log's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    Now,
    Position(Position),
    Time(Timestamp),
    Backup(String),
}

impl std::str::FromStr for At {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<At> {
        if s.is_empty() {
            bail!("--at needs a value: now, @POSITION, an RFC 3339 time, or a backup label");
        }
        if s == "now" {
            return Ok(At::Now);
        }
        if let Some(p) = s.strip_prefix('@') {
            let p = p
                .parse()
                .map_err(|_| anyhow!("'{s}': a position is @ followed by a number, like @1234"))?;
            return Ok(At::Position(p));
        }
        if s.as_bytes().first().is_some_and(u8::is_ascii_digit) && s.contains('T') {
            return crate::time_fmt::parse(s).map(At::Time);
        }
        Ok(At::Backup(s.to_owned()))
    }
}

/// Where replay stops: the last position, and an occurred-time bound when `--occurred`.
pub struct Point {
    pub position: Position,
    pub occurred_by: Option<Timestamp>,
}

pub fn resolve(l: &Ledger, at: &At, occurred: bool) -> anyhow::Result<Point> {
    let head = l.head();
    let point = |position| Point {
        position,
        occurred_by: None,
    };
    match at {
        At::Now => Ok(point(head)),
        At::Position(p) if *p > head => Err(crate::exit::with_code(
            crate::exit::NOT_FOUND,
            format!("position {p} is past the end of the log (last position {head})"),
        )),
        At::Position(p) => Ok(point(*p)),
        At::Time(t) if occurred => Ok(Point {
            position: head,
            occurred_by: Some(*t),
        }),
        At::Time(t) => Ok(point(l.position_at_time(*t)?)),
        At::Backup(label) => backup_position(l, label).map(point),
    }
}

/// The position of the backup labelled `label`, found through the tag index (`type:BackupTaken`)
/// rather than a scan of the log.
fn backup_position(l: &Ledger, label: &str) -> anyhow::Result<Position> {
    crate::audit::catch_up(l)?;
    let backups = load_positions(l, &l.tagged("type:BackupTaken", 1, l.head())?)?;
    for r in backups {
        if matches!(&r.event, DomainEvent::BackupTaken(b) if b.label == label) {
            return Ok(r.position);
        }
    }
    Err(crate::exit::with_code(
        crate::exit::NOT_FOUND,
        format!("no backup labelled '{label}' (and it is not @POSITION or a time)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_parses_every_form() {
        assert_eq!("now".parse::<At>().unwrap(), At::Now);
        assert_eq!("@12".parse::<At>().unwrap(), At::Position(12));
        assert!("@x".parse::<At>().is_err());
        assert!(matches!(
            "2026-11-20T03:00:00Z".parse::<At>().unwrap(),
            At::Time(_)
        ));
        assert!("2026-11-20T99:00:00Z".parse::<At>().is_err());
        assert_eq!(
            "activities-nightly".parse::<At>().unwrap(),
            At::Backup("activities-nightly".into())
        );
    }
}
