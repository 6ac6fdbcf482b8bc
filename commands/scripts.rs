//! The plan as wsadmin Jython scripts, one per service: each defines a function per step and
//! runs the steps named on its command line, so the runbook can interleave services in the
//! vendor's order.

use crate::plan::Made;
use projections::repair::{Action, Target};
use projections::wsadmin::{admin_script, py_str};
use projections::Database;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One step's part of a script: its number, title and Jython statements.
type ScriptStep<'a> = (u32, &'a str, Vec<&'a str>);

/// (file name, script) for each service the plan uses.
pub fn scripts(made: &Made) -> Vec<(String, String)> {
    let mut by_service: BTreeMap<Database, Vec<ScriptStep>> = BTreeMap::new();
    for step in &made.plan.steps {
        for service in Database::ALL {
            let code: Vec<&str> = step
                .calls
                .iter()
                .filter(|c| c.service == service)
                .map(|c| c.code.as_str())
                .collect();
            if !code.is_empty() {
                by_service.entry(service).or_default().push((
                    step.number,
                    step.title.as_str(),
                    code,
                ));
            }
        }
    }
    by_service
        .into_iter()
        .map(|(service, steps)| {
            (
                format!("{}.py", service.name()),
                script(made, service, &steps),
            )
        })
        .collect()
}

fn script(made: &Made, service: Database, steps: &[ScriptStep]) -> String {
    let mut s = String::from("# -*- coding: utf-8 -*-\n");
    let _ = writeln!(s, "# Lifeline repair plan {}", made.id);
    let _ = writeln!(
        s,
        "# made from the ledger at position {} (checkpoint size {}, root {}).",
        made.plan.position,
        made.checkpoint.size,
        ledger::hex32::encode(&made.checkpoint.root)
    );
    let _ = writeln!(
        s,
        "#\n# {} commands. Run from app_server_root/profiles/<dm_profile>/bin, step by step",
        service.name()
    );
    let _ = writeln!(
        s,
        "# as the runbook says:\n#   ./wsadmin.sh -lang jython -f {}.py STEP [STEP ...]",
        service.name()
    );
    let _ = writeln!(
        s,
        "# Without a step number it lists its steps.\nimport sys\n"
    );
    if let Some(admin) = admin_script(service) {
        let _ = writeln!(s, "execfile({})\n", py_str(admin));
    }
    let uses_files = steps
        .iter()
        .any(|(_, _, code)| code.iter().any(|c| c.contains("EXPORT_DIR")));
    if uses_files {
        let _ = writeln!(
            s,
            "# Where exportSyncedResourceInfo writes and generateSyncReports reads and writes: an\n\
             # existing directory, forward slashes; in a cluster, on the node that runs the app.\n\
             EXPORT_DIR = \"/opt/IBM/lifeline/export\"\nREPORT_DIR = \"/opt/IBM/lifeline/reports\"\n"
        );
    }
    if service == Database::Communities {
        new_uuids(&mut s, made);
    }
    for (number, title, code) in steps {
        let _ = writeln!(s, "def step_{number}():");
        let _ = writeln!(s, "    # {}", title.replace('\n', " "));
        for line in code {
            let _ = writeln!(s, "    print({line})");
        }
        let _ = writeln!(s);
    }
    let table: Vec<String> = steps
        .iter()
        .map(|(n, title, _)| format!("    {n}: (step_{n}, {}),", py_str(title)))
        .collect();
    let _ = writeln!(s, "STEPS = {{\n{}\n}}\n", table.join("\n"));
    let _ = writeln!(
        s,
        "def main(args):\n\
         \x20   if not args:\n\
         \x20       for n in sorted(STEPS.keys()):\n\
         \x20           print(\"%d  %s\" % (n, STEPS[n][1]))\n\
         \x20       return\n\
         \x20   for a in args:\n\
         \x20       n = int(a)\n\
         \x20       if n not in STEPS:\n\
         \x20           raise Exception(\"step %d has no {} commands in this plan\" % n)\n\
         \x20       print(\"step %d: %s\" % (n, STEPS[n][1]))\n\
         \x20       STEPS[n][0]()\n\
         \nmain(sys.argv)",
        service.name()
    );
    s
}

/// The table of recreated communities' new uuids, and the lookup the assign steps use.
fn new_uuids(s: &mut String, made: &Made) {
    let mut recreated: BTreeMap<String, (u32, String)> = BTreeMap::new();
    for step in &made.plan.steps {
        let Action::Assign { orphans, .. } = &step.action else {
            continue;
        };
        for o in orphans {
            if let Target::Recreated { community, step } = &o.target {
                let name = made
                    .analysis
                    .world
                    .intended
                    .communities()
                    .get(community)
                    .map_or_else(String::new, |c| c.name.to_string());
                recreated.insert(community.to_string(), (*step, name));
            }
        }
    }
    if recreated.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "# The uuid of each community recreated by hand, by its old uuid: fill in before the"
    );
    let _ = writeln!(
        s,
        "# assign steps (the runbook's recreate step says when).\nNEW_UUID = {{"
    );
    for (old, (step, name)) in &recreated {
        let _ = writeln!(
            s,
            "    {}: \"\",  # step {step}: {}",
            py_str(old),
            name.replace('\n', " ")
        );
    }
    let _ = writeln!(
        s,
        "}}\n\ndef new_uuid(old):\n\
         \x20   value = NEW_UUID.get(old, \"\")\n\
         \x20   if not value:\n\
         \x20       raise Exception(\"fill in NEW_UUID[\\\"\" + old + \"\\\"] with the recreated community's uuid first\")\n\
         \x20   return value\n"
    );
}
