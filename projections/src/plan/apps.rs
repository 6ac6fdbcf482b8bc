//! Steps 8–11 of the vendor procedure (domain.md §4): resync what differs, sync shares, and
//! assign each orphan where it belongs or delete its data.

use super::{containers, count_communities, Builder};
use crate::findings::{has_widget, holds, mirror_fields};
use crate::parallel::{side_by_side, Job};
use crate::repair::{Action, Assignment, Doomed, Target};
use crate::state::{Deployment, Mirror, Resource, ResourceKey};
use crate::vocabulary::{App, Database, Lifecycle};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// An app is resynced for every community at once when more than half of its communities
/// differ, and at least this many.
pub const RESYNC_ALL_MIN_COMMUNITIES: usize = 10;

/// What resyncing one app would fix in a state.
struct Drift {
    /// The communities holding the app's data (with its widget).
    total: usize,
    /// Per community, the fields of its resource that differ from Communities.
    differ: BTreeMap<Uuid, Vec<&'static str>>,
}

/// [`Drift`] of `app` in `state`. Of two resources of one app in a community, the one with the
/// greater object id speaks.
fn drift(state: &Deployment, app: App) -> Drift {
    let mut total = 0;
    let mut differ: BTreeMap<Uuid, (&str, Vec<&'static str>)> = BTreeMap::new();
    for (_, held, owner) in state
        .db(app.database())
        .by_community_in(state.communities())
    {
        for r in held.iter().filter(|r| r.app == app) {
            let Some(c) = owner.filter(|c| holds(c, r)) else {
                continue;
            };
            total += 1;
            if r.mirror.agrees_with(c, app) {
                continue;
            }
            let fields = mirror_fields(&Mirror::of(c, app), &r.mirror);
            let names = fields.iter().map(|(f, _, _)| f.name()).collect();
            match differ.get(&c.uuid) {
                Some((other, _)) if *other > &*r.object_id => {}
                _ => {
                    differ.insert(c.uuid, (&r.object_id, names));
                }
            }
        }
    }
    Drift {
        total,
        differ: differ.into_iter().map(|(c, (_, f))| (c, f)).collect(),
    }
}

/// Step 8: resync the apps whose settings differ from Communities (now as the ledger has it).
///
/// Resyncing an app changes that app's resources only, so what each app would fix is found for
/// every app at once on the state before any resync, the apps side by side; the steps then
/// follow in the apps' order, as if each had been found after the one before.
pub(super) fn resync(b: &mut Builder) {
    let before = b.state.clone();
    let jobs: Vec<Job<Drift>> = App::ALL
        .into_iter()
        .map(|app| -> Job<Drift> {
            let state = &before;
            Box::new(move || drift(state, app))
        })
        .collect();
    let drifts = side_by_side(&jobs);
    for (app, Drift { total, differ }) in App::ALL.into_iter().zip(drifts) {
        if differ.is_empty() {
            continue;
        }
        let mut by_field: BTreeMap<&str, usize> = BTreeMap::new();
        for f in differ.values().flatten() {
            *by_field.entry(f).or_default() += 1;
        }
        let fields: Vec<String> = by_field
            .iter()
            .map(|(f, n)| format!("{f} in {n}"))
            .collect();
        let n = differ.len();
        let reason = format!(
            "{n} of the {total} communities with {app} {} from Communities: {}",
            if n == 1 { "differs" } else { "differ" },
            fields.join(", ")
        );
        if n >= RESYNC_ALL_MIN_COMMUNITIES && n * 2 > total {
            b.push(
                Action::ResyncAll { app },
                format!("Resync {app} for every community"),
                reason,
                format!("it ends with \"Done.\"; a new {app}_communityDifferences.html lists none"),
            );
            continue;
        }
        let lines = differ
            .iter()
            .map(|(c, f)| format!("\"{}\" ({c}): {}", b.name(*c), f.join(", ")))
            .collect();
        b.push_with(
            Action::Resync {
                app,
                communities: differ.into_keys().collect(),
            },
            format!("Resync {app} for {}", count_communities(n)),
            reason,
            format!("a new {app}_communityDifferences.html lists none of them"),
            lines,
        );
    }
}

/// Steps 9 and 10: the shares of Files and Activities.
pub(super) fn shares(b: &mut Builder) {
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
            shares_reason(intended.symmetric_difference(&actual).count(), recreated),
            "the command completes; shares of deleted communities are gone".into(),
        );
    }
}

