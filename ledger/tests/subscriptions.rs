//! Subscriptions while appends race the catch-up: every event exactly once, in order.

mod common;
use common::*;
use ledger::*;

async fn collect_until(sub: &mut Subscription, last: Position) -> (Vec<Position>, bool) {
    let mut seen = Vec::new();
    let mut caught_up = false;
    while seen.last().copied() != Some(last) {
        match sub
            .next()
            .await
            .expect("subscription ended")
            .expect("subscription error")
        {
            SubscriptionMessage::Event(e) => seen.push(e.position),
            SubscriptionMessage::CaughtUp { .. } => caught_up = true,
            SubscriptionMessage::Checkpoint { .. } => {}
        }
    }
    (seen, caught_up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_subscription_sees_every_event_once_while_appends_race_the_switch() {
    let (_d, l, _c) = open();
    for i in 0..1500 {
        l.append(
            &format!("s{}", i % 5),
            ExpectedRevision::Any,
            vec![ev("A", i)],
        )
        .await
        .unwrap();
    }
    let mut sub = l.subscribe_all(AllSubscription {
        from: AllStart::Start,
        filter: None,
        checkpoint_interval: 0,
    });
    let writer = {
        let l = l.clone();
        tokio::spawn(async move {
            for i in 0..1500u64 {
                let events = (0..(i % 3 + 1)).map(|k| ev("B", i * 10 + k)).collect();
                l.append(&format!("s{}", i % 5), ExpectedRevision::Any, events)
                    .await
                    .unwrap();
            }
        })
    };
    writer.await.unwrap();
    let last = l.head();
    let (seen, caught_up) = collect_until(&mut sub, last).await;
    assert!(caught_up);
    assert_eq!(seen, (1..=last).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_subscription_from_a_revision_then_live() {
    let (_d, l, _c) = open();
    let mut early = l.subscribe_stream("later", StreamStart::Start);
    for i in 0..10 {
        l.append("s", ExpectedRevision::Any, vec![ev("A", i)])
            .await
            .unwrap();
        l.append("other", ExpectedRevision::Any, vec![ev("A", i)])
            .await
            .unwrap();
    }
    let mut sub = l.subscribe_stream("s", StreamStart::Revision(4));
    for i in 10..20 {
        l.append("s", ExpectedRevision::Any, vec![ev("A", i)])
            .await
            .unwrap();
    }
    let mut revisions = Vec::new();
    let mut caught_up = 0;
    while revisions.last() != Some(&19) {
        match sub.next().await.unwrap().unwrap() {
            SubscriptionMessage::Event(e) => revisions.push(e.revision),
            SubscriptionMessage::CaughtUp { .. } => caught_up += 1,
            SubscriptionMessage::Checkpoint { .. } => unreachable!(),
        }
    }
    assert_eq!(revisions, (5..20).collect::<Vec<_>>());
    assert_eq!(caught_up, 1);
    // a subscription to a stream that did not exist yet waits for it
    assert!(matches!(
        early.next().await.unwrap().unwrap(),
        SubscriptionMessage::CaughtUp { revision: None, .. }
    ));
    l.append("later", ExpectedRevision::NoStream, vec![ev("L", 0)])
        .await
        .unwrap();
    match early.next().await.unwrap().unwrap() {
        SubscriptionMessage::Event(e) => assert_eq!((e.stream.as_str(), e.revision), ("later", 0)),
        other => panic!("{other:?}"),
    }
    // tombstoning ends it with an error
    l.tombstone("later", ExpectedRevision::Any).await.unwrap();
    assert!(matches!(
        early.next().await.unwrap(),
        Err(ReadError::StreamDeleted { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_all_subscription_sends_checkpoints_at_considered_events() {
    let (_d, l, _c) = open();
    for i in 0..100 {
        let s = if i % 10 == 0 { "wanted" } else { "noise" };
        l.append(s, ExpectedRevision::Any, vec![ev("A", i)])
            .await
            .unwrap();
    }
    let mut sub = l.subscribe_all(AllSubscription {
        from: AllStart::Position(20),
        filter: Some(Filter::prefixes(FilterOn::StreamName, vec!["want".into()])),
        checkpoint_interval: 32,
    });
    let mut events = Vec::new();
    let mut checkpoints = Vec::new();
    loop {
        match sub.next().await.unwrap().unwrap() {
            SubscriptionMessage::Event(e) => events.push(e.position),
            SubscriptionMessage::Checkpoint { position } => checkpoints.push(position),
            SubscriptionMessage::CaughtUp { position, .. } => {
                assert_eq!(position, Some(100));
                break;
            }
        }
    }
    // strictly after position 20
    assert_eq!(events, [21, 31, 41, 51, 61, 71, 81, 91]);
    let live = sub.next().await.unwrap().unwrap();
    assert_eq!(live, SubscriptionMessage::Checkpoint { position: 100 });
    assert!(checkpoints.iter().all(|p| *p <= 100));
}
