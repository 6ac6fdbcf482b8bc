//! Recovery scenarios as data: `tests/recovery/*.json` hold a small history, the restores that
//! happened (as events) or are considered (`whatIf`: `["Files=files-mon"]`), and the exact
//! findings, plan steps and leftovers expected, one line each (rendered below).
//!
//! Events are written as in `tests/scenarios/` (`@name` for uuids, `"id"`, `"force"`). With
//! `LIFELINE_BLESS=1` the expected lines are rewritten from the output, to be reviewed.

mod common;
#[path = "common/repair.rs"]
mod repair;

use common::{event_of, names};
use projections::converge::{converge, residual, Residual};
use projections::findings::{analyze, Against, Disposition, Findings, Input};
use projections::plan::{plan, Plan};
use projections::reach::Loss;
use projections::repair::{Action, Target};
use projections::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

struct Names(BTreeMap<Uuid, String>);

impl Names {
    fn of(&self, c: &Uuid) -> String {
        self.0.get(c).cloned().unwrap_or_else(|| c.to_string())
    }
}

fn names_of(events: &[Recorded]) -> Names {
    Names(
        events
            .iter()
            .filter_map(|r| match &r.event {
                DomainEvent::CommunityCreated(c) => Some((c.community, c.name.clone())),
                _ => None,
            })
            .collect(),
    )
}

fn finding_lines(f: &Findings, n: &Names) -> Vec<String> {
    let mut out = Vec::new();
    for r in &f.restores {
        let how = if r.what_if { "what-if" } else { "restored" };
        out.push(format!("restore {} from {} ({how})", r.database, r.backup));
    }
    for d in &f.differences {
        let against = match d.against {
            Against::Communities => "Communities",
            Against::Intended => "ledger",
        };
        let what = match (&d.app, &d.object_id) {
            (Some(a), Some(o)) => format!("{} {a} {o}", d.database),
            _ => d.database.to_string(),
        };
        out.push(format!(
            "difference {what} of {} against {against}: {} {} → {}",
            n.of(&d.community),
            d.field.name(),
            d.expected,
            d.found
        ));
    }
    for o in &f.orphans {
        let to = match o.disposition {
            Disposition::AssignTo { community } => format!("AssignTo {}", n.of(&community)),
            other => format!("{other:?}"),
        };
        out.push(format!(
            "orphan {} {} of {}: {:?} → {to}",
            o.app,
            o.object_id,
            n.of(&o.old_community),
            o.reason
        ));
    }
    for m in &f.missing {
        out.push(format!(
            "missing {} {} of {}{}",
            m.app,
            m.instance,
            m.community_name,
            if m.known_to_communities {
                " (Communities has the widget)"
            } else {
                ""
            }
        ));
    }
    for l in &f.lost {
        let by = match &l.loss {
            Loss::Restore { backup, .. } => format!("restore from {backup}"),
            Loss::QueueCleared => "queue cleared".to_owned(),
        };
        out.push(format!("lost {}: {} ({by})", l.database, l.summary));
    }
    for s in &f.stale_queue {
        out.push(format!(
            "stale {} {} of {} ({} restored)",
            s.app,
            s.event_type,
            n.of(&s.community),
            s.restored
        ));
    }
    out
}

