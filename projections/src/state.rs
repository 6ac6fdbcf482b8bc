//! What a database holds: communities (the Communities database), app resources and shares
//! (the remote apps' databases), the retry queue and scheduler tasks (Communities). Maps are
//! persistent (`imbl`), so a backup is a cheap copy that shares what did not change.

use crate::queue::Queue;
use crate::shared::{In, Out};
use crate::vocabulary::{App, CommunityType, Database, Lifecycle, Role};
use imbl::{OrdMap, OrdSet};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// A community id as a lookup key in the community-keyed maps: compared as the 128-bit value
/// it is, where `Uuid` compares its 16 bytes (a `memcmp` call per step of every search). The
/// order is the same: a `Uuid` orders by its bytes, which is the order of its big-endian value.
#[derive(Clone, Copy, Debug)]
pub struct Id(u128);

impl Id {
    pub fn of(community: Uuid) -> Id {
        Id(community.as_u128())
    }
}

impl equivalent::Equivalent<Uuid> for Id {
    fn equivalent(&self, key: &Uuid) -> bool {
        self.0 == key.as_u128()
    }
}

impl equivalent::Comparable<Uuid> for Id {
    fn compare(&self, key: &Uuid) -> std::cmp::Ordering {
        self.0.cmp(&key.as_u128())
    }
}

/// A community's members, user → role, behind `Arc`: copies (mirrors, backups) share it until
/// one changes (`Arc::make_mut`).
pub type Members = Arc<MemberRoles>;

/// Members (user → role) in user order. Most communities have a few: a plain sorted map, copied
/// whole when a shared one changes. From [`MemberRoles::LARGE`] members on, a persistent map, so
/// that a change to a shared one copies one path of its tree and not every member (a community
/// of 3,000 members folded at a quarter of the speed of one of 20). The persistent map's nodes
/// are wider than a few members need, so small maps do not use it.
#[derive(Clone, Debug)]
pub enum MemberRoles {
    Few(BTreeMap<User, Role>),
    Many(OrdMap<User, Role>),
}

impl Default for MemberRoles {
    fn default() -> Self {
        MemberRoles::Few(BTreeMap::new())
    }
}

impl MemberRoles {
    /// From this many members on, the persistent map.
    pub const LARGE: usize = 64;
    /// Below this many, the plain map again (not at `LARGE`: a community that gains and loses
    /// one member around it would convert at every change).
    const SMALL: usize = Self::LARGE / 2;

    pub fn len(&self) -> usize {
        match self {
            MemberRoles::Few(m) => m.len(),
            MemberRoles::Many(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, user: &str) -> Option<&Role> {
        match self {
            MemberRoles::Few(m) => m.get(user),
            MemberRoles::Many(m) => m.get(user),
        }
    }

    pub fn contains_key(&self, user: &str) -> bool {
        self.get(user).is_some()
    }

    fn get_mut(&mut self, user: &str) -> Option<&mut Role> {
        match self {
            MemberRoles::Few(m) => m.get_mut(user),
            MemberRoles::Many(m) => m.get_mut(user),
        }
    }

    /// Gives `user` this role, adding them if they are not a member.
    pub fn set(&mut self, user: &str, role: Role) {
        match self.get_mut(user) {
            Some(r) => *r = role,
            None => self.insert(User::from(user), role),
        }
    }

    /// Gives `user` this role; [`MemberRoles::set`] for a user text already made.
    pub fn insert(&mut self, user: User, role: Role) {
        match self {
            MemberRoles::Few(m) => {
                m.insert(user, role);
                if m.len() >= Self::LARGE {
                    *self = MemberRoles::Many(packed(std::mem::take(m)));
                }
            }
            MemberRoles::Many(m) => {
                m.insert(user, role);
            }
        }
    }

    pub fn remove(&mut self, user: &str) {
        match self {
            MemberRoles::Few(m) => {
                m.remove(user);
            }
            MemberRoles::Many(m) => {
                m.remove(user);
                if m.len() < Self::SMALL {
                    *self = MemberRoles::Few(std::mem::take(m).into_iter().collect());
                }
            }
        }
    }

    /// Members in user order.
    pub fn iter(&self) -> MemberIter<'_> {
        match self {
            MemberRoles::Few(m) => MemberIter::Few(m.iter()),
            MemberRoles::Many(m) => MemberIter::Many(m.iter()),
        }
    }

    /// The members of `entries`, in user order with each user once.
    fn from_sorted(entries: Vec<(User, Role)>) -> MemberRoles {
        if entries.len() >= Self::LARGE {
            MemberRoles::Many(packed_sorted(entries))
        } else {
            MemberRoles::Few(entries.into_iter().collect())
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &User> {
        self.iter().map(|(u, _)| u)
    }

    pub fn values(&self) -> impl Iterator<Item = &Role> {
        self.iter().map(|(_, r)| r)
    }
}

/// The persistent map of `m`, its leaves nearly full (see [`packed_sorted`]).
fn packed(m: BTreeMap<User, Role>) -> OrdMap<User, Role> {
    packed_sorted(m.into_iter().collect())
}

/// The persistent map of `entries` (in user order, each user once), its leaves nearly full. Its
/// leaves split in half when full, so inserting in order leaves every leaf but the last half
/// empty (twice the memory); inserting every other member first and then the rest fills each
/// leaf's gaps without splitting it.
fn packed_sorted(entries: Vec<(User, Role)>) -> OrdMap<User, Role> {
    let mut out = OrdMap::new();
    for (user, role) in entries
        .iter()
        .step_by(2)
        .chain(entries.iter().skip(1).step_by(2))
    {
        out.insert(user.clone(), *role);
    }
    out
}

impl FromIterator<(User, Role)> for MemberRoles {
    fn from_iter<I: IntoIterator<Item = (User, Role)>>(iter: I) -> Self {
        let mut m = MemberRoles::default();
        for (u, r) in iter {
            m.insert(u, r);
        }
        m
    }
}

impl<const N: usize> From<[(User, Role); N]> for MemberRoles {
    fn from(members: [(User, Role); N]) -> Self {
        members.into_iter().collect()
    }
}

/// Equal when they hold the same members in the same roles, whichever map holds them.
impl PartialEq for MemberRoles {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (MemberRoles::Few(a), MemberRoles::Few(b)) => a == b,
            // Two persistent maps that share nodes are compared without walking those.
            (MemberRoles::Many(a), MemberRoles::Many(b)) => a == b,
            _ => self.len() == other.len() && self.iter().eq(other.iter()),
        }
    }
}

impl Eq for MemberRoles {}

/// Written as a map, as a `BTreeMap` of the same members is.
impl Serialize for MemberRoles {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // The length first: bincode writes it ahead of the entries.
        let mut map = s.serialize_map(Some(self.len()))?;
        for (user, role) in self.iter() {
            map.serialize_entry(user, role)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for MemberRoles {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = MemberRoles;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of user to role")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<MemberRoles, A::Error> {
                let mut entries: Vec<(User, Role)> =
                    Vec::with_capacity(a.size_hint().unwrap_or(0).min(4096));
                while let Some(entry) = a.next_entry()? {
                    entries.push(entry);
                }
                // A snapshot writes them in user order, each once; others are read one at a
                // time, as a map reads them (the last role given a user wins).
                if entries.windows(2).all(|w| w[0].0 < w[1].0) {
                    Ok(MemberRoles::from_sorted(entries))
                } else {
                    Ok(entries.into_iter().collect())
                }
            }
        }
        d.deserialize_map(Entries)
    }
}

