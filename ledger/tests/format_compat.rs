//! A ledger written by format version 1 (kept in tests/fixtures) still opens, reads and
//! verifies, and the same history written now gives the same bytes (the same root).
//! `LIFELINE_WRITE_FIXTURE=1` rewrites the fixture; only for a deliberate new format version.

mod common;
use ledger::*;
use std::sync::Arc;

const FIXTURE: &str = "tests/fixtures/format-v1.redb";
const ROOT_V1: &str = include_str!("fixtures/format-v1.root");

fn history(l: &Ledger, clock: &ManualClock) {
    for i in 0..40u128 {
        clock.set(Timestamp(
            1_700_000_000_000_000_000 + (i as i64) * 1_000_000,
        ));
        let event = ProposedEvent::json("CommunityUpdated", &serde_json::json!({ "i": i as u64 }))
            .with_id(EventId(uuid::Uuid::from_u128(i + 1)))
            .occurred_at(Timestamp(1_600_000_000_000_000_000 + i as i64));
        l.append_blocking(
            &format!("community-{}", i % 4),
            ExpectedRevision::Any,
            vec![event],
        )
        .unwrap();
    }
    l.delete_blocking("community-1", ExpectedRevision::Any)
        .unwrap();
    l.tombstone_blocking("community-2", ExpectedRevision::Any)
        .unwrap();
}

fn open(path: &std::path::Path, clock: &ManualClock) -> Ledger {
    let options = Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    };
    Ledger::open(path, options).unwrap()
}

#[test]
fn version_1_file_still_reads_and_verifies() {
    let clock = ManualClock::new(Timestamp(1_700_000_000_000_000_000));
    if std::env::var_os("LIFELINE_WRITE_FIXTURE").is_some() {
        let _ = std::fs::remove_file(FIXTURE);
        let l = open(std::path::Path::new(FIXTURE), &clock);
        history(&l, &clock);
        let root = hex32::encode(&l.checkpoint().unwrap().root);
        std::fs::write("tests/fixtures/format-v1.root", root).unwrap();
        l.close();
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("v1.redb");
    std::fs::copy(FIXTURE, &copy).unwrap();
    let l = open(&copy, &clock);
    assert_eq!(l.head(), 42);
    let cp = l.checkpoint().unwrap();
    assert_eq!(hex32::encode(&cp.root), ROOT_V1.trim());
    assert_eq!(l.verify(None, |_, _| {}).unwrap().problem, None);
    let e = l
        .read_stream("community-0", StreamStart::Start, Direction::Forwards, 1)
        .unwrap();
    assert_eq!(e[0].id, EventId(uuid::Uuid::from_u128(1)));
    assert_eq!(e[0].data, br#"{"i":0}"#);
    assert!(matches!(
        l.read_stream("community-2", StreamStart::Start, Direction::Forwards, 1),
        Err(ReadError::StreamDeleted { .. })
    ));
    // Writing the same history today gives the same bytes.
    let fresh = dir.path().join("fresh.redb");
    let clock2 = ManualClock::new(Timestamp(0));
    let l2 = open(&fresh, &clock2);
    history(&l2, &clock2);
    let cp2 = l2.checkpoint().unwrap();
    assert_eq!(cp2.size, cp.size);
    // Deletes and tombstones carry fresh random ids, so only the first 40 records compare.
    assert_eq!(
        l2.checkpoint_at(Some(40)).unwrap(),
        l.checkpoint_at(Some(40)).unwrap()
    );
}
