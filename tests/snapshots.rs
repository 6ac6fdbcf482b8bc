//! Snapshots are a cache: at every position, the world built from the nearest snapshot equals
//! the world replayed from the start — with failures reported late, backups and restores in the
//! history, and a snapshot that does not decode.

mod common;
use ledger::{ExpectedRevision, Ledger, Options, ProposedEvent};
use lifeline::domain::Point;
use lifeline::world::{build_snapshots, marks_up_to, world_at, Keep};
use projections::events::*;
use projections::{App, CommunityType, Database, DomainEvent, Role};
use uuid::Uuid;

fn append(l: &Ledger, e: DomainEvent, id: Uuid) {
    let (ty, data, meta) = e.encode();
    let mut p = ProposedEvent::json(ty, &serde_json::Value::Null).with_id(ledger::EventId(id));
    p.data = data;
    p.metadata = meta;
    l.append_blocking(&e.stream(), ExpectedRevision::Any, vec![p])
        .unwrap();
}

/// A history over a few communities; returns the ledger.
fn history(l: &Ledger) {
    let mut n = 0u128;
    let mut id = || {
        n += 1;
        Uuid::from_u128(n)
    };
    let comms: Vec<Uuid> = (0..3).map(|i| Uuid::from_u128(1_000_000 + i)).collect();
    for c in &comms {
        append(
            l,
            DomainEvent::CommunityCreated(CommunityCreated::new(
                *c,
                &format!("C{c}"),
                CommunityType::Public,
                vec!["o".into()],
            )),
            id(),
        );
        append(
            l,
            DomainEvent::WidgetAdded(WidgetAdded {
                community: *c,
                instance: format!("W{c}"),
                widget_def_id: "Files".into(),
                actor: None,
            }),
            id(),
        );
        append(
            l,
            DomainEvent::RemoteAppProvisioned(RemoteAppProvisioned {
                community: *c,
                app: App::Files,
                instance: format!("W{c}"),
                object_id: format!("lib-{c}"),
                actor: None,
            }),
            id(),
        );
    }
    let mut pending_failure: Option<(Uuid, Uuid)> = None;
    for round in 0..15u32 {
        let c = comms[round as usize % 3];
        let change = id();
        let t = [
            CommunityType::Private,
            CommunityType::Public,
            CommunityType::PublicInviteOnly,
        ][round as usize % 3];
        append(
            l,
            DomainEvent::VisibilityChanged(VisibilityChanged {
                community: c,
                community_type: t,
                list_when_restricted: false,
                external: false,
                actor: None,
            }),
            change,
        );
        append(
            l,
            DomainEvent::MembersAdded(Members {
                community: c,
                members: [(format!("u{round}"), Role::Member)].into(),
                actor: None,
            }),
            id(),
        );
        // a failure reported a few events late, naming an event before the next snapshot
        if let Some((ev, comm)) = pending_failure.take() {
            append(
                l,
                DomainEvent::DeliveryFailed(Delivery {
                    community: comm,
                    app: App::Files,
                    event: ev,
                }),
                id(),
            );
        }
        if round % 4 == 1 {
            pending_failure = Some((change, c));
        }
        // a widget removal that Files never gets, reported late: Files keeps the resource,
        // so the community's later changes still go to it
        if round == 10 {
            let removal = id();
            append(
                l,
                DomainEvent::WidgetRemoved(WidgetRemoved {
                    community: c,
                    instance: format!("W{c}"),
                    actor: None,
                }),
                removal,
            );
            pending_failure = Some((removal, c));
        }
        if round % 5 == 2 {
            append(
                l,
                DomainEvent::BackupTaken(BackupTaken {
                    database: Database::Files,
                    label: format!("files-{round}"),
                    actor: None,
                }),
                id(),
            );
        }
        if round == 9 {
            append(
                l,
                DomainEvent::DatabaseRestored(DatabaseRestored {
                    database: Database::Files,
                    backup: "files-2".into(),
                    actor: None,
                }),
                id(),
            );
        }
    }
}

