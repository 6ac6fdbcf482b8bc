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
        RepairPlanned(r) => format!(
            "repair plan {} recorded{}",
            short_plan(&r.plan),
            r.steps
                .map(|n| format!(" ({})", count(n as usize, "step", "steps")))
                .unwrap_or_default()
        ),
        RepairStepPlanned(r) => match &r.action {
            Some(a) => format!("{} will do: {}", step_of(r), action(a)),
            None => format!("{} planned", step_of(r)),
        },
        RepairStepApplied(r) => match &r.action {
            Some(a) => format!("{} done: {}", step_of(r), action(a)),
            None => format!("{} done", step_of(r)),
        },
    }
}

/// `step 4 of repair plan 1df7c35f63f3 (part 2 of 3)`, or the plan alone for an event that
/// names no step.
fn step_of(r: &crate::events::Repair) -> String {
    let plan = short_plan(&r.plan);
    match r.step {
        Some(s) => format!("step {s} of repair plan {plan}{}", part(r)),
        None => format!("repair plan {plan}"),
    }
}

/// ` (part 2 of 3)` for an event carrying one part of a step's action, else nothing.
fn part(r: &crate::events::Repair) -> String {
    match (r.part, r.parts) {
        (Some(i), Some(n)) if n > 1 => format!(" (part {i} of {n})"),
        _ => String::new(),
    }
}

/// A plan id as tables, runbooks and `plan done` show it: its first 12 characters (the whole
/// id is in the stream name).
pub fn short_plan(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// What a repair step does, in a few words: `Files resynced (3 communities)`.
pub fn action(a: &crate::repair::Action) -> String {
    use crate::repair::Action::*;
    let communities = |n: usize| count(n, "community", "communities");
    match a {
        BlockUsers => "users kept out".into(),
        PauseRetries => "queued retries paused".into(),
        ClearQueueByApp { app } => format!("queued events for {app} cleared"),
        ClearQueueAll => "every queued community event cleared".into(),
        ExportAndReport { app } => format!("{app} synced resources exported and reported"),
        ResumeRetries => "queued retries resumed".into(),
        RetryQueued => "queued events retried".into(),
        UnblockUsers => "users let back in".into(),
        Recreate { community } => format!("community {community} recreated"),
        Undelete { communities: c } => format!("{} out of the trash", communities(c.len())),
        Reapply { communities: c } => format!(
            "{} redone in {}",
            count(c.iter().map(|r| r.changes.len()).sum(), "change", "changes"),
            communities(c.len())
        ),
        Resync {
            app,
            communities: c,
        } => format!("{app} resynced ({})", communities(c.len())),
        ResyncAll { app } => format!("{app} resynced (every community)"),
        SyncShares { app } => format!("{app} shares synced"),
        Assign { app, orphans } => format!(
            "{} assigned",
            count(
                orphans.len(),
                &format!("{app} orphan"),
                &format!("{app} orphans")
            )
        ),
        DeleteOrphans { app, orphans } => format!(
            "{} deleted",
            count(
                orphans.len(),
                &format!("{app} orphan's data"),
                &format!("{app} orphans' data")
            )
        ),
        ContactOwners { told } => format!(
            "owners told ({} no command brings back)",
            count(told.len(), "item", "items")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Repair;
    use crate::repair::Action;

    fn step(part: Option<u32>, parts: Option<u32>, action: Option<Action>) -> Repair {
        Repair {
            plan: "1df7c35f63f3aaaa".into(),
            step: Some(4),
            steps: None,
            at: None,
            actions: Vec::new(),
            action,
            part,
            parts,
            actor: None,
        }
    }

    /// A step's events say which step, which part of its action when it comes in several, and
    /// what it does or did.
    #[test]
    fn repair_steps_say_their_step_part_and_action() {
        let resync = || {
            Some(Action::Resync {
                app: crate::vocabulary::App::Files,
                communities: vec![uuid::Uuid::nil(); 3],
            })
        };
        assert_eq!(
            describe(&DomainEvent::RepairStepPlanned(step(Some(2), Some(3), resync()))),
            "step 4 of repair plan 1df7c35f63f3 (part 2 of 3) will do: Files resynced (3 communities)"
        );
        assert_eq!(
            describe(&DomainEvent::RepairStepApplied(step(None, None, resync()))),
            "step 4 of repair plan 1df7c35f63f3 done: Files resynced (3 communities)"
        );
        assert_eq!(
            describe(&DomainEvent::RepairStepApplied(step(None, None, None))),
            "step 4 of repair plan 1df7c35f63f3 done"
        );
    }
}
