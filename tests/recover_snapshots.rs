//! `recover` and `plan` continue a snapshot when one precedes every backup the open restores go
//! back to. Snapshots are a cache: the findings, the world and the plan (its id included) must be
//! the same as from the start of the log — with restores recorded and considered, a repaired
//! restore followed by one to an older backup, queued deliveries cleared, and a Communities
//! restore that takes the queue back.

mod common;

use common::{record, rename_not_delivered_to_forums};
use ledger::{Ledger, Options};
use lifeline::domain::{At, Point};
use lifeline::recover::{analyze, analyze_all, RestoreArg};
use lifeline::world::Keep;
use projections::events::*;
use projections::{Database, DomainEvent};

/// Ten simulated days over 40 communities.
fn simulated(dir: &std::path::Path) -> Ledger {
    let l = Ledger::open(dir.join("l.redb"), Options::default()).unwrap();
    let start = lifeline::time_fmt::parse("2026-10-01T00:00:00Z").unwrap().0;
    let cfg = projections::simulate::Config::new(40, 10, 7, start);
    lifeline::simulate::write(&l, &cfg).unwrap();
    l
}

/// [`simulated`], with a snapshot after every `1/parts` of it (all kept: these tests are about
/// which one the analysis starts from).
fn simulated_with_snapshots(dir: &std::path::Path, parts: u64) -> Ledger {
    let l = simulated(dir);
    lifeline::world::build_snapshots(&l, (l.head() / parts).max(1), Keep::All, |_| {}).unwrap();
    l
}

/// Records a plan for the open restores with every step done, as `plan record` and `plan done`
/// do: they count as repaired.
fn repair(l: &Ledger) {
    let made = lifeline::plan::make(l, &At::Now, false, &[]).unwrap();
    for e in made.all_done(None, lifeline::plan::PART_BYTES) {
        record(l, e);
    }
    let repaired = analyze(l, &At::Now, false, &[]).unwrap();
    assert!(repaired.findings.restores.is_empty());
}

fn restore(database: Database, backup: &str) -> DomainEvent {
    DomainEvent::DatabaseRestored(DatabaseRestored {
        database,
        backup: backup.into(),
        actor: None,
    })
}

/// `clearQueuedEventsByRemoteAppDefId` for Forums.
fn forum_queue_cleared() -> DomainEvent {
    DomainEvent::QueueCleared(QueueCleared {
        scope: QueueScope::RemoteApp {
            app: projections::App::Forum,
        },
        actor: None,
    })
}

/// The backups of `d`, oldest first.
fn backups(l: &Ledger, d: Database) -> Vec<String> {
    let point = Point {
        position: l.head(),
        occurred_by: None,
    };
    let w = analyze_all(l, point, &[]).unwrap().world;
    let mut of_d: Vec<_> = w.backups.values().filter(|b| b.database == d).collect();
    of_d.sort_by_key(|b| b.position);
    of_d.into_iter().map(|b| b.label.clone()).collect()
}

/// The analysis and plan at `at` from snapshots equal those from the start; returns whether a
/// snapshot was used.
fn same_either_way(l: &Ledger, at: &At, what_if: &[RestoreArg]) -> bool {
    let point = lifeline::domain::resolve(l, at, false).unwrap();
    let all = analyze_all(l, point, what_if).unwrap();
    let snap = analyze(l, at, false, what_if).unwrap();
    let json = |f: &projections::findings::Findings| serde_json::to_value(f).unwrap();
    assert_eq!(
        json(&snap.findings),
        json(&all.findings),
        "findings at {at:?}"
    );
    assert!(snap.world == all.world, "world at {at:?}");
    assert_eq!(snap.since, all.since);
    // The snapshot thinning keeps is the one the analysis at the head starts from.
    if matches!(at, At::Now) && what_if.is_empty() {
        assert_eq!(
            lifeline::recover::start_snapshot(l).unwrap(),
            snap.from_snapshot,
            "the start snapshot"
        );
    }
    // The plan: the same steps, made from the same last change (so the same id).
    let position = all.point.position;
    let basis = all
        .events
        .iter()
        .rev()
        .filter(|r| r.position <= position)
        .find(|r| !r.event.is_bookkeeping())
        .map_or(0, |r| r.position);
    let made = lifeline::plan::make(l, at, false, what_if).unwrap();
    assert_eq!(made.plan.position, basis, "plan basis at {at:?}");
    let mut expected = projections::plan::plan(&all.findings, &all.world);
    expected.position = basis;
    assert_eq!(
        serde_json::to_value(&made.plan).unwrap(),
        serde_json::to_value(&expected).unwrap(),
        "plan at {at:?}"
    );
    snap.from_snapshot.is_some()
}