/// A ledger in `dir` holding [`history`].
fn with_history(dir: &std::path::Path) -> Ledger {
    let l = Ledger::open(dir.join("s.redb"), Options::default()).unwrap();
    history(&l);
    l
}

#[test]
fn snapshots_never_change_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let l = with_history(dir.path());
    let head = l.head();
    let reference: Vec<_> = (0..=head)
        .map(|p| world_at(&l, &at(p), false).unwrap().world)
        .collect();
    // The replay from the start, streamed from the log, is the fold of the events in memory.
    for (p, world) in reference.iter().enumerate() {
        let events = lifeline::domain::load(&l, p as u64, None).unwrap().events;
        assert_eq!(*world, projections::World::replay(&events), "position {p}");
    }
    // Every third position; then every seventh, thinned, which removes the others.
    for (every, keep) in [(3, Keep::All), (7, Keep::Thinned)] {
        assert!(build_snapshots(&l, every, keep, |_| {}).unwrap().written > 0);
        let stored: Vec<u64> = l.snapshots().unwrap().iter().map(|(p, _)| *p).collect();
        assert_eq!(stored, schedule(&l, every, keep));
        // Failures reported late make the newest snapshots unusable for `recover`; the one
        // kept for it is the one it uses.
        let recovered =
            lifeline::recover::analyze(&l, &lifeline::domain::At::Now, false, &[]).unwrap();
        assert_eq!(
            lifeline::recover::start_snapshot(&l).unwrap(),
            recovered.from_snapshot
        );
        // every snapshot stored reads back, queue entries included
        for (p, _) in l.snapshots().unwrap() {
            let (_, bytes) = l.snapshot_at_or_before(p).unwrap().unwrap();
            let w = projections::snapshot::decode(&bytes).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(w, reference[p as usize], "snapshot at {p}");
        }
        let mut used = 0;
        for p in 0..=head {
            let built = world_at(&l, &at(p), true).unwrap();
            used += usize::from(built.from_snapshot.is_some());
            assert_eq!(
                built.world, reference[p as usize],
                "position {p}, snapshots every {every}"
            );
        }
        // Used at most points that have one before them.
        let after_first = (head - stored[0] + 1) as usize;
        assert!(
            used > after_first / 2,
            "snapshots were used {used} times of {after_first}"
        );
    }
    // A snapshot that does not decode is passed over.
    l.put_snapshot_blocking(head, b"\x01not a world".to_vec())
        .unwrap();
    let built = world_at(&l, &at(head), true).unwrap();
    assert_eq!(built.world, reference[head as usize]);
    assert_ne!(built.from_snapshot, Some(head));
}

/// A ledger of a simulated deployment of 20 communities over `days`, and its directory.
fn simulated(days: u32, seed: u64) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("s.redb"), Options::default()).unwrap();
    let start = lifeline::time_fmt::parse("2026-10-01T00:00:00Z").unwrap().0;
    let cfg = projections::simulate::Config::new(20, days, seed, start);
    lifeline::simulate::write(&l, &cfg).unwrap();
    (dir, l)
}

fn at(position: u64) -> Point {
    Point {
        position,
        occurred_by: None,
    }
}

/// The snapshots a build keeps: its schedule, and (thinned) the one `recover` starts from.
fn schedule(l: &Ledger, every: u64, keep: Keep) -> Vec<u64> {
    let mut kept = marks_up_to(l.head(), every, keep);
    if keep == Keep::Thinned {
        kept.extend(lifeline::recover::start_snapshot(l).unwrap());
        kept.sort_unstable();
        kept.dedup();
    }
    kept
}

/// Every stored snapshot decodes to the world replayed from the start to its position.
fn assert_stored_snapshots_equal_replay(l: &Ledger) {
    for (p, _) in l.snapshots().unwrap() {
        let (_, bytes) = l.snapshot_at_or_before(p).unwrap().unwrap();
        assert_eq!(
            projections::snapshot::decode(&bytes).unwrap(),
            world_at(l, &at(p), false).unwrap().world,
            "snapshot at {p}"
        );
    }
}

