//! What each repair step does to the databases, as data: the planner chooses actions by
//! applying them to a copy of the actual state, the convergence check applies a finished
//! plan's actions again to show where they lead, and the fold applies a step's action when the
//! step is recorded as done (`RepairStepApplied`).

use crate::converge::Residual;
use crate::events::{DomainEvent, RemoteAppTransferred};
use crate::fold::{apply, deliver, Edits, Recorded};
use crate::state::{Community, Deployment, Mirror, ResourceKey, TaskStatus};
use crate::vocabulary::{App, Database};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The scheduler task that re-posts queued lifecycle events.
pub const RETRY_TASK: &str = "LifecycleRetryQueuedEvents";

/// Where an orphan goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "to")]
pub enum Target {
    /// An existing community (the same one when only the widget is missing).
    Existing { community: Uuid },
    /// The community recreated by an earlier step; its new uuid is known only once it exists.
    Recreated { community: Uuid, step: u32 },
}

impl Target {
    pub fn community(&self) -> Uuid {
        match self {
            Target::Existing { community } | Target::Recreated { community, .. } => *community,
        }
    }
}

/// Changes to make again in one community.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redo {
    pub community: Uuid,
    pub changes: Vec<DomainEvent>,
}

/// One orphan to assign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub object_id: String,
    pub instance: String,
    pub old_community: Uuid,
    pub target: Target,
}

/// One orphan whose data goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Doomed {
    pub object_id: String,
    pub old_community: Uuid,
    /// The community name the app holds (Forums finds forums by name).
    pub name: String,
}

/// One repair action and its effect on the databases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Action {
    /// Keep users out at the HTTP server while the repair runs.
    BlockUsers,
    PauseRetries,
    /// `clearQueuedEventsByRemoteAppDefId`.
    ClearQueueByApp {
        app: App,
    },
    /// `clearQueuedEventsByResourceType("community")`.
    ClearQueueAll,
    /// `exportSyncedResourceInfo`, then `generateSyncReports`: the vendor's own comparison,
    /// to check this plan against.
    ExportAndReport {
        app: App,
    },
    ResumeRetries,
    /// Without a restore: re-post what waits in the queue now.
    RetryQueued,
    UnblockUsers,
    /// Create the community again (it is lost from the Communities database), as the ledger
    /// has it, without the remote-app widgets that the assign steps bring back.
    Recreate {
        community: Uuid,
    },
    /// `unDeleteCommunity`: out of the trash.
    Undelete {
        communities: Vec<Uuid>,
    },
    /// Changes to make again in Communities (by the owners or an administrator): Communities
    /// sends each to the apps as it would have then.
    Reapply {
        communities: Vec<Redo>,
    },
    /// `resyncRemoteAppsForCommunityAndWidget`, community by community.
    Resync {
        app: App,
        communities: Vec<Uuid>,
    },
    /// `resyncRemoteAppsForAllCommunities`.
    ResyncAll {
        app: App,
    },
    /// `FilesDataIntegrityService` / `AccessControlService.syncAllCommunityShares()`.
    SyncShares {
        app: App,
    },
    /// `assignRemoteApp`, orphan by orphan.
    Assign {
        app: App,
        orphans: Vec<Assignment>,
    },
    /// The "Deleting orphaned data" command of the app, orphan by orphan.
    DeleteOrphans {
        app: App,
        orphans: Vec<Doomed>,
    },
    /// Tell the owners what their community lost. `told` is what no command brings back
    /// (content gone, shares gone or back); once the owners know, the ledger takes it as the
    /// repair leaves it: see [`Action::accept`].
    ContactOwners {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        told: Vec<Residual>,
    },
}

impl Action {
    /// Applies the action's effect to `d`; `intended` is what the ledger says `d` should be.
    pub fn apply(&self, d: &mut Deployment, intended: &Deployment) {
        match self {
            Action::BlockUsers
            | Action::UnblockUsers
            | Action::ExportAndReport { .. }
            | Action::ContactOwners { .. } => {}
            Action::PauseRetries => set_task(d, TaskStatus::Suspended),
            Action::ClearQueueByApp { app } => d
                .db_mut(Database::Communities)
                .queue
                .retain(|q| q.app != *app),
            Action::ClearQueueAll => d.db_mut(Database::Communities).queue.clear(),
            Action::ResumeRetries | Action::RetryQueued => {
                set_task(d, TaskStatus::Scheduled);
                drain_queue(d);
            }
            Action::Recreate { community } => recreate(d, intended, *community),
            Action::Undelete { communities } => {
                for community in communities {
                    let e = DomainEvent::CommunityRestored(crate::events::CommunityRef {
                        community: *community,
                        actor: None,
                    });
                    apply_change(d, &e);
                }
            }
            Action::Reapply { communities } => {
                for e in communities.iter().flat_map(|r| &r.changes) {
                    apply_change(d, e);
                }
            }
            Action::Resync { app, communities } => {
                for c in communities {
                    resync(d, *app, Some(*c));
                }
            }
            Action::ResyncAll { app } => resync(d, *app, None),
            Action::SyncShares { app } => {
                let communities = d.communities().clone();
                // Shares of a community Communities no longer knows are dropped.
                let shares = &mut d.db_mut(app.database()).shares;
                *shares = shares
                    .iter()
                    .filter(|(c, a, _)| a != app || communities.contains_key(c))
                    .cloned()
                    .collect();
            }
            Action::Assign { app, orphans } => {
                for o in orphans {
                    let t = RemoteAppTransferred {
                        app: *app,
                        object_id: o.object_id.clone(),
                        from_community: o.old_community,
                        to_community: o.target.community(),
                        instance: o.instance.clone(),
                        actor: None,
                    };
                    crate::fold::transfer(d, &t);
                }
            }
            Action::DeleteOrphans { app, orphans } => {
                for o in orphans {
                    d.remove_resource(
                        app.database(),
                        &ResourceKey::new(*app, o.object_id.as_str()),
                    );
                }
            }
        }
    }

