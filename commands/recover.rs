//! `recover`: the findings at a point — for restores that happened, or (`--restore`) for ones
//! being considered — and `--advise`, which ranks the recorded backups by the repair work each
//! would leave.

use crate::cli::{Format, RecoverArgs};
use crate::domain::{load, resolve, At, Point};
use crate::exit::{with_code, NOT_FOUND, USAGE};
use crate::output::{self, clip};
use crate::time_fmt;
use ledger::{Ledger, Position, Timestamp};
use projections::events::{DatabaseRestored, DomainEvent};
use projections::findings::{self, Against, Disposition, Findings, Input, OrphanReason, Restore};
use projections::reach::Loss;
use projections::{Database, Recorded, World};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

/// `--restore DB=BACKUP`: a restore to consider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreArg {
    pub database: Database,
    pub backup: String,
}

/// As `--restore` takes it back.
impl std::fmt::Display for RestoreArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.database.name(), self.backup)
    }
}

impl FromStr for RestoreArg {
    type Err = String;
    fn from_str(s: &str) -> Result<RestoreArg, String> {
        let (db, backup) = s.split_once('=').ok_or_else(|| {
            format!("'{s}': a restore is DATABASE=BACKUP, like Files=files-2026-11-20")
        })?;
        let database = Database::parse(db.trim()).ok_or_else(|| {
            format!(
                "'{db}' is not a database; one of: {}",
                Database::ALL.map(|d| d.name()).join(", ")
            )
        })?;
        if backup.trim().is_empty() {
            return Err(format!("'{s}': name the backup after '='"));
        }
        Ok(RestoreArg {
            database,
            backup: backup.trim().to_owned(),
        })
    }
}

/// Findings at a point, with what they were drawn from.
pub struct Analysis {
    pub findings: Findings,
    pub world: World,
    /// The domain events analysed, what-if restores included: every one up to the point, or
    /// those after `from_snapshot` when the analysis continued a snapshot.
    pub events: Vec<Recorded>,
    /// The snapshot the analysis continued, if any.
    pub from_snapshot: Option<u64>,
    pub point: Point,
    /// Restores up to here were repaired by a plan whose steps are all done.
    pub since: u64,
    /// The recorded plan under way, if any (see [`Repairs::in_progress`]).
    pub in_progress: Vec<Progress>,
}

/// Backups by label: (database, position).
type Backups = BTreeMap<String, (Database, u64)>;

/// Findings at `at`: from the latest snapshot before every loss that counts (the backups the
/// open restores go back to, the queue clears since the last repair), when there is one; else
/// from the start of the log. Both give the same findings.
pub fn analyze(
    l: &Ledger,
    at: &At,
    occurred: bool,
    restores: &[RestoreArg],
) -> anyhow::Result<Analysis> {
    let point = resolve(l, at, occurred)?;
    if point.occurred_by.is_none() {
        if let Some(a) = analyze_from_snapshot(l, &point, restores)? {
            return Ok(a);
        }
    }
    analyze_all(l, point, restores)
}

/// Loads the history up to `point`, adds the what-if restores, and analyses it all.
pub fn analyze_all(l: &Ledger, point: Point, restores: &[RestoreArg]) -> anyhow::Result<Analysis> {
    let loaded = load(l, point.position, point.occurred_by)?;
    crate::domain::warn_unreadable(&loaded.unreadable);
    let mut events = loaded.events;
    let Repairs { since, in_progress } = Repairs::of(&events);
    let backups = backups_of(&events);
    let last = events
        .last()
        .map_or((0, 0), |r| (r.recorded_ns, r.occurred_ns));
    add_what_ifs(&mut events, point.position, restores, &backups, last)?;
    let input = Input {
        events: &events,
        head: point.position,
        since,
    };
    let (findings, world) = findings::analyze(&input);
    Ok(Analysis {
        findings,
        world,
        events,
        from_snapshot: None,
        point,
        since,
        in_progress,
    })
}

/// Where an analysis at a point may start, as the tag index tells it: the snapshot must
/// precede every backup that a restore after it goes back to, and every queue clear since the
/// last repair, so that every change those lose is among the events folded or waits in the
/// snapshot's queue.
struct Bounds {
    /// Everything up to here is repaired, and the plans in progress.
    repairs: Repairs,
    backups: Backups,
    /// (position, position of the backup it went back to) of every restore.
    restored: Vec<(u64, u64)>,
    /// The snapshot must be at or before this.
    target: Position,
}

