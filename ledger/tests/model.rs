//! Random sequences of appends (every expected-revision kind, retries), deletes, tombstones and
//! reads, checked against a plain in-memory model of KurrentDB's rules.

mod common;
use common::*;
use ledger::*;
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Clone, Debug)]
enum Step {
    Append {
        stream: u8,
        expected: u8,
        ids: Vec<u8>,
    },
    Retry {
        back: u8,
    },
    Delete {
        stream: u8,
        exact: bool,
    },
    Tombstone {
        stream: u8,
    },
    Read {
        stream: u8,
        from: u8,
        backwards: bool,
        count: u8,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..4u8, 0..6u8, prop::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(stream, expected, ids)| Step::Append { stream, expected, ids }),
        2 => (0..8u8).prop_map(|back| Step::Retry { back }),
        1 => (0..4u8, any::<bool>()).prop_map(|(stream, exact)| Step::Delete { stream, exact }),
        1 => (0..4u8).prop_map(|stream| Step::Tombstone { stream }),
        3 => (0..4u8, 0..12u8, any::<bool>(), 1..6u8)
            .prop_map(|(stream, from, backwards, count)| Step::Read { stream, from, backwards, count }),
    ]
}

#[derive(Default, Clone)]
struct ModelStream {
    ids: Vec<u128>,
    truncate_before: u64,
    soft_deleted: bool,
    tombstoned: bool,
}

#[derive(Default)]
struct Model {
    streams: HashMap<String, ModelStream>,
    next_id: u128,
    appended: Vec<(String, ExpectedRevision, Vec<u128>)>,
}

impl Model {
    fn last(&self, s: &str) -> Option<u64> {
        self.streams
            .get(s)
            .and_then(|m| (m.ids.len() as u64).checked_sub(1))
    }
}

fn expected_of(code: u8, last: Option<u64>) -> ExpectedRevision {
    match code {
        0 => ExpectedRevision::Any,
        1 => ExpectedRevision::NoStream,
        2 => ExpectedRevision::StreamExists,
        3 => ExpectedRevision::Exact(last.unwrap_or(0)),
        4 => ExpectedRevision::Exact(last.map_or(0, |l| l + 1)),
        _ => ExpectedRevision::Exact(last.map_or(3, |l| l.saturating_sub(1))),
    }
}

