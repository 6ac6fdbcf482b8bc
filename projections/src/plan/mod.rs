//! The repair plan: ordered steps in the vendor's order (domain.md §4), each with its reason,
//! its wsadmin calls (or what a person does), and a check. Steps are chosen by applying each
//! one to a copy of the actual state, so a later step sees what the earlier ones changed.

mod apps;
mod communities;
mod queue;

use crate::converge::{residual, Residual};
use crate::findings::{Findings, LostChange};
use crate::fold::World;
use crate::repair::Action;
use crate::state::Deployment;
use crate::vocabulary::{Database, Lifecycle};
use crate::wsadmin::{calls, Call};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

pub use apps::RESYNC_ALL_MIN_COMMUNITIES;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub number: u32,
    pub title: String,
    pub action: Action,
    /// wsadmin calls, in order; empty for a step a person does.
    pub calls: Vec<Call>,
    /// What a person does (for manual steps), or notes beside the calls.
    pub instructions: Vec<String>,
    /// The finding it fixes.
    pub reason: String,
    /// How to see that it worked.
    pub check: String,
}

/// What one community's owners are told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerNotice {
    pub community: Uuid,
    pub name: String,
    pub owners: Vec<String>,
    pub lost: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub position: u64,
    pub steps: Vec<Step>,
    /// What the plan cannot bring back (content lost with a database).
    pub unrecoverable: Vec<Residual>,
    pub owners: Vec<OwnerNotice>,
    /// Whether the steps bring every database to the intended state but for `unrecoverable`.
    pub converges: bool,
}

struct Builder<'a> {
    world: &'a World,
    state: Deployment,
    steps: Vec<Step>,
    /// Communities recreated, and the step that does it.
    recreated: BTreeMap<Uuid, u32>,
}

impl Builder<'_> {
    fn intended(&self) -> &Deployment {
        &self.world.intended
    }

    fn name(&self, c: Uuid) -> String {
        self.world
            .community(c)
            .map_or_else(|| c.to_string(), |c| c.name.to_string())
    }

    fn push(&mut self, action: Action, title: String, reason: String, check: String) -> u32 {
        self.push_with(action, title, reason, check, Vec::new())
    }

    fn push_with(
        &mut self,
        action: Action,
        title: String,
        reason: String,
        check: String,
        instructions: Vec<String>,
    ) -> u32 {
        let number = self.steps.len() as u32 + 1;
        action.apply(&mut self.state, &self.world.intended);
        self.steps.push(Step {
            number,
            title,
            calls: calls(&action),
            action,
            instructions,
            reason,
            check,
        });
        number
    }
}

/// The plan that repairs what `findings` found in `world` (the world they were drawn from).
pub fn plan(findings: &Findings, world: &World) -> Plan {
    plan_and_repaired(findings, world).0
}

/// [`plan`], and the actual deployment as its steps leave it. A command that exits after the
/// plan keeps the deployment for the exit to reclaim: freeing a copy of a world of 100,000
/// communities, most of it changed by the steps, takes tens of milliseconds.
pub fn plan_and_repaired(findings: &Findings, world: &World) -> (Plan, Deployment) {
    let mut b = Builder {
        world,
        state: world.actual.clone(),
        steps: Vec::new(),
        recreated: BTreeMap::new(),
    };
    queue::phase(&mut b, findings);
    communities::phase(&mut b);
    let mut retrash = communities::untrash(&mut b);
    apps::resync(&mut b);
    apps::shares(&mut b);
    apps::orphans(&mut b, &mut retrash);
    // Recreated communities that belong in the trash go there once their data is back.
    retrash.extend(b.recreated.keys().copied().filter(|c| {
        b.world
            .intended
            .communities()
            .get(c)
            .is_some_and(|c| c.lifecycle == Lifecycle::Trashed)
    }));
    communities::retrash(&mut b, retrash);
    let unrecoverable = residual(&world.intended, &b.state);
    let owners = owners(&b, findings, &unrecoverable);
    if !owners.is_empty() {
        let n = owners.len();
        // What no command brings back: once the owners know, the ledger takes it as it is.
        let told = unrecoverable
            .iter()
            .filter(|r| r.is_content())
            .cloned()
            .collect();
        b.push_with(
            Action::ContactOwners { told },
            format!(
                "Tell the owners of {} what their community lost",
                count_communities(n)
            ),
            "changes and content that no command brings back".into(),
            "each owner has confirmed what to redo".into(),
            owners
                .iter()
                .map(|o| {
                    format!(
                        "{} ({}): {}",
                        o.name,
                        o.owners.join(", "),
                        o.lost.join("; ")
                    )
                })
                .collect(),
        );
    }
    let plan = Plan {
        position: findings.position,
        converges: unrecoverable.iter().all(Residual::is_content),
        steps: b.steps,
        unrecoverable,
        owners,
    };
    (plan, b.state)
}

/// What each community's owners are told: changes of theirs that the Communities database
/// lost (redone by the plan: they should look), a community recreated under a new address,
/// and content no command brings back. Settings an app lost and a resync restores are not
/// their concern.
fn owners(b: &Builder, f: &Findings, unrecoverable: &[Residual]) -> Vec<OwnerNotice> {
    let mut lost: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for c in b.recreated.keys() {
        lost.entry(*c)
            .or_default()
            .push("the community was lost and is recreated: its address (uuid) changes".to_owned());
    }
    for l in f
        .lost
        .iter()
        .filter(|l| l.database == Database::Communities)
    {
        let Some(c) = l.community else { continue };
        if !b.recreated.contains_key(&c) {
            lost.entry(c).or_default().push(lost_line(l));
        }
    }
    for r in unrecoverable {
        let (c, line) = match r {
            Residual::ContentLost {
                community,
                app,
                object_id,
                ..
            } => (*community, format!("{app} content {object_id} is gone")),
            Residual::ShareLost {
                community,
                app,
                object_id,
            } => (
                *community,
                format!("{app} {object_id} must be shared again"),
            ),
            Residual::ShareReturned {
                community,
                app,
                object_id,
            } => (
                *community,
                format!("{app} {object_id} is shared again and must be unshared"),
            ),
            Residual::Unexpected { .. } => continue,
        };
        lost.entry(c).or_default().push(line);
    }
    lost.into_iter()
        .map(|(c, lost)| {
            let community = b.world.community(c);
            OwnerNotice {
                community: c,
                name: b.name(c),
                owners: community
                    .map(|c| c.owners().map(str::to_owned).collect())
                    .unwrap_or_default(),
                lost,
            }
        })
        .collect()
}

fn lost_line(l: &LostChange) -> String {
    format!(
        "redone by this plan, to check: {} (by {} on {})",
        l.summary,
        l.actor.as_deref().unwrap_or("unknown"),
        day(l.occurred_ns)
    )
}

/// The UTC date of a time in ns.
fn day(ns: i64) -> String {
    let (y, m, d) = crate::simulate::civil(ns.div_euclid(86_400_000_000_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// "1 community", "3 communities".
fn count_communities(n: usize) -> String {
    crate::describe::count(n, "community", "communities")
}

/// "1 community was", "3 communities were".
fn were(n: usize) -> String {
    format!(
        "{} {}",
        count_communities(n),
        if n == 1 { "was" } else { "were" }
    )
}

/// "1 orphaned Files container", "3 orphaned Files containers".
fn containers(n: usize, app: crate::vocabulary::App) -> String {
    crate::describe::count(
        n,
        &format!("orphaned {app} container"),
        &format!("orphaned {app} containers"),
    )
}
