//! Folding events into states. One engine serves both families: the *intended* deployment
//! (every change applied, every delivery succeeded, no restores) and the *actual* one (a failed
//! delivery waits in the queue until retried or cleared; a restore puts a database back to its
//! backup and later events apply on top).

use crate::events::*;
use crate::state::Members as MemberMap;
use crate::state::*;
use crate::vocabulary::{App, Database, Lifecycle, Role};
use imbl::OrdMap;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// A domain event as the ledger holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub position: u64,
    /// The ledger event id (what `DeliveryFailed` refers to).
    pub id: Uuid,
    pub recorded_ns: i64,
    pub occurred_ns: i64,
    pub event: DomainEvent,
}

/// Deliveries that failed: (lifecycle event id, app).
pub type Failures = HashSet<(Uuid, App), foldhash::fast::FixedState>;

/// The failures recorded among `events`; a failure counts from the event it names.
pub fn failures<'a>(events: impl IntoIterator<Item = &'a Recorded>) -> Failures {
    events
        .into_iter()
        .filter_map(|r| match &r.event {
            DomainEvent::DeliveryFailed(d) => Some((d.event, d.app)),
            _ => None,
        })
        .collect()
}

/// Intended and actual deployments after some prefix of the log.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct World {
    pub position: u64,
    pub intended: Deployment,
    pub actual: Deployment,
    /// Backups by label.
    pub backups: OrdMap<String, Backup>,
    /// What each backup holds, by label. Kept while folding (copies share structure), not in
    /// snapshots: a snapshot would otherwise hold every backup in full. A world continued from
    /// a snapshot is given the ones it needs (see [`World::backups_needed`]).
    #[serde(skip)]
    pub backup_states: OrdMap<String, DbState>,
    /// Which backups' contents to keep: all when `None`. A history restores few of its
    /// backups, and every kept copy costs the memory of what changes after it.
    #[serde(skip)]
    pub keep_backups: Option<std::collections::HashSet<String>>,
}

/// Worlds are equal when their deployments and backups are; the backup contents they happen to
/// hold in memory do not count.
impl PartialEq for World {
    fn eq(&self, other: &World) -> bool {
        self.position == other.position
            && self.intended == other.intended
            && self.actual == other.actual
            && self.backups == other.backups
    }
}

impl Eq for World {}

impl World {
    /// Applies one event. `failed` holds the deliveries that failed (see [`failures`]).
    pub fn apply(&mut self, r: &Recorded, failed: &Failures) {
        self.apply_reaching(r, failed);
    }

    /// [`World::apply`], telling which apps of the actual deployment a lifecycle event went to
    /// (those holding a resource of its community), and whether each delivery failed.
    pub fn apply_reaching(&mut self, r: &Recorded, failed: &Failures) -> Reached {
        let edits = &mut Edits::default();
        apply(&mut self.intended, r, None, edits);
        match &r.event {
            DomainEvent::BackupTaken(b) => {
                let backup = Backup {
                    label: b.label.clone(),
                    database: b.database,
                    position: r.position,
                };
                self.backups.insert(b.label.clone(), backup);
                if self
                    .keep_backups
                    .as_ref()
                    .is_none_or(|k| k.contains(&b.label))
                {
                    self.backup_states
                        .insert(b.label.clone(), self.actual.db(b.database).clone());
                }
            }
            DomainEvent::DatabaseRestored(d) => {
                // A backup of another database, or an unknown label, restores nothing.
                let of_this = self
                    .backups
                    .get(&d.backup)
                    .is_some_and(|b| b.database == d.database);
                if let (true, Some(state)) = (of_this, self.backup_states.get(&d.backup)) {
                    self.actual.restore(d.database, state.clone());
                }
            }
            // The administrator did a step of a recorded plan: the databases changed as the
            // plan said they would.
            DomainEvent::RepairStepApplied(Repair {
                action: Some(action),
                ..
            }) => {
                action.apply(&mut self.actual, &self.intended);
                action.accept(&mut self.intended, &self.actual);
            }
            _ => apply(&mut self.actual, r, Some(failed), edits),
        }
        self.position = r.position;
        edits.reached
    }

    /// The world after all of `events`, from nothing.
    pub fn replay(events: &[Recorded]) -> World {
        World::default().continued(events)
    }

