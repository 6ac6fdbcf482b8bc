//! The convergence check: after a plan's effects, Communities and every app agree with each
//! other and with the intended state, except for what no command brings back.

use crate::findings::{community_fields, holds, mirror_fields};
use crate::parallel::{side_by_side, Job};
use crate::plan::Plan;
use crate::state::{Community, Deployment, Resource, TaskStatus};
use crate::vocabulary::{App, Database, Lifecycle};
use imbl::ordmap::DiffItem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// What still differs after the repair.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Residual {
    /// The app's container and its content went with the database; the widget (if any) has
    /// nothing behind it. Only a newer backup of the app brings it back.
    ContentLost {
        community: Uuid,
        community_name: String,
        app: App,
        instance: String,
        object_id: String,
    },
    /// A share made after the backup: the user shares it again.
    ShareLost {
        community: Uuid,
        app: App,
        object_id: String,
    },
    /// A share removed after the backup came back with it: the user removes it again.
    ShareReturned {
        community: Uuid,
        app: App,
        object_id: String,
    },
    /// Anything else: the plan does not converge.
    Unexpected {
        database: Database,
        #[serde(skip_serializing_if = "Option::is_none")]
        community: Option<Uuid>,
        detail: String,
    },
}

impl Residual {
    /// Whether a plan may leave it (content, not settings).
    pub fn is_content(&self) -> bool {
        !matches!(self, Residual::Unexpected { .. })
    }
}

/// The actual deployment after every step of `plan`.
pub fn converge(actual: &Deployment, intended: &Deployment, plan: &Plan) -> Deployment {
    let mut d = actual.clone();
    for s in &plan.steps {
        s.action.apply(&mut d, intended);
    }
    d
}

/// Everything in which `repaired` still differs from `intended`, or its databases from each
/// other.
pub fn residual(intended: &Deployment, repaired: &Deployment) -> Vec<Residual> {
    let mut out = BTreeSet::new();
    // Each database is a pass of its own, run side by side (see `parallel`).
    let lost_in: Vec<Job<Vec<Residual>>> = Database::APPS
        .into_iter()
        .map(|db| -> Job<Vec<Residual>> { Box::new(move || content_lost(intended, repaired, db)) })
        .collect();
    let lost: Vec<Residual> = side_by_side(&lost_in).concat();
    for r in &lost {
        out.insert(r.clone());
    }
    let lost_instances: BTreeSet<(Uuid, String)> = lost
        .iter()
        .filter_map(|r| match r {
            Residual::ContentLost {
                community,
                instance,
                ..
            } => Some((*community, instance.clone())),
            _ => None,
        })
        .collect();
    let mut passes: Vec<Job<BTreeSet<Residual>>> = vec![
        Box::new(|| {
            let mut found = BTreeSet::new();
            communities(intended, repaired, &lost_instances, &mut found);
            found
        }),
        Box::new(|| {
            let mut found = BTreeSet::new();
            shares(intended, repaired, &mut found);
            found
        }),
    ];
    for db in Database::APPS {
        passes.push(Box::new(move || {
            let mut found = BTreeSet::new();
            apps(intended, repaired, db, &mut found);
            found
        }));
    }
    for found in side_by_side(&passes) {
        out.extend(found);
    }
    let c = repaired.db(Database::Communities);
    if !c.queue.is_empty() {
        out.insert(unexpected(
            Database::Communities,
            None,
            format!("{} events still queued", c.queue.len()),
        ));
    }
    if c.tasks.values().any(|t| *t == TaskStatus::Suspended) {
        out.insert(unexpected(
            Database::Communities,
            None,
            "a scheduler task is left paused".into(),
        ));
    }
    out.into_iter().collect()
}

fn unexpected(database: Database, community: Option<Uuid>, detail: String) -> Residual {
    Residual::Unexpected {
        database,
        community,
        detail,
    }
}

/// The resources of `db` that the repaired deployment does not hold.
fn content_lost(intended: &Deployment, repaired: &Deployment, db: Database) -> Vec<Residual> {
    let mut gone: Vec<&Resource> = intended.db(db).not_held_by(repaired.db(db)).collect();
    gone.sort_by(|a, b| (a.app, &a.object_id).cmp(&(b.app, &b.object_id)));
    gone.into_iter()
        .map(|r| Residual::ContentLost {
            community: r.community,
            community_name: intended
                .communities()
                .get(&r.community)
                .map_or_else(String::new, |c| c.name.to_string()),
            app: r.app,
            instance: r.instance.to_string(),
            object_id: r.object_id.to_string(),
        })
        .collect()
}

