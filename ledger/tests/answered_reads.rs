//! An append is answered once its write-ahead frame is synced; redb may commit it later, with
//! the group commits that follow. A read begun after an answer must still see what was
//! answered, and redb's commits are shared by group commits while requests keep coming.

use ledger::*;

mod common;
use common::ev;

#[test]
fn every_read_begun_after_an_answer_sees_what_was_answered() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path().join("s.redb"), Options::default()).unwrap();
    const WRITERS: u64 = 8;
    const APPENDS: u64 = 120;
    std::thread::scope(|s| {
        for t in 0..WRITERS {
            let l = &l;
            s.spawn(move || {
                let stream = format!("writer-{t}");
                for i in 0..APPENDS {
                    let r = l
                        .append_blocking(&stream, ExpectedRevision::Any, vec![ev("Noted", i)])
                        .unwrap();
                    let at = r.position.unwrap();
                    // The stream's last event is this one.
                    let last = l
                        .read_stream(&stream, StreamStart::End, Direction::Backwards, 1)
                        .unwrap();
                    assert_eq!(last[0].position, at, "{stream} after append {i}");
                    // $all holds it, and the checkpoint covers it.
                    assert_eq!(l.event_at(at).unwrap().unwrap().stream, stream);
                    assert!(l.checkpoint().unwrap().size >= at);
                    assert!(l.head() >= at);
                }
            });
        }
    });
    assert_eq!(l.head(), WRITERS * APPENDS);
    let report = l.verify(None, |_, _| {}).unwrap();
    assert!(report.problem.is_none(), "{report:?}");
}

#[test]
fn group_commits_share_redb_commits_while_requests_keep_coming_and_all_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let options = || {
        let mut o = Options::default();
        o.limits.commit_requests_max = 8;
        // Shared by count alone, however slow the machine.
        o.limits.shared_commit_group_commits_max = 16;
        o.limits.shared_commit_micros_max = u64::MAX;
        o
    };
    let l = Ledger::open(&path, options()).unwrap();
    common::queue_appends(&l, 400, 5);
    l.close();
    let w = l.writer_stats();
    assert_eq!((w.requests, w.events), (400, 400));
    assert!(w.commits >= 50, "at most 8 requests a commit: {w:?}");
    assert_eq!(w.logged, w.commits);
    // Closing commits whatever was open: every logged commit is in some redb commit, and
    // sixteen share each (one more if a read at open counted as a reader about).
    assert!(w.stored >= w.logged.div_ceil(16), "{w:?}");
    assert!(w.stored <= w.logged.div_ceil(16) + 1, "{w:?}");
    drop(l);

    // Reopened: everything is there, in order, and the write-ahead log was emptied at close.
    let l = Ledger::open(&path, options()).unwrap();
    assert_eq!(l.head(), 400);
    assert_eq!(l.writer_stats(), WriterStats::default());
    let page = l
        .read_all(AllStart::Start, Direction::Forwards, 1000, None)
        .unwrap();
    assert_eq!(page.events.len(), 400);
    assert!(page
        .events
        .iter()
        .enumerate()
        .all(|(i, e)| e.position == i as u64 + 1));
}

#[test]
fn a_read_wakes_an_idle_writer_whose_answered_commits_are_not_yet_in_redb() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing but a reader (or the close) makes the writer commit redb here.
    let limits = Limits {
        shared_commit_group_commits_max: usize::MAX,
        shared_commit_micros_max: u64::MAX,
        ..Limits::default()
    };
    let options = Options {
        limits,
        ..Options::default()
    };
    let l = Ledger::open(dir.path().join("s.redb"), options).unwrap();
    // No reader about: the answered appends stay in the writer's open transaction.
    for i in 0..5 {
        l.append_blocking("quiet", ExpectedRevision::Any, vec![ev("Noted", i)])
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let w = l.writer_stats();
    assert_eq!((w.logged, w.stored), (5, 0), "{w:?}");
    // The writer waits for requests; the read asks it to commit, and sees every append.
    let (done, seen) = std::sync::mpsc::channel();
    let reader = l.clone();
    std::thread::spawn(move || {
        let read = reader.read_stream("quiet", StreamStart::Start, Direction::Forwards, 10);
        let _ = done.send(read.map(|events| events.len()));
    });
    let read = seen
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the read was answered");
    assert_eq!(read.unwrap(), 5);
    let after = l.writer_stats();
    assert_eq!((after.logged, after.stored), (5, 1), "{after:?}");
}
