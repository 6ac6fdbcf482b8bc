//! Connections lifecycle events (what Communities POSTs to a remote application's
//! `remoteHandlerURL`, domain.md §3) turned into Lifeline's events, checked against the intended
//! state the way a remote handler answers: a duplicate add is a conflict, a remove that finds
//! nothing is gone, a malformed entry is refused.

use crate::events::*;
use crate::fold::World;
use crate::state::MemberRoles;
use crate::validate::validate;
use crate::vocabulary::{CommunityType, Lifecycle, Role};
use uuid::Uuid;

/// One lifecycle entry, as read from its Atom form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The `atom:category` term, e.g. `remote.app.added`.
    pub event: String,
    /// The widget definition the handler is registered for (`/lifecycle/{widgetDefId}`).
    pub widget_def_id: Option<String>,
    /// `snx:container/@id`.
    pub community: Option<Uuid>,
    /// `snx:container/@name`.
    pub name: Option<String>,
    /// `snx:property name="communityType"`.
    pub community_type: Option<String>,
    /// `snx:property name="communityOrgId"`.
    pub org_id: Option<String>,
    /// `snx:property name="owners"` (comma-separated).
    pub owners: Option<Vec<String>>,
    /// `snx:property name="members"` (comma-separated).
    pub members: Option<Vec<String>>,
    /// `snx:remoteApplication/@instanceId` or `snx:managedApplication/@instanceId`.
    pub instance: Option<String>,
    /// `atom:author/snx:userid`.
    pub actor: Option<String>,
}

/// Why an entry is not recorded, as a remote handler answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 409: the widget instance exists already (a duplicate `remote.app.added`).
    #[error("conflict: {0}")]
    Duplicate(String),
    /// 410: what a remove or delete names is not there.
    #[error("gone: {0}")]
    Gone(String),
    /// 400: the entry is malformed or Connections would not allow it.
    #[error("bad entry: {0}")]
    Invalid(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::Invalid(msg.into()))
}

/// The events that record `e` on top of `w`, in order (none when it changes nothing), and the
/// world after them.
pub fn translate(w: &World, e: &Entry) -> Result<(Vec<DomainEvent>, World), Refusal> {
    let Some(community) = e.community else {
        return invalid("no snx:container id (the community uuid)");
    };
    let known = w
        .intended
        .communities()
        .get(&community)
        .filter(|c| c.lifecycle != Lifecycle::Purged);
    let actor = e.actor.clone();
    let mut out = Vec::new();
    let removes = matches!(
        e.event.as_str(),
        "remote.app.removed" | "widget.removed" | "community.prepare.delete"
    );
    if known.is_none() {
        if removes {
            return Err(Refusal::Gone(format!("community {community} is not known")));
        }
        out.push(created(e, community)?);
    }
    let event = |x| out.push(x);
    let mut event = event;
    match e.event.as_str() {
        "remote.app.added" | "widget.added" => {
            let instance = instance(e)?;
            let Some(def) = e.widget_def_id.clone() else {
                return invalid("no widget definition: POST to /lifecycle/{widgetDefId}");
            };
            if known.is_some_and(|c| c.widgets.contains_key(instance.as_str())) {
                return Err(Refusal::Duplicate(format!(
                    "widget instance {instance} exists already in {community}"
                )));
            }
            event(DomainEvent::WidgetAdded(WidgetAdded {
                community,
                instance,
                widget_def_id: def,
                actor,
            }));
        }
        "remote.app.removed" | "widget.removed" => {
            let instance = instance(e)?;
            if !known.is_some_and(|c| c.widgets.contains_key(instance.as_str())) {
                return Err(Refusal::Gone(format!(
                    "{community} has no widget instance {instance}"
                )));
            }
            event(DomainEvent::WidgetRemoved(WidgetRemoved {
                community,
                instance,
                actor,
            }));
        }
        "community.updated" => {
            let name = e
                .name
                .clone()
                .filter(|n| known.is_some_and(|c| *c.name != **n));
            if name.is_some() {
                event(DomainEvent::CommunityUpdated(CommunityUpdated {
                    community,
                    name,
                    actor,
                    ..CommunityUpdated::default()
                }));
            }
        }
        "community.visibility.changed" => {
            let t = community_type(e)?
                .ok_or_else(|| Refusal::Invalid("no communityType property".to_owned()))?;
            let (list, external) = known
                .filter(|_| t == CommunityType::Private)
                .map_or((false, false), |c| (c.list_when_restricted, c.external));
            if known.is_some_and(|c| c.community_type != t) {
                event(DomainEvent::VisibilityChanged(VisibilityChanged {
                    community,
                    community_type: t,
                    list_when_restricted: list,
                    external,
                    actor,
                }));
            }
        }
        "community.prepare.delete" => {
            if known.is_some_and(|c| c.lifecycle == Lifecycle::Active) {
                event(DomainEvent::CommunityTrashed(CommunityRef {
                    community,
                    actor,
                }));
            }
        }
        "community.members.added" | "community.members.removed" | "community.members.modified" => {
            if let Some(c) = known {
                out.extend(membership(e, community, &c.members)?);
            }
        }
        "community.org.changed" => {
            let Some(org) = e.org_id.clone() else {
                return invalid("no communityOrgId property");
            };
            if known.is_some_and(|c| c.org_id.as_deref() != Some(org.as_str())) {
                event(DomainEvent::OrgChanged(OrgChanged {
                    community,
                    org_id: org,
                    actor,
                }));
            }
        }
        // INFERRED (domain.md §3): the instance moved to another community; the entry names
        // neither the app's object nor the other community, so there is nothing to record.
        "remote.app.transfer" => {}
        other => return invalid(format!("unknown lifecycle event '{other}'")),
    }
    let after = check(w, &out)?;
    Ok((out, after))
}

