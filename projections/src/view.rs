//! A database's content as plain JSON with string keys: what `lifeline replay --format json`
//! and `GET /api/v1/state` answer, and what scenario tests compare against.
//!
//! The views serialise straight from the state, keys in alphabetical order (as a JSON object
//! built first would have them), so that a whole deployment is written without a copy of it as
//! a JSON tree: at 100,000 communities `replay --format json` writes 185 MB, and the tree took
//! 1.9 GB beside the world.

use crate::state::{Community, DbState, Mirror, Resource};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// The whole database as JSON; sections it does not hold are left out.
pub struct Database<'a>(pub &'a DbState);

/// One community as the Communities database holds it.
struct CommunityView<'a>(&'a Community);

/// One resource of an app database: what it mirrors, its community and widget instance.
struct ResourceView<'a>(&'a Resource);

/// Databases of one deployment at a position, by name.
#[derive(serde::Serialize)]
pub struct Deployment<'a> {
    pub databases: std::collections::BTreeMap<&'a str, Database<'a>>,
    pub family: &'a str,
    pub position: u64,
}

/// [`Database`] as a JSON value, for tests to compare.
pub fn database(db: &DbState) -> Value {
    serde_json::to_value(Database(db)).expect("a database serialises")
}

impl Serialize for Database<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let db = self.0;
        let mut m = s.serialize_map(None)?;
        if !db.communities.is_empty() {
            // A UUID's text sorts as its bytes do: the map's own order is the keys' order.
            let cs = || db.communities.iter().map(|(id, c)| (id, CommunityView(c)));
            m.serialize_entry("communities", &Entries(cs))?;
        }
        if !db.queue.is_empty() {
            let queue: Vec<QueueRow> = db
                .queue
                .iter()
                .map(|q| QueueRow {
                    app: q.app,
                    community: q.community,
                    event: q.event,
                    event_type: &q.event_type,
                })
                .collect();
            m.serialize_entry("queue", &queue)?;
        }
        if db.has_resources() {
            // Sorted once, by the text key (app and object id, unique in a database).
            let mut rs: Vec<(String, &Resource)> = db
                .resources()
                .map(|r| (format!("{}:{}", r.app, r.object_id), r))
                .collect();
            rs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let rs = || rs.iter().map(|(k, r)| (k, ResourceView(r)));
            m.serialize_entry("resources", &Entries(rs))?;
        }
        if !db.shares.is_empty() {
            let shares: Vec<ShareRow> = db
                .shares
                .iter()
                .map(|(community, app, object_id)| ShareRow {
                    app: *app,
                    community: *community,
                    object_id,
                })
                .collect();
            m.serialize_entry("shares", &shares)?;
        }
        if !db.tasks.is_empty() {
            m.serialize_entry("tasks", &Entries(|| db.tasks.iter()))?;
        }
        m.end()
    }
}

impl Serialize for CommunityView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(d) = &c.description {
            m.serialize_entry("description", d)?;
        }
        if c.external {
            m.serialize_entry("external", &true)?;
        }
        m.serialize_entry("lifecycle", &c.lifecycle)?;
        if c.list_when_restricted {
            m.serialize_entry("listWhenRestricted", &true)?;
        }
        // Members and widgets come in user and instance order: text order.
        m.serialize_entry("members", &Entries(|| c.members.iter()))?;
        m.serialize_entry("name", &c.name)?;
        if let Some(o) = &c.org_id {
            m.serialize_entry("orgId", o)?;
        }
        if let Some(p) = &c.parent {
            m.serialize_entry("parent", p)?;
        }
        m.serialize_entry("postModeration", &c.post_moderation)?;
        m.serialize_entry("preModeration", &c.pre_moderation)?;
        if let Some(t) = &c.theme {
            m.serialize_entry("theme", t)?;
        }
        m.serialize_entry("type", &c.community_type)?;
        m.serialize_entry("widgets", &Entries(|| c.widgets.iter()))?;
        m.end()
    }
}

impl Serialize for ResourceView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mirror: &Mirror = &r.mirror;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("community", &r.community)?;
        if mirror.external {
            m.serialize_entry("external", &true)?;
        }
        m.serialize_entry("instance", &r.instance)?;
        m.serialize_entry("lifecycle", &mirror.lifecycle)?;
        if mirror.list_when_restricted {
            m.serialize_entry("listWhenRestricted", &true)?;
        }
        if let Some(members) = &mirror.members {
            m.serialize_entry("members", &Entries(|| members.iter()))?;
        }
        m.serialize_entry("name", &mirror.name)?;
        if let Some(o) = &mirror.org_id {
            m.serialize_entry("orgId", o)?;
        }
        if let Some(p) = mirror.post_moderation {
            m.serialize_entry("postModeration", &p)?;
        }
        if let Some(p) = mirror.pre_moderation {
            m.serialize_entry("preModeration", &p)?;
        }
        if let Some(t) = &mirror.theme {
            m.serialize_entry("theme", t)?;
        }
        m.serialize_entry("type", &mirror.community_type)?;
        m.end()
    }
}

/// A map written from the (key, value) pairs, already in key order, that the function gives.
struct Entries<F>(F);

impl<F, I, K, V> Serialize for Entries<F>
where
    F: Fn() -> I,
    I: Iterator<Item = (K, V)>,
    K: Serialize,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map((self.0)())
    }
}

#[derive(serde::Serialize)]
struct QueueRow<'a> {
    app: crate::vocabulary::App,
    community: uuid::Uuid,
    event: uuid::Uuid,
    #[serde(rename = "type")]
    event_type: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ShareRow<'a> {
    app: crate::vocabulary::App,
    community: uuid::Uuid,
    object_id: &'a str,
}
