//! The checks Connections would make before it accepts a change, made against the intended
//! state (and, for queue retries and restores, the actual one). A rejected event is appended
//! nowhere; `--force` records history as it happened, unchecked.

use crate::events::*;
use crate::fold::World;
use crate::state::{Community, ResourceKey};
use crate::vocabulary::{App, CommunityType, Database, Lifecycle, Role};
use uuid::Uuid;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Rejection(pub String);

fn reject<T>(msg: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection(msg.into()))
}

/// The communities whose state alone `validate` reads for `e`, the event's own first: their
/// entries in either deployment's Communities database, their resources, shares and queued
/// deliveries. A new community's parent is the one other community read. `None` for the events
/// whose checks read communities they do not name (a restored community's parent,
/// subcommunities, the holder of a transferred object, an object id unique across
/// communities) or no community (backups and restores). A world folded from those
/// communities' events alone then gives the same answer as the whole world (`record` uses
/// this; kept beside the checks it describes).
pub fn communities_read(e: &DomainEvent) -> Option<Vec<Uuid>> {
    use DomainEvent::*;
    match e {
        CommunityCreated(c) => Some(std::iter::once(c.community).chain(c.parent).collect()),
        CommunityUpdated(_)
        | VisibilityChanged(_)
        | MembersAdded(_)
        | MembersRemoved(_)
        | MembersModified(_)
        | OrgChanged(_)
        | WidgetAdded(_)
        | WidgetRemoved(_)
        | CommunityTrashed(_)
        | CommunityPurged(_)
        | CommunityShareAdded(_)
        | CommunityShareRemoved(_)
        | DeliveryFailed(_)
        | DeliveryRetried(_) => e.community().map(|c| vec![c]),
        _ => None,
    }
}

/// The community whose parent the check of `e` reads besides the community itself, the parent
/// not being named by the event: a restore from the trash (the parent must not be in the trash).
pub fn reads_parent_of(e: &DomainEvent) -> Option<Uuid> {
    match e {
        DomainEvent::CommunityRestored(r) => Some(r.community),
        _ => None,
    }
}

/// Whether Connections would accept `e` now.
pub fn validate(w: &World, e: &DomainEvent) -> Result<(), Rejection> {
    use DomainEvent::*;
    match e {
        CommunityCreated(c) => created(w, c),
        CommunityRestored(r) => {
            let c = existing(w, r.community)?;
            if c.lifecycle != Lifecycle::Trashed {
                return reject(format!("community {} is not in the trash", r.community));
            }
            if let Some(p) = c.parent.and_then(|p| w.intended.communities().get(&p)) {
                if p.lifecycle != Lifecycle::Active {
                    return reject(format!(
                        "community {} cannot be restored before its parent {}",
                        r.community, p.uuid
                    ));
                }
            }
            Ok(())
        }
        CommunityPurged(r) => {
            if existing(w, r.community)?.lifecycle != Lifecycle::Trashed {
                return reject(format!(
                    "community {} must be in the trash before it is purged",
                    r.community
                ));
            }
            Ok(())
        }
        RemoteAppTransferred(t) => transferred(w, t),
        CommunityShareAdded(s) | CommunityShareRemoved(s) => share(w, s, e),
        DeliveryRetried(x) => {
            let queued = w
                .actual
                .db(Database::Communities)
                .queue
                .iter()
                .find(|q| q.event == x.event && q.app == x.app);
            match queued {
                None => reject(format!(
                    "no queued delivery of event {} to {}",
                    x.event, x.app
                )),
                Some(q) if q.community != x.community => reject(format!(
                    "the queued delivery of event {} to {} is for community {}, not {}",
                    x.event, x.app, q.community, x.community
                )),
                Some(_) => Ok(()),
            }
        }
        DeliveryFailed(x) => match w.community(x.community) {
            None => reject(format!("community {} does not exist", x.community)),
            Some(_) => Ok(()),
        },
        BackupTaken(b) => {
            if w.backups.contains_key(&b.label) {
                return reject(format!("a backup labelled '{}' exists already", b.label));
            }
            Ok(())
        }
        DatabaseRestored(r) => match w.backups.get(&r.backup) {
            None => reject(format!("no backup labelled '{}'", r.backup)),
            Some(b) if b.database != r.database => reject(format!(
                "backup '{}' is of the {} database, not {}",
                r.backup, b.database, r.database
            )),
            Some(_) => Ok(()),
        },
        RepairPlanned(p) => match (p.steps, p.actions.len(), p.parts) {
            (_, 0, _) => Ok(()),
            (_, _, Some(_)) => reject(format!(
                "plan {} carries its steps' actions both in itself and in the parts that \
                 follow it: one or the other",
                p.plan
            )),
            (Some(steps), n, None) if steps as usize == n => Ok(()),
            (steps, n, None) => reject(format!(
                "plan {} has {} steps but says what {n} of them do (one action per step)",
                p.plan,
                steps.unwrap_or(0)
            )),
        },
        RepairStepPlanned(s) | RepairStepApplied(s) => match (s.part, s.parts) {
            (None, None) => Ok(()),
            (Some(i), Some(n)) if (1..=n).contains(&i) => Ok(()),
            (i, n) => reject(format!(
                "step {} of plan {}: part {} of {} is not a part (parts count from 1 to \
                 their number, and come with it)",
                s.step.unwrap_or(0),
                s.plan,
                i.map_or("none".into(), |i| i.to_string()),
                n.map_or("none".into(), |n| n.to_string()),
            )),
        },
        QueueCleared(_) | TaskPaused(_) | TaskResumed(_) => Ok(()),
        other => {
            let community = other.community().expect("community-scoped");
            let c = active(w, community)?;
            changed(w, c, other)
        }
    }
}