fn communities(
    intended: &Deployment,
    repaired: &Deployment,
    lost: &BTreeSet<(Uuid, String)>,
    out: &mut BTreeSet<Residual>,
) {
    let db = Database::Communities;
    let (i, r) = (intended.communities(), repaired.communities());
    // One merge of the two maps, yielding only what differs.
    for item in i.diff(r) {
        match item {
            DiffItem::Remove(id, ic) if ic.lifecycle != Lifecycle::Purged => {
                out.insert(unexpected(db, Some(*id), "community missing".into()));
            }
            DiffItem::Add(id, rc) if rc.lifecycle != Lifecycle::Purged => {
                out.insert(unexpected(
                    db,
                    Some(*id),
                    "community not in the ledger".into(),
                ));
            }
            DiffItem::Update {
                old: (id, ic),
                new: (_, rc),
            } => {
                // A widget whose content is lost may be there or not: both are explained.
                let mut rc = crate::Community::clone(rc);
                for (instance, def) in ic.widgets.iter() {
                    if lost.contains(&(*id, instance.to_string())) {
                        rc.widgets = rc.widgets.with(instance.clone(), def.clone());
                    }
                }
                for (f, e, x) in community_fields(ic, &rc) {
                    let detail = format!("{}: {e} expected, {x} found", f.name());
                    out.insert(unexpected(db, Some(*id), detail));
                }
            }
            DiffItem::Remove(..) | DiffItem::Add(..) => {}
        }
    }
}

/// The resources of app database `db` in the repaired deployment.
fn apps(intended: &Deployment, repaired: &Deployment, db: Database, out: &mut BTreeSet<Residual>) {
    let mut wanted_of = intended.db(db).held_ascending();
    for (community, held, owner) in repaired.db(db).by_community_in(repaired.communities()) {
        let wanted = wanted_of(community);
        for r in held {
            let same = wanted.iter().any(|w| Arc::ptr_eq(w, r));
            app(intended, db, r, same, owner, out);
        }
    }
}

/// One resource of the repaired state: against the intended one (`same`: it is that value),
/// and against its community.
fn app(
    intended: &Deployment,
    db: Database,
    r: &Resource,
    same: bool,
    community: Option<&Community>,
    out: &mut BTreeSet<Residual>,
) {
    let c = Some(r.community);
    let ir = if same {
        r
    } else {
        let Some(ir) = intended
            .db(db)
            .resource_near(r.community, r.app, &r.object_id)
        else {
            let detail = format!("{} {} should not exist", r.app, r.object_id);
            out.insert(unexpected(db, c, detail));
            return;
        };
        if (ir.community, &ir.instance) != (r.community, &r.instance) {
            let detail = format!("{} {} in the wrong community", r.app, r.object_id);
            out.insert(unexpected(db, c, detail));
        }
        for (f, e, x) in mirror_fields(&ir.mirror, &r.mirror) {
            let detail = format!(
                "{} {}: {}: {e} expected, {x} found",
                r.app,
                r.object_id,
                f.name()
            );
            out.insert(unexpected(db, c, detail));
        }
        ir
    };
    // And the apps agree with Communities.
    match community.filter(|c| holds(c, r)) {
        Some(owner) if r.mirror.agrees_with(owner, r.app) => {}
        Some(_) => {
            let detail = format!("{} {} disagrees with Communities", r.app, r.object_id);
            out.insert(unexpected(db, c, detail));
        }
        None if ir.mirror.lifecycle == Lifecycle::Trashed => {}
        None => {
            let detail = format!("{} {} is orphaned", r.app, r.object_id);
            out.insert(unexpected(db, c, detail));
        }
    }
}

fn shares(intended: &Deployment, repaired: &Deployment, out: &mut BTreeSet<Residual>) {
    for db in Database::APPS {
        let (i, r) = (&intended.db(db).shares, &repaired.db(db).shares);
        for (community, app, object_id) in i.iter().filter(|s| !r.contains(*s)) {
            out.insert(Residual::ShareLost {
                community: *community,
                app: *app,
                object_id: object_id.clone(),
            });
        }
        for (community, app, object_id) in r.iter().filter(|s| !i.contains(*s)) {
            out.insert(Residual::ShareReturned {
                community: *community,
                app: *app,
                object_id: object_id.clone(),
            });
        }
    }
}