impl Bounds {
    fn read(l: &Ledger, point: &Point, restores: &[RestoreArg]) -> anyhow::Result<Bounds> {
        crate::audit::catch_up(l)?;
        let tagged = |tags: &[&str]| -> anyhow::Result<Vec<Recorded>> {
            let mut positions = Vec::new();
            for t in tags {
                positions.extend(l.tagged(&format!("type:{t}"), 1, point.position)?);
            }
            positions.sort_unstable();
            crate::domain::load_positions(l, &positions)
        };
        let repairs = Repairs::read(l, point.position)?;
        let since = repairs.since;
        let backups = backups_of(&tagged(&["BackupTaken"])?);
        let restored: Vec<(u64, u64)> = tagged(&["DatabaseRestored"])?
            .iter()
            .filter_map(|r| match &r.event {
                DomainEvent::DatabaseRestored(d) => backups
                    .get(&d.backup)
                    .filter(|(db, _)| *db == d.database)
                    .map(|(_, b)| (r.position, *b)),
                _ => None,
            })
            .collect();
        // Where the losses that count begin: the earliest backup that an open restore (or a
        // what-if) goes back to, and the earliest queue clear since the last repair (what it
        // dropped is lost from then on).
        let cleared = l.tagged("type:QueueCleared", since + 1, point.position)?;
        let open = restored
            .iter()
            .filter(|(p, _)| *p > since)
            .map(|(_, b)| *b)
            .chain(
                restores
                    .iter()
                    .filter_map(|x| backups.get(&x.backup).map(|(_, b)| *b)),
            )
            .chain(cleared.first().copied())
            .min();
        Ok(Bounds {
            repairs,
            backups,
            restored,
            target: open.map_or(point.position, |b| b - 1),
        })
    }

    /// For a snapshot at `at`: where to start instead when a restore after it goes back to a
    /// backup taken at or before it.
    fn earlier(&self, at: Position) -> Option<Position> {
        self.restored
            .iter()
            .filter(|(p, b)| *p > at && *b <= at)
            .map(|(_, b)| *b - 1)
            .min()
    }
}

/// The stored snapshot that `recover` at the head starts from, by position (whether it decodes
/// is not asked). Thinning keeps it: it stays the start until a repair moves the bounds on,
/// however old it is.
pub fn start_snapshot(l: &Ledger) -> anyhow::Result<Option<Position>> {
    let stored: Vec<Position> = l.snapshots()?.into_iter().map(|(p, _)| p).collect();
    let head = l.head();
    let point = Point {
        position: head,
        occurred_by: None,
    };
    let bounds = Bounds::read(l, &point, &[])?;
    // As the analysis tries them (`world::start_at_or_before`), told without decoding any.
    let mut below = stored.partition_point(|p| *p <= bounds.target);
    while let Some(&at) = below.checked_sub(1).map(|i| &stored[i]) {
        if let Some(earlier) = bounds.earlier(at) {
            below = stored.partition_point(|p| *p <= earlier);
        } else if crate::world::continues_to(l, at, head)? {
            return Ok(Some(at));
        } else {
            below -= 1;
        }
    }
    Ok(None)
}

