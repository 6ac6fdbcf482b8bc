//! Recovery on simulated histories: the simulator's events are ones Connections accepts, and
//! after any restores the plan's effects converge.

use projections::converge::{converge, residual};
use projections::events::{DatabaseRestored, DomainEvent};
use projections::findings::{analyze, Input};
use projections::plan::plan;
use projections::simulate::{backup_label, simulate, Config, Simulated};
use projections::{validate::validate, Database, Recorded, World};
use proptest::prelude::*;
use uuid::Uuid;

#[path = "common/repair.rs"]
mod repair;

const DAY: i64 = 86_400_000_000_000;
/// 2026-10-01T00:00:00Z.
const START: i64 = 1_790_812_800_000_000_000;

/// A deployment where most communities change every day: dense histories for small tests.
fn busy(communities: usize, days: u32, seed: u64) -> Config {
    Config {
        activity: 0.7,
        ..Config::new(communities, days, seed, START)
    }
}

fn recorded(sim: Vec<Simulated>) -> Vec<Recorded> {
    sim.into_iter()
        .enumerate()
        .map(|(i, s)| Recorded {
            position: i as u64 + 1,
            id: s.id,
            recorded_ns: s.occurred_ns,
            occurred_ns: s.occurred_ns,
            event: s.event,
        })
        .collect()
}

/// Appends restores of `which` (database, days before the last day's backup).
fn with_restores(mut events: Vec<Recorded>, days: u32, which: &[(Database, u32)]) -> Vec<Recorded> {
    for (database, back) in which {
        let day = i64::from(days - 1 - back);
        let label = backup_label(*database, START + day * DAY);
        let last = events.last().expect("a history");
        let r = Recorded {
            position: last.position + 1,
            id: Uuid::from_u128(u128::from(last.position) + 1),
            recorded_ns: last.recorded_ns + 1,
            occurred_ns: last.occurred_ns + 1,
            event: DomainEvent::DatabaseRestored(DatabaseRestored {
                database: *database,
                backup: label,
                actor: None,
            }),
        };
        events.push(r);
    }
    events
}

#[test]
fn simulated_events_are_ones_connections_accepts() {
    for seed in 1..=6 {
        let events = recorded(simulate(&busy(50, 12, seed)));
        assert!(events.len() > 1000, "{} events", events.len());
        let failed = projections::failures(&events);
        let mut w = World::default();
        for r in &events {
            if let Err(e) = validate(&w, &r.event) {
                panic!(
                    "seed {seed}, position {}: {:?} refused: {e}",
                    r.position, r.event
                );
            }
            w.apply(r, &failed);
        }
        assert!(
            w.actual.index_agrees() && w.intended.index_agrees(),
            "seed {seed}"
        );
    }
}

