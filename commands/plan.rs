//! `plan`: the repair plan at a point, in the form asked for (a table, JSON, a Markdown runbook,
//! wsadmin scripts, HTML reports, the owners as CSV); `plan record` and `plan done` put the
//! repair itself in the ledger.

use crate::cli::{FormatArg, PlanAction, PlanArgs};
use crate::exit::{with_code, ERROR, NOT_FOUND, USAGE};
use crate::output::{self, clip};
use crate::recover::{analyze, Analysis, RestoreArg};
use anyhow::Context;
use ledger::{AppendError, Checkpoint, EventId, ExpectedRevision, Ledger};
use projections::converge::Residual;
use projections::events::{DomainEvent, Repair};
use projections::findings::Restore;
use projections::plan::{OwnerNotice, Plan, Step};
use projections::state::Deployment;
use std::path::{Path, PathBuf};

/// The longest reason the plan's table shows whole (wrapped in its column).
const REASON_CHARS_MAX: usize = 300;

/// A plan with its id and what it was made from.
pub struct Made {
    pub plan: Plan,
    /// Hex blake3 of the plan's content and the checkpoint of the log it was made from.
    pub id: String,
    pub checkpoint: Checkpoint,
    pub analysis: Analysis,
    /// The actual deployment as the plan's steps leave it.
    pub repaired: Deployment,
}

impl Made {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// The event `plan record` appends for this plan.
    pub fn recorded(&self, actor: Option<&str>) -> DomainEvent {
        DomainEvent::RepairPlanned(Repair {
            plan: self.id.clone(),
            step: None,
            steps: Some(self.plan.steps.len() as u32),
            at: Some(self.plan.position),
            actor: actor.map(str::to_owned),
        })
    }
}

/// The event `plan done` appends for one step of a recorded plan.
pub fn step_done(plan: &str, step: u32, actor: Option<&str>) -> DomainEvent {
    DomainEvent::RepairStepApplied(Repair {
        plan: plan.to_owned(),
        step: Some(step),
        steps: None,
        at: None,
        actor: actor.map(str::to_owned),
    })
}

pub fn make(
    l: &Ledger,
    at: &crate::domain::At,
    occurred: bool,
    restores: &[RestoreArg],
) -> anyhow::Result<Made> {
    let analysis = analyze(l, at, occurred, restores)?;
    let (mut plan, repaired) =
        projections::plan::plan_and_repaired(&analysis.findings, &analysis.world);
    // A plan is made from the log up to its last event that is not the bookkeeping of a
    // repair: recording a plan, or its steps, does not change the plan or its id.
    let basis = analysis
        .events
        .iter()
        .rev()
        .filter(|r| r.position <= analysis.point.position)
        .find(|r| {
            !matches!(
                r.event,
                DomainEvent::RepairPlanned(_) | DomainEvent::RepairStepApplied(_)
            )
        })
        .map(|r| r.position);
    // Continued from a snapshot, the events analysed may all be bookkeeping: ask the log.
    let basis = match basis {
        Some(p) => p,
        None if analysis.from_snapshot.is_some() => {
            crate::domain::last_change(l, analysis.point.position)?
        }
        None => 0,
    };
    plan.position = basis;
    let checkpoint = l
        .checkpoint_at(Some(basis))
        .context("computing the checkpoint the plan is made from")?;
    let id = plan_id(&plan, &checkpoint);
    Ok(Made {
        plan,
        id,
        checkpoint,
        analysis,
        repaired,
    })
}

/// blake3 over a domain tag, the plan as JSON, and the checkpoint (size little-endian, root).
pub fn plan_id(plan: &Plan, checkpoint: &Checkpoint) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"lifeline repair plan v1\0");
    h.update(&serde_json::to_vec(plan).expect("plans serialise"));
    h.update(&checkpoint.size.to_le_bytes());
    h.update(&checkpoint.root);
    h.finalize().to_hex().to_string()
}

pub fn plan(l: &Ledger, a: &PlanArgs, format: FormatArg) -> anyhow::Result<()> {
    if a.action.is_some() && a.out.is_some() {
        return Err(with_code(
            USAGE,
            "--out is where a plan is written; `plan record` and `plan done` write to the ledger",
        ));
    }
    let p = &a.point;
    let pointed = p.at != crate::domain::At::Now || p.occurred || !p.restore.is_empty();
    if pointed && matches!(a.action, Some(PlanAction::Done { .. })) {
        return Err(with_code(
            USAGE,
            "`plan done` marks a step of a recorded plan: --at, --occurred and --restore do not \
             apply",
        ));
    }
    match &a.action {
        Some(PlanAction::Record { actor }) => record(l, a, actor.as_deref(), format),
        Some(PlanAction::Done { plan, step, actor }) => {
            done(l, plan, *step, actor.as_deref(), format)
        }
        None => {
            let p = &a.point;
            let made = make(l, &p.at, p.occurred, &p.restore)?;
            l.close();
            write(&made, format, a.out.as_deref())?;
            crate::recover::release_at_exit(made);
            Ok(())
        }
    }
}