fn instance(e: &Entry) -> Result<String, Refusal> {
    e.instance.clone().filter(|i| !i.is_empty()).ok_or_else(|| {
        Refusal::Invalid(
            "no snx:remoteApplication (or snx:managedApplication) instanceId".to_owned(),
        )
    })
}

fn community_type(e: &Entry) -> Result<Option<CommunityType>, Refusal> {
    match e.community_type.as_deref() {
        None => Ok(None),
        Some("public") => Ok(Some(CommunityType::Public)),
        Some("publicInviteOnly") => Ok(Some(CommunityType::PublicInviteOnly)),
        Some("private") => Ok(Some(CommunityType::Private)),
        Some(other) => invalid(format!(
            "communityType '{other}' is not public, publicInviteOnly or private"
        )),
    }
}

/// A community first heard of in this entry: created from what the container says.
fn created(e: &Entry, community: Uuid) -> Result<DomainEvent, Refusal> {
    let Some(name) = e.name.clone().filter(|n| !n.trim().is_empty()) else {
        return invalid(format!(
            "community {community} is not known and the entry has no name"
        ));
    };
    let owners = e.owners.clone().unwrap_or_default();
    if owners.is_empty() {
        return invalid(format!(
            "community {community} is not known and the entry names no owners"
        ));
    }
    let t = community_type(e)?.unwrap_or(CommunityType::Public);
    let mut c = CommunityCreated::new(community, &name, t, owners.clone());
    c.members = e
        .members
        .iter()
        .flatten()
        .filter(|m| !owners.contains(m))
        .cloned()
        .collect();
    c.org_id = e.org_id.clone();
    c.actor = e.actor.clone();
    Ok(DomainEvent::CommunityCreated(c))
}

/// The membership the entry states (owners and members), against what the ledger holds.
fn membership(e: &Entry, community: Uuid, now: &MemberRoles) -> Result<Vec<DomainEvent>, Refusal> {
    let (Some(owners), Some(members)) = (&e.owners, &e.members) else {
        return invalid("a membership change needs both the owners and members properties");
    };
    let mut stated = MemberRoles::default();
    for m in members {
        stated.set(m, Role::Member);
    }
    for o in owners {
        stated.set(o, Role::Owner);
    }
    Ok(membership_changes(community, now, &stated, e.actor.clone()))
}

/// Each event must be one Connections accepts after the ones before it; returns the world after
/// them all.
fn check(w: &World, events: &[DomainEvent]) -> Result<World, Refusal> {
    let mut w = w.clone();
    let none = crate::Failures::default();
    for (k, e) in events.iter().enumerate() {
        validate(&w, e).map_err(|r| Refusal::Invalid(r.to_string()))?;
        let r = crate::Recorded {
            position: w.position + 1,
            id: Uuid::from_u128(k as u128),
            recorded_ns: 0,
            occurred_ns: 0,
            event: e.clone(),
        };
        w.apply(&r, &none);
    }
    Ok(w)
}
