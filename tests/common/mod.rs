//! Running the `lifeline` binary from the end-to-end tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `lifeline --ledger LEDGER ARGS…`, with no LIFELINE_LEDGER from the environment.
pub fn lifeline(ledger: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeline"))
        .arg("--ledger")
        .arg(ledger)
        .args(args)
        .env_remove("LIFELINE_LEDGER")
        .output()
        .expect("run lifeline");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs it, requires success, and returns standard output.
pub fn ok(ledger: &Path, args: &[&str]) -> String {
    let r = lifeline(ledger, args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    r.stdout
}

/// `lifeline audit ARGS… --format json`, one row per event, oldest first.
pub fn audit(ledger: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    ok(ledger, &all)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit row is JSON"))
        .collect()
}

/// Records `e` in `l` as `lifeline record --force` would (no checks); returns its event id.
pub fn record(l: &ledger::Ledger, e: projections::DomainEvent) -> uuid::Uuid {
    let id = ledger::EventId::new_random();
    let p = lifeline::domain::proposed(&e, id, None);
    l.append_blocking(&e.stream(), ledger::ExpectedRevision::Any, vec![p])
        .unwrap();
    id.0
}

/// A rename of `community` whose delivery to Forums failed: it waits in the retry queue.
/// Returns the rename's event id.
pub fn rename_not_delivered_to_forums(l: &ledger::Ledger, community: uuid::Uuid) -> uuid::Uuid {
    use projections::events::{CommunityUpdated, Delivery};
    use projections::DomainEvent;
    let update = record(
        l,
        DomainEvent::CommunityUpdated(CommunityUpdated {
            community,
            name: Some("Renamed while Forums was away".into()),
            ..Default::default()
        }),
    );
    record(
        l,
        DomainEvent::DeliveryFailed(Delivery {
            community,
            app: projections::App::Forum,
            event: update,
        }),
    );
    update
}
