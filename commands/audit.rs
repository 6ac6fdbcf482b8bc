//! `audit`: who did what, when, and which databases it concerned — answered from the tag
//! index, which is first caught up from its watermark to the head of the log.

use crate::cli::{AuditArgs, FormatArg as Format};
use crate::domain::{resolve, stream_range};
use crate::output;
use ledger::{Ledger, Position};
use projections::events::QueueScope;
use projections::{Database, DomainEvent};
use std::collections::HashMap;

/// Tagged positions gathered before a commit while catching up: each tag's positions go into
/// one piece per commit, so the larger the batch, the fewer keys (at 8 bytes a position, about
/// 8 MB held).
const TAG_BATCH_POSITIONS: usize = 1_000_000;

/// The tags of one event: what an audit can ask for.
pub fn tags_of(e: &DomainEvent) -> Vec<String> {
    let mut tags = vec!["domain".to_string(), format!("type:{}", e.type_name())];
    if let Some(a) = e.actor() {
        tags.push(format!("actor:{a}"));
    }
    if let Some(c) = e.community() {
        tags.push(format!("community:{c}"));
    }
    if let DomainEvent::RemoteAppTransferred(t) = e {
        tags.push(format!("community:{}", t.from_community));
    }
    for d in databases_of(e) {
        tags.push(format!("database:{}", d.name()));
    }
    tags.sort();
    tags.dedup();
    tags
}

/// The databases a fact is about (where a lifecycle event was then pushed is a matter of
/// replay, not of the fact).
pub fn databases_of(e: &DomainEvent) -> Vec<Database> {
    use DomainEvent::*;
    match e {
        RemoteAppProvisioned(p) => vec![p.app.database()],
        RemoteAppTransferred(t) => vec![Database::Communities, t.app.database()],
        CommunityShareAdded(s) | CommunityShareRemoved(s) => vec![s.app.database()],
        DeliveryFailed(d) | DeliveryRetried(d) => vec![Database::Communities, d.app.database()],
        QueueCleared(q) => match &q.scope {
            QueueScope::RemoteApp { app } => vec![Database::Communities, app.database()],
            _ => vec![Database::Communities],
        },
        BackupTaken(b) => vec![b.database],
        DatabaseRestored(r) => vec![r.database],
        RepairPlanned(_) | RepairStepPlanned(_) | RepairStepApplied(_) => vec![],
        _ => vec![Database::Communities],
    }
}

