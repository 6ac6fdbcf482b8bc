//! Listing snapshots reads their sizes from a table of their own, kept with every snapshot
//! written; a ledger made before that table existed gets it filled when opened. Dropping
//! snapshots removes them and their sizes, and leaves the log as it was.

use ledger::*;

const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
const SIZES: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("snapshot_sizes");

/// A ledger at `path` holding `n` events.
fn with_notes(path: impl AsRef<std::path::Path>, n: u32) -> Ledger {
    let l = Ledger::open(path, Options::default()).unwrap();
    for i in 0..n {
        let e = ProposedEvent::json("Noted", &serde_json::json!({ "i": i }));
        l.append_blocking("notes", ExpectedRevision::Any, vec![e])
            .unwrap();
    }
    l
}

#[test]
fn snapshots_are_listed_with_their_sizes_also_in_an_older_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let l = with_notes(&path, 20);
    l.put_snapshot_blocking(20, vec![2; 300]).unwrap();
    l.put_snapshot_blocking(10, vec![1; 100]).unwrap();
    assert_eq!(l.snapshots().unwrap(), vec![(10, 100), (20, 300)]);
    // Written again at the same position: the new size.
    l.put_snapshot_blocking(10, vec![1; 150]).unwrap();
    assert_eq!(l.snapshots().unwrap(), vec![(10, 150), (20, 300)]);
    l.close();
    drop(l);

    // As an earlier build left it: snapshots, but no sizes and no mark.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(SIZES).unwrap();
        txn.open_table(META)
            .unwrap()
            .remove("snapshot_sizes")
            .unwrap();
        txn.commit().unwrap();
    }
    let l = Ledger::open(&path, Options::default()).unwrap();
    assert_eq!(l.snapshots().unwrap(), vec![(10, 150), (20, 300)]);
    assert_eq!(
        l.snapshot_at_or_before(15).unwrap(),
        Some((10, vec![1; 150]))
    );
}

#[test]
fn dropped_snapshots_are_gone_with_their_sizes_and_the_log_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let l = with_notes(dir.path().join("d.redb"), 30);
    let checkpoint = l.checkpoint().unwrap();
    for p in [10, 20, 30] {
        l.put_snapshot_blocking(p, vec![p as u8; 50]).unwrap();
    }
    // 25 was never stored: passed over.
    l.drop_snapshots_blocking(vec![20, 25]).unwrap();
    assert_eq!(l.snapshots().unwrap(), vec![(10, 50), (30, 50)]);
    assert_eq!(
        l.snapshot_at_or_before(29).unwrap(),
        Some((10, vec![10; 50]))
    );
    l.drop_snapshots_blocking(Vec::new()).unwrap();
    assert_eq!(l.checkpoint().unwrap(), checkpoint);
    assert_eq!(l.head(), 30);
    let report = l.verify(Some(checkpoint), |_, _| {}).unwrap();
    assert!(report.problem.is_none());
    assert_eq!(report.matches_checkpoint, Some(true));
}

/// Compacting gives back the pages of removed snapshots: the file shrinks, the log and the
/// snapshots kept are as they were. A ledger open elsewhere is refused and left alone.
#[test]
fn compacting_shrinks_the_file_and_keeps_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.redb");
    let l = with_notes(&path, 50);
    for p in [10, 20, 30, 40] {
        l.put_snapshot_blocking(p, vec![p as u8; 4 << 20]).unwrap();
    }
    l.drop_snapshots_blocking(vec![10, 20, 30]).unwrap();
    let checkpoint = l.checkpoint().unwrap();
    let refused = Ledger::compact(&path, Options::default()).unwrap_err();
    assert!(matches!(refused, OpenError::InUse { .. }), "{refused}");
    assert_eq!(l.snapshots().unwrap(), vec![(40, 4 << 20)]);
    l.close();
    drop(l);

    let done = Ledger::compact(&path, Options::default()).unwrap();
    assert_eq!(done.after, std::fs::metadata(&path).unwrap().len());
    // Three 4 MiB snapshots were removed; how far the file had grown depends on how redb's
    // commits fell (group commits share them), and redb grows and shrinks it in steps.
    assert!(
        done.after + (4 << 20) < done.before,
        "{done:?}: the removed snapshots' pages are given back"
    );
    let l = Ledger::open(&path, Options::default()).unwrap();
    assert_eq!(l.checkpoint().unwrap(), checkpoint);
    let report = l.verify(Some(checkpoint), |_, _| {}).unwrap();
    assert!(report.problem.is_none());
    assert_eq!(
        l.snapshot_at_or_before(45).unwrap(),
        Some((40, vec![40; 4 << 20]))
    );
}