/// What KurrentDB answers for a fresh append (no retry): Ok(first revision) or a WEV.
fn model_append(
    m: &mut Model,
    s: &str,
    expected: ExpectedRevision,
    ids: &[u128],
) -> Result<(), ()> {
    let st = m.streams.entry(s.to_owned()).or_default().clone();
    if st.tombstoned {
        return Err(());
    }
    let last = (st.ids.len() as u64).checked_sub(1);
    let exists = last.is_some() && !st.soft_deleted;
    let ok = match expected {
        ExpectedRevision::Any => true,
        ExpectedRevision::NoStream => last.is_none() || st.soft_deleted,
        ExpectedRevision::StreamExists => exists,
        ExpectedRevision::Exact(e) => last == Some(e),
    };
    if !ok {
        return Err(());
    }
    let entry = m.streams.get_mut(s).expect("inserted");
    if !ids.is_empty() && entry.soft_deleted {
        entry.truncate_before = entry.ids.len() as u64;
        entry.soft_deleted = false;
    }
    entry.ids.extend_from_slice(ids);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ledger_follows_the_model(steps in prop::collection::vec(step(), 1..40)) {
        let (_d, l, _c) = open();
        let mut m = Model::default();
        for step in steps {
            match step {
                Step::Append { stream, expected, ids } => {
                    let s = format!("s{stream}");
                    let exp = expected_of(expected, m.last(&s));
                    let ids: Vec<u128> = ids.iter().map(|_| { m.next_id += 1; m.next_id }).collect();
                    let events = ids.iter().map(|i| ev_id(*i)).collect();
                    let got = l.append_blocking(&s, exp, events);
                    let want = model_append(&mut m, &s, exp, &ids);
                    prop_assert_eq!(got.is_ok(), want.is_ok(), "{} {:?}: {:?}", s, exp, got);
                    if want.is_ok() && !ids.is_empty() {
                        m.appended.push((s.clone(), exp, ids.clone()));
                    }
                    if let Ok(r) = got {
                        prop_assert_eq!(r.revision, CurrentRevision::from_option(m.last(&s)));
                    }
                }
                Step::Retry { back } => {
                    // Re-sending an acknowledged append with the same ids writes nothing.
                    let Some((s, exp, ids)) = m.appended.iter().rev().nth(back as usize).cloned() else { continue };
                    let st = m.streams[&s].clone();
                    let head = l.head();
                    let got = l.append_blocking(&s, exp, ids.iter().map(|i| ev_id(*i)).collect());
                    if st.tombstoned {
                        prop_assert!(matches!(got, Err(AppendError::StreamDeleted { .. })), "{:?}", got);
                    } else if let Ok(r) = got {
                        // Either an idempotent success, or (Any/exists beyond the window, or a
                        // soft-deleted NoStream) a fresh append, which the model then records.
                        if l.head() != head {
                            model_append(&mut m, &s, exp, &ids).map_err(|_| TestCaseError::fail("model refused"))?;
                        }
                        let pos = r.position.expect("a retry of events has a position");
                        let e = l.event_at(pos).unwrap().unwrap();
                        prop_assert_eq!(e.id, EventId(uuid::Uuid::from_u128(*ids.last().unwrap())));
                    } else {
                        prop_assert_eq!(l.head(), head);
                    }
                }
                Step::Delete { stream, exact } => {
                    let s = format!("s{stream}");
                    let last = m.last(&s);
                    let exp = if exact { ExpectedRevision::Exact(last.unwrap_or(0)) } else { ExpectedRevision::Any };
                    let got = l.delete_blocking(&s, exp);
                    let st = m.streams.entry(s.clone()).or_default();
                    let want = if st.tombstoned || last.is_none() { Err(()) } else { Ok(()) };
                    prop_assert_eq!(got.is_ok(), want.is_ok(), "delete {}: {:?}", s, got);
                    if want.is_ok() { st.soft_deleted = true; }
                }
                Step::Tombstone { stream } => {
                    let s = format!("s{stream}");
                    let got = l.tombstone_blocking(&s, ExpectedRevision::Any);
                    let st = m.streams.entry(s.clone()).or_default();
                    prop_assert_eq!(got.is_ok(), !st.tombstoned);
                    st.tombstoned = true;
                }
                Step::Read { stream, from, backwards, count } => {
                    let s = format!("s{stream}");
                    let dir = if backwards { Direction::Backwards } else { Direction::Forwards };
                    let got = l.read_stream(&s, StreamStart::Revision(from as u64), dir, count as u64);
                    let st = m.streams.get(&s).cloned().unwrap_or_default();
                    if st.tombstoned {
                        prop_assert!(matches!(got, Err(ReadError::StreamDeleted { .. })), "{:?}", got);
                    } else if st.ids.is_empty() || st.soft_deleted {
                        prop_assert!(matches!(got, Err(ReadError::StreamNotFound { .. })), "{:?}", got);
                    } else {
                        let last = st.ids.len() as u64 - 1;
                        let tb = st.truncate_before;
                        let want: Vec<u64> = if backwards {
                            let top = (from as u64).min(last);
                            if top < tb { vec![] } else { (tb..=top).rev().take(count as usize).collect() }
                        } else {
                            ((from as u64).max(tb)..=last).take(count as usize).collect()
                        };
                        let got = got.unwrap();
                        prop_assert_eq!(got.iter().map(|e| e.revision).collect::<Vec<_>>(), want.clone());
                        for e in &got {
                            prop_assert_eq!(e.id, EventId(uuid::Uuid::from_u128(st.ids[e.revision as usize])));
                        }
                    }
                }
            }
        }
        // $all holds every record once, in position order, and the whole log verifies.
        let all = l.read_all(AllStart::Start, Direction::Forwards, u64::MAX, None).unwrap();
        let positions: Vec<u64> = all.events.iter().map(|e| e.position).collect();
        prop_assert_eq!(positions, (1..=l.head()).collect::<Vec<_>>());
        let back = l.read_all(AllStart::End, Direction::Backwards, u64::MAX, None).unwrap();
        prop_assert_eq!(back.events.len() as u64, l.head());
        let report = l.verify(None, |_, _| {}).unwrap();
        prop_assert_eq!(report.problem, None);
    }
}
