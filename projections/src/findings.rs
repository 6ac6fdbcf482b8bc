//! Recovery analysis at a point: where the databases disagree with each other and with the
//! intended state, and which recorded changes a restore (or a cleared queue) took away.
//! A finding is data with its evidence; nothing here fails.

use crate::describe::describe;
use crate::fold::{Recorded, World};
use crate::parallel::{side_by_side, Job};
use crate::reach::{lost_and_world_from, Fate, Loss};
use crate::state::{Community, DbState, MemberRoles, Mirror, Resource, Text};
use crate::vocabulary::{App, Database, Lifecycle, Role};
use imbl::ordmap::DiffItem;
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// A restore the findings account for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restore {
    pub database: Database,
    pub backup: String,
    /// The backup holds the database as it stood after this position.
    pub backup_position: u64,
    /// Where the restore stands in the log.
    pub position: u64,
    /// A restore asked about (`--restore`), not one that happened.
    pub what_if: bool,
}

impl Restore {
    /// "Files was restored from files-mon (the database as of position 1234)".
    pub fn describe(&self) -> String {
        format!(
            "{} {} from {} (the database as of position {})",
            self.database,
            if self.what_if {
                "would be restored"
            } else {
                "was restored"
            },
            self.backup,
            self.backup_position
        )
    }
}

/// What a value was compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Against {
    /// The Communities database (what `generateSyncReports` compares).
    Communities,
    /// What the database should hold by the ledger.
    Intended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    Exists,
    Name,
    Type,
    ListWhenRestricted,
    External,
    OrgId,
    Theme,
    PreModeration,
    PostModeration,
    Members,
    Lifecycle,
    Parent,
    Description,
    Tags,
    Widgets,
    Community,
    Instance,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Exists => "exists",
            Field::Name => "name",
            Field::Type => "type",
            Field::ListWhenRestricted => "listWhenRestricted",
            Field::External => "external",
            Field::OrgId => "orgId",
            Field::Theme => "theme",
            Field::PreModeration => "preModeration",
            Field::PostModeration => "postModeration",
            Field::Members => "members",
            Field::Lifecycle => "lifecycle",
            Field::Parent => "parent",
            Field::Description => "description",
            Field::Tags => "tags",
            Field::Widgets => "widgets",
            Field::Community => "community",
            Field::Instance => "instance",
        }
    }

    /// Whether `resyncRemoteApps…` carries it to an app (domain.md §1, §4: visibility, theme,
    /// moderation flags, and — INFERRED — name, organization and membership, which the
    /// lifecycle events it re-fires carry).
    pub fn resyncable(self) -> bool {
        !matches!(
            self,
            Field::Exists | Field::Lifecycle | Field::Community | Field::Instance
        )
    }
}

/// One value that differs, with both sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub community: Uuid,
    pub community_name: String,
    /// The database whose value is `found`.
    pub database: Database,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<App>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    pub against: Against,
    pub field: Field,
    pub expected: String,
    pub found: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OrphanReason {
    CommunityMissing,
    CommunityTrashed,
    CommunityPurged,
    WidgetMissing,
}

/// What should become of an orphan, by the intended state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Disposition {
    /// The community exists but lacks the widget: assign it back to the same community.
    AssignSame,
    /// The resource belongs to another community (a transfer was lost): assign it there.
    AssignTo { community: Uuid },
    /// The community itself was lost: recreate it, then assign the resource to the new one.
    Recreate,
    /// The community should not be in the trash: restore it from there.
    Undelete,
    /// The community is in the trash in the intended state too: nothing to do until it is
    /// purged (which removes the data) or restored.
    InTrash,
    /// The community is really gone, or the widget was removed: delete the orphaned data.
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Orphan {
    pub app: App,
    /// The report's "Object Identifying Id".
    pub object_id: String,
    pub instance: String,
    /// The community the app believes it belongs to (`oldCommunityUuid`).
    pub old_community: Uuid,
    /// The community name as the app holds it.
    pub name: String,
    pub reason: OrphanReason,
    pub disposition: Disposition,
}

/// A widget with no data in its app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Missing {
    pub community: Uuid,
    pub community_name: String,
    pub app: App,
    pub instance: String,
    /// The Communities database has the widget (the vendor's reports can see this one).
    pub known_to_communities: bool,
    /// The container the app should hold, by the ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intended_object_id: Option<String>,
}