/// Writes the plan in `format`, to standard output or into `out`.
pub fn write(made: &Made, format: FormatArg, out: Option<&Path>) -> anyhow::Result<()> {
    match (format, out) {
        (FormatArg::Table, _) => {
            print_table(made);
            Ok(())
        }
        (FormatArg::Json, None) => output::json_line(&json(made)),
        (FormatArg::Json, Some(dir)) => {
            let v = serde_json::to_string_pretty(&json(made))?;
            put(dir, "plan.json", &v)
        }
        (FormatArg::Runbook, None) => {
            print!("{}", crate::runbook::runbook(made));
            Ok(())
        }
        (FormatArg::Runbook, Some(dir)) => {
            put(dir, "runbook.md", &crate::runbook::runbook(made))?;
            put(dir, "owners.csv", &crate::runbook::owners_csv(&made.plan)?)
        }
        (FormatArg::Csv, None) => {
            print!("{}", crate::runbook::owners_csv(&made.plan)?);
            Ok(())
        }
        (FormatArg::Csv, Some(dir)) => {
            put(dir, "owners.csv", &crate::runbook::owners_csv(&made.plan)?)
        }
        (FormatArg::Wsadmin, Some(dir)) => {
            for (name, text) in crate::scripts::scripts(made) {
                put(&dir.join("wsadmin"), &name, &text)?;
            }
            Ok(())
        }
        (FormatArg::Html, Some(dir)) => {
            for (name, text) in crate::reports::reports(made) {
                put(dir, &name, &text)?;
            }
            Ok(())
        }
        (FormatArg::Wsadmin | FormatArg::Html, None) => Err(with_code(
            USAGE,
            "--format wsadmin and --format html write several files: name a directory with --out",
        )),
    }
}

/// Writes one file, making its directory.
pub fn put(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// What `--format json` writes for a plan (and the API answers).
pub fn json(made: &Made) -> Json<'_> {
    let p = &made.plan;
    Json {
        checkpoint: &made.checkpoint,
        converges: p.converges,
        id: &made.id,
        owners: &p.owners,
        position: p.position,
        restores: &made.analysis.findings.restores,
        steps: &p.steps,
        unrecoverable: &p.unrecoverable,
    }
}

/// A plan as JSON: written straight from the plan, without a copy as a JSON tree (a plan of
/// 100,000 communities is megabytes of it).
#[derive(serde::Serialize)]
pub struct Json<'a> {
    checkpoint: &'a Checkpoint,
    converges: bool,
    id: &'a str,
    owners: &'a [OwnerNotice],
    position: u64,
    restores: &'a [Restore],
    steps: &'a [Step],
    unrecoverable: &'a [Residual],
}

fn print_table(made: &Made) {
    let p = &made.plan;
    println!(
        "Repair plan {} at position {}: {} steps, {} by hand",
        made.short_id(),
        p.position,
        p.steps.len(),
        p.steps.iter().filter(|s| s.action.is_manual()).count()
    );
    if p.steps.is_empty() {
        println!("Nothing to repair: every database agrees with the others and with the ledger.");
        return;
    }
    let mut t = output::table(&["#", "step", "how", "why"]);
    // The reason is the longest text: the other columns give it room on a narrow terminal.
    for (column, percent) in [(1, 30), (2, 20)] {
        if let Some(c) = t.column_mut(column) {
            c.set_constraint(comfy_table::ColumnConstraint::UpperBoundary(
                comfy_table::Width::Percentage(percent),
            ));
        }
    }
    for s in &p.steps {
        let how = if s.calls.is_empty() {
            "by hand".to_owned()
        } else {
            let mut services: Vec<&str> = s.calls.iter().map(|c| c.service.name()).collect();
            services.dedup();
            format!("wsadmin {}", services.join(", "))
        };
        t.add_row(vec![
            s.number.to_string(),
            s.title.clone(),
            how,
            // Wrapped, not cut: the reason is what the step is for. Only a reason listing
            // many restores is shortened (the runbook and JSON have it whole).
            clip(&s.reason, REASON_CHARS_MAX),
        ]);
    }
    println!("{t}");
    println!("{}", convergence_line(p));
}

pub fn convergence_line(p: &Plan) -> String {
    let content = p.unrecoverable.iter().filter(|r| r.is_content()).count();
    if p.converges {
        use projections::describe::count;
        let lost = match content {
            0 => String::new(),
            n => format!(
                ", except {} no command brings back",
                count(n, "item of content", "items of content")
            ),
        };
        let owners = match p.owners.len() {
            0 => String::new(),
            n => format!(" ({} to tell)", count(n, "owner", "owners")),
        };
        format!(
            "After these steps every database agrees with the others and with the \
             ledger{lost}{owners}."
        )
    } else {
        format!(
            "WARNING: after these steps {} that the plan does not explain; see \
             `unrecoverable` in --format json.",
            projections::describe::count(
                p.unrecoverable.len() - content,
                "difference remains",
                "differences remain"
            )
        )
    }
}