/// Iterates [`MemberRoles`] in user order.
pub enum MemberIter<'a> {
    Few(std::collections::btree_map::Iter<'a, User, Role>),
    Many(imbl::ordmap::Iter<'a, User, Role, imbl::shared_ptr::DefaultSharedPtr>),
}

impl<'a> Iterator for MemberIter<'a> {
    type Item = (&'a User, &'a Role);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            MemberIter::Few(i) => i.next(),
            MemberIter::Many(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            MemberIter::Few(i) => i.size_hint(),
            MemberIter::Many(i) => i.size_hint(),
        }
    }
}
/// A user id as members maps hold it. A membership change copies the map it changes (the
/// holders that did not take the change keep the old one); the copy shares the ids instead of
/// allocating each again. Written as a string, so snapshots are unchanged.
pub type User = Arc<str>;
/// Text that copies of a value share: a community's name, organization and theme (which every
/// app's mirror of it repeats), a resource's object id and widget instance. A change to a
/// resource copies it for the holders that did not take the change, and a mirror is made from
/// its community: both take a reference instead of allocating the text again. Compared by
/// pointer first. Written as a string, so snapshots are unchanged.
pub type Text = Arc<str>;
/// A community's widgets, instance id → widgetDefId, sorted by instance and shared the same
/// way. The pairs sit in the one allocation the `Arc` points to: asking whether a community
/// has a resource's widget (every pass over resources does) reads one block of memory, where a
/// map behind `Arc` was two dependent reads (the map, then its node). A change makes a new
/// list; communities have a few widgets. Written as a map, so snapshots are unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Widgets(Arc<[(Text, Text)]>);

impl Default for Widgets {
    fn default() -> Self {
        Widgets(Arc::from([]))
    }
}

impl Widgets {
    pub fn iter(&self) -> impl Iterator<Item = (&Text, &Text)> {
        self.0.iter().map(|(i, d)| (i, d))
    }

    /// Where the pairs are, and their length in bytes (for [`crate::cache`]).
    pub(crate) fn memory(&self) -> (*const u8, usize) {
        (self.0.as_ptr().cast(), std::mem::size_of_val(&*self.0))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Text> {
        self.0.iter().map(|(i, _)| i)
    }

    pub fn values(&self) -> impl Iterator<Item = &Text> {
        self.0.iter().map(|(_, d)| d)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, instance: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(i, _)| (**i).cmp(instance))
    }

    pub fn get_key_value(&self, instance: &str) -> Option<(&Text, &Text)> {
        let (i, d) = &self.0[self.find(instance).ok()?];
        Some((i, d))
    }

    pub fn get(&self, instance: &str) -> Option<&Text> {
        self.get_key_value(instance).map(|(_, d)| d)
    }

    pub fn contains_key(&self, instance: &str) -> bool {
        self.find(instance).is_ok()
    }

    /// These widgets with `instance` added, or given `def` if there.
    pub fn with(&self, instance: Text, def: Text) -> Widgets {
        let mut pairs = self.0.to_vec();
        match self.find(&instance) {
            Ok(at) => pairs[at].1 = def,
            Err(at) => pairs.insert(at, (instance, def)),
        }
        Widgets(pairs.into())
    }

    /// These widgets without `instance`.
    pub fn without(&self, instance: &str) -> Widgets {
        match self.find(instance) {
            Ok(at) => {
                let mut pairs = self.0.to_vec();
                pairs.remove(at);
                Widgets(pairs.into())
            }
            Err(_) => self.clone(),
        }
    }

    /// The widgets for which `keep` holds.
    pub fn only(&self, mut keep: impl FnMut(&Text, &Text) -> bool) -> Widgets {
        self.0.iter().filter(|(i, d)| keep(i, d)).cloned().collect()
    }
}

/// Pairs in any order; a repeated instance keeps its last widgetDefId, as a map would.
impl FromIterator<(Text, Text)> for Widgets {
    fn from_iter<I: IntoIterator<Item = (Text, Text)>>(pairs: I) -> Self {
        let sorted: BTreeMap<Text, Text> = pairs.into_iter().collect();
        Widgets(sorted.into_iter().collect())
    }
}

impl Serialize for Widgets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// The text of a widgetDefId: an app's own shares one `Arc` ([`App::widget_def_text`]).
pub(crate) fn widget_def_text(id: &str) -> Text {
    App::from_widget_def_id(id).map_or_else(|| id.into(), App::widget_def_text)
}

/// Reads a widgetDefId as [`widget_def_text`] makes it.
struct DefId;

impl<'de> serde::de::DeserializeSeed<'de> for DefId {
    type Value = Text;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Text, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for DefId {
    type Value = Text;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a widgetDefId")
    }
    fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<Text, E> {
        Ok(widget_def_text(id))
    }
}

/// Read as the pairs come: a snapshot writes them sorted, so no map is built; pairs out of
/// order or repeated are put in order as a map would.
impl<'de> Deserialize<'de> for Widgets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Widgets;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of widget instances to widgetDefIds")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Widgets, A::Error> {
                let mut pairs: Vec<(Text, Text)> = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(instance) = a.next_key::<Text>()? {
                    pairs.push((instance, a.next_value_seed(DefId)?));
                }
                if pairs.windows(2).all(|w| w[0].0 < w[1].0) {
                    Ok(Widgets(pairs.into()))
                } else {
                    Ok(pairs.into_iter().collect())
                }
            }
        }
        d.deserialize_map(Pairs)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Community {
    pub uuid: Uuid,
    pub name: Text,
    pub community_type: CommunityType,
    pub list_when_restricted: bool,
    pub external: bool,
    pub org_id: Option<Text>,
    pub theme: Option<Text>,
    pub pre_moderation: bool,
    pub post_moderation: bool,
    pub parent: Option<Uuid>,
    pub lifecycle: Lifecycle,
    pub description: Option<String>,
    pub tags: Vec<String>,
    #[serde(with = "crate::shared::members")]
    pub members: Members,
    /// Widget instance id → widgetDefId.
    pub widgets: Widgets,
}

impl Community {
    pub fn owners(&self) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .filter(|(_, r)| **r == Role::Owner)
            .map(|(u, _)| &**u)
    }

    /// The widget instance of an app, if the community has one.
    pub fn instance_of(&self, app: App) -> Option<&Text> {
        self.widgets
            .iter()
            .find(|(_, def)| ***def == *app.widget_def_id())
            .map(|(i, _)| i)
    }
}

/// The community attributes an app keeps beside its own data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirror {
    pub name: Text,
    pub community_type: CommunityType,
    pub list_when_restricted: bool,
    pub external: bool,
    pub org_id: Option<Text>,
    pub theme: Option<Text>,
    /// Only apps that mirror moderation (Files, Forums, Blogs) hold these.
    pub pre_moderation: Option<bool>,
    pub post_moderation: Option<bool>,
    /// Only apps that mirror membership hold it.
    #[serde(with = "crate::shared::optional_members")]
    pub members: Option<Members>,
    pub lifecycle: Lifecycle,
}

impl Mirror {
    /// What `app` copies of `c`.
    pub fn of(c: &Community, app: App) -> Mirror {
        Mirror {
            name: c.name.clone(),
            community_type: c.community_type,
            list_when_restricted: c.list_when_restricted,
            external: c.external,
            org_id: c.org_id.clone(),
            theme: c.theme.clone(),
            pre_moderation: app.mirrors_moderation().then_some(c.pre_moderation),
            post_moderation: app.mirrors_moderation().then_some(c.post_moderation),
            members: app.mirrors_members().then(|| c.members.clone()),
            lifecycle: c.lifecycle,
        }
    }

