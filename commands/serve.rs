//! `serve`: Lifeline as a Connections lifecycle handler. Each widget definition registers
//! `remoteHandlerURL` = `http://HOST:2113/lifecycle/{widgetDefId}`; events that need no widget
//! go to `/lifecycle`. Each entry is checked against the intended state and recorded, or
//! answered as a remote handler answers: 409 for a duplicate add, 410 when a remove finds
//! nothing, 400 for a bad entry (nothing recorded). The same entry delivered again (Communities
//! retries) is recorded once. Every answer carries `X-LConn-Auth: true`.

use crate::cli::ServeArgs;
use crate::domain::Point;
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ledger::{
    AppendError, Direction, EventId, ExpectedRevision, Ledger, ProposedEvent, StreamStart,
};
use projections::lifecycle::{translate, Refusal};
use projections::{DomainEvent, World};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The largest entry accepted.
pub const BODY_BYTES_MAX: usize = 1 << 20;
/// Requests handled at once; more wait for a turn (the bound on what a flood can cost).
pub const CONCURRENT_REQUESTS_MAX: usize = 256;
/// How far back in a community's stream a redelivered entry is recognised (the ledger's own
/// idempotency window for retries).
pub const REDELIVERY_WINDOW_EVENTS: u64 = 128;

/// The ledger and the world at its head, kept current as entries are recorded.
pub struct Handler {
    ledger: Arc<Ledger>,
    state: Mutex<Known>,
}

/// What the handler believes the log holds: the world after position `position`, including
/// appends queued and not yet durable, and the next revision of each stream it wrote.
struct Known {
    world: World,
    position: u64,
    next_revision: HashMap<String, u64>,
    /// Set when an append did not land where expected (another writer, or a failure): the next
    /// entry rebuilds from the log.
    stale: bool,
}

impl Known {
    fn load(l: &Ledger) -> anyhow::Result<Known> {
        let point = Point {
            position: l.head(),
            occurred_by: None,
        };
        let mut world = crate::world::world_at(l, &point, true)?.world;
        world.position = point.position;
        Ok(Known {
            world,
            position: point.position,
            next_revision: HashMap::new(),
            stale: false,
        })
    }
}

impl Handler {
    pub fn new(ledger: Arc<Ledger>) -> anyhow::Result<Handler> {
        let state = Mutex::new(Known::load(&ledger)?);
        Ok(Handler { ledger, state })
    }
}

pub fn router(h: Arc<Handler>) -> Router {
    Router::new()
        .route("/lifecycle", post(no_widget))
        .route("/lifecycle/{widget}", post(with_widget))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(h)
}

async fn no_widget(State(h): State<Arc<Handler>>, body: Bytes) -> Response {
    answer(h, None, body).await
}

async fn with_widget(
    State(h): State<Arc<Handler>>,
    Path(widget): Path<String>,
    body: Bytes,
) -> Response {
    answer(h, Some(widget), body).await
}

async fn answer(h: Arc<Handler>, widget: Option<String>, body: Bytes) -> Response {
    let outcome = tokio::task::spawn_blocking(move || record(&h, widget.as_deref(), &body)).await;
    let (status, message) = match outcome {
        Ok(Ok(message)) => (StatusCode::OK, message),
        Ok(Err(Reply(status, message))) => (status, message),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("handler failed: {e}"),
        ),
    };
    let body = serde_json::json!({ "status": status.as_u16(), "message": message }).to_string();
    let mut r = (status, [("content-type", "application/json")], body).into_response();
    r.headers_mut()
        .insert("X-LConn-Auth", HeaderValue::from_static("true"));
    r
}

/// An answer other than 200.
struct Reply(StatusCode, String);

fn bad(e: impl std::fmt::Display) -> Reply {
    Reply(
        StatusCode::BAD_REQUEST,
        format!("{e}; nothing was recorded"),
    )
}

fn failed(e: impl std::fmt::Display) -> Reply {
    Reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}"))
}

