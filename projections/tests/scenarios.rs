//! Scenario tests as data: `tests/scenarios/*.json` hold events in and the expected state out.
//!
//! - `events`: domain events as `{"type": …, …fields}`; an optional `"id"` names the ledger id
//!   (for `DeliveryFailed` to refer to); `"force": true` skips validation (history as it
//!   happened). Every other event must pass validation.
//! - `intended` / `actual`: per database, a JSON *subset* of `projections::view::database`:
//!   every key given must be there with that value (objects compare key by key, arrays whole);
//!   `null` means the key must be absent.
//! - `rejected`: events that must then be refused, with a phrase of the reason.
//! - `reach`: per event (by its `"id"`), per database, where its change stands at the end:
//!   `held`, `queued`, `lost:restore` or `lost:queueCleared`.
//!
//! Any string `@name` stands for a UUID derived from the name, in values and keys alike.

use projections::validate::validate;
use projections::*;
use serde_json::Value;

mod common;
use common::{event_of, names, uuid_of};

/// `want` is a subset of `got`; returns the path of the first difference.
fn subset(want: &Value, got: Option<&Value>, path: &str) -> Result<(), String> {
    match (want, got) {
        (Value::Null, None) => Ok(()),
        (Value::Null, Some(g)) => Err(format!("{path}: expected absent, found {g}")),
        (_, None) => Err(format!("{path}: missing")),
        (Value::Object(w), Some(Value::Object(g))) => {
            for (k, wv) in w {
                subset(wv, g.get(k), &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (w, Some(g)) if w == g => Ok(()),
        (w, Some(g)) => Err(format!("{path}: expected {w}, found {g}")),
    }
}

fn check(file: &std::path::Path) {
    let text = std::fs::read_to_string(file).unwrap();
    let s: Value =
        names(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display())));
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let mut world = World::default();
    let mut recorded = Vec::new();
    for (i, v) in s["events"].as_array().expect("events").iter().enumerate() {
        let (event, id, force) = event_of(v.clone());
        if !force {
            if let Err(r) = validate(&world, &event) {
                panic!(
                    "{name}: event {} ({}) rejected: {r}",
                    i + 1,
                    event.type_name()
                );
            }
        }
        let position = i as u64 + 1;
        let r = Recorded {
            position,
            id: id.unwrap_or_else(|| uuid::Uuid::from_u128(u128::from(position))),
            recorded_ns: position as i64,
            occurred_ns: position as i64,
            event,
        };
        recorded.push(r);
        world = World::replay(&recorded);
    }
    for (family, deployment) in [("intended", &world.intended), ("actual", &world.actual)] {
        let Some(expect) = s.get(family).and_then(Value::as_object) else {
            continue;
        };
        for (db, want) in expect {
            let d = Database::parse(db).unwrap_or_else(|| panic!("{name}: no database {db}"));
            let got = view::database(deployment.db(d));
            if let Err(e) = subset(want, Some(&got), &format!("{family}.{db}")) {
                panic!(
                    "{name}: {e}\n got: {}",
                    serde_json::to_string_pretty(&got).unwrap()
                );
            }
        }
    }
    if let Some(expect) = s.get("reach").and_then(Value::as_object) {
        check_reach(&name, &recorded, expect);
    }
    for r in s
        .get("rejected")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (event, _, _) = event_of(r["event"].clone());
        let because = r["because"].as_str().expect("because");
        match validate(&world, &event) {
            Ok(()) => panic!(
                "{name}: {} was accepted, expected: {because}",
                event.type_name()
            ),
            Err(e) => assert!(
                e.0.contains(because),
                "{name}: '{e}' does not say '{because}'"
            ),
        }
    }
}

/// Where each named event's change stands, per database, against the expected words.
fn check_reach(name: &str, recorded: &[Recorded], expect: &serde_json::Map<String, Value>) {
    use projections::reach::{reach, Fate, Loss};
    let fates = reach(recorded);
    for (id, dbs) in expect {
        let id: uuid::Uuid = id.parse().expect("reach keys are event ids");
        let position = recorded
            .iter()
            .find(|r| r.id == id)
            .expect("an event with that id")
            .position;
        for (db, want) in dbs.as_object().expect("databases") {
            let d = Database::parse(db).expect("a database");
            let got = match fates.get(&position).and_then(|f| f.get(&d)) {
                None => "untouched",
                Some(Fate::Held { .. }) => "held",
                Some(Fate::Queued) => "queued",
                Some(Fate::Lost {
                    loss: Loss::Restore { .. },
                    ..
                }) => "lost:restore",
                Some(Fate::Lost {
                    loss: Loss::QueueCleared,
                    ..
                }) => "lost:queueCleared",
            };
            assert_eq!(
                Some(got),
                want.as_str(),
                "{name}: event at {position} in {db}"
            );
        }
    }
}

#[test]
fn every_scenario_holds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "scenarios missing from {}", dir.display());
    for f in files {
        check(&f);
    }
}

#[test]
fn the_stand_in_ids_are_stable_and_distinct() {
    assert_eq!(uuid_of("c1"), uuid_of("c1"));
    assert_ne!(uuid_of("c1"), uuid_of("c2"));
}
