//! A plan's steps done, as the ledger records them: shared by the recovery tests.

use projections::converge::residual;
use projections::events::{DomainEvent, Repair};
use projections::findings::{analyze, Input};
use projections::plan::{plan, Plan};
use projections::state::Deployment;
use projections::Recorded;
use uuid::Uuid;

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
        actor: None,
    };
    push(DomainEvent::RepairPlanned(Repair {
        steps: Some(p.steps.len() as u32),
        actions: p.steps.iter().map(|s| s.action.clone()).collect(),
        ..repair(None)
    }));
    for s in &p.steps {
        push(DomainEvent::RepairStepApplied(Repair {
            action: Some(s.action.clone()),
            ..repair(Some(s.number))
        }));
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