/// Brings the tag index up to the head of the log; returns the events it indexed.
pub fn catch_up(l: &Ledger) -> anyhow::Result<usize> {
    let from = l.tags_watermark()? + 1;
    let head = l.head();
    if from > head {
        return Ok(0);
    }
    let bar = crate::progress::bar(head - from + 1, "index");
    let mut batch: HashMap<String, Vec<Position>> = HashMap::new();
    let mut gathered = 0;
    let mut indexed = 0;
    let put = |batch: &mut HashMap<String, Vec<Position>>, up_to| {
        l.put_tags_blocking(batch.drain().collect(), up_to)
    };
    // Streamed: the first catch-up of a long log does not hold the log in memory.
    stream_range(l, from, head, None, |chunk| {
        indexed += chunk.len();
        for r in chunk {
            for tag in tags_of(&r.event) {
                batch.entry(tag).or_default().push(r.position);
                gathered += 1;
            }
            if gathered >= TAG_BATCH_POSITIONS {
                put(&mut batch, r.position)?;
                gathered = 0;
                bar.set_position(r.position - from + 1);
            }
        }
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    put(&mut batch, head)?;
    bar.finish_and_clear();
    Ok(indexed)
}

/// Positions in both sorted lists.
pub(crate) fn intersect(a: &[Position], b: &[Position]) -> Vec<Position> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The positions an audit query selects, oldest first.
pub fn select(
    l: &Ledger,
    tags: &[String],
    from: Position,
    to: Position,
) -> anyhow::Result<Vec<Position>> {
    let mut lists = Vec::new();
    for t in tags {
        lists.push(l.tagged(t, from, to)?);
    }
    if lists.is_empty() {
        lists.push(l.tagged("domain", from, to)?);
    }
    lists.sort_by_key(Vec::len);
    let mut positions = lists.remove(0);
    for other in &lists {
        positions = intersect(&positions, other);
    }
    Ok(positions)
}

/// One event of an audit, as printed and as the API answers it.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Row {
    position: Position,
    recorded: String,
    occurred: String,
    actor: String,
    #[serde(rename = "type")]
    event_type: String,
    community: String,
    databases: String,
    /// The event in plain words (`describe`): the table's last column.
    what: String,
    data: serde_json::Value,
}

pub fn audit(l: &Ledger, a: &AuditArgs, format: Format) -> anyhow::Result<()> {
    let (rows, total) = query(l, a)?;
    l.close();
    show(&rows, total, format)
}

/// Prints the rows of an audit that selected `total` events in `format`.
pub fn show(rows: &[Row], total: usize, format: Format) -> anyhow::Result<()> {
    if total > rows.len() {
        eprintln!(
            "lifeline: showing the last {} of {total} events (raise --limit for more)",
            rows.len(),
        );
    }
    print(rows, format)
}

/// The events an audit selects: the last `a.limit` of them, and how many there are in all.
pub fn query(l: &Ledger, a: &AuditArgs) -> anyhow::Result<(Vec<Row>, usize)> {
    catch_up(l)?;
    let head = l.head();
    let from = match &a.since {
        Some(at) => resolve(l, at, false)?.position + 1,
        None => 1,
    };
    let to = match &a.until {
        Some(at) => resolve(l, at, false)?.position,
        None => head,
    };
    if from > to + 1 {
        return Err(crate::exit::with_code(
            crate::exit::USAGE,
            format!(
                "since (position {}) is after until (position {to}): nothing lies between them; \
                 swap them",
                from - 1
            ),
        ));
    }
    let mut tags = Vec::new();
    if let Some(c) = &a.community {
        tags.push(format!("community:{}", community_id(l, c)?));
    }
    if let Some(x) = &a.actor {
        tags.push(format!("actor:{x}"));
    }
    if let Some(t) = &a.event_type {
        tags.push(format!("type:{t}"));
    }
    if let Some(d) = a.database {
        tags.push(format!("database:{}", d.name()));
    }
    let positions = select(l, &tags, from, to)?;
    let shown = &positions[positions.len().saturating_sub(a.limit)..];
    let mut rows = Vec::with_capacity(shown.len());
    // One read transaction for them all (ascending, so a segment holding several is read once).
    for e in l.events_at(shown)? {
        let Some(e) = e else { continue };
        let Ok(event) = projections::decode(&e.event_type, &e.data, &e.metadata) else {
            continue;
        };
        rows.push(Row {
            position: e.position,
            recorded: crate::time_fmt::format(e.recorded),
            occurred: crate::time_fmt::format(e.occurred),
            actor: event.actor().unwrap_or("").to_owned(),
            event_type: e.event_type.clone(),
            community: event.community().map(|c| c.to_string()).unwrap_or_default(),
            databases: databases_of(&event)
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(" "),
            what: projections::describe::describe(&event),
            data: serde_json::from_slice(&e.data).unwrap_or(serde_json::Value::Null),
        });
    }
    Ok((rows, positions.len()))
}

const COLUMNS: [&str; 9] = [
    "position",
    "recorded",
    "occurred",
    "actor",
    "type",
    "community",
    "databases",
    "what",
    "data",
];

impl Row {
    /// The row's cells, in [`COLUMNS`] order.
    fn cells(&self) -> [String; 9] {
        [
            self.position.to_string(),
            self.recorded.clone(),
            self.occurred.clone(),
            self.actor.clone(),
            self.event_type.clone(),
            self.community.clone(),
            self.databases.clone(),
            self.what.clone(),
            self.data.to_string(),
        ]
    }
}

fn print(rows: &[Row], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            for r in rows {
                output::json_line(r)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(COLUMNS)?;
            for r in rows {
                w.write_record(r.cells())?;
            }
            w.flush()?;
        }
        Format::Runbook | Format::Wsadmin | Format::Html => {
            unreachable!("refused before the audit runs (lib.rs)")
        }
        Format::Table => {
            if rows.is_empty() {
                println!("no events");
                return Ok(());
            }
            // The table leaves out the recorded time (occurred is what a reader asks about)
            // and the data (`--format json` and `csv` carry it): what each event did is said
            // in words.
            let shown = [0, 2, 3, 4, 5, 6, 7];
            let header = shown.map(|i| COLUMNS[i]);
            let mut t = output::table(&header);
            for r in rows {
                let mut cells = r.cells();
                cells[2] = crate::time_fmt::text_to_seconds(&r.occurred);
                cells[7] = output::clip(&r.what, 80);
                t.add_row(shown.map(|i| std::mem::take(&mut cells[i])));
            }
            println!("{t}");
        }
    }
    Ok(())
}

/// A community named by uuid, or by its current (intended) name.
pub fn community_id(l: &Ledger, wanted: &str) -> anyhow::Result<uuid::Uuid> {
    if let Ok(id) = wanted.parse::<uuid::Uuid>() {
        return Ok(id);
    }
    let point = crate::domain::Point {
        position: l.head(),
        occurred_by: None,
    };
    let world = crate::world::world_at(l, &point, true)?.world;
    let found = crate::replay::find_community(world.intended.communities(), wanted);
    // Freed on a thread of its own (about a second at 100,000 communities): the command goes
    // on meanwhile, and `serve`, which asks too, does not keep it.
    std::thread::spawn(move || drop(world));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersection_of_sorted_lists() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[2, 3, 7, 9]), [3, 7]);
        assert!(intersect(&[], &[1]).is_empty());
    }
}