#[test]
fn recover_from_snapshots_equals_recover_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let l = simulated_with_snapshots(dir.path(), 12);
    let head = l.head();

    // No restores: the latest snapshot, at now and in the past.
    assert!(same_either_way(&l, &At::Now, &[]));
    assert!(same_either_way(&l, &At::Position(head * 2 / 3), &[]));

    // A Files restore to a backup a few days back, and what-ifs beside it.
    let files = backups(&l, Database::Files);
    let acts = backups(&l, Database::Activities);
    record(&l, restore(Database::Files, &files[files.len() - 3]));
    assert!(same_either_way(&l, &At::Now, &[]));
    let what_if = [RestoreArg {
        database: Database::Activities,
        backup: acts[acts.len() - 2].clone(),
    }];
    assert!(same_either_way(&l, &At::Now, &what_if));
    repair(&l);
    assert!(same_either_way(&l, &At::Now, &[]));

    // Then Files again, to a backup older than the first restore's; the queue cleared for
    // Forums; Communities restored (its retry queue goes back with it).
    record(&l, restore(Database::Files, &files[files.len() - 5]));
    assert!(same_either_way(&l, &At::Now, &[]));
    record(&l, forum_queue_cleared());
    let comms = backups(&l, Database::Communities);
    record(&l, restore(Database::Communities, &comms[comms.len() - 2]));
    let f = analyze(&l, &At::Now, false, &[]).unwrap();
    assert!(!f.findings.lost.is_empty(), "the restores lost changes");
    assert!(same_either_way(&l, &At::Now, &[]));

    // Snapshots written after all this are used too, and agree.
    lifeline::world::build_snapshots(&l, (head / 12).max(1), Keep::All, |_| {}).unwrap();
    assert!(same_either_way(&l, &At::Now, &what_if));
}

/// A repaired restore to an old backup, then an open one to a newer backup: the analysis must
/// start before the old backup too, or the changes the repaired restore took away would be
/// counted again as lost by the open one.
#[test]
fn a_repaired_restore_to_an_older_backup_moves_the_start_back() {
    let dir = tempfile::tempdir().unwrap();
    let l = simulated_with_snapshots(dir.path(), 20);
    let files = backups(&l, Database::Files);
    record(&l, restore(Database::Files, &files[files.len() - 6]));
    repair(&l);
    record(&l, restore(Database::Files, &files[files.len() - 2]));
    let a = analyze(&l, &At::Now, false, &[]).unwrap();
    assert_eq!(a.findings.restores.len(), 1);
    assert!(same_either_way(&l, &At::Now, &[]));
}

/// A delivery that failed before the snapshot and waits in the queue, cleared after it: the
/// change is lost, and described from the log.
#[test]
fn a_queued_delivery_from_before_the_snapshot_is_lost_when_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let l = simulated(dir.path());
    let point = Point {
        position: l.head(),
        occurred_by: None,
    };
    let w = analyze_all(&l, point, &[]).unwrap().world;
    let forum = w.actual.db(Database::Forums).all_resources()[0].community;
    let update = rename_not_delivered_to_forums(&l, forum);
    let queued_at = l.head();
    lifeline::world::build_snapshots(&l, l.head(), Keep::All, |_| {}).unwrap();
    record(&l, forum_queue_cleared());
    let a = analyze(&l, &At::Now, false, &[]).unwrap();
    assert_eq!(a.from_snapshot, Some(queued_at));
    assert!(
        a.findings.lost.iter().any(|x| x.event_id == update
            && x.database == Database::Forums
            && x.summary.contains("Renamed while Forums was away")),
        "{:?}",
        a.findings.lost
    );
    assert!(same_either_way(&l, &At::Now, &[]));
    // A snapshot after the clear: the loss still counts (no repair since), so the analysis
    // starts before the clear.
    lifeline::world::build_snapshots(&l, l.head(), Keep::All, |_| {}).unwrap();
    let a = analyze(&l, &At::Now, false, &[]).unwrap();
    assert!(a.findings.lost.iter().any(|x| x.event_id == update));
    assert!(a.from_snapshot.is_none_or(|s| s < l.head()));
    same_either_way(&l, &At::Now, &[]);
}

