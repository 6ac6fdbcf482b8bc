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
use ledger::{AppendError, EventId, ExpectedRevision, Ledger, ProposedEvent};
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

/// Whether the entry's first event is among the stream's latest ones (their ids, from the
/// stream index: no event is read).
fn delivered_before(l: &Ledger, stream: &str, id: uuid::Uuid) -> anyhow::Result<bool> {
    Ok(l.recent_event_ids(stream, REDELIVERY_WINDOW_EVENTS)?
        .contains(&EventId(id)))
}

/// A server running in the current tokio runtime.
pub struct Running {
    /// Where it listens (the port, when 0 was asked for).
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets open calls finish (within `net::SHUTDOWN_GRACE`) and returns.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.done).await;
    }

    /// Runs until the server stops by itself (it does not), or `signal` completes.
    pub async fn until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.stop().await;
    }
}

/// Checks the settings, binds and starts serving: the lifecycle handler, the JSON API and the
/// KurrentDB gRPC services on one port. Must be called inside a tokio runtime.
pub async fn start(ledger: Arc<Ledger>, a: &ServeArgs) -> anyhow::Result<Running> {
    let access = Arc::new(match &a.access {
        Some(path) => crate::access::Access::load(path)?,
        None => crate::access::Access::default(),
    });
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(crate::net::tls_config(cert, key)?),
        _ => None,
    };
    if !a.listen.ip().is_loopback() && (tls.is_none() || access.is_open()) {
        return Err(crate::exit::with_code(
            crate::exit::USAGE,
            format!(
                "refusing to listen on {}: beyond loopback, Lifeline needs TLS (--tls-cert and \
                 --tls-key) and an --access file with at least one token or user, so that no \
                 one unknown writes to the ledger and no credential crosses the network in clear",
                a.listen
            ),
        ));
    }
    let h = Arc::new({
        let l = ledger.clone();
        tokio::task::spawn_blocking(move || Handler::new(l)).await??
    });
    let api = Arc::new(crate::api::Api {
        ledger: ledger.clone(),
        access: access.clone(),
    });
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let advertise = match &a.advertise {
        Some(text) => parse_endpoint(text)?,
        None => (addr.ip().to_string(), addr.port()),
    };
    let grpc = crate::grpc::Context::new(ledger, access, advertise);
    let http = router(h)
        .merge(crate::api::router(api))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            CONCURRENT_REQUESTS_MAX,
        ))
        // The HTTP routes only: gRPC calls do not pass through it.
        .layer(axum::middleware::map_response(method_not_allowed));
    let mut app = http
        .merge(crate::grpc::router(Arc::new(grpc)))
        .fallback(not_found);
    if a.rate_limit > 0 {
        let limit = Arc::new(crate::net::RateLimit::new(a.rate_limit));
        app = app.layer(axum::middleware::from_fn(move |req, next| {
            limited(limit.clone(), req, next)
        }));
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(crate::net::serve(listener, app, tls, async {
        let _ = stopped.await;
    }));
    Ok(Running {
        addr,
        stop: Some(stop),
        done,
    })
}

/// Answers over-limit requests at once; passes the others on.
async fn limited(
    limit: Arc<crate::net::RateLimit>,
    req: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    let peer = req.extensions().get::<crate::net::Peer>().map(|p| p.0);
    if peer.is_none_or(|ip| limit.take(ip)) {
        return next.run(req).await;
    }
    if crate::grpc::is_grpc(&req) {
        return crate::grpc::too_busy();
    }
    let mut r = crate::api::error(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests from this address; wait a moment (see --rate-limit)",
    );
    r.headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    r
}

/// `HOST:PORT` for --advertise.
fn parse_endpoint(text: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = text
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--advertise '{text}' is not HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| anyhow::anyhow!("--advertise '{text}': '{port}' is not a port number"))?;
    Ok((host.trim_matches(['[', ']']).to_owned(), port))
}

async fn not_found(req: axum::http::Request<axum::body::Body>) -> Response {
    if crate::grpc::is_grpc(&req) {
        return crate::grpc::not_served(req.uri().path());
    }
    crate::api::error(
        StatusCode::NOT_FOUND,
        format!(
            "nothing is served at {}: the lifecycle handler is at /lifecycle/{{widgetDefId}}, the API under /api/v1/",
            req.uri().path()
        ),
    )
}

/// A method an address does not take: the error in JSON like every other (the `Allow` header
/// that names the methods it takes is added after this).
async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
    response: Response,
) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    crate::api::error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {method}: the Allow header names what it takes",
            uri.path()
        ),
    )
}

pub fn serve(ledger_path: &std::path::Path, a: &ServeArgs) -> anyhow::Result<()> {
    let l = Arc::new(crate::open(ledger_path)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    rt.block_on(async {
        // Ctrl-C, or SIGTERM (what service managers send): handled from before the server
        // says it is serving, so a stop sent as soon as it has said so is not missed.
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let running = start(l.clone(), a).await?;
        let keep = crate::world::Keep::from_keep_all(a.snapshot_keep_all);
        let snapshots =
            (a.snapshot_every > 0).then(|| snapshot_task(l.clone(), a.snapshot_every, keep));
        let at = running.addr;
        let scheme = if a.tls_cert.is_some() { "https" } else { "http" };
        if a.access.is_none() {
            eprintln!("lifeline: no --access file: everything is answered without credentials (loopback only)");
        }
        eprintln!(
            "lifeline: serving on {at}: lifecycle handler {scheme}://{at}/lifecycle/{{widgetDefId}}, \
             API {scheme}://{at}/api/v1/, KurrentDB clients kurrentdb://{at}?tls={}",
            a.tls_cert.is_some()
        );
        eprintln!(
            "lifeline: the ledger is this server's until it stops: `lifeline record`, `recover`, \
             `plan`, `audit` and `history` take --server {scheme}://{at}"
        );
        running
            .until(async {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            })
            .await;
        if let Some(task) = snapshots {
            task.abort();
        }
        anyhow::Ok(())
    })?;
    // A snapshot build in progress gets a few seconds to finish; past them the ledger closes
    // under it and its next snapshot is refused (each is one commit: none is left half-written).
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    l.close();
    Ok(())
}

/// Every minute, stores the snapshots that have come due (one each `every` positions) and,
/// unless `keep` is [`crate::world::Keep::All`], thins the older ones, off the request
/// threads. A failure is reported and tried again at the next due snapshot.
fn snapshot_task(
    l: Arc<Ledger>,
    every: u64,
    keep: crate::world::Keep,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut covered = 0;
        loop {
            tick.tick().await;
            let due = l.head() / every * every;
            if due == 0 || due <= covered {
                continue;
            }
            let l = l.clone();
            let built = tokio::task::spawn_blocking(move || {
                let built = crate::world::build_snapshots(&l, every, keep, |_| {});
                // The worlds folded and decoded are freed: give them back to the system.
                crate::heap::give_back();
                built
            })
            .await;
            match built {
                Ok(Ok(built)) => {
                    let (n, d) = (built.written, built.dropped);
                    if n > 0 {
                        eprintln!(
                            "lifeline: {n} snapshot(s) stored, up to position {due}; {d} older \
                             one(s) removed"
                        );
                    }
                    covered = due;
                }
                Ok(Err(e)) => eprintln!("lifeline: snapshots not written: {e:#}"),
                Err(_) => return,
            }
        }
    })
}
