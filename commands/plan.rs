//! `plan`: the repair plan at a point, in the form asked for (a table, JSON, a Markdown runbook,
//! wsadmin scripts, HTML reports, the owners as CSV); `plan record` and `plan done` put the
//! repair itself in the ledger.

use crate::cli::{FormatArg, PlanAction, PlanArgs, Steps};
use crate::exit::{with_code, ERROR, NOT_FOUND, USAGE};
use crate::output::{self, clip};
use crate::record::Ends;
use crate::recover::{analyze, Analysis, Progress, RestoreArg};
use anyhow::Context;
use ledger::{AppendError, Checkpoint, EventId, ExpectedRevision, Ledger};
use projections::converge::Residual;
use projections::events::{DomainEvent, Repair};
use projections::findings::Restore;
use projections::plan::{OwnerNotice, Plan, Step};
use projections::repair::Action;
use projections::state::Deployment;
use std::path::Path;

/// The longest reason the plan's table shows whole (wrapped in its column).
const REASON_CHARS_MAX: usize = 300;

/// The first 12 characters of a plan id: what tables, runbooks and `plan done` show.
pub fn short(id: &str) -> &str {
    projections::describe::short_plan(id)
}

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
        short(&self.id)
    }

    /// The events `plan record` appends for this plan, in one append: with what each step
    /// does, which `plan done` copies into the steps it records. A plan whose steps' actions
    /// come to more than [`PART_BYTES`] of JSON carries them in a `RepairStepPlanned` event
    /// per step after it (several for a step whose action is larger) instead of in itself.
    pub fn recorded(&self, actor: Option<&str>) -> Vec<DomainEvent> {
        self.recorded_in_parts(actor, PART_BYTES)
    }

    /// [`Made::recorded`], with parts of at most about `part_bytes`.
    pub fn recorded_in_parts(&self, actor: Option<&str>, part_bytes: usize) -> Vec<DomainEvent> {
        let actions: Vec<Action> = self.plan.steps.iter().map(|s| s.action.clone()).collect();
        let head = |actions: Vec<Action>, parts: Option<u32>| {
            DomainEvent::RepairPlanned(Repair {
                plan: self.id.clone(),
                step: None,
                steps: Some(self.plan.steps.len() as u32),
                at: Some(self.plan.position),
                actions,
                action: None,
                part: None,
                parts,
                actor: actor.map(str::to_owned),
            })
        };
        let size = serde_json::to_vec(&actions).map_or(usize::MAX, |v| v.len());
        if size <= part_bytes {
            return vec![head(actions, None)];
        }
        let parts: Vec<DomainEvent> = (1..)
            .zip(actions)
            .flat_map(|(n, a)| {
                step_events(
                    DomainEvent::RepairStepPlanned,
                    &self.id,
                    n,
                    a.split(part_bytes),
                    actor,
                )
            })
            .collect();
        std::iter::once(head(Vec::new(), Some(parts.len() as u32)))
            .chain(parts)
            .collect()
    }

    /// The events of this plan recorded and every step of it done, in order, as `plan
    /// record` and `plan done` write them (parts of at most about `part_bytes`).
    pub fn all_done(&self, actor: Option<&str>, part_bytes: usize) -> Vec<DomainEvent> {
        let done = (1..).zip(&self.plan.steps).flat_map(|(n, step)| {
            step_done(&self.id, n, step.action.clone().split(part_bytes), actor)
        });
        self.recorded_in_parts(actor, part_bytes)
            .into_iter()
            .chain(done)
            .collect()
    }
}

/// The most JSON of what a plan's steps do that one recorded event carries: a megabyte keeps
/// each event far inside the ledger's limit (16 MiB) and inside what gRPC clients take in one
/// message by default (4 MiB), however much a restore lost. Measured: a Communities restore
/// ten days back at 100,000 communities makes a plan whose steps' actions are 47 MB, one of
/// them 45 MB.
pub const PART_BYTES: usize = 1 << 20;

/// The events that say step `step` of `plan` was done: one per part of what it did, in order
/// (one without an action for a plan recorded without its steps' effects).
pub fn step_done(
    plan: &str,
    step: u32,
    parts: Vec<Action>,
    actor: Option<&str>,
) -> Vec<DomainEvent> {
    step_events(DomainEvent::RepairStepApplied, plan, step, parts, actor)
}

