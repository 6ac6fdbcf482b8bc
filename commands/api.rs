//! The HTTP JSON API under `/api/v1/`, beside the lifecycle handler: the checkpoint, the state
//! at a point, the audit, a community's history, findings, the plan and its files, recording
//! the plan and its steps, recording a checked fact, and appending events (what `--server`
//! asks, see `remote`). With an access file, every API call
//! needs credentials (`Authorization: Bearer TOKEN` or Basic) of a role that allows it
//! (read ⊂ write ⊂ admin; see `access`).
//! Errors are JSON: `{"error": "…"}`, and, where the command would have failed the same way,
//! `"exitCode"`: the code it would have ended with.

use crate::access::{Access, Role};
use crate::domain::At;
use crate::recover::RestoreArg;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger::{EventId, ExpectedRevision, Ledger, ProposedEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub struct Api {
    pub ledger: Arc<Ledger>,
    pub access: Arc<Access>,
}

/// An error answer: `{"error": "…"}` with `status`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

impl Api {
    /// `Ok` when the call may go on; else the answer to send.
    fn allow(&self, headers: &HeaderMap, needs: Role) -> Result<(), Box<Response>> {
        if self.access.is_open() {
            return Ok(());
        }
        match self.access.role_of(headers) {
            Ok(None) | Err(_) => Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "send Authorization: Bearer TOKEN (a token of the access file) or Basic credentials of one of its users",
            ))),
            Ok(Some(r)) if r < needs => Err(Box::new(error(
                StatusCode::FORBIDDEN,
                format!("these credentials' role is {r}; this call needs {needs} or above"),
            ))),
            Ok(Some(_)) => Ok(()),
        }
    }
}

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/checkpoint", get(checkpoint))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/state", get(state))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/plan", get(plan))
        .route("/api/v1/plan/files", get(plan_files))
        .route("/api/v1/plan/record", post(plan_record))
        .route("/api/v1/plan/done", post(plan_done))
        .route("/api/v1/record", post(record))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/history/{community}", get(history))
        .route("/api/v1/events", post(append))
        .with_state(api)
}

/// A call's answer as JSON text, written where it is made (off the async threads) straight
/// from what it answers, never built as a `serde_json::Value` tree first: at 100,000
/// communities with Communities restored ten days back, the findings are 354 MB of JSON, and
/// the tree made of them first raised the server's peak from 2.36 to 3.43 GB and took 6 s.
pub(crate) struct Answer(Vec<u8>);

impl Answer {
    fn of(v: &impl serde::Serialize) -> anyhow::Result<Answer> {
        Ok(Answer(serde_json::to_vec(v)?))
    }
}

/// A call whose work took longer than this gives the memory it freed back to the system
/// (see [`crate::heap::give_back`]); shorter calls free too little to be worth the walk.
const GIVE_BACK_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// Answers a call that needs `needs`: refused, or `f` run off the async threads, its error a
/// JSON 400 (404 for what is not there, 409 for a wrong expected revision).
async fn answer(
    api: Arc<Api>,
    headers: &HeaderMap,
    needs: Role,
    f: impl FnOnce(&Api) -> anyhow::Result<Answer> + Send + 'static,
) -> Response {
    if let Err(r) = api.allow(headers, needs) {
        return *r;
    }
    let work = move || {
        let started = std::time::Instant::now();
        let answer = f(&api);
        // What long work freed goes back to the system rather than staying with the server.
        if started.elapsed() > GIVE_BACK_AFTER {
            crate::heap::give_back();
        }
        answer
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(Answer(body))) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Ok(Err(e)) => {
            let code = crate::exit::code_of(&e);
            let status = match code {
                crate::exit::NOT_FOUND => StatusCode::NOT_FOUND,
                crate::exit::WRONG_EXPECTED_REVISION => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            // The exit code the command would have ended with (what `--server` ends with).
            let body = json!({ "error": format!("{e:#}"), "exitCode": code });
            (status, Json(body)).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize, Default)]
struct PointQuery {
    at: Option<String>,
    /// A time in `at` is when events happened in Connections.
    occurred: Option<bool>,
    /// The form of a plan's files (`/api/v1/plan/files`).
    format: Option<String>,
    /// `DATABASE=BACKUP`, comma-separated for several.
    restore: Option<String>,
    database: Option<String>,
    intended: Option<bool>,
}

impl PointQuery {
    fn at(&self) -> anyhow::Result<At> {
        self.at.as_deref().unwrap_or("now").parse()
    }
    fn occurred(&self) -> bool {
        self.occurred.unwrap_or(false)
    }
    fn restores(&self) -> anyhow::Result<Vec<RestoreArg>> {
        restores(self.restore.iter().flat_map(|r| r.split(',')))
    }
}

/// `DATABASE=BACKUP` texts, as `--restore` takes them.
fn restores<'a>(texts: impl Iterator<Item = &'a str>) -> anyhow::Result<Vec<RestoreArg>> {
    texts
        .map(|r| r.parse().map_err(|e: String| anyhow::anyhow!(e)))
        .collect()
}

