//! The world at a point: from the nearest usable snapshot, else from the start; and building
//! snapshots (`lifeline snapshot`).

use crate::domain::{load, load_range, Point};
use ledger::{Ledger, Position};
use projections::{snapshot, World};

/// How a world was built.
pub struct Built {
    pub world: World,
    /// The snapshot it started from, if any.
    pub from_snapshot: Option<Position>,
    pub events_folded: usize,
    pub unreadable: Vec<(Position, String)>,
}

/// The world after every domain event up to `point`.
pub fn world_at(l: &Ledger, point: &Point, use_snapshots: bool) -> anyhow::Result<Built> {
    if use_snapshots && point.occurred_by.is_none() {
        if let Some(built) = from_snapshot(l, point.position)? {
            return Ok(built);
        }
    }
    let loaded = load(l, point.position, point.occurred_by)?;
    Ok(Built {
        events_folded: loaded.events.len(),
        world: World::replay(&loaded.events),
        from_snapshot: None,
        unreadable: loaded.unreadable,
    })
}

/// Snapshots tried, newest first, before replaying from the start.
const SNAPSHOT_ATTEMPTS: usize = 8;

/// Continues the latest snapshot at or before `position` that decodes and that no later failure
/// report contradicts (trying older ones when the newest cannot be used).
fn from_snapshot(l: &Ledger, position: Position) -> anyhow::Result<Option<Built>> {
    let Some(start) = start_at_or_before(l, position, position, None)? else {
        return Ok(None);
    };
    Ok(Some(Built {
        events_folded: start.tail.events.len(),
        world: start.world.continued(&start.tail.events),
        from_snapshot: Some(start.at),
        unreadable: start.tail.unreadable,
    }))
}

/// A snapshot to continue, and the domain events after it.
pub struct Started {
    /// The world at `at`, holding the backups that `tail` restores but that were taken before
    /// `at`.
    pub world: World,
    pub at: Position,
    /// The domain events after `at`, up to the `until` asked for.
    pub tail: crate::domain::Loaded,
}

/// The latest snapshot at or before `target` that decodes and that no failure report up to
/// `until` contradicts, with the events after it up to `until`; older snapshots are tried when
/// the newest cannot be used. `None` when no snapshot serves. `latest`, when given, is the
/// latest snapshot at or before `until` as the caller already read it: used instead of reading
/// it again when it is the one wanted.
pub fn start_at_or_before(
    l: &Ledger,
    target: Position,
    until: Position,
    mut latest: Option<(Position, Vec<u8>)>,
) -> anyhow::Result<Option<Started>> {
    let mut bound = target;
    for _ in 0..SNAPSHOT_ATTEMPTS {
        // Nothing is stored between `latest` and `until`, so it is also the latest at or
        // before any bound it does not pass.
        let found = match latest.take() {
            Some(known) if known.0 <= bound => Some(known),
            _ => l.snapshot_at_or_before(bound)?,
        };
        let Some((at, bytes)) = found else {
            return Ok(None);
        };
        // The events after the snapshot are read while it is decoded (the decoding takes
        // seconds at 100,000 communities, reading the tail a fraction of that).
        let (decoded, tail) = std::thread::scope(|s| {
            let tail = s.spawn(|| load_range(l, at + 1, until, None));
            let decoded = snapshot::decode(&bytes);
            let tail = tail
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (decoded, tail)
        });
        drop(bytes);
        match decoded {
            Ok(mut world) => {
                let tail = tail?;
                if world.can_continue_with(&tail.events) {
                    // Backups restored in the tail but taken before the snapshot: each is the
                    // database as replayed to the backup's position (from a snapshot in turn).
                    for b in world.backups_needed(&tail.events) {
                        let point = Point {
                            position: b.position,
                            occurred_by: None,
                        };
                        let then = world_at(l, &point, true)?.world;
                        world.provide_backup(&b.label, then.actual.db(b.database).clone());
                    }
                    return Ok(Some(Started { world, at, tail }));
                }
            }
            Err(why) => eprintln!("lifeline: snapshot at position {at} not used ({why})"),
        }
        let Some(earlier) = at.checked_sub(1) else {
            return Ok(None);
        };
        bound = earlier;
    }
    Ok(None)
}

/// Positions between the snapshots written after bulk work (`simulate`, `import`, `sync`) and by
/// `serve`; `lifeline snapshot --every` chooses its own.
pub const SNAPSHOT_EVERY: u64 = 100_000;

