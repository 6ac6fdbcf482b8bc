//! `sync --server` against a local server that serves the recorded responses (their links
//! pointed at it): pages followed, members read, a failing request retried, and a second sync
//! records nothing.

mod common;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::{audit, lifeline, ok};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Feeds {
    base: String,
    calls: AtomicUsize,
    /// 0: as recorded; 1: the community on page 2 is gone from every feed (purged).
    phase: AtomicUsize,
}

impl Feeds {
    fn file(&self, name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/connections")
            .join(name);
        let text = std::fs::read_to_string(path).unwrap();
        [
            "https://qs.renovations.com:444",
            "https://dev.sdkdemo.com:444",
            "https://lcauto51.swg.usma.ibm.com",
        ]
        .iter()
        .fold(text, |t, host| t.replace(host, &self.base))
    }
}

async fn all(
    State(f): State<Arc<Feeds>>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    // The first request fails: the client must retry.
    if f.calls.fetch_add(1, Ordering::SeqCst) == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
    }
    match q.get("page").map(String::as_str) {
        Some("2") if f.phase.load(Ordering::SeqCst) == 1 => {
            (StatusCode::OK, empty_feed("communities/all"))
        }
        Some("2") => (StatusCode::OK, f.file("community-entry-public.xml")),
        _ => (StatusCode::OK, f.file("communities-feed-page1.xml")),
    }
}

async fn members(
    State(f): State<Arc<Feeds>>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    match q.get("communityUuid").map(String::as_str) {
        // The members of another community, served as this one's.
        Some(c @ "d97524f5-0330-48c7-91f6-cebc15ef2b53") => (
            StatusCode::OK,
            f.file("members-feed-2.xml")
                .replace("569bf180-1e86-4f4e-a806-23a3699c40d7", c),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            f.file("error-community-not-found.xml"),
        ),
    }
}

fn empty_feed(path: &str) -> String {
    format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\"><id>https://c.example.com/communities/service/atom/{path}</id><title>t</title></feed>"
    )
}

async fn trash() -> (StatusCode, String) {
    (StatusCode::OK, empty_feed("communities/trash"))
}

/// Every community has a Files widget, its instance id made from the community's uuid.
async fn widgets(Query(q): Query<HashMap<String, String>>) -> (StatusCode, String) {
    let c = q.get("communityUuid").cloned().unwrap_or_default();
    let instance = format!("W{}", c.replace('-', "_"));
    (
        StatusCode::OK,
        format!(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:snx=\"http://www.ibm.com/xmlns/prod/sn\">\
             <id>https://c.example.com/communities/service/atom/community/widgets?communityUuid={c}</id><title>w</title>\
             <entry><id>urn:w:{instance}</id><title>Files</title><category term=\"widget\"/>\
             <snx:widgetDefId>Files</snx:widgetDefId><snx:widgetInstanceId>{instance}</snx:widgetInstanceId></entry></feed>"
        ),
    )
}

/// Starts the server on a thread of its own; returns its base URL and its feeds.
fn server() -> String {
    server_with_feeds().0
}

fn server_with_feeds() -> (String, Arc<Feeds>) {
    let (tx, rx) = std::sync::mpsc::channel::<(String, Arc<Feeds>)>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let feeds = Arc::new(Feeds {
                base: base.clone(),
                calls: AtomicUsize::new(0),
                phase: AtomicUsize::new(0),
            });
            let app = Router::new()
                .route("/communities/service/atom/communities/all", get(all))
                .route("/communities/service/atom/communities/trash", get(trash))
                .route("/communities/service/atom/community/members", get(members))
                .route("/communities/service/atom/community/widgets", get(widgets))
                .with_state(feeds.clone());
            tx.send((base, feeds)).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

#[test]
fn sync_reads_every_page_and_records_once() {
    let base = server();
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("s.redb");
    ok(&l, &["init"]);
    let first: Value =
        serde_json::from_str(&ok(&l, &["sync", "--server", &base, "--format", "json"])).unwrap();
    // Ten communities on page 1 and one on page 2.
    assert_eq!(first["communities"], 11, "{first}");
    assert_eq!(first["created"], 11);
    let again: Value =
        serde_json::from_str(&ok(&l, &["sync", "--server", &base, "--format", "json"])).unwrap();
    assert_eq!(again["appended"], 0, "{again}");
    // Its members feed named the owner (not the entry's author) and four members.
    let rows = audit(&l, &["--community", "d97524f5-0330-48c7-91f6-cebc15ef2b53"]);
    let row = &rows[0];
    assert_eq!(
        row["data"]["owners"],
        serde_json::json!(["0EE5A7FA-3434-9A59-4825-7A7000278DAA"])
    );
    assert_eq!(row["data"]["members"].as_array().unwrap().len(), 4);
}

#[test]
fn an_unreachable_server_imports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("s.redb");
    ok(&l, &["init"]);
    // A port nothing listens on: every attempt fails.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = lifeline(&l, &["sync", "--server", &format!("http://{dead}")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("attempts; nothing was imported"),
        "{}",
        r.stderr
    );
    let r = lifeline(
        &l,
        &["sync", "--server", "http://127.0.0.1:1", "--user", "amy"],
    );
    assert_eq!(r.code, 2, "--user without --password-file: {}", r.stderr);
    // Not a web address: refused before any attempt.
    for server in [
        "connections.example.com",
        "ftp://files.example.com",
        "https://",
    ] {
        let r = lifeline(&l, &["sync", "--server", server]);
        assert_eq!(r.code, 2, "{server}: {}", r.stderr);
        assert!(
            r.stderr.contains("is not the URL of a web server"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn sync_records_widgets_and_what_was_purged() {
    let (base, feeds) = server_with_feeds();
    let tmp = tempfile::tempdir().unwrap();
    let l = tmp.path().join("s.redb");
    ok(&l, &["init"]);
    let first: Value =
        serde_json::from_str(&ok(&l, &["sync", "--server", &base, "--format", "json"])).unwrap();
    assert_eq!(first["created"], 11, "{first}");
    let widgets = audit(&l, &["--type", "WidgetAdded"]);
    assert_eq!(widgets.len(), 11, "a Files widget each");
    // The community of page 2 is gone from communities/all and from the trash: purged.
    feeds.phase.store(1, Ordering::SeqCst);
    let second: Value =
        serde_json::from_str(&ok(&l, &["sync", "--server", &base, "--format", "json"])).unwrap();
    assert_eq!(second["appended"], 2, "trashed, then purged: {second}");
    let purged = audit(&l, &["--type", "CommunityPurged"]);
    assert_eq!(purged.len(), 1, "{purged:?}");
    let again: Value =
        serde_json::from_str(&ok(&l, &["sync", "--server", &base, "--format", "json"])).unwrap();
    assert_eq!(again["appended"], 0, "{again}");
}
