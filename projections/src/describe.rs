//! One line of plain words per event, for findings, runbooks and the owners' notices.

use crate::events::{DomainEvent, QueueScope};

/// `n` and the noun that agrees with it: `count(1, "share", "shares")` is "1 share", with 0
/// or 3 it is "0 shares", "3 shares".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the event changed, e.g. `members added: bob (member), carol (owner)`.
pub fn describe(e: &DomainEvent) -> String {
    use DomainEvent::*;
    match e {
        CommunityCreated(c) => format!(
            "community created: \"{}\" ({}), owners {}",
            c.name,
            c.community_type,
            c.owners.join(", ")
        ),
        CommunityUpdated(u) => {
            let mut parts = Vec::new();
            if let Some(v) = &u.name {
                parts.push(format!("name \"{v}\""));
            }
            if u.description.is_some() {
                parts.push("description".to_owned());
            }
            if let Some(v) = &u.tags {
                parts.push(format!("tags [{}]", v.join(", ")));
            }
            if let Some(v) = &u.theme {
                parts.push(format!("theme {v}"));
            }
            if let Some(v) = u.pre_moderation {
                parts.push(format!("preModeration {v}"));
            }
            if let Some(v) = u.post_moderation {
                parts.push(format!("postModeration {v}"));
            }
            format!("community updated: {}", parts.join(", "))
        }
        VisibilityChanged(v) => {
            let mut s = format!("visibility changed to {}", v.community_type);
            if v.list_when_restricted {
                s.push_str(", listed when restricted");
            }
            if v.external {
                s.push_str(", external");
            }
            s
        }
        MembersAdded(m) | MembersModified(m) => {
            let verb = if matches!(e, MembersAdded(_)) {
                "members added"
            } else {
                "roles changed"
            };
            let who: Vec<String> = m
                .members
                .iter()
                .map(|(u, r)| format!("{u} ({r})"))
                .collect();
            format!("{verb}: {}", who.join(", "))
        }
        MembersRemoved(m) => format!("members removed: {}", m.users.join(", ")),
        OrgChanged(o) => format!("organization changed to {}", o.org_id),
        WidgetAdded(w) => format!("widget {} added (instance {})", w.widget_def_id, w.instance),
        WidgetRemoved(w) => format!("widget instance {} removed", w.instance),
        RemoteAppProvisioned(p) => format!("{} created its container {}", p.app, p.object_id),
        RemoteAppTransferred(t) => format!(
            "{} {} moved from community {} to {}",
            t.app, t.object_id, t.from_community, t.to_community
        ),
        CommunityTrashed(_) => "community moved to the trash".to_owned(),
        CommunityRestored(_) => "community restored from the trash".to_owned(),
        CommunityPurged(_) => "community deleted for good".to_owned(),
        SubcommunityMoved(m) => match m.parent {
            Some(p) => format!("made a subcommunity of {p}"),
            None => "made a top-level community".to_owned(),
        },
        CommunityShareAdded(s) => format!("{} {} shared with the community", s.app, s.object_id),
        CommunityShareRemoved(s) => format!("{} {} no longer shared", s.app, s.object_id),
        DeliveryFailed(d) => format!("delivery of {} to {} failed", d.event, d.app),
        DeliveryRetried(d) => format!("delivery of {} to {} retried", d.event, d.app),
        QueueCleared(q) => match &q.scope {
            QueueScope::RemoteApp { app } => format!("queued events for {app} cleared"),
            QueueScope::ResourceType => "every queued community event cleared".to_owned(),
            QueueScope::Community { community } => {
                format!("queued events of community {community} cleared")
            }
            QueueScope::Event { event } => format!("queued event {event} cleared"),
        },
        TaskPaused(t) => format!("task {} paused", t.task),
        TaskResumed(t) => format!("task {} resumed", t.task),
        BackupTaken(b) => format!("{} backed up as {}", b.database, b.label),
        DatabaseRestored(d) => format!("{} restored from {}", d.database, d.backup),
        RepairPlanned(r) => format!("repair plan {} recorded", r.plan),
        RepairStepApplied(r) => match r.step {
            Some(s) => format!("step {s} of repair plan {} done", r.plan),
            None => format!("repair plan {} done", r.plan),
        },
    }
}
