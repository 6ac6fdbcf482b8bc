#![allow(dead_code)]

use ledger::*;
use std::sync::Arc;

pub fn open_at(dir: &tempfile::TempDir, clock: &ManualClock) -> Ledger {
    let options = Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    };
    Ledger::open(dir.path().join("test.redb"), options).expect("open ledger")
}

pub fn open() -> (tempfile::TempDir, Ledger, ManualClock) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(Timestamp(1_700_000_000_000_000_000));
    let ledger = open_at(&dir, &clock);
    (dir, ledger, clock)
}

pub fn ev(ty: &str, n: u64) -> ProposedEvent {
    ProposedEvent::json(ty, &serde_json::json!({ "n": n }))
}

pub fn ev_id(id: u128) -> ProposedEvent {
    ev("Test", id as u64).with_id(EventId(uuid::Uuid::from_u128(id)))
}

/// Queues `n` appends of one event each, spread over `streams` streams, then waits for all:
/// appends queued behind each other share group commits.
pub fn queue_appends(l: &Ledger, n: u64, streams: u64) {
    let queued: Vec<_> = (0..n)
        .map(|i| {
            l.append_queued(
                &format!("s-{}", i % streams),
                ExpectedRevision::Any,
                vec![ev("Noted", i)],
            )
            .unwrap()
        })
        .collect();
    for q in queued {
        q.wait().unwrap();
    }
}