/// The id of the `k`th event recorded for an entry: the same entry gives the same ids.
fn event_id(body: &[u8], k: usize) -> uuid::Uuid {
    let mut h = blake3::Hasher::new();
    h.update(b"lifeline lifecycle entry\0");
    h.update(body);
    h.update(&(k as u64).to_le_bytes());
    let bytes: [u8; 16] = h.finalize().as_bytes()[..16].try_into().expect("16 bytes");
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn record(h: &Handler, widget: Option<&str>, body: &[u8]) -> Result<String, Reply> {
    let entry = crate::atom_entry::parse(body, widget).map_err(bad)?;
    // A redelivery of an entry already durable (a read: outside the lock).
    if let Some(c) = entry.community {
        let stream = projections::events::community_stream(c);
        if delivered_before(&h.ledger, &stream, event_id(body, 0)).map_err(failed)? {
            return Ok(format!("{} recorded already", entry.event));
        }
    }
    let (queued, expected_position, n) = {
        let mut known = h.state.lock().unwrap_or_else(|p| p.into_inner());
        let head = h.ledger.head();
        // Another writer appended, or an append went wrong: start again from the log.
        if known.stale || head > known.position {
            *known = Known::load(&h.ledger).map_err(failed)?;
        }
        let (events, after) = translate(&known.world, &entry).map_err(|r| match r {
            Refusal::Duplicate(m) => Reply(StatusCode::CONFLICT, m),
            Refusal::Gone(m) => Reply(StatusCode::GONE, m),
            Refusal::Invalid(m) => bad(m),
        })?;
        if events.is_empty() {
            return Ok(format!("{}: nothing changed", entry.event));
        }
        let queued = queue(h, &mut known, body, &events, after)?;
        (queued, known.position, events.len())
    };
    // Durability is awaited outside the lock: the next entry is checked against this one's
    // effects meanwhile, and their appends share group commits.
    match queued.wait() {
        Ok(r) if r.position == Some(expected_position) => {
            Ok(format!("{}: {n} events recorded", entry.event))
        }
        Ok(_) => {
            h.state.lock().unwrap_or_else(|p| p.into_inner()).stale = true;
            Ok(format!("{}: {n} events recorded", entry.event))
        }
        Err(e) => {
            h.state.lock().unwrap_or_else(|p| p.into_inner()).stale = true;
            Err(match e {
                AppendError::WrongExpectedVersion { .. } => Reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{e}: the community changed meanwhile; send it again"),
                ),
                e => failed(e),
            })
        }
    }
}

/// Queues an entry's events (one append to their community's stream, all or none); the known
/// world becomes `after`, the world with them applied.
fn queue(
    h: &Handler,
    known: &mut Known,
    body: &[u8],
    events: &[DomainEvent],
    after: World,
) -> Result<ledger::QueuedAppend, Reply> {
    let stream = events[0].stream();
    let next = match known.next_revision.get(&stream) {
        Some(r) => *r,
        None => h
            .ledger
            .stream_record(&stream)
            .map_err(failed)?
            .and_then(|r| r.last_revision)
            .map_or(0, |r| r + 1),
    };
    let expected = match next {
        0 => ExpectedRevision::NoStream,
        n => ExpectedRevision::Exact(n - 1),
    };
    let proposed: Vec<ProposedEvent> = events
        .iter()
        .enumerate()
        .map(|(k, e)| crate::domain::proposed(e, EventId(event_id(body, k)), None))
        .collect();
    let queued = h
        .ledger
        .append_queued(&stream, expected, proposed)
        .map_err(failed)?;
    known.world = after;
    known.position += events.len() as u64;
    known
        .next_revision
        .insert(stream, next + events.len() as u64);
    Ok(queued)
}

/// Whether the entry's first event is among the stream's latest ones.
fn delivered_before(l: &Ledger, stream: &str, id: uuid::Uuid) -> anyhow::Result<bool> {
    match l.read_stream(
        stream,
        StreamStart::End,
        Direction::Backwards,
        REDELIVERY_WINDOW_EVENTS,
    ) {
        Ok(events) => Ok(events.iter().any(|e| e.id == EventId(id))),
        Err(ledger::ReadError::StreamNotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub fn serve(ledger_path: &std::path::Path, a: &ServeArgs) -> anyhow::Result<()> {
    if !a.listen.ip().is_loopback() {
        return Err(crate::exit::with_code(
            crate::exit::USAGE,
            format!(
                "refusing to listen on {}: only loopback addresses are served until access \
                 tokens and TLS are configured (put a TLS reverse proxy with client \
                 authentication in front, listening on 127.0.0.1)",
                a.listen
            ),
        ));
    }
    let l = Arc::new(crate::open(ledger_path)?);
    let h = Arc::new(Handler::new(l.clone())?);
    let tokens = match &a.tokens {
        Some(path) => crate::api::Tokens::load(path)?,
        None => crate::api::Tokens::default(),
    };
    if tokens.is_empty() {
        eprintln!("lifeline: no --tokens file: the JSON API under /api/v1/ answers without authentication on loopback");
    }
    let api = Arc::new(crate::api::Api {
        ledger: l.clone(),
        tokens,
    });
    let app = router(h)
        .merge(crate::api::router(api))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            CONCURRENT_REQUESTS_MAX,
        ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        let at = listener.local_addr()?;
        eprintln!("lifeline: lifecycle handler on http://{at}/lifecycle/{{widgetDefId}}, API on http://{at}/api/v1/");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })?;
    l.close();
    Ok(())
}
