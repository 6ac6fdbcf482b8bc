//! KurrentDB semantics of appends, reads, deletes and tombstones, case by case.

mod common;
use common::*;
use ledger::*;

#[test]
fn append_assigns_revisions_from_zero_and_positions_from_one() {
    let (_d, l, _c) = open();
    let r = l
        .append_blocking(
            "s",
            ExpectedRevision::NoStream,
            vec![ev("A", 0), ev("B", 1)],
        )
        .unwrap();
    assert_eq!(r.revision, CurrentRevision::Current(1));
    assert_eq!(r.position, Some(2));
    let r = l
        .append_blocking("t", ExpectedRevision::Any, vec![ev("C", 2)])
        .unwrap();
    assert_eq!(r.revision, CurrentRevision::Current(0));
    assert_eq!(r.position, Some(3));
    let events = l
        .read_stream("s", StreamStart::Start, Direction::Forwards, 10)
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.revision).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(
        events.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(l.head(), 3);
}

#[test]
fn events_at_reads_positions_in_the_order_asked() {
    let (_d, l, _c) = open();
    // Enough events for several segments, so that asking out of order moves between them.
    let events: Vec<_> = (0..3000u64).map(|i| ev("A", i)).collect();
    l.append_blocking("s", ExpectedRevision::NoStream, events)
        .unwrap();
    let asked = [2999, 0, 1, 3001, 2, 3000, 1500, 1];
    let got = l.events_at(&asked).unwrap();
    assert_eq!(got.len(), asked.len());
    for (p, e) in asked.iter().zip(&got) {
        assert_eq!(
            e.as_ref().map(|e| e.position),
            l.event_at(*p).unwrap().map(|e| e.position)
        );
        assert_eq!(
            e.as_ref().map(|e| e.revision),
            (1..=3000).contains(p).then(|| p - 1)
        );
    }
    assert!(l.events_at(&[]).unwrap().is_empty());
}