    /// Whether this is what `app` copies of `c` (`*self == Mirror::of(c, app)`, without
    /// building the copy: findings ask it of every resource).
    pub fn agrees_with(&self, c: &Community, app: App) -> bool {
        // Every field named, so that a field added to Mirror cannot be forgotten here.
        let Mirror {
            name,
            community_type,
            list_when_restricted,
            external,
            org_id,
            theme,
            pre_moderation,
            post_moderation,
            members,
            lifecycle,
        } = self;
        let moderation = app.mirrors_moderation();
        *name == c.name
            && *community_type == c.community_type
            && *list_when_restricted == c.list_when_restricted
            && *external == c.external
            && *org_id == c.org_id
            && *theme == c.theme
            && *pre_moderation == moderation.then_some(c.pre_moderation)
            && *post_moderation == moderation.then_some(c.post_moderation)
            && match members {
                Some(m) => app.mirrors_members() && *m == c.members,
                None => !app.mirrors_members(),
            }
            && *lifecycle == c.lifecycle
    }
}

/// An app's container for one community widget: a blog, a library, a forum …
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub app: App,
    pub object_id: Text,
    pub instance: Text,
    pub community: Uuid,
    pub mirror: Mirror,
}

/// A lifecycle event waiting in `LC_EVENT_REPLAY` for one app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry {
    /// The ledger id of the event, and where it stands in the log.
    pub event: Uuid,
    pub position: u64,
    pub community: Uuid,
    pub app: App,
    /// The queued event in its ledger form (type and JSON data), as the queue row keeps it.
    pub event_type: String,
    pub data: Vec<u8>,
}

impl QueueEntry {
    /// The queued lifecycle event.
    pub fn lifecycle(&self) -> Option<crate::events::DomainEvent> {
        crate::events::decode(&self.event_type, &self.data, b"").ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskStatus {
    Scheduled,
    Suspended,
}

/// A resource's key: the app and its object id, ordered as (app, object id) are. The id's first
/// eight bytes are kept beside it as a number that orders as they do (zero after a shorter
/// id's end), so that comparing two keys, which a search of `located` does at every step,
/// seldom reads the id's characters (an allocation of their own, out of the cache).
/// Written as the pair (app, object id).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    app: App,
    prefix: u64,
    object_id: Text,
}

impl ResourceKey {
    pub fn new(app: App, object_id: impl Into<Text>) -> ResourceKey {
        let object_id: Text = object_id.into();
        let mut head = [0u8; 8];
        let n = object_id.len().min(8);
        head[..n].copy_from_slice(&object_id.as_bytes()[..n]);
        ResourceKey {
            app,
            prefix: u64::from_be_bytes(head),
            object_id,
        }
    }

    pub fn app(&self) -> App {
        self.app
    }

    pub fn object_id(&self) -> &Text {
        &self.object_id
    }

    /// The key of resource `r`.
    pub fn of(r: &Resource) -> ResourceKey {
        ResourceKey::new(r.app, r.object_id.clone())
    }
}

impl Serialize for ResourceKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.app, &*self.object_id).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ResourceKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (app, object_id) = <(App, String)>::deserialize(d)?;
        Ok(ResourceKey::new(app, object_id))
    }
}

/// The resources one database holds for one community: almost always one, kept inline, so
/// that copying a map node after a backup copies pointers and allocates nothing.
pub type Held = smallvec::SmallVec<[Arc<Resource>; 1]>;

/// The content of one database, in the parts Lifeline tracks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DbState {
    /// Behind `Arc`: both deployments hold a community that is the same in both once, a
    /// backup shares them, and the map's nodes stay small (a lookup touches less memory).
    #[serde(with = "crate::shared::communities")]
    pub communities: OrdMap<Uuid, Arc<Community>>,
    /// Community → its resources in this database (a few at most). Kept together because every
    /// lifecycle event goes to the resources of one community.
    /// Behind `Arc`: a copy made after a backup shares them, and a change copies one resource.
    /// Ordered maps, as `located` is: their B-tree nodes are full to at least half, where a
    /// persistent hash map's fixed-width nodes were mostly empty. At 100,000 communities
    /// (414,000 resources a deployment) `located` took 125 MiB a deployment as a hash map and
    /// 60 MiB ordered, this map 107 and 49 MiB; lookups cost about the same.
    #[serde(with = "crate::shared::resources")]
    resources: OrdMap<Uuid, Held>,
    /// Where each resource is: (app, object id) → its community.
    located: OrdMap<ResourceKey, Uuid>,
    /// (community, app, object id) of files, folders and activities shared with communities.
    pub shares: OrdSet<(Uuid, App, String)>,
    pub queue: Queue,
    pub tasks: OrdMap<String, TaskStatus>,
}

fn key_of(r: &Resource) -> (App, &str) {
    (r.app, &*r.object_id)
}

/// Looks up the entries of a community-keyed map for communities asked in ascending order, by
/// walking the map once. Passes that visit every community of one map in order (every resource
/// of a database, every community) and want each one's entry in another map do that in one
/// sequential walk instead of one search from the root each, which at 100,000 communities was
/// most of the findings' time.
pub struct Ascending<'a, V> {
    entries:
        std::iter::Peekable<imbl::ordmap::Iter<'a, Uuid, V, imbl::shared_ptr::DefaultSharedPtr>>,
    /// The last community asked, to check that they ascend.
    last: Option<Uuid>,
}

impl<'a, V> Ascending<'a, V> {
    pub fn new(map: &'a OrdMap<Uuid, V>) -> Self {
        Ascending {
            entries: map.iter().peekable(),
            last: None,
        }
    }

    /// The entry of `community`. Communities must be asked in ascending order (repeats allowed).
    ///
    /// # Panics
    /// When a community is asked after a greater one: the walk has passed it, so the answer
    /// would be wrong.
    pub fn get(&mut self, community: Uuid) -> Option<&'a V> {
        assert!(
            self.last.is_none_or(|last| last <= community),
            "Ascending::get asked {community} after {:?}",
            self.last
        );
        self.last = Some(community);
        // Uuid orders by its bytes, which is the order of their big-endian value: one integer
        // comparison instead of a byte comparison per step.
        let target = community.as_u128();
        while self
            .entries
            .next_if(|(k, _)| k.as_u128() < target)
            .is_some()
        {}
        match self.entries.peek() {
            Some((k, v)) if k.as_u128() == target => Some(*v),
            _ => None,
        }
    }
}

impl DbState {
    /// Adds (or replaces) a resource; the community that held it before, if one did.
    pub fn insert_resource(&mut self, r: impl Into<Arc<Resource>>) -> Option<Uuid> {
        let r: Arc<Resource> = r.into();
        let community = r.community;
        // One search of `located` both records the resource and tells where it was.
        let before = self.located.insert(ResourceKey::of(&r), community);
        if let Some(before) = before.filter(|b| *b != community) {
            self.take_held(before, (r.app, &r.object_id));
        }
        let held = self.resources.entry(community).or_default();
        if before == Some(community) {
            if let Some(i) = held.iter().position(|h| key_of(h) == key_of(&r)) {
                held.remove(i);
            }
        }
        held.push(r);
        before
    }

    pub fn remove_resource(&mut self, key: &ResourceKey) -> Option<Resource> {
        self.take_resource(key).map(Arc::unwrap_or_clone)
    }

    /// Removes a resource, handing back the value held.
    fn take_resource(&mut self, key: &ResourceKey) -> Option<Arc<Resource>> {
        let community = self.located.remove(key)?;
        self.take_held(community, (key.app, &key.object_id))
    }