    /// This world after `events`, which follow it in the log. Only the backups that `events`
    /// restore are kept (beside those this world kept already).
    pub fn continued(mut self, events: &[Recorded]) -> World {
        self.keep_backups = Some(restored_labels(events));
        self.continued_keeping(events)
    }

    /// [`World::continued`], keeping the backups `keep_backups` names (all when `None`).
    pub fn continued_keeping(mut self, events: &[Recorded]) -> World {
        let failed = failures(events);
        for r in events {
            self.apply(r, &failed);
        }
        self
    }

    /// A community as the ledger has it, or — when the ledger never had it — as the actual
    /// Communities database does.
    pub fn community(&self, c: Uuid) -> Option<&Community> {
        self.intended
            .communities()
            .get(&Id::of(c))
            .or_else(|| self.actual.communities().get(&Id::of(c)))
            .map(|c| &**c)
    }

    /// Backups that `events` restore and whose contents this world does not hold (a world read
    /// from a snapshot holds none): the caller provides them with [`World::provide_backup`].
    pub fn backups_needed(&self, events: &[Recorded]) -> Vec<Backup> {
        let mut out: Vec<Backup> = Vec::new();
        for r in events {
            if let DomainEvent::DatabaseRestored(d) = &r.event {
                if let Some(b) = self.backups.get(&d.backup) {
                    let missing = !self.backup_states.contains_key(&d.backup);
                    if missing && !out.iter().any(|x| x.label == b.label) {
                        out.push(b.clone());
                    }
                }
            }
        }
        out
    }

    /// Gives this world the contents of a backup: `state` is the database as it stood after
    /// the backup's position.
    pub fn provide_backup(&mut self, label: &str, state: DbState) {
        self.backup_states.insert(label.to_owned(), state);
    }

    /// Whether this world (a snapshot after `self.position`) may be continued with `events`:
    /// not when one of them records the failed delivery of an event from before the snapshot,
    /// which the snapshot took as delivered.
    pub fn can_continue_with(&self, events: &[Recorded]) -> bool {
        let ids: HashSet<Uuid> = events.iter().map(|r| r.id).collect();
        events.iter().all(|r| match &r.event {
            DomainEvent::DeliveryFailed(d) => ids.contains(&d.event),
            _ => true,
        })
    }
}

/// The backup labels that `events` restore.
pub fn restored_labels(events: &[Recorded]) -> std::collections::HashSet<String> {
    events
        .iter()
        .filter_map(|r| match &r.event {
            DomainEvent::DatabaseRestored(d) => Some(d.backup.clone()),
            _ => None,
        })
        .collect()
}

/// What one event changed, for the other deployment to take instead of making the same change
/// again. A value held in several places (the same `Arc`) before the event is one value after
/// it: a community's members, held by the community in both deployments and by every app that
/// mirrors them; a community, and an app's resource, held by both deployments. Sharing keeps
/// each in memory once, and makes comparing them (findings, worlds) a pointer check while they
/// agree.
#[derive(Default)]
pub(crate) struct Edits {
    members: Changed<MemberRoles>,
    resources: Changed<Resource>,
    communities: Changed<Community>,
    /// The members of the community this event created.
    created: Option<MemberMap>,
    /// The community this event created.
    created_community: Option<Arc<Community>>,
    /// The resource this event provisioned.
    provisioned: Option<Arc<Resource>>,
    /// Where the event went in the deployment that has failures (the actual one).
    reached: Reached,
}

/// The apps a lifecycle event was pushed to, in delivery order, and whether each delivery
/// failed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reached {
    apps: [Option<(App, bool)>; App::ALL.len()],
}

impl Reached {
    fn push(&mut self, app: App, failed: bool) {
        if let Some(slot) = self.apps.iter_mut().find(|s| s.is_none()) {
            *slot = Some((app, failed));
        }
    }

    /// (app, whether its delivery failed).
    pub fn iter(&self) -> impl Iterator<Item = (App, bool)> + '_ {
        self.apps.iter().map_while(|s| *s)
    }
}

/// (a value as it was, the same value changed) for each shared value one event changed.
struct Changed<T>(Vec<(Arc<T>, Arc<T>)>);

impl<T> Default for Changed<T> {
    fn default() -> Self {
        Changed(Vec::new())
    }
}

