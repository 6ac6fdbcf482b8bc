//! `simulate`: a realistic deployment history (projections::simulate) written into an empty
//! ledger, with each event's occurred and recorded time set to when it happened.

use crate::cli::{Format, SimulateArgs};
use crate::exit::{with_code, ERROR};
use ledger::{EventId, ImportRecord, Ledger, Timestamp};
use projections::simulate::{simulate as generate, Config, Simulated};
use std::collections::HashMap;

/// Events per import commit.
const BATCH_EVENTS: usize = 50_000;

pub struct Written {
    pub events: u64,
    pub communities: usize,
    pub first_ns: i64,
    pub last_ns: i64,
}

/// Simulates `cfg` into the empty ledger `l`.
pub fn write(l: &Ledger, cfg: &Config) -> anyhow::Result<Written> {
    if l.head() != 0 {
        return Err(with_code(
            ERROR,
            format!(
                "the ledger already holds {} events: simulate writes only into a new, empty one \
                 (name another with --ledger)",
                l.head()
            ),
        ));
    }
    let history = generate(cfg);
    let bar = crate::progress::bar(history.len() as u64, "simulate");
    let mut revisions: HashMap<String, u64> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH_EVENTS);
    let written = Written {
        events: history.len() as u64,
        communities: cfg.communities,
        first_ns: history.first().map_or(0, |s| s.occurred_ns),
        last_ns: history.last().map_or(0, |s| s.occurred_ns),
    };
    for s in history {
        batch.push(record(s, &mut revisions));
        if batch.len() == BATCH_EVENTS {
            bar.inc(batch.len() as u64);
            l.import_blocking(std::mem::take(&mut batch))?;
        }
    }
    bar.inc(batch.len() as u64);
    l.import_blocking(batch)?;
    bar.finish_and_clear();
    Ok(written)
}

fn record(s: Simulated, revisions: &mut HashMap<String, u64>) -> ImportRecord {
    let stream = s.event.stream();
    let revision = revisions.entry(stream.clone()).or_insert(0);
    let r = ImportRecord {
        stream,
        revision: *revision,
        recorded: Timestamp(s.occurred_ns),
        event: crate::domain::proposed(&s.event, EventId(s.id), Some(Timestamp(s.occurred_ns))),
    };
    *revision += 1;
    r
}

pub fn config(a: &SimulateArgs) -> anyhow::Result<Config> {
    let start = crate::time_fmt::parse(&a.start)?;
    Ok(Config::new(a.communities, a.days, a.seed, start.0))
}

pub fn simulate(l: &Ledger, a: &SimulateArgs, format: Format) -> anyhow::Result<()> {
    let cfg = config(a)?;
    let w = write(l, &cfg)?;
    crate::world::keep_snapshots(l);
    l.close();
    match format {
        Format::Json => crate::output::json_line(&serde_json::json!({
            "events": w.events, "communities": w.communities, "days": a.days, "seed": a.seed,
            "from": crate::time_fmt::format(Timestamp(w.first_ns)),
            "to": crate::time_fmt::format(Timestamp(w.last_ns)),
        })),
        Format::Table => {
            println!(
                "simulated {} communities over {} days (seed {}): {} events from {} to {}",
                w.communities,
                a.days,
                a.seed,
                w.events,
                crate::time_fmt::format(Timestamp(w.first_ns)),
                crate::time_fmt::format(Timestamp(w.last_ns))
            );
            Ok(())
        }
    }
}