    /// Takes the resource `key` out of what `community` holds (not out of `located`).
    fn take_held(&mut self, community: Uuid, key: (App, &str)) -> Option<Arc<Resource>> {
        let held = self.resources.get_mut(&Id::of(community))?;
        let i = held.iter().position(|r| key_of(r) == key)?;
        let r = held.remove(i);
        if held.is_empty() {
            self.resources.remove(&Id::of(community));
        }
        Some(r)
    }

    pub fn resource(&self, key: &ResourceKey) -> Option<&Resource> {
        let community = self.located.get(key)?;
        self.resources
            .get(&Id::of(*community))?
            .iter()
            .map(|r| &**r)
            .find(|r| key_of(r) == (key.app, &*key.object_id))
    }

    /// The resources of `community`.
    pub fn resources_of(&self, community: Uuid) -> impl Iterator<Item = &Resource> {
        self.resources
            .get(&Id::of(community))
            .into_iter()
            .flatten()
            .map(|r| &**r)
    }

    pub(crate) fn resources_of_mut(&mut self, community: Uuid) -> Option<&mut Held> {
        self.resources.get_mut(&Id::of(community))
    }

    /// Every resource, in no particular order (callers that show them sort what they keep).
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values().flatten().map(|r| &**r)
    }

    /// Each community holding resources here, with them, in ascending order of community:
    /// passes that visit every resource look their communities up elsewhere with [`Ascending`].
    pub fn by_community(&self) -> impl Iterator<Item = (Uuid, &[Arc<Resource>])> {
        self.resources.iter().map(|(c, held)| (*c, held.as_slice()))
    }

    /// [`by_community`](Self::by_community), each with its community among `communities`
    /// (found by walking that map alongside, see [`Ascending`]).
    pub fn by_community_in<'a>(
        &'a self,
        communities: &'a OrdMap<Uuid, Arc<Community>>,
    ) -> impl Iterator<Item = (Uuid, &'a [Arc<Resource>], Option<&'a Community>)> + 'a {
        let mut owners = Ascending::new(communities);
        self.by_community()
            .map(move |(community, held)| (community, held, owners.get(community).map(|c| &**c)))
    }

    /// The resources of `community` as held: the same `Arc` where another state shares one.
    pub fn held_by(&self, community: Uuid) -> &[Arc<Resource>] {
        self.resources
            .get(&Id::of(community))
            .map_or(&[], Held::as_slice)
    }

    /// [`held_by`](Self::held_by) for communities asked in ascending order, as
    /// [`by_community`](Self::by_community) gives them: one walk of the map instead of a search
    /// for each.
    pub fn held_ascending<'a>(&'a self) -> impl FnMut(Uuid) -> &'a [Arc<Resource>] + 'a {
        let mut held = Ascending::new(&self.resources);
        move |community| held.get(community).map_or(&[], Held::as_slice)
    }

    /// The resources held here that `other` does not hold (by app and object id), community by
    /// community; one that both hold as the same value is passed over without a lookup.
    pub fn not_held_by<'a>(&'a self, other: &'a DbState) -> impl Iterator<Item = &'a Resource> {
        let mut theirs_of = other.held_ascending();
        self.by_community().flat_map(move |(community, held)| {
            let theirs = theirs_of(community);
            held.iter()
                .filter(move |r| !theirs.iter().any(|t| Arc::ptr_eq(t, r)))
                .filter(move |r| {
                    other
                        .resource_near(community, r.app, &r.object_id)
                        .is_none()
                })
                .map(|r| &**r)
        })
    }

    /// The resource `(app, object_id)`, looked for among `community`'s first, where it usually
    /// is, so that no key is built.
    pub fn resource_near(&self, community: Uuid, app: App, object_id: &str) -> Option<&Resource> {
        self.resources_of(community)
            .find(|r| r.app == app && *r.object_id == *object_id)
            .or_else(|| self.resource(&ResourceKey::new(app, object_id)))
    }

    /// Every resource, ordered by key.
    pub fn all_resources(&self) -> Vec<&Resource> {
        let mut all: Vec<&Resource> = self.resources.values().flatten().map(|r| &**r).collect();
        all.sort_by(|a, b| key_of(a).cmp(&key_of(b)));
        all
    }

    pub fn has_resources(&self) -> bool {
        !self.located.is_empty()
    }
}

/// A backup: which database, as it stood after which position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    pub label: String,
    pub database: Database,
    pub position: u64,
}

/// Every database of a deployment.
///
/// Beside them, an index of which app databases hold resources of each community, so that a
/// lifecycle event finds the apps it goes to with one lookup instead of one in each of the seven
/// app databases (a third of the fold's time at 100,000 communities, most of them misses).
/// Resources are therefore added and removed through the deployment
/// ([`Deployment::insert_resource`], [`Deployment::remove_resource`]), and a restored database
/// is put in with [`Deployment::restore`]; `db_mut` is for everything else (communities, the
/// queue, shares, tasks, and changing resources in place). The index is not stored: it is
/// rebuilt when a deployment is read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "Databases")]
pub struct Deployment {
    dbs: [DbState; 8],
    /// Community → the databases holding a resource of it, bit `1 << Database as u8`.
    #[serde(skip_serializing)]
    holders: OrdMap<Uuid, u8>,
    /// Databases whose bits in `holders` are not kept (restored ones): asked directly.
    #[serde(skip_serializing)]
    unindexed: u8,
}

/// A deployment as stored: its databases.
#[derive(Deserialize)]
struct Databases {
    dbs: [DbState; 8],
}

impl From<Databases> for Deployment {
    fn from(stored: Databases) -> Deployment {
        Deployment::of(stored.dbs)
    }
}

/// Deployments are equal when their databases are; the index follows from them.
impl PartialEq for Deployment {
    fn eq(&self, other: &Deployment) -> bool {
        self.dbs == other.dbs
    }
}

impl Eq for Deployment {}

fn bit(d: Database) -> u8 {
    1 << d as u8
}

impl Deployment {
    /// A deployment of these databases, with its index built: the communities of every app
    /// database, merged in key order (ordered inserts touch only the right edge of the map).
    pub fn of(dbs: [DbState; 8]) -> Deployment {
        let mut heads: Vec<_> = Database::APPS
            .iter()
            .map(|&d| (bit(d), dbs[d as usize].resources.keys().peekable()))
            .collect();
        let mut holders = OrdMap::new();
        while let Some(next) = heads
            .iter_mut()
            .filter_map(|(_, k)| k.peek().copied())
            .min()
        {
            let mut bits = 0;
            for (b, keys) in &mut heads {
                if keys.next_if(|k| *k == next).is_some() {
                    bits |= *b;
                }
            }
            holders.insert(*next, bits);
        }
        Deployment {
            dbs,
            holders,
            unindexed: 0,
        }
    }

    pub fn db(&self, d: Database) -> &DbState {
        &self.dbs[d as usize]
    }

    pub fn db_mut(&mut self, d: Database) -> &mut DbState {
        &mut self.dbs[d as usize]
    }

