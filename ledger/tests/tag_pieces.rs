//! The tag index keeps one piece of positions per tag per commit: reading any range of it gives
//! the positions put, in order; positions it covers already are passed over; tags past the log
//! are refused with nothing stored; the one-key-per-position index of earlier builds is removed
//! when a ledger is opened, and caught up afresh.

use ledger::*;
use redb::ReadableDatabase;
use std::collections::{BTreeMap, BTreeSet};

const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
const OLD_TAGS: redb::TableDefinition<(&str, u64), ()> = redb::TableDefinition::new("tags");

fn ledger_of(path: &std::path::Path, events: u64) -> Ledger {
    let l = Ledger::open(path, Options::default()).unwrap();
    for i in 0..events {
        let e = ProposedEvent::json("Noted", &serde_json::json!({ "i": i }));
        l.append_blocking("notes", ExpectedRevision::Any, vec![e])
            .unwrap();
    }
    l
}

/// Tags of position `p` in this test: every position is `even` or `odd`; every third `three`.
fn tags_of(p: u64) -> Vec<&'static str> {
    let mut tags = vec![if p % 2 == 0 { "even" } else { "odd" }];
    if p % 3 == 0 {
        tags.push("three");
    }
    tags
}

/// The positions in `from..=up_to` by tag, as `put_tags_blocking` takes them.
fn batch(from: u64, up_to: u64) -> Vec<(String, Vec<Position>)> {
    let mut by_tag: BTreeMap<&str, Vec<Position>> = BTreeMap::new();
    for p in from..=up_to {
        for t in tags_of(p) {
            by_tag.entry(t).or_default().push(p);
        }
    }
    by_tag.into_iter().map(|(t, p)| (t.to_owned(), p)).collect()
}

/// A closed ledger file of `events` events, tagged up to `up_to`.
fn tagged_ledger_file(path: &std::path::Path, events: u64, up_to: u64) {
    let l = ledger_of(path, events);
    l.put_tags_blocking(batch(1, up_to), up_to).unwrap();
    l.close();
}

/// Changes the closed ledger file at `path` in one redb transaction, as another build or damage
/// would have left it.
fn alter_file(path: &std::path::Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn check_every_range(l: &Ledger, covered: u64, head: u64) {
    for tag in ["even", "odd", "three", "none"] {
        let model: BTreeSet<u64> = (1..=covered)
            .filter(|p| tags_of(*p).contains(&tag))
            .collect();
        for from in 0..=head + 1 {
            for to in from.saturating_sub(1)..=head + 1 {
                let want: Vec<u64> = model.range(from..=to.max(from)).copied().collect();
                let want = if from > to { Vec::new() } else { want };
                assert_eq!(
                    l.tagged(tag, from, to).unwrap(),
                    want,
                    "{tag} {from}..={to}"
                );
            }
        }
    }
}

#[test]
fn pieces_read_back_in_order_over_any_range() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_of(&dir.path().join("t.redb"), 40);
    // Commits of different sizes, one of them covering positions that tag nothing.
    for (from, up_to) in [(1, 7), (8, 8), (9, 25), (26, 30)] {
        l.put_tags_blocking(batch(from, up_to), up_to).unwrap();
        assert_eq!(l.tags_watermark().unwrap(), up_to);
        check_every_range(&l, up_to, 40);
    }
    // Put again, and overlapping: what the index covers is passed over, the rest stored.
    l.put_tags_blocking(batch(1, 30), 30).unwrap();
    l.put_tags_blocking(batch(20, 36), 36).unwrap();
    assert_eq!(l.tags_watermark().unwrap(), 36);
    check_every_range(&l, 36, 40);
    // A watermark is never moved back.
    l.put_tags_blocking(Vec::new(), 10).unwrap();
    assert_eq!(l.tags_watermark().unwrap(), 36);
}

#[test]
fn tags_past_the_log_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let l = ledger_of(&dir.path().join("t.redb"), 10);
    l.put_tags_blocking(batch(1, 5), 5).unwrap();
    let err = l
        .put_tags_blocking(vec![("even".into(), vec![6, 12])], 12)
        .unwrap_err();
    assert!(err.to_string().contains("past the log's end (10)"), "{err}");
    let err = l.put_tags_blocking(Vec::new(), 11).unwrap_err();
    assert!(err.to_string().contains("past the log's end"), "{err}");
    assert_eq!(l.tags_watermark().unwrap(), 5);
    assert_eq!(l.tagged("even", 1, 10).unwrap(), vec![2, 4]);
}

#[test]
fn the_index_of_earlier_builds_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    tagged_ledger_file(&path, 12, 4);
    // As an earlier build left it: its own tag table and watermark as well.
    alter_file(&path, |txn| {
        let mut old = txn.open_table(OLD_TAGS).unwrap();
        for p in 1..=12u64 {
            old.insert(("even", p), ()).unwrap();
        }
        let mut meta = txn.open_table(META).unwrap();
        meta.insert("tags_watermark", 12u64.to_le_bytes().as_slice())
            .unwrap();
    });
    let l = Ledger::open(&path, Options::default()).unwrap();
    assert_eq!(l.tags_watermark().unwrap(), 4);
    assert_eq!(l.tagged("even", 1, 12).unwrap(), vec![2, 4]);
    l.put_tags_blocking(batch(5, 12), 12).unwrap();
    check_every_range(&l, 12, 12);
    l.close();
    drop(l);
    let db = redb::Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    assert!(txn.open_table(OLD_TAGS).is_err(), "the old table is gone");
    let meta = txn.open_table(META).unwrap();
    assert!(meta.get("tags_watermark").unwrap().is_none());
}

#[test]
fn a_damaged_piece_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    tagged_ledger_file(&path, 4, 4);
    alter_file(&path, |txn| {
        let pieces: redb::TableDefinition<(&str, u64), &[u8]> =
            redb::TableDefinition::new("tag_pieces");
        let mut t = txn.open_table(pieces).unwrap();
        t.insert(("even", 2), [0u8; 7].as_slice()).unwrap();
    });
    let l = Ledger::open(&path, Options::default()).unwrap();
    let err = l.tagged("even", 1, 4).unwrap_err().to_string();
    assert!(err.contains("('even', 2) has 7 bytes"), "{err}");
    assert_eq!(l.tagged("odd", 1, 4).unwrap(), vec![1, 3]);
}