impl<T: Clone> Changed<T> {
    /// Makes `change` to `v`, or gives `v` the result of making it to the same value before.
    fn edit(&mut self, v: &mut Arc<T>, change: impl FnOnce(&mut T)) {
        if let Some((_, after)) = self.0.iter().find(|(before, _)| Arc::ptr_eq(before, v)) {
            *v = after.clone();
            return;
        }
        if Arc::strong_count(v) == 1 {
            // Nothing else holds this value: no one will look for it.
            change(Arc::make_mut(v));
            return;
        }
        let before = v.clone();
        change(Arc::make_mut(v));
        self.0.push((before, v.clone()));
    }
}

impl Edits {
    /// The members of a community created by this event: made once, the same map for every
    /// deployment.
    fn created(&mut self, make: impl FnOnce() -> MemberRoles) -> MemberMap {
        self.created.get_or_insert_with(|| Arc::new(make())).clone()
    }

    /// The resource this event provisions: the one made for another deployment when equal.
    fn provisioned(&mut self, r: Resource) -> Arc<Resource> {
        match &self.provisioned {
            Some(made) if **made == r => made.clone(),
            _ => self.provisioned.insert(Arc::new(r)).clone(),
        }
    }

    /// A community created by this event: the one made for another deployment when equal.
    fn created_community(&mut self, c: Community) -> Arc<Community> {
        match &self.created_community {
            Some(made) if **made == c => made.clone(),
            _ => self.created_community.insert(Arc::new(c)).clone(),
        }
    }
}

fn membership(changed: &mut Changed<MemberRoles>, m: &mut MemberMap, e: &DomainEvent) {
    use DomainEvent::*;
    match e {
        MembersAdded(x) | MembersModified(x) => changed.edit(m, |m| {
            for (u, role) in &x.members {
                m.set(u, *role);
            }
        }),
        MembersRemoved(x) => changed.edit(m, |m| {
            for u in &x.users {
                m.remove(u.as_str());
            }
        }),
        _ => {}
    }
}

/// Applies `r` to a deployment; `failed` is `None` for the intended deployment. `edits` is
/// shared by every deployment `r` is applied to.
pub(crate) fn apply(
    d: &mut Deployment,
    r: &Recorded,
    failed: Option<&Failures>,
    edits: &mut Edits,
) {
    use DomainEvent::*;
    let e = &r.event;
    match e {
        CommunityCreated(c) => {
            let members = edits.created(|| {
                let mut members: MemberRoles = c
                    .members
                    .iter()
                    .map(|u| (User::from(u.as_str()), Role::Member))
                    .collect();
                for o in &c.owners {
                    members.insert(User::from(o.as_str()), Role::Owner);
                }
                members
            });
            let community = Community {
                uuid: c.community,
                name: Text::from(c.name.as_str()),
                community_type: c.community_type,
                list_when_restricted: c.list_when_restricted,
                external: c.external,
                org_id: c.org_id.as_deref().map(Text::from),
                theme: c.theme.as_deref().map(Text::from),
                pre_moderation: c.pre_moderation,
                post_moderation: c.post_moderation,
                parent: c.parent,
                lifecycle: Lifecycle::Active,
                description: None,
                tags: Vec::new(),
                members,
                widgets: Widgets::default(),
            };
            d.db_mut(Database::Communities)
                .communities
                .insert(c.community, edits.created_community(community));
        }
        RemoteAppProvisioned(p) => {
            let Some(c) = d.communities().get(&Id::of(p.community)) else {
                return;
            };
            let r = edits.provisioned(Resource {
                app: p.app,
                object_id: Text::from(p.object_id.as_str()),
                instance: instance_in(c, &p.instance),
                community: p.community,
                mirror: Mirror::of(c, p.app),
            });
            d.insert_resource(r);
        }
        RemoteAppTransferred(t) => transfer(d, t),
        CommunityShareAdded(s) => {
            d.db_mut(s.app.database())
                .shares
                .insert((s.community, s.app, s.object_id.clone()));
        }
        CommunityShareRemoved(s) => {
            d.db_mut(s.app.database())
                .shares
                .remove(&(s.community, s.app, s.object_id.clone()));
        }
        DeliveryFailed(_) => {}
        DeliveryRetried(x) => {
            if failed.is_some() {
                retry(d, x);
            }
        }
        QueueCleared(q) => {
            if failed.is_some() {
                let queue = &mut d.db_mut(Database::Communities).queue;
                queue.retain(|entry| !clears(&q.scope, entry));
            }
        }
        TaskPaused(t) => {
            d.db_mut(Database::Communities)
                .tasks
                .insert(t.task.clone(), TaskStatus::Suspended);
        }
        TaskResumed(t) => {
            d.db_mut(Database::Communities)
                .tasks
                .insert(t.task.clone(), TaskStatus::Scheduled);
        }
        BackupTaken(_) | DatabaseRestored(_) | RepairPlanned(_) | RepairStepPlanned(_)
        | RepairStepApplied(_) => {}
        other => {
            let Some(community) = other.community() else {
                return;
            };
            if let Some(c) = d
                .db_mut(Database::Communities)
                .communities
                .get_mut(&Id::of(community))
            {
                let Edits {
                    communities,
                    members,
                    ..
                } = &mut *edits;
                communities.edit(c, |c| change_community(c, other, members));
            }
            push_to_apps(d, r, community, failed, edits);
        }
    }
}