/// A recorded change that a database no longer holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LostChange {
    pub database: Database,
    pub position: u64,
    pub event_id: Uuid,
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community: Option<Uuid>,
    pub community_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub occurred_ns: i64,
    pub summary: String,
    /// Where it was lost, and how.
    pub lost_at: u64,
    pub loss: Loss,
}

/// A queued retry that would replay an event onto a database restored since it was queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaleEntry {
    pub event_id: Uuid,
    pub position: u64,
    pub event_type: String,
    pub community: Uuid,
    pub app: App,
    /// The restore that made it stale.
    pub restored: Database,
    pub restored_at: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Findings {
    pub position: u64,
    pub restores: Vec<Restore>,
    pub differences: Vec<Difference>,
    pub orphans: Vec<Orphan>,
    pub missing: Vec<Missing>,
    pub lost: Vec<LostChange>,
    pub stale_queue: Vec<StaleEntry>,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
            && self.orphans.is_empty()
            && self.missing.is_empty()
            && self.lost.is_empty()
            && self.stale_queue.is_empty()
    }

    /// Databases that lost data in an open restore.
    pub fn restored(&self) -> Vec<Database> {
        let mut out: Vec<Database> = self.restores.iter().map(|r| r.database).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// What to analyse: `events` are the domain events up to the point (with any what-if restores
/// appended after `head`); restores and losses at or before `since` were already repaired.
pub struct Input<'a> {
    pub events: &'a [Recorded],
    pub head: u64,
    pub since: u64,
}

/// The findings, and the world they were drawn from.
pub fn analyze(input: &Input) -> (Findings, World) {
    let none = || Ok::<_, std::convert::Infallible>(Vec::new());
    match analyze_from(World::default(), input, none) {
        Ok(analysed) => analysed,
        Err(never) => match never {},
    }
}

/// [`analyze`] for `input.events` that continue `start`, a world at an earlier point (a
/// snapshot). Every restore after `input.since` must be among the events, and so must every
/// backup that a restore among them restores (see [`reach_and_world_from`]). `earlier` gives
/// the events before the start that wait in its retry queue, which a later restore or queue
/// clear may lose; it is asked once the events are folded, so that a caller may read them
/// meanwhile, and its error is handed back.
pub fn analyze_from<E>(
    start: World,
    input: &Input,
    earlier: impl FnOnce() -> Result<Vec<Recorded>, E>,
) -> Result<(Findings, World), E> {
    let (fates, world) = lost_and_world_from(start, input.events);
    let earlier = earlier()?;
    let restores = restores(input, &world);
    // The lost changes are one more pass beside the others.
    let lost: Job<Pass> = Box::new(|| Pass::Lost(lost(input, &earlier, &world, &fates)));
    let f = of_world_and(&world, restores, Some(lost));
    Ok((f, world))
}

/// The findings that states alone show (all but the lost changes, which need the history):
/// enough to compare what-if restores quickly.
pub fn of_world(world: &World, restores: Vec<Restore>) -> Findings {
    of_world_and(world, restores, None)
}

/// [`of_world`], with the lost changes that `lost` finds (a [`Pass::Lost`]) when given.
fn of_world_and<'a>(
    world: &'a World,
    restores: Vec<Restore>,
    lost: Option<Job<'a, Pass>>,
) -> Findings {
    // The Communities database, each app database, the missing resources and the lost
    // changes are separate passes over the same world: they run side by side, the longest
    // first.
    let mut jobs: Vec<Job<Pass>> = vec![Box::new(|| Pass::Missing(missing(world)))];
    jobs.extend(lost);
    jobs.push(Box::new(|| {
        Pass::Found(communities_against_intended(world), Vec::new())
    }));
    for db in Database::APPS {
        jobs.push(Box::new(move || {
            let (d, o) = app_database(world, db);
            Pass::Found(d, o)
        }));
    }
    let (mut differences, mut orphans, mut missing, mut lost) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for pass in side_by_side(&jobs) {
        match pass {
            Pass::Found(d, o) => {
                differences.extend(d);
                orphans.extend(o);
            }
            Pass::Missing(m) => missing = m,
            Pass::Lost(l) => lost = l,
        }
    }
    let mut f = Findings {
        position: world.position,
        differences,
        orphans,
        missing,
        lost,
        stale_queue: stale(world, &restores),
        restores,
    };
    // Resources were visited in hash order: the key ends with the resource, so that the
    // order is the same whatever the visit's.
    f.differences.sort_by(|a, b| {
        (
            a.against,
            a.community,
            a.database,
            a.field,
            a.app,
            &a.object_id,
        )
            .cmp(&(
                b.against,
                b.community,
                b.database,
                b.field,
                b.app,
                &b.object_id,
            ))
    });
    f.orphans.sort_by(|a, b| {
        (a.app.database(), a.app, &a.object_id).cmp(&(b.app.database(), b.app, &b.object_id))
    });
    f
}

