//! The repair plan: ordered steps in the vendor's order (domain.md §4), each with its reason,
//! its wsadmin calls (or what a person does), and a check. Steps are chosen by applying each
//! one to a copy of the actual state, so a later step sees what the earlier ones changed.

use crate::converge::{residual, Residual};
use crate::describe::describe;
use crate::events::*;
use crate::findings::{owner_of, Findings, LostChange};
use crate::fold::World;
use crate::repair::{Action, Target, RETRY_TASK};
use crate::state::{Community, Deployment, Mirror, Resource};
use crate::vocabulary::{App, Database, Lifecycle, Role};
use crate::wsadmin::{calls, Call};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A community is resynced for every community at once when more than half of the app's
/// communities differ, and at least this many.
pub const RESYNC_ALL_MIN_COMMUNITIES: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerNotice {
    pub community: Uuid,
    pub name: String,
    pub owners: Vec<String>,
    pub lost: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
        self.intended()
            .communities()
            .get(&c)
            .or_else(|| self.world.actual.communities().get(&c))
            .map_or_else(|| c.to_string(), |c| c.name.clone())
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
    let mut b = Builder {
        world,
        state: world.actual.clone(),
        steps: Vec::new(),
        recreated: BTreeMap::new(),
    };
    queue_phase(&mut b, findings);
    let mut retrash = communities_phase(&mut b);
    retrash.extend(untrash_phase(&mut b));
    resync_phase(&mut b);
    shares_phase(&mut b);
    orphans_phase(&mut b, &mut retrash);
    // Recreated communities that belong in the trash go there once their data is back.
    retrash.extend(b.recreated.keys().copied().filter(|c| {
        b.world
            .intended
            .communities()
            .get(c)
            .is_some_and(|c| c.lifecycle == Lifecycle::Trashed)
    }));
    retrash_phase(&mut b, retrash);
    let unrecoverable = residual(&world.intended, &b.state);
    let owners = owners(&b, findings, &unrecoverable);
    if !owners.is_empty() {
        let n = owners.len();
        b.push_with(
            Action::ContactOwners,
            format!("Tell the owners of {n} communities what their community lost"),
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
    Plan {
        position: findings.position,
        converges: unrecoverable.iter().all(Residual::is_content),
        steps: b.steps,
        unrecoverable,
        owners,
    }
}

fn restores_text(f: &Findings) -> String {
    f.restores
        .iter()
        .map(|r| {
            format!(
                "{} {} from backup {} (taken at @{})",
                r.database,
                if r.what_if {
                    "would be restored"
                } else {
                    "restored"
                },
                r.backup,
                r.backup_position
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Steps 1–7 of the vendor procedure: block, pause, clear, export and report, resume, unblock.
fn queue_phase(b: &mut Builder, f: &Findings) {
    let restored = f.restored();
    if restored.is_empty() {
        let queued = b.state.db(Database::Communities).queue.len();
        if queued > 0 {
            b.push(
                Action::RetryQueued,
                format!("Re-post the {queued} queued lifecycle events"),
                "no database was restored, so the queued events still apply".into(),
                "CommunitiesQEventService.viewQueuedEventsSummary() shows none left".into(),
            );
        }
        return;
    }
    let why = restores_text(f);
    let stale = f.stale_queue.len();
    b.push_with(
        Action::BlockUsers,
        "Block users at the IBM HTTP Server".into(),
        why.clone(),
        "a browser from outside the admin address gets the maintenance page".into(),
        vec![
            "In httpd.conf: ErrorDocument 401 and 403 point at a maintenance page; in \
             <Location /> deny from all, allow from the admin address and from each WebSphere \
             node; restart IHS. WebSphere stays up for wsadmin."
                .into(),
        ],
    );
    b.push(
        Action::PauseRetries,
        format!("Pause {RETRY_TASK}"),
        "queued events must not replay while the databases disagree".into(),
        format!("CommunitiesScheduler.getTaskDetails(\"{RETRY_TASK}\") shows status SUSPENDED"),
    );
    let affected: Vec<App> = if restored.contains(&Database::Communities) {
        b.push(
            Action::ClearQueueAll,
            "Clear every queued community event".into(),
            format!(
                "the Communities database lost data, so its queue is stale ({stale} entries \
                 replay events from before a restore)"
            ),
            "CommunitiesQEventService.viewQueuedEventsByResourceType(\"community\", None, 10) \
             returns None"
                .into(),
        );
        App::ALL.to_vec()
    } else {
        let apps: Vec<App> = App::ALL
            .into_iter()
            .filter(|a| restored.contains(&a.database()))
            .collect();
        for app in apps.iter().filter(|a| a.remote_app_def_id().is_some()) {
            let n = f.stale_queue.iter().filter(|s| s.app == *app).count();
            b.push(
                Action::ClearQueueByApp { app: *app },
                format!("Clear the events queued for {app}"),
                format!(
                    "{} lost data; {n} of its queued events are stale",
                    app.database()
                ),
                format!(
                    "CommunitiesQEventService.viewQueuedEventsByRemoteAppDefId(\"{app}\", None, \
                     10) returns None"
                ),
            );
        }
        apps
    };
    for app in affected.into_iter().filter(|a| *a != App::Library) {
        b.push(
            Action::ExportAndReport { app },
            format!("Export {app}'s synced resources and generate its sync reports"),
            "the vendor's own comparison, to check this plan's findings against".into(),
            format!(
                "REPORT_DIR holds {app}_communityDifferences.html and \
                 {app}_orphanedRemoteApplications.html, listing what `lifeline recover` lists"
            ),
        );
    }
    b.push(
        Action::ResumeRetries,
        format!("Resume {RETRY_TASK}"),
        "the stale events are gone; new ones must flow again".into(),
        format!("CommunitiesScheduler.getTaskDetails(\"{RETRY_TASK}\") shows status SCHEDULED"),
    );
    b.push_with(
        Action::UnblockUsers,
        "Remove the blocks at the IBM HTTP Server".into(),
        "the databases are consistent enough for users; the rest repairs online".into(),
        "users reach Connections again".into(),
        vec!["Undo the httpd.conf changes of step 1 and restart IHS.".into()],
    );
}

/// Brings the Communities database back to what the ledger says: recreate, undelete, redo.
/// Returns the communities to move into the trash at the end.
fn communities_phase(b: &mut Builder) -> Vec<Uuid> {
    let mut trash = Vec::new();
    let intended: Vec<Community> = b.intended().communities().values().cloned().collect();
    for ic in &intended {
        let actual = b.state.communities().get(&ic.uuid).cloned();
        match actual {
            None if ic.lifecycle == Lifecycle::Purged => {}
            None => recreate(b, ic),
            Some(ac) => {
                if ac.lifecycle == Lifecycle::Trashed && ic.lifecycle == Lifecycle::Active {
                    b.push(
                        Action::Undelete { community: ic.uuid },
                        format!("Restore \"{}\" from the trash", ic.name),
                        "the community was restored from the trash after the backup".into(),
                        format!(
                            "CommunitiesService.fetchCommById(\"{}\") finds it outside the trash",
                            ic.uuid
                        ),
                    );
                }
                let ac = b.state.communities().get(&ic.uuid).cloned().unwrap_or(ac);
                if ic.lifecycle == Lifecycle::Trashed && ac.lifecycle == Lifecycle::Active {
                    trash.push(ic.uuid);
                }
                let changes = changes_between(ic, &ac);
                if !changes.is_empty() {
                    let lines: Vec<String> = changes.iter().map(describe).collect();
                    b.push_with(
                        Action::Reapply {
                            community: ic.uuid,
                            changes,
                        },
                        format!("Redo in Communities what \"{}\" lost", ic.name),
                        "the Communities database no longer holds these recorded changes".into(),
                        format!("`lifeline recover` shows no difference for \"{}\"", ic.name),
                        lines,
                    );
                }
            }
        }
    }
    trash
}

fn recreate(b: &mut Builder, ic: &Community) {
    let owners: Vec<&String> = ic.owners().collect();
    let members: Vec<&String> = ic
        .members
        .iter()
        .filter(|(_, r)| **r == Role::Member)
        .map(|(u, _)| u)
        .collect();
    let apps: Vec<&String> = ic
        .widgets
        .values()
        .filter(|d| App::from_widget_def_id(d).is_some())
        .collect();
    let mut lines = vec![
        format!(
            "Create the community \"{}\", type {}{}{}, theme {}, organization {}",
            ic.name,
            ic.community_type,
            if ic.list_when_restricted {
                ", listed when restricted"
            } else {
                ""
            },
            if ic.external { ", external" } else { "" },
            ic.theme.as_deref().unwrap_or("default"),
            ic.org_id.as_deref().unwrap_or("default"),
        ),
        format!("Owners: {}", join(&owners)),
        format!("Members: {}", join(&members)),
        format!(
            "Remove the default widgets of the kinds assigned back below ({}) before assigning: \
             assignRemoteApp fails when the community already has that widget type",
            join(&apps)
        ),
        format!(
            "Write the new community's uuid into NEW_UUID[\"{}\"] at the top of Communities.py",
            ic.uuid
        ),
    ];
    if let Some(p) = ic.parent {
        lines.push(format!("Make it a subcommunity of {p}"));
    }
    let step = b.push_with(
        Action::Recreate { community: ic.uuid },
        format!("Recreate the community \"{}\"", ic.name),
        format!(
            "the Communities database lost the community {} (created after its backup); its \
             apps still hold data for it",
            ic.uuid
        ),
        "CommunitiesService.fetchCommById(NEW_UUID[...]) finds it, with its owners".into(),
        lines,
    );
    b.recreated.insert(ic.uuid, step);
}

fn join(v: &[&String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// The changes that make `ac` equal `ic` again (widgets added come back through assign; the
/// move into the trash comes last).
fn changes_between(ic: &Community, ac: &Community) -> Vec<DomainEvent> {
    let community = ic.uuid;
    let mut out = Vec::new();
    if ic.parent != ac.parent {
        out.push(DomainEvent::SubcommunityMoved(SubcommunityMoved {
            community,
            parent: ic.parent,
            actor: None,
        }));
    }
    if (ic.community_type, ic.list_when_restricted, ic.external)
        != (ac.community_type, ac.list_when_restricted, ac.external)
    {
        out.push(DomainEvent::VisibilityChanged(VisibilityChanged {
            community,
            community_type: ic.community_type,
            list_when_restricted: ic.list_when_restricted,
            external: ic.external,
            actor: None,
        }));
    }
    let differs = |a: &Option<String>, b: &Option<String>| a != b && a.is_some();
    let update = CommunityUpdated {
        community,
        name: (ic.name != ac.name).then(|| ic.name.clone()),
        description: differs(&ic.description, &ac.description)
            .then(|| ic.description.clone())
            .flatten(),
        tags: (ic.tags != ac.tags).then(|| ic.tags.clone()),
        theme: differs(&ic.theme, &ac.theme)
            .then(|| ic.theme.clone())
            .flatten(),
        pre_moderation: (ic.pre_moderation != ac.pre_moderation).then_some(ic.pre_moderation),
        post_moderation: (ic.post_moderation != ac.post_moderation).then_some(ic.post_moderation),
        actor: None,
    };
    if update
        != (CommunityUpdated {
            community,
            ..Default::default()
        })
    {
        out.push(DomainEvent::CommunityUpdated(update));
    }
    if differs(&ic.org_id, &ac.org_id) {
        out.push(DomainEvent::OrgChanged(OrgChanged {
            community,
            org_id: ic.org_id.clone().unwrap_or_default(),
            actor: None,
        }));
    }
    member_changes(ic, ac, &mut out);
    for (instance, def) in &ac.widgets {
        if !ic.widgets.contains_key(instance) && App::from_widget_def_id(def).is_some() {
            out.push(DomainEvent::WidgetRemoved(WidgetRemoved {
                community,
                instance: instance.clone(),
                actor: None,
            }));
        }
    }
    let r = CommunityRef {
        community,
        actor: None,
    };
    match (ic.lifecycle, ac.lifecycle) {
        // Into the trash only at the end (`retrash_phase`), once its apps are assigned back.
        (Lifecycle::Purged, l) if l != Lifecycle::Purged => {
            out.push(DomainEvent::CommunityPurged(r))
        }
        _ => {}
    }
    out
}

fn member_changes(ic: &Community, ac: &Community, out: &mut Vec<DomainEvent>) {
    let community = ic.uuid;
    let added: BTreeMap<String, Role> = ic
        .members
        .iter()
        .filter(|(u, _)| !ac.members.contains_key(*u))
        .map(|(u, r)| (u.clone(), *r))
        .collect();
    let modified: BTreeMap<String, Role> = ic
        .members
        .iter()
        .filter(|(u, r)| ac.members.get(*u).is_some_and(|x| x != *r))
        .map(|(u, r)| (u.clone(), *r))
        .collect();
    let removed: Vec<String> = ac
        .members
        .keys()
        .filter(|u| !ic.members.contains_key(*u))
        .cloned()
        .collect();
    // Adding first and removing last never leaves the community without an owner.
    if !added.is_empty() {
        out.push(DomainEvent::MembersAdded(Members {
            community,
            members: added,
            actor: None,
        }));
    }
    if !modified.is_empty() {
        out.push(DomainEvent::MembersModified(Members {
            community,
            members: modified,
            actor: None,
        }));
    }
    if !removed.is_empty() {
        out.push(DomainEvent::MembersRemoved(MembersRemoved {
            community,
            users: removed,
            actor: None,
        }));
    }
}

/// Apps cannot be resynced for a community in the trash: when one holds stale settings of such
/// a community, the community comes out of the trash for the resync and goes back after it
/// (the vendor's advice for trashed communities, domain.md §4).
fn untrash_phase(b: &mut Builder) -> Vec<Uuid> {
    let mut out = Vec::new();
    let trashed: Vec<Community> = b
        .state
        .communities()
        .values()
        .filter(|c| c.lifecycle == Lifecycle::Trashed)
        .cloned()
        .collect();
    for c in trashed {
        let stale = Database::ALL.into_iter().skip(1).any(|db| {
            b.state
                .db(db)
                .resources_of(c.uuid)
                .any(|r| c.widgets.contains_key(&r.instance) && r.mirror != Mirror::of(&c, r.app))
        });
        if !stale {
            continue;
        }
        b.push(
            Action::Undelete { community: c.uuid },
            format!("Take \"{}\" out of the trash for its resync", c.name),
            "its apps hold stale settings, and a community in the trash cannot be resynced".into(),
            format!(
                "CommunitiesService.fetchCommById(\"{}\") finds it outside the trash",
                c.uuid
            ),
        );
        out.push(c.uuid);
    }
    out
}

fn retrash_phase(b: &mut Builder, communities: Vec<Uuid>) {
    for community in communities {
        let recreated = b.recreated.contains_key(&community);
        let name = b.name(community);
        let change = DomainEvent::CommunityTrashed(CommunityRef {
            community,
            actor: None,
        });
        b.push_with(
            Action::Reapply {
                community,
                changes: vec![change.clone()],
            },
            format!("Move \"{name}\" back to the trash"),
            if recreated {
                "it was in the trash when the Communities database lost it".into()
            } else {
                "it is in the trash by the ledger".into()
            },
            format!("\"{name}\" is in CommunitiesService.getSoftDeletedCommunityUuidList()"),
            vec![describe(&change)],
        );
    }
}

/// Step 8: resync the apps whose settings differ from Communities (now as intended).
fn resync_phase(b: &mut Builder) {
    for app in App::ALL {
        let communities = b.state.communities().clone();
        let mut total = 0;
        let mut differ: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
        for r in b.state.db(app.database()).all_resources() {
            let Some(c) = owner_of(&communities, r).filter(|_| r.app == app) else {
                continue;
            };
            total += 1;
            let fields = crate::findings::mirror_fields(&Mirror::of(c, app), &r.mirror);
            if !fields.is_empty() {
                let names = fields.iter().map(|(f, _, _)| f.name().to_owned()).collect();
                differ.insert(c.uuid, names);
            }
        }
        if differ.len() >= RESYNC_ALL_MIN_COMMUNITIES && differ.len() * 2 > total {
            b.push(
                Action::ResyncAll { app },
                format!("Resync {app} for every community"),
                format!(
                    "{} of the {total} communities with {app} differ from Communities",
                    differ.len()
                ),
                format!("it ends with \"Done.\"; a new {app}_communityDifferences.html lists none"),
            );
            continue;
        }
        for (community, fields) in differ {
            let name = b.name(community);
            b.push(
                Action::Resync { community, app },
                format!("Resync {app} of \"{name}\""),
                format!("{app} differs from Communities in {}", fields.join(", ")),
                format!("\"{name}\" is absent from a new {app}_communityDifferences.html"),
            );
        }
    }
}

/// Steps 9 and 10: shares.
fn shares_phase(b: &mut Builder) {
    let recreated = !b.recreated.is_empty();
    for app in [App::Files, App::Activities] {
        let db = app.database();
        let of = |d: &Deployment| -> BTreeSet<(Uuid, String)> {
            d.db(db)
                .shares
                .iter()
                .filter(|(_, a, _)| *a == app)
                .map(|(c, _, o)| (*c, o.clone()))
                .collect()
        };
        let (intended, actual) = (of(b.intended()), of(&b.state));
        // Recreated communities have new uuids, which their shares must follow.
        let affected = intended != actual || (recreated && !actual.is_empty());
        if !affected {
            continue;
        }
        let service = if app == App::Files {
            "FilesDataIntegrityService"
        } else {
            "AccessControlService"
        };
        b.push(
            Action::SyncShares { app },
            format!("Sync {app} shares with communities ({service})"),
            format!(
                "{} shares differ from the ledger{}",
                intended.symmetric_difference(&actual).count(),
                if recreated {
                    ", and communities were recreated"
                } else {
                    ""
                }
            ),
            "the command completes; shares of deleted communities are gone".into(),
        );
    }
}

/// Step 11: each orphan is assigned where it belongs, or its data deleted. Communities taken
/// out of the trash for it are added to `retrash`.
fn orphans_phase(b: &mut Builder, retrash: &mut Vec<Uuid>) {
    let mut orphans: Vec<Resource> = Vec::new();
    for db in Database::ALL.into_iter().skip(1) {
        let communities = b.state.communities();
        for r in b.state.db(db).all_resources() {
            if owner_of(communities, r).is_none() {
                orphans.push(r.clone());
            }
        }
    }
    for r in orphans {
        let key = (r.app, r.object_id.clone());
        let intended = b.intended().db(r.app.database()).resource(&key).cloned();
        let home = intended.as_ref().filter(|ir| {
            b.intended()
                .communities()
                .get(&ir.community)
                .is_some_and(|ic| {
                    ic.lifecycle != Lifecycle::Purged && ic.widgets.contains_key(&ir.instance)
                })
        });
        let Some(ir) = home.cloned() else {
            delete(b, &r);
            continue;
        };
        let target = b.state.communities().get(&ir.community).cloned();
        if let Some(t) = target.filter(|t| t.lifecycle == Lifecycle::Trashed) {
            if r.community == t.uuid && t.widgets.contains_key(&r.instance) {
                continue; // in the trash with its community, as intended
            }
            // assignRemoteApp needs a live community: out of the trash and back after.
            b.push(
                Action::Undelete { community: t.uuid },
                format!(
                    "Take \"{}\" out of the trash to assign its data back",
                    t.name
                ),
                format!("{} {} belongs to it by the ledger", r.app, r.object_id),
                format!(
                    "CommunitiesService.fetchCommById(\"{}\") finds it outside the trash",
                    t.uuid
                ),
            );
            retrash.push(t.uuid);
        }
        assign(b, &r, &ir);
    }
}

fn assign(b: &mut Builder, r: &Resource, ir: &Resource) {
    let target = match b.recreated.get(&ir.community) {
        Some(step) => Target::Recreated {
            community: ir.community,
            step: *step,
        },
        None => Target::Existing {
            community: ir.community,
        },
    };
    let name = b.name(ir.community);
    let (title, reason) = match &target {
        Target::Recreated { step, .. } => (
            format!(
                "Assign {} {} to the recreated \"{name}\"",
                r.app, r.object_id
            ),
            format!("its community was lost and is recreated in step {step}"),
        ),
        Target::Existing { community } if *community == r.community => (
            format!("Assign {} {} back to \"{name}\"", r.app, r.object_id),
            "the community lost its widget; the data is intact".into(),
        ),
        Target::Existing { .. } => (
            format!("Assign {} {} to \"{name}\"", r.app, r.object_id),
            format!("it was moved to \"{name}\" after the backup"),
        ),
    };
    let mut instructions = Vec::new();
    if r.app == App::Library {
        instructions.push(
            "Library has no assign command: re-add the Library widget to the community and \
             point it at the existing FileNet teamspace"
                .into(),
        );
    }
    b.push_with(
        Action::Assign {
            app: r.app,
            object_id: r.object_id.clone(),
            instance: ir.instance.clone(),
            old_community: r.community,
            target,
        },
        title,
        reason,
        format!(
            "it prints \"Assignment succeeded\"; {} is absent from a new \
             {}_orphanedRemoteApplications.html",
            r.object_id, r.app
        ),
        instructions,
    );
}

fn delete(b: &mut Builder, r: &Resource) {
    let name = b.name(r.community);
    let mut instructions = Vec::new();
    match r.app {
        App::Forum => instructions.push(format!(
            "fetchForumsByName matches by name: check that it finds only the forum {} of \
             \"{}\" before deleting",
            r.object_id, r.mirror.name
        )),
        App::Library => instructions
            .push("Library has no delete command: remove the teamspace in FileNet".into()),
        _ => {}
    }
    b.push_with(
        Action::DeleteOrphan {
            app: r.app,
            object_id: r.object_id.clone(),
            old_community: r.community,
            name: r.mirror.name.clone(),
        },
        format!(
            "Delete the orphaned {} data {} of \"{name}\"",
            r.app, r.object_id
        ),
        "its community or widget is gone in the ledger too: nothing should hold it".into(),
        format!(
            "{} is absent from a new {}_orphanedRemoteApplications.html",
            r.object_id, r.app
        ),
        instructions,
    );
}

fn owners(b: &Builder, f: &Findings, unrecoverable: &[Residual]) -> Vec<OwnerNotice> {
    let mut lost: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    let mut seen: BTreeSet<(Uuid, u64)> = BTreeSet::new();
    for l in &f.lost {
        let Some(c) = l.community else { continue };
        if seen.insert((c, l.position)) {
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
                format!("{app} share {object_id} must be shared again"),
            ),
            Residual::ShareReturned {
                community,
                app,
                object_id,
            } => (
                *community,
                format!("{app} share {object_id} came back and must be removed again"),
            ),
            Residual::Unexpected { .. } => continue,
        };
        lost.entry(c).or_default().push(line);
    }
    lost.into_iter()
        .map(|(c, lost)| {
            let community = b
                .intended()
                .communities()
                .get(&c)
                .or_else(|| b.world.actual.communities().get(&c));
            OwnerNotice {
                community: c,
                name: b.name(c),
                owners: community
                    .map(|c| c.owners().cloned().collect())
                    .unwrap_or_default(),
                lost,
            }
        })
        .collect()
}

fn lost_line(l: &LostChange) -> String {
    format!(
        "{} (by {}, lost from {})",
        l.summary,
        l.actor.as_deref().unwrap_or("unknown"),
        l.database
    )
}