/// The Communities database's own change.
fn change_community(c: &mut Community, e: &DomainEvent, members: &mut Changed<MemberRoles>) {
    use DomainEvent::*;
    match e {
        CommunityUpdated(u) => {
            if let Some(v) = &u.name {
                c.name = Text::from(v.as_str());
            }
            if let Some(v) = &u.description {
                c.description = Some(v.clone());
            }
            if let Some(v) = &u.tags {
                c.tags = v.clone();
            }
            if let Some(v) = &u.theme {
                c.theme = Some(Text::from(v.as_str()));
            }
            if let Some(v) = u.pre_moderation {
                c.pre_moderation = v;
            }
            if let Some(v) = u.post_moderation {
                c.post_moderation = v;
            }
        }
        VisibilityChanged(v) => {
            c.community_type = v.community_type;
            c.list_when_restricted = v.list_when_restricted;
            c.external = v.external;
        }
        MembersAdded(_) | MembersModified(_) | MembersRemoved(_) => {
            membership(members, &mut c.members, e)
        }
        OrgChanged(o) => c.org_id = Some(Text::from(o.org_id.as_str())),
        WidgetAdded(w) => {
            c.widgets = c.widgets.with(
                w.instance.as_str().into(),
                widget_def_text(&w.widget_def_id),
            );
        }
        WidgetRemoved(w) => {
            c.widgets = c.widgets.without(w.instance.as_str());
        }
        CommunityTrashed(_) => c.lifecycle = Lifecycle::Trashed,
        CommunityRestored(_) => c.lifecycle = Lifecycle::Active,
        CommunityPurged(_) => {
            c.lifecycle = Lifecycle::Purged;
            c.widgets = Widgets::default();
        }
        SubcommunityMoved(m) => c.parent = m.parent,
        _ => {}
    }
}

/// Whether an event is pushed to the remote apps at all.
pub fn is_lifecycle(e: &DomainEvent) -> bool {
    use DomainEvent::*;
    matches!(
        e,
        CommunityUpdated(_)
            | VisibilityChanged(_)
            | MembersAdded(_)
            | MembersRemoved(_)
            | MembersModified(_)
            | OrgChanged(_)
            | WidgetRemoved(_)
            | CommunityTrashed(_)
            | CommunityRestored(_)
            | CommunityPurged(_)
    )
}

