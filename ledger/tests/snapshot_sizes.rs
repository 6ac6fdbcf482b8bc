//! Listing snapshots reads their sizes from a table of their own, kept with every snapshot
//! written; a ledger made before that table existed gets it filled when opened.

use ledger::*;

const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
const SIZES: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("snapshot_sizes");

#[test]
fn snapshots_are_listed_with_their_sizes_also_in_an_older_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let l = Ledger::open(&path, Options::default()).unwrap();
    for i in 0..20 {
        let e = ProposedEvent::json("Noted", &serde_json::json!({ "i": i }));
        l.append_blocking("notes", ExpectedRevision::Any, vec![e])
            .unwrap();
    }
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