#[test]
fn wrong_expected_revision_names_the_actual_and_writes_nothing() {
    let (_d, l, _c) = open();
    l.append_blocking("s", ExpectedRevision::Any, vec![ev("A", 0)])
        .unwrap();
    for expected in [
        ExpectedRevision::NoStream,
        ExpectedRevision::Exact(5),
        ExpectedRevision::Exact(1),
    ] {
        match l.append_blocking("s", expected, vec![ev("B", 1)]) {
            Err(AppendError::WrongExpectedVersion {
                stream,
                expected: e,
                actual,
            }) => {
                assert_eq!(stream, "s");
                assert_eq!(e, expected);
                assert_eq!(actual, CurrentRevision::Current(0));
            }
            other => panic!("{expected:?}: {other:?}"),
        }
    }
    match l.append_blocking("nope", ExpectedRevision::StreamExists, vec![ev("B", 1)]) {
        Err(AppendError::WrongExpectedVersion { actual, .. }) => {
            assert_eq!(actual, CurrentRevision::NoStream)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.head(), 1);
}

#[test]
fn exact_retry_is_idempotent_and_partial_match_is_rejected() {
    let (_d, l, _c) = open();
    let first = l
        .append_blocking("s", ExpectedRevision::NoStream, vec![ev_id(1), ev_id(2)])
        .unwrap();
    l.append_blocking("s", ExpectedRevision::Exact(1), vec![ev_id(3)])
        .unwrap();
    let again = l
        .append_blocking("s", ExpectedRevision::NoStream, vec![ev_id(1), ev_id(2)])
        .unwrap();
    assert_eq!(again, first);
    let again = l
        .append_blocking("s", ExpectedRevision::Exact(0), vec![ev_id(2)])
        .unwrap();
    assert_eq!(again.position, Some(2));
    // first matches, second does not
    assert!(matches!(
        l.append_blocking("s", ExpectedRevision::NoStream, vec![ev_id(1), ev_id(9)]),
        Err(AppendError::WrongExpectedVersion { .. })
    ));
    // runs past the end of the stream
    assert!(matches!(
        l.append_blocking("s", ExpectedRevision::Exact(1), vec![ev_id(3), ev_id(4)]),
        Err(AppendError::WrongExpectedVersion { .. })
    ));
    assert_eq!(l.head(), 3);
}

#[test]
fn any_retry_within_the_window_is_idempotent() {
    let (_d, l, _c) = open();
    let first = l
        .append_blocking("s", ExpectedRevision::Any, vec![ev_id(1), ev_id(2)])
        .unwrap();
    for i in 10..60 {
        l.append_blocking("s", ExpectedRevision::Any, vec![ev_id(i)])
            .unwrap();
    }
    let again = l
        .append_blocking("s", ExpectedRevision::Any, vec![ev_id(1), ev_id(2)])
        .unwrap();
    assert_eq!(again, first);
    assert!(matches!(
        l.append_blocking("s", ExpectedRevision::Any, vec![ev_id(1), ev_id(77)]),
        Err(AppendError::WrongExpectedVersion { .. })
    ));
    assert_eq!(l.head(), 52);
}

#[test]
fn soft_delete_hides_the_stream_and_an_append_continues_it() {
    let (_d, l, _c) = open();
    l.append_blocking("s", ExpectedRevision::Any, vec![ev("A", 0), ev("A", 1)])
        .unwrap();
    l.append_blocking(
        "$$s",
        ExpectedRevision::Any,
        vec![ProposedEvent::json(
            METADATA_TYPE,
            &serde_json::json!({"owner": "x"}),
        )],
    )
    .unwrap();
    // a never-written stream cannot be deleted
    assert!(matches!(
        l.delete_blocking("ghost", ExpectedRevision::Any),
        Err(AppendError::WrongExpectedVersion {
            actual: CurrentRevision::NoStream,
            ..
        })
    ));
    l.delete_blocking("s", ExpectedRevision::Exact(1)).unwrap();
    assert!(matches!(
        l.read_stream("s", StreamStart::Start, Direction::Forwards, 10),
        Err(ReadError::StreamNotFound { .. })
    ));
    // deleting again with the last revision succeeds; StreamExists fails
    l.delete_blocking("s", ExpectedRevision::Exact(1)).unwrap();
    assert!(matches!(
        l.append_blocking("s", ExpectedRevision::StreamExists, vec![ev("B", 0)]),
        Err(AppendError::WrongExpectedVersion { .. })
    ));
    let r = l
        .append_blocking("s", ExpectedRevision::NoStream, vec![ev("B", 2)])
        .unwrap();
    assert_eq!(r.revision, CurrentRevision::Current(2));
    let events = l
        .read_stream("s", StreamStart::Start, Direction::Forwards, 10)
        .unwrap();
    assert_eq!(events.iter().map(|e| e.revision).collect::<Vec<_>>(), [2]);
    let meta = l
        .read_stream("$$s", StreamStart::End, Direction::Backwards, 1)
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&meta[0].data).unwrap();
    assert_eq!(json, serde_json::json!({"owner": "x", "$tb": 2}));
    // A metadata stream reads as its latest version only, from either end; $all has them all.
    let forwards = l
        .read_stream("$$s", StreamStart::Start, Direction::Forwards, 10)
        .unwrap();
    assert_eq!(forwards.len(), 1);
    assert_eq!(forwards[0].data, meta[0].data);
    let versions = l
        .read_all(AllStart::Start, Direction::Forwards, 100, None)
        .unwrap()
        .events
        .iter()
        .filter(|e| e.stream == "$$s")
        .count();
    assert_eq!(versions, 4, "the owner, two deletes and the continuation");
    // the deleted events stay in $all
    let all = l
        .read_all(AllStart::Start, Direction::Forwards, 100, None)
        .unwrap();
    assert!(all
        .events
        .iter()
        .any(|e| e.stream == "s" && e.revision == 0));
}

