//! `recover --advise`: which backups to restore. Each combination of the recent backups of the
//! databases in question is restored in a copy of the world, planned for, and ranked by the
//! work it leaves: content no command brings back first, then steps a person must do, then
//! all steps.

use crate::cli::Format;
use crate::output;
use crate::recover::Analysis;
use projections::events::{DatabaseRestored, DomainEvent};
use projections::findings::{of_world, Restore};
use projections::plan::plan;
use projections::{Database, Failures, Recorded, World};
use serde::Serialize;

/// Backups considered per database (the latest ones at the point).
pub const CANDIDATES_PER_DATABASE: usize = 3;
/// Combinations tried at most (the latest backups first).
pub const COMBINATIONS_MAX: usize = 243;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Choice {
    rank: usize,
    restores: Vec<(Database, String)>,
    steps: usize,
    manual_steps: usize,
    content_lost: usize,
    orphans: usize,
    differences: usize,
    converges: bool,
}

pub fn advise(a: &Analysis, format: Format) -> anyhow::Result<()> {
    // The world before the restores in question; each option restores on top of it.
    let open: Vec<u64> = a.findings.restores.iter().map(|r| r.position).collect();
    let base_events: Vec<Recorded> = a
        .events
        .iter()
        .filter(|r| !open.contains(&r.position))
        .cloned()
        .collect();
    // Keep every backup: each is a candidate.
    let base = World::default().continued_keeping(&base_events);
    let mut databases: Vec<Database> = a.findings.restored();
    if databases.is_empty() {
        databases = Database::ALL.to_vec();
    }
    let candidates: Vec<Vec<(String, u64)>> = databases
        .iter()
        .map(|d| latest_backups(&base, *d))
        .collect();
    let combos = if a.findings.restores.is_empty() {
        // No database named: each one alone, from each of its recent backups.
        databases
            .iter()
            .zip(&candidates)
            .flat_map(|(d, c)| c.iter().map(move |b| vec![(*d, b.clone())]))
            .collect()
    } else {
        product(&databases, &candidates)
    };
    let head = base.position;
    let mut options: Vec<Choice> = combos
        .into_iter()
        .take(COMBINATIONS_MAX)
        .map(|combo| evaluate(&base, head, combo))
        .collect();
    options.sort_by_key(|o| (!o.converges, o.content_lost, o.manual_steps, o.steps));
    for (i, o) in options.iter_mut().enumerate() {
        o.rank = i + 1;
    }
    match format {
        Format::Json => output::json_line(&options),
        Format::Table if options.is_empty() => {
            println!("No backups recorded: there is nothing to restore from.");
            Ok(())
        }
        Format::Table => {
            println!(
                "{} ways to restore {}, least repair work first",
                options.len(),
                databases
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut t = output::table(&[
                "rank",
                "restore",
                "steps",
                "by hand",
                "content lost",
                "orphans",
                "differences",
            ]);
            for o in &options {
                t.add_row(vec![
                    o.rank.to_string(),
                    o.restores
                        .iter()
                        .map(|(d, b)| format!("{d} from {b}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    o.steps.to_string(),
                    o.manual_steps.to_string(),
                    o.content_lost.to_string(),
                    o.orphans.to_string(),
                    o.differences.to_string(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
    }
}

/// The latest backups of `d`, newest first, with their positions.
fn latest_backups(w: &World, d: Database) -> Vec<(String, u64)> {
    let mut of_db: Vec<(String, u64)> = w
        .backups
        .values()
        .filter(|b| b.database == d)
        .map(|b| (b.label.clone(), b.position))
        .collect();
    of_db.sort_by_key(|(_, p)| std::cmp::Reverse(*p));
    of_db.truncate(CANDIDATES_PER_DATABASE);
    of_db
}

/// Every choice of one backup per database.
fn product(
    dbs: &[Database],
    candidates: &[Vec<(String, u64)>],
) -> Vec<Vec<(Database, (String, u64))>> {
    let mut out: Vec<Vec<(Database, (String, u64))>> = vec![Vec::new()];
    for (d, c) in dbs.iter().zip(candidates) {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                c.iter().map(move |b| {
                    let mut v = prefix.clone();
                    v.push((*d, b.clone()));
                    v
                })
            })
            .collect();
    }
    out.retain(|v| !v.is_empty());
    out
}

fn evaluate(base: &World, head: u64, combo: Vec<(Database, (String, u64))>) -> Choice {
    let mut w = base.clone();
    let none = Failures::default();
    let mut restores = Vec::new();
    for (k, (database, (label, backup_position))) in combo.iter().enumerate() {
        let position = head + k as u64 + 1;
        let r = Recorded {
            position,
            id: uuid::Uuid::nil(),
            recorded_ns: 0,
            occurred_ns: 0,
            event: DomainEvent::DatabaseRestored(DatabaseRestored {
                database: *database,
                backup: label.clone(),
                actor: None,
            }),
        };
        w.apply(&r, &none);
        restores.push(Restore {
            database: *database,
            backup: label.clone(),
            backup_position: *backup_position,
            position,
            what_if: true,
        });
    }
    let f = of_world(&w, restores);
    let p = plan(&f, &w);
    Choice {
        rank: 0,
        restores: combo.into_iter().map(|(d, (l, _))| (d, l)).collect(),
        steps: p.steps.len(),
        manual_steps: p.steps.iter().filter(|s| s.action.is_manual()).count(),
        content_lost: p.unrecoverable.iter().filter(|r| r.is_content()).count(),
        orphans: f.orphans.len(),
        differences: f.differences.len(),
        converges: p.converges,
    }
}