/// Delivers a community event to every app holding a resource of that community; a failed
/// delivery goes to the Communities database's retry queue instead.
fn push_to_apps(
    d: &mut Deployment,
    r: &Recorded,
    community: Uuid,
    failed: Option<&Failures>,
    edits: &mut Edits,
) {
    if !is_lifecycle(&r.event) {
        return;
    }
    let mut holding = [Database::Communities; Database::ALL.len()];
    let mut n = 0;
    for db in d.holding(community) {
        holding[n] = db;
        n += 1;
    }
    let removes = matches!(
        r.event,
        DomainEvent::WidgetRemoved(_) | DomainEvent::CommunityPurged(_)
    );
    for &db in &holding[..n] {
        // One lookup finds the resources, tells the apps and, when none of their deliveries
        // failed, takes the event.
        let Some(held) = d.db_mut(db).resources_of_mut(community) else {
            continue;
        };
        let mut apps = [App::Files; App::ALL.len()];
        let mut kinds = 0;
        for r in held.iter() {
            if !apps[..kinds].contains(&r.app) {
                apps[kinds] = r.app;
                kinds += 1;
            }
        }
        let apps = &apps[..kinds];
        let mut to = [App::Files; App::ALL.len()];
        let mut delivered = 0;
        let mut lost = [App::Files; App::ALL.len()];
        let mut queued = 0;
        for &app in apps {
            let failed = failed.is_some_and(|f| f.contains(&(r.id, app)));
            if failed {
                lost[queued] = app;
                queued += 1;
            } else {
                to[delivered] = app;
                delivered += 1;
            }
        }
        if failed.is_some() {
            for &app in apps {
                edits.reached.push(app, lost[..queued].contains(&app));
            }
        }
        if delivered > 0 && !removes {
            change_held(held, &to[..delivered], &r.event, edits);
        }
        for &app in &lost[..queued] {
            if d.db(Database::Communities).queue.contains(r.id, app) {
                continue; // one queue row per event and app
            }
            let (event_type, data, _) = r.event.encode();
            d.db_mut(Database::Communities).queue.push(QueueEntry {
                event: r.id,
                position: r.position,
                community,
                app,
                event_type,
                data,
            });
        }
        if delivered > 0 && removes {
            deliver(d, db, community, &to[..delivered], &r.event, edits);
        }
    }
}

/// The apps in `to` apply a lifecycle event to their resources of the community.
pub(crate) fn deliver(
    d: &mut Deployment,
    db: Database,
    community: Uuid,
    to: &[App],
    e: &DomainEvent,
    edits: &mut Edits,
) {
    use DomainEvent::*;
    if let WidgetRemoved(_) | CommunityPurged(_) = e {
        let gone: Vec<ResourceKey> = d
            .db(db)
            .resources_of(community)
            .filter(|r| to.contains(&r.app))
            .filter(|r| match e {
                WidgetRemoved(w) => *r.instance == *w.instance,
                _ => true,
            })
            .map(ResourceKey::of)
            .collect();
        for key in &gone {
            d.remove_resource(db, key);
        }
        return;
    }
    if let Some(held) = d.db_mut(db).resources_of_mut(community) {
        change_held(held, to, e, edits);
    }
}

/// The apps in `to` apply `e` (a change, not a removal) to their resources among `held`.
fn change_held(held: &mut [Arc<Resource>], to: &[App], e: &DomainEvent, edits: &mut Edits) {
    let Edits {
        members, resources, ..
    } = edits;
    for r in held.iter_mut().filter(|r| to.contains(&r.app)) {
        if changes_mirror(r, e) {
            resources.edit(r, |r| change_mirror(r, e, members));
        }
    }
}

/// Whether [`change_mirror`] changes anything of `r` for `e`. When not, the resource stays
/// the value it was, shared where it was shared, instead of becoming a copy equal to it.
fn changes_mirror(r: &Resource, e: &DomainEvent) -> bool {
    use DomainEvent::*;
    match e {
        CommunityUpdated(u) => {
            u.name.is_some()
                || u.theme.is_some()
                || (r.app.mirrors_moderation()
                    && (u.pre_moderation.is_some() || u.post_moderation.is_some()))
        }
        VisibilityChanged(_) | OrgChanged(_) | CommunityTrashed(_) | CommunityRestored(_) => true,
        MembersAdded(_) | MembersModified(_) | MembersRemoved(_) => r.mirror.members.is_some(),
        _ => false,
    }
}