#[test]
fn tombstone_is_final() {
    let (_d, l, _c) = open();
    l.append_blocking("s", ExpectedRevision::Any, vec![ev("A", 0)])
        .unwrap();
    let p = l
        .tombstone_blocking("s", ExpectedRevision::Exact(0))
        .unwrap();
    let e = l.event_at(p).unwrap().unwrap();
    assert!(e.is_tombstone());
    assert_eq!(e.revision, i64::MAX as u64);
    for r in [
        l.append_blocking("s", ExpectedRevision::Any, vec![ev("B", 1)]),
        l.append_blocking("s", ExpectedRevision::NoStream, vec![ev("B", 1)]),
    ] {
        assert!(matches!(r, Err(AppendError::StreamDeleted { .. })), "{r:?}");
    }
    assert!(matches!(
        l.delete_blocking("s", ExpectedRevision::Any),
        Err(AppendError::StreamDeleted { .. })
    ));
    assert!(matches!(
        l.tombstone_blocking("s", ExpectedRevision::Any),
        Err(AppendError::StreamDeleted { .. })
    ));
    assert!(matches!(
        l.read_stream("s", StreamStart::Start, Direction::Forwards, 10),
        Err(ReadError::StreamDeleted { .. })
    ));
}

#[test]
fn reads_in_both_directions_respect_bounds() {
    let (_d, l, _c) = open();
    for i in 0..10 {
        let s = if i % 2 == 0 { "even" } else { "odd" };
        l.append_blocking(s, ExpectedRevision::Any, vec![ev("E", i)])
            .unwrap();
    }
    let revs = |v: Vec<RecordedEvent>| v.iter().map(|e| e.revision).collect::<Vec<_>>();
    let fw = l
        .read_stream("even", StreamStart::Revision(2), Direction::Forwards, 2)
        .unwrap();
    assert_eq!(revs(fw), [2, 3]);
    let bw = l
        .read_stream("even", StreamStart::Revision(2), Direction::Backwards, 5)
        .unwrap();
    assert_eq!(revs(bw), [2, 1, 0]);
    let end = l
        .read_stream("even", StreamStart::End, Direction::Backwards, 1)
        .unwrap();
    assert_eq!(revs(end), [4]);
    let pos = |p: AllPage| p.events.iter().map(|e| e.position).collect::<Vec<_>>();
    let all = l
        .read_all(AllStart::Position(4), Direction::Forwards, 3, None)
        .unwrap();
    assert_eq!(pos(all), [4, 5, 6]);
    let all = l
        .read_all(AllStart::Position(4), Direction::Backwards, 10, None)
        .unwrap();
    assert_eq!(pos(all), [3, 2, 1]);
    let all = l
        .read_all(AllStart::End, Direction::Backwards, 1, None)
        .unwrap();
    assert_eq!(pos(all), [10]);
    let odd = Filter::prefixes(FilterOn::StreamName, vec!["od".into()]);
    let all = l
        .read_all(AllStart::Start, Direction::Forwards, 100, Some(&odd))
        .unwrap();
    assert_eq!(pos(all), [2, 4, 6, 8, 10]);
    assert!(matches!(
        l.read_all(AllStart::Position(99), Direction::Forwards, 1, None),
        Err(ReadError::InvalidPosition { .. })
    ));
}

#[test]
fn limits_reject_with_clear_errors_and_write_nothing() {
    let (_d, l, _c) = open();
    let mut big = ev("Big", 0);
    big.data = vec![b'x'; 16 * 1024 * 1024 + 1];
    assert!(matches!(
        l.append_blocking("s", ExpectedRevision::Any, vec![ev("Ok", 1), big]),
        Err(AppendError::EventTooLarge { .. })
    ));
    let long = "x".repeat(5000);
    let err = l
        .append_blocking(&long, ExpectedRevision::Any, vec![ev("A", 0)])
        .unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    assert!(matches!(
        l.append_blocking("", ExpectedRevision::Any, vec![ev("A", 0)]),
        Err(AppendError::InvalidStreamName { .. })
    ));
    assert!(matches!(
        l.append_blocking("$all", ExpectedRevision::Any, vec![ev("A", 0)]),
        Err(AppendError::InvalidStreamName { .. })
    ));
    let bad_meta = ProposedEvent::json(METADATA_TYPE, &serde_json::json!([1, 2]));
    assert!(matches!(
        l.append_blocking("$$s", ExpectedRevision::Any, vec![bad_meta]),
        Err(AppendError::InvalidEvent { .. })
    ));
    assert_eq!(l.head(), 0);
}