#[test]
fn the_simulation_is_deterministic_for_a_seed() {
    let a = simulate(&Config::new(30, 5, 11, START));
    let b = simulate(&Config::new(30, 5, 11, START));
    let c = simulate(&Config::new(30, 5, 12, START));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

fn check_converges(seed: u64, which: &[(Database, u32)]) {
    let days = 8;
    let events = with_restores(recorded(simulate(&busy(40, days, seed))), days, which);
    let head = events.len() as u64 - which.len() as u64;
    let (findings, world) = analyze(&Input {
        events: &events,
        head,
        since: 0,
    });
    // The index of which databases hold each community's resources follows every restore,
    // transfer and removal, and every repair.
    assert!(
        world.actual.index_agrees(),
        "seed {seed}, restores {which:?}"
    );
    assert!(world.intended.index_agrees(), "seed {seed}");
    let p = plan(&findings, &world);
    let repaired = converge(&world.actual, &world.intended, &p);
    assert!(repaired.index_agrees(), "seed {seed}, restores {which:?}");
    let left = residual(&world.intended, &repaired);
    let bad: Vec<_> = left.iter().filter(|r| !r.is_content()).collect();
    assert!(bad.is_empty(), "seed {seed}, restores {which:?}: {bad:#?}");
    assert!(p.converges);
    assert_eq!(left, p.unrecoverable);
    repair::takes_effect(
        &format!("seed {seed}, restores {which:?}"),
        events,
        &p,
        &repaired,
    );
}

#[test]
fn the_demo_restores_converge() {
    check_converges(1, &[(Database::Activities, 2), (Database::Communities, 1)]);
}

fn restores() -> impl Strategy<Value = Vec<(Database, u32)>> {
    proptest::collection::vec(
        (proptest::sample::select(Database::ALL.to_vec()), 0u32..5),
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn any_restores_converge(seed in 0u64..1000, which in restores()) {
        check_converges(seed, &which);
    }
}

/// The fates of some events, folded a piece at a time, are the fates the whole history gives
/// those events: the streamed `history COMMUNITY` tells what the analysis would.
fn check_followed_fates(seed: u64, which: &[(Database, u32)], every: u64, piece: usize) {
    let days = 8;
    let events = with_restores(recorded(simulate(&busy(40, days, seed))), days, which);
    let (all, world) = projections::reach::reach_and_world(&events);
    let only: std::collections::HashSet<u64> = events
        .iter()
        .map(|r| r.position)
        .filter(|p| p % every == seed % every)
        .collect();
    let mut reaching = projections::reach::Reaching::new(
        World::default(),
        projections::failures(&events),
        projections::fold::restored_labels(&events),
        Some(only.clone()),
    );
    for chunk in events.chunks(piece) {
        reaching.feed(chunk);
    }
    let (some, followed_world) = reaching.finish();
    let expected: projections::reach::Reach =
        all.into_iter().filter(|(p, _)| only.contains(p)).collect();
    assert!(!expected.is_empty(), "seed {seed}: nothing followed");
    assert_eq!(
        some, expected,
        "seed {seed}, restores {which:?}, every {every}"
    );
    assert_eq!(followed_world, world);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn followed_fates_are_the_whole_historys(
        seed in 0u64..1000,
        which in restores(),
        every in 1u64..20,
        piece in 1usize..5000,
    ) {
        check_followed_fates(seed, &which, every, piece);
    }
}

/// A history long enough to be followed on a second core while it is folded (when the machine
/// has one) gives the fates and world of one followed an event at a time, on one thread; and
/// the lost fates alone, which findings ask for, are the lost ones among those.
#[test]
fn fates_followed_beside_the_fold_are_those_followed_in_step() {
    use projections::reach::{Fate, Reach, Reaching, FOLLOW_APART_AT_LEAST};
    let days = 16;
    let which = [(Database::Activities, 2), (Database::Communities, 1)];
    let events = with_restores(recorded(simulate(&busy(700, days, 5))), days, &which);
    assert!(
        events.len() > 4 * FOLLOW_APART_AT_LEAST,
        "{} events",
        events.len()
    );
    let (all, world) = projections::reach::reach_and_world(&events);
    let mut stepped = Reaching::new(
        World::default(),
        projections::failures(&events),
        projections::fold::restored_labels(&events),
        None,
    );
    for r in &events {
        stepped.feed(std::slice::from_ref(r));
    }
    let (one_by_one, stepped_world) = stepped.finish();
    assert_eq!(all, one_by_one);
    assert_eq!(world, stepped_world);

    let (lost, _) = projections::reach::lost_and_world_from(World::default(), &events);
    let expected: Reach = all
        .into_iter()
        .filter_map(|(p, by_db)| {
            let by_db: std::collections::BTreeMap<Database, Fate> = by_db
                .into_iter()
                .filter(|(_, f)| matches!(f, Fate::Lost { .. }))
                .collect();
            (!by_db.is_empty()).then_some((p, by_db))
        })
        .collect();
    assert!(!expected.is_empty(), "the restores lose nothing");
    assert_eq!(lost, expected);
}

/// Found by `any_restores_converge`: a community created after the Communities backup is
/// recreated and its apps' data assigned back.
#[test]
fn a_lost_community_is_recreated() {
    check_converges(850, &[(Database::Communities, 0)]);
}
