//! `recover --advise`: which backups to restore. Each combination of the recent backups of the
//! databases in question is restored in a copy of the world, planned for, and ranked by the
//! work it leaves: content no command brings back first, then steps a person must do, then
//! all steps.

use crate::cli::Format;
use crate::output;
use crate::recover::Analysis;
use ledger::Ledger;
use projections::events::{DatabaseRestored, DomainEvent};
use projections::findings::{of_world, Restore};
use projections::plan::plan;
use projections::{Database, Failures, Recorded, World};
use serde::Serialize;
use std::collections::HashSet;

/// Backups considered per database (the latest ones at the point).
pub const CANDIDATES_PER_DATABASE: usize = 3;
/// Combinations tried at most (the latest backups first).
pub const COMBINATIONS_MAX: usize = 243;

/// One way to restore: a backup for each database in question, and the repair work it leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Choice {
    pub rank: usize,
    pub restores: Vec<(Database, String)>,
    pub steps: usize,
    pub manual_steps: usize,
    pub content_lost: usize,
    pub orphans: usize,
    pub differences: usize,
    pub converges: bool,
}

/// The databases in question: those `a` found restored, else every one.
fn in_question(a: &Analysis) -> Vec<Database> {
    match a.findings.restored() {
        d if d.is_empty() => Database::ALL.to_vec(),
        d => d,
    }
}

/// The ways to restore the databases `a` found restored (every database when none was),
/// least repair work first.
pub fn choices(l: &Ledger, a: Analysis) -> anyhow::Result<Vec<Choice>> {
    let databases = in_question(&a);
    // Restores leave the backups recorded as they are: the analysed world lists them.
    let candidates: Vec<Vec<(String, u64)>> = databases
        .iter()
        .map(|d| latest_backups(&a.world, *d))
        .collect();
    let open: HashSet<u64> = a.findings.restores.iter().map(|r| r.position).collect();
    let combos: Vec<_> = if open.is_empty() {
        // No database named: each one alone, from each of its recent backups.
        databases
            .iter()
            .zip(&candidates)
            .flat_map(|(d, c)| c.iter().map(move |b| vec![(*d, b.clone())]))
            .collect()
    } else {
        product(&databases, &candidates)
    };
    if combos.is_empty() {
        // No backup to restore from: no world to build.
        return Ok(Vec::new());
    }
    // The analysed world is not needed any more: freed before the base is built (at 100,000
    // communities the peak went from 1.83 to 1.15 GB).
    let Analysis {
        world,
        findings,
        events,
        from_snapshot,
        point,
        ..
    } = a;
    drop((world, findings));
    let base = base_world(l, from_snapshot, point.position, events, &open, &candidates)?;
    let head = base.position;
    // Each choice is worked out on its own copy of the base (copies share what they do not
    // change), side by side: the findings of one are partly parallel, its plan is not.
    let jobs: Vec<projections::parallel::Job<Choice>> = combos
        .into_iter()
        .take(COMBINATIONS_MAX)
        .map(|combo| -> projections::parallel::Job<Choice> {
            let base = &base;
            Box::new(move || evaluate(base, head, &combo))
        })
        .collect();
    let mut options = projections::parallel::side_by_side(&jobs);
    drop(jobs);
    options.sort_by_key(|o| (!o.converges, o.content_lost, o.manual_steps, o.steps));
    for (i, o) in options.iter_mut().enumerate() {
        o.rank = i + 1;
    }
    Ok(options)
}

/// The world at the analysis' point without the restores in question (each choice restores on
/// top of it), holding the contents of the `candidates` backups.
///
/// It continues the latest snapshot before the earliest of those restores and candidates when
/// one serves: only the events after it are read and folded, and only the candidates' and the
/// restored backups' contents are kept. At 100,000 communities folding the whole history with
/// every backup kept took most of a minute and 3.8 GB. Otherwise the whole history is folded.
fn base_world(
    l: &Ledger,
    from_snapshot: Option<u64>,
    position: u64,
    analysed: Vec<Recorded>,
    open: &HashSet<u64>,
    candidates: &[Vec<(String, u64)>],
) -> anyhow::Result<World> {
    let mut keep: HashSet<String> = candidates
        .iter()
        .flatten()
        .map(|(b, _)| b.clone())
        .collect();
    let without_open = |mut events: Vec<Recorded>| -> Vec<Recorded> {
        events.retain(|r| !open.contains(&r.position));
        events
    };
    let earliest = candidates
        .iter()
        .flatten()
        .map(|(_, p)| *p)
        .chain(open.iter().copied())
        .min();
    let started = match from_snapshot {
        // The analysis read every event: fold them.
        None => None,
        Some(_) => {
            let target = earliest.map_or(position, |e| e - 1);
            crate::world::start_at_or_before(l, target, position)?
        }
    };
    let (mut world, events) = match started {
        Some(s) => {
            crate::domain::warn_unreadable(&s.tail.unreadable);
            (s.world, without_open(s.tail.events))
        }
        None if from_snapshot.is_none() => (World::default(), without_open(analysed)),
        None => {
            let loaded = crate::domain::load(l, position, None)?;
            crate::domain::warn_unreadable(&loaded.unreadable);
            (World::default(), without_open(loaded.events))
        }
    };
    keep.extend(projections::fold::restored_labels(&events));
    world.keep_backups = Some(keep);
    Ok(world.continued_keeping(&events))
}

pub fn advise(l: &Ledger, a: Analysis, format: Format) -> anyhow::Result<()> {
    let databases = in_question(&a);
    let options = choices(l, a)?;
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

fn evaluate(base: &World, head: u64, combo: &[(Database, (String, u64))]) -> Choice {
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
        restores: combo.iter().map(|(d, (l, _))| (*d, l.clone())).collect(),
        steps: p.steps.len(),
        manual_steps: p.steps.iter().filter(|s| s.action.is_manual()).count(),
        content_lost: p.unrecoverable.iter().filter(|r| r.is_content()).count(),
        orphans: f.orphans.len(),
        differences: f.differences.len(),
        converges: p.converges,
    }
}
