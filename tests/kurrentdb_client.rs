//! The official KurrentDB Rust client (`kurrentdb`) against `lifeline serve` on a random
//! loopback port: every expected-revision kind, idempotent retries, reads of a stream and of
//! `$all` both ways, filters, subscriptions with appends racing the switch to live, filtered
//! checkpoints, delete and tombstone, stream metadata, batch append, roles, TLS, and the typed
//! errors the client maps — all through the wire, as any KurrentDB application would.

use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, DeleteStreamOptions, Error,
    EventData, Position, ReadAllOptions, ReadStreamOptions, StreamMetadataBuilder,
    StreamMetadataResult, StreamPosition, StreamState, SubscribeToAllOptions,
    SubscribeToStreamOptions, SubscriptionEvent, SubscriptionFilter, TombstoneStreamOptions,
};
use ledger::{Ledger, Options};
use lifeline::cli::ServeArgs;
use lifeline::serve::{start, Running};
use serde_json::{json, Value};
use std::sync::Arc;

struct Server {
    running: Running,
    ledger: Arc<Ledger>,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start(access: Option<Value>) -> Server {
        Server::start_with(access, false).await
    }

    async fn start_with(access: Option<Value>, tls: bool) -> Server {
        Server::start_limited(access, tls, 50_000).await
    }

    async fn start_limited(access: Option<Value>, tls: bool, rate_limit: u32) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(dir.path().join("l.redb"), Options::default()).unwrap());
        let access = access.map(|a| {
            let p = dir.path().join("access.json");
            std::fs::write(&p, a.to_string()).unwrap();
            p
        });
        let (tls_cert, tls_key) = if tls {
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&c, cert.cert.pem()).unwrap();
            std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
            (Some(c), Some(k))
        } else {
            (None, None)
        };
        let args = ServeArgs {
            access,
            tls_cert,
            tls_key,
            rate_limit,
            ..ServeArgs::on("127.0.0.1:0".parse().unwrap())
        };
        let running = start(ledger.clone(), &args).await.unwrap();
        Server {
            running,
            ledger,
            dir,
        }
    }

    fn client(&self) -> Client {
        self.client_as("")
    }

    /// A client; `userinfo` is `user:password@` or empty.
    fn client_as(&self, userinfo: &str) -> Client {
        let url = format!(
            "kurrentdb://{userinfo}127.0.0.1:{}?tls=false",
            self.running.addr.port()
        );
        Client::new(url.parse::<ClientSettings>().unwrap()).unwrap()
    }
}

/// An event with its own id (a retry resends the same ids).
fn event(kind: &str, n: u64) -> EventData {
    EventData::json(kind, &json!({ "n": n }))
        .unwrap()
        .id(uuid::Uuid::new_v4())
}

fn events(kind: &str, from: u64, count: u64) -> Vec<EventData> {
    (from..from + count).map(|n| event(kind, n)).collect()
}

async fn read_stream(
    c: &Client,
    stream: &str,
    o: &ReadStreamOptions,
) -> kurrentdb::Result<Vec<(u64, u64)>> {
    let mut s = c.read_stream(stream, o).await?;
    let mut out = Vec::new();
    while let Some(e) = s.next().await? {
        let e = e.get_original_event();
        let v: Value = e.as_json().unwrap();
        out.push((e.revision, v["n"].as_u64().unwrap()));
    }
    Ok(out)
}