#[test]
fn reopening_keeps_everything_and_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1_000));
    let root = {
        let l = open_at(&dir, &clock);
        for i in 0..300 {
            l.append_blocking(
                &format!("s{}", i % 7),
                ExpectedRevision::Any,
                vec![ev("A", i)],
            )
            .unwrap();
        }
        l.checkpoint().unwrap()
    };
    let l = open_at(&dir, &clock);
    assert_eq!(l.head(), 300);
    assert_eq!(l.checkpoint().unwrap(), root);
    l.append_blocking("s0", ExpectedRevision::Any, vec![ev("A", 300)])
        .unwrap();
    let report = l.verify(None, |_, _| {}).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.events, 301);
}

#[test]
fn recorded_time_comes_from_the_clock_and_finds_positions() {
    let (_d, l, c) = open();
    let t0 = c.now();
    l.append_blocking("s", ExpectedRevision::Any, vec![ev("A", 0)])
        .unwrap();
    c.advance_nanos(1_000);
    l.append_blocking("s", ExpectedRevision::Any, vec![ev("A", 1), ev("A", 2)])
        .unwrap();
    let e = l.event_at(2).unwrap().unwrap();
    assert_eq!(e.recorded.0, t0.0 + 1_000);
    assert_eq!(e.occurred, e.recorded);
    assert_eq!(l.position_at_time(Timestamp(t0.0 - 1)).unwrap(), 0);
    assert_eq!(l.position_at_time(t0).unwrap(), 1);
    assert_eq!(l.position_at_time(Timestamp(t0.0 + 999)).unwrap(), 1);
    assert_eq!(l.position_at_time(Timestamp(t0.0 + 5_000)).unwrap(), 3);
    // a clock that goes backwards does not make recorded time go backwards
    c.set(Timestamp(0));
    l.append_blocking("s", ExpectedRevision::Any, vec![ev("A", 3)])
        .unwrap();
    assert_eq!(l.event_at(4).unwrap().unwrap().recorded.0, t0.0 + 1_000);
}

/// `n` events of type A appended to streams s0, s1, … s`streams - 1` in turn.
fn round_robin(l: &Ledger, n: u64, streams: u64) {
    for i in 0..n {
        l.append_blocking(
            &format!("s{}", i % streams),
            ExpectedRevision::Any,
            vec![ev("A", i)],
        )
        .unwrap();
    }
}

/// Every event of `l`, as an import takes them.
fn exported(l: &Ledger) -> Vec<ImportRecord> {
    let page = l
        .read_all(AllStart::Start, Direction::Forwards, u64::MAX, None)
        .unwrap();
    page.events
        .iter()
        .map(|e| ImportRecord {
            stream: e.stream.clone(),
            revision: e.revision,
            recorded: e.recorded,
            event: ProposedEvent {
                id: e.id,
                event_type: e.event_type.clone(),
                content_type: e.content_type,
                data: e.data.clone(),
                metadata: e.metadata.clone(),
                occurred: Some(e.occurred),
            },
        })
        .collect()
}

#[test]
fn queued_imports_are_written_in_order_each_all_or_nothing() {
    let (_d, src, _c) = open();
    round_robin(&src, 30, 4);
    let records = exported(&src);
    let (_d2, dst, _c2) = open();
    // Queued back to back, so that they may share commits: the third contradicts the first.
    let mut wrong = records[3].clone();
    wrong.event.id = EventId::new_random();
    let first = dst.import_queued(records[..12].to_vec()).unwrap();
    let second = dst.import_queued(records[12..].to_vec()).unwrap();
    let third = dst.import_queued(vec![wrong]).unwrap();
    assert_eq!(first.wait().unwrap().written, 12);
    let second = second.wait().unwrap();
    assert_eq!(second.written, records.len() as u64 - 12);
    assert_eq!(second.last_position, records.len() as u64);
    assert!(matches!(
        third.wait(),
        Err(AppendError::ImportConflict { .. })
    ));
    assert_eq!(dst.checkpoint().unwrap(), src.checkpoint().unwrap());
}