/// Snapshots written after more events continue the latest stored one, and equal the replay
/// from the start, with a restore in the new events of a backup taken before that snapshot.
#[test]
fn new_snapshots_continue_the_latest_stored_one() {
    let (_dir, l) = simulated(6, 3);
    let every = 40;
    let first = build_snapshots(&l, every, Keep::Thinned, |_| {}).unwrap();
    assert_eq!(first.continued, None);
    let due = marks_up_to(l.head(), every, Keep::Thinned);
    assert!(
        due.len() < (l.head() / every) as usize,
        "the old ones are thinned"
    );
    assert_eq!(first.written, due.len());
    let old = world_at(&l, &at(l.head()), false).unwrap().world;
    let files = old
        .backups
        .values()
        .filter(|b| b.database == Database::Files)
        .min_by_key(|b| b.position)
        .unwrap()
        .label
        .clone();
    let community = *old.intended.communities().keys().next().unwrap();
    let mut n = 0u128;
    let target = (l.head() / every + 2) * every;
    while l.head() < target {
        n += 1;
        let e = if n == 5 {
            DomainEvent::DatabaseRestored(DatabaseRestored {
                database: Database::Files,
                backup: files.clone(),
                actor: None,
            })
        } else {
            DomainEvent::CommunityUpdated(CommunityUpdated {
                community,
                name: Some(format!("Renamed {n}")),
                ..Default::default()
            })
        };
        append(&l, e, Uuid::from_u128(0xABC0_0000 + n));
    }
    let last_stored = l.snapshots().unwrap().last().unwrap().0;
    let again = build_snapshots(&l, every, Keep::Thinned, |_| {}).unwrap();
    assert_eq!(again.continued, Some(last_stored));
    // The two new marks; none passed over before is written again.
    assert_eq!(again.written, 2);
    let stored: Vec<u64> = l.snapshots().unwrap().iter().map(|(p, _)| *p).collect();
    assert_eq!(stored, schedule(&l, every, Keep::Thinned));
    let before = first.written + 2;
    assert_eq!(before - again.dropped, stored.len());
    // The restore goes back to the first Files backup: `recover` starts from a snapshot before
    // it, which the schedule alone would have thinned away, and finds it kept.
    let start = lifeline::recover::start_snapshot(&l).unwrap().unwrap();
    assert!(!marks_up_to(l.head(), every, Keep::Thinned).contains(&start));
    assert!(stored.contains(&start));
    let analysis = lifeline::recover::analyze(&l, &lifeline::domain::At::Now, false, &[]).unwrap();
    assert_eq!(analysis.from_snapshot, Some(start));
    assert_stored_snapshots_equal_replay(&l);
}

/// `snapshot --rewrite` replaces snapshots of an earlier format with this build's, each equal
/// to the replay from the start; the earlier one was read until then.
#[test]
fn rewrite_replaces_snapshots_of_an_earlier_format() {
    let (_dir, l) = simulated(4, 5);
    let every = 50;
    // As an earlier build stored them: version 3, zstd of the bincode with every map in full.
    for k in 1..=l.head() / every {
        let w = world_at(&l, &at(k * every), false).unwrap().world;
        let plain = bincode::serde::encode_to_vec(&w, bincode::config::standard()).unwrap();
        let mut v3 = vec![3];
        v3.extend(zstd::bulk::compress(&plain, 3).unwrap());
        l.put_snapshot_blocking(k * every, v3).unwrap();
    }
    let version_at = |p| l.snapshot_at_or_before(p).unwrap().unwrap().1[0];
    let last = (l.head() / every) * every;
    assert_eq!(version_at(last), 3);
    // Read as they are…
    assert_eq!(
        world_at(&l, &at(l.head()), true).unwrap().from_snapshot,
        Some(last)
    );
    // …and, once rewritten, in this build's format.
    let written = lifeline::world::rewrite_snapshots(&l, every, Keep::Thinned, |_| {})
        .unwrap()
        .written;
    assert_eq!(written, marks_up_to(l.head(), every, Keep::Thinned).len());
    assert_eq!(l.snapshots().unwrap().len(), written);
    for (p, _) in l.snapshots().unwrap() {
        assert_eq!(version_at(p), projections::snapshot::SNAPSHOT_VERSION);
    }
    assert_stored_snapshots_equal_replay(&l);
}

