//! Values that stay shared through a snapshot. In a world, a community's members are one map
//! (`Arc`) held by the community in both deployments and by every app that mirrors them, and a
//! community or an app's resource is one value held by both deployments (see `fold::Edits`). Serde writes an
//! `Arc` as its contents, so a snapshot would hold each once per holder, and a decoded world
//! would hold that many copies, compare them field by field, and take that much longer to
//! decode.
//!
//! Inside [`Sharing::writing`], a value already written is written as its number instead;
//! inside [`Sharing::reading`], that number gives back the same `Arc`. Outside both (JSON, and
//! snapshots of earlier versions), a value is written and read in full. The table lives in a
//! thread-local because serde's derive gives a field's serializer no other context; bincode
//! writes and reads the fields of one value in the same order on one thread.

use crate::cache;
use crate::state::{Community, Members, Mirror, Resource};
use crate::vocabulary::App;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

type Map = crate::state::MemberRoles;
type Numbers<T> = HashMap<*const T, u32, foldhash::fast::FixedState>;

/// Each value written so far (by address) and its number, per kind.
#[derive(Default)]
struct Writing {
    members: Numbers<Map>,
    resources: Numbers<Resource>,
    communities: Numbers<Community>,
    /// See [`Sharing::mirroring`].
    mirrored: Option<Communities>,
}

/// Each value read so far, by number, per kind.
#[derive(Default)]
struct Reading {
    members: Vec<Members>,
    resources: Vec<Arc<Resource>>,
    communities: Vec<Arc<Community>>,
    /// See [`Sharing::mirroring`].
    mirrored: Option<Mirrored>,
}

/// The communities resources are read as mirroring, in key order, and where the last lookup
/// ended: a database's resources come in the order of their communities, so each lookup is a
/// step or two on from the one before (a lookup in the map was half the cost of making a
/// mirror again at 100,000 communities).
struct Mirrored {
    communities: Vec<(Uuid, Arc<Community>)>,
    at: usize,
}

impl Mirrored {
    fn get(&mut self, id: &Uuid) -> Option<&Arc<Community>> {
        let all = &self.communities;
        let mut i = self.at;
        if all.get(i).is_none_or(|(c, _)| c > id) {
            i = 0; // the next database's resources start again
        }
        let mut steps = 0;
        while steps < 8 && all.get(i).is_some_and(|(c, _)| c < id) {
            i += 1;
            steps += 1;
        }
        if all.get(i).is_some_and(|(c, _)| c < id) {
            i += all[i..].partition_point(|(c, _)| c < id);
        }
        if i != self.at || i == 0 {
            // This community, and those the cursor stepped over since the last lookup.
            let first = if i > self.at { self.at + 1 } else { i };
            self.ahead(first..=i);
        }
        self.at = i;
        all.get(i).filter(|(c, _)| c == id).map(|(_, c)| c)
    }

    /// Asks the cache for what the resources of the communities a few places after `reached`
    /// will read, in three stages, each reading what the stage before it fetched: the
    /// community; the values its mirror shares, and its widget pairs; the text of its widget
    /// instances, among which a resource's instance is looked up. Each is an allocation of its
    /// own, far from the last one read. Without the hints, making the mirrors waited on memory:
    /// decoding a snapshot of 100,000 communities took 13–20% longer.
    fn ahead(&self, reached: std::ops::RangeInclusive<usize>) {
        let last = *reached.end();
        let first = (*reached.start()).max(last.saturating_sub(AHEAD_AT_MOST));
        let stage = |distance: usize| {
            self.communities
                .iter()
                .skip(first + distance)
                .take(last - first + 1)
                .map(|(_, c)| c)
        };
        for c in stage(12) {
            cache::fetch_bytes(Arc::as_ptr(c).cast(), std::mem::size_of::<Community>());
        }
        for c in stage(6) {
            cache::fetch_arc(&c.name);
            c.org_id.iter().chain(&c.theme).for_each(cache::fetch_arc);
            cache::fetch_arc(&c.members);
            let (pairs, len) = c.widgets.memory();
            cache::fetch_bytes(pairs, len);
        }
        for c in stage(3) {
            c.widgets.keys().for_each(cache::fetch_arc);
        }
    }
}