    /// What a done step makes the ledger accept: the content and shares the owners were told
    /// about are, in the intended deployment too, as the repair left them — what they redo
    /// arrives as changes of its own — so that a finished repair leaves nothing to find but
    /// what still needs a hand (a widget with nothing behind it stays until its owner removes
    /// it: the intended deployment keeps the widgets `actual` keeps).
    pub fn accept(&self, intended: &mut Deployment, actual: &Deployment) {
        let Action::ContactOwners { told } = self else {
            return;
        };
        for r in told {
            match r {
                Residual::ContentLost {
                    community,
                    app,
                    instance,
                    object_id,
                    ..
                } => {
                    let key = ResourceKey::new(*app, object_id.as_str());
                    intended.remove_resource(app.database(), &key);
                    let kept = actual
                        .communities()
                        .get(community)
                        .is_some_and(|c| c.widgets.contains_key(instance));
                    let communities = &mut intended.db_mut(Database::Communities).communities;
                    if let (false, Some(c)) = (kept, communities.get_mut(community)) {
                        if c.widgets.contains_key(instance) {
                            let widgets = c.widgets.without(instance);
                            std::sync::Arc::make_mut(c).widgets = widgets;
                        }
                    }
                }
                Residual::ShareLost {
                    community,
                    app,
                    object_id,
                } => {
                    let share = (*community, *app, object_id.clone());
                    intended.db_mut(app.database()).shares.remove(&share);
                }
                Residual::ShareReturned {
                    community,
                    app,
                    object_id,
                } => {
                    let share = (*community, *app, object_id.clone());
                    intended.db_mut(app.database()).shares.insert(share);
                }
                Residual::Unexpected { .. } => {}
            }
        }
    }

    /// Whether a person does it (no wsadmin command does).
    pub fn is_manual(&self) -> bool {
        match self {
            Action::BlockUsers
            | Action::UnblockUsers
            | Action::Recreate { .. }
            | Action::Reapply { .. }
            | Action::ContactOwners { .. } => true,
            Action::Assign { app, .. } | Action::DeleteOrphans { app, .. } => *app == App::Library,
            _ => false,
        }
    }

    /// This action in parts whose JSON is each at most about `bytes` long, for events that
    /// have a size limit: parts of the same kind, each with the next share of the action's
    /// list, so that applying and accepting the parts in order does what the whole does (each
    /// item of each list is applied on its own). A small action, or one without a list, is its
    /// own one part; a single item larger than `bytes` is a part of its own.
    pub fn split(self, bytes: usize) -> Vec<Action> {
        // Room for the part's own fields around its list.
        let bytes = bytes.saturating_sub(256).max(1);
        if json_len(&self) <= bytes {
            return vec![self];
        }
        match self {
            Action::Undelete { communities } => shares(communities, bytes)
                .map(|communities| Action::Undelete { communities })
                .collect(),
            Action::Reapply { communities } => {
                // A community with more changes than one part holds goes in several, its
                // changes in order.
                let redos = communities.into_iter().flat_map(|r| {
                    let community = r.community;
                    shares(r.changes, bytes).map(move |changes| Redo { community, changes })
                });
                shares(redos.collect(), bytes)
                    .map(|communities| Action::Reapply { communities })
                    .collect()
            }
            Action::Resync { app, communities } => shares(communities, bytes)
                .map(|communities| Action::Resync { app, communities })
                .collect(),
            Action::Assign { app, orphans } => shares(orphans, bytes)
                .map(|orphans| Action::Assign { app, orphans })
                .collect(),
            Action::DeleteOrphans { app, orphans } => shares(orphans, bytes)
                .map(|orphans| Action::DeleteOrphans { app, orphans })
                .collect(),
            Action::ContactOwners { told } => shares(told, bytes)
                .map(|told| Action::ContactOwners { told })
                .collect(),
            whole => vec![whole],
        }
    }
}

/// The length of `value` as JSON.
fn json_len(value: &impl Serialize) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

