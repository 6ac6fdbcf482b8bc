//! `import atom DIR`: a directory of saved Communities API responses (communities feeds and
//! entries, the trash feed, members and widgets feeds) compared with what the ledger says
//! Connections holds; what changed is appended as events (created, updated, visibility, parent,
//! members, widgets, trashed, restored — and purged, when the responses are known to be every
//! community), with occurred times from the feeds (`published`, `updated`). Every file is
//! read and every event checked before anything is written, in one commit; a second run on the
//! same files appends nothing.

use crate::atom_api::{document, CommunityEntry, Document, MemberEntry, WidgetEntry};
use crate::cli::Format;
use crate::domain::Point;
use crate::exit::{with_code, ERROR};
use anyhow::Context;
use ledger::{EventId, ImportRecord, Ledger, Timestamp};
use projections::events::*;
use projections::state::MemberRoles;
use projections::{Community, DomainEvent, Failures, Lifecycle, Recorded, Role, World};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use uuid::Uuid;

/// What a set of API responses says.
#[derive(Default)]
pub struct Snapshot {
    communities: BTreeMap<Uuid, CommunityEntry>,
    /// Communities in the trash feed.
    trash: BTreeMap<Uuid, CommunityEntry>,
    members: BTreeMap<Uuid, Vec<MemberEntry>>,
    widgets: BTreeMap<Uuid, Vec<WidgetEntry>>,
    /// Documents read.
    pub documents: usize,
    /// Every page of `communities/all` and of the trash is here: a community the ledger knows
    /// that is in neither was purged.
    pub complete: bool,
}

impl Snapshot {
    /// Takes in one document.
    pub fn add(&mut self, doc: Document) {
        match doc {
            Document::Communities { entries, trash, .. } => {
                let into = if trash {
                    &mut self.trash
                } else {
                    &mut self.communities
                };
                for c in entries {
                    into.insert(c.uuid, c);
                }
            }
            Document::Members { community, members } => {
                self.members.insert(community, members);
            }
            Document::Widgets { community, widgets } => {
                self.widgets.insert(community, widgets);
            }
            // An app is listed once its widget is added: the widgets feed says as much.
            Document::RemoteApplications { .. } => {}
            // App feeds and error bodies say nothing about the communities themselves.
            Document::Activities { .. }
            | Document::Wiki { .. }
            | Document::FilesLibrary { .. }
            | Document::Error { .. } => {}
        }
        self.documents += 1;
    }
}

fn read_dir(dir: &Path) -> anyhow::Result<Snapshot> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "xml" || e == "atom"));
    paths.sort();
    let mut s = Snapshot::default();
    for p in &paths {
        let body = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        let doc = document(&body)
            .map_err(|e| with_code(ERROR, format!("{}: {e}; nothing was imported", p.display())))?;
        s.add(doc);
    }
    Ok(s)
}

fn time(s: &Option<String>) -> Option<Timestamp> {
    s.as_deref().and_then(|t| crate::time_fmt::parse(t).ok())
}

/// The events that bring the ledger's community to what the snapshot shows.
fn changes(
    s: &Snapshot,
    c: &CommunityEntry,
    now: Option<&Community>,
) -> Vec<(DomainEvent, Option<Timestamp>)> {
    let members = s.members.get(&c.uuid);
    let community = c.uuid;
    let Some(now) = now else {
        let mut owners: Vec<String> = members
            .into_iter()
            .flatten()
            .filter(|m| m.role == Role::Owner)
            .map(|m| m.userid.clone())
            .collect();
        if owners.is_empty() {
            // The creator owns a community until said otherwise.
            owners.extend(c.author.iter().cloned());
        }
        let mut e = CommunityCreated::new(community, &c.name, c.community_type, owners.clone());
        e.members = members
            .into_iter()
            .flatten()
            .filter(|m| !owners.contains(&m.userid))
            .map(|m| m.userid.clone())
            .collect();
        e.list_when_restricted = c.list_when_restricted;
        e.external = c.external;
        e.org_id = c.org_id.clone();
        e.theme = c.theme.clone();
        e.pre_moderation = c.pre_moderation;
        e.post_moderation = c.post_moderation;
        e.parent = c.parent;
        e.actor = c.author.clone();
        return vec![(DomainEvent::CommunityCreated(e), time(&c.published))];
    };
    let at = time(&c.updated);
    let mut out = Vec::new();
    let theme = c
        .theme
        .clone()
        .filter(|t| now.theme.as_deref() != Some(t.as_str()));
    let update = CommunityUpdated {
        community,
        name: (*now.name != *c.name).then(|| c.name.clone()),
        theme,
        pre_moderation: (now.pre_moderation != c.pre_moderation).then_some(c.pre_moderation),
        post_moderation: (now.post_moderation != c.post_moderation).then_some(c.post_moderation),
        ..CommunityUpdated::default()
    };
    if update
        != (CommunityUpdated {
            community,
            ..CommunityUpdated::default()
        })
    {
        out.push((DomainEvent::CommunityUpdated(update), at));
    }
    let shown = (c.community_type, c.list_when_restricted, c.external);
    if shown != (now.community_type, now.list_when_restricted, now.external) {
        let v = VisibilityChanged {
            community,
            community_type: c.community_type,
            list_when_restricted: c.list_when_restricted,
            external: c.external,
            actor: None,
        };
        out.push((DomainEvent::VisibilityChanged(v), at));
    }
    if now.parent != c.parent {
        let m = SubcommunityMoved {
            community,
            parent: c.parent,
            actor: None,
        };
        out.push((DomainEvent::SubcommunityMoved(m), at));
    }
    if let Some(members) = members {
        out.extend(membership(community, &now.members, members, at));
    }
    out
}