fn existing(w: &World, community: Uuid) -> Result<&Community, Rejection> {
    match w.intended.communities().get(&community) {
        None => reject(format!("community {community} does not exist")),
        Some(c) if c.lifecycle == Lifecycle::Purged => {
            reject(format!("community {community} was purged"))
        }
        Some(c) => Ok(c),
    }
}

fn active(w: &World, community: Uuid) -> Result<&Community, Rejection> {
    let c = existing(w, community)?;
    if c.lifecycle == Lifecycle::Trashed {
        return reject(format!("community {community} is in the trash"));
    }
    Ok(c)
}

fn restricted_only(t: CommunityType, list: bool, external: bool) -> Result<(), Rejection> {
    if t != CommunityType::Private && (list || external) {
        return reject(
            "listWhenRestricted and external apply only to private (restricted) communities",
        );
    }
    Ok(())
}

fn created(w: &World, c: &CommunityCreated) -> Result<(), Rejection> {
    if w.intended.communities().contains_key(&c.community) {
        return reject(format!("community {} exists already", c.community));
    }
    if c.name.trim().is_empty() {
        return reject("a community needs a name");
    }
    if c.owners.is_empty() {
        return reject("a community needs at least one owner");
    }
    restricted_only(c.community_type, c.list_when_restricted, c.external)?;
    if let Some(p) = c.parent {
        active(w, p)?;
    }
    Ok(())
}