/// Stores a snapshot after every `every` positions up to the head, where none is stored yet.
/// Each equals the replay of exactly the events up to its position. Folding starts from the
/// latest stored snapshot before the first one missing, else from the start of the log.
pub fn build_snapshots(
    l: &Ledger,
    every: u64,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<SnapshotsBuilt> {
    let head = l.head();
    let have: std::collections::HashSet<Position> =
        l.snapshots()?.into_iter().map(|(p, _)| p).collect();
    let mut marks = marks_up_to(head, every);
    marks.retain(|m| !have.contains(m));
    let Some(&first) = marks.first() else {
        return Ok(SnapshotsBuilt {
            written: 0,
            continued: None,
        });
    };
    if let Some(start) = start_at_or_before(l, first - 1, head, None)? {
        let (world, events) = (start.world, &start.tail.events);
        if let Some(written) = write_marks(l, world, events, &marks, false, &mut progress)? {
            return Ok(SnapshotsBuilt {
                written,
                continued: Some(start.at),
            });
        }
    }
    Ok(SnapshotsBuilt {
        written: write_marks_from_start(l, head, &marks, &mut progress)?,
        continued: None,
    })
}

/// The positions of the snapshots due every `every` positions up to `head`. Every N positions
/// only: a snapshot at each backup as well was measured (domain_bench, 200k events, 4
/// databases backed up nightly): storage went from ~12% to ~30% of the ledger; a restore needs
/// only the backed-up database, which belongs in a smaller record.
fn marks_up_to(head: Position, every: u64) -> Vec<Position> {
    let every = every.max(1);
    (1..=head / every).map(|k| k * every).collect()
}

/// Folds the whole log up to `head` and stores a snapshot at each of `marks`.
fn write_marks_from_start(
    l: &Ledger,
    head: Position,
    marks: &[Position],
    progress: &mut impl FnMut(u64),
) -> anyhow::Result<usize> {
    let events = load(l, head, None)?.events;
    let written = write_marks(l, World::default(), &events, marks, true, progress)?;
    Ok(written.expect("a fold from the start always continues"))
}

/// Stores a snapshot after every `every` positions up to the head from a fold of the whole
/// log, replacing those stored at the same positions: after an upgrade, so that they take
/// this build's format (snapshots of earlier formats are read, but decode more slowly).
pub fn rewrite_snapshots(
    l: &Ledger,
    every: u64,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<usize> {
    let head = l.head();
    let marks = marks_up_to(head, every);
    if marks.is_empty() {
        return Ok(0);
    }
    write_marks_from_start(l, head, &marks, &mut progress)
}

/// What [`build_snapshots`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotsBuilt {
    pub written: usize,
    /// The stored snapshot the fold continued, if it did not start from the beginning.
    pub continued: Option<Position>,
}

/// Folds `events`, which follow `world`, and stores a snapshot at each of `marks`. A failure
/// report that names an event of an earlier segment means the fold so far took that delivery
/// as done: from the start of the log, the prefix is folded again knowing it; otherwise `None`
/// (the caller starts from the beginning).
fn write_marks(
    l: &Ledger,
    mut world: World,
    events: &[projections::Recorded],
    marks: &[Position],
    from_start: bool,
    progress: &mut impl FnMut(u64),
) -> anyhow::Result<Option<usize>> {
    // Every backup restored in `events` is kept while folding them in segments.
    let keep = projections::fold::restored_labels(events);
    world.keep_backups = Some(keep.clone());
    let mut done = 0;
    for &mark in marks {
        let end = done + events[done..].partition_point(|r| r.position <= mark);
        let segment = &events[done..end];
        world = match (world.can_continue_with(segment), from_start) {
            (true, _) => world.continued_keeping(segment),
            (false, true) => World {
                keep_backups: Some(keep.clone()),
                ..World::default()
            }
            .continued_keeping(&events[..end]),
            (false, false) => return Ok(None),
        };
        done = end;
        l.put_snapshot_blocking(mark, snapshot::encode(&world))?;
        progress(mark);
    }
    Ok(Some(marks.len()))
}

/// After bulk work: stores the snapshots due every [`SNAPSHOT_EVERY`] positions that are
/// missing, with a progress bar on a terminal. A failure is reported, not raised: the work
/// itself is done, and `lifeline snapshot` can write them later.
pub fn keep_snapshots(l: &Ledger) {
    if l.head() < SNAPSHOT_EVERY {
        return;
    }
    let bar = crate::progress::bar(l.head(), "snapshot");
    let built = build_snapshots(l, SNAPSHOT_EVERY, |p| bar.set_position(p));
    bar.finish_and_clear();
    if let Err(e) = built {
        eprintln!("lifeline: snapshots not written ({e:#}); `lifeline snapshot` writes them");
    }
}
