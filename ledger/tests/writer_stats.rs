//! The writer's counters follow what it did: each group commit, the requests and events in it,
//! and whether the write-ahead log or a durable redb commit made it durable.

use ledger::*;

mod common;
use common::ev;

#[test]
fn the_writer_counts_its_commits_requests_events_and_how_each_was_made_durable() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("s.redb"), Options::default()).unwrap();
    assert_eq!(l.writer_stats(), WriterStats::default());

    // One append of three events: one commit, through the write-ahead log.
    l.append_blocking(
        "notes",
        ExpectedRevision::NoStream,
        (0..3).map(|i| ev("Noted", i)).collect(),
    )
    .unwrap();
    let one = l.writer_stats();
    assert_eq!(
        (
            one.commits,
            one.requests,
            one.events,
            one.logged,
            one.checkpoints
        ),
        (1, 1, 3, 1, 0)
    );
    assert!(one.committing_ns >= one.wal_ns && one.wal_ns > 0, "{one:?}");

    // A rejected append is a request answered and a commit that writes nothing.
    assert!(l
        .append_blocking("notes", ExpectedRevision::NoStream, vec![ev("Noted", 3)])
        .is_err());
    let rejected = l.writer_stats().since(&one);
    assert_eq!(
        (
            rejected.commits,
            rejected.requests,
            rejected.events,
            rejected.logged
        ),
        (1, 1, 0, 0)
    );

    // Appends queued together share commits: every one counted, in fewer commits.
    let before = l.writer_stats();
    common::queue_appends(&l, 200, 7);
    let shared = l.writer_stats().since(&before);
    assert_eq!((shared.requests, shared.events), (200, 200));
    assert!(shared.commits >= 1 && shared.commits < 200, "{shared:?}");
    assert_eq!(shared.logged, shared.commits);
    assert!(shared.requests_per_commit() > 1.0);

    // A snapshot is stored by a durable redb commit, not through the log.
    let before = l.writer_stats();
    l.put_snapshot_blocking(l.head(), vec![1; 64]).unwrap();
    let stored = l.writer_stats().since(&before);
    assert_eq!(
        (
            stored.commits,
            stored.requests,
            stored.logged,
            stored.checkpoints
        ),
        (1, 1, 0, 1)
    );
    assert_eq!(l.writer_stats().events, 203);
}