/// The analysis continued from a snapshot, or `None` when no snapshot serves. The tag index
/// tells which backups, restores, queue clears and repairs there are without reading the whole
/// log ([`Bounds`]).
fn analyze_from_snapshot(
    l: &Ledger,
    point: &Point,
    restores: &[RestoreArg],
) -> anyhow::Result<Option<Analysis>> {
    if l.snapshots()?
        .first()
        .is_none_or(|(p, _)| *p > point.position)
    {
        return Ok(None);
    }
    // It catches the tag index up, so a snapshot that a failure reported after it makes
    // unusable is passed over unread (see `world::start_at_or_before`).
    let bounds = Bounds::read(l, point, restores)?;
    let mut target = bounds.target;
    let start = loop {
        let Some(start) = crate::world::start_at_or_before(l, target, point.position)? else {
            return Ok(None);
        };
        match bounds.earlier(start.at) {
            Some(earlier) => target = earlier,
            None => break start,
        }
    };
    crate::domain::warn_unreadable(&start.tail.unreadable);
    let mut events = start.tail.events;
    let last = match events.last() {
        Some(r) => (r.recorded_ns, r.occurred_ns),
        None => l
            .event_at(point.position)?
            .map_or((0, 0), |e| (e.recorded.0, e.occurred.0)),
    };
    add_what_ifs(&mut events, point.position, restores, &bounds.backups, last)?;
    // Deliveries still queued at the snapshot: a restore or a queue clear may lose them.
    let mut queued: Vec<u64> = start
        .world
        .actual
        .db(Database::Communities)
        .queue
        .iter()
        .map(|q| q.position)
        .collect();
    queued.sort_unstable();
    queued.dedup();
    let Repairs { since, in_progress } = bounds.repairs;
    let input = Input {
        events: &events,
        head: point.position,
        since,
    };
    // They are read on another thread while this one folds the events.
    let (findings, world) = std::thread::scope(|s| {
        let earlier = s.spawn(|| crate::domain::load_positions(l, &queued));
        findings::analyze_from(start.world, &input, || {
            earlier
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })?;
    Ok(Some(Analysis {
        findings,
        world,
        events,
        from_snapshot: Some(start.at),
        point: Point {
            position: point.position,
            occurred_by: None,
        },
        since,
        in_progress,
    }))
}

/// The backups recorded among `events`, by label.
fn backups_of(events: &[Recorded]) -> Backups {
    events
        .iter()
        .filter_map(|r| match &r.event {
            DomainEvent::BackupTaken(b) => Some((b.label.clone(), (b.database, r.position))),
            _ => None,
        })
        .collect()
}

/// A recorded repair plan whose steps are not all done, and how far it got.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub done: u32,
    pub plan: String,
    pub steps: u32,
}

/// The repairs recorded in a log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repairs {
    /// The position the latest plan whose every step is done was made at (0 if none):
    /// restores up to there count as repaired.
    pub since: u64,
    /// The plan recorded last, when it was made after `since` and its steps are not all done
    /// (a plan recorded later supersedes those before it).
    pub in_progress: Vec<Progress>,
}

impl Repairs {
    /// The repairs among `events` (plans recorded, steps done).
    pub fn of(events: &[Recorded]) -> Repairs {
        // Plan id → (steps, position made at, steps done).
        let mut plans: BTreeMap<&str, (u32, u64, BTreeSet<u32>)> = BTreeMap::new();
        let mut last: Option<&str> = None;
        for r in events {
            match &r.event {
                DomainEvent::RepairPlanned(p) => {
                    let at = p.at.unwrap_or(r.position);
                    let plan = plans.entry(&p.plan).or_default();
                    (plan.0, plan.1) = (p.steps.unwrap_or(0), at);
                    last = Some(&p.plan);
                }
                DomainEvent::RepairStepApplied(s) => {
                    if let Some(step) = s.step {
                        plans.entry(&s.plan).or_default().2.insert(step);
                    }
                }
                _ => {}
            }
        }
        let done =
            |(steps, _, done): &(u32, u64, BTreeSet<u32>)| done.range(1..=*steps).count() as u32;
        let since = plans
            .values()
            .filter(|p| done(p) == p.0)
            .map(|p| p.1)
            .max()
            .unwrap_or(0);
        // A plan recorded later is made from the databases as the earlier ones' done steps
        // left them: it supersedes them. Only the latest can be under way.
        let in_progress = last
            .map(|id| (id, &plans[id]))
            .filter(|(_, p)| p.1 > since && done(p) < p.0)
            .map(|(id, p)| Progress {
                plan: id.to_owned(),
                steps: p.0,
                done: done(p),
            })
            .into_iter()
            .collect();
        Repairs { since, in_progress }
    }

    /// The repairs recorded up to `position`, read by their tags.
    pub fn read(l: &Ledger, position: u64) -> anyhow::Result<Repairs> {
        Ok(Repairs::of(&repair_events(l, position)?))
    }
}

/// The plans recorded and steps done up to `position`, in log order, found by their tags.
pub fn repair_events(l: &Ledger, position: u64) -> anyhow::Result<Vec<Recorded>> {
    let mut positions = l.tagged("type:RepairPlanned", 1, position)?;
    positions.extend(l.tagged("type:RepairStepApplied", 1, position)?);
    positions.sort_unstable();
    crate::domain::load_positions(l, &positions)
}

