//! A database's content as plain JSON with string keys: what `lifeline replay --format json`
//! prints and what scenario tests compare against.

use crate::state::{Community, DbState, Mirror, Resource};
use serde_json::{json, Map, Value};

pub fn community(c: &Community) -> Value {
    let mut v = json!({
        "name": c.name,
        "type": c.community_type,
        "lifecycle": c.lifecycle,
        "members": c.members.iter().map(|(u, r)| (u.to_string(), json!(r))).collect::<Map<_, _>>(),
        "widgets": c.widgets.iter().map(|(i, d)| (i.to_string(), json!(d))).collect::<Map<_, _>>(),
        "preModeration": c.pre_moderation,
        "postModeration": c.post_moderation,
    });
    let m = v.as_object_mut().expect("an object");
    if c.list_when_restricted {
        m.insert("listWhenRestricted".into(), json!(true));
    }
    if c.external {
        m.insert("external".into(), json!(true));
    }
    for (k, x) in [
        ("orgId", c.org_id.as_deref()),
        ("theme", c.theme.as_deref()),
        ("description", c.description.as_deref()),
    ] {
        if let Some(x) = x {
            m.insert(k.into(), json!(x));
        }
    }
    if let Some(p) = c.parent {
        m.insert("parent".into(), json!(p));
    }
    v
}

pub fn mirror(m: &Mirror) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("name".into(), json!(m.name));
    out.insert("type".into(), json!(m.community_type));
    out.insert("lifecycle".into(), json!(m.lifecycle));
    if m.list_when_restricted {
        out.insert("listWhenRestricted".into(), json!(true));
    }
    if m.external {
        out.insert("external".into(), json!(true));
    }
    for (k, x) in [("orgId", &m.org_id), ("theme", &m.theme)] {
        if let Some(x) = x {
            out.insert(k.into(), json!(x));
        }
    }
    for (k, x) in [
        ("preModeration", m.pre_moderation),
        ("postModeration", m.post_moderation),
    ] {
        if let Some(x) = x {
            out.insert(k.into(), json!(x));
        }
    }
    if let Some(members) = &m.members {
        let members: Map<_, _> = members
            .iter()
            .map(|(u, r)| (u.to_string(), json!(r)))
            .collect();
        out.insert("members".into(), Value::Object(members));
    }
    out
}

pub fn resource(r: &Resource) -> Value {
    let mut m = mirror(&r.mirror);
    m.insert("community".into(), json!(r.community));
    m.insert("instance".into(), json!(r.instance));
    Value::Object(m)
}

/// The whole database; sections it does not hold are left out.
pub fn database(db: &DbState) -> Value {
    let mut out = Map::new();
    if !db.communities.is_empty() {
        let cs: Map<_, _> = db
            .communities
            .iter()
            .map(|(id, c)| (id.to_string(), community(c)))
            .collect();
        out.insert("communities".into(), Value::Object(cs));
    }
    if db.has_resources() {
        let rs: Map<_, _> = db
            .all_resources()
            .into_iter()
            .map(|r| (format!("{}:{}", r.app, r.object_id), resource(r)))
            .collect();
        out.insert("resources".into(), Value::Object(rs));
    }
    if !db.shares.is_empty() {
        let shares: Vec<Value> = db
            .shares
            .iter()
            .map(|(c, app, obj)| json!({"community": c, "app": app, "objectId": obj}))
            .collect();
        out.insert("shares".into(), Value::Array(shares));
    }
    if !db.queue.is_empty() {
        let queue: Vec<Value> = db
            .queue
            .iter()
            .map(|q| json!({"event": q.event, "app": q.app, "type": q.event_type, "community": q.community}))
            .collect();
        out.insert("queue".into(), Value::Array(queue));
    }
    if !db.tasks.is_empty() {
        let tasks: Map<_, _> = db
            .tasks
            .iter()
            .map(|(t, s)| (t.clone(), json!(s)))
            .collect();
        out.insert("tasks".into(), Value::Object(tasks));
    }
    Value::Object(out)
}