/// Checks of events that change an active community.
fn changed(w: &World, c: &Community, e: &DomainEvent) -> Result<(), Rejection> {
    use DomainEvent::*;
    let id = c.uuid;
    match e {
        VisibilityChanged(v) => {
            restricted_only(v.community_type, v.list_when_restricted, v.external)
        }
        MembersAdded(m) => {
            if let Some(u) = m
                .members
                .keys()
                .find(|u| c.members.contains_key(u.as_str()))
            {
                return reject(format!(
                    "{u} is already a member of {id} (change a role with MembersModified)"
                ));
            }
            Ok(())
        }
        MembersRemoved(m) => {
            if let Some(u) = m.users.iter().find(|u| !c.members.contains_key(u.as_str())) {
                return reject(format!("{u} is not a member of {id}"));
            }
            let owners_left = c
                .owners()
                .filter(|o| !m.users.iter().any(|u| u == o))
                .count();
            if owners_left == 0 {
                return reject(format!("the last owner of {id} cannot be removed"));
            }
            Ok(())
        }
        MembersModified(m) => {
            if let Some(u) = m
                .members
                .keys()
                .find(|u| !c.members.contains_key(u.as_str()))
            {
                return reject(format!("{u} is not a member of {id}"));
            }
            let owners = c
                .members
                .iter()
                .filter(|(u, r)| m.members.get(&**u as &str).unwrap_or(r) == &Role::Owner)
                .count();
            if owners == 0 {
                return reject(format!("{id} would be left without an owner"));
            }
            Ok(())
        }
        WidgetAdded(x) => {
            if c.widgets.contains_key(x.instance.as_str()) {
                return reject(format!(
                    "widget instance {} exists already in {id}",
                    x.instance
                ));
            }
            if let Some(app) = App::from_widget_def_id(&x.widget_def_id) {
                if c.instance_of(app).is_some() {
                    return reject(format!("{id} already has a {app} widget"));
                }
            }
            Ok(())
        }
        WidgetRemoved(x) => {
            if !c.widgets.contains_key(x.instance.as_str()) {
                return reject(format!("{id} has no widget instance {}", x.instance));
            }
            Ok(())
        }
        RemoteAppProvisioned(p) => {
            match c.widgets.get(p.instance.as_str()) {
                Some(def) if **def == *p.app.widget_def_id() => {}
                Some(def) => {
                    return reject(format!(
                        "widget instance {} of {id} is {def}, not {}",
                        p.instance, p.app
                    ))
                }
                None => return reject(format!("{id} has no widget instance {}", p.instance)),
            }
            if w.intended
                .db(p.app.database())
                .resource(&ResourceKey::new(p.app, p.object_id.as_str()))
                .is_some()
            {
                return reject(format!("{} object {} exists already", p.app, p.object_id));
            }
            Ok(())
        }
        SubcommunityMoved(m) => {
            if let Some(p) = m.parent {
                if p == id {
                    return reject("a community cannot be its own parent");
                }
                active(w, p)?;
                let has_subs = w
                    .intended
                    .communities()
                    .values()
                    .any(|x| x.parent == Some(id) && x.lifecycle != Lifecycle::Purged);
                if has_subs {
                    return reject(format!("{id} has subcommunities and cannot become one"));
                }
            }
            Ok(())
        }
        CommunityTrashed(_) => Ok(()),
        _ => Ok(()),
    }
}

fn transferred(w: &World, t: &RemoteAppTransferred) -> Result<(), Rejection> {
    let key = ResourceKey::new(t.app, t.object_id.as_str());
    let held = w
        .intended
        .db(t.app.database())
        .resource(&key)
        .or_else(|| w.actual.db(t.app.database()).resource(&key));
    match held {
        None => return reject(format!("no {} object {}", t.app, t.object_id)),
        Some(r) if r.community != t.from_community => {
            return reject(format!(
                "{} object {} belongs to {}, not {}",
                t.app, t.object_id, r.community, t.from_community
            ))
        }
        Some(_) => {}
    }
    let target = active(w, t.to_community)?;
    match target.instance_of(t.app) {
        Some(i) if **i != *t.instance || t.to_community != t.from_community => reject(format!(
            "{} already has a {} widget: remove it first (assignRemoteApp fails otherwise)",
            t.to_community, t.app
        )),
        _ => Ok(()),
    }
}

fn share(w: &World, s: &Share, e: &DomainEvent) -> Result<(), Rejection> {
    if !matches!(s.app, App::Files | App::Activities) {
        return reject(format!(
            "only Files and Activities share with communities, not {}",
            s.app
        ));
    }
    active(w, s.community)?;
    let shared =
        w.intended
            .db(s.app.database())
            .shares
            .contains(&(s.community, s.app, s.object_id.clone()));
    match (e, shared) {
        (DomainEvent::CommunityShareAdded(_), true) => reject(format!(
            "{} is already shared with {}",
            s.object_id, s.community
        )),
        (DomainEvent::CommunityShareRemoved(_), false) => reject(format!(
            "{} is not shared with {}",
            s.object_id, s.community
        )),
        _ => Ok(()),
    }
}