    /// The app databases holding a resource of `community`, in [`Database::APPS`] order.
    pub fn holding(&self, community: Uuid) -> impl Iterator<Item = Database> + '_ {
        let bits = self.holders.get(&Id::of(community)).copied().unwrap_or(0);
        Database::APPS.into_iter().filter(move |&d| {
            if self.unindexed & bit(d) != 0 {
                self.db(d).resources.contains_key(&Id::of(community))
            } else {
                bits & bit(d) != 0
            }
        })
    }

    /// Adds (or replaces) a resource in its app's database.
    pub fn insert_resource(&mut self, r: impl Into<Arc<Resource>>) {
        let r: Arc<Resource> = r.into();
        let (d, community) = (r.app.database(), r.community);
        if let Some(before) = self.db_mut(d).insert_resource(r) {
            if before != community {
                self.reindex(d, before);
            }
        }
        // It holds one now: no need to ask the database.
        self.set_holding(d, community, true);
    }

    /// Removes a resource from database `d`, handing back the value held.
    pub fn remove_resource(&mut self, d: Database, key: &ResourceKey) -> Option<Arc<Resource>> {
        let removed = self.db_mut(d).take_resource(key)?;
        self.reindex(d, removed.community);
        Some(removed)
    }

    /// Puts database `d` back as `state` (a restore). Its bits in the index are no longer kept:
    /// lookups ask the database itself, which costs one lookup more per restored database.
    pub fn restore(&mut self, d: Database, state: DbState) {
        *self.db_mut(d) = state;
        if d != Database::Communities {
            self.unindexed |= bit(d);
        }
    }

    /// Sets `d`'s bit for `community` to whether it holds a resource of it.
    fn reindex(&mut self, d: Database, community: Uuid) {
        if self.unindexed & bit(d) != 0 {
            return;
        }
        let holds = self.db(d).resources.contains_key(&Id::of(community));
        self.set_holding(d, community, holds);
    }

    /// Sets `d`'s bit for `community` in the index to `holds`.
    fn set_holding(&mut self, d: Database, community: Uuid, holds: bool) {
        if self.unindexed & bit(d) != 0 {
            return;
        }
        let bits = self.holders.get(&Id::of(community)).copied().unwrap_or(0);
        let now = if holds { bits | bit(d) } else { bits & !bit(d) };
        match (now, now == bits) {
            (_, true) => {}
            (0, false) => {
                self.holders.remove(&Id::of(community));
            }
            (now, false) => {
                self.holders.insert(community, now);
            }
        }
    }

    /// Whether the index says what the databases hold (for tests).
    pub fn index_agrees(&self) -> bool {
        self.dbs.iter().flat_map(|db| db.resources.keys()).all(|c| {
            let direct: Vec<Database> = Database::APPS
                .into_iter()
                .filter(|d| self.db(*d).resources.contains_key(c))
                .collect();
            self.holding(*c).eq(direct)
        }) && self.holders.values().all(|bits| *bits != 0)
    }

    pub fn communities(&self) -> &OrdMap<Uuid, Arc<Community>> {
        &self.db(Database::Communities).communities
    }
}

/// One database of a deployment as a snapshot writes it (version 6): its maps but `located`,
/// which follows from `resources` and is rebuilt on reading ([`DbStateIn::into_db`]). Written
/// out, `located` was about a third of a snapshot (at 100,000 communities, the intended
/// deployment compressed to 53.4 MB with it, 36.9 MB without).
#[derive(Serialize)]
pub(crate) struct DbStateOut<'a> {
    #[serde(with = "crate::shared::communities")]
    communities: &'a OrdMap<Uuid, Arc<Community>>,
    #[serde(with = "crate::shared::resources")]
    resources: &'a OrdMap<Uuid, Held>,
    shares: &'a OrdSet<(Uuid, App, String)>,
    queue: &'a Queue,
    tasks: &'a OrdMap<String, TaskStatus>,
}

/// [`DbStateOut`] as read.
#[derive(Deserialize)]
pub(crate) struct DbStateIn {
    /// The two large maps' entries, in ascending order: their maps are built with `located`
    /// ([`DbStateIn::into_db`]), several databases at once, not one entry at a time as the
    /// snapshot is read.
    #[serde(deserialize_with = "crate::shared::communities::entries")]
    communities: Vec<(Uuid, Arc<Community>)>,
    #[serde(deserialize_with = "crate::shared::resources::entries")]
    resources: Vec<(Uuid, Held)>,
    shares: OrdSet<(Uuid, App, String)>,
    queue: Queue,
    tasks: OrdMap<String, TaskStatus>,
}

/// A deployment's databases as a snapshot writes them (version 6), the Communities database
/// first: the resources of the app databases whose mirrors are what their apps copy of their
/// communities are written without them ([`crate::shared::Sharing::mirroring`]), as in the
/// intended deployment they all are.
pub(crate) struct DeploymentOut<'a>(Vec<DbStateOut<'a>>);

impl Serialize for DeploymentOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (i, db) in self.0.iter().enumerate() {
            seq.serialize_element(db)?;
            if i == Database::Communities as usize {
                crate::shared::Sharing::mirroring(Some(db.communities));
            }
        }
        crate::shared::Sharing::mirroring(None);
        seq.end()
    }
}

/// [`DeploymentOut`] as read.
pub(crate) struct DeploymentIn(Vec<DbStateIn>);

impl<'de> Deserialize<'de> for DeploymentIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Databases;
        impl<'de> serde::de::Visitor<'de> for Databases {
            type Value = DeploymentIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a deployment's databases")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<DeploymentIn, A::Error> {
                let mut dbs = Vec::with_capacity(Database::ALL.len());
                while let Some(db) = a.next_element::<DbStateIn>()? {
                    if dbs.len() == Database::Communities as usize {
                        crate::shared::Sharing::mirroring_read(Some(&db.communities));
                    }
                    dbs.push(db);
                }
                crate::shared::Sharing::mirroring_read(None);
                Ok(DeploymentIn(dbs))
            }
        }
        d.deserialize_seq(Databases)
    }
}

impl DbStateIn {
    /// The database, its `located` rebuilt from its resources.
    pub(crate) fn into_db(self) -> DbState {
        let DbStateIn {
            communities,
            resources,
            shares,
            queue,
            tasks,
        } = self;
        let mut keys: Vec<(ResourceKey, Uuid)> = resources
            .iter()
            .flat_map(|(c, held)| held.iter().map(|r| (ResourceKey::of(r), *c)))
            .collect();
        // In key order, each insert goes to the right edge of the map.
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut located = OrdMap::new();
        for (k, c) in keys {
            located.insert(k, c);
        }
        let communities = communities.into_iter().collect();
        let resources = resources.into_iter().collect();
        DbState {
            communities,
            resources,
            located,
            shares,
            queue,
            tasks,
        }
    }
}

impl DbState {
    /// This database as a snapshot writes it (see [`DbStateOut`]).
    pub(crate) fn stored(&self) -> DbStateOut<'_> {
        DbStateOut {
            communities: &self.communities,
            resources: &self.resources,
            shares: &self.shares,
            queue: &self.queue,
            tasks: &self.tasks,
        }
    }
}

/// What one database of the actual deployment changes from the same database of the intended
/// one, as a snapshot writes it (`snapshot`, version 6): the entries of the two large maps
/// that differ (`None`: not in the actual database), and the small parts in full. Most entries
/// are the same in both deployments, so the actual one is read back as a copy of the intended
/// one, sharing its map nodes, with these changes made (`located` changed to follow).
#[derive(Serialize)]
pub(crate) struct DbChangesOut<'a> {
    communities: Vec<(&'a Uuid, Option<Out<'a, Community>>)>,
    resources: Vec<(&'a Uuid, Option<Vec<Out<'a, Resource>>>)>,
    shares: &'a OrdSet<(Uuid, App, String)>,
    queue: &'a Queue,
    tasks: &'a OrdMap<String, TaskStatus>,
}

/// [`DbChangesOut`] as read.
#[derive(Deserialize)]
pub(crate) struct DbChangesIn {
    communities: Vec<(Uuid, Option<In<Community>>)>,
    resources: Vec<(Uuid, Option<Vec<In<Resource>>>)>,
    shares: OrdSet<(Uuid, App, String)>,
    queue: Queue,
    tasks: OrdMap<String, TaskStatus>,
}

