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
    load_types(
        l,
        from,
        until,
        occurred_by,
        projections::events::is_domain_type,
    )
}

/// The domain events from `from` to `until` (inclusive) whose type `wanted` accepts: the others
/// are passed over without being decoded.
pub fn load_types(
    l: &Ledger,
    from: Position,
    until: Position,
    occurred_by: Option<Timestamp>,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<Loaded> {
    let mut events = Vec::new();
    let unreadable = scan_range(l, from, until, occurred_by, wanted, |r| {
        events.push(r);
        ControlFlow::Continue(())
    })?;
    Ok(Loaded { events, unreadable })
}

/// Hands `each` the domain events from `from` to `until` (inclusive) whose type `wanted`
/// accepts, in order; with `occurred_by`, only those that happened by then. `each` may stop
/// the scan. Returns (position, why) of the events passed over because they do not decode.
pub fn scan_range(
    l: &Ledger,
    from: Position,
    until: Position,
    occurred_by: Option<Timestamp>,
    wanted: impl Fn(&str) -> bool,
    mut each: impl FnMut(Recorded) -> ControlFlow<()>,
) -> anyhow::Result<Vec<(Position, String)>> {
    let mut unreadable = Vec::new();
    if until == 0 || from > until {
        return Ok(unreadable);
    }
    l.scan_all(
        AllStart::Position(from.max(1)),
        Direction::Forwards,
        |body, _| {
            if body.position > until {
                return ControlFlow::Break(());
            }
            if !projections::events::is_domain_type(body.event_type) || !wanted(body.event_type) {
                return ControlFlow::Continue(());
            }
            if occurred_by.is_some_and(|t| body.occurred_ns > t.0) {
                return ControlFlow::Continue(());
            }
            match projections::decode(body.event_type, body.data, body.metadata) {
                Ok(event) => each(Recorded {
                    position: body.position,
                    id: uuid::Uuid::from_bytes(body.event_id),
                    recorded_ns: body.recorded_ns,
                    occurred_ns: body.occurred_ns,
                    event,
                }),
                Err(e) => {
                    unreadable.push((body.position, e.to_string()));
                    ControlFlow::Continue(())
                }
            }
        },
    )?;
    Ok(unreadable)
}

/// Events a streamed range hands over at a time.
const STREAM_CHUNK_EVENTS: usize = 4096;
/// Chunks read and decoded ahead of the one being used: the memory a stream holds is bounded by
/// these, whatever the length of the range.
const STREAM_CHUNKS_AHEAD: usize = 4;

/// [`load_range`] without holding the range in memory: the events are read and decoded on a
/// helper thread and handed to `each` in chunks, in order, while the next are decoded. `each`
/// may stop the stream early (`Break`), or fail it. Returns what [`Loaded::unreadable`] holds.
pub fn stream_range(
    l: &Ledger,
    from: Position,
    until: Position,
    occurred_by: Option<Timestamp>,
    mut each: impl FnMut(&[Recorded]) -> anyhow::Result<ControlFlow<()>>,
) -> anyhow::Result<Vec<(Position, String)>> {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Recorded>>(STREAM_CHUNKS_AHEAD);
        let reader = s.spawn(move || {
            let mut chunk = Vec::with_capacity(STREAM_CHUNK_EVENTS);
            let unreadable = scan_range(
                l,
                from,
                until,
                occurred_by,
                |_| true,
                |r| {
                    chunk.push(r);
                    if chunk.len() < STREAM_CHUNK_EVENTS {
                        return ControlFlow::Continue(());
                    }
                    match tx.send(std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(STREAM_CHUNK_EVENTS),
                    )) {
                        Ok(()) => ControlFlow::Continue(()),
                        // The receiving side stopped.
                        Err(_) => ControlFlow::Break(()),
                    }
                },
            );
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            unreadable
        });
        let mut outcome = Ok(());
        while let Ok(chunk) = rx.recv() {
            // The chunk's events are freed here, by the thread that used them: handing them back
            // to the reader to free was measured slower (sim of 30,000 communities, replay from
            // the start: 4.3 → 5.1 s).
            match each(&chunk) {
                Ok(ControlFlow::Continue(())) => {}
                Ok(ControlFlow::Break(())) => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        // The reader, if still going, stops at its next hand-over.
        drop(rx);
        let unreadable = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        outcome?;
        unreadable
    })
}