/// Appends a `DatabaseRestored` after `head` for each what-if restore, at the times `last`
/// (recorded, occurred); each backup must have been recorded, of that database, by then.
fn add_what_ifs(
    events: &mut Vec<Recorded>,
    head: u64,
    restores: &[RestoreArg],
    backups: &Backups,
    last: (i64, i64),
) -> anyhow::Result<()> {
    for x in restores {
        match backups.get(x.backup.as_str()) {
            Some((d, _)) if *d == x.database => {}
            Some((d, _)) => {
                return Err(with_code(
                    USAGE,
                    format!(
                        "backup '{}' is of the {d} database, not {}",
                        x.backup, x.database
                    ),
                ))
            }
            None => {
                let mut of_db: Vec<&str> = backups
                    .iter()
                    .filter(|(_, (d, _))| *d == x.database)
                    .map(|(l, _)| l.as_str())
                    .collect();
                of_db.sort_by_key(|l| std::cmp::Reverse(backups[*l].1));
                of_db.truncate(5);
                return Err(with_code(
                    NOT_FOUND,
                    format!(
                        "no backup '{}' of {} is recorded by this point; the latest are: {}",
                        x.backup,
                        x.database,
                        if of_db.is_empty() {
                            "(none)".into()
                        } else {
                            of_db.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    for (k, x) in restores.iter().enumerate() {
        let position = head + k as u64 + 1;
        events.push(Recorded {
            position,
            id: uuid::Uuid::nil(),
            recorded_ns: last.0,
            occurred_ns: last.1,
            event: DomainEvent::DatabaseRestored(DatabaseRestored {
                database: x.database,
                backup: x.backup.clone(),
                actor: None,
            }),
        });
    }
    Ok(())
}

pub fn recover(l: &Ledger, a: &RecoverArgs, format: Format) -> anyhow::Result<()> {
    let p = &a.point;
    let analysis = analyze(l, &p.at, p.occurred, &p.restore)?;
    if a.advise {
        crate::advise::advise(l, analysis, format)?;
        l.close();
        return Ok(());
    }
    l.close();
    let (f, in_progress) = (&analysis.findings, &analysis.in_progress);
    match format {
        Format::Json => output::json_line(&json(f, in_progress))?,
        Format::Table => print_findings(f, in_progress, None),
    }
    release_at_exit(analysis);
    Ok(())
}

/// What `recover --format json` writes (and the API answers): the findings, and the recorded
/// plans under way when there are any (`inProgress`, last).
#[derive(serde::Serialize)]
pub struct Json<'a> {
    #[serde(flatten)]
    findings: &'a Findings,
    #[serde(rename = "inProgress", skip_serializing_if = "<[_]>::is_empty")]
    in_progress: &'a [Progress],
}

pub fn json<'a>(findings: &'a Findings, in_progress: &'a [Progress]) -> Json<'a> {
    Json {
        findings,
        in_progress,
    }
}

/// A line for each recorded plan under way: how far it got, how to go on. `current` is the id
/// of the plan shown beside it, if any.
pub fn under_way_lines(in_progress: &[Progress], current: Option<&str>) -> Vec<String> {
    in_progress
        .iter()
        .map(|r| {
            let (plan, done, steps) = (crate::plan::short(&r.plan), r.done, r.steps);
            let go_on = format!("`lifeline plan done {plan} STEP` after each step");
            if current == Some(r.plan.as_str()) {
                return format!("This plan is recorded: {done} of {steps} steps done ({go_on}).");
            }
            if done == 0 {
                return format!("Plan {plan} is recorded: 0 of {steps} steps done ({go_on}).");
            }
            let beside = match current {
                Some(_) => {
                    "The plan below is made afresh, from the databases as those steps left them."
                }
                None => "These findings count the steps done.",
            };
            format!(
                "Plan {plan} is recorded and under way: {done} of {steps} steps done; go on with \
                 it ({go_on}). {beside}"
            )
        })
        .collect()
}

/// Leaves `value` for the operating system to reclaim when the process exits, which it does
/// all at once, instead of freeing it piece by piece: a world of 100,000 communities is
/// millions of allocations and took about a second to free (`recovery_bench`). Only for what
/// a command holds as it finishes.
pub fn release_at_exit<T>(value: T) {
    std::mem::forget(value);
}

fn restore_line(r: &Restore) -> String {
    if r.what_if {
        r.describe()
    } else {
        format!("{}, at position {}", r.describe(), r.position)
    }
}

/// One line of counts.
pub fn summary(f: &Findings) -> String {
    let between = f
        .differences
        .iter()
        .filter(|d| d.against == Against::Communities)
        .count();
    use projections::describe::count as n;
    format!(
        "{} ({between} between Communities and its apps, {} against the ledger), {}, {}, {}, {}",
        n(f.differences.len(), "difference", "differences"),
        f.differences.len() - between,
        n(f.orphans.len(), "orphan", "orphans"),
        n(
            f.missing.len(),
            "widget without data",
            "widgets without data"
        ),
        n(f.lost.len(), "lost change", "lost changes"),
        n(
            f.stale_queue.len(),
            "stale queued event",
            "stale queued events"
        ),
    )
}

/// The findings as tables; with `limit`, at most that many rows of each.
pub fn print_findings(f: &Findings, in_progress: &[Progress], limit: Option<usize>) {
    for line in under_way_lines(in_progress, None) {
        println!("{line}");
    }
    println!("Findings at position {}", f.position);
    if f.restores.is_empty() {
        println!("No restore since the last completed repair.");
    }
    for r in &f.restores {
        println!("  {}", restore_line(r));
    }
    println!("{}", summary(f));
    if f.is_clean() {
        println!("Every database agrees with the others and with the ledger.");
        return;
    }
    let take = limit.unwrap_or(usize::MAX);
    section("Differences", f.differences.len(), take, || {
        let mut t = output::table(&[
            "community",
            "database",
            "against",
            "field",
            "expected",
            "found",
        ]);
        for d in f.differences.iter().take(take) {
            let db = match (&d.app, &d.object_id) {
                (Some(app), Some(o)) => format!("{} ({app} {})", d.database, clip(o, 13)),
                _ => d.database.to_string(),
            };
            let against = match d.against {
                Against::Communities => "Communities",
                Against::Intended => "ledger",
            };
            t.add_row(vec![
                clip(&d.community_name, 30),
                db,
                against.into(),
                d.field.name().into(),
                clip(&d.expected, 40),
                clip(&d.found, 60),
            ]);
        }
        t
    });
    section("Orphans", f.orphans.len(), take, || {
        let mut t = output::table(&["app", "object id", "old community", "name", "why", "repair"]);
        for o in f.orphans.iter().take(take) {
            t.add_row(vec![
                o.app.to_string(),
                o.object_id.clone(),
                o.old_community.to_string(),
                clip(&o.name, 30),
                orphan_reason(o.reason).into(),
                disposition(&o.disposition),
            ]);
        }
        t
    });
    section("Widgets without data", f.missing.len(), take, || {
        let mut t = output::table(&[
            "community",
            "app",
            "widget",
            "Communities has it",
            "container by the ledger",
        ]);
        for m in f.missing.iter().take(take) {
            t.add_row(vec![
                clip(&m.community_name, 30),
                m.app.to_string(),
                m.instance.clone(),
                if m.known_to_communities { "yes" } else { "no" }.into(),
                m.intended_object_id
                    .clone()
                    .unwrap_or_else(|| "(none recorded)".into()),
            ]);
        }
        t
    });
    // Lost changes, one table per database and cause.
    let mut groups: BTreeMap<(Database, String), Vec<&findings::LostChange>> = BTreeMap::new();
    for c in &f.lost {
        groups
            .entry((c.database, lost_how(f, c)))
            .or_default()
            .push(c);
    }
    for ((database, how), changes) in groups {
        let title = format!("Changes lost from {database} ({how})");
        section(&title, changes.len(), take, || {
            let mut t = output::table(&["position", "occurred", "actor", "community", "change"]);
            for c in changes.iter().take(take) {
                t.add_row(vec![
                    c.position.to_string(),
                    time_fmt::format_seconds(Timestamp(c.occurred_ns)),
                    c.actor.clone().unwrap_or_default(),
                    clip(&c.community_name, 30),
                    clip(&c.summary, 70),
                ]);
            }
            t
        });
    }
    section("Stale queued events", f.stale_queue.len(), take, || {
        let mut t = output::table(&[
            "event",
            "position",
            "type",
            "community",
            "app",
            "stale because",
        ]);
        for s in f.stale_queue.iter().take(take) {
            t.add_row(vec![
                s.event_id.to_string(),
                s.position.to_string(),
                s.event_type.clone(),
                s.community.to_string(),
                s.app.to_string(),
                format!("{} restored at position {}", s.restored, s.restored_at),
            ]);
        }
        t
    });
}

fn section(title: &str, n: usize, take: usize, table: impl FnOnce() -> comfy_table::Table) {
    if n == 0 {
        return;
    }
    println!("\n{title} ({n})");
    println!("{}", table());
    if n > take {
        println!("… and {} more", n - take);
    }
}

pub fn orphan_reason(r: OrphanReason) -> &'static str {
    match r {
        OrphanReason::CommunityMissing => "community missing",
        OrphanReason::CommunityTrashed => "community in the trash",
        OrphanReason::CommunityPurged => "community deleted",
        OrphanReason::WidgetMissing => "widget missing",
    }
}

pub fn disposition(d: &Disposition) -> String {
    match d {
        Disposition::AssignSame => "assign back to its community".into(),
        Disposition::AssignTo { community } => format!("assign to {community}"),
        Disposition::Recreate => "recreate the community, then assign".into(),
        Disposition::Undelete => "restore the community from the trash".into(),
        Disposition::InTrash => "none: in the trash by the ledger too".into(),
        Disposition::Delete => "delete the orphaned data".into(),
    }
}

/// How a change was lost: its database restored, or its queued delivery rolled back with the
/// Communities database (which holds the queue), or cleared.
pub fn lost_how(f: &Findings, c: &findings::LostChange) -> String {
    if let Loss::Restore { backup, .. } = &c.loss {
        let restored = f
            .restores
            .iter()
            .find(|r| &r.backup == backup)
            .map(|r| r.database);
        if restored.is_some_and(|d| d != c.database) {
            return format!("its queued delivery went when Communities was restored from {backup}");
        }
    }
    loss(&c.loss)
}

pub fn loss(l: &Loss) -> String {
    match l {
        Loss::Restore { backup, .. } => format!("restored from {backup}"),
        Loss::QueueCleared => "queue cleared".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use projections::events::Repair;

    fn planned(plan: &str, steps: u32, at: u64) -> DomainEvent {
        DomainEvent::RepairPlanned(Repair {
            plan: plan.into(),
            step: None,
            steps: Some(steps),
            at: Some(at),
            actions: Vec::new(),
            action: None,
            part: None,
            parts: None,
            actor: None,
        })
    }

    fn done(plan: &str, step: u32) -> DomainEvent {
        let mut events = crate::plan::step_done(plan, step, Vec::new(), None);
        assert_eq!(events.len(), 1, "a step without an action is one event");
        events.remove(0)
    }

    fn after(events: &[DomainEvent]) -> Repairs {
        let recorded: Vec<Recorded> = (1..)
            .zip(events)
            .map(|(position, event)| Recorded {
                position: 100 + position,
                id: uuid::Uuid::nil(),
                recorded_ns: 0,
                occurred_ns: 0,
                event: event.clone(),
            })
            .collect();
        Repairs::of(&recorded)
    }

    fn progress(plan: &str, done: u32, steps: u32) -> Vec<Progress> {
        let plan = plan.into();
        vec![Progress { done, plan, steps }]
    }

    #[test]
    fn the_latest_plan_is_under_way_until_done_and_a_later_one_supersedes_it() {
        let mut log = vec![planned("a", 3, 10), done("a", 1), done("a", 2)];
        assert_eq!(
            after(&log),
            Repairs {
                since: 0,
                in_progress: progress("a", 2, 3)
            }
        );
        // Made afresh after a's first steps and recorded: b is the one under way.
        log.push(planned("b", 2, 20));
        assert_eq!(after(&log).in_progress, progress("b", 0, 2));
        log.extend([done("b", 1), done("b", 2)]);
        assert_eq!(after(&log), Repairs::default().with_since(20));
        // a's last step done late repairs nothing b did not.
        log.push(done("a", 3));
        assert_eq!(after(&log), Repairs::default().with_since(20));
        // A step out of the plan does not complete it.
        let log = vec![planned("c", 1, 30), done("c", 2)];
        assert_eq!(after(&log).in_progress, progress("c", 0, 1));
    }

    impl Repairs {
        fn with_since(self, since: u64) -> Repairs {
            Repairs { since, ..self }
        }
    }
}