/// A database change as version 5 wrote it: with the changes to `located` too, which are read
/// and passed over (they follow from those to `resources`).
#[derive(Deserialize)]
pub(crate) struct DbChangesInV5 {
    communities: Vec<(Uuid, Option<In<Community>>)>,
    resources: Vec<(Uuid, Option<Vec<In<Resource>>>)>,
    #[allow(dead_code)] // read to pass over
    located: Vec<(ResourceKey, Option<Uuid>)>,
    shares: OrdSet<(Uuid, App, String)>,
    queue: Queue,
    tasks: OrdMap<String, TaskStatus>,
}

impl From<DbChangesInV5> for DbChangesIn {
    fn from(v5: DbChangesInV5) -> DbChangesIn {
        DbChangesIn {
            communities: v5.communities,
            resources: v5.resources,
            shares: v5.shares,
            queue: v5.queue,
            tasks: v5.tasks,
        }
    }
}

/// A database change as version 5 wrote it, for the tests that read version 5.
#[cfg(test)]
#[derive(Serialize)]
pub(crate) struct DbChangesOutV5<'a> {
    communities: Vec<(&'a Uuid, Option<Out<'a, Community>>)>,
    resources: Vec<(&'a Uuid, Option<Vec<Out<'a, Resource>>>)>,
    located: Vec<(&'a ResourceKey, Option<&'a Uuid>)>,
    shares: &'a OrdSet<(Uuid, App, String)>,
    queue: &'a Queue,
    tasks: &'a OrdMap<String, TaskStatus>,
}

/// The entries of `now` that differ from `base`, in key order, each turned by `f` (`None`:
/// not in `now`). Subtrees the two maps share are skipped unread.
fn map_changes<'a, K: Ord + Clone, V: PartialEq + Clone, W>(
    base: &'a OrdMap<K, V>,
    now: &'a OrdMap<K, V>,
    f: impl Fn(&'a V) -> W,
) -> Vec<(&'a K, Option<W>)> {
    use imbl::ordmap::DiffItem;
    base.diff(now)
        .map(|d| match d {
            DiffItem::Add(k, v) | DiffItem::Update { new: (k, v), .. } => (k, Some(f(v))),
            DiffItem::Remove(k, _) => (k, None),
        })
        .collect()
}

/// Makes the `changes` (see [`map_changes`]) to `map`.
fn change_map<K: Ord + Clone, V: Clone>(map: &mut OrdMap<K, V>, changes: Vec<(K, Option<V>)>) {
    for (k, v) in changes {
        match v {
            Some(v) => {
                map.insert(k, v);
            }
            None => {
                map.remove(&k);
            }
        }
    }
}

impl DbState {
    /// What this database changes from `base` (see [`DbChangesOut`]).
    pub(crate) fn changes_from<'a>(&'a self, base: &'a DbState) -> DbChangesOut<'a> {
        DbChangesOut {
            communities: map_changes(&base.communities, &self.communities, Out),
            resources: map_changes(&base.resources, &self.resources, |held: &Held| {
                held.iter().map(Out).collect()
            }),
            shares: &self.shares,
            queue: &self.queue,
            tasks: &self.tasks,
        }
    }

    /// [`DbState::changes_from`] as version 5 wrote it.
    #[cfg(test)]
    pub(crate) fn changes_from_v5<'a>(&'a self, base: &'a DbState) -> DbChangesOutV5<'a> {
        DbChangesOutV5 {
            communities: map_changes(&base.communities, &self.communities, Out),
            resources: map_changes(&base.resources, &self.resources, |held: &Held| {
                held.iter().map(Out).collect()
            }),
            located: map_changes(&base.located, &self.located, |c| c),
            shares: &self.shares,
            queue: &self.queue,
            tasks: &self.tasks,
        }
    }

    /// `base` with `changes` made; `located` follows the resources that changed.
    fn with_changes(base: &DbState, changes: DbChangesIn) -> DbState {
        let DbChangesIn {
            communities,
            resources,
            shares,
            queue,
            tasks,
        } = changes;
        let mut db = DbState {
            communities: base.communities.clone(),
            resources: base.resources.clone(),
            located: base.located.clone(),
            shares,
            queue,
            tasks,
        };
        change_map(
            &mut db.communities,
            communities
                .into_iter()
                .map(|(k, v)| (k, v.map(|c| c.0)))
                .collect(),
        );
        let resources: Vec<(Uuid, Option<Held>)> = resources
            .into_iter()
            .map(|(k, v)| (k, v.map(|rs| rs.into_iter().map(|r| r.0).collect::<Held>())))
            .collect();
        // What the changed communities held goes first: a resource may have moved from one
        // of them to another.
        for (c, _) in &resources {
            for r in base.resources_of(*c) {
                db.located.remove(&ResourceKey::of(r));
            }
        }
        for (c, held) in &resources {
            for r in held.iter().flatten() {
                db.located.insert(ResourceKey::of(r), *c);
            }
        }
        change_map(&mut db.resources, resources);
        db
    }
}