fn restores(input: &Input, world: &World) -> Vec<Restore> {
    input
        .events
        .iter()
        .filter(|r| r.position > input.since)
        .filter_map(|r| match &r.event {
            crate::DomainEvent::DatabaseRestored(d) => {
                let b = world.backups.get(&d.backup)?;
                (b.database == d.database).then(|| Restore {
                    database: d.database,
                    backup: d.backup.clone(),
                    backup_position: b.position,
                    position: r.position,
                    what_if: r.position > input.head,
                })
            }
            _ => None,
        })
        .collect()
}

fn name_of(w: &World, c: Uuid) -> String {
    w.community(c)
        .map_or_else(|| "(unknown)".to_owned(), |c| c.name.to_string())
}

fn text<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "(none)".to_owned(), T::to_string)
}

/// The membership as a short value, and what `found` lacks or has extra compared with
/// `expected`.
pub fn members_text(expected: &MemberRoles, found: &MemberRoles) -> (String, String) {
    let count = |m: &MemberRoles| {
        let owners = m.values().filter(|r| **r == Role::Owner).count();
        format!(
            "{} ({})",
            m.len(),
            crate::describe::count(owners, "owner", "owners")
        )
    };
    // One walk of both maps in user order (they are sorted), not a search for each member.
    let (mut lacks, mut extra, mut roles) = (Vec::new(), Vec::new(), Vec::new());
    let (mut e, mut x) = (expected.iter().peekable(), found.iter().peekable());
    loop {
        let order = match (e.peek(), x.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            // Equal users are usually the same text: compared by pointer first.
            (Some((eu, _)), Some((xu, _))) if eu == xu => Ordering::Equal,
            (Some((eu, _)), Some((xu, _))) => eu.cmp(xu),
        };
        match order {
            Ordering::Less => {
                let (u, r) = e.next().expect("peeked");
                lacks.push(format!("{u} ({r})"));
            }
            Ordering::Greater => {
                let (u, r) = x.next().expect("peeked");
                extra.push(format!("{u} ({r})"));
            }
            Ordering::Equal => {
                let ((_, er), (u, xr)) = (e.next().expect("peeked"), x.next().expect("peeked"));
                if er != xr {
                    roles.push(format!("{u} {xr} not {er}"));
                }
            }
        }
    }
    let mut notes = Vec::new();
    if !lacks.is_empty() {
        notes.push(format!("lacks {}", lacks.join(", ")));
    }
    if !extra.is_empty() {
        notes.push(format!("extra {}", extra.join(", ")));
    }
    if !roles.is_empty() {
        notes.push(format!("roles: {}", roles.join(", ")));
    }
    (
        count(expected),
        format!("{}: {}", count(found), notes.join("; ")),
    )
}

/// Adds field `f` to `out` when `e` and `x` differ: compared as values, shown as text only
/// where they differ (most never do).
fn cmp<T: PartialEq>(
    out: &mut Vec<(Field, String, String)>,
    f: Field,
    e: &T,
    x: &T,
    show: impl Fn(&T) -> String,
) {
    if e != x {
        out.push((f, show(e), show(x)));
    }
}

/// The fields in which `found` differs from `expected`, with both values.
pub fn mirror_fields(expected: &Mirror, found: &Mirror) -> Vec<(Field, String, String)> {
    let mut out = Vec::new();
    let (e, x) = (expected, found);
    cmp(&mut out, Field::Name, &e.name, &x.name, |n| n.to_string());
    cmp(
        &mut out,
        Field::Type,
        &e.community_type,
        &x.community_type,
        ToString::to_string,
    );
    cmp(
        &mut out,
        Field::ListWhenRestricted,
        &e.list_when_restricted,
        &x.list_when_restricted,
        ToString::to_string,
    );
    cmp(
        &mut out,
        Field::External,
        &e.external,
        &x.external,
        ToString::to_string,
    );
    cmp(&mut out, Field::OrgId, &e.org_id, &x.org_id, text);
    cmp(&mut out, Field::Theme, &e.theme, &x.theme, text);
    cmp(
        &mut out,
        Field::PreModeration,
        &e.pre_moderation,
        &x.pre_moderation,
        text,
    );
    cmp(
        &mut out,
        Field::PostModeration,
        &e.post_moderation,
        &x.post_moderation,
        text,
    );
    cmp(
        &mut out,
        Field::Lifecycle,
        &e.lifecycle,
        &x.lifecycle,
        |l| format!("{l:?}").to_lowercase(),
    );
    if let (Some(e), Some(x)) = (&e.members, &x.members) {
        if !Arc::ptr_eq(e, x) && e != x {
            let (e, x) = members_text(e, x);
            out.push((Field::Members, e, x));
        }
    }
    out
}