/// `items` in consecutive shares of at most about `bytes` of JSON each (an item larger than
/// that alone), in order.
fn shares<T: Serialize>(items: Vec<T>, bytes: usize) -> impl Iterator<Item = Vec<T>> {
    let mut out = Vec::new();
    let mut share = Vec::new();
    let mut size = 0;
    for item in items {
        let n = json_len(&item) + 1;
        if !share.is_empty() && size + n > bytes {
            out.push(std::mem::take(&mut share));
            size = 0;
        }
        size += n;
        share.push(item);
    }
    if !share.is_empty() {
        out.push(share);
    }
    out.into_iter()
}

fn set_task(d: &mut Deployment, status: TaskStatus) {
    d.db_mut(Database::Communities)
        .tasks
        .insert(RETRY_TASK.to_owned(), status);
}

/// A change made through Communities: its database changes and it tells the apps.
fn apply_change(d: &mut Deployment, e: &DomainEvent) {
    let r = Recorded {
        position: 0,
        id: Uuid::nil(),
        recorded_ns: 0,
        occurred_ns: 0,
        event: e.clone(),
    };
    apply(d, &r, None, &mut Edits::default());
}

/// The retry task delivers every queued event, oldest first.
fn drain_queue(d: &mut Deployment) {
    let queue = std::mem::take(&mut d.db_mut(Database::Communities).queue);
    for entry in &queue {
        if let Some(e) = entry.lifecycle() {
            deliver(
                d,
                entry.app.database(),
                entry.community,
                &[entry.app],
                &e,
                &mut Edits::default(),
            );
        }
    }
}

fn recreate(d: &mut Deployment, intended: &Deployment, community: Uuid) {
    let Some(c) = intended.communities().get(&community) else {
        return;
    };
    // Created active; a step after the assignments puts it back in the trash if it was there.
    let mut c: Community = Community::clone(c);
    c.lifecycle = crate::vocabulary::Lifecycle::Active;
    c.widgets = c
        .widgets
        .only(|_, def| App::from_widget_def_id(def).is_none());
    d.db_mut(Database::Communities)
        .communities
        .insert(community, std::sync::Arc::new(c));
}

fn resync(d: &mut Deployment, app: App, only: Option<Uuid>) {
    let communities = d.communities().clone();
    let db = d.db(app.database());
    let held: Vec<&crate::state::Resource> = match only {
        Some(c) => db.resources_of(c).collect(),
        None => db.all_resources(),
    };
    let changed: Vec<crate::state::Resource> = held
        .into_iter()
        .filter(|r| r.app == app)
        .filter_map(|r| {
            let c = crate::findings::owner_of(&communities, r)?;
            let mirror = Mirror::of(c, app);
            (r.mirror != mirror).then(|| crate::state::Resource {
                mirror,
                ..r.clone()
            })
        })
        .collect();
    for r in changed {
        d.insert_resource(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::MembersRemoved;

    fn removed(community: Uuid, user: usize) -> DomainEvent {
        DomainEvent::MembersRemoved(MembersRemoved {
            community,
            users: vec![format!("user{user}")],
            actor: None,
        })
    }

    /// Parts stay under the size asked for, keep the kind and every item in order, and a
    /// community whose changes fill several parts keeps them in order across its parts.
    #[test]
    fn a_large_action_splits_into_parts_of_the_same_kind_in_order() {
        let communities: Vec<Uuid> = (1..=300).map(Uuid::from_u128).collect();
        let whole = Action::Resync {
            app: App::Files,
            communities: communities.clone(),
        };
        let parts = whole.clone().split(2_000);
        assert!(parts.len() > 4, "{} parts", parts.len());
        let mut again = Vec::new();
        for p in &parts {
            assert!(json_len(p) <= 2_000, "{} bytes", json_len(p));
            let Action::Resync { app, communities } = p else {
                panic!("a part of another kind: {p:?}");
            };
            assert_eq!(*app, App::Files);
            again.extend(communities.iter().copied());
        }
        assert_eq!(again, communities);
        // Small enough: the action is its own one part.
        assert_eq!(whole.clone().split(1 << 20), vec![whole]);

        let big = Uuid::from_u128(7);
        let redos = vec![
            Redo {
                community: Uuid::from_u128(1),
                changes: vec![removed(Uuid::from_u128(1), 0)],
            },
            Redo {
                community: big,
                changes: (0..200).map(|u| removed(big, u)).collect(),
            },
        ];
        let parts = Action::Reapply {
            communities: redos.clone(),
        }
        .split(3_000);
        assert!(parts.len() > 3, "{} parts", parts.len());
        let changes: Vec<(Uuid, DomainEvent)> = parts
            .iter()
            .flat_map(|p| match p {
                Action::Reapply { communities } => communities.clone(),
                other => panic!("a part of another kind: {other:?}"),
            })
            .flat_map(|r| r.changes.into_iter().map(move |c| (r.community, c)))
            .collect();
        let expected: Vec<(Uuid, DomainEvent)> = redos
            .into_iter()
            .flat_map(|r| r.changes.into_iter().map(move |c| (r.community, c)))
            .collect();
        assert_eq!(changes, expected);
        // An action without a list cannot split, however small the size asked for.
        assert_eq!(Action::ClearQueueAll.split(1), vec![Action::ClearQueueAll]);
    }
}