/// The communities [`Mirrored::ahead`] fetches for at most, when a lookup steps over many
/// (a database holding resources of few communities).
const AHEAD_AT_MOST: usize = 8;

type Communities = imbl::OrdMap<Uuid, Arc<Community>>;

enum Table {
    Writing(Writing),
    Reading(Reading),
}

thread_local! {
    static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
}

/// While alive, shared values are written or read as shared (see the module). Dropping it
/// ends that, also when the encoding or decoding fails part way.
pub(crate) struct Sharing(());

impl Sharing {
    pub(crate) fn writing() -> Sharing {
        Sharing::start(Table::Writing(Writing::default()))
    }

    pub(crate) fn reading() -> Sharing {
        Sharing::start(Table::Reading(Reading::default()))
    }

    /// From now on (until called with `None`), a resource whose mirror is what its app copies
    /// of its community among `communities` is written without the mirror. For a snapshot's
    /// intended deployment, where every mirror is (a seventh of a snapshot at 100,000
    /// communities). The reader calls [`mirroring_read`](Self::mirroring_read) at the same
    /// points of the stream.
    pub(crate) fn mirroring(communities: Option<&Communities>) {
        TABLE.with_borrow_mut(|t| {
            if let Some(Table::Writing(w)) = t {
                w.mirrored = communities.cloned();
            }
        });
    }

    /// [`mirroring`](Self::mirroring) for the reader: a resource written without its mirror is
    /// read back with the mirror made from its community among `communities` (as read, in
    /// ascending order; [`Mirror::of`]).
    pub(crate) fn mirroring_read(communities: Option<&[(Uuid, Arc<Community>)]>) {
        TABLE.with_borrow_mut(|t| {
            if let Some(Table::Reading(r)) = t {
                r.mirrored = communities.map(|m| Mirrored {
                    communities: m.to_vec(),
                    at: 0,
                });
            }
        });
    }

    fn start(table: Table) -> Sharing {
        TABLE.with_borrow_mut(|t| {
            assert!(t.is_none(), "one snapshot at a time on a thread");
            *t = Some(table);
        });
        Sharing(())
    }
}

impl Drop for Sharing {
    fn drop(&mut self) {
        TABLE.with_borrow_mut(|t| *t = None);
    }
}

/// How a value is written while sharing: in full the first time, then by number; a resource
/// whose mirror follows from its community, without it (see [`Sharing::mirroring`]).
#[derive(Serialize)]
enum Written<'a, T> {
    New(&'a T),
    Seen(u32),
    Mirroring(Bare<&'a str>),
}

#[derive(Deserialize)]
enum Read<T> {
    New(T),
    Seen(u32),
    Mirroring(Bare<String>),
}

/// A resource but its mirror.
#[derive(Serialize, Deserialize)]
struct Bare<S> {
    app: App,
    object_id: S,
    instance: S,
    community: Uuid,
}

/// A kind of value that a snapshot writes once however often it is held.
trait Kind: Serialize + serde::de::DeserializeOwned {
    fn numbers(w: &mut Writing) -> &mut Numbers<Self>;
    fn values(r: &mut Reading) -> &mut Vec<Arc<Self>>;

    /// The value without what follows from `mirrored`, when that is all it leaves out.
    fn bare<'a>(&'a self, _mirrored: &Communities) -> Option<Bare<&'a str>> {
        None
    }

    /// The value [`Kind::bare`] left `bare`.
    fn unbare(_bare: Bare<String>, _mirrored: Option<&mut Mirrored>) -> Result<Self, String> {
        Err("a value written without its mirror is not a resource".into())
    }
}

impl Kind for Map {
    fn numbers(w: &mut Writing) -> &mut Numbers<Self> {
        &mut w.members
    }
    fn values(r: &mut Reading) -> &mut Vec<Arc<Self>> {
        &mut r.members
    }
}