/// The fields in which one community differs from another in the Communities database.
pub fn community_fields(expected: &Community, found: &Community) -> Vec<(Field, String, String)> {
    // Everything an app mirrors, seen from the Communities side…
    let mut out: Vec<(Field, String, String)> = mirror_fields(
        &Mirror::of(expected, App::Files),
        &Mirror::of(found, App::Files),
    );
    // …and what only Communities keeps.
    let (e, x) = (expected, found);
    cmp(&mut out, Field::Parent, &e.parent, &x.parent, text);
    cmp(
        &mut out,
        Field::Description,
        &e.description,
        &x.description,
        text,
    );
    cmp(&mut out, Field::Tags, &e.tags, &x.tags, |t| t.join(", "));
    cmp(&mut out, Field::Widgets, &e.widgets, &x.widgets, |w| {
        w.iter()
            .map(|(i, d)| format!("{d} {i}"))
            .collect::<Vec<_>>()
            .join(", ")
    });
    out
}

/// Whether a resource's community holds it: present, not purged or trashed, with its widget.
pub fn owner_of<'a>(
    communities: &'a OrdMap<Uuid, Arc<Community>>,
    r: &Resource,
) -> Option<&'a Community> {
    communities
        .get(&r.community)
        .map(|c| &**c)
        .filter(|c| holds(c, r))
}

/// Whether `c` holds `r`: active, with its widget.
pub(crate) fn holds(c: &Community, r: &Resource) -> bool {
    c.lifecycle == Lifecycle::Active && has_widget(c, &r.instance)
}

/// Whether `c` has the widget `instance`. A resource's instance is usually the very text its
/// community's widget map holds (shared when a snapshot is read and when the resource is
/// provisioned or assigned): looking at the keys' pointers first finds it without reading any
/// key's characters, which, one allocation each, were most of the passes' memory reads.
pub(crate) fn has_widget(c: &Community, instance: &Text) -> bool {
    c.widgets.keys().any(|k| Arc::ptr_eq(k, instance)) || c.widgets.contains_key(instance)
}

/// What one pass of [`of_world`] finds.
enum Pass {
    Found(Vec<Difference>, Vec<Orphan>),
    Missing(Vec<Missing>),
    Lost(Vec<LostChange>),
}

/// A difference found in `w`.
fn difference(
    w: &World,
    c: Uuid,
    db: Database,
    r: Option<&Resource>,
    against: Against,
    (field, expected, found): (Field, String, String),
) -> Difference {
    Difference {
        community: c,
        community_name: name_of(w, c),
        database: db,
        app: r.map(|r| r.app),
        object_id: r.map(|r| r.object_id.to_string()),
        against,
        field,
        expected,
        found,
    }
}

/// The Communities database against the intended state.
fn communities_against_intended(w: &World) -> Vec<Difference> {
    let mut out = Vec::new();
    let diff = |c, r, against, field, e, x| {
        difference(w, c, Database::Communities, r, against, (field, e, x))
    };
    // A merge of the two maps that yields only what differs (equal values are pointer-equal
    // where both deployments share the community).
    for item in w.intended.communities().diff(w.actual.communities()) {
        match item {
            DiffItem::Update {
                old: (id, i),
                new: (_, a),
            } => {
                for (f, e, x) in community_fields(i, a) {
                    out.push(diff(*id, None, Against::Intended, f, e, x));
                }
            }
            DiffItem::Remove(id, i) if i.lifecycle != Lifecycle::Purged => {
                let (e, x) = ("exists".to_owned(), "missing".to_owned());
                out.push(diff(*id, None, Against::Intended, Field::Exists, e, x));
            }
            DiffItem::Add(id, _) => {
                let (e, x) = ("absent".to_owned(), "present".to_owned());
                out.push(diff(*id, None, Against::Intended, Field::Exists, e, x));
            }
            DiffItem::Remove(..) => {}
        }
    }
    out
}