/// Widget instances added and removed: the feed against what the ledger holds.
fn widget_changes(
    community: Uuid,
    now: &projections::state::Widgets,
    shown: &[WidgetEntry],
    at: Option<Timestamp>,
) -> Vec<(DomainEvent, Option<Timestamp>)> {
    let mut out = Vec::new();
    for w in shown
        .iter()
        .filter(|w| !now.contains_key(w.instance.as_str()))
    {
        let e = WidgetAdded {
            community,
            instance: w.instance.clone(),
            widget_def_id: w.def_id.clone(),
            actor: None,
        };
        out.push((DomainEvent::WidgetAdded(e), time(&w.published).or(at)));
    }
    for instance in now.keys() {
        if !shown.iter().any(|w| *w.instance == **instance) {
            let e = WidgetRemoved {
                community,
                instance: instance.to_string(),
                actor: None,
            };
            out.push((DomainEvent::WidgetRemoved(e), at));
        }
    }
    out
}

fn membership(
    community: Uuid,
    now: &MemberRoles,
    shown: &[MemberEntry],
    at: Option<Timestamp>,
) -> Vec<(DomainEvent, Option<Timestamp>)> {
    let mut wanted = MemberRoles::default();
    for m in shown {
        wanted.set(&m.userid, m.role);
    }
    membership_changes(community, now, &wanted, None)
        .into_iter()
        .map(|e| {
            // Members joined when the feed says; other changes are as of the community's update.
            let when = match &e {
                DomainEvent::MembersAdded(m) => shown
                    .iter()
                    .filter(|s| m.members.contains_key(&s.userid))
                    .filter_map(|s| time(&s.published))
                    .max()
                    .or(at),
                _ => at,
            };
            (e, when)
        })
        .collect()
}

pub fn import_atom(l: &Ledger, dir: &Path, complete: bool, format: Format) -> anyhow::Result<()> {
    let mut s = read_dir(dir)?;
    s.complete = complete;
    import_snapshot(l, &s, format)
}