fn record(l: &Ledger, a: &PlanArgs, actor: Option<&str>, format: FormatArg) -> anyhow::Result<()> {
    if !a.point.restore.is_empty() {
        return Err(with_code(
            USAGE,
            "a what-if plan (--restore) cannot be recorded: record the restore first \
             (lifeline record DatabaseRestored …), then the plan",
        ));
    }
    let made = make(l, &a.point.at, a.point.occurred, &[])?;
    let steps = made.plan.steps.len();
    let event = made.recorded(actor);
    let stream = event.stream();
    let appended = append(l, &stream, ExpectedRevision::NoStream, &event);
    l.close();
    let recorded = match appended {
        Ok(_) => true,
        Err(AppendError::WrongExpectedVersion { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    match format {
        FormatArg::Json => output::json_line(&serde_json::json!({
            "plan": made.id, "steps": steps, "recorded": recorded, "stream": stream,
        })),
        _ => {
            if recorded {
                println!("recorded plan {} ({steps} steps) in {stream}", made.id);
            } else {
                println!("plan {} is already recorded in {stream}", made.id);
            }
            println!(
                "after each step: lifeline plan done {} STEP",
                made.short_id()
            );
            Ok(())
        }
    }
}

fn append(
    l: &Ledger,
    stream: &str,
    expected: ExpectedRevision,
    e: &DomainEvent,
) -> Result<(), AppendError> {
    let proposed = crate::domain::proposed(e, EventId::new_random(), None);
    l.append_blocking(stream, expected, vec![proposed])
        .map(|_| ())
}

fn done(
    l: &Ledger,
    wanted: &str,
    step: u32,
    actor: Option<&str>,
    format: FormatArg,
) -> anyhow::Result<()> {
    // Only the repair bookkeeping is decoded: a long log is read, not held in memory.
    let repairs = |t: &str| matches!(t, "RepairPlanned" | "RepairStepApplied");
    let events = crate::domain::load_types(l, 1, l.head(), None, repairs)?.events;
    let plans: Vec<&Repair> = events
        .iter()
        .filter_map(|r| match &r.event {
            DomainEvent::RepairPlanned(p) if p.plan.starts_with(wanted) && wanted.len() >= 8 => {
                Some(p)
            }
            _ => None,
        })
        .collect();
    let planned = match plans.as_slice() {
        [one] => *one,
        [] => {
            return Err(with_code(
                NOT_FOUND,
                format!("no recorded plan has the id '{wanted}' (give at least its first 8 characters; `lifeline plan record` records one)"),
            ))
        }
        _ => return Err(with_code(USAGE, format!("'{wanted}' names several plans: give more of the id"))),
    };
    let steps = planned.steps.unwrap_or(0);
    if step == 0 || step > steps {
        return Err(with_code(
            USAGE,
            format!("plan {} has steps 1 to {steps}, not {step}", planned.plan),
        ));
    }
    let done_steps: std::collections::BTreeSet<u32> = events
        .iter()
        .filter_map(|r| match &r.event {
            DomainEvent::RepairStepApplied(s) if s.plan == planned.plan => s.step,
            _ => None,
        })
        .collect();
    if done_steps.contains(&step) {
        return Err(with_code(
            ERROR,
            format!(
                "step {step} of plan {} is already recorded as done; nothing was appended",
                planned.plan
            ),
        ));
    }
    // Changes recorded since the plan was made may call for other steps.
    let since = planned.at.unwrap_or(0);
    let mut changed = 0usize;
    crate::domain::scan_range(
        l,
        since + 1,
        l.head(),
        None,
        |t| !repairs(t),
        |_| {
            changed += 1;
            std::ops::ControlFlow::Continue(())
        },
    )?;
    let event = step_done(&planned.plan, step, actor);
    let stream = event.stream();
    let revision = l
        .stream_record(&stream)?
        .and_then(|r| r.last_revision)
        .map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
    append(l, &stream, revision, &event)?;
    l.close();
    let left = steps as usize - done_steps.len() - 1;
    if changed > 0 {
        let what = if changed == 1 {
            "1 change was".to_owned()
        } else {
            format!("{changed} changes were")
        };
        eprintln!(
            "lifeline: {what} recorded after this plan was made (at position {since}); \
             its remaining steps may no longer fit: `lifeline plan` shows the plan for now"
        );
    }
    match format {
        FormatArg::Json => output::json_line(&serde_json::json!({
            "plan": planned.plan, "step": step, "left": left, "changedSince": changed,
        })),
        _ => {
            println!("step {step} of {steps} done; {left} left");
            if left == 0 {
                println!(
                    "plan complete: restores up to position {} count as repaired",
                    planned.at.unwrap_or(0)
                );
            }
            Ok(())
        }
    }
}