/// An app database against Communities, as generateSyncReports compares them (a resource its
/// community does not hold is an orphan), and against the intended state: community by
/// community, so that each is looked up once, and a resource that is the intended one (the
/// same value) is not compared field by field.
fn app_database(w: &World, db: Database) -> (Vec<Difference>, Vec<Orphan>) {
    let mut out = Vec::new();
    let mut orphans = Vec::new();
    let actual = w.actual.communities();
    let diff = |c, db, r, against, field, e, x| difference(w, c, db, r, against, (field, e, x));
    let (i, a) = (w.intended.db(db), w.actual.db(db));
    let mut intended_of = i.held_ascending();
    for (community, held, owner) in a.by_community_in(actual) {
        let intended_held = intended_of(community);
        for r in held {
            match owner.filter(|c| holds(c, r)) {
                Some(c) if !r.mirror.agrees_with(c, r.app) => {
                    for (f, e, x) in mirror_fields(&Mirror::of(c, r.app), &r.mirror) {
                        out.push(diff(c.uuid, db, Some(r), Against::Communities, f, e, x));
                    }
                }
                Some(_) => {}
                None => orphan(&mut orphans, w, owner, r),
            }
            if intended_held.iter().any(|x| Arc::ptr_eq(x, r)) {
                continue;
            }
            against_intended(&mut out, w, i, db, r);
        }
    }
    (out, orphans)
}

/// An app's resource against the intended one.
fn against_intended(
    out: &mut Vec<Difference>,
    w: &World,
    intended: &DbState,
    db: Database,
    r: &Resource,
) {
    let Some(ir) = intended.resource_near(r.community, r.app, &r.object_id) else {
        let (e, x) = ("absent".to_owned(), "present".to_owned());
        out.push(difference(
            w,
            r.community,
            db,
            Some(r),
            Against::Intended,
            (Field::Exists, e, x),
        ));
        return;
    };
    if ir == r {
        return;
    }
    let mut fields = Vec::new();
    if ir.community != r.community {
        let (e, x) = (ir.community.to_string(), r.community.to_string());
        fields.push((Field::Community, e, x));
    }
    if ir.instance != r.instance {
        fields.push((
            Field::Instance,
            ir.instance.to_string(),
            r.instance.to_string(),
        ));
    }
    fields.extend(mirror_fields(&ir.mirror, &r.mirror));
    for field in fields {
        out.push(difference(
            w,
            ir.community,
            db,
            Some(r),
            Against::Intended,
            field,
        ));
    }
}

/// `r`, held for `c`, if it is an orphan.
fn orphan(out: &mut Vec<Orphan>, w: &World, c: Option<&Community>, r: &Resource) {
    let reason = match c {
        None => OrphanReason::CommunityMissing,
        Some(c) if c.lifecycle == Lifecycle::Purged => OrphanReason::CommunityPurged,
        Some(c) if c.lifecycle == Lifecycle::Trashed => OrphanReason::CommunityTrashed,
        Some(c) if !has_widget(c, &r.instance) => OrphanReason::WidgetMissing,
        Some(_) => return,
    };
    out.push(Orphan {
        app: r.app,
        object_id: r.object_id.to_string(),
        instance: r.instance.to_string(),
        old_community: r.community,
        name: r.mirror.name.to_string(),
        reason,
        disposition: disposition(w, r),
    });
}

fn disposition(w: &World, r: &Resource) -> Disposition {
    let intended = w.intended.db(r.app.database());
    let Some(ir) = intended.resource_near(r.community, r.app, &r.object_id) else {
        return Disposition::Delete;
    };
    let Some(ic) = w.intended.communities().get(&ir.community) else {
        return Disposition::Delete;
    };
    if ic.lifecycle == Lifecycle::Purged || !has_widget(ic, &ir.instance) {
        return Disposition::Delete;
    }
    match w.actual.communities().get(&ir.community) {
        None => Disposition::Recreate,
        Some(c) if c.lifecycle == Lifecycle::Purged => Disposition::Recreate,
        Some(_) if ir.community != r.community => Disposition::AssignTo {
            community: ir.community,
        },
        Some(c) if !has_widget(c, &ir.instance) => Disposition::AssignSame,
        Some(_) if ic.lifecycle == Lifecycle::Trashed => Disposition::InTrash,
        Some(_) => Disposition::Undelete,
    }
}