/// `kind` events for step `step` of `plan`, one per part of its action.
fn step_events(
    kind: fn(Repair) -> DomainEvent,
    plan: &str,
    step: u32,
    parts: Vec<Action>,
    actor: Option<&str>,
) -> Vec<DomainEvent> {
    let n = parts.len() as u32;
    let event = |action: Option<Action>, part: Option<u32>| {
        kind(Repair {
            plan: plan.to_owned(),
            step: Some(step),
            steps: None,
            at: None,
            actions: Vec::new(),
            action,
            part,
            parts: part.map(|_| n),
            actor: actor.map(str::to_owned),
        })
    };
    match n {
        0 => vec![event(None, None)],
        1 => parts.into_iter().map(|a| event(Some(a), None)).collect(),
        _ => (1..)
            .zip(parts)
            .map(|(i, a)| event(Some(a), Some(i)))
            .collect(),
    }
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
    // repair: recording a plan does not change the plan or its id (a step done does: the
    // databases changed).
    let basis = analysis
        .events
        .iter()
        .rev()
        .filter(|r| r.position <= analysis.point.position)
        .find(|r| !r.event.is_bookkeeping())
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

/// Refuses what cannot be asked of `plan` together, before any work.
pub(crate) fn check_args(a: &PlanArgs, format: FormatArg) -> anyhow::Result<()> {
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
    if a.action.is_none() {
        match (format, &a.out) {
            (FormatArg::Table, Some(_)) => return Err(table_is_for_the_terminal()),
            (FormatArg::Wsadmin | FormatArg::Html, None) => return Err(several_files()),
            _ => {}
        }
    }
    Ok(())
}

fn table_is_for_the_terminal() -> anyhow::Error {
    with_code(
        USAGE,
        "the table is for the terminal: with --out, give --format json, runbook, csv, wsadmin \
         or html",
    )
}

pub fn plan(l: &Ledger, a: &PlanArgs, format: FormatArg) -> anyhow::Result<()> {
    check_args(a, format)?;
    match &a.action {
        Some(PlanAction::Record { actor }) => record(l, a, actor.as_deref(), format),
        Some(PlanAction::Done {
            plan,
            steps: Steps(steps),
            actor,
        }) => done(l, plan, steps, actor.as_deref(), format),
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
        (_, Some(dir)) => put_all(dir, &files(made, format)?),
        (FormatArg::Table, None) => {
            print_table(&made.plan, &made.id, &made.analysis.in_progress);
            Ok(())
        }
        (FormatArg::Json, None) => output::json_line(&json(made)),
        (FormatArg::Runbook, None) => {
            print!("{}", crate::runbook::runbook(made));
            Ok(())
        }
        (FormatArg::Csv, None) => {
            print!("{}", crate::runbook::owners_csv(&made.plan)?);
            Ok(())
        }
        (FormatArg::Wsadmin | FormatArg::Html, None) => Err(several_files()),
    }
}

fn several_files() -> anyhow::Error {
    with_code(
        USAGE,
        "--format wsadmin and --format html write several files: name a directory with --out",
    )
}

/// The files `--out` holds for `format`: (path under the directory, `/`-separated; text).
pub fn files(made: &Made, format: FormatArg) -> anyhow::Result<Vec<(String, String)>> {
    Ok(match format {
        FormatArg::Json => vec![(
            "plan.json".to_owned(),
            serde_json::to_string_pretty(&json(made))?,
        )],
        FormatArg::Runbook => vec![
            ("runbook.md".to_owned(), crate::runbook::runbook(made)),
            (
                "owners.csv".to_owned(),
                crate::runbook::owners_csv(&made.plan)?,
            ),
        ],
        FormatArg::Csv => vec![(
            "owners.csv".to_owned(),
            crate::runbook::owners_csv(&made.plan)?,
        )],
        FormatArg::Wsadmin => crate::scripts::scripts(made)
            .into_iter()
            .map(|(name, text)| (format!("wsadmin/{name}"), text))
            .collect(),
        FormatArg::Html => crate::reports::reports(made),
        FormatArg::Table => return Err(table_is_for_the_terminal()),
    })
}

/// Writes `files` (from [`files`]) under `dir`, making the directories they need. A path that
/// would leave `dir` (absolute, or with `..`) is refused before anything is written.
pub fn put_all(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    use std::path::Component;
    for (name, _) in files {
        let inside = !name.is_empty()
            && Path::new(name)
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(with_code(
                ERROR,
                format!("'{name}' is not a file name under --out; nothing was written"),
            ));
        }
    }
    for (name, text) in files {
        let path = dir.join(name);
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// What `--format json` writes for a plan (and the API answers).
pub fn json(made: &Made) -> Json<'_> {
    let restores = &made.analysis.findings.restores;
    let in_progress = &made.analysis.in_progress;
    json_of(
        &made.plan,
        &made.id,
        &made.checkpoint,
        restores,
        in_progress,
    )
}

/// [`json`] of a plan with its id, checkpoint, the restores it repairs and the recorded plans
/// in progress.
pub fn json_of<'a>(
    p: &'a Plan,
    id: &'a str,
    checkpoint: &'a Checkpoint,
    restores: &'a [Restore],
    in_progress: &'a [Progress],
) -> Json<'a> {
    Json {
        checkpoint,
        converges: p.converges,
        id,
        in_progress,
        owners: &p.owners,
        position: p.position,
        restores,
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
    /// Absent when no recorded plan is in progress (keys in order, as the API sorts them).
    #[serde(rename = "inProgress", skip_serializing_if = "<[_]>::is_empty")]
    in_progress: &'a [Progress],
    owners: &'a [OwnerNotice],
    position: u64,
    restores: &'a [Restore],
    steps: &'a [Step],
    unrecoverable: &'a [Residual],
}

