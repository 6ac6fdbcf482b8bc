//! `history COMMUNITY`: the community's timeline, each change with the databases that hold it
//! now, those where it still waits in the retry queue, and those that lost it — and how.

use crate::cli::{Format, HistoryArgs};
use crate::output;
use ledger::Ledger;
use projections::reach::{Fate, Loss};
use projections::Database;
use std::collections::BTreeMap;

/// One change in a community's timeline, as printed and as the API answers it.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Entry {
    position: u64,
    occurred: String,
    actor: String,
    #[serde(rename = "type")]
    event_type: String,
    data: serde_json::Value,
    held: Vec<String>,
    queued: Vec<String>,
    lost: Vec<Lost>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Lost {
    database: String,
    at: u64,
    #[serde(flatten)]
    loss: Loss,
    /// Whether a repair plan made after the loss has every step done: the change was brought
    /// back, or its owners were told it is gone.
    #[serde(default)]
    repaired: bool,
}

pub fn history(l: &Ledger, a: &HistoryArgs, format: Format) -> anyhow::Result<()> {
    let entries = timeline(l, &a.community)?;
    l.close();
    show(&entries, format)
}

/// Prints a timeline in `format`.
pub fn show(entries: &[Entry], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            for e in entries {
                output::json_line(e)?;
            }
        }
        Format::Table => print(entries),
    }
    Ok(())
}

/// The timeline of a community named by uuid or current name.
pub fn timeline(l: &Ledger, community: &str) -> anyhow::Result<Vec<Entry>> {
    crate::audit::catch_up(l)?;
    let head = l.head();
    let community = crate::audit::community_id(l, community)?;
    let positions = l.tagged(&format!("community:{community}"), 1, head)?;
    if positions.is_empty() {
        return Err(crate::exit::with_code(
            crate::exit::NOT_FOUND,
            format!("no events about community {community}"),
        ));
    }
    let followed = match crate::world::community_fates(l, head, community, &positions)? {
        Some(followed) => followed,
        None => crate::world::fates_of(l, head, positions.into_iter().collect(), true)?,
    };
    crate::domain::warn_unreadable(&followed.unreadable);
    let repaired = crate::recover::Repairs::read(l, head)?.since;
    Ok(followed
        .events
        .iter()
        .map(|r| entry(r, followed.fates.get(&r.position), repaired))
        .collect())
}

/// `repaired`: losses up to there count as repaired.
fn entry(
    r: &projections::Recorded,
    fates: Option<&BTreeMap<Database, Fate>>,
    repaired: u64,
) -> Entry {
    let (event_type, data, _) = r.event.encode();
    let (mut held, mut queued, mut lost) = (Vec::new(), Vec::new(), Vec::new());
    for (d, fate) in fates.into_iter().flatten() {
        match fate {
            Fate::Held { .. } => held.push(d.name().to_owned()),
            Fate::Queued => queued.push(d.name().to_owned()),
            Fate::Lost { at, loss } => lost.push(Lost {
                database: d.name().to_owned(),
                at: *at,
                loss: loss.clone(),
                repaired: *at <= repaired,
            }),
        }
    }
    Entry {
        position: r.position,
        occurred: crate::time_fmt::format(ledger::Timestamp(r.occurred_ns)),
        actor: r.event.actor().unwrap_or("").to_owned(),
        event_type,
        data: serde_json::from_slice(&data).unwrap_or(serde_json::Value::Null),
        held,
        queued,
        lost,
    }
}

fn print(entries: &[Entry]) {
    let mut t = output::table(&[
        "position",
        "occurred",
        "actor",
        "change",
        "held by",
        "not held by",
    ]);
    for e in entries {
        let mut missing: Vec<String> = e.queued.iter().map(|d| format!("{d} (queued)")).collect();
        missing.extend(e.lost.iter().map(|l| {
            let how = match &l.loss {
                Loss::Restore { backup, .. } => format!("restored from {backup} at @{}", l.at),
                Loss::QueueCleared => format!("queue cleared at @{}", l.at),
            };
            let since = if l.repaired { ", since repaired" } else { "" };
            format!("{} ({how}{since})", l.database)
        }));
        t.add_row(vec![
            e.position.to_string(),
            crate::time_fmt::text_to_seconds(&e.occurred),
            e.actor.clone(),
            output::clip(&format!("{} {}", e.event_type, e.data), 50),
            e.held.join(", "),
            missing.join("\n"),
        ]);
    }
    println!("{t}");
}