impl Kind for Resource {
    fn numbers(w: &mut Writing) -> &mut Numbers<Self> {
        &mut w.resources
    }
    fn values(r: &mut Reading) -> &mut Vec<Arc<Self>> {
        &mut r.resources
    }

    fn bare<'a>(&'a self, mirrored: &Communities) -> Option<Bare<&'a str>> {
        let c = mirrored.get(&self.community)?;
        self.mirror.agrees_with(c, self.app).then_some(Bare {
            app: self.app,
            object_id: &self.object_id,
            instance: &self.instance,
            community: self.community,
        })
    }

    fn unbare(bare: Bare<String>, mirrored: Option<&mut Mirrored>) -> Result<Self, String> {
        let c = mirrored
            .and_then(|m| m.get(&bare.community))
            .ok_or_else(|| {
                format!(
                    "resource {} written as mirroring community {}, which is not there",
                    bare.object_id, bare.community
                )
            })?;
        Ok(Resource {
            app: bare.app,
            mirror: Mirror::of(c, bare.app),
            object_id: bare.object_id.into(),
            instance: crate::fold::instance_in(c, &bare.instance),
            community: bare.community,
        })
    }
}

impl Kind for Community {
    fn numbers(w: &mut Writing) -> &mut Numbers<Self> {
        &mut w.communities
    }
    fn values(r: &mut Reading) -> &mut Vec<Arc<Self>> {
        &mut r.communities
    }
}

/// Writes a value in full, or — while writing a snapshot — by number when written before.
pub(crate) struct Out<'a, T>(pub(crate) &'a Arc<T>);

impl<T: Kind> Serialize for Out<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        // None: not sharing; Some((None, _)): the value's first time (with `Some(bare)`: to be
        // written without what follows from the communities mirrored); Some((Some(n), _)):
        // written as n.
        let seen = TABLE.with_borrow_mut(|t| match t {
            Some(Table::Writing(w)) => {
                let numbers = T::numbers(w);
                let next = numbers.len() as u32;
                let n = *numbers.entry(Arc::as_ptr(v)).or_insert(next);
                if n != next {
                    return Some((Some(n), None));
                }
                Some((None, w.mirrored.as_ref().and_then(|m| v.bare(m))))
            }
            _ => None,
        });
        match seen {
            None => (**v).serialize(s),
            Some((Some(n), _)) => Written::<T>::Seen(n).serialize(s),
            Some((None, None)) => Written::New(&**v).serialize(s),
            Some((None, Some(bare))) => Written::<T>::Mirroring(bare).serialize(s),
        }
    }
}

/// Reads what [`Out`] wrote: a value, or the one read before under that number.
pub(crate) struct In<T>(pub(crate) Arc<T>);

impl<'de, T: Kind> Deserialize<'de> for In<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sharing = TABLE.with_borrow(|t| matches!(t, Some(Table::Reading(_))));
        if !sharing {
            return T::deserialize(d).map(|v| In(Arc::new(v)));
        }
        // Read before the table is borrowed: a resource holds a members map, read in turn.
        let read = Read::<T>::deserialize(d)?;
        TABLE.with_borrow_mut(|t| {
            let Some(Table::Reading(r)) = t else {
                unreachable!("checked above");
            };
            let v = match read {
                Read::New(v) => v,
                Read::Mirroring(bare) => {
                    T::unbare(bare, r.mirrored.as_mut()).map_err(D::Error::custom)?
                }
                Read::Seen(n) => {
                    return T::values(r)
                        .get(n as usize)
                        .cloned()
                        .map(In)
                        .ok_or_else(|| {
                            D::Error::custom(format!(
                                "shared value {n} referred to before it was written"
                            ))
                        })
                }
            };
            let v = Arc::new(v);
            T::values(r).push(v.clone());
            Ok(In(v))
        })
    }
}

/// `#[serde(with = "crate::shared::members")]` for a `Members` field.
pub(crate) mod members {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Members, s: S) -> Result<S::Ok, S::Error> {
        Out(m).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        In::deserialize(d).map(|m| m.0)
    }
}