async fn read_all(c: &Client, o: &ReadAllOptions) -> Vec<(String, u64, Position)> {
    let mut s = c.read_all(o).await.unwrap();
    let mut out = Vec::new();
    while let Some(e) = s.next().await.unwrap() {
        let e = e.get_original_event();
        out.push((e.stream_id().to_owned(), e.revision, e.position));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn expected_revisions_and_idempotent_retries() {
    let s = Server::start(None).await;
    let c = s.client();

    let info = c.server_info().await.unwrap();
    assert!(info.version().major() >= 22, "{:?}", info.version());

    let first = events("Opened", 0, 3);
    let no_stream = AppendToStreamOptions::default().stream_state(StreamState::NoStream);
    let r = c
        .append_to_stream("orders-1", &no_stream, first.clone())
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 2);
    assert_eq!(r.position.commit, r.position.prepare);
    assert!(r.position.commit > 0);

    // The same events again (a client retry): the original revision and position.
    let again = c
        .append_to_stream("orders-1", &no_stream, first.clone())
        .await
        .unwrap();
    assert_eq!(
        (again.next_expected_version, again.position),
        (2, r.position)
    );
    // A different event expecting no stream: a wrong expected version, with both sides named.
    match c
        .append_to_stream("orders-1", &no_stream, event("Opened", 9))
        .await
    {
        Err(Error::WrongExpectedVersion { expected, current }) => {
            assert_eq!(expected, StreamState::NoStream);
            assert_eq!(current, CurrentRevision::Current(2));
        }
        other => panic!("expected a wrong expected version, got {other:?}"),
    }
    // A partial match of the ids is a wrong expected version too.
    let partial = vec![first[0].clone(), event("Opened", 7)];
    assert!(matches!(
        c.append_to_stream("orders-1", &no_stream, partial).await,
        Err(Error::WrongExpectedVersion { .. })
    ));

    let exact = |r| AppendToStreamOptions::default().stream_state(StreamState::StreamRevision(r));
    assert_eq!(
        c.append_to_stream("orders-1", &exact(2), event("Paid", 3))
            .await
            .unwrap()
            .next_expected_version,
        3
    );
    match c
        .append_to_stream("orders-1", &exact(1), event("Paid", 4))
        .await
    {
        Err(Error::WrongExpectedVersion { expected, current }) => {
            assert_eq!(expected, StreamState::StreamRevision(1));
            assert_eq!(current, CurrentRevision::Current(3));
        }
        other => panic!("{other:?}"),
    }
    let exists = AppendToStreamOptions::default().stream_state(StreamState::StreamExists);
    match c
        .append_to_stream("orders-missing", &exists, event("Paid", 0))
        .await
    {
        Err(Error::WrongExpectedVersion { current, .. }) => {
            assert_eq!(current, CurrentRevision::NoStream)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.append_to_stream("orders-1", &exists, event("Shipped", 4))
            .await
            .unwrap()
            .next_expected_version,
        4
    );
    let any = AppendToStreamOptions::default();
    assert_eq!(
        c.append_to_stream("orders-1", &any, event("Closed", 5))
            .await
            .unwrap()
            .next_expected_version,
        5
    );

    // What was refused left nothing behind: revisions 0..=5, the values in order.
    let all = read_stream(&c, "orders-1", &ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(all, vec![(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);
    assert_eq!(s.ledger.head(), 6);
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_of_a_stream_and_of_all_in_both_directions() {
    let s = Server::start(None).await;
    let c = s.client();
    let any = AppendToStreamOptions::default();
    let written = c
        .append_to_stream("a-1", &any, events("A", 0, 10))
        .await
        .unwrap();
    c.append_to_stream("b-1", &any, events("B", 0, 5))
        .await
        .unwrap();

    let fwd = ReadStreamOptions::default()
        .forwards()
        .position(StreamPosition::Position(3))
        .max_count(4);
    let revs: Vec<u64> = read_stream(&c, "a-1", &fwd)
        .await
        .unwrap()
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(revs, [3, 4, 5, 6]);
    let back = ReadStreamOptions::default()
        .backwards()
        .position(StreamPosition::End)
        .max_count(3);
    let revs: Vec<u64> = read_stream(&c, "a-1", &back)
        .await
        .unwrap()
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(revs, [9, 8, 7]);
    let back_from = ReadStreamOptions::default()
        .backwards()
        .position(StreamPosition::Position(2));
    let revs: Vec<u64> = read_stream(&c, "a-1", &back_from)
        .await
        .unwrap()
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(revs, [2, 1, 0], "backwards from a revision includes it");
    assert!(matches!(
        read_stream(&c, "nothing-here", &ReadStreamOptions::default()).await,
        Err(Error::ResourceNotFound)
    ));

    // Each event carries its $all position (commit = prepare), the append's for the last one,
    // and a `created` time of today.
    let mut st = c
        .read_stream(
            "a-1",
            &ReadStreamOptions::default()
                .backwards()
                .position(StreamPosition::End)
                .max_count(1),
        )
        .await
        .unwrap();
    let last = st.next().await.unwrap().unwrap();
    let e = last.get_original_event();
    assert_eq!(e.position, written.position);
    assert!(
        (chrono_now_secs() - e.created.timestamp()).abs() < 600,
        "created {}",
        e.created
    );
    assert!(e.is_json);
    assert_eq!(e.event_type, "A");

    let everything = read_all(&c, &ReadAllOptions::default()).await;
    assert_eq!(everything.len(), 15);
    assert!(everything.windows(2).all(|w| w[0].2.commit < w[1].2.commit));
    assert!(everything
        .iter()
        .all(|e| e.2.commit == e.2.prepare && e.2.commit > 0));
    let backwards = read_all(
        &c,
        &ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End),
    )
    .await;
    let mut reversed = everything.clone();
    reversed.reverse();
    assert_eq!(backwards, reversed);

    // From a position: forwards includes it, backwards stops before it.
    let p = everything[6].2;
    let from = read_all(
        &c,
        &ReadAllOptions::default()
            .position(StreamPosition::Position(p))
            .max_count(2),
    )
    .await;
    assert_eq!(from, everything[6..8].to_vec());
    let before = read_all(
        &c,
        &ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::Position(p))
            .max_count(2),
    )
    .await;
    assert_eq!(before, vec![everything[5].clone(), everything[4].clone()]);
    s.running.stop().await;
}

fn chrono_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_by_prefix_and_regex_including_look_ahead() {
    let s = Server::start(None).await;
    let c = s.client();
    let any = AppendToStreamOptions::default();
    for (stream, kind) in [
        ("orders-1", "Opened"),
        ("invoices-1", "Billed"),
        ("orders-2", "Closed"),
        ("$system", "Tick"),
    ] {
        c.append_to_stream(stream, &any, events(kind, 0, 2))
            .await
            .unwrap();
    }
    let streams = |v: Vec<(String, u64, Position)>| v.into_iter().map(|e| e.0).collect::<Vec<_>>();

    let prefix = SubscriptionFilter::on_stream_name().add_prefix("orders-");
    let got = streams(read_all(&c, &ReadAllOptions::default().filter(prefix)).await);
    assert_eq!(got, ["orders-1", "orders-1", "orders-2", "orders-2"]);

    let by_type = SubscriptionFilter::on_event_type().regex("^(Billed|Closed)$");
    let got = streams(read_all(&c, &ReadAllOptions::default().filter(by_type)).await);
    assert_eq!(got, ["invoices-1", "invoices-1", "orders-2", "orders-2"]);

    // Excluding by negative look-ahead, as clients build "everything but" filters.
    let not_system = SubscriptionFilter::on_stream_name().regex(r"^(?!\$)");
    let got = streams(read_all(&c, &ReadAllOptions::default().filter(not_system)).await);
    assert_eq!(got.len(), 6);
    assert!(got.iter().all(|s| !s.starts_with('$')));

    let backwards = SubscriptionFilter::on_stream_name().add_prefix("orders-");
    let got = streams(
        read_all(
            &c,
            &ReadAllOptions::default()
                .backwards()
                .position(StreamPosition::End)
                .filter(backwards)
                .max_count(3),
        )
        .await,
    );
    assert_eq!(got, ["orders-2", "orders-2", "orders-1"]);

    // A regex that does not compile is refused with the reason.
    let bad = SubscriptionFilter::on_stream_name().regex("(unclosed");
    let answer = match c.read_all(&ReadAllOptions::default().filter(bad)).await {
        Ok(mut s) => s.next().await.map(|_| ()),
        Err(e) => Err(e),
    };
    match answer {
        Err(Error::Grpc { code, message }) => {
            assert_eq!(code, tonic_code_invalid_argument());
            assert!(message.contains("unclosed"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    s.running.stop().await;
}

fn tonic_code_invalid_argument() -> tonic::Code {
    tonic::Code::InvalidArgument
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_catch_up_then_go_live_with_no_gap_while_appends_race() {
    let s = Server::start(None).await;
    let c = s.client();
    let any = AppendToStreamOptions::default();
    c.append_to_stream("race-1", &any, events("E", 0, 300))
        .await
        .unwrap();

    let mut stream_sub = c
        .subscribe_to_stream(
            "race-1",
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Start),
        )
        .await;
    let mut all_sub = c.subscribe_to_all(&SubscribeToAllOptions::default()).await;
    // Appends race the catch-up and the switch to live.
    let writer = {
        let c = c.clone();
        tokio::spawn(async move {
            for n in 300..600u64 {
                c.append_to_stream("race-1", &AppendToStreamOptions::default(), event("E", n))
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut caught_up = false;
    while seen.len() < 600 {
        match stream_sub.next_subscription_event().await.unwrap() {
            SubscriptionEvent::EventAppeared(e) => {
                let v: Value = e.get_original_event().as_json().unwrap();
                seen.push(v["n"].as_u64().unwrap());
            }
            SubscriptionEvent::CaughtUp(_) => caught_up = true,
            _ => {}
        }
    }
    assert!(caught_up, "a caught-up notice comes before the live tail");
    assert_eq!(
        seen,
        (0..600).collect::<Vec<_>>(),
        "every event once, in order"
    );
    writer.await.unwrap();

    let mut positions = Vec::new();
    while positions.len() < 600 {
        if let SubscriptionEvent::EventAppeared(e) =
            all_sub.next_subscription_event().await.unwrap()
        {
            positions.push(e.get_original_event().position.commit);
        }
    }
    assert_eq!(positions, (1..=600).collect::<Vec<_>>());

    // Resuming after a revision gives only what follows it.
    let mut resumed = c
        .subscribe_to_stream(
            "race-1",
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Position(597)),
        )
        .await;
    let mut next = Vec::new();
    while next.len() < 2 {
        if let SubscriptionEvent::EventAppeared(e) =
            resumed.next_subscription_event().await.unwrap()
        {
            next.push(e.get_original_event().revision);
        }
    }
    assert_eq!(next, [598, 599]);
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn filtered_subscriptions_send_checkpoints_at_considered_positions() {
    let s = Server::start(None).await;
    let c = s.client();
    let any = AppendToStreamOptions::default();
    for n in 0..100u64 {
        let stream = if n % 10 == 0 { "wanted-1" } else { "other-1" };
        c.append_to_stream(stream, &any, event("E", n))
            .await
            .unwrap();
    }
    let filter = SubscriptionFilter::on_stream_name()
        .add_prefix("wanted-")
        .max(8);
    let mut sub = c
        .subscribe_to_all(&SubscribeToAllOptions::default().filter(filter))
        .await;
    let mut events_at = Vec::new();
    let mut checkpoints = Vec::new();
    let mut caught_up = false;
    while !caught_up || checkpoints.last().is_none_or(|p: &u64| *p < 100) {
        match sub.next_subscription_event().await.unwrap() {
            SubscriptionEvent::EventAppeared(e) => {
                events_at.push(e.get_original_event().position.commit)
            }
            SubscriptionEvent::Checkpoint(p) => checkpoints.push(p.commit),
            SubscriptionEvent::CaughtUp(_) => caught_up = true,
            _ => {}
        }
    }
    assert_eq!(events_at, (0..10).map(|k| k * 10 + 1).collect::<Vec<_>>());
    // Every 8 considered events (the window, times the client's multiplier of 1), then at the
    // last event considered on going live.
    let mut expected: Vec<u64> = (1..=12).map(|k| k * 8).collect();
    expected.push(100);
    assert_eq!(checkpoints, expected);
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_continues_tombstone_ends_and_metadata_round_trips() {
    let s = Server::start(None).await;
    let c = s.client();
    let any = AppendToStreamOptions::default();
    c.append_to_stream("cart-1", &any, events("Added", 0, 3))
        .await
        .unwrap();

    // Soft delete with a wrong expected revision: refused, typed.
    let wrong = DeleteStreamOptions::default().stream_state(StreamState::StreamRevision(7));
    assert!(matches!(
        c.delete_stream("cart-1", &wrong).await,
        Err(Error::WrongExpectedVersion { .. }) | Err(Error::Grpc { .. })
    ));
    let deleted = c
        .delete_stream(
            "cart-1",
            &DeleteStreamOptions::default().stream_state(StreamState::StreamRevision(2)),
        )
        .await
        .unwrap();
    assert!(deleted.is_some());
    assert!(matches!(
        read_stream(&c, "cart-1", &ReadStreamOptions::default()).await,
        Err(Error::ResourceNotFound)
    ));
    // Appending after a soft delete continues the stream at the next revision.
    let r = c
        .append_to_stream(
            "cart-1",
            &AppendToStreamOptions::default().stream_state(StreamState::NoStream),
            event("Added", 3),
        )
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 3);
    assert_eq!(
        read_stream(&c, "cart-1", &ReadStreamOptions::default())
            .await
            .unwrap(),
        vec![(3, 3)]
    );

    // Stream metadata: written and read back through `$$cart-1`.
    let meta = StreamMetadataBuilder::new().max_count(10).build();
    c.set_stream_metadata("cart-1", &any, &meta).await.unwrap();
    match c
        .get_stream_metadata("cart-1", &ReadStreamOptions::default())
        .await
        .unwrap()
    {
        StreamMetadataResult::Success(m) => {
            assert_eq!(m.metadata().max_count, Some(10));
        }
        other => panic!("{other:?}"),
    }

    // Tombstone: nothing more can be written, reads say deleted, and so does a subscription.
    c.tombstone_stream("cart-1", &TombstoneStreamOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        c.append_to_stream("cart-1", &any, event("Added", 9)).await,
        Err(Error::ResourceDeleted)
    ));
    assert!(matches!(
        read_stream(&c, "cart-1", &ReadStreamOptions::default()).await,
        Err(Error::ResourceDeleted)
    ));
    assert!(matches!(
        c.tombstone_stream("cart-1", &TombstoneStreamOptions::default())
            .await,
        Err(Error::ResourceDeleted)
    ));
    let mut sub = c
        .subscribe_to_stream("cart-1", &SubscribeToStreamOptions::default())
        .await;
    assert!(matches!(
        sub.next_subscription_event().await,
        Err(Error::ResourceDeleted)
    ));
    // The tombstone is a record in $all, as everything is.
    let all = read_all(&c, &ReadAllOptions::default()).await;
    assert!(all
        .iter()
        .any(|e| e.0 == "cart-1" && e.1 == i64::MAX as u64));
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_append_answers_each_request() {
    let s = Server::start(None).await;
    let c = s.client();
    let batch = c.batch_append(&Default::default()).await.unwrap();
    let r = batch
        .append_to_stream("batch-1", StreamState::NoStream, events("B", 0, 50))
        .await
        .unwrap();
    assert_eq!(r.current_revision(), Some(49));
    let r2 = batch
        .append_to_stream("batch-2", StreamState::Any, events("B", 0, 2))
        .await
        .unwrap();
    assert_eq!(r2.current_revision(), Some(1));
    assert!(r2.current_position().unwrap().commit > r.current_position().unwrap().commit);
    // Appends in flight together on the one call, each answered for itself.
    let (a, b) = tokio::join!(
        batch.append_to_stream("batch-3", StreamState::NoStream, events("B", 0, 20)),
        batch.append_to_stream("batch-4", StreamState::NoStream, events("B", 0, 30)),
    );
    assert_eq!(a.unwrap().current_revision(), Some(19));
    assert_eq!(b.unwrap().current_revision(), Some(29));
    // A refused batch is answered as refused, and appends nothing (the client then closes
    // its batch session).
    let head = s.ledger.head();
    let refused = batch
        .append_to_stream("batch-1", StreamState::NoStream, events("B", 100, 3))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(s.ledger.head(), head);
    let revs: Vec<u64> = read_stream(&c, "batch-1", &ReadStreamOptions::default())
        .await
        .unwrap()
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(revs, (0..50).collect::<Vec<_>>());
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscription_to_a_stream_not_yet_written_waits_for_it() {
    let s = Server::start(None).await;
    let c = s.client();
    let mut sub = c
        .subscribe_to_stream("later-1", &SubscribeToStreamOptions::default())
        .await;
    // Caught up on nothing first (no revision to name); the stream is written only then, so
    // its first event comes live, however long catching up takes.
    let patience = std::time::Duration::from_secs(20);
    let caught_up = loop {
        let message = tokio::time::timeout(patience, sub.next_subscription_event()).await;
        match message.expect("caught up in time").unwrap() {
            SubscriptionEvent::CaughtUp(c) => break c,
            SubscriptionEvent::EventAppeared(_) => panic!("an event before anything was written"),
            _ => {}
        }
    };
    assert!(
        caught_up
            .as_ref()
            .is_some_and(|c| c.stream_revision.is_none()),
        "{caught_up:?}"
    );
    c.append_to_stream("later-1", &AppendToStreamOptions::default(), event("E", 7))
        .await
        .unwrap();
    let got = loop {
        let message = tokio::time::timeout(patience, sub.next_subscription_event()).await;
        if let SubscriptionEvent::EventAppeared(e) = message.expect("the event in time").unwrap() {
            let v: Value = e.get_original_event().as_json().unwrap();
            break v["n"].as_u64();
        }
    };
    assert_eq!(got, Some(7));
    s.running.stop().await;
}

const COMMUNITY: &str = "5d19412d-8665-43bc-8e94-3a4ed1ccb47d";

#[tokio::test(flavor = "multi_thread")]
async fn domain_events_are_checked_and_projected_and_lifecycle_events_readable() {
    let s = Server::start(None).await;
    let c = s.client();
    let stream = format!("community-{COMMUNITY}");
    let created = json!({"community": COMMUNITY, "name": "Sales", "communityType": "public", "owners": ["amy"]});
    let any = AppendToStreamOptions::default();

    // A malformed Lifeline event is refused, with the reason, and nothing is appended.
    let bad = EventData::json("CommunityCreated", &json!({"community": COMMUNITY})).unwrap();
    match c.append_to_stream(stream.as_str(), &any, bad).await {
        Err(Error::Grpc { code, message }) => {
            assert_eq!(code, tonic::Code::InvalidArgument);
            assert!(message.contains("nothing was appended"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // In the wrong stream: refused too.
    let elsewhere = EventData::json("CommunityCreated", &created).unwrap();
    assert!(c
        .append_to_stream("somewhere-else", &any, elsewhere)
        .await
        .is_err());
    assert_eq!(s.ledger.head(), 0);

    let good = EventData::json("CommunityCreated", &created).unwrap();
    c.append_to_stream(stream.as_str(), &any, good)
        .await
        .unwrap();
    let ledger = s.ledger.clone();
    let world = tokio::task::spawn_blocking(move || {
        let point = lifeline::domain::Point {
            position: ledger.head(),
            occurred_by: None,
        };
        lifeline::world::world_at(&ledger, &point, true)
            .unwrap()
            .world
    })
    .await
    .unwrap();
    let uuid: uuid::Uuid = COMMUNITY.parse().unwrap();
    assert_eq!(world.community(uuid).map(|c| &*c.name), Some("Sales"));

    // An event from the lifecycle handler, on the same port, is read back by the client.
    let entry = format!(
        "<entry xmlns=\"http://www.w3.org/2005/Atom\" xmlns:snx=\"http://www.ibm.com/xmlns/prod/sn\">\
         <category term=\"community.updated\" scheme=\"http://www.ibm.com/prod/sn/type/event\"/>\
         <author><snx:userid>amy</snx:userid></author>\
         <snx:container id=\"{COMMUNITY}\" name=\"Sales EMEA\"><snx:property name=\"communityType\">public</snx:property></snx:container></entry>"
    );
    let url = format!("http://{}/lifecycle", s.running.addr);
    let status = tokio::task::spawn_blocking(move || {
        ureq::post(&url)
            .header("content-type", "application/atom+xml")
            .send(entry)
            .map(|r| r.status().as_u16())
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(status, 200);
    let mut st = c
        .read_stream(
            stream.as_str(),
            &ReadStreamOptions::default()
                .backwards()
                .position(StreamPosition::End)
                .max_count(1),
        )
        .await
        .unwrap();
    let e = st.next().await.unwrap().unwrap();
    let data: Value = e.get_original_event().as_json().unwrap();
    assert_eq!(e.get_original_event().event_type, "CommunityUpdated");
    assert_eq!(data["name"], "Sales EMEA");
    s.running.stop().await;
}

const READER: (&str, &str) = ("auditor", "auditor-password-0123");
const WRITER: (&str, &str) = ("forwarder", "forwarder-password-0123");

fn users() -> Value {
    json!({"users": [
        {"user": READER.0, "password": READER.1, "role": "read"},
        {"user": WRITER.0, "password": WRITER.1, "role": "write"},
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_gate_each_call_and_unknown_credentials_are_refused() {
    let s = Server::start(Some(users())).await;
    let any = AppendToStreamOptions::default();
    let writer = s.client_as(&format!("{}:{}@", WRITER.0, WRITER.1));
    writer
        .append_to_stream("ops-1", &any, event("E", 0))
        .await
        .unwrap();

    let reader = s.client_as(&format!("{}:{}@", READER.0, READER.1));
    assert_eq!(
        read_stream(&reader, "ops-1", &ReadStreamOptions::default())
            .await
            .unwrap(),
        vec![(0, 0)]
    );
    assert!(matches!(
        reader.append_to_stream("ops-1", &any, event("E", 1)).await,
        Err(Error::AccessDenied)
    ));
    // Tombstones are for admins only.
    assert!(matches!(
        writer
            .tombstone_stream("ops-1", &TombstoneStreamOptions::default())
            .await,
        Err(Error::AccessDenied)
    ));

    let stranger = s.client_as("mallory:not-the-password-at-all@");
    assert!(matches!(
        read_stream(&stranger, "ops-1", &ReadStreamOptions::default()).await,
        Err(Error::AccessDenied)
    ));
    let anonymous = s.client();
    assert!(matches!(
        read_stream(&anonymous, "ops-1", &ReadStreamOptions::default()).await,
        Err(Error::AccessDenied)
    ));
    assert_eq!(s.ledger.head(), 1, "nothing refused was written");
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_the_client_with_credentials() {
    let s = Server::start_with(Some(users()), true).await;
    let ca = s.dir.path().join("cert.pem");
    let url = format!(
        "kurrentdb://{}:{}@localhost:{}?tls=true&tlsCaFile={}",
        WRITER.0,
        WRITER.1,
        s.running.addr.port(),
        ca.display()
    );
    let c = Client::new(url.parse::<ClientSettings>().unwrap()).unwrap();
    let r = c
        .append_to_stream(
            "secure-1",
            &AppendToStreamOptions::default(),
            events("S", 0, 2),
        )
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 1);
    assert_eq!(
        read_stream(&c, "secure-1", &ReadStreamOptions::default())
            .await
            .unwrap(),
        vec![(0, 0), (1, 1)]
    );
    // A service Lifeline does not run is an unsupported feature to the client.
    assert!(matches!(
        c.create_persistent_subscription("secure-1", "group", &Default::default())
            .await,
        Err(Error::UnsupportedFeature)
    ));
    s.running.stop().await;
}

/// A header of an HTTP answer, as text.
fn header<B>(r: &ureq::http::Response<B>, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The status a gRPC call to `path` is answered with (a trailers-only answer carries it in
/// its headers).
fn grpc_status_of(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let r = ureq::post(&format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .config()
        .http_status_as_error(false)
        .build()
        .send(&[0u8, 0, 0, 0, 0][..])
        .unwrap();
    let h = |k: &str| {
        r.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    (h("grpc-status"), h("grpc-message"))
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_not_served_answer_not_found_or_unimplemented() {
    let s = Server::start(None).await;
    let addr = s.running.addr;
    let (list, other) = tokio::task::spawn_blocking(move || {
        (
            grpc_status_of(
                addr,
                "/event_store.client.persistent_subscriptions.PersistentSubscriptions/List",
            ),
            grpc_status_of(addr, "/event_store.client.projections.Projections/Create"),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        list.0, "5",
        "List of persistent subscriptions: NOT_FOUND ({})",
        list.1
    );
    assert_eq!(other.0, "12", "anything else: UNIMPLEMENTED ({})", other.1);
    // Over HTTP on the same listener, a method an address does not take is a JSON error too,
    // with the methods it takes in Allow.
    let (status, allow, body) = tokio::task::spawn_blocking(move || {
        let mut r = ureq::get(&format!("http://{addr}/lifecycle/Files"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        let allow = header(&r, "allow");
        (
            r.status().as_u16(),
            allow,
            r.body_mut().read_to_string().unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!((status, allow.as_deref()), (405, Some("POST")), "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("does not take GET"),
        "{v}"
    );
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_over_the_size_limit_is_refused_and_nothing_is_written() {
    let s = Server::start(None).await;
    let c = s.client();
    let max = s.ledger.limits().event_bytes_max;
    let big = EventData::binary("Blob", vec![7u8; max + 1].into()).id(uuid::Uuid::new_v4());
    match c
        .append_to_stream("blobs-1", &AppendToStreamOptions::default(), big)
        .await
    {
        Err(Error::Grpc { code, message }) => {
            assert_eq!(code, tonic::Code::InvalidArgument);
            assert!(
                message.contains("Maximum Append Event Size Exceeded"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.ledger.head(), 0);
    // Just under the limit is fine, and comes back whole.
    let data = vec![9u8; max - 100];
    let ok = EventData::binary("Blob", data.clone().into()).id(uuid::Uuid::new_v4());
    c.append_to_stream("blobs-1", &AppendToStreamOptions::default(), ok)
        .await
        .unwrap();
    let mut st = c
        .read_stream("blobs-1", &ReadStreamOptions::default())
        .await
        .unwrap();
    let e = st.next().await.unwrap().unwrap();
    assert_eq!(e.get_original_event().data.len(), data.len());
    assert!(!e.get_original_event().is_json);
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn beyond_loopback_the_server_needs_tls_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open(dir.path().join("l.redb"), Options::default()).unwrap());
    let args = ServeArgs::on("0.0.0.0:0".parse().unwrap());
    let err = start(ledger, &args)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("needs TLS") && err.contains("--access"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_address_is_held_to_its_rate() {
    let s = Server::start_limited(None, false, 3).await;
    let addr = s.running.addr;
    let (codes, grpc) = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let codes: Vec<(u16, Option<String>)> = (0..10)
            .map(|_| {
                let r = agent
                    .get(&format!("http://{addr}/api/v1/checkpoint"))
                    .call()
                    .unwrap();
                let retry = header(&r, "retry-after");
                (r.status().as_u16(), retry)
            })
            .collect();
        (
            codes,
            grpc_status_of(addr, "/event_store.client.streams.Streams/Read"),
        )
    })
    .await
    .unwrap();
    let ok = codes.iter().filter(|c| c.0 == 200).count();
    let refused: Vec<_> = codes.iter().filter(|c| c.0 == 429).collect();
    assert!(
        (3..=4).contains(&ok),
        "a burst of one second's worth passes: {codes:?}"
    );
    assert_eq!(ok + refused.len(), 10, "{codes:?}");
    assert!(
        refused.iter().all(|c| c.1.as_deref() == Some("1")),
        "{codes:?}"
    );
    assert_eq!(
        grpc.0, "14",
        "gRPC over the limit: UNAVAILABLE ({})",
        grpc.1
    );
    assert!(
        grpc.1.replace("%20", " ").contains("Too Busy"),
        "{}",
        grpc.1
    );
    s.running.stop().await;
}
