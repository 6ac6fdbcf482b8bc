//! Bringing the Communities database back to what the ledger says: recreate what it lost,
//! take out of the trash what should not be there, redo the changes it lost; and the
//! communities that leave the trash only for their repair go back at the end.

use super::{count_communities, were, Builder};
use crate::describe::describe;
use crate::events::*;
use crate::findings::has_widget;
use crate::repair::{Action, Redo};
use crate::state::{Ascending, Community, Mirror, Text};
use crate::vocabulary::{App, Database, Lifecycle, Role};
use std::sync::Arc;
use uuid::Uuid;

/// Recreates, undeletes and redoes (a community the ledger has in the trash goes there now; the
/// orphans step takes it out again if data must be assigned to it).
///
/// Each pass walks the intended communities and the current ones side by side, in ascending
/// order (persistent maps, so taking the current ones is a pointer copy), and a community that
/// is the same value in both is passed over without comparing its fields.
pub(super) fn phase(b: &mut Builder) {
    let intended = b.intended().communities().clone();
    // Recreating adds only the community recreated: the ones missing before the first
    // recreation are the candidates, each checked again when its turn comes.
    let before = b.state.communities().clone();
    let mut current = Ascending::new(&before);
    // The maps' entries are read first: a community is read only where they disagree.
    let missing: Vec<Arc<Community>> = intended
        .iter()
        .filter(|(id, c)| current.get(**id).is_none() && c.lifecycle != Lifecycle::Purged)
        .map(|(_, c)| c.clone())
        .collect();
    for ic in &missing {
        if !b.state.communities().contains_key(&ic.uuid) {
            recreate(b, ic);
        }
    }
    let now = b.state.communities().clone();
    let mut current = Ascending::new(&now);
    let undelete: Vec<Uuid> = intended
        .iter()
        .filter(|(id, ic)| {
            current.get(**id).is_some_and(|ac| {
                !Arc::ptr_eq(ic, ac)
                    && ic.lifecycle == Lifecycle::Active
                    && ac.lifecycle == Lifecycle::Trashed
            })
        })
        .map(|(_, ic)| ic.uuid)
        .collect();
    if !undelete.is_empty() {
        let n = undelete.len();
        b.push(
            Action::Undelete {
                communities: undelete,
            },
            format!("Restore {} from the trash", count_communities(n)),
            format!("{} restored from the trash after the backup", were(n)),
            "CommunitiesService.fetchCommById(uuid) finds each outside the trash".into(),
        );
    }
    let mut redo = Vec::new();
    let mut lines = Vec::new();
    let now = b.state.communities().clone();
    let mut current = Ascending::new(&now);
    for (&id, ic) in intended.iter() {
        let Some(ac) = current.get(id) else {
            continue;
        };
        if Arc::ptr_eq(ic, ac) {
            continue; // the same value: nothing to redo
        }
        let changes = changes_between(ic, ac);
        if !changes.is_empty() {
            let what: Vec<String> = changes.iter().map(describe).collect();
            lines.push(format!(
                "\"{}\" ({}): {}",
                ic.name,
                ic.uuid,
                what.join("; ")
            ));
            redo.push(Redo {
                community: ic.uuid,
                changes,
            });
        }
    }
    if !redo.is_empty() {
        let n = redo.len();
        let changes: usize = redo.iter().map(|r| r.changes.len()).sum();
        b.push_with(
            Action::Reapply { communities: redo },
            format!("Redo in Communities what {} lost", count_communities(n)),
            format!(
                "the Communities database no longer holds {}; made \
                 again through Communities (its web interface or its API, by the owners or an \
                 administrator), each reaches the apps as it did the first time",
                crate::describe::count(changes, "recorded change", "recorded changes")
            ),
            "`lifeline recover` shows no Communities difference against the ledger".into(),
            lines,
        );
    }
}

fn recreate(b: &mut Builder, ic: &Community) {
    let owners: Vec<&str> = ic.owners().collect();
    let members: Vec<&str> = ic
        .members
        .iter()
        .filter(|(_, r)| **r == Role::Member)
        .map(|(u, _)| &**u)
        .collect();
    let apps: Vec<&Text> = ic
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

fn join<S: AsRef<str>>(v: &[S]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(", ")
    }
}

