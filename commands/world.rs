//! The world at a point: from the nearest usable snapshot, else from the start; and building
//! snapshots (`lifeline snapshot`).

use crate::domain::{load_range, load_types, stream_range, Loaded, Point};
use ledger::{Ledger, Position, Timestamp};
use projections::fold::restored_labels;
use projections::reach::{Reach, Reaching};
use projections::{failures, snapshot, DomainEvent, Failures, Recorded, World};
use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;

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
    replay_from_start(l, point.position, point.occurred_by)
}

/// `World::replay` of the domain events up to `until` (that happened by `occurred_by`), read
/// as a stream: the log is never all in memory, however long.
fn replay_from_start(
    l: &Ledger,
    until: Position,
    occurred_by: Option<Timestamp>,
) -> anyhow::Result<Built> {
    let facts = Facts::read(l, 1, until, occurred_by)?;
    let mut world = World {
        keep_backups: Some(facts.restored()),
        ..World::default()
    };
    let failed = facts.failures(0, until);
    let (events_folded, unreadable) = fold_range(l, &mut world, 1, until, occurred_by, &failed)?;
    Ok(Built {
        world,
        from_snapshot: None,
        events_folded,
        unreadable,
    })
}

/// The events of a range a fold must know before it starts: the restores (which backups to
/// keep) and the failure reports (which deliveries did not arrive), in log order. Read
/// without decoding the other events.
struct Facts(Vec<Recorded>);

impl Facts {
    fn read(
        l: &Ledger,
        from: Position,
        until: Position,
        occurred_by: Option<Timestamp>,
    ) -> anyhow::Result<Facts> {
        let wanted = |t: &str| matches!(t, "DatabaseRestored" | "DeliveryFailed");
        Ok(Facts(
            load_types(l, from, until, occurred_by, wanted)?.events,
        ))
    }

    /// The backup labels restored in the range.
    fn restored(&self) -> std::collections::HashSet<String> {
        restored_labels(&self.0)
    }

    /// The restores and failure reports after `after` and up to `until`.
    fn within(&self, after: Position, until: Position) -> &[Recorded] {
        let start = self.0.partition_point(|r| r.position <= after);
        let end = self.0.partition_point(|r| r.position <= until);
        &self.0[start..end.max(start)]
    }

    /// The deliveries reported failed after `after` and up to `until`.
    fn failures(&self, after: Position, until: Position) -> Failures {
        failures(self.within(after, until))
    }
}

/// Gives `world` the backups that `events` restore but that it does not hold (taken before the
/// snapshot it was read from): each is the database as replayed to the backup's position (from
/// a snapshot in turn).
fn provide_backups(l: &Ledger, world: &mut World, events: &[Recorded]) -> anyhow::Result<()> {
    for b in world.backups_needed(events) {
        let point = Point {
            position: b.position,
            occurred_by: None,
        };
        let then = world_at(l, &point, true)?.world;
        world.provide_backup(&b.label, then.actual.db(b.database).clone());
    }
    Ok(())
}