async fn checkpoint(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    answer(api, &headers, Role::Read, |api| {
        Answer::of(&api.ledger.checkpoint()?)
    })
    .await
}

/// The head and what the writer has done since the server opened the ledger: counters to
/// read twice for rates (commits and events a second, requests a commit, time a commit takes).
async fn stats(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    answer(api, &headers, Role::Read, |api| {
        Answer::of(&json!({
            "head": api.ledger.head(),
            "writer": api.ledger.writer_stats(),
        }))
    })
    .await
}

async fn state(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<PointQuery>,
) -> Response {
    answer(api, &headers, Role::Read, move |api| {
        let point = crate::domain::resolve(&api.ledger, &q.at()?, q.occurred())?;
        let world = crate::world::world_at(&api.ledger, &point, true)?.world;
        let d = if q.intended.unwrap_or(false) {
            &world.intended
        } else {
            &world.actual
        };
        #[derive(serde::Serialize)]
        struct State<'a> {
            databases: std::collections::BTreeMap<&'a str, projections::view::Database<'a>>,
            position: u64,
        }
        let databases = projections::Database::ALL
            .into_iter()
            .filter(|db| {
                q.database
                    .as_deref()
                    .is_none_or(|want| db.name().eq_ignore_ascii_case(want))
            })
            .map(|db| (db.name(), projections::view::Database(d.db(db))))
            .collect();
        Answer::of(&State {
            databases,
            position: point.position,
        })
    })
    .await
}

async fn findings(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<PointQuery>,
) -> Response {
    answer(api, &headers, Role::Read, move |api| {
        let a = crate::recover::analyze(&api.ledger, &q.at()?, q.occurred(), &q.restores()?)?;
        Answer::of(&crate::recover::json(&a.findings, &a.in_progress))
    })
    .await
}

async fn plan(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(q): Query<PointQuery>,
) -> Response {
    answer(api, &headers, Role::Read, move |api| {
        let made = crate::plan::make(&api.ledger, &q.at()?, q.occurred(), &q.restores()?)?;
        Answer::of(&crate::plan::json(&made))
    })
    .await
}

/// A plan's files, as `lifeline plan --format F --out DIR` writes them: `{"plan": id,
/// "files": [[path, text], …]}` (paths under DIR, `/`-separated).
async fn plan_files(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(p): Query<PointQuery>,
) -> Response {
    answer(api, &headers, Role::Read, move |api| {
        use clap::ValueEnum;
        let asked = p.format.as_deref().unwrap_or("");
        let format = crate::cli::FormatArg::from_str(asked, true).map_err(|_| {
            anyhow::anyhow!("format: '{asked}' is not json, runbook, csv, wsadmin or html")
        })?;
        let made = crate::plan::make(&api.ledger, &p.at()?, p.occurred(), &p.restores()?)?;
        let files = crate::plan::files(&made, format)?;
        // Written from the files themselves: a runbook of a large plan is megabytes.
        #[derive(serde::Serialize)]
        struct Files<'a> {
            files: &'a [(String, String)],
            plan: &'a str,
        }
        Answer::of(&Files {
            files: &files,
            plan: &made.id,
        })
    })
    .await
}

/// `plan record` and `plan done`, as their `--format json` says what they did.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanRecord {
    at: Option<String>,
    #[serde(default)]
    occurred: bool,
    #[serde(default)]
    restore: Vec<String>,
    actor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanDone {
    plan: String,
    /// One step, or several (recorded together or not at all).
    step: Option<u32>,
    steps: Option<Vec<u32>>,
    actor: Option<String>,
}

/// A JSON body of the shape `shape` describes; an error naming it.
fn body_of<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> anyhow::Result<T> {
    serde_json::from_slice(body)
        .map_err(|err| anyhow::anyhow!("the body is not {shape}: {err}; nothing was recorded"))
}

async fn plan_record(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(api, &headers, Role::Write, move |api| {
        let r: PlanRecord = body_of(&body, "{\"at\"?, \"occurred\"?, \"restore\"?, \"actor\"?}")?;
        let at: At = r.at.as_deref().unwrap_or("now").parse()?;
        let restores = restores(r.restore.iter().map(String::as_str))?;
        let actor = r.actor.as_deref();
        let ends = crate::record::Ends::Call;
        Answer::of(&crate::plan::record_in(
            ends,
            &api.ledger,
            &at,
            r.occurred,
            &restores,
            actor,
        )?)
    })
    .await
}