/// Step 11: each orphan is assigned where it belongs, or its data deleted. Communities taken
/// out of the trash to receive one are added to `retrash`.
pub(super) fn orphans(b: &mut Builder, retrash: &mut Vec<Uuid>) {
    let mut assign: BTreeMap<App, Vec<Assignment>> = BTreeMap::new();
    let mut doomed: BTreeMap<App, Vec<Doomed>> = BTreeMap::new();
    let mut undelete: BTreeSet<Uuid> = BTreeSet::new();
    for r in orphaned(&b.state) {
        let Some(ir) = home(b, &r) else {
            doomed.entry(r.app).or_default().push(Doomed {
                object_id: r.object_id.to_string(),
                old_community: r.community,
                name: r.mirror.name.to_string(),
            });
            continue;
        };
        if let Some(t) = b
            .state
            .communities()
            .get(&ir.community)
            .filter(|t| t.lifecycle == Lifecycle::Trashed)
        {
            if r.community == t.uuid && has_widget(t, &r.instance) {
                continue; // in the trash with its community, as the ledger has it
            }
            // assignRemoteApp needs a live community: out of the trash, and back after.
            undelete.insert(t.uuid);
        }
        let target = match b.recreated.get(&ir.community) {
            Some(step) => Target::Recreated {
                community: ir.community,
                step: *step,
            },
            None => Target::Existing {
                community: ir.community,
            },
        };
        assign.entry(r.app).or_default().push(Assignment {
            object_id: r.object_id.to_string(),
            instance: ir.instance.to_string(),
            old_community: r.community,
            target,
        });
    }
    if !undelete.is_empty() {
        let n = undelete.len();
        retrash.extend(undelete.iter().copied());
        b.push(
            Action::Undelete {
                communities: undelete.into_iter().collect(),
            },
            format!(
                "Take {} out of the trash to assign {} data back",
                count_communities(n),
                if n == 1 { "its" } else { "their" }
            ),
            "assignRemoteApp needs a community that is not in the trash".into(),
            "CommunitiesService.fetchCommById(uuid) finds each outside the trash".into(),
        );
    }
    for (app, orphans) in assign {
        push_assign(b, app, orphans);
    }
    for (app, orphans) in doomed {
        push_delete(b, app, orphans);
    }
}

/// App data whose community does not hold it (missing, in the trash, deleted, or without the
/// widget).
///
/// The databases are looked at side by side; the orphans come back database by database, each
/// database's ordered by app and object id.
fn orphaned(d: &Deployment) -> Vec<Resource> {
    let jobs: Vec<Job<Vec<Resource>>> = Database::APPS
        .into_iter()
        .map(|db| -> Job<Vec<Resource>> { Box::new(move || orphaned_in(d, db)) })
        .collect();
    side_by_side(&jobs).into_iter().flatten().collect()
}

fn orphaned_in(d: &Deployment, db: Database) -> Vec<Resource> {
    let mut here: Vec<&Resource> = Vec::new();
    for (_, held, owner) in d.db(db).by_community_in(d.communities()) {
        let orphaned = held.iter().filter(|r| !owner.is_some_and(|c| holds(c, r)));
        here.extend(orphaned.map(|r| &**r));
    }
    here.sort_by(|a, b| (a.app, &a.object_id).cmp(&(b.app, &b.object_id)));
    here.into_iter().cloned().collect()
}

/// Where the ledger has an orphan: its resource there, when its community still exists and
/// has the widget.
fn home(b: &Builder, r: &Resource) -> Option<Resource> {
    let ir = b
        .intended()
        .db(r.app.database())
        .resource(&ResourceKey::of(r))?;
    let ic = b.intended().communities().get(&ir.community)?;
    (ic.lifecycle != Lifecycle::Purged && has_widget(ic, &ir.instance)).then(|| ir.clone())
}