/// The plan as a table; `id` is its id, `in_progress` the recorded plans not yet done.
pub fn print_table(p: &Plan, id: &str, in_progress: &[Progress]) {
    for line in crate::recover::under_way_lines(in_progress, Some(id)) {
        println!("{line}");
    }
    println!(
        "Repair plan {} at position {}: {} steps, {} by hand",
        short(id),
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
    let p = &a.point;
    let recorded = record_in(Ends::Process, l, &p.at, p.occurred, &p.restore, actor);
    l.close();
    show_recorded(&recorded?, format)
}

/// Records the plan at `at` (`plan record`); what it did, as `plan record --format json` says
/// it: `{"plan", "steps", "recorded", "stream"}` (`recorded` false when it already was).
pub fn record_in(
    ends: Ends,
    l: &Ledger,
    at: &crate::domain::At,
    occurred: bool,
    restores: &[RestoreArg],
    actor: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    if !restores.is_empty() {
        return Err(with_code(
            USAGE,
            "a what-if plan (--restore) cannot be recorded: record the restore first \
             (lifeline record DatabaseRestored …), then the plan",
        ));
    }
    let made = make(l, at, occurred, &[])?;
    let steps = made.plan.steps.len();
    let events = made.recorded(actor);
    let stream = events[0].stream();
    let recorded = match append(l, &stream, ExpectedRevision::NoStream, &events) {
        Ok(_) => true,
        Err(AppendError::WrongExpectedVersion { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    let answer = serde_json::json!({
        "plan": made.id, "steps": steps, "recorded": recorded, "stream": stream,
    });
    match ends {
        Ends::Process => crate::recover::release_at_exit(made),
        Ends::Call => drop(made),
    }
    Ok(answer)
}

/// Says what [`record_in`] did, in `format`.
pub fn show_recorded(v: &serde_json::Value, format: FormatArg) -> anyhow::Result<()> {
    if format == FormatArg::Json {
        return output::json_line(v);
    }
    let (id, stream) = (v["plan"].as_str().unwrap_or(""), &v["stream"]);
    let stream = stream.as_str().unwrap_or("");
    if v["recorded"] == true {
        println!("recorded plan {id} ({} steps) in {stream}", v["steps"]);
    } else {
        println!("plan {id} is already recorded in {stream}");
    }
    println!(
        "after each step: lifeline plan done {} STEP (or several at once: 1-5,7)",
        short(id)
    );
    Ok(())
}

/// Appends `events` to `stream` in one append: all of them or none.
fn append(
    l: &Ledger,
    stream: &str,
    expected: ExpectedRevision,
    events: &[DomainEvent],
) -> Result<(), AppendError> {
    let proposed = events
        .iter()
        .map(|e| crate::domain::proposed(e, EventId::new_random(), None))
        .collect();
    l.append_blocking(stream, expected, proposed).map(|_| ())
}

fn done(
    l: &Ledger,
    wanted: &str,
    steps: &[u32],
    actor: Option<&str>,
    format: FormatArg,
) -> anyhow::Result<()> {
    let done = done_in(l, wanted, steps, actor);
    l.close();
    show_done(&done?, format)
}

/// The most steps one `plan done` names (a range is expanded before it is checked).
const STEPS_MAX: u32 = 1_000_000;

/// Step numbers as `plan done` takes them: `5`, `13-678`, `1,3,5-9`; in order, each once.
pub fn parse_steps(text: &str) -> Result<Steps, String> {
    let number = |t: &str| -> Result<u32, String> {
        t.trim()
            .parse::<u32>()
            .map_err(|_| format!("'{t}' is not a step number (steps are 5, 13-678 or 1,3,5-9)"))
    };
    let mut out = std::collections::BTreeSet::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if a > b {
                    return Err(format!("'{part}' runs backwards: write {b}-{a}"));
                }
                if b - a >= STEPS_MAX {
                    return Err(format!("'{part}' is more steps than a plan has"));
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(number(part)?);
            }
        }
    }
    Ok(Steps(out.into_iter().collect()))
}

/// Step numbers written short: `1-3, 7`.
fn ranges(steps: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let mut j = i;
        while j + 1 < steps.len() && steps[j + 1] == steps[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            steps[i].to_string()
        } else {
            format!("{}-{}", steps[i], steps[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// Records steps `wanted_steps` of the recorded plan whose id starts with `wanted` as done
/// (`plan done`), all in one append or none; what it did, as `plan done --format json` says
/// it: `{"plan", "done", "steps", "left", "changedSince", "since", "effect"}` (the steps just
/// recorded; changes recorded since the plan was made at `since`; whether the steps carry what
/// they do to the databases, which the plans recorded by earlier builds lack).
pub fn done_in(
    l: &Ledger,
    wanted: &str,
    wanted_steps: &[u32],
    actor: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    // Only the repairs are read, found by their tags.
    crate::audit::catch_up(l)?;
    let repairs = |t: &str| {
        matches!(
            t,
            "RepairPlanned" | "RepairStepPlanned" | "RepairStepApplied"
        )
    };
    let events = crate::recover::repair_events(l, l.head())?;
    let plans: Vec<(u64, &Repair)> = events
        .iter()
        .filter_map(|r| match &r.event {
            DomainEvent::RepairPlanned(p) if p.plan.starts_with(wanted) && wanted.len() >= 8 => {
                Some((r.position, p))
            }
            _ => None,
        })
        .collect();
    let (planned_at, planned) = match plans.as_slice() {
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
    if let Some(step) = wanted_steps.iter().find(|s| **s == 0 || **s > steps) {
        return Err(with_code(
            USAGE,
            format!(
                "plan {} has steps 1 to {steps}, not {step}; nothing was appended",
                planned.plan
            ),
        ));
    }
    if wanted_steps.is_empty() {
        return Err(with_code(USAGE, "no step given: name the steps done"));
    }
    let done_steps: std::collections::BTreeSet<u32> = events
        .iter()
        .filter_map(|r| match &r.event {
            DomainEvent::RepairStepApplied(s) if s.plan == planned.plan => s.step,
            _ => None,
        })
        .collect();
    let again: Vec<u32> = wanted_steps
        .iter()
        .copied()
        .filter(|s| done_steps.contains(s))
        .collect();
    if !again.is_empty() {
        let (which, are) = match again.len() {
            1 => ("step", "is"),
            _ => ("steps", "are"),
        };
        return Err(with_code(
            ERROR,
            format!(
                "{which} {} of plan {} {are} already recorded as done; nothing was appended",
                ranges(&again),
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
    let mut actions = planned_actions(l, planned_at, planned)?;
    let effect = actions.iter().any(|a| !a.is_empty());
    let events: Vec<DomainEvent> = wanted_steps
        .iter()
        .flat_map(|&step| {
            let parts = actions
                .get_mut(step as usize - 1)
                .map(std::mem::take)
                .unwrap_or_default();
            step_done(&planned.plan, step, parts, actor)
        })
        .collect();
    let stream = events[0].stream();
    let revision = l
        .stream_record(&stream)?
        .and_then(|r| r.last_revision)
        .map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
    append(l, &stream, revision, &events)?;
    let left = steps as usize - done_steps.len() - wanted_steps.len();
    Ok(serde_json::json!({
        "plan": planned.plan, "done": wanted_steps, "steps": steps, "left": left,
        "changedSince": changed, "since": since, "effect": effect,
    }))
}

/// What each step of the plan `planned` (recorded at `position`) does, in parts of at most
/// [`PART_BYTES`] each: from the plan itself, or from the `RepairStepPlanned` events recorded
/// with it. Empty for every step of a plan recorded without its steps' effects.
fn planned_actions(
    l: &Ledger,
    position: u64,
    planned: &Repair,
) -> anyhow::Result<Vec<Vec<Action>>> {
    let steps = planned.steps.unwrap_or(0) as usize;
    let mut actions = vec![Vec::new(); steps];
    if !planned.actions.is_empty() {
        for (parts, action) in actions.iter_mut().zip(&planned.actions) {
            *parts = action.clone().split(PART_BYTES);
        }
        return Ok(actions);
    }
    let Some(n) = planned.parts.filter(|n| *n > 0) else {
        return Ok(actions);
    };
    // The parts were appended with the plan, so they follow it in the log.
    let positions: Vec<u64> = (position + 1..=position + u64::from(n)).collect();
    let loaded = crate::domain::load_positions(l, &positions)?;
    let broken = || {
        with_code(
            ERROR,
            format!(
                "plan {} says {n} events after it (position {position}) carry what its steps \
                 do, but they are not all there: `lifeline verify` checks the ledger",
                planned.plan
            ),
        )
    };
    if loaded.len() != positions.len() {
        return Err(broken());
    }
    for r in loaded {
        match r.event {
            DomainEvent::RepairStepPlanned(Repair {
                plan,
                step: Some(step),
                action: Some(action),
                ..
            }) if plan == planned.plan && (1..=steps).contains(&(step as usize)) => {
                actions[step as usize - 1].push(action);
            }
            _ => return Err(broken()),
        }
    }
    Ok(actions)
}

/// Says what [`done_in`] did, in `format`; a warning when changes were recorded after the
/// plan was made.
pub fn show_done(v: &serde_json::Value, format: FormatArg) -> anyhow::Result<()> {
    let changed = v["changedSince"].as_u64().unwrap_or(0);
    if changed > 0 {
        eprintln!(
            "lifeline: {} recorded after this plan was made (at position {}); its remaining \
             steps may no longer fit: `lifeline plan` shows the plan for now",
            projections::describe::count(changed as usize, "change was", "changes were"),
            v["since"]
        );
    }
    if v["effect"] == false {
        eprintln!(
            "lifeline: plan {} was recorded without what its steps do: the step counts, but the \
             databases are taken as they were; `lifeline plan` shows what is left",
            v["plan"].as_str().map_or("", short)
        );
    }
    if format == FormatArg::Json {
        return output::json_line(v);
    }
    let done: Vec<u32> = v["done"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok()))
        .collect();
    let which = if done.len() == 1 { "step" } else { "steps" };
    println!(
        "{which} {} of {} done; {} left",
        ranges(&done),
        v["steps"],
        v["left"]
    );
    if v["left"] == 0 {
        println!(
            "plan complete: restores up to position {} count as repaired, and the databases \
             are taken as the plan leaves them (`lifeline recover` shows what is left)",
            v["since"]
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbers_ranges_and_lists_and_print_back_short() {
        let steps = |t: &str| parse_steps(t).map(|Steps(s)| s);
        assert_eq!(steps("5"), Ok(vec![5]));
        assert_eq!(steps("3-5,1, 4"), Ok(vec![1, 3, 4, 5]));
        assert_eq!(ranges(&steps("7,1-3,9,10").unwrap()), "1-3, 7, 9-10");
        for (bad, why) in [
            ("5-3", "runs backwards"),
            ("x", "not a step number"),
            ("1,,2", "not a step number"),
            ("-3", "not a step number"),
            ("1-4000000000", "more steps than a plan has"),
        ] {
            let e = steps(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn files_go_under_out_and_a_path_that_would_leave_it_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| (name.to_owned(), format!("text of {name}"));
        put_all(dir.path(), &[file("runbook.md"), file("wsadmin/Files.py")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("wsadmin/Files.py")).unwrap(),
            "text of wsadmin/Files.py"
        );
        let out = dir.path().join("out");
        for bad in ["../escaped.py", "/tmp/escaped.py", "wsadmin/../../x", ""] {
            let e = put_all(&out, &[file("first.md"), file(bad)]).unwrap_err();
            assert!(e.to_string().contains("nothing was written"), "{bad}: {e}");
            assert!(!out.exists(), "{bad}: something was written");
        }
    }
}