async fn plan_done(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(api, &headers, Role::Write, move |api| {
        let shape = "{\"plan\", \"step\" or \"steps\" (a list), \"actor\"?}";
        let d: PlanDone = body_of(&body, shape)?;
        let steps = match (d.step, d.steps) {
            (Some(one), None) => vec![one],
            (None, Some(mut many)) => {
                many.sort_unstable();
                many.dedup();
                many
            }
            _ => anyhow::bail!(
                "the body is not {shape}: give one of step and steps; nothing was recorded"
            ),
        };
        Answer::of(&crate::plan::done_in(
            &api.ledger,
            &d.plan,
            &steps,
            d.actor.as_deref(),
        )?)
    })
    .await
}

/// `lifeline record`: one Connections fact, checked as Connections would check it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFact {
    #[serde(rename = "type")]
    event_type: String,
    data: Value,
    #[serde(default)]
    force: bool,
    occurred: Option<String>,
    id: Option<uuid::Uuid>,
}

async fn record(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(api, &headers, Role::Write, move |api| {
        let shape = "a fact ({\"type\", \"data\", \"force\"?, \"occurred\"?, \"id\"?})";
        let f: NewFact = body_of(&body, shape)?;
        let occurred = crate::time_fmt::parse_flag(f.occurred.as_deref(), "occurred")?;
        let data = f.data.to_string();
        Answer::of(&crate::record::record_in(
            crate::record::Ends::Call,
            &api.ledger,
            &f.event_type,
            data.as_bytes(),
            f.force,
            occurred,
            f.id,
        )?)
    })
    .await
}

/// `audit`'s filters, as `lifeline audit` takes them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    community: Option<String>,
    actor: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    database: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

async fn audit(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{e}: audit takes community, actor, type, database, since, until and limit"
                ),
            )
        }
    };
    answer(api, &headers, Role::Read, move |api| {
        let point = |v: &Option<String>, name: &str| -> anyhow::Result<Option<At>> {
            v.as_deref()
                .map(|t| t.parse().map_err(|e| anyhow::anyhow!("{name}: {e}")))
                .transpose()
        };
        let args = crate::cli::AuditArgs {
            community: q.community,
            actor: q.actor,
            event_type: q.event_type,
            database: q
                .database
                .as_deref()
                .map(crate::cli::parse_database)
                .transpose()
                .map_err(|e| anyhow::anyhow!("database: {e}"))?,
            since: point(&q.since, "since")?,
            until: point(&q.until, "until")?,
            limit: q.limit.unwrap_or(1000),
            remote: Default::default(),
        };
        let (rows, total) = crate::audit::query(&api.ledger, &args)?;
        Answer::of(&json!({ "total": total, "events": rows }))
    })
    .await
}

async fn history(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    axum::extract::Path(community): axum::extract::Path<String>,
) -> Response {
    answer(api, &headers, Role::Read, move |api| {
        let entries = crate::history::timeline(&api.ledger, &community)?;
        Answer::of(&json!({ "community": community, "changes": entries }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEvent {
    stream: String,
    #[serde(rename = "type")]
    event_type: String,
    data: Value,
    /// JSON; none when absent.
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    id: Option<uuid::Uuid>,
    /// "any" | "no-stream" | "exists" | a revision number (as a number or a string).
    #[serde(default)]
    expected: Option<Value>,
}

async fn append(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(api, &headers, Role::Write, move |api| {
        let e: NewEvent = serde_json::from_slice(&body).map_err(|err| {
            anyhow::anyhow!(
                "the body is not an event ({{\"stream\", \"type\", \"data\"}}): {err}; nothing was appended"
            )
        })?;
        let expected: ExpectedRevision = match &e.expected {
            None => ExpectedRevision::Any,
            Some(Value::String(text)) => text.parse().map_err(|err: String| {
                anyhow::anyhow!("expected: {err}; nothing was appended")
            })?,
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                ExpectedRevision::Exact(n.as_u64().expect("checked"))
            }
            Some(other) => anyhow::bail!(
                "expected: {other} is not \"any\", \"no-stream\", \"exists\" or a revision \
                 number; nothing was appended"
            ),
        };
        let metadata = e
            .metadata
            .as_ref()
            .map_or_else(Vec::new, |m| m.to_string().into_bytes());
        // A Lifeline fact must be well-formed (checks against the state are `record`'s).
        if projections::events::is_domain_type(&e.event_type) {
            projections::decode(&e.event_type, e.data.to_string().as_bytes(), &metadata)
                .map_err(|err| anyhow::anyhow!("{err}; nothing was appended"))?;
        }
        let mut p = ProposedEvent::json(e.event_type, &e.data);
        p.metadata = metadata;
        if let Some(id) = e.id {
            p = p.with_id(EventId(id));
        }
        let r = api.ledger.append_blocking(&e.stream, expected, vec![p])?;
        Answer::of(&json!({ "position": r.position, "revision": r.revision.to_string() }))
    })
    .await
}