/// What delivering `e` changes in the community attributes an app's resource mirrors. What it
/// may change, [`changes_mirror`] must say (a test checks the two against each other).
fn change_mirror(r: &mut Resource, e: &DomainEvent, members: &mut Changed<MemberRoles>) {
    use DomainEvent::*;
    let app = r.app;
    let m = &mut r.mirror;
    match e {
        CommunityUpdated(u) => {
            if let Some(v) = &u.name {
                m.name = Text::from(v.as_str());
            }
            if let Some(v) = &u.theme {
                m.theme = Some(Text::from(v.as_str()));
            }
            if app.mirrors_moderation() {
                if let Some(v) = u.pre_moderation {
                    m.pre_moderation = Some(v);
                }
                if let Some(v) = u.post_moderation {
                    m.post_moderation = Some(v);
                }
            }
        }
        VisibilityChanged(v) => {
            m.community_type = v.community_type;
            m.list_when_restricted = v.list_when_restricted;
            m.external = v.external;
        }
        MembersAdded(_) | MembersModified(_) | MembersRemoved(_) => {
            if let Some(map) = &mut m.members {
                membership(members, map, e);
            }
        }
        OrgChanged(o) => m.org_id = Some(Text::from(o.org_id.as_str())),
        CommunityTrashed(_) => m.lifecycle = Lifecycle::Trashed,
        CommunityRestored(_) => m.lifecycle = Lifecycle::Active,
        _ => {}
    }
}

/// The widget instance `instance` as text: the very text `c`'s widget map holds when it has
/// that widget, so that [`crate::findings::holds`] finds it by pointer.
pub(crate) fn instance_in(c: &Community, instance: &str) -> Text {
    match c.widgets.get_key_value(instance) {
        Some((shared, _)) => shared.clone(),
        None => Text::from(instance),
    }
}

/// `assignRemoteApp`: the container joins the target community, which gains the widget.
pub(crate) fn transfer(d: &mut Deployment, t: &RemoteAppTransferred) {
    let Some(target) = d.communities().get(&Id::of(t.to_community)) else {
        return;
    };
    let mut target = Community::clone(target);
    // The widget and the container share the instance's text (see `findings::holds`).
    let instance = Text::from(t.instance.as_str());
    target.widgets = target
        .widgets
        .with(instance.clone(), t.app.widget_def_text());
    d.db_mut(Database::Communities)
        .communities
        .insert(t.to_community, Arc::new(target.clone()));
    let key = ResourceKey::new(t.app, t.object_id.as_str());
    if d.db(t.app.database()).resource(&key).is_some() {
        d.insert_resource(Resource {
            app: t.app,
            object_id: key.object_id().clone(),
            instance,
            community: t.to_community,
            mirror: Mirror::of(&target, t.app),
        });
    }
}

/// `LifecycleRetryQueuedEvents` delivered a queued event: the app gets it as it was then.
pub(crate) fn retry(d: &mut Deployment, x: &Delivery) {
    let queue = &mut d.db_mut(Database::Communities).queue;
    let Some(entry) = queue.remove(x.event, x.app) else {
        return;
    };
    let Some(lifecycle) = entry.lifecycle() else {
        return;
    };
    deliver(
        d,
        x.app.database(),
        entry.community,
        &[x.app],
        &lifecycle,
        &mut Edits::default(),
    );
}