/// Applies the domain events from `from` to `until` to `world`, with the failures `failed`,
/// streamed from the log; returns how many were folded and those that could not be read.
fn fold_range(
    l: &Ledger,
    world: &mut World,
    from: Position,
    until: Position,
    occurred_by: Option<Timestamp>,
    failed: &Failures,
) -> anyhow::Result<(usize, Vec<(Position, String)>)> {
    let mut folded = 0;
    let unreadable = stream_range(l, from, until, occurred_by, |chunk| {
        folded += chunk.len();
        for r in chunk {
            world.apply(r, failed);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok((folded, unreadable))
}

/// The fates of some events, and those events (see [`fates_of`]).
pub struct Followed {
    pub fates: Reach,
    /// The events followed, in log order.
    pub events: Vec<Recorded>,
    /// The snapshot the fold started from, if any.
    pub from_snapshot: Option<Position>,
    pub unreadable: Vec<(Position, String)>,
}

/// The fates of the events at `positions` after every domain event up to `until` (see
/// [`Reaching`]), folding the log as a stream: however long the log, memory holds the world
/// and what is followed, not the events. With `use_snapshots`, the fold starts from the latest
/// snapshot before the first of `positions` that no later restore goes back past.
pub fn fates_of(
    l: &Ledger,
    until: Position,
    positions: HashSet<Position>,
    use_snapshots: bool,
) -> anyhow::Result<Followed> {
    let facts = Facts::read(l, 1, until, None)?;
    let first = positions.iter().min().copied();
    if let Some(first) = first.filter(|_| use_snapshots) {
        if let Some(followed) = follow_from_snapshot(l, until, &facts, first, &positions)? {
            return Ok(followed);
        }
    }
    let reaching = Reaching::new(
        World::default(),
        facts.failures(0, until),
        facts.restored(),
        Some(positions),
    );
    follow(l, reaching, 1, until, None)
}

/// The types of the deployment-wide facts, which the fold applies to every community: backups,
/// restores, queue clears and the retry task's state.
const DEPLOYMENT_WIDE: [&str; 5] = [
    "BackupTaken",
    "DatabaseRestored",
    "QueueCleared",
    "TaskPaused",
    "TaskResumed",
];

/// Communities that remote app transfers may link to the one asked about before
/// [`community_fates`] leaves it to the fold of the whole log.
pub const LINKED_MAX: usize = 64;

/// [`fates_of`] for `own`, the positions of every event about `community` up to `until` (as
/// the tag index lists them), folding only the events that can change where those stand: the
/// community's own, those of the communities a remote app was transferred from or to it
/// (transitively: a resource brings its state along), and the deployment-wide facts. Nothing
/// else in the fold reads or writes a community's state, so the fates are those of a fold of
/// the whole log, found from the tag index at the cost of those events instead of the log's
/// (`history` of one community at 100,000 communities and 1.4M events: 12.5 s → 0.02 s).
/// Failed and retried deliveries are found by the community they name, which is that of the
/// event they report (the lifecycle handler and the simulator write them so; a report naming
/// another community is not seen here). `None` when transfers link more than [`LINKED_MAX`]
/// communities.
pub fn community_fates(
    l: &Ledger,
    until: Position,
    community: uuid::Uuid,
    own: &[Position],
) -> anyhow::Result<Option<Followed>> {
    let Some(Loaded {
        mut events,
        unreadable,
    }) = community_events(l, until, community, own, &[])?
    else {
        return Ok(None);
    };
    let only: HashSet<Position> = own.iter().copied().collect();
    let mut reaching = Reaching::new(
        World::default(),
        failures(&events),
        restored_labels(&events),
        Some(only),
    );
    reaching.feed(&events);
    events.retain(|r| reaching.follows(r.position));
    Ok(Some(Followed {
        fates: reaching.finish().0,
        events,
        from_snapshot: None,
        unreadable,
    }))
}

/// The world at `point`, as far as `community` goes: its communities, resources, shares and
/// queued deliveries, and the scheduler's tasks, are those of the whole log's fold; of other
/// communities it holds only those transfers link to it. Folds the events [`community_fates`]
/// folds, those that happened by `point.occurred_by` when given. The tag index is caught up
/// first when it lags `point` by at most [`SNAPSHOT_EVERY`] events. `None` when it lags more
/// (indexing a long log takes minutes at 10M events, more than a replay from a snapshot) or
/// when transfers link more than [`LINKED_MAX`] communities.
pub fn community_world(
    l: &Ledger,
    point: &Point,
    community: uuid::Uuid,
) -> anyhow::Result<Option<Built>> {
    communities_world(l, point, community, &[])
}

/// [`community_world`] for `community` and `others` at once: the world holds each of them as
/// the whole log's fold does.
pub fn communities_world(
    l: &Ledger,
    point: &Point,
    community: uuid::Uuid,
    others: &[uuid::Uuid],
) -> anyhow::Result<Option<Built>> {
    let until = point.position;
    let indexed = l.tags_watermark()?;
    if indexed < until {
        if until - indexed > SNAPSHOT_EVERY {
            return Ok(None);
        }
        crate::audit::catch_up(l)?;
    }
    let own = l.tagged(&format!("community:{community}"), 1, until)?;
    let Some(Loaded {
        mut events,
        unreadable,
    }) = community_events(l, until, community, &own, others)?
    else {
        return Ok(None);
    };
    if let Some(by) = point.occurred_by {
        events.retain(|r| r.occurred_ns <= by.0);
    }
    Ok(Some(Built {
        world: World::replay(&events),
        from_snapshot: None,
        events_folded: events.len(),
        unreadable,
    }))
}

/// The world `event` is checked against at `point` (`record`): when its checks read only the
/// communities it names ([`projections::validate::communities_read`]), or a community and its
/// parent ([`projections::validate::reads_parent_of`]), the world of those communities (see
/// [`communities_world`]; milliseconds at any size); else the whole world.
pub fn checking_world(l: &Ledger, point: &Point, event: &DomainEvent) -> anyhow::Result<World> {
    use projections::validate::{communities_read, reads_parent_of};
    if let Some(read) = communities_read(event) {
        if let Some(built) = communities_world(l, point, read[0], &read[1..])? {
            return Ok(built.world);
        }
    }
    if let Some(c) = reads_parent_of(event) {
        if let Some(built) = communities_world(l, point, c, &[])? {
            let parent = built.world.community(c).and_then(|x| x.parent);
            let Some(p) = parent else {
                return Ok(built.world);
            };
            if let Some(built) = communities_world(l, point, c, &[p])? {
                return Ok(built.world);
            }
        }
    }
    Ok(world_at(l, point, true)?.world)
}

/// The events a fold for `community` (whose own events up to `until` are at `own`) and
/// `others` takes in, in log order, and those of them that do not decode; `None` when transfers
/// link more than [`LINKED_MAX`] communities.
fn community_events(
    l: &Ledger,
    until: Position,
    community: uuid::Uuid,
    own: &[Position],
    others: &[uuid::Uuid],
) -> anyhow::Result<Option<Loaded>> {
    let transfers = l.tagged("type:RemoteAppTransferred", 1, until)?;
    let mut linked = BTreeSet::from([community]);
    let mut todo = vec![community];
    for &other in others {
        if linked.insert(other) {
            todo.push(other);
        }
    }
    let mut positions: BTreeSet<Position> = BTreeSet::new();
    while let Some(c) = todo.pop() {
        let of_c = if c == community {
            own.to_vec()
        } else {
            l.tagged(&format!("community:{c}"), 1, until)?
        };
        let moved = crate::audit::intersect(&of_c, &transfers);
        positions.extend(of_c);
        for r in crate::domain::load_positions(l, &moved)? {
            let DomainEvent::RemoteAppTransferred(t) = &r.event else {
                continue;
            };
            for other in [t.from_community, t.to_community] {
                if linked.insert(other) {
                    if linked.len() > LINKED_MAX {
                        return Ok(None);
                    }
                    todo.push(other);
                }
            }
        }
    }
    for t in DEPLOYMENT_WIDE {
        positions.extend(l.tagged(&format!("type:{t}"), 1, until)?);
    }
    let positions: Vec<Position> = positions.into_iter().collect();
    Ok(Some(crate::domain::load_at(l, &positions)?))
}

/// [`fates_of`] continuing a snapshot, or `None` when none serves: a snapshot serves when it
/// precedes `first` and every backup that a restore after it goes back to (the changes a
/// restore loses must be among the events folded), and no failure reported after it names an
/// event before it (which it took as delivered).
fn follow_from_snapshot(
    l: &Ledger,
    until: Position,
    facts: &Facts,
    first: Position,
    positions: &HashSet<Position>,
) -> anyhow::Result<Option<Followed>> {
    let Some(mut bound) = first.checked_sub(1) else {
        return Ok(None);
    };
    for _ in 0..SNAPSHOT_ATTEMPTS {
        let Some((at, world)) = latest_decoded(l, bound)? else {
            return Ok(None);
        };
        let after = facts.within(at, until);
        let restored_before = after
            .iter()
            .filter_map(|r| match &r.event {
                DomainEvent::DatabaseRestored(d) => world
                    .backups
                    .get(&d.backup)
                    .filter(|b| b.database == d.database)
                    .map(|b| b.position),
                _ => None,
            })
            .min();
        if let Some(b) = restored_before {
            let Some(earlier) = b.checked_sub(1) else {
                return Ok(None);
            };
            bound = earlier;
            continue;
        }
        let failed = failures(after);
        let mut named = named_by(&failed);
        let reaching = Reaching::new(
            world,
            failed,
            restored_labels(after),
            Some(positions.clone()),
        );
        let followed = follow(l, reaching, at + 1, until, Some(&mut named))?;
        // Each event a failure names that was not among those folded came before the
        // snapshot: an earlier one may serve (failures are reported soon after the event).
        if !named.is_empty() {
            let Some(earlier) = at.checked_sub(1) else {
                return Ok(None);
            };
            bound = earlier;
            continue;
        }
        return Ok(Some(Followed {
            from_snapshot: Some(at),
            ..followed
        }));
    }
    Ok(None)
}

/// The events that the failure reports `failed` name: a fold that starts after any of them
/// took its delivery as done.
fn named_by(failed: &Failures) -> HashSet<uuid::Uuid> {
    failed.iter().map(|(event, _)| *event).collect()
}

/// Feeds `reaching` the domain events from `from` to `until`, streamed; takes the ids of the
/// events folded out of `named`.
fn follow(
    l: &Ledger,
    mut reaching: Reaching,
    from: Position,
    until: Position,
    mut named: Option<&mut HashSet<uuid::Uuid>>,
) -> anyhow::Result<Followed> {
    let mut events = Vec::new();
    let unreadable = stream_range(l, from, until, None, |chunk| {
        reaching.feed(chunk);
        for r in chunk {
            if let Some(named) = named.as_deref_mut() {
                named.remove(&r.id);
            }
            if reaching.follows(r.position) {
                events.push(r.clone());
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(Followed {
        fates: reaching.finish().0,
        events,
        from_snapshot: None,
        unreadable,
    })
}

/// Snapshots tried, newest first, before replaying from the start.
const SNAPSHOT_ATTEMPTS: usize = 8;

/// Continues the latest snapshot at or before `position` that decodes and that no later failure
/// report contradicts (trying older ones when the newest cannot be used).
fn from_snapshot(l: &Ledger, position: Position) -> anyhow::Result<Option<Built>> {
    let Some(start) = start_at_or_before(l, position, position)? else {
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
/// the newest cannot be used. `None` when no snapshot serves.
pub fn start_at_or_before(
    l: &Ledger,
    target: Position,
    until: Position,
) -> anyhow::Result<Option<Started>> {
    let mut bound = target;
    // With the tag index covering the range, a snapshot that a failure reported after it makes
    // unusable is passed over before it is read (at 100,000 communities, tens of MB and a
    // second or more of decoding each).
    let stored: Vec<Position> = if l.tags_watermark()? >= until {
        l.snapshots()?.into_iter().map(|(p, _)| p).collect()
    } else {
        Vec::new()
    };
    for _ in 0..SNAPSHOT_ATTEMPTS {
        if !stored.is_empty() {
            let Some(&at) = stored[..stored.partition_point(|p| *p <= bound)].last() else {
                return Ok(None);
            };
            if !continues_to(l, at, until)? {
                let Some(earlier) = at.checked_sub(1) else {
                    return Ok(None);
                };
                bound = earlier;
                continue;
            }
            bound = at;
        }
        let Some((at, bytes)) = l.snapshot_at_or_before(bound)? else {
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
                    provide_backups(l, &mut world, &tail.events)?;
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

/// Whether a snapshot at `at` can be continued up to `until`: no failure reported after it
/// names an event from before it (which the snapshot took as delivered; see
/// [`World::can_continue_with`]). Told without decoding the snapshot: the reports come from the
/// tag index, and the events they name are looked for among the ids after `at`.
pub(crate) fn continues_to(l: &Ledger, at: Position, until: Position) -> anyhow::Result<bool> {
    let reports =
        crate::domain::load_positions(l, &l.tagged("type:DeliveryFailed", at + 1, until)?)?;
    let mut named: std::collections::HashSet<uuid::Uuid> = reports
        .iter()
        .filter_map(|r| match &r.event {
            DomainEvent::DeliveryFailed(d) => Some(d.event),
            _ => None,
        })
        .collect();
    if named.is_empty() {
        return Ok(true);
    }
    l.scan_all(
        ledger::AllStart::Position(at + 1),
        ledger::Direction::Forwards,
        |body, _| {
            named.remove(&uuid::Uuid::from_bytes(body.event_id));
            if named.is_empty() || body.position >= until {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )?;
    Ok(named.is_empty())
}

/// Positions between the snapshots written after bulk work (`simulate`, `import`, `sync`) and by
/// `serve`; `lifeline snapshot --every` chooses its own.
pub const SNAPSHOT_EVERY: u64 = 100_000;

/// How many of the latest marks keep their snapshot whatever the spacing further back (see
/// [`Keep::Thinned`]).
pub const RECENT_MARKS: u64 = 3;

/// Which snapshots [`build_snapshots`] keeps, of those due every `every` positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Every mark within `RECENT_MARKS × every` positions of the head; further back, fewer the
    /// older they are: a mark whose age (head − mark) is at least `W·2^(j−1)`, with
    /// `W = RECENT_MARKS × every`, is kept only when it is a multiple of `every·2^j`. A point
    /// is then at most its age (head − point), or `every` near the head, past the snapshot
    /// before it, and the snapshots number about `RECENT_MARKS + (RECENT_MARKS / 2)·
    /// log2(head / W)` (11 for 9.3M positions every 100,000): their storage grows
    /// with the world and the logarithm of the log, not with the log times the world. Stored
    /// snapshots off this schedule are removed, but for the one `recover` at the head starts
    /// from ([`crate::recover::start_snapshot`]); a mark the schedule passes over once stays
    /// passed over as the log grows, so none is written again.
    Thinned,
    /// A snapshot at every mark, however old; none removed.
    All,
}

impl Keep {
    /// As a `--keep-all` flag (`snapshot`, `serve --snapshot-keep-all`) says.
    pub fn from_keep_all(keep_all: bool) -> Keep {
        if keep_all {
            Keep::All
        } else {
            Keep::Thinned
        }
    }
}

/// Stores the snapshots due every `every` positions up to the head (as `keep` says) where none
/// is stored yet, then removes, with [`Keep::Thinned`], the stored ones off the schedule. Each
/// equals the replay of exactly the events up to its position. Folding starts from the latest
/// stored snapshot before the first one missing, else from the start of the log.
pub fn build_snapshots(
    l: &Ledger,
    every: u64,
    keep: Keep,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<SnapshotsBuilt> {
    let head = l.head();
    let have: std::collections::HashSet<Position> =
        l.snapshots()?.into_iter().map(|(p, _)| p).collect();
    let due = marks_up_to(head, every, keep);
    let marks: Vec<Position> = due.iter().copied().filter(|m| !have.contains(m)).collect();
    let mut built = SnapshotsBuilt::default();
    if let Some(&first) = marks.first() {
        let continued = match latest_decoded(l, first - 1)? {
            Some((at, world)) => write_marks(l, world, at, &marks, &mut progress)?.map(|n| (n, at)),
            None => None,
        };
        (built.written, built.continued) = match continued {
            Some((written, at)) => (written, Some(at)),
            None => (write_marks_from_start(l, &marks, &mut progress)?, None),
        };
    }
    if keep == Keep::Thinned {
        built.dropped = drop_off_schedule(l, &due)?;
    }
    Ok(built)
}

/// Removes the stored snapshots that are not at one of `due` (ascending), except the one
/// `recover` at the head starts from (often old: before the oldest backup an open restore
/// goes back to); how many.
fn drop_off_schedule(l: &Ledger, due: &[Position]) -> anyhow::Result<usize> {
    let mut off: Vec<Position> = l
        .snapshots()?
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| due.binary_search(p).is_err())
        .collect();
    if off.is_empty() {
        return Ok(0);
    }
    // Asked only when there is something to remove: it catches the tag index up.
    let start = crate::recover::start_snapshot(l)?;
    off.retain(|p| Some(*p) != start);
    let n = off.len();
    l.drop_snapshots_blocking(off)?;
    Ok(n)
}

/// The latest stored snapshot at or before `position` that decodes, decoded; older ones are
/// tried when the newest does not decode.
fn latest_decoded(l: &Ledger, position: Position) -> anyhow::Result<Option<(Position, World)>> {
    let mut bound = position;
    for _ in 0..SNAPSHOT_ATTEMPTS {
        let Some((at, bytes)) = l.snapshot_at_or_before(bound)? else {
            return Ok(None);
        };
        match snapshot::decode(&bytes) {
            Ok(world) => return Ok(Some((at, world))),
            Err(why) => eprintln!("lifeline: snapshot at position {at} not used ({why})"),
        }
        let Some(earlier) = at.checked_sub(1) else {
            return Ok(None);
        };
        bound = earlier;
    }
    Ok(None)
}

/// The positions of the snapshots due every `every` positions up to `head`, ascending, as
/// `keep` says. Every N positions only: a snapshot at each backup as well was measured
/// (domain_bench, 200k events, 4 databases backed up nightly): storage went from ~12% to ~30%
/// of the ledger; a restore needs only the backed-up database, which belongs in a smaller
/// record.
pub fn marks_up_to(head: Position, every: u64, keep: Keep) -> Vec<Position> {
    let every = every.max(1);
    let recent = RECENT_MARKS.saturating_mul(every);
    (1..=head / every)
        .filter(|k| match keep {
            Keep::All => true,
            Keep::Thinned => {
                let age = head - k * every;
                // j: 0 within the recent window, then one more for each doubling of the age.
                let j = u64::BITS - (age / recent).leading_zeros();
                k.trailing_zeros() >= j
            }
        })
        .map(|k| k * every)
        .collect()
}

/// Folds the log from its start and stores a snapshot at each of `marks`.
fn write_marks_from_start(
    l: &Ledger,
    marks: &[Position],
    progress: &mut impl FnMut(u64),
) -> anyhow::Result<usize> {
    let written = write_marks(l, World::default(), 0, marks, progress)?;
    Ok(written.expect("a fold from the start always continues"))
}

/// Stores the snapshots due every `every` positions up to the head (as `keep` says) from a
/// fold of the whole log, replacing those stored at the same positions (and, with
/// [`Keep::Thinned`], removing the others): after an upgrade, so that they take this build's
/// format (snapshots of earlier formats are read, but decode more slowly).
pub fn rewrite_snapshots(
    l: &Ledger,
    every: u64,
    keep: Keep,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<SnapshotsBuilt> {
    let marks = marks_up_to(l.head(), every, keep);
    let mut built = SnapshotsBuilt::default();
    if !marks.is_empty() {
        built.written = write_marks_from_start(l, &marks, &mut progress)?;
    }
    if keep == Keep::Thinned {
        built.dropped = drop_off_schedule(l, &marks)?;
    }
    Ok(built)
}

/// What [`build_snapshots`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotsBuilt {
    pub written: usize,
    /// Stored snapshots removed as off the schedule.
    pub dropped: usize,
    /// The stored snapshot the fold continued, if it did not start from the beginning.
    pub continued: Option<Position>,
}

/// Folds the log after `world`, which stands at position `at` (0: the empty world), and stores
/// a snapshot at each of `marks`, streaming the log segment by segment (a segment ends at a
/// mark). A segment is folded with the failures reported within it; when one of them names an
/// event of an earlier segment, the fold so far took that delivery as done: from the start of
/// the log, the prefix is folded again knowing it; otherwise `None` (the caller starts from the
/// beginning).
fn write_marks(
    l: &Ledger,
    mut world: World,
    at: Position,
    marks: &[Position],
    progress: &mut impl FnMut(u64),
) -> anyhow::Result<Option<usize>> {
    let Some(&last) = marks.last() else {
        return Ok(Some(0));
    };
    let facts = Facts::read(l, at + 1, last, None)?;
    // Every backup restored up to the last mark is kept while folding.
    let keep = facts.restored();
    world.keep_backups = Some(keep.clone());
    let mut done = at;
    for &mark in marks {
        let segment_facts = facts.within(done, mark);
        let failed = failures(segment_facts);
        provide_backups(l, &mut world, segment_facts)?;
        let mut named = named_by(&failed);
        stream_range(l, done + 1, mark, None, |chunk| {
            for r in chunk {
                world.apply(r, &failed);
                named.remove(&r.id);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        if !named.is_empty() {
            if at != 0 {
                return Ok(None);
            }
            world = World {
                keep_backups: Some(keep.clone()),
                ..World::default()
            };
            fold_range(l, &mut world, 1, mark, None, &facts.failures(0, mark))?;
        }
        done = mark;
        l.put_snapshot_blocking(mark, snapshot::encode(&world))?;
        progress(mark);
    }
    Ok(Some(marks.len()))
}

/// After bulk work: stores the snapshots due every [`SNAPSHOT_EVERY`] positions
/// ([`Keep::Thinned`]) that are missing, with a progress bar on a terminal. A failure is
/// reported, not raised: the work itself is done, and `lifeline snapshot` can write them later.
pub fn keep_snapshots(l: &Ledger) {
    if l.head() < SNAPSHOT_EVERY {
        return;
    }
    let bar = crate::progress::bar(l.head(), "snapshot");
    let built = build_snapshots(l, SNAPSHOT_EVERY, Keep::Thinned, |p| bar.set_position(p));
    bar.finish_and_clear();
    if let Err(e) = built {
        eprintln!("lifeline: snapshots not written ({e:#}); `lifeline snapshot` writes them");
    }
}

#[cfg(test)]
mod tests {
    use super::{marks_up_to, Keep, RECENT_MARKS};
    use std::collections::BTreeSet;

    #[test]
    fn thinned_marks_keep_the_recent_ones_and_never_bring_one_back() {
        for every in [1, 3, 10] {
            let mut before: BTreeSet<u64> = BTreeSet::new();
            for head in 0..4_000 {
                let marks = marks_up_to(head, every, Keep::Thinned);
                let all = marks_up_to(head, every, Keep::All);
                assert!(marks.windows(2).all(|w| w[0] < w[1]));
                assert!(marks.iter().all(|m| all.contains(m)));
                // The latest RECENT_MARKS marks are all kept.
                let recent: Vec<u64> = all
                    .iter()
                    .rev()
                    .take(RECENT_MARKS as usize)
                    .copied()
                    .collect();
                assert!(recent.iter().all(|m| marks.contains(m)), "head {head}");
                // A mark passed over once is never due again: only the newest mark is new.
                let now: BTreeSet<u64> = marks.iter().copied().collect();
                let new: Vec<&u64> = now.difference(&before).collect();
                assert!(new.len() <= 1 && new.iter().all(|m| **m == head / every * every));
                // Every point is at most max(every, its age) past the snapshot before it.
                for point in 0..=head {
                    let from = marks
                        .iter()
                        .rev()
                        .find(|m| **m <= point)
                        .copied()
                        .unwrap_or(0);
                    assert!(
                        point - from <= every.max(head - point),
                        "head {head} point {point}"
                    );
                }
                before = now;
            }
        }
    }

    #[test]
    fn thinned_marks_grow_with_the_logarithm_of_the_log() {
        let count = |head| marks_up_to(head, 100_000, Keep::Thinned).len();
        assert_eq!(marks_up_to(1_000_000, 100_000, Keep::All).len(), 10);
        assert_eq!(count(1_378_527), 6);
        assert_eq!(count(9_300_000), 11);
        assert_eq!(count(100_000_000), 15);
        assert_eq!(
            marks_up_to(10_000_000, 1_000_000, Keep::Thinned),
            [4, 6, 8, 9, 10].map(|m| m * 1_000_000)
        );
    }
}
