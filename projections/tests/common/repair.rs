//! A plan's steps done, as the ledger records them: shared by the recovery tests.

use projections::converge::residual;
use projections::events::{DomainEvent, Repair};
use projections::findings::{analyze, Input};
use projections::plan::{plan, Plan};
use projections::repair::Action;
use projections::state::Deployment;
use projections::Recorded;
use uuid::Uuid;

/// The most JSON of an action one event carries here: small, so that most plans' actions come
/// in several parts.
const PART_BYTES: usize = 600;

/// The plan recorded and every step done, as `plan record` and `plan done` write them: the
/// ledger's actual deployment is the one the plan said it leads to, what the owners were told
/// about is in the intended one as the repair left it, and nothing is left to find or to plan.
pub fn takes_effect(case: &str, mut events: Vec<Recorded>, p: &Plan, repaired: &Deployment) {
    let since = events.len() as u64;
    let mut push = |event: DomainEvent| {
        let position = events.len() as u64 + 1;
        let last = events.last().map_or(0, |r| r.recorded_ns);
        events.push(Recorded {
            position,
            id: Uuid::from_u128(u128::from(position)),
            recorded_ns: last + 1,
            occurred_ns: last + 1,
            event,
        });
    };
    let repair = |step: Option<u32>| Repair {
        plan: "the plan".into(),
        step,
        steps: None,
        at: Some(since),
        actions: Vec::new(),
        action: None,
        part: None,
        parts: None,
        actor: None,
    };
    // Each step's action in parts of a few hundred bytes, as a plan too large for one event
    // is recorded and done: applying the parts in order must do what the whole does.
    let parts = |s: &projections::plan::Step| s.action.clone().split(PART_BYTES);
    let planned: Vec<(u32, Vec<Action>)> = p.steps.iter().map(|s| (s.number, parts(s))).collect();
    push(DomainEvent::RepairPlanned(Repair {
        steps: Some(p.steps.len() as u32),
        parts: Some(planned.iter().map(|(_, a)| a.len() as u32).sum()),
        ..repair(None)
    }));
    for kind in [
        DomainEvent::RepairStepPlanned,
        DomainEvent::RepairStepApplied,
    ] {
        for (step, actions) in &planned {
            let n = actions.len() as u32;
            for (i, action) in (1..).zip(actions) {
                push(kind(Repair {
                    action: Some(action.clone()),
                    part: (n > 1).then_some(i),
                    parts: (n > 1).then_some(n),
                    ..repair(Some(*step))
                }));
            }
        }
    }
    let head = events.len() as u64;
    let (after, world) = analyze(&Input {
        events: &events,
        head,
        since,
    });
    assert!(
        world.actual == *repaired,
        "{case}: the steps done are not the plan's"
    );
    assert!(
        world.actual.index_agrees() && world.intended.index_agrees(),
        "{case}"
    );
    assert_eq!(residual(&world.intended, &world.actual), vec![], "{case}");
    assert!(after.restores.is_empty(), "{case}");
    assert_eq!(after.differences, vec![], "{case}");
    assert_eq!(after.lost, vec![], "{case}");
    assert_eq!(after.stale_queue, vec![], "{case}");
    let again = plan(&after, &world);
    let titles: Vec<&str> = again.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, Vec::<&str>::new(), "{case}: planned again");
}