/// `history` follows some events' fates from a snapshot when one serves: the fates are those
/// the fold from the start gives, which are those of the whole history in memory — with a
/// failure reported after a snapshot about an event before it, and a restore after a snapshot
/// of a backup taken before it.
#[test]
fn followed_fates_are_the_same_from_a_snapshot() {
    use lifeline::world::fates_of;
    use std::collections::HashSet;
    let dir = tempfile::tempdir().unwrap();
    let l = with_history(dir.path());
    let head = l.head();
    // From each position on, and each position alone.
    let sets: Vec<HashSet<u64>> = (1..=head)
        .map(|p| (p..=head).collect())
        .chain((1..=head).map(|p| HashSet::from([p])))
        .collect();
    let events = lifeline::domain::load(&l, head, None).unwrap().events;
    let whole = projections::reach::reach(&events);
    let reference: Vec<_> = sets
        .iter()
        .map(|s| fates_of(&l, head, s.clone(), true).unwrap())
        .collect();
    for (s, f) in sets.iter().zip(&reference) {
        assert_eq!(f.from_snapshot, None, "no snapshot is stored yet");
        let expected: projections::reach::Reach = whole
            .iter()
            .filter(|(p, _)| s.contains(p))
            .map(|(p, f)| (*p, f.clone()))
            .collect();
        assert_eq!(f.fates, expected, "from {:?}", s.iter().min());
        let positions: Vec<u64> = f.events.iter().map(|r| r.position).collect();
        let mut wanted: Vec<u64> = s.iter().copied().collect();
        wanted.sort_unstable();
        assert_eq!(positions, wanted);
    }
    for every in [3, 7] {
        assert!(
            build_snapshots(&l, every, Keep::All, |_| {})
                .unwrap()
                .written
                > 0
        );
        let mut used = 0;
        for (s, r) in sets.iter().zip(&reference) {
            let f = fates_of(&l, head, s.clone(), true).unwrap();
            used += usize::from(f.from_snapshot.is_some());
            assert_eq!(f.fates, r.fates, "from {:?}, every {every}", s.iter().min());
            assert_eq!(f.events, r.events);
            // Never from a snapshot after a failure it took as delivered, or after a backup
            // that a later restore goes back to.
            assert_eq!(fates_of(&l, head, s.clone(), false).unwrap().fates, r.fates);
        }
        assert!(
            used > sets.len() / 2,
            "snapshots used {used} times of {}",
            sets.len()
        );
    }
}