/// The domain events at `positions` (sorted), read in one transaction, each segment once: for
/// the events an index points at. A position that holds no domain event is passed over.
pub fn load_positions(l: &Ledger, positions: &[Position]) -> anyhow::Result<Vec<Recorded>> {
    Ok(load_at(l, positions)?.events)
}

/// [`load_positions`], with the domain events among them that do not decode.
pub fn load_at(l: &Ledger, positions: &[Position]) -> anyhow::Result<Loaded> {
    let mut events = Vec::with_capacity(positions.len());
    let mut unreadable = Vec::new();
    for (&p, e) in positions.iter().zip(l.events_at(positions)?) {
        let Some(e) = e else { continue };
        match projections::decode(&e.event_type, &e.data, &e.metadata) {
            Ok(event) => events.push(Recorded {
                position: p,
                id: e.id.0,
                recorded_ns: e.recorded.0,
                occurred_ns: e.occurred.0,
                event,
            }),
            Err(why) if projections::events::is_domain_type(&e.event_type) => {
                unreadable.push((p, why.to_string()));
            }
            Err(_) => {}
        }
    }
    Ok(Loaded { events, unreadable })
}

/// The position of the last domain event at or before `position` that is not the bookkeeping
/// of a repair (see [`projections::events::DomainEvent::is_bookkeeping`]); 0 if there is none.
pub fn last_change(l: &Ledger, position: Position) -> anyhow::Result<Position> {
    let mut found = 0;
    if position == 0 {
        return Ok(0);
    }
    l.scan_all(
        AllStart::Position(position.min(l.head()) + 1),
        Direction::Backwards,
        |body, _| {
            // Only a repair's events are decoded; one that does not decode is not a change
            // (the fold skips it too).
            let bookkeeping = match body.event_type {
                "RepairPlanned" | "RepairStepPlanned" => true,
                "RepairStepApplied" => {
                    projections::events::decode(body.event_type, body.data, body.metadata)
                        .map_or(true, |e| e.is_bookkeeping())
                }
                _ => false,
            };
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

/// As `--at` takes it back.
impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Now => f.write_str("now"),
            At::Position(p) => write!(f, "@{p}"),
            At::Time(t) => f.write_str(&crate::time_fmt::format(*t)),
            At::Backup(label) => f.write_str(label),
        }
    }
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
#[derive(Clone, Copy, Debug)]
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
        At::Backup(label) => match backup_position(l, label) {
            // No backup has that label: a date stands for its first instant, UTC.
            Err(e) if crate::exit::code_of(&e) == crate::exit::NOT_FOUND => {
                match crate::time_fmt::parse_date(label) {
                    Ok(Some(day)) => resolve(l, &At::Time(day), occurred),
                    Ok(None) => Err(e),
                    Err(why) => Err(crate::exit::with_code(
                        crate::exit::NOT_FOUND,
                        format!("{why}, and {e}"),
                    )),
                }
            }
            found => found.map(point),
        },
    }
}

