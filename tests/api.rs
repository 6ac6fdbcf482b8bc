//! The JSON API: roles from a tokens file, JSON answers, JSON errors, and a refused append that
//! appends nothing.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ledger::{Ledger, Options};
use lifeline::access::Access;
use lifeline::api::{router, Api};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const COMMUNITY: &str = "5d19412d-8665-43bc-8e94-3a4ed1ccb47d";
const READ: &str = "read-token-0123456789";
const WRITE: &str = "write-token-0123456789";

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let r = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_answers_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    std::fs::write(
        &tokens,
        json!({"tokens": [{"token": READ, "role": "read"}, {"token": WRITE, "role": "write"}]})
            .to_string(),
    )
    .unwrap();
    let ledger = Arc::new(Ledger::open(dir.path().join("a.redb"), Options::default()).unwrap());
    let app = router(Arc::new(Api {
        ledger: ledger.clone(),
        access: Arc::new(Access::load(&tokens).unwrap()),
    }));

    let (s, v) = call(&app, "GET", "/api/v1/checkpoint", None, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("Bearer"));
    let (s, _) = call(
        &app,
        "GET",
        "/api/v1/checkpoint",
        Some("not-a-token-at-all"),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let created = json!({"stream": "community-5d19412d-8665-43bc-8e94-3a4ed1ccb47d", "type": "CommunityCreated",
        "data": {"community": "5d19412d-8665-43bc-8e94-3a4ed1ccb47d", "name": "Sales", "communityType": "public", "owners": ["amy"]},
        "expected": "no-stream"});
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/events",
        Some(READ),
        &created.to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/events",
        Some(WRITE),
        &created.to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["position"], 1);
    // The same append again: the stream exists now.
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/events",
        Some(WRITE),
        &created.to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    for bad in [
        "not json".to_owned(),
        json!({"stream": "x", "type": "MembersAdded", "data": {"community": "nope"}}).to_string(),
        json!({"stream": "x", "type": "Note", "data": {}, "expected": "sometimes"}).to_string(),
        json!({"stream": "x", "type": "Note", "data": {}, "expected": -1}).to_string(),
        json!({"stream": "x", "type": "Note", "data": {}, "expected": true}).to_string(),
    ] {
        let (s, v) = call(&app, "POST", "/api/v1/events", Some(WRITE), &bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("nothing was appended"),
            "{v}"
        );
    }
    assert_eq!(ledger.head(), 1, "refused appends appended nothing");

    let (s, v) = call(&app, "GET", "/api/v1/checkpoint", Some(READ), "").await;
    assert_eq!((s, v["size"].clone()), (StatusCode::OK, json!(1)));
    // The writer's counters: the one append written, the refused ones answered.
    let (s, v) = call(&app, "GET", "/api/v1/stats", Some(READ), "").await;
    assert_eq!((s, v["head"].clone()), (StatusCode::OK, json!(1)), "{v}");
    assert_eq!(v["writer"]["events"], json!(1), "{v}");
    assert_eq!(v["writer"]["logged"], json!(1), "{v}");
    assert!(v["writer"]["requests"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["writer"]["committingNs"].as_u64().unwrap() > 0, "{v}");
    let (s, v) = call(
        &app,
        "GET",
        "/api/v1/state?database=communities",
        Some(READ),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["databases"].as_object().unwrap().len(), 1);
    assert!(
        v["databases"]["Communities"].to_string().contains("Sales"),
        "{v}"
    );
    let (s, v) = call(&app, "GET", "/api/v1/findings", Some(READ), "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["restores"], json!([]));
    let (s, v) = call(&app, "GET", "/api/v1/plan", Some(READ), "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["converges"], true);
    let (s, v) = call(
        &app,
        "GET",
        "/api/v1/findings?restore=Files=nope",
        Some(READ),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = call(&app, "GET", "/api/v1/state?at=@99", Some(READ), "").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // The audit and a community's history, as `lifeline audit` and `history` give them.
    let (s, v) = call(
        &app,
        "GET",
        "/api/v1/audit?type=CommunityCreated&community=Sales",
        Some(READ),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 1);
    assert_eq!(v["events"][0]["type"], "CommunityCreated");
    assert_eq!(v["events"][0]["community"], COMMUNITY);
    let (s, v) = call(
        &app,
        "GET",
        "/api/v1/audit?type=MembersAdded",
        Some(READ),
        "",
    )
    .await;
    assert_eq!((s, v["total"].clone()), (StatusCode::OK, json!(0)));
    let (s, v) = call(&app, "GET", "/api/v1/audit?colour=red", Some(READ), "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("colour"), "{v}");
    let (s, v) = call(
        &app,
        "GET",
        "/api/v1/audit?database=Nowhere",
        Some(READ),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = call(&app, "GET", "/api/v1/history/Sales", Some(READ), "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["changes"][0]["type"], "CommunityCreated");
    assert_eq!(v["changes"][0]["held"].as_array().unwrap().len(), 1, "{v}");
    let (s, v) = call(&app, "GET", "/api/v1/history/Nobody", Some(READ), "").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = call(&app, "GET", "/api/v1/audit", None, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // What `--server` asks: a plan's files, recording a checked fact, the plan and its steps.
    let (s, v) = call(
        &app,
        "GET",
        "/api/v1/plan/files?format=runbook",
        Some(READ),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["files"][0][0], "runbook.md", "{v}");
    assert!(v["files"][0][1]
        .as_str()
        .unwrap()
        .contains(v["plan"].as_str().unwrap()));
    for bad in ["table", "pdf", ""] {
        let path = format!("/api/v1/plan/files?format={bad}");
        let (s, v) = call(&app, "GET", &path, Some(READ), "").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let head = ledger.head();
    let fact = |data: Value| json!({"type": "BackupTaken", "data": data}).to_string();
    let good = fact(json!({"database": "Files", "label": "files-api"}));
    let (s, v) = call(&app, "POST", "/api/v1/record", Some(READ), &good).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    for bad in [
        fact(json!({"database": "Files"})),
        fact(json!({"database": "Nowhere", "label": "x"})),
        json!({"type": "BackupTaken", "data": {}, "colour": "red"}).to_string(),
        "{not json".to_owned(),
    ] {
        let (s, v) = call(&app, "POST", "/api/v1/record", Some(WRITE), &bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("nothing was recorded"),
            "{bad}: {v}"
        );
    }
    assert_eq!(ledger.head(), head, "refused facts recorded nothing");
    let (s, v) = call(&app, "POST", "/api/v1/record", Some(WRITE), &good).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["type"].clone(), v["position"].clone()),
        (json!("BackupTaken"), json!(head + 1))
    );
    let (s, v) = call(&app, "POST", "/api/v1/plan/record", Some(WRITE), "{}").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["recorded"], true, "{v}");
    let plan = v["plan"].clone();
    let done = json!({"plan": plan, "step": 1}).to_string();
    let (s, v) = call(&app, "POST", "/api/v1/plan/done", Some(WRITE), &done).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a plan of no steps has no step 1: {v}"
    );
    assert_eq!(v["exitCode"], 2, "bad usage, as `plan done` says it: {v}");
    for bad in [
        r#"{"plan": 1}"#.to_owned(),
        json!({"plan": plan, "step": 1, "steps": [1]}).to_string(),
        json!({"plan": plan}).to_string(),
    ] {
        let (s, v) = call(&app, "POST", "/api/v1/plan/done", Some(WRITE), &bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let several = json!({"plan": plan, "steps": [1, 2]}).to_string();
    let (s, v) = call(&app, "POST", "/api/v1/plan/done", Some(WRITE), &several).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not 1"), "{v}");

    // An expected revision as a number, and metadata, kept as sent.
    let note = |expected: Value| {
        json!({"stream": "notes", "type": "Note", "data": {"n": 1}, "metadata": {"by": "amy"},
            "expected": expected})
        .to_string()
    };
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/events",
        Some(WRITE),
        &note(json!("no-stream")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&app, "POST", "/api/v1/events", Some(WRITE), &note(json!(0))).await;
    assert_eq!(
        (s, v["revision"].clone()),
        (StatusCode::OK, json!("1")),
        "{v}"
    );
    let (s, v) = call(&app, "POST", "/api/v1/events", Some(WRITE), &note(json!(0))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let events = ledger
        .read_stream(
            "notes",
            ledger::StreamStart::Start,
            ledger::Direction::Forwards,
            10,
        )
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].metadata, br#"{"by":"amy"}"#);
}

#[test]
fn a_weak_or_malformed_access_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    for (text, phrase) in [
        (
            json!({"tokens": [{"token": "short", "role": "read"}]}).to_string(),
            "shorter than 16",
        ),
        (
            json!({"tokens": [{"token": READ, "role": "god"}]}).to_string(),
            "not valid",
        ),
        ("{".to_owned(), "not valid"),
        (
            json!({"users": [{"user": "ops", "password": "short", "role": "write"}]}).to_string(),
            "password of user 'ops' is shorter than 16",
        ),
        (
            json!({"users": [{"user": "a:b", "password": READ, "role": "write"}]}).to_string(),
            "without ':'",
        ),
    ] {
        std::fs::write(&path, &text).unwrap();
        let err = Access::load(&path).err().unwrap().to_string();
        assert!(err.contains(phrase), "{text}: {err}");
    }
}