/// The changes that make `ac` equal `ic` again (widgets added come back through assign).
pub(super) fn changes_between(ic: &Community, ac: &Community) -> Vec<DomainEvent> {
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
    fn differs<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
        a != b && a.is_some()
    }
    let update = CommunityUpdated {
        community,
        name: (ic.name != ac.name).then(|| ic.name.to_string()),
        description: differs(&ic.description, &ac.description)
            .then(|| ic.description.clone())
            .flatten(),
        tags: (ic.tags != ac.tags).then(|| ic.tags.clone()),
        theme: differs(&ic.theme, &ac.theme)
            .then(|| ic.theme.as_deref().map(str::to_owned))
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
            org_id: ic.org_id.as_deref().unwrap_or_default().to_owned(),
            actor: None,
        }));
    }
    out.extend(membership_changes(
        community,
        &ac.members,
        &ic.members,
        None,
    ));
    for (instance, def) in ac.widgets.iter() {
        if !ic.widgets.contains_key(instance) && App::from_widget_def_id(def).is_some() {
            out.push(DomainEvent::WidgetRemoved(WidgetRemoved {
                community,
                instance: instance.to_string(),
                actor: None,
            }));
        }
    }
    let r = CommunityRef {
        community,
        actor: None,
    };
    match (ic.lifecycle, ac.lifecycle) {
        (Lifecycle::Trashed, Lifecycle::Active) => out.push(DomainEvent::CommunityTrashed(r)),
        (Lifecycle::Purged, l) if l != Lifecycle::Purged => {
            out.push(DomainEvent::CommunityPurged(r))
        }
        _ => {}
    }
    out
}

/// Apps cannot be resynced for a community in the trash: when one holds stale settings of such
/// a community, the community comes out of the trash for the resync and goes back after it
/// (the vendor's advice for trashed communities, domain.md §4).
pub(super) fn untrash(b: &mut Builder) -> Vec<Uuid> {
    let stale: Vec<Uuid> = b
        .state
        .communities()
        .values()
        .filter(|c| c.lifecycle == Lifecycle::Trashed)
        .filter(|c| {
            Database::APPS.into_iter().any(|db| {
                b.state
                    .db(db)
                    .resources_of(c.uuid)
                    .any(|r| has_widget(c, &r.instance) && r.mirror != Mirror::of(c, r.app))
            })
        })
        .map(|c| c.uuid)
        .collect();
    if !stale.is_empty() {
        let n = stale.len();
        b.push(
            Action::Undelete {
                communities: stale.clone(),
            },
            format!(
                "Take {} out of the trash for {} resync",
                count_communities(n),
                if n == 1 { "its" } else { "their" }
            ),
            format!(
                "{} apps hold stale settings, and a community in the trash cannot be resynced",
                if n == 1 { "its" } else { "their" }
            ),
            "CommunitiesService.fetchCommById(uuid) finds each outside the trash".into(),
        );
    }
    stale
}

/// Moves `communities` (back) into the trash, where the ledger has them.
pub(super) fn retrash(b: &mut Builder, mut communities: Vec<Uuid>) {
    communities.sort();
    communities.dedup();
    if communities.is_empty() {
        return;
    }
    let n = communities.len();
    let lines: Vec<String> = communities
        .iter()
        .map(|c| format!("\"{}\" ({c}): move to the trash", b.name(*c)))
        .collect();
    let redo = communities
        .into_iter()
        .map(|community| Redo {
            community,
            changes: vec![DomainEvent::CommunityTrashed(CommunityRef {
                community,
                actor: None,
            })],
        })
        .collect();
    b.push_with(
        Action::Reapply { communities: redo },
        format!("Move {} (back) into the trash", count_communities(n)),
        "the ledger has them in the trash; they were out of it for their repair, or the \
         Communities database lost the move"
            .into(),
        "each is in CommunitiesService.getSoftDeletedCommunityUuidList()".into(),
        lines,
    );
}