/// `lifeline snapshot`: `--keep-all` writes every mark; without it, the old ones are thinned
/// away (and not written again), the log untouched; both say what they did, in JSON too.
#[test]
fn the_snapshot_command_thins_old_snapshots_unless_told_to_keep_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let cfg = {
        let start = lifeline::time_fmt::parse("2026-10-01T00:00:00Z").unwrap().0;
        projections::simulate::Config::new(20, 6, 3, start)
    };
    let head = {
        let l = Ledger::open(&path, Options::default()).unwrap();
        lifeline::simulate::write(&l, &cfg).unwrap();
        l.drop_snapshots_blocking(l.snapshots().unwrap().into_iter().map(|(p, _)| p).collect())
            .unwrap();
        l.head()
    };
    let every = (head / 20).max(1);
    let json = |args: &[&str]| -> serde_json::Value {
        let out = common::ok(&path, &[args, &["--format", "json"]].concat());
        serde_json::from_str(out.trim()).unwrap()
    };
    let n = every.to_string();
    let all = json(&["snapshot", "--every", &n, "--keep-all"]);
    assert_eq!(all["written"], head / every, "{all}");
    assert_eq!(all["dropped"], 0, "{all}");
    let verified = common::ok(&path, &["verify", "--format", "json"]);
    let thinned = json(&["snapshot", "--every", &n]);
    let due = {
        let l = Ledger::open(&path, Options::default()).unwrap();
        schedule(&l, every, Keep::Thinned)
    };
    assert_eq!(thinned["written"], 0, "{thinned}");
    assert_eq!(
        thinned["dropped"],
        head / every - due.len() as u64,
        "{thinned}"
    );
    assert_eq!(thinned["stored"], due.len(), "{thinned}");
    assert!(thinned["bytes"].as_u64().unwrap() < all["bytes"].as_u64().unwrap());
    assert!(thinned["bytes"].as_u64() < thinned["ledger_file_bytes"].as_u64());
    // The log is as it was.
    assert_eq!(common::ok(&path, &["verify", "--format", "json"]), verified);
    // Thinned again: nothing to write, nothing to remove.
    let again = common::ok(&path, &["snapshot", "--every", &n]);
    assert!(
        again.starts_with(&format!(
            "wrote 0 snapshots, removed 0; {} stored",
            due.len()
        )),
        "{again}"
    );
    assert!(again.contains("% of the"), "{again}");

    // `compact` gives the removed snapshots' pages back; the log and the snapshots are kept.
    let held = Ledger::open(&path, Options::default()).unwrap();
    let refused = common::lifeline(&path, &["compact"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("already open"),
        "{}",
        refused.stderr
    );
    drop(held);
    let compacted = json(&["compact"]);
    let (before, after) = (
        compacted["bytes_before"].as_u64().unwrap(),
        compacted["bytes_after"].as_u64().unwrap(),
    );
    assert!(after < before, "{compacted}");
    assert_eq!(after, std::fs::metadata(&path).unwrap().len());
    assert_eq!(common::ok(&path, &["verify", "--format", "json"]), verified);
    assert_eq!(json(&["snapshot", "--every", &n])["stored"], due.len());
    let missing = common::lifeline(&dir.path().join("none.redb"), &["compact"]);
    assert_eq!(
        missing.code,
        lifeline::exit::NOT_FOUND,
        "{}",
        missing.stderr
    );
    assert!(!dir.path().join("none.redb").exists());
}

/// With the tag index caught up, a snapshot that a failure reported after it makes unusable is
/// passed over before it is read: a damaged one there is not even decoded. The answer is the
/// same either way.
#[test]
fn a_snapshot_a_late_failure_report_makes_unusable_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let l = with_history(dir.path());
    let events = lifeline::domain::load(&l, l.head(), None).unwrap().events;
    let position_of = |id: Uuid| events.iter().find(|r| r.id == id).unwrap().position;
    // A failure reported at `report` naming an earlier event: a snapshot just before the
    // report took that event as delivered.
    let report = events
        .iter()
        .find(|r| matches!(&r.event, DomainEvent::DeliveryFailed(d) if position_of(d.event) < r.position))
        .unwrap()
        .position;
    let damaged = report - 1;
    l.put_snapshot_blocking(damaged, b"\x01not a world".to_vec())
        .unwrap();
    l.close();
    drop(l);
    let replay = |p: &str| common::lifeline(&path, &["replay", "--at", p, "--format", "json"]);
    let at = format!("@{report}");
    let warned = format!("snapshot at position {damaged} not used");
    let before = replay(&at);
    assert_eq!(before.code, 0, "{}", before.stderr);
    assert!(before.stderr.contains(&warned), "{}", before.stderr);
    common::ok(&path, &["audit", "--format", "json"]); // catches the tag index up
    let after = replay(&at);
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert!(!after.stderr.contains(&warned), "{}", after.stderr);
    assert_eq!(after.stdout, before.stdout);
}