impl Deployment {
    /// The databases as a snapshot writes them (see [`DbStateOut`]).
    pub(crate) fn stored(&self) -> DeploymentOut<'_> {
        DeploymentOut(self.dbs.iter().map(DbState::stored).collect())
    }

    /// [`Deployment::changes_from`] as version 5 wrote it.
    #[cfg(test)]
    pub(crate) fn changes_from_v5<'a>(&'a self, base: &'a Deployment) -> Vec<DbChangesOutV5<'a>> {
        self.dbs
            .iter()
            .zip(&base.dbs)
            .map(|(db, b)| db.changes_from_v5(b))
            .collect()
    }

    /// A deployment of the databases a snapshot holds, in order. Where each resource is, is
    /// rebuilt for several databases at once when there is a second core (a quarter of a
    /// second at 100,000 communities on one).
    pub(crate) fn stored_as(DeploymentIn(dbs): DeploymentIn) -> Result<Deployment, String> {
        let n = dbs.len();
        let dbs: [DbStateIn; 8] = dbs
            .try_into()
            .map_err(|_| format!("{n} databases, not {}", Database::ALL.len()))?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        if workers < 2 {
            return Ok(Deployment::of(dbs.map(DbStateIn::into_db)));
        }
        // The largest last: each worker takes the largest left when it is free.
        let mut todo: Vec<(usize, DbStateIn)> = dbs.into_iter().enumerate().collect();
        todo.sort_by_key(|(_, db)| db.resources.len());
        let todo = std::sync::Mutex::new(todo);
        let work = || {
            let mut done = Vec::new();
            loop {
                // Taken, and the lock let go, before the database is built.
                let next = todo
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .pop();
                let Some((i, db)) = next else {
                    return done;
                };
                done.push((i, db.into_db()));
            }
        };
        let mut built: Vec<(usize, DbState)> = std::thread::scope(|s| {
            let helpers: Vec<_> = (1..workers).map(|_| s.spawn(work)).collect();
            let mut all = work();
            for h in helpers {
                all.extend(
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
            }
            all
        });
        built.sort_by_key(|(i, _)| *i);
        let dbs: [DbState; 8] = built
            .into_iter()
            .map(|(_, db)| db)
            .collect::<Vec<_>>()
            .try_into()
            .unwrap_or_else(|_| unreachable!("eight databases in, eight out"));
        Ok(Deployment::of(dbs))
    }

    /// What each database changes from the same one of `base` (see [`DbChangesOut`]).
    pub(crate) fn changes_from<'a>(&'a self, base: &'a Deployment) -> Vec<DbChangesOut<'a>> {
        self.dbs
            .iter()
            .zip(&base.dbs)
            .map(|(db, b)| db.changes_from(b))
            .collect()
    }

    /// `base` with `changes` made to its databases, one each in order; its index is `base`'s
    /// with the communities whose resources changed looked up again.
    pub(crate) fn with_changes(
        base: &Deployment,
        changes: Vec<DbChangesIn>,
    ) -> Result<Deployment, String> {
        let n = changes.len();
        if n != base.dbs.len() {
            return Err(format!("changes to {n} databases, not {}", base.dbs.len()));
        }
        let mut touched: Vec<Uuid> = changes
            .iter()
            .flat_map(|c| c.resources.iter().map(|(k, _)| *k))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let mut changes = changes.into_iter();
        let dbs: [DbState; 8] = std::array::from_fn(|i| {
            let c = changes
                .next()
                .expect("one change for each database, checked above");
            DbState::with_changes(&base.dbs[i], c)
        });
        if base.unindexed != 0 {
            return Ok(Deployment::of(dbs));
        }
        let mut holders = base.holders.clone();
        for c in touched {
            let bits = Database::APPS
                .iter()
                .filter(|&&d| dbs[d as usize].resources.contains_key(&c))
                .fold(0, |b, &d| b | bit(d));
            if bits == 0 {
                holders.remove(&c);
            } else {
                holders.insert(c, bits);
            }
        }
        Ok(Deployment {
            dbs,
            holders,
            unindexed: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any sequence of changes leaves the same members, in the same order, as a plain map
        /// given them, whichever map holds them at each step; it is written in the same bytes,
        /// and equal to a copy converted the other way.
        #[test]
        fn member_roles_hold_what_a_plain_map_holds(
            ops in proptest::collection::vec((0u16..150, 0u8..3), 0..600)
        ) {
            let mut m = MemberRoles::default();
            let mut model: BTreeMap<User, Role> = BTreeMap::new();
            for (user, op) in ops {
                let user = format!("u{user}");
                match op {
                    0 => {
                        m.remove(&user);
                        model.remove(user.as_str());
                    }
                    _ => {
                        let role = if op == 1 { Role::Member } else { Role::Owner };
                        m.set(&user, role);
                        model.insert(User::from(user.as_str()), role);
                    }
                }
                proptest::prop_assert_eq!(m.len(), model.len());
                proptest::prop_assert!(m.iter().eq(model.iter()));
                proptest::prop_assert_eq!(m.get(&user), model.get(user.as_str()));
                match &m {
                    MemberRoles::Few(_) => proptest::prop_assert!(m.len() < MemberRoles::LARGE),
                    MemberRoles::Many(_) => {
                        proptest::prop_assert!(m.len() >= MemberRoles::SMALL)
                    }
                }
            }
            let config = bincode::config::standard();
            let bytes = bincode::serde::encode_to_vec(&m, config).unwrap();
            proptest::prop_assert_eq!(&bytes, &bincode::serde::encode_to_vec(&model, config).unwrap());
            let (back, _): (MemberRoles, _) =
                bincode::serde::decode_from_slice(&bytes, config).unwrap();
            proptest::prop_assert!(back == m);
            let other = match &m {
                MemberRoles::Few(f) => MemberRoles::Many(f.clone().into_iter().collect()),
                MemberRoles::Many(p) => MemberRoles::Few(p.clone().into_iter().collect()),
            };
            proptest::prop_assert!(other == m);
            proptest::prop_assert_eq!(serde_json::to_string(&m).unwrap(), serde_json::to_string(&model).unwrap());
        }
    }

    /// Members read from a JSON map in any order come out in user order, the last role given a
    /// user winning, as a map read one entry at a time keeps it.
    #[test]
    fn members_read_out_of_order_are_put_in_order() {
        let m: MemberRoles =
            serde_json::from_str(r#"{"cy":"member","ann":"member","bob":"owner","ann":"owner"}"#)
                .unwrap();
        let got: Vec<(&str, Role)> = m.iter().map(|(u, r)| (&**u, *r)).collect();
        assert_eq!(
            got,
            [
                ("ann", Role::Owner),
                ("bob", Role::Owner),
                ("cy", Role::Member)
            ]
        );
    }

    /// A large membership is held by the persistent map, and a change to it once shared leaves
    /// the copy before the change as it was.
    #[test]
    fn a_change_to_a_shared_large_membership_leaves_the_earlier_one_whole() {
        let mut m: Members = Arc::new(
            (0..5000)
                .map(|i| (User::from(format!("u{i}")), Role::Member))
                .collect(),
        );
        assert!(matches!(*m, MemberRoles::Many(_)));
        let before = m.clone();
        Arc::make_mut(&mut m).set("u17", Role::Owner);
        Arc::make_mut(&mut m).remove("u18");
        assert_eq!(before.get("u17"), Some(&Role::Member));
        assert_eq!(before.len(), 5000);
        assert_eq!(
            (m.get("u17"), m.get("u18"), m.len()),
            (Some(&Role::Owner), None, 4999)
        );
        assert!(before != m);
    }

    /// Every community's widget of an app reads back holding the one shared text of its
    /// defId, from a snapshot or from JSON; another defId reads as written.
    #[test]
    fn an_apps_widget_def_id_is_one_text_however_often_it_is_read() {
        let widgets: Widgets = [("i1", "Blog"), ("i2", "Custom"), ("i3", "Files")]
            .into_iter()
            .map(|(i, d)| (Text::from(i), Text::from(d)))
            .collect();
        let config = bincode::config::standard();
        let written = bincode::serde::encode_to_vec(&widgets, config).unwrap();
        let read = |_| {
            bincode::serde::decode_from_slice::<Widgets, _>(&written, config)
                .unwrap()
                .0
        };
        let (a, b): (Widgets, Widgets) = (read(0), read(1));
        let json: Widgets =
            serde_json::from_str(&serde_json::to_string(&widgets).unwrap()).unwrap();
        for w in [&a, &b, &json] {
            assert_eq!(w, &widgets);
            assert!(Arc::ptr_eq(
                w.get("i1").unwrap(),
                &App::Blog.widget_def_text()
            ));
            assert!(Arc::ptr_eq(
                w.get("i3").unwrap(),
                &App::Files.widget_def_text()
            ));
        }
        assert!(!Arc::ptr_eq(a.get("i2").unwrap(), b.get("i2").unwrap()));
        for app in App::ALL {
            assert_eq!(*app.widget_def_text(), *app.widget_def_id());
        }
    }

    proptest::proptest! {
        /// Widgets are written exactly as the sorted map they replaced (snapshots and JSON are
        /// unchanged), read back the same, and a repeated instance keeps its last widgetDefId.
        #[test]
        fn widgets_are_written_as_a_sorted_map(
            pairs in proptest::collection::vec(("[a-c]{0,3}", "[A-C]{1,2}|Blog|Files"), 0..8),
        ) {
            let pairs: Vec<(Text, Text)> =
                pairs.into_iter().map(|(i, d)| (Text::from(i), Text::from(d))).collect();
            let map: BTreeMap<Text, Text> = pairs.iter().cloned().collect();
            let widgets: Widgets = pairs.iter().cloned().collect();
            let config = bincode::config::standard();
            let written = bincode::serde::encode_to_vec(&widgets, config).unwrap();
            proptest::prop_assert_eq!(&written, &bincode::serde::encode_to_vec(&map, config).unwrap());
            proptest::prop_assert_eq!(
                serde_json::to_string(&widgets).unwrap(),
                serde_json::to_string(&map).unwrap()
            );
            let (read, _): (Widgets, usize) =
                bincode::serde::decode_from_slice(&written, config).unwrap();
            proptest::prop_assert_eq!(&read, &widgets);
            // Pairs out of order, or repeated, read as the map they make.
            let object = pairs
                .iter()
                .map(|(i, d)| format!("{:?}:{:?}", &**i, &**d))
                .collect::<Vec<_>>()
                .join(",");
            let unsorted: Widgets = serde_json::from_str(&format!("{{{object}}}")).unwrap();
            proptest::prop_assert!(unsorted.iter().eq(map.iter()));
            proptest::prop_assert!(read.iter().eq(map.iter()));
            for (i, d) in &map {
                proptest::prop_assert_eq!(read.get(i), Some(d));
                proptest::prop_assert!(!read.without(i).contains_key(i));
                proptest::prop_assert_eq!(read.without(i).len(), map.len() - 1);
            }
            let added = read.with(Text::from("bb"), Text::from("Z"));
            let mut expected = map.clone();
            expected.insert(Text::from("bb"), Text::from("Z"));
            proptest::prop_assert!(added.iter().eq(expected.iter()));
        }

        /// Keys order as (app, object id) do, whatever the ids' lengths and bytes: shorter
        /// than eight bytes, one a prefix of the other, zero bytes, the same first eight.
        #[test]
        fn resource_keys_order_as_their_app_and_object_id(
            a in "[\\x00ab]{0,10}",
            b in "[\\x00ab]{0,10}",
            apps in (0..App::ALL.len(), 0..App::ALL.len()),
        ) {
            let (x, y) = (App::ALL[apps.0], App::ALL[apps.1]);
            let keys = (ResourceKey::new(x, a.as_str()), ResourceKey::new(y, b.as_str()));
            proptest::prop_assert_eq!(keys.0.cmp(&keys.1), (x, &a).cmp(&(y, &b)));
            proptest::prop_assert_eq!(keys.0 == keys.1, (x, &a) == (y, &b));
        }
    }

    /// Keys whose bytes order differently from their first or last byte alone, so that a walk
    /// comparing the wrong way would skip or stop early.
    fn keys() -> Vec<Uuid> {
        let mut k: Vec<Uuid> = [
            0x00ff_0000_0000_0000_0000_0000_0000_0001u128,
            0x0100_0000_0000_0000_0000_0000_0000_0000,
            0x7fff_ffff_ffff_ffff_ffff_ffff_ffff_ffff,
            0x8000_0000_0000_0000_0000_0000_0000_0000,
            0xffff_0000_0000_0000_0000_0000_0000_0000,
        ]
        .into_iter()
        .chain((0..200u128).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)))
        .map(Uuid::from_u128)
        .collect();
        k.sort();
        k.dedup();
        k
    }

    #[test]
    fn ascending_lookups_answer_as_searches_do() {
        let all = keys();
        // Every third key is in the map; every key is asked, some twice in a row.
        let map: OrdMap<Uuid, usize> = all
            .iter()
            .step_by(3)
            .map(|k| (*k, k.as_u128() as usize))
            .collect();
        let mut walk = Ascending::new(&map);
        for (i, k) in all.iter().enumerate() {
            assert_eq!(walk.get(*k), map.get(k), "key {i}");
            if i % 5 == 0 {
                assert_eq!(walk.get(*k), map.get(k), "key {i} asked again");
            }
        }
        // Past the last key, and on an empty map.
        assert_eq!(walk.get(Uuid::max()), None);
        assert_eq!(Ascending::new(&OrdMap::<Uuid, u8>::new()).get(all[0]), None);
    }

    #[test]
    #[should_panic(expected = "asked")]
    fn ascending_lookups_refuse_a_key_after_a_greater_one() {
        let all = keys();
        let map: OrdMap<Uuid, ()> = all.iter().map(|k| (*k, ())).collect();
        let mut walk = Ascending::new(&map);
        walk.get(all[10]);
        walk.get(all[9]);
    }

    #[test]
    fn held_ascending_gives_what_held_by_gives() {
        let mut db = DbState::default();
        let all = keys();
        for (i, c) in all.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            db.insert_resource(Resource {
                app: App::Files,
                object_id: format!("object-{i}").into(),
                instance: format!("instance-{i}").into(),
                community: *c,
                mirror: Mirror {
                    name: format!("community {i}").into(),
                    community_type: CommunityType::Public,
                    list_when_restricted: false,
                    external: false,
                    org_id: None,
                    theme: None,
                    pre_moderation: None,
                    post_moderation: None,
                    members: None,
                    lifecycle: Lifecycle::Active,
                },
            });
        }
        let mut held = db.held_ascending();
        for c in &all {
            let (walked, searched) = (held(*c), db.held_by(*c));
            assert_eq!(walked.len(), searched.len());
            assert!(walked.iter().zip(searched).all(|(a, b)| Arc::ptr_eq(a, b)));
        }
    }

    #[test]
    fn a_mirror_agrees_with_its_community_until_a_field_differs() {
        let c = Community {
            uuid: Uuid::from_u128(7),
            name: "Agrees".into(),
            community_type: CommunityType::Private,
            list_when_restricted: true,
            external: false,
            org_id: Some("org".into()),
            theme: None,
            pre_moderation: true,
            post_moderation: false,
            parent: None,
            lifecycle: Lifecycle::Active,
            description: None,
            tags: Vec::new(),
            members: Arc::new([(User::from("ann"), Role::Owner)].into()),
            widgets: Widgets::default(),
        };
        let changes: [fn(&mut Mirror); 10] = [
            |m| m.name = format!("{}!", m.name).into(),
            |m| m.community_type = CommunityType::Public,
            |m| m.list_when_restricted = false,
            |m| m.external = true,
            |m| m.org_id = None,
            |m| m.theme = Some("blue".into()),
            |m| m.pre_moderation = Some(!m.pre_moderation.unwrap_or(true)),
            |m| m.post_moderation = Some(!m.post_moderation.unwrap_or(true)),
            |m| m.members = Some(Arc::new([(User::from("bob"), Role::Member)].into())),
            |m| m.lifecycle = Lifecycle::Trashed,
        ];
        for app in App::ALL {
            let m = Mirror::of(&c, app);
            assert!(m.agrees_with(&c, app), "{app}");
            for (i, change) in changes.iter().enumerate() {
                let mut changed = m.clone();
                change(&mut changed);
                assert_eq!(
                    changed.agrees_with(&c, app),
                    changed == m,
                    "{app}, change {i}"
                );
            }
        }
    }

    proptest::proptest! {
        /// `Id` orders and matches as `Uuid` does, or the maps' searches would miss: ids that
        /// share their leading bytes and differ late (the values lie close) as well as any.
        #[test]
        fn an_id_compares_with_a_uuid_as_the_uuids_do(
            a: u128,
            b: u128,
            close in 0u128..=256,
        ) {
            use equivalent::{Comparable, Equivalent};
            for (x, y) in [(a, b), (a, a.wrapping_add(close)), (b, b)] {
                let (x, y) = (Uuid::from_u128(x), Uuid::from_u128(y));
                proptest::prop_assert_eq!(Id::of(x).compare(&y), x.cmp(&y));
                proptest::prop_assert_eq!(Id::of(x).equivalent(&y), x == y);
            }
        }
    }

    #[test]
    fn a_map_finds_by_id_what_it_finds_by_uuid() {
        let ids: Vec<Uuid> = (0..500u128)
            .map(|i| Uuid::from_u128(i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)))
            .collect();
        let map: OrdMap<Uuid, usize> = ids.iter().enumerate().map(|(i, u)| (*u, i)).collect();
        for (i, u) in ids.iter().enumerate() {
            assert_eq!(map.get(&Id::of(*u)), Some(&i));
            let absent = Uuid::from_u128(u.as_u128() ^ 1);
            assert_eq!(map.get(&Id::of(absent)), map.get(&absent));
        }
    }
}