#[test]
fn import_writes_exactly_and_is_resumable() {
    let (_d, src, _c) = open();
    round_robin(&src, 20, 3);
    src.delete_blocking("s1", ExpectedRevision::Any).unwrap();
    src.append_blocking("s1", ExpectedRevision::Any, vec![ev("B", 0)])
        .unwrap();
    src.tombstone_blocking("s2", ExpectedRevision::Any).unwrap();
    let records = exported(&src);
    let (_d2, dst, _c2) = open();
    let half = dst.import_blocking(records[..10].to_vec()).unwrap();
    assert_eq!(half.written, 10);
    let rest = dst.import_blocking(records.clone()).unwrap();
    assert_eq!(
        (rest.written, rest.already_present),
        (records.len() as u64 - 10, 10)
    );
    assert_eq!(dst.checkpoint().unwrap(), src.checkpoint().unwrap());
    assert!(matches!(
        dst.read_stream("s2", StreamStart::Start, Direction::Forwards, 1),
        Err(ReadError::StreamDeleted { .. })
    ));
    // a record that contradicts the ledger is a conflict, and nothing of its import is written
    let mut wrong = records[0].clone();
    wrong.event.id = EventId::new_random();
    let head = dst.head();
    let extra = ImportRecord {
        stream: "fresh".into(),
        revision: 0,
        ..records[0].clone()
    };
    assert!(matches!(
        dst.import_blocking(vec![extra, wrong]),
        Err(AppendError::ImportConflict { .. })
    ));
    assert_eq!(dst.head(), head);
}

#[test]
fn any_retry_is_recognised_within_the_window_and_appends_beyond_it() {
    let (_d, l, _c) = open();
    for i in 0..200u128 {
        l.append_blocking("w", ExpectedRevision::Any, vec![ev_id(1000 + i)])
            .unwrap();
    }
    // revision 100 is among the last 128 events: a retry, nothing written
    let r = l
        .append_blocking("w", ExpectedRevision::Any, vec![ev_id(1100), ev_id(1101)])
        .unwrap();
    assert_eq!(r.revision, CurrentRevision::Current(101));
    assert_eq!(l.head(), 200);
    // revision 10 is older than the window: KurrentDB appends it again, and so do we
    let r = l
        .append_blocking("w", ExpectedRevision::Any, vec![ev_id(1010)])
        .unwrap();
    assert_eq!(r.revision, CurrentRevision::Current(200));
    assert_eq!(l.head(), 201);
    const { assert!(IDEMPOTENCY_WINDOW_EVENTS >= 128) };
}

#[test]
fn dropping_the_last_handle_closes_the_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(1));
    for i in 0..40u64 {
        let l = open_at(&dir, &clock);
        l.append_blocking("s", ExpectedRevision::Any, vec![ev("A", i)])
            .unwrap();
        drop(l); // no close(): the drop itself must release the file and checkpoint
    }
    let l = open_at(&dir, &clock);
    assert_eq!(l.head(), 40);
    let wal = dir.path().join("test.redb.wal");
    l.close();
    assert_eq!(
        std::fs::metadata(wal).unwrap().len(),
        0,
        "closing empties the write-ahead log"
    );
}

#[test]
fn recent_event_ids_come_from_the_index_newest_first() {
    let (_d, l, _c) = open();
    l.append_blocking("s", ExpectedRevision::Any, (1..=3).map(ev_id).collect())
        .unwrap();
    l.append_blocking("t", ExpectedRevision::Any, vec![ev_id(99)])
        .unwrap();
    l.append_blocking("s", ExpectedRevision::Any, (4..=5).map(ev_id).collect())
        .unwrap();
    let id = |n: u128| EventId(uuid::Uuid::from_u128(n));
    assert_eq!(l.recent_event_ids("s", 3).unwrap(), [id(5), id(4), id(3)]);
    assert_eq!(l.recent_event_ids("s", 100).unwrap().len(), 5);
    assert!(l.recent_event_ids("s", 0).unwrap().is_empty());
    assert!(l.recent_event_ids("nothing", 10).unwrap().is_empty());
}
