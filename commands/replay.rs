//! `replay`: what each database held, or should have held, at a point.

use crate::cli::{Format, ReplayArgs};
use crate::output;
use ledger::Ledger;
use projections::{view, Community, Database, DbState, Role};
use uuid::Uuid;

pub fn replay(l: &Ledger, a: &ReplayArgs, format: Format) -> anyhow::Result<()> {
    let point = crate::domain::resolve(l, &a.at, a.occurred)?;
    // A community named by uuid: only the events that concern it are folded.
    let alone = match (&a.community, a.no_snapshots) {
        (Some(c), false) => match c.parse::<Uuid>() {
            Ok(c) => crate::world::community_world(l, &point, c)?,
            Err(_) => None,
        },
        _ => None,
    };
    let only_community = alone.is_some();
    let built = match alone {
        Some(built) => built,
        None => crate::world::world_at(l, &point, !a.no_snapshots)?,
    };
    l.close();
    crate::domain::warn_unreadable(&built.unreadable);
    // Not freed: the process ends after this (see `recover::release_at_exit`).
    let world = std::mem::ManuallyDrop::new(built.world);
    let deployment = if a.intended {
        &world.intended
    } else {
        &world.actual
    };
    let community = match &a.community {
        Some(c) => Some(find_community(deployment.communities(), c)?),
        None => None,
    };
    let dbs: Vec<Database> = match a.database {
        Some(d) => vec![d],
        None => Database::ALL.to_vec(),
    };
    let family = if a.intended { "intended" } else { "actual" };
    match format {
        Format::Json => {
            let held: Vec<(&str, _)> = dbs
                .iter()
                .map(|d| (d.name(), filtered(deployment.db(*d), community)))
                .collect();
            output::json_line(&view::Deployment {
                databases: held
                    .iter()
                    .map(|(n, db)| (*n, view::Database(db)))
                    .collect(),
                family,
                position: point.position,
            })
        }
        Format::Table => {
            let from = match built.from_snapshot {
                Some(p) => format!("from the snapshot at {p}"),
                None if only_community => {
                    "from the start: the community's own and the deployment-wide ones".into()
                }
                None => "from the start".into(),
            };
            println!(
                "{family} state at position {} ({} domain events folded {from})",
                point.position, built.events_folded
            );
            for d in &dbs {
                print_db(*d, &filtered(deployment.db(*d), community));
            }
            Ok(())
        }
    }
}

pub fn find_community(
    cs: &imbl::OrdMap<Uuid, std::sync::Arc<Community>>,
    wanted: &str,
) -> anyhow::Result<Uuid> {
    if let Ok(id) = wanted.parse::<Uuid>() {
        if cs.contains_key(&id) {
            return Ok(id);
        }
    }
    let named: Vec<Uuid> = cs
        .values()
        .filter(|c| *c.name == *wanted)
        .map(|c| c.uuid)
        .collect();
    match named.as_slice() {
        [one] => Ok(*one),
        [] => Err(crate::exit::with_code(
            crate::exit::NOT_FOUND,
            format!("no community with uuid or name '{wanted}' at that point"),
        )),
        many => Err(crate::exit::with_code(
            crate::exit::ERROR,
            format!(
                "{} communities are named '{wanted}': give the uuid",
                many.len()
            ),
        )),
    }
}

/// The parts of a database about one community.
pub fn filtered(db: &DbState, community: Option<Uuid>) -> DbState {
    let Some(c) = community else {
        return db.clone();
    };
    let mut out = DbState::default();
    if let Some(x) = db.communities.get(&c) {
        out.communities.insert(c, x.clone());
    }
    for r in db.resources_of(c) {
        out.insert_resource(r.clone());
    }
    out.shares = db
        .shares
        .iter()
        .filter(|(sc, _, _)| *sc == c)
        .cloned()
        .collect();
    out.queue = db
        .queue
        .iter()
        .filter(|q| q.community == c)
        .cloned()
        .collect();
    out.tasks = db.tasks.clone();
    out
}

fn print_db(d: Database, db: &DbState) {
    if db.communities.is_empty()
        && !db.has_resources()
        && db.queue.is_empty()
        && db.shares.is_empty()
    {
        return;
    }
    println!("\n{d} database");
    if !db.communities.is_empty() {
        let mut t = output::table(&[
            "community",
            "name",
            "type",
            "state",
            "owners",
            "members",
            "widgets",
        ]);
        for c in db.communities.values() {
            let owners: Vec<&str> = c.owners().collect();
            let widgets: Vec<&str> = c.widgets.values().map(|d| &**d).collect();
            t.add_row(vec![
                c.uuid.to_string(),
                output::clip(&c.name, 40),
                c.community_type.to_string(),
                format!("{:?}", c.lifecycle).to_lowercase(),
                output::clip(&owners.join(", "), 30),
                c.members.len().to_string(),
                output::clip(&widgets.join(", "), 40),
            ]);
        }
        println!("{t}");
    }
    if db.has_resources() {
        let mut t = output::table(&["app", "object id", "community", "name", "type", "members"]);
        for r in db.all_resources() {
            let members = r.mirror.members.as_ref().map_or("-".to_string(), |m| {
                let owners = m.values().filter(|x| **x == Role::Owner).count();
                format!("{} ({owners} owners)", m.len())
            });
            t.add_row(vec![
                r.app.to_string(),
                output::clip(&r.object_id, 40),
                r.community.to_string(),
                output::clip(&r.mirror.name, 30),
                r.mirror.community_type.to_string(),
                members,
            ]);
        }
        println!("{t}");
    }
    if !db.queue.is_empty() {
        let mut t = output::table(&["queued event", "for app", "type", "community", "position"]);
        for q in &db.queue {
            t.add_row(vec![
                q.event.to_string(),
                q.app.to_string(),
                q.event_type.clone(),
                q.community.to_string(),
                q.position.to_string(),
            ]);
        }
        println!("{t}");
    }
    if !db.shares.is_empty() {
        println!("{} shares with communities", db.shares.len());
    }
    for (task, status) in &db.tasks {
        println!("task {task}: {status:?}");
    }
}
