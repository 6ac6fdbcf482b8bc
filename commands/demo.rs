//! `demo`: the main job end to end on the embedded ledger. A simulated deployment, then the
//! seed scenario — Activities restored from a backup two days old and Communities from last
//! night's — then the findings, the plan, and every report written to a directory.

use crate::cli::{DemoArgs, FormatArg};
use crate::plan::{make, put_all, write, Made};
use anyhow::Context;
use ledger::{EventId, ImportRecord, Ledger, Timestamp};
use projections::events::{DatabaseRestored, DomainEvent};
use projections::simulate::backup_label;
use projections::Database;
use std::path::Path;
use std::time::Instant;

const DAY_NS: i64 = 86_400_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;

pub fn demo(a: &DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if a.simulation.days < 3 {
        return Err(crate::exit::with_code(
            crate::exit::USAGE,
            "--days must be at least 3: the scenario restores a backup two days old",
        ));
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let path = a.out.join("demo.redb");
    for stale in [path.clone(), path.with_extension("redb.wal")] {
        if stale.exists() {
            std::fs::remove_file(&stale)
                .with_context(|| format!("removing {}", stale.display()))?;
        }
    }
    let l = crate::open_or_create(&path, ledger::Options::default(), "creating")?;
    let cfg = crate::simulate::config(&a.simulation)?;
    let w = crate::simulate::write(&l, &cfg)?;
    println!(
        "Simulated {} communities over {} days: {} lifecycle events in {}.",
        w.communities,
        cfg.days,
        w.events,
        path.display()
    );
    eprintln!("lifeline: simulated in {:.1?}", started.elapsed());

    // The seed scenario, the morning after the last simulated day.
    let last_day = cfg.start_ns + i64::from(cfg.days - 1) * DAY_NS;
    let restores = [
        (
            Database::Activities,
            backup_label(Database::Activities, last_day - 2 * DAY_NS),
        ),
        (
            Database::Communities,
            backup_label(Database::Communities, last_day),
        ),
    ];
    let when = Timestamp(last_day + DAY_NS + 6 * HOUR_NS);
    for (k, (database, backup)) in restores.iter().enumerate() {
        let when = Timestamp(when.0 + k as i64 * 60_000_000_000);
        record_restore(&l, cfg.seed, *database, backup, when)?;
        println!("{database} was restored from the backup {backup}.");
    }

    let made = make(&l, &crate::domain::At::Now, false, &[])?;
    l.close();
    println!();
    let analysis = &made.analysis;
    crate::recover::print_findings(&analysis.findings, &analysis.in_progress, Some(a.rows));
    println!();
    write(&made, FormatArg::Table, None)?;
    write_all(&made, &a.out)?;
    println!(
        "\nWrote to {}: index.html (start here), runbook.md, owners.csv, plan.json, findings.json, \
         wsadmin/*.py, and each app's sync reports.",
        a.out.display()
    );
    println!(
        "To follow the repair in the ledger: lifeline plan record --ledger {ledger}, then \
         lifeline plan done {id} STEPS --ledger {ledger} as steps are done (5, or 1-12); \
         recover and plan then see the databases as those steps left them.",
        ledger = path.display(),
        id = made.short_id(),
    );
    eprintln!("lifeline: demo done in {:.1?}", started.elapsed());
    Ok(())
}

/// Records a restore with an id and time that follow from the simulation, so that the same
/// flags give the same ledger, plan id and reports.
pub fn record_restore(
    l: &Ledger,
    seed: u64,
    database: Database,
    backup: &str,
    when: Timestamp,
) -> anyhow::Result<()> {
    let e = DomainEvent::DatabaseRestored(DatabaseRestored {
        database,
        backup: backup.to_owned(),
        actor: Some("wasadmin".into()),
    });
    let id = blake3::hash(format!("lifeline demo {seed} {backup}").as_bytes());
    let id = uuid::Builder::from_random_bytes(id.as_bytes()[..16].try_into()?).into_uuid();
    let stream = e.stream();
    let revision = l
        .stream_record(&stream)?
        .and_then(|r| r.last_revision)
        .map_or(0, |r| r + 1);
    l.import_blocking(vec![ImportRecord {
        stream,
        revision,
        recorded: when,
        event: crate::domain::proposed(&e, EventId(id), Some(when)),
    }])?;
    Ok(())
}

/// Every form of the plan, and the findings, into `out`.
pub fn write_all(made: &Made, out: &Path) -> anyhow::Result<()> {
    for format in [
        FormatArg::Json,
        FormatArg::Runbook,
        FormatArg::Wsadmin,
        FormatArg::Html,
    ] {
        write(made, format, Some(out))?;
    }
    let findings = serde_json::to_string_pretty(&made.analysis.findings)?;
    put_all(out, &[("findings.json".to_owned(), findings)])
}