/// `#[serde(with = "crate::shared::optional_members")]` for an `Option<Members>` field.
pub(crate) mod optional_members {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Option<Members>, s: S) -> Result<S::Ok, S::Error> {
        m.as_ref().map(Out).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Members>, D::Error> {
        Ok(Option::<In<Map>>::deserialize(d)?.map(|m| m.0))
    }
}

/// `#[serde(with = "crate::shared::resources")]` for a database's resources by community, in
/// key order, each resource shared.
pub(crate) mod resources {
    use super::*;

    type ByCommunity = imbl::OrdMap<Uuid, crate::state::Held>;

    pub fn serialize<S: Serializer>(m: &ByCommunity, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            m.iter()
                .map(|(k, v)| (k, v.iter().map(Out).collect::<Vec<_>>())),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ByCommunity, D::Error> {
        read_map(d, "resources by community", held)
    }

    /// The entries as written (in ascending order), for the map to be built later.
    pub fn entries<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(Uuid, crate::state::Held)>, D::Error> {
        read_map(d, "resources by community", held)
    }

    fn held(v: Vec<In<Resource>>) -> crate::state::Held {
        v.into_iter().map(|r| r.0).collect()
    }
}

/// `#[serde(with = "crate::shared::communities")]` for a database's communities, each shared.
pub(crate) mod communities {
    use super::*;
    use imbl::OrdMap;

    type ById = OrdMap<Uuid, Arc<Community>>;

    pub fn serialize<S: Serializer>(m: &ById, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k, Out(v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ById, D::Error> {
        read_map(d, "communities by id", |c: In<Community>| c.0)
    }

    /// The entries as written (in ascending order), for the map to be built later.
    pub fn entries<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(Uuid, Arc<Community>)>, D::Error> {
        read_map(d, "communities by id", |c: In<Community>| c.0)
    }
}

/// Reads a map of uuid → `W` into any map, each value turned by `value`.
fn read_map<'de, D, W, V, M>(d: D, what: &'static str, value: fn(W) -> V) -> Result<M, D::Error>
where
    D: Deserializer<'de>,
    W: Deserialize<'de>,
    M: Default + Extend<(Uuid, V)>,
{
    struct Visitor<W, V, M>(&'static str, fn(W) -> V, std::marker::PhantomData<M>);
    impl<'de, W: Deserialize<'de>, V, M: Default + Extend<(Uuid, V)>> serde::de::Visitor<'de>
        for Visitor<W, V, M>
    {
        type Value = M;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<M, A::Error> {
            let mut out = M::default();
            while let Some((k, v)) = a.next_entry::<Uuid, W>()? {
                out.extend(std::iter::once((k, (self.1)(v))));
            }
            Ok(out)
        }
    }
    d.deserialize_map(Visitor(what, value, std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::tests::{recorded, with_files_and_forum};
    use crate::World;

    /// A lookup finds each community asked for, in the order a database's resources ask (with
    /// gaps short and long), again from the start for the next database, and finds nothing
    /// for an id that is not there without losing its place.
    #[test]
    fn mirrored_communities_are_found_in_any_order_asked() {
        let events: Vec<_> = (1..=40).flat_map(with_files_and_forum).collect();
        let w = World::replay(&recorded(events));
        let all = w.intended.communities();
        let mut m = Mirrored {
            communities: all.iter().map(|(k, c)| (*k, c.clone())).collect(),
            at: 0,
        };
        let asked: Vec<u128> = vec![1, 2, 3, 5, 6, 30, 31, 40, 2, 4, 4, 39, 1, 40];
        for n in asked {
            let id = Uuid::from_u128(n);
            let got = m.get(&id).map(|c| c.uuid);
            assert_eq!(got, Some(id), "community {n}");
        }
        for missing in [0u128, 41, 1000] {
            assert!(m.get(&Uuid::from_u128(missing)).is_none(), "{missing}");
            assert_eq!(
                m.get(&Uuid::from_u128(7)).map(|c| c.uuid),
                Some(Uuid::from_u128(7))
            );
        }
    }
}
