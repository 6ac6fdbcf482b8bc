//! Member maps that stay shared through a snapshot. In a world, a community's members are one
//! map (`Arc`) held by the community in both deployments and by every app that mirrors them
//! (see `fold::MemberEdits`). Serde writes an `Arc` as its contents, so a snapshot would hold
//! each map once per holder and a decoded world would hold that many copies, compare them
//! field by field, and take that much longer to decode.
//!
//! Inside [`Sharing::writing`], a map already written is written as its number instead; inside
//! [`Sharing::reading`], that number gives back the same `Arc`. Outside both (JSON, and
//! snapshots of earlier versions), a map is written and read as a plain map. The table lives
//! in a thread-local because serde's derive gives a field's serializer no other context;
//! bincode writes and reads the fields of one value in the same order on one thread.

use crate::state::Members;
use crate::vocabulary::Role;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type Map = BTreeMap<String, Role>;

enum Table {
    /// Each map written so far (by address) and its number.
    Writing(HashMap<*const Map, u32, foldhash::fast::FixedState>),
    /// Each map read so far, by number.
    Reading(Vec<Members>),
}

thread_local! {
    static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
}

/// While alive, member maps are written or read as shared (see the module). Dropping it ends
/// that, also when the encoding or decoding fails part way.
pub(crate) struct Sharing(());

impl Sharing {
    pub(crate) fn writing() -> Sharing {
        Sharing::start(Table::Writing(HashMap::default()))
    }

    pub(crate) fn reading() -> Sharing {
        Sharing::start(Table::Reading(Vec::new()))
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

/// How a map is written while sharing: in full the first time, then by number.
#[derive(Serialize)]
enum Written<'a> {
    New(&'a Map),
    Seen(u32),
}

#[derive(Deserialize)]
enum Read {
    New(Map),
    Seen(u32),
}

/// `#[serde(with = "crate::shared::members")]` for a `Members` field.
pub(crate) mod members {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Members, s: S) -> Result<S::Ok, S::Error> {
        // None: not sharing; Some(None): the map's first time; Some(Some(n)): written as n.
        let seen: Option<Option<u32>> = TABLE.with_borrow_mut(|t| match t {
            Some(Table::Writing(numbers)) => {
                let next = numbers.len() as u32;
                let n = *numbers.entry(Arc::as_ptr(m)).or_insert(next);
                Some((n != next).then_some(n))
            }
            _ => None,
        });
        match seen {
            None => (**m).serialize(s),
            Some(None) => Written::New(m).serialize(s),
            Some(Some(n)) => Written::Seen(n).serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        let sharing = TABLE.with_borrow(|t| matches!(t, Some(Table::Reading(_))));
        if !sharing {
            return Map::deserialize(d).map(Arc::new);
        }
        let read = Read::deserialize(d)?;
        TABLE.with_borrow_mut(|t| {
            let Some(Table::Reading(maps)) = t else {
                unreachable!("checked above");
            };
            match read {
                Read::New(map) => {
                    let m = Arc::new(map);
                    maps.push(m.clone());
                    Ok(m)
                }
                Read::Seen(n) => maps.get(n as usize).cloned().ok_or_else(|| {
                    D::Error::custom(format!("member map {n} referred to before it was written"))
                }),
            }
        })
    }
}

/// `#[serde(with = "crate::shared::optional_members")]` for an `Option<Members>` field.
pub(crate) mod optional_members {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Wrapped(#[serde(with = "super::members")] Members);

    pub fn serialize<S: Serializer>(m: &Option<Members>, s: S) -> Result<S::Ok, S::Error> {
        m.as_ref().map(|m| Wrapped(m.clone())).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Members>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}