/// The position of the backup labelled `label`, found through the tag index (`type:BackupTaken`)
/// rather than a scan of the log.
fn backup_position(l: &Ledger, label: &str) -> anyhow::Result<Position> {
    crate::audit::catch_up(l)?;
    let backups = load_positions(l, &l.tagged("type:BackupTaken", 1, l.head())?)?;
    let mut labels = Vec::with_capacity(backups.len());
    for r in backups {
        if let DomainEvent::BackupTaken(b) = r.event {
            if b.label == label {
                return Ok(r.position);
            }
            labels.push(b.label);
        }
    }
    // The latest few, to say what a label looks like here.
    const SHOWN: usize = 5;
    let recorded = match labels.len() {
        0 => "no backup is recorded".to_owned(),
        n => format!(
            "the latest of the {n} recorded: {}",
            labels[n.saturating_sub(SHOWN)..].join(", ")
        ),
    };
    Err(crate::exit::with_code(
        crate::exit::NOT_FOUND,
        format!(
            "no backup labelled '{label}' ({recorded}); a point is now, @POSITION, an RFC \
             3339 time (2026-11-22T18:49:03Z), a date (2026-11-22, from midnight UTC) or a \
             backup's label"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger of `n` events: domain events, with every 7th one of another type and the 100th
    /// a domain type whose data does not decode.
    fn mixed(n: u64) -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path().join("m.redb"), ledger::Options::default()).unwrap();
        let community = uuid::Uuid::from_u128(7);
        let records = (0..n)
            .map(|i| {
                let e = DomainEvent::CommunityUpdated(projections::events::CommunityUpdated {
                    community,
                    name: Some(format!("name {i}")),
                    ..Default::default()
                });
                let mut p = proposed(&e, EventId(uuid::Uuid::from_u128(u128::from(i) + 1)), None);
                if i % 7 == 6 {
                    p.event_type = "SomethingElse".into();
                }
                if i == 99 {
                    p.data = b"{\"community\": 3}".to_vec();
                }
                ledger::ImportRecord {
                    stream: "s".into(),
                    revision: i,
                    event: p,
                    recorded: Timestamp(1),
                }
            })
            .collect();
        l.import_blocking(records).unwrap();
        (dir, l)
    }

    #[test]
    fn a_streamed_range_is_the_loaded_range_in_order() {
        let (_dir, l) = mixed(3 * STREAM_CHUNK_EVENTS as u64 + 11);
        let (from, until) = (5, l.head() - 3);
        let loaded = load_range(&l, from, until, None).unwrap();
        let mut streamed = Vec::new();
        let mut chunks = 0;
        let unreadable = stream_range(&l, from, until, None, |chunk| {
            assert!(!chunk.is_empty() && chunk.len() <= STREAM_CHUNK_EVENTS);
            chunks += 1;
            streamed.extend(chunk.iter().map(|r| r.position));
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        let positions: Vec<u64> = loaded.events.iter().map(|r| r.position).collect();
        assert_eq!(streamed, positions);
        assert!(chunks > 2, "{chunks} chunks");
        assert_eq!(unreadable, loaded.unreadable);
        assert_eq!(unreadable.len(), 1, "{unreadable:?}");
        assert_eq!(unreadable[0].0, 100);
        assert!(positions.iter().all(|p| p % 7 != 0));
    }

    #[test]
    fn a_stream_stops_when_told_or_failed_and_reports_the_failure() {
        let (_dir, l) = mixed(4 * STREAM_CHUNK_EVENTS as u64);
        let mut chunks = 0;
        stream_range(&l, 1, l.head(), None, |_| {
            chunks += 1;
            Ok(ControlFlow::Break(()))
        })
        .unwrap();
        assert_eq!(chunks, 1);
        let mut chunks = 0;
        let failed = stream_range(&l, 1, l.head(), None, |_| {
            chunks += 1;
            anyhow::bail!("the fold failed")
        });
        assert_eq!(failed.unwrap_err().to_string(), "the fold failed");
        assert_eq!(chunks, 1);
    }

    #[test]
    fn load_types_decodes_only_the_types_asked_for() {
        let (_dir, l) = mixed(50);
        let none = load_types(&l, 1, l.head(), None, |t| t == "DeliveryFailed").unwrap();
        assert!(none.events.is_empty() && none.unreadable.is_empty());
        let all = load_types(&l, 1, l.head(), None, |t| t == "CommunityUpdated").unwrap();
        assert_eq!(all.events.len(), 50 - 50 / 7);
    }

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