fn clears(scope: &QueueScope, q: &QueueEntry) -> bool {
    match scope {
        QueueScope::RemoteApp { app } => q.app == *app,
        QueueScope::ResourceType => true,
        QueueScope::Community { community } => q.community == *community,
        QueueScope::Event { event } => q.event == *event,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vocabulary::CommunityType;

    /// `events` as the ledger would hold them, at positions from 1.
    pub(crate) fn recorded(events: Vec<DomainEvent>) -> Vec<Recorded> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Recorded {
                position: i as u64 + 1,
                id: Uuid::from_u128(i as u128 + 100),
                recorded_ns: 0,
                occurred_ns: 0,
                event,
            })
            .collect()
    }

    /// Community `n` created, with a Files and a Forum widget whose apps hold a resource.
    pub(crate) fn with_files_and_forum(n: u128) -> Vec<DomainEvent> {
        let c = Uuid::from_u128(n);
        let mut events = vec![DomainEvent::CommunityCreated(CommunityCreated::new(
            c,
            &format!("Community {n}"),
            CommunityType::Public,
            vec!["owner".into()],
        ))];
        for (app, instance) in [(App::Files, "Wf"), (App::Forum, "Wo")] {
            events.push(DomainEvent::WidgetAdded(WidgetAdded {
                community: c,
                instance: format!("{instance}{n}"),
                widget_def_id: app.widget_def_id().into(),
                actor: None,
            }));
            events.push(DomainEvent::RemoteAppProvisioned(RemoteAppProvisioned {
                community: c,
                app,
                instance: format!("{instance}{n}"),
                object_id: format!("{app}-{n}"),
                actor: None,
            }));
        }
        events
    }

    pub(crate) fn add(c: Uuid, user: &str) -> DomainEvent {
        DomainEvent::MembersAdded(crate::events::Members {
            community: c,
            members: [(user.to_string(), Role::Member)].into(),
            actor: None,
        })
    }

    /// The members maps of `c` in both deployments: the community's, then each mirror's.
    fn maps(w: &World, c: Uuid) -> Vec<(&'static str, Database, MemberMap)> {
        let mut out = Vec::new();
        for (name, d) in [("intended", &w.intended), ("actual", &w.actual)] {
            out.push((
                name,
                Database::Communities,
                d.communities()[&c].members.clone(),
            ));
            for db in [Database::Files, Database::Forums] {
                for r in d.db(db).resources_of(c) {
                    out.push((name, db, r.mirror.members.clone().unwrap()));
                }
            }
        }
        out
    }

    /// Whether both deployments hold the same resource (one allocation) in `db`.
    fn resource_shared(w: &World, c: Uuid, db: Database) -> bool {
        let i: Vec<&Resource> = w.intended.db(db).resources_of(c).collect();
        let a: Vec<&Resource> = w.actual.db(db).resources_of(c).collect();
        assert_eq!(i.len(), 1);
        assert_eq!(a.len(), 1);
        std::ptr::eq(i[0], a[0])
    }

    /// A delivery that changes nothing an app mirrors (members to Library, which does not
    /// mirror them; moderation to an app that does not mirror it; a description) leaves its
    /// resource the very value it was, still shared by both deployments.
    #[test]
    fn a_delivery_that_changes_nothing_mirrored_keeps_the_resource_as_it_was() {
        let c = Uuid::from_u128(1);
        let mut events = with_files_and_forum(1);
        events.push(DomainEvent::WidgetAdded(WidgetAdded {
            community: c,
            instance: "Wl1".into(),
            widget_def_id: App::Library.widget_def_id().into(),
            actor: None,
        }));
        events.push(DomainEvent::RemoteAppProvisioned(RemoteAppProvisioned {
            community: c,
            app: App::Library,
            instance: "Wl1".into(),
            object_id: "Library-1".into(),
            actor: None,
        }));
        let set_up = events.len();
        events.push(add(c, "ann"));
        events.push(DomainEvent::CommunityUpdated(CommunityUpdated {
            community: c,
            pre_moderation: Some(true),
            description: Some("about".into()),
            ..CommunityUpdated::default()
        }));
        let events = recorded(events);
        let before = World::replay(&events[..set_up]);
        let held = |w: &World, db| w.intended.db(db).held_by(c)[0].clone();
        let (library, files) = (
            held(&before, Database::Library),
            held(&before, Database::Files),
        );
        let after = before.continued(&events[set_up..]);
        assert!(Arc::ptr_eq(&held(&after, Database::Library), &library));
        assert!(resource_shared(&after, c, Database::Library));
        let changed = held(&after, Database::Files);
        assert!(!Arc::ptr_eq(&changed, &files));
        assert!(changed.mirror.members.as_ref().unwrap().contains_key("ann"));
        assert_eq!(changed.mirror.pre_moderation, Some(true));
        assert!(resource_shared(&after, c, Database::Files));
    }

    /// Every delivery that changes a mirror is one [`changes_mirror`] lets through, for every
    /// app and every event a mirror follows, changed or not; and some are passed over.
    #[test]
    fn changes_mirror_lets_through_every_delivery_that_changes_a_mirror() {
        let c = Uuid::from_u128(1);
        let base = World::replay(&recorded(with_files_and_forum(1)));
        let community = base.intended.communities()[&c].clone();
        let members = || [("bob".to_string(), Role::Owner)].into();
        let update = |f: fn(&mut CommunityUpdated)| {
            let mut u = CommunityUpdated {
                community: c,
                ..CommunityUpdated::default()
            };
            f(&mut u);
            DomainEvent::CommunityUpdated(u)
        };
        let events = [
            update(|u| u.name = Some("Renamed".into())),
            update(|u| u.theme = Some("green".into())),
            update(|u| u.pre_moderation = Some(true)),
            update(|u| u.post_moderation = Some(true)),
            update(|u| u.description = Some("about".into())),
            update(|u| u.tags = Some(vec!["t".into()])),
            DomainEvent::VisibilityChanged(VisibilityChanged {
                community: c,
                community_type: CommunityType::Private,
                list_when_restricted: true,
                external: true,
                actor: None,
            }),
            DomainEvent::OrgChanged(OrgChanged {
                community: c,
                org_id: "org-2".into(),
                actor: None,
            }),
            DomainEvent::MembersAdded(crate::events::Members {
                community: c,
                members: members(),
                actor: None,
            }),
            DomainEvent::MembersModified(crate::events::Members {
                community: c,
                members: members(),
                actor: None,
            }),
            DomainEvent::MembersRemoved(MembersRemoved {
                community: c,
                users: vec!["owner".into()],
                actor: None,
            }),
            DomainEvent::CommunityTrashed(CommunityRef {
                community: c,
                actor: None,
            }),
            DomainEvent::CommunityRestored(CommunityRef {
                community: c,
                actor: None,
            }),
        ];
        let mut passed_over = 0;
        for app in App::ALL {
            for lifecycle in [Lifecycle::Active, Lifecycle::Trashed] {
                let mut resource = Resource {
                    app,
                    object_id: "o".into(),
                    instance: "i".into(),
                    community: c,
                    mirror: Mirror::of(&community, app),
                };
                resource.mirror.lifecycle = lifecycle;
                for e in &events {
                    let mut changed = resource.clone();
                    change_mirror(&mut changed, e, &mut Changed::default());
                    if !changes_mirror(&resource, e) {
                        assert_eq!(changed, resource, "{app:?}, {}", e.type_name());
                        passed_over += 1;
                    }
                }
            }
        }
        // Description and tags for every app; members for Library and Status Updates;
        // moderation for the four apps without it: each for both lifecycles.
        assert_eq!(passed_over, 2 * (8 * 2 + 2 * 3 + 4 * 2));
    }

    #[test]
    fn a_communitys_members_are_one_map_until_a_database_differs() {
        let c = Uuid::from_u128(1);
        let mut events = with_files_and_forum(1);
        events.push(add(c, "ann"));
        events.push(DomainEvent::BackupTaken(BackupTaken {
            database: Database::Files,
            label: "files-1".into(),
            actor: None,
        }));
        events.push(add(c, "bob"));
        events.push(DomainEvent::MembersRemoved(MembersRemoved {
            community: c,
            users: vec!["ann".into()],
            actor: None,
        }));
        let w = World::replay(&recorded(events.clone()));
        let all = maps(&w, c);
        assert_eq!(all.len(), 6);
        for (name, db, m) in &all {
            assert!(
                Arc::ptr_eq(m, &all[0].2),
                "{name} {db:?} holds its own copy"
            );
        }
        let want: MemberRoles = [
            (User::from("bob"), Role::Member),
            (User::from("owner"), Role::Owner),
        ]
        .into();
        assert_eq!(*all[0].2, want);
        for db in [Database::Files, Database::Forums] {
            assert!(resource_shared(&w, c, db), "{db:?}");
        }
        let community = |w: &World, d: fn(&World) -> &Deployment| d(w).communities()[&c].clone();
        assert!(Arc::ptr_eq(
            &community(&w, |w| &w.intended),
            &community(&w, |w| &w.actual)
        ));

        // Files goes back to its backup: its mirror is its own from then on, the rest still share.
        events.push(DomainEvent::DatabaseRestored(DatabaseRestored {
            database: Database::Files,
            backup: "files-1".into(),
            actor: None,
        }));
        events.push(add(c, "cy"));
        let w = World::replay(&recorded(events));
        let all = maps(&w, c);
        for (name, db, m) in &all {
            let restored = *name == "actual" && *db == Database::Files;
            assert_eq!(Arc::ptr_eq(m, &all[0].2), !restored, "{name} {db:?}");
            let expected: Vec<&str> = if restored {
                vec!["ann", "cy", "owner"]
            } else {
                vec!["bob", "cy", "owner"]
            };
            assert_eq!(m.keys().map(|u| &**u).collect::<Vec<_>>(), expected);
        }
        assert!(!resource_shared(&w, c, Database::Files));
        assert!(resource_shared(&w, c, Database::Forums));
    }
}
