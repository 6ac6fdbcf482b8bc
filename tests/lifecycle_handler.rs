//! The lifecycle handler end to end: a scripted sequence of real-shaped lifecycle POSTs — every
//! event type, a redelivery, a duplicate add, a remove that finds nothing, a bad entry — then
//! the state the ledger holds.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ledger::{Ledger, Options};
use lifeline::serve::{router, Handler};
use projections::{CommunityType, Lifecycle, Role, World};
use std::sync::Arc;
use tower::ServiceExt;

const COMMUNITY: &str = "5d19412d-8665-43bc-8e94-3a4ed1ccb47d";

/// A lifecycle entry as Communities posts it (domain.md §3).
fn entry(event: &str, actor: &str, props: &[(&str, &str)], instance: Option<&str>) -> String {
    entry_named(event, actor, "Sales", props, instance)
}

fn entry_named(
    event: &str,
    actor: &str,
    name: &str,
    props: &[(&str, &str)],
    instance: Option<&str>,
) -> String {
    let props: String = props
        .iter()
        .map(|(k, v)| format!("<snx:property name=\"{k}\">{v}</snx:property>"))
        .collect();
    let app = instance
        .map(|i| format!("<snx:remoteApplication instanceId=\"{i}\"/>"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <entry xmlns=\"http://www.w3.org/2005/Atom\" xmlns:snx=\"http://www.ibm.com/xmlns/prod/sn\">\
         <category term=\"{event}\" scheme=\"http://www.ibm.com/prod/sn/type/event\"/>\
         <author><name>{actor}</name><snx:userid>{actor}</snx:userid></author>\
         <snx:container id=\"{COMMUNITY}\" name=\"{name}\">{props}</snx:container>{app}</entry>"
    )
}

struct Server {
    app: axum::Router,
    ledger: Arc<Ledger>,
}

impl Server {
    async fn post(&self, path: &str, body: &str) -> (StatusCode, String) {
        let r = self
            .app
            .clone()
            .oneshot(
                Request::post(path)
                    .header("content-type", "application/atom+xml")
                    .body(Body::from(body.to_owned()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            r.headers().get("X-LConn-Auth").map(|v| v.to_str().unwrap()),
            Some("true"),
            "{path}"
        );
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Posts and requires `want`; returns how many events the log gained.
    async fn expect(&self, path: &str, body: &str, want: StatusCode) -> u64 {
        let before = self.ledger.head();
        let (status, text) = self.post(path, body).await;
        assert_eq!(status, want, "{path}: {text}");
        self.ledger.head() - before
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scripted_sequence_of_lifecycle_posts() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open(dir.path().join("h.redb"), Options::default()).unwrap());
    let s = Server {
        app: router(Arc::new(Handler::new(ledger.clone()).unwrap())),
        ledger: ledger.clone(),
    };
    let ok = StatusCode::OK;
    let people = [
        ("communityType", "public"),
        ("owners", "amy"),
        ("members", "bob"),
    ];

    // The Files widget of a community Lifeline has not seen: the community, then the widget.
    let added = entry("remote.app.added", "amy", &people, Some("Wfiles"));
    assert_eq!(s.expect("/lifecycle/Files", &added, ok).await, 2);
    // Communities retries the same delivery: recorded once.
    assert_eq!(s.expect("/lifecycle/Files", &added, ok).await, 0);
    // Another add of the same instance is a conflict.
    let again = entry("remote.app.added", "bob", &people, Some("Wfiles"));
    assert_eq!(
        s.expect("/lifecycle/Files", &again, StatusCode::CONFLICT)
            .await,
        0
    );

    let members = |owners: &'static str, members: &'static str| {
        [
            ("communityType", "public"),
            ("owners", owners),
            ("members", members),
        ]
    };
    let e = entry(
        "community.members.added",
        "amy",
        &members("amy", "bob, carol"),
        None,
    );
    assert_eq!(s.expect("/lifecycle", &e, ok).await, 1);
    let e = entry(
        "community.members.modified",
        "amy",
        &members("amy,bob", "carol"),
        None,
    );
    assert_eq!(s.expect("/lifecycle", &e, ok).await, 1);
    let e = entry(
        "community.members.removed",
        "amy",
        &members("amy,bob", ""),
        None,
    );
    assert_eq!(s.expect("/lifecycle", &e, ok).await, 1);
    let e = entry(
        "community.visibility.changed",
        "amy",
        &[("communityType", "private")],
        None,
    );
    assert_eq!(s.expect("/lifecycle", &e, ok).await, 1);
    let e = entry_named("community.updated", "amy", "Sales EMEA", &[], None);
    assert_eq!(s.expect("/lifecycle", &e, ok).await, 1);
    let e = entry(
        "community.org.changed",
        "amy",
        &[("communityOrgId", "org2")],
        None,
    );
    assert_eq!(s.expect("/lifecycle", &e, ok).await, 1);
    // Nothing new: answered, nothing recorded.
    let e = entry(
        "community.org.changed",
        "bob",
        &[("communityOrgId", "org2")],
        None,
    );
    assert_eq!(s.expect("/lifecycle", &e, ok).await, 0);

    let e = entry("widget.added", "amy", &[], Some("Wwiki"));
    assert_eq!(s.expect("/lifecycle/Wiki", &e, ok).await, 1);
    let e = entry("remote.app.removed", "amy", &[], Some("Wwiki"));
    assert_eq!(s.expect("/lifecycle/Wiki", &e, ok).await, 1);
    let e = entry("remote.app.removed", "bob", &[], Some("Wwiki"));
    assert_eq!(s.expect("/lifecycle/Wiki", &e, StatusCode::GONE).await, 0);
    let e = entry("remote.app.transfer", "amy", &[], Some("Wfiles"));
    assert_eq!(s.expect("/lifecycle/Files", &e, ok).await, 0);

    // Bad entries are refused with nothing recorded.
    for bad in [
        "not xml <".to_owned(),
        entry("community.exploded", "amy", &[], None),
        entry(
            "community.visibility.changed",
            "amy",
            &[("communityType", "secret")],
            None,
        ),
        entry("community.members.added", "amy", &[("owners", "amy")], None),
        entry(
            "community.members.removed",
            "amy",
            &members("", "bob"),
            None,
        ),
        entry("remote.app.added", "amy", &[], None),
    ] {
        assert_eq!(
            s.expect("/lifecycle/Files", &bad, StatusCode::BAD_REQUEST)
                .await,
            0,
            "{bad}"
        );
    }
    let (status, text) = s.post("/lifecycle", "<entry").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("nothing was recorded"), "{text}");

    let e = entry("community.prepare.delete", "amy", &[], None);
    assert_eq!(s.expect("/lifecycle", &e, ok).await, 1);
    let other = entry("community.prepare.delete", "amy", &[], None)
        .replace(COMMUNITY, "00000000-0000-4000-8000-000000000001");
    assert_eq!(s.expect("/lifecycle", &other, StatusCode::GONE).await, 0);

    // What the ledger now says Communities holds.
    let events = lifeline::domain::load(&ledger, ledger.head(), None)
        .unwrap()
        .events;
    assert_eq!(events.len(), 11);
    let w = World::replay(&events);
    let c = &w.intended.communities()[&COMMUNITY.parse::<uuid::Uuid>().unwrap()];
    assert_eq!(&*c.name, "Sales EMEA");
    assert_eq!(c.community_type, CommunityType::Private);
    assert_eq!(c.org_id.as_deref(), Some("org2"));
    assert_eq!(c.lifecycle, Lifecycle::Trashed);
    let members: Vec<(&str, Role)> = c.members.iter().map(|(u, r)| (&**u, *r)).collect();
    assert_eq!(members, [("amy", Role::Owner), ("bob", Role::Owner)]);
    let widgets: Vec<(&str, &str)> = c.widgets.iter().map(|(i, d)| (&**i, &**d)).collect();
    assert_eq!(widgets, [("Wfiles", "Files")]);
    let actors: Vec<Option<&str>> = events.iter().map(|r| r.event.actor()).collect();
    assert!(actors.iter().all(|a| *a == Some("amy")), "{actors:?}");
}

/// Entries from many senders at once: each answered, each in the ledger once, in order per
/// community (the handler queues appends without waiting for the previous to be durable).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open(dir.path().join("c.redb"), Options::default()).unwrap());
    let app = router(Arc::new(Handler::new(ledger.clone()).unwrap()));
    let senders = 8;
    let per = 25;
    let mut tasks = Vec::new();
    for s in 0..senders {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let community = format!("00000000-0000-4000-8000-{s:012}");
            for k in 0..per {
                let members: Vec<String> = (0..=k).map(|m| format!("m{m}")).collect();
                let body = entry(
                    "community.members.added",
                    "amy",
                    &[("owners", "amy"), ("members", &members.join(","))],
                    None,
                )
                .replace(COMMUNITY, &community);
                let r = app
                    .clone()
                    .oneshot(Request::post("/lifecycle").body(Body::from(body)).unwrap())
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = lifeline::domain::load(&ledger, ledger.head(), None)
        .unwrap()
        .events;
    // Per community: created with its first member, then one member added per entry.
    assert_eq!(events.len(), senders * per);
    let w = World::replay(&events);
    for s in 0..senders {
        let id: uuid::Uuid = format!("00000000-0000-4000-8000-{s:012}").parse().unwrap();
        assert_eq!(w.intended.communities()[&id].members.len(), per + 1);
    }
}