fn missing(w: &World) -> Vec<Missing> {
    let mut found: BTreeMap<(Uuid, App, String), Missing> = BTreeMap::new();
    let holds = |held: &[Arc<Resource>], app: App, instance: &Text| -> Option<String> {
        held.iter()
            .find(|r| r.app == app && r.instance == *instance)
            .map(|r| r.object_id.to_string())
    };
    // The communities ascend, so each database's resources are walked alongside them.
    let mut actual_of: Vec<_> = Database::ALL
        .iter()
        .map(|&d| w.actual.db(d).held_ascending())
        .collect();
    for (&id, c) in w.actual.communities().iter() {
        if c.lifecycle != Lifecycle::Active {
            continue;
        }
        for (instance, def) in c.widgets.iter() {
            let Some(app) = App::from_widget_def_id(def) else {
                continue;
            };
            let actual = actual_of[app.database() as usize](id);
            if holds(actual, app, instance).is_none() {
                let intended = w.intended.db(app.database()).held_by(c.uuid);
                found.insert(
                    (c.uuid, app, instance.to_string()),
                    Missing {
                        community: c.uuid,
                        community_name: c.name.to_string(),
                        app,
                        instance: instance.to_string(),
                        known_to_communities: true,
                        intended_object_id: holds(intended, app, instance),
                    },
                );
            }
        }
    }
    for db in Database::APPS {
        let actual: &DbState = w.actual.db(db);
        for r in w.intended.db(db).not_held_by(actual) {
            found
                .entry((r.community, r.app, r.instance.to_string()))
                .or_insert_with(|| Missing {
                    community: r.community,
                    community_name: name_of(w, r.community),
                    app: r.app,
                    instance: r.instance.to_string(),
                    known_to_communities: false,
                    intended_object_id: Some(r.object_id.to_string()),
                });
        }
    }
    found.into_values().collect()
}

fn lost(
    input: &Input,
    earlier: &[Recorded],
    w: &World,
    fates: &crate::reach::Reach,
) -> Vec<LostChange> {
    fn find(events: &[Recorded], position: u64) -> Option<&Recorded> {
        let i = events
            .binary_search_by_key(&position, |r| r.position)
            .ok()?;
        Some(&events[i])
    }
    let mut out = Vec::new();
    for (position, by_db) in fates {
        for (db, fate) in by_db {
            let Fate::Lost { at, loss } = fate else {
                continue;
            };
            if *at <= input.since {
                continue;
            }
            let Some(r) = find(input.events, *position).or_else(|| find(earlier, *position)) else {
                continue;
            };
            let community = r.event.community();
            out.push(LostChange {
                database: *db,
                position: *position,
                event_id: r.id,
                event_type: r.event.type_name().to_owned(),
                community,
                community_name: community.map_or_else(String::new, |c| name_of(w, c)),
                actor: r.event.actor().map(str::to_owned),
                occurred_ns: r.occurred_ns,
                summary: describe(&r.event),
                lost_at: *at,
                loss: loss.clone(),
            });
        }
    }
    out.sort_by_key(|l| (l.database, l.position));
    out
}

fn stale(w: &World, restores: &[Restore]) -> Vec<StaleEntry> {
    let mut out = Vec::new();
    for q in &w.actual.db(Database::Communities).queue {
        let hit = restores.iter().find(|r| {
            r.position > q.position
                && (r.database == Database::Communities || r.database == q.app.database())
        });
        if let Some(r) = hit {
            out.push(StaleEntry {
                event_id: q.event,
                position: q.position,
                event_type: q.event_type.clone(),
                community: q.community,
                app: q.app,
                restored: r.database,
                restored_at: r.position,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(entries: &[(&str, Role)]) -> MemberRoles {
        entries
            .iter()
            .map(|(u, r)| (crate::state::User::from(*u), *r))
            .collect()
    }

    #[test]
    fn members_text_names_what_is_lacking_extra_and_in_another_role_in_user_order() {
        use Role::{Member, Owner};
        let expected = members(&[
            ("ann", Owner),
            ("bob", Member),
            ("cy", Member),
            ("dee", Owner),
        ]);
        let found = members(&[
            ("ann", Member),
            ("bo", Member),
            ("cy", Member),
            ("eve", Owner),
        ]);
        let (e, x) = members_text(&expected, &found);
        assert_eq!(e, "4 (2 owners)");
        assert_eq!(
            x,
            "4 (1 owner): lacks bob (member), dee (owner); extra bo (member), eve (owner); \
             roles: ann member not owner"
        );
        // The same members, one map a copy of the other: nothing but the counts.
        let (e, x) = members_text(&expected, &expected.clone());
        assert_eq!((e.as_str(), x.as_str()), ("4 (2 owners)", "4 (2 owners): "));
    }
}