/// Appends what `s` shows that the ledger lacks, all or nothing.
pub fn import_snapshot(l: &Ledger, s: &Snapshot, format: Format) -> anyhow::Result<()> {
    let point = Point {
        position: l.head(),
        occurred_by: None,
    };
    // The command ends after this: not freed (see `recover::release_at_exit`).
    let mut world = std::mem::ManuallyDrop::new(crate::world::world_at(l, &point, true)?.world);
    // Parents before their subcommunities, then by creation; the trash's too.
    let mut order: Vec<(&CommunityEntry, bool)> = s
        .communities
        .values()
        .map(|c| (c, false))
        .chain(
            s.trash
                .values()
                .filter(|c| !s.communities.contains_key(&c.uuid))
                .map(|c| (c, true)),
        )
        .collect();
    order.sort_by_key(|(c, _)| (c.parent.is_some(), c.published.clone(), c.uuid));
    let none = Failures::default();
    let mut planned: Vec<(DomainEvent, Option<Timestamp>)> = Vec::new();
    let mut plan = |world: &mut World, c: (Uuid, &str), e: DomainEvent, at| {
        projections::validate::validate(world, &e).map_err(|r| {
            with_code(
                ERROR,
                format!(
                    "community {} ({}): {} refused: {r}; nothing was imported",
                    c.0,
                    c.1,
                    e.type_name()
                ),
            )
        })?;
        world.apply(&fake(world, &e), &none);
        planned.push((e, at));
        anyhow::Ok(())
    };
    for (c, trashed) in order {
        // A parent the ledger does not know (not in these files either) is left out.
        let mut c = c.clone();
        c.parent = c
            .parent
            .filter(|p| world.intended.communities().contains_key(p));
        let at = time(&c.updated);
        let was = world
            .intended
            .communities()
            .get(&c.uuid)
            .map(|n| n.lifecycle);
        // Back from the trash before anything else changes it (a trashed community takes no
        // changes).
        if !trashed && was == Some(Lifecycle::Trashed) {
            let e = DomainEvent::CommunityRestored(CommunityRef {
                community: c.uuid,
                actor: None,
            });
            plan(&mut world, (c.uuid, &c.name), e, at)?;
        }
        let now = world.intended.communities().get(&c.uuid).cloned();
        if trashed && was == Some(Lifecycle::Trashed) {
            continue;
        }
        for (e, when) in changes(s, &c, now.as_deref()) {
            plan(&mut world, (c.uuid, &c.name), e, when)?;
        }
        if let Some(shown) = s.widgets.get(&c.uuid) {
            let held = world
                .intended
                .communities()
                .get(&c.uuid)
                .map(|n| n.widgets.clone())
                .unwrap_or_default();
            for (e, when) in widget_changes(c.uuid, &held, shown, at) {
                plan(&mut world, (c.uuid, &c.name), e, when)?;
            }
        }
        if trashed {
            let e = DomainEvent::CommunityTrashed(CommunityRef {
                community: c.uuid,
                actor: None,
            });
            plan(&mut world, (c.uuid, &c.name), e, at)?;
        }
    }
    if s.complete {
        // Known to the ledger, in neither feed: purged.
        let gone: Vec<std::sync::Arc<Community>> = world
            .intended
            .communities()
            .values()
            .filter(|c| c.lifecycle != Lifecycle::Purged)
            .filter(|c| !s.communities.contains_key(&c.uuid) && !s.trash.contains_key(&c.uuid))
            .cloned()
            .collect();
        for c in gone {
            if c.lifecycle == Lifecycle::Active {
                let e = DomainEvent::CommunityTrashed(CommunityRef {
                    community: c.uuid,
                    actor: None,
                });
                plan(&mut world, (c.uuid, &c.name), e, None)?;
            }
            let e = DomainEvent::CommunityPurged(CommunityRef {
                community: c.uuid,
                actor: None,
            });
            plan(&mut world, (c.uuid, &c.name), e, None)?;
        }
    }
    let created = planned
        .iter()
        .filter(|(e, _)| matches!(e, DomainEvent::CommunityCreated(_)))
        .count();
    let written = write(l, &planned)?;
    crate::world::keep_snapshots(l);
    l.close();
    match format {
        Format::Json => crate::output::json_line(&serde_json::json!({
            "documents": s.documents, "communities": s.communities.len(), "created": created,
            "appended": written,
        })),
        Format::Table => {
            println!(
                "read {} documents ({} communities): {created} communities new to the ledger, {written} events appended",
                s.documents,
                s.communities.len()
            );
            Ok(())
        }
    }
}

fn fake(w: &World, e: &DomainEvent) -> Recorded {
    Recorded {
        position: w.position + 1,
        id: Uuid::nil(),
        recorded_ns: 0,
        occurred_ns: 0,
        event: e.clone(),
    }
}

/// Appends every event in one commit, each community's at its stream's next revisions.
fn write(l: &Ledger, planned: &[(DomainEvent, Option<Timestamp>)]) -> anyhow::Result<usize> {
    if planned.is_empty() {
        return Ok(0);
    }
    let now = Timestamp(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        )
        .unwrap_or(i64::MAX),
    );
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut records = Vec::with_capacity(planned.len());
    for (e, at) in planned {
        let stream = e.stream();
        let revision = match next.get(&stream) {
            Some(r) => *r,
            None => l
                .stream_record(&stream)?
                .and_then(|r| r.last_revision)
                .map_or(0, |r| r + 1),
        };
        next.insert(stream.clone(), revision + 1);
        records.push(ImportRecord {
            stream,
            revision,
            recorded: now,
            event: crate::domain::proposed(e, EventId::new_random(), *at),
        });
    }
    let n = records.len();
    l.import_blocking(records)?;
    Ok(n)
}