/// `recover --advise` builds the world it restores each choice on from a snapshot before the
/// backups it considers when one serves: the choices are the same as from the start of the log,
/// with no restore recorded (every database), an open one, a backup taken after it, a what-if
/// beside them, and a repaired restore followed by an open one to an older backup.
#[test]
fn advice_from_snapshots_equals_advice_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let l = simulated_with_snapshots(dir.path(), 12);
    let same = |what_if: &[RestoreArg]| {
        let point = lifeline::domain::resolve(&l, &At::Now, false).unwrap();
        let all = analyze_all(&l, point, what_if).unwrap();
        let snap = analyze(&l, &At::Now, false, what_if).unwrap();
        assert!(snap.from_snapshot.is_some());
        let from_start = lifeline::advise::choices(&l, all).unwrap();
        assert!(!from_start.is_empty());
        assert_eq!(lifeline::advise::choices(&l, snap).unwrap(), from_start);
        from_start
    };
    let everything = same(&[]);
    let files = backups(&l, Database::Files);
    let acts = backups(&l, Database::Activities);
    record(&l, restore(Database::Files, &files[files.len() - 3]));
    let one = same(&[]);
    // A backup taken after the open restore is a candidate too.
    record(
        &l,
        DomainEvent::BackupTaken(BackupTaken {
            database: Database::Files,
            label: "files-after-the-restore".into(),
            actor: None,
        }),
    );
    let after = same(&[]);
    assert!(after
        .iter()
        .any(|c| c.restores[0].1 == "files-after-the-restore"));
    assert_ne!(one, everything);
    assert!(one.iter().all(|c| c.restores.len() == 1));
    let what_if = [RestoreArg {
        database: Database::Activities,
        backup: acts[acts.len() - 2].clone(),
    }];
    assert!(same(&what_if).iter().all(|c| c.restores.len() == 2));
    repair(&l);
    record(&l, restore(Database::Files, &files[files.len() - 5]));
    same(&[]);
}

/// A plan whose steps' actions are too large for one event is recorded with them in
/// `RepairStepPlanned` parts after it; `plan done` takes each step's parts from there into as
/// many `RepairStepApplied` events, and the fold, applying the parts in order, lands where the
/// plan said: the restore counts as repaired and nothing is left to find or plan. Parts that
/// are not all there are an error that appends nothing.
#[test]
fn a_plan_too_large_for_one_event_is_recorded_and_done_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let l = simulated(dir.path());
    let oldest = backups(&l, Database::Communities)[0].clone();
    record(&l, restore(Database::Communities, &oldest));
    let made = lifeline::plan::make(&l, &At::Now, false, &[]).unwrap();
    let steps = made.plan.steps.len();
    assert!(steps > 3, "{steps} steps");
    let events = made.recorded_in_parts(None, 600);
    let parts = events.len() - 1;
    assert!(parts > steps, "{parts} parts for {steps} steps");
    match &events[0] {
        DomainEvent::RepairPlanned(p) => {
            assert!(p.actions.is_empty());
            assert_eq!(p.parts, Some(parts as u32));
        }
        other => panic!("{other:?}"),
    }
    for e in events {
        record(&l, e);
    }
    let all: Vec<u32> = (1..=steps as u32).collect();
    let done = lifeline::plan::done_in(&l, &made.id[..12], &all, None).unwrap();
    assert_eq!(
        (done["left"].as_u64(), done["effect"].as_bool()),
        (Some(0), Some(true))
    );
    lifeline::audit::catch_up(&l).unwrap();
    let applied = lifeline::recover::repair_events(&l, l.head())
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r.event, DomainEvent::RepairStepApplied(_)))
        .count();
    assert_eq!(applied, parts, "one step event per part");
    let after = analyze(&l, &At::Now, false, &[]).unwrap();
    assert!(after.findings.restores.is_empty());
    assert_eq!(after.findings.differences, vec![]);
    assert_eq!(after.findings.lost, vec![]);
    let again = lifeline::plan::make(&l, &At::Now, false, &[]).unwrap();
    assert_eq!(again.plan.steps.len(), 0);

    // A plan that says 3 parts follow it, with one there.
    let made = lifeline::plan::make(&l, &At::Now, false, &[]).unwrap();
    let id = "feedc0de".repeat(8);
    record(
        &l,
        DomainEvent::RepairPlanned(Repair {
            plan: id.clone(),
            step: None,
            steps: Some(1),
            at: Some(made.plan.position),
            actions: Vec::new(),
            action: None,
            part: None,
            parts: Some(3),
            actor: None,
        }),
    );
    record(
        &l,
        DomainEvent::RepairStepPlanned(Repair {
            plan: id.clone(),
            step: Some(1),
            steps: None,
            at: None,
            actions: Vec::new(),
            action: Some(projections::repair::Action::BlockUsers),
            part: None,
            parts: None,
            actor: None,
        }),
    );
    let head = l.head();
    let err = lifeline::plan::done_in(&l, "feedc0de", &[1], None).unwrap_err();
    assert!(err.to_string().contains("not all there"), "{err}");
    assert_eq!(l.head(), head, "nothing appended");
}
