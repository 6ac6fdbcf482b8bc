//! The plan as a Markdown runbook a person follows step by step, and its owners as CSV.

use crate::plan::{convergence_line, Made};
use crate::recover::summary;
use projections::converge::Residual;
use projections::plan::{Plan, Step};
use std::collections::BTreeSet;
use std::fmt::Write;

pub fn runbook(made: &Made) -> String {
    let p = &made.plan;
    let f = &made.analysis.findings;
    let mut s = String::new();
    let _ = writeln!(s, "# Repair plan {}\n", made.short_id());
    let _ = writeln!(
        s,
        "Made by Lifeline from the ledger at position {} (checkpoint: size {}, root `{}`).  \nPlan id `{}`.\n",
        p.position,
        made.checkpoint.size,
        ledger::hex32::encode(&made.checkpoint.root),
        made.id
    );
    if f.restores.is_empty() {
        let _ = writeln!(
            s,
            "No database was restored since the last completed repair.\n"
        );
    } else {
        let _ = writeln!(s, "## What happened\n");
        for r in &f.restores {
            let _ = writeln!(s, "- {}.", r.describe());
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "Findings: {}.\n", summary(f));
    let _ = writeln!(s, "{}\n", convergence_line(p));
    if p.steps.is_empty() {
        let _ = writeln!(s, "Nothing to repair.");
        return s;
    }
    let _ = writeln!(s, "## Before you start\n");
    let _ = writeln!(
        s,
        "- Run wsadmin from `app_server_root/profiles/<dm_profile>/bin`. The scripts are in \
         `wsadmin/` (write them with `lifeline plan --format wsadmin --out DIR`); copy them there \
         and set `EXPORT_DIR` and `REPORT_DIR` at the top of each (forward slashes; in a cluster \
         the files land on the node that runs the application).\n\
         - Run each step's scripts in the order given: `./wsadmin.sh -lang jython -f \
         Communities.py 2` runs step 2 of the Communities script; without a number it lists its \
         steps.\n\
         - Record the plan before you begin, and each step once it is done, so the audit trail \
         shows the repair:\n\n      lifeline plan record\n      lifeline plan done {} STEP\n",
        made.short_id()
    );
    let _ = writeln!(s, "## Steps\n");
    for step in &p.steps {
        write_step(&mut s, step, made.short_id());
    }
    unrecoverable(&mut s, p);
    owners(&mut s, p);
    s
}

fn write_step(s: &mut String, step: &Step, id: &str) {
    let how = if step.action.is_manual() {
        " (by hand)"
    } else {
        ""
    };
    let _ = writeln!(s, "### {}. {}{how}\n", step.number, step.title);
    let _ = writeln!(s, "Why: {}.\n", step.reason);
    for line in &step.instructions {
        let _ = writeln!(s, "- {line}");
    }
    if !step.instructions.is_empty() {
        let _ = writeln!(s);
    }
    if !step.calls.is_empty() {
        let services: BTreeSet<&str> = step.calls.iter().map(|c| c.service.name()).collect();
        let mut ordered: Vec<&str> = Vec::new();
        for c in &step.calls {
            let n = c.service.name();
            if services.contains(n) && !ordered.contains(&n) {
                ordered.push(n);
            }
        }
        let _ = writeln!(s, "```sh");
        for service in &ordered {
            let _ = writeln!(
                s,
                "./wsadmin.sh -lang jython -f {service}.py {}",
                step.number
            );
        }
        let _ = writeln!(s, "```\n\nwhich runs:\n\n```python");
        for c in &step.calls {
            let _ = writeln!(s, "{}", c.code);
        }
        let _ = writeln!(s, "```\n");
    }
    let _ = writeln!(s, "Check: {}.\n", step.check);
    let _ = writeln!(s, "Done: `lifeline plan done {id} {}`\n", step.number);
}

fn unrecoverable(s: &mut String, p: &Plan) {
    if p.unrecoverable.is_empty() {
        return;
    }
    let _ = writeln!(s, "## What no command brings back\n");
    for r in &p.unrecoverable {
        let line = match r {
            Residual::ContentLost {
                community_name,
                app,
                object_id,
                ..
            } => format!(
                "{app} data `{object_id}` of \"{community_name}\" went with the restored \
                 database: only a newer backup of it holds it. The owner may remove and re-add \
                 the widget to start afresh."
            ),
            Residual::ShareLost {
                community,
                app,
                object_id,
            } => format!(
                "{app} `{object_id}` was shared with {community} after the backup: share it again."
            ),
            Residual::ShareReturned {
                community,
                app,
                object_id,
            } => format!(
                "{app} `{object_id}` was unshared from {community} after the backup and is shared \
                 again: unshare it."
            ),
            Residual::Unexpected {
                database,
                community,
                detail,
            } => format!(
                "NOT EXPLAINED: {database}{}: {detail}",
                community.map(|c| format!(" ({c})")).unwrap_or_default()
            ),
        };
        let _ = writeln!(s, "- {line}");
    }
    let _ = writeln!(s);
}

fn owners(s: &mut String, p: &Plan) {
    if p.owners.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Owners to contact (also in owners.csv)\n");
    for o in &p.owners {
        let _ = writeln!(
            s,
            "- **{}** ({}), owners {}:",
            o.name,
            o.community,
            o.owners.join(", ")
        );
        for l in &o.lost {
            let _ = writeln!(s, "  - {l}");
        }
    }
}

/// One row per community and owner: what the community lost.
pub fn owners_csv(p: &Plan) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["community", "name", "owner", "lost"])?;
    for o in &p.owners {
        let lost = o.lost.join("; ");
        for owner in &o.owners {
            w.write_record([o.community.to_string().as_str(), &o.name, owner, &lost])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