fn push_assign(b: &mut Builder, app: App, orphans: Vec<Assignment>) {
    let n = orphans.len();
    let same = orphans
        .iter()
        .filter(|o| {
            o.target
                == Target::Existing {
                    community: o.old_community,
                }
        })
        .count();
    let recreated = orphans
        .iter()
        .filter(|o| matches!(o.target, Target::Recreated { .. }))
        .count();
    let moved = n - same - recreated;
    let lines: Vec<String> = orphans
        .iter()
        .map(|o| {
            let c = o.target.community();
            match &o.target {
                Target::Recreated { step, .. } => format!(
                    "{} → the recreated \"{}\" (step {step}; fill in NEW_UUID first)",
                    o.object_id,
                    b.name(c)
                ),
                _ if c == o.old_community => {
                    format!(
                        "{} → back to \"{}\" (its widget was lost)",
                        o.object_id,
                        b.name(c)
                    )
                }
                _ => format!("{} → \"{}\", where it was moved", o.object_id, b.name(c)),
            }
        })
        .collect();
    let mut instructions = Vec::new();
    if app == App::Library {
        instructions.push(
            "Library has no assign command: re-add the Library widget to each community and \
             point it at the existing FileNet teamspace"
                .to_owned(),
        );
    }
    instructions.extend(lines);
    b.push_with(
        Action::Assign { app, orphans },
        format!(
            "Assign {} where {}",
            containers(n, app),
            if n == 1 { "it belongs" } else { "they belong" }
        ),
        assign_reason(same, moved, recreated),
        format!(
            "each prints \"Assignment succeeded\"; a new {app}_orphanedRemoteApplications.html \
             lists none of them"
        ),
        instructions,
    );
}

/// Why shares are synced: how many differ, and whether communities were recreated (their new
/// uuids must reach the shares even when none differs yet).
fn shares_reason(differ: usize, recreated: bool) -> String {
    let differ = (differ > 0).then(|| {
        crate::describe::count(differ, "share differs", "shares differ") + " from the ledger"
    });
    match (differ, recreated) {
        (Some(d), true) => format!("{d}, and recreated communities have new uuids to follow"),
        (Some(d), false) => d,
        (None, _) => "recreated communities have new uuids, which their shares must follow".into(),
    }
}

/// Why orphans are assigned: the kinds of orphan among them, those there are none of left out
/// ("it …" for a lone orphan, "all n …" when every one is of a kind).
fn assign_reason(same: usize, moved: usize, recreated: usize) -> String {
    let kinds = [
        (
            same,
            "lost only its community's widget",
            "lost only their community's widget",
        ),
        (
            moved,
            "was moved to another community after the backup",
            "were moved to another community after the backup",
        ),
        (
            recreated,
            "belongs to a recreated community",
            "belong to recreated communities",
        ),
    ];
    let present: Vec<_> = kinds.into_iter().filter(|(n, _, _)| *n > 0).collect();
    match present.as_slice() {
        [(1, single, _)] => format!("it {single}"),
        [(n, _, plural)] => format!("all {n} {plural}"),
        parts => parts
            .iter()
            .map(|(n, single, plural)| crate::describe::count(*n, single, plural))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn push_delete(b: &mut Builder, app: App, orphans: Vec<Doomed>) {
    let n = orphans.len();
    let mut instructions = Vec::new();
    match app {
        App::Forum => instructions.push(
            "fetchForumsByName matches by name: check that each finds only the orphaned forum \
             before deleting"
                .to_owned(),
        ),
        App::Library => instructions
            .push("Library has no delete command: remove each teamspace in FileNet".to_owned()),
        _ => {}
    }
    instructions.extend(
        orphans
            .iter()
            .map(|o| format!("{} of \"{}\" ({})", o.object_id, o.name, o.old_community)),
    );
    b.push_with(
        Action::DeleteOrphans { app, orphans },
        format!("Delete {}", containers(n, app)),
        "their community or widget is gone by the ledger too: nothing should hold them".into(),
        format!("a new {app}_orphanedRemoteApplications.html lists none of them"),
        instructions,
    );
}

#[cfg(test)]
mod tests {
    use super::{assign_reason, shares_reason};

    #[test]
    fn an_assignment_names_only_the_kinds_of_orphan_it_has_in_words_that_agree() {
        assert_eq!(
            assign_reason(0, 0, 1),
            "it belongs to a recreated community"
        );
        assert_eq!(
            assign_reason(0, 13, 0),
            "all 13 were moved to another community after the backup"
        );
        assert_eq!(
            assign_reason(5, 0, 3),
            "5 lost only their community's widget, 3 belong to recreated communities"
        );
        assert_eq!(
            assign_reason(1, 2, 0),
            "1 lost only its community's widget, 2 were moved to another community after the \
             backup"
        );
    }

    #[test]
    fn a_share_sync_says_how_many_differ_and_leaves_out_none() {
        assert_eq!(shares_reason(1, false), "1 share differs from the ledger");
        assert_eq!(
            shares_reason(9, true),
            "9 shares differ from the ledger, and recreated communities have new uuids to follow"
        );
        assert_eq!(
            shares_reason(0, true),
            "recreated communities have new uuids, which their shares must follow"
        );
    }
}