fn step_lines(p: &Plan, n: &Names) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| {
            let detail = match &s.action {
                Action::ClearQueueByApp { app }
                | Action::ExportAndReport { app }
                | Action::ResyncAll { app }
                | Action::SyncShares { app } => app.to_string(),
                Action::Recreate { community } => n.of(community),
                Action::Undelete { communities } => communities
                    .iter()
                    .map(|c| n.of(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                Action::Reapply { communities } => communities
                    .iter()
                    .map(|r| {
                        let what: Vec<String> = r
                            .changes
                            .iter()
                            .map(projections::describe::describe)
                            .collect();
                        format!("{}: {}", n.of(&r.community), what.join("; "))
                    })
                    .collect::<Vec<_>>()
                    .join(" | "),
                Action::Resync { app, communities } => format!(
                    "{app}: {}",
                    communities
                        .iter()
                        .map(|c| n.of(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Action::Assign { app, orphans } => format!(
                    "{app}: {}",
                    orphans
                        .iter()
                        .map(|o| {
                            let to = match &o.target {
                                Target::Existing { community } => n.of(community),
                                Target::Recreated { community, step } => {
                                    format!("recreated {} (step {step})", n.of(community))
                                }
                            };
                            format!("{} → {to}", o.object_id)
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Action::DeleteOrphans { app, orphans } => format!(
                    "{app}: {}",
                    orphans
                        .iter()
                        .map(|o| o.object_id.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Action::ContactOwners { .. } => p
                    .owners
                    .iter()
                    .map(|o| format!("{} ({})", o.name, o.lost.len()))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => String::new(),
            };
            let kind = serde_json::to_value(&s.action).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned();
            let calls: Vec<&str> = s.calls.iter().map(|c| c.code.as_str()).collect();
            let mut line = if detail.is_empty() {
                kind
            } else {
                format!("{kind} {detail}")
            };
            if !calls.is_empty() {
                line.push_str(&format!(" :: {}", calls.join(" ; ")));
            }
            line
        })
        .collect()
}

fn residual_lines(r: &[Residual], n: &Names) -> Vec<String> {
    r.iter()
        .map(|r| match r {
            Residual::ContentLost {
                community,
                app,
                object_id,
                ..
            } => {
                format!("content lost: {app} {object_id} of {}", n.of(community))
            }
            Residual::ShareLost {
                community,
                app,
                object_id,
            } => {
                format!("share lost: {app} {object_id} of {}", n.of(community))
            }
            Residual::ShareReturned {
                community,
                app,
                object_id,
            } => {
                format!("share returned: {app} {object_id} of {}", n.of(community))
            }
            Residual::Unexpected {
                database, detail, ..
            } => format!("UNEXPECTED {database}: {detail}"),
        })
        .collect()
}

fn what_ifs(s: &Value, events: &mut Vec<Recorded>) -> u64 {
    let head = events.len() as u64;
    for (k, w) in s["whatIf"].as_array().into_iter().flatten().enumerate() {
        let (db, backup) = w.as_str().unwrap().split_once('=').unwrap();
        events.push(Recorded {
            position: head + k as u64 + 1,
            id: Uuid::nil(),
            recorded_ns: 0,
            occurred_ns: 0,
            event: DomainEvent::DatabaseRestored(projections::events::DatabaseRestored {
                database: Database::parse(db).unwrap(),
                backup: backup.to_owned(),
                actor: None,
            }),
        });
    }
    head
}

fn check(file: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file).unwrap();
    let raw: Value = serde_json::from_str(&text).unwrap();
    let s = names(raw.clone());
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let mut events = Vec::new();
    let mut world = World::default();
    for (i, v) in s["events"].as_array().expect("events").iter().enumerate() {
        let (event, id, force) = event_of(v.clone());
        if !force {
            if let Err(r) = projections::validate::validate(&world, &event) {
                panic!(
                    "{name}: event {} ({}) rejected: {r}",
                    i + 1,
                    event.type_name()
                );
            }
        }
        let position = i as u64 + 1;
        events.push(Recorded {
            position,
            id: id.unwrap_or_else(|| Uuid::from_u128(u128::from(position))),
            recorded_ns: position as i64 * 1_000_000_000,
            occurred_ns: position as i64 * 1_000_000_000,
            event,
        });
        world = World::replay(&events);
    }
    let head = what_ifs(&s, &mut events);
    let n = names_of(&events);
    let (findings, world) = analyze(&Input {
        events: &events,
        head,
        since: 0,
    });
    let p = plan(&findings, &world);
    let repaired = converge(&world.actual, &world.intended, &p);
    assert_eq!(
        residual(&world.intended, &repaired),
        p.unrecoverable,
        "{name}"
    );
    repair::takes_effect(&name, events.clone(), &p, &repaired);
    let got = json!({
        "findings": finding_lines(&findings, &n),
        "steps": step_lines(&p, &n),
        "unrecoverable": residual_lines(&p.unrecoverable, &n),
    });
    if std::env::var_os("LIFELINE_BLESS").is_some() {
        let mut out = raw.as_object().unwrap().clone();
        for k in ["findings", "steps", "unrecoverable"] {
            out.insert(k.into(), got[k].clone());
        }
        let text = serde_json::to_string_pretty(&Value::Object(out)).unwrap() + "\n";
        std::fs::write(file, text).unwrap();
        return Ok(());
    }
    for k in ["findings", "steps", "unrecoverable"] {
        if raw.get(k) != got.get(k) {
            return Err(format!(
                "{name}: {k} differ\nexpected: {:#}\ngot:      {:#}",
                raw.get(k).unwrap_or(&Value::Null),
                got[k]
            ));
        }
    }
    if !p.converges {
        return Err(format!("{name}: the plan does not converge"));
    }
    Ok(())
}

#[test]
fn recovery_scenarios() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recovery");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "scenarios in {}", dir.display());
    let failures: Vec<String> = files.iter().filter_map(|f| check(f).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
