//! `Streams.BatchAppend`: a two-way stream of appends, each named by a correlation id, its
//! options on its first chunk and its events gathered until `is_final`; ids may interleave.
//! Each append is answered on its own, success or a `google.rpc.Status` with the detail packed
//! as KurrentDB packs it.

use super::convert::{self, required, stream_id, stream_name, uuid_of, Expected};
use super::errors;
use super::proto::event_store::client::streams::{
    batch_append_req, batch_append_resp, BatchAppendReq, BatchAppendResp,
};
use super::proto::event_store::client::{self as shared};
use super::proto::google::rpc;
use super::streams::Gathered;
use super::Context;
use ledger::{AppendError, CurrentRevision, ExpectedRevision};
use prost::Message;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

pub type BatchStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<BatchAppendResp, Status>> + Send + 'static>>;

/// The longest an append waits to be durable before it is answered with a timeout (it may
/// still be written; a retry with the same ids is idempotent). A deadline the client asks for
/// is honoured when shorter.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Appends gathered at once on one call; more is refused (the bound on a call's memory).
const PENDING_APPENDS_MAX: usize = 1024;

struct Pending {
    correlation: shared::Uuid,
    stream: String,
    expected: Option<batch_append_req::options::ExpectedStreamPosition>,
    timeout: Duration,
    gathered: Gathered,
    /// The first thing wrong with it: answered at `is_final`.
    failed: Option<rpc::Status>,
}

pub fn start(ctx: Arc<Context>, mut input: Streaming<BatchAppendReq>) -> BatchStream {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut pending: HashMap<uuid::Uuid, Pending> = HashMap::new();
        while let Ok(Some(chunk)) = input.message().await {
            if let Err(e) = take(&ctx, &tx, &mut pending, chunk).await {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

fn detail<M: Message>(name: &str, m: &M) -> Option<prost_types::Any> {
    Some(prost_types::Any {
        type_url: format!("type.googleapis.com/event_store.client.{name}"),
        value: m.encode_to_vec(),
    })
}

fn status(
    code: rpc::Code,
    message: impl Into<String>,
    details: Option<prost_types::Any>,
) -> rpc::Status {
    rpc::Status {
        code: code as i32,
        message: message.into(),
        details,
    }
}

fn bad_request(message: impl Into<String>) -> rpc::Status {
    let message = message.into();
    let d = detail(
        "BadRequest",
        &shared::BadRequest {
            message: message.clone(),
        },
    );
    status(rpc::Code::InvalidArgument, message, d)
}

fn timed_out() -> rpc::Status {
    status(
        rpc::Code::DeadlineExceeded,
        "Timeout: the append was not durable before its deadline; it may still be written (retry with the same event ids)",
        detail("Timeout", &shared::Timeout {}),
    )
}

/// A failed append as the status KurrentDB answers it with.
fn failure(e: AppendError) -> rpc::Status {
    use shared::wrong_expected_version::{
        CurrentStreamRevisionOption as C, ExpectedStreamPositionOption as X,
    };
    match e {
        AppendError::WrongExpectedVersion {
            expected, actual, ..
        } => {
            let wev = shared::WrongExpectedVersion {
                current_stream_revision_option: Some(match actual {
                    CurrentRevision::Current(r) => C::CurrentStreamRevision(r),
                    CurrentRevision::NoStream => C::CurrentNoStream(()),
                }),
                expected_stream_position_option: Some(match expected {
                    ExpectedRevision::Exact(r) => X::ExpectedStreamPosition(r),
                    ExpectedRevision::Any => X::ExpectedAny(()),
                    ExpectedRevision::StreamExists => X::ExpectedStreamExists(()),
                    ExpectedRevision::NoStream => X::ExpectedNoStream(()),
                }),
            };
            status(
                rpc::Code::AlreadyExists,
                "WrongExpectedVersion",
                detail("WrongExpectedVersion", &wev),
            )
        }
        AppendError::StreamDeleted { stream } => {
            let d = shared::StreamDeleted {
                stream_identifier: Some(stream_id(&stream)),
            };
            status(
                rpc::Code::NotFound,
                format!("Event stream '{stream}' is deleted."),
                detail("StreamDeleted", &d),
            )
        }
        AppendError::AppendTooLarge { max, .. } => {
            let d = shared::MaximumAppendSizeExceeded {
                max_append_size: u32::try_from(max).unwrap_or(u32::MAX),
            };
            status(
                rpc::Code::InvalidArgument,
                e.to_string(),
                detail("MaximumAppendSizeExceeded", &d),
            )
        }
        AppendError::EventTooLarge { id, size, max } => {
            let d = shared::MaximumAppendEventSizeExceeded {
                event_id: id.to_string(),
                proposed_event_size: u32::try_from(size).unwrap_or(u32::MAX),
                max_append_event_size: u32::try_from(max).unwrap_or(u32::MAX),
            };
            status(
                rpc::Code::InvalidArgument,
                e.to_string(),
                detail("MaximumAppendEventSizeExceeded", &d),
            )
        }
        e @ (AppendError::InvalidStreamName { .. }
        | AppendError::InvalidEvent { .. }
        | AppendError::TooManyEvents { .. }
        | AppendError::ImportConflict { .. }) => bad_request(e.to_string()),
        e @ (AppendError::Storage(_) | AppendError::Closed) => status(
            rpc::Code::Unknown,
            e.to_string(),
            detail("Unknown", &shared::Unknown {}),
        ),
    }
}

/// A tonic status turned into the rich status of a reply (for checks made on arrival).
fn of_status(s: &Status) -> rpc::Status {
    match s.code() {
        tonic::Code::InvalidArgument => bad_request(s.message()),
        tonic::Code::FailedPrecondition => status(rpc::Code::FailedPrecondition, s.message(), None),
        _ => status(rpc::Code::Unknown, s.message(), None),
    }
}

fn expected_of(
    e: &Option<batch_append_req::options::ExpectedStreamPosition>,
) -> Result<Expected, Status> {
    use batch_append_req::options::ExpectedStreamPosition as E;
    Ok(match required(e.as_ref(), "expected stream position")? {
        E::StreamPosition(r) => Expected::Revision(*r),
        E::NoStream(()) => Expected::NoStream,
        E::Any(()) => Expected::Any,
        E::StreamExists(()) => Expected::StreamExists,
    })
}

/// The echo of the request's expected position in the reply.
fn echo(
    e: &Option<batch_append_req::options::ExpectedStreamPosition>,
) -> Option<batch_append_resp::ExpectedStreamPosition> {
    use batch_append_req::options::ExpectedStreamPosition as E;
    use batch_append_resp::ExpectedStreamPosition as R;
    e.as_ref().map(|e| match e {
        E::StreamPosition(r) => R::StreamPosition(*r),
        E::NoStream(()) => R::NoStream(()),
        E::Any(()) => R::Any(()),
        E::StreamExists(()) => R::StreamExists(()),
    })
}

/// The time an append may take: the client's deadline if shorter than [`WRITE_TIMEOUT`]
/// (`None`: the deadline has already passed).
fn timeout_of(o: &Option<batch_append_req::options::DeadlineOption>) -> Option<Duration> {
    use batch_append_req::options::DeadlineOption as D;
    let asked = match o {
        Some(D::Deadline(d)) => {
            if d.seconds < 0 || (d.seconds == 0 && d.nanos <= 0) {
                return None;
            }
            Duration::new(d.seconds as u64, d.nanos.max(0) as u32)
        }
        Some(D::Deadline21100(t)) => {
            let at = std::time::UNIX_EPOCH
                + Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32);
            at.duration_since(std::time::SystemTime::now()).ok()?
        }
        None => WRITE_TIMEOUT,
    };
    Some(asked.min(WRITE_TIMEOUT))
}

async fn take(
    ctx: &Arc<Context>,
    tx: &mpsc::Sender<Result<BatchAppendResp, Status>>,
    pending: &mut HashMap<uuid::Uuid, Pending>,
    chunk: BatchAppendReq,
) -> Result<(), Status> {
    let key = uuid_of(chunk.correlation_id.clone())
        .map_err(|_| super::errors::invalid("a batch append chunk has no valid correlation id"))?;
    if !pending.contains_key(&key) {
        let Some(o) = chunk.options else {
            return Err(super::errors::invalid(format!(
                "batch append {key}: its first chunk carries no options (stream and expected revision)"
            )));
        };
        if pending.len() >= PENDING_APPENDS_MAX {
            return Err(Status::resource_exhausted(format!(
                "more than {PENDING_APPENDS_MAX} batch appends are open on this call; finish some first"
            )));
        }
        let stream = stream_name(o.stream_identifier.clone())?;
        let mut failed = None;
        if let Err(e) = expected_of(&o.expected_stream_position) {
            failed = Some(of_status(&e));
        }
        let timeout = timeout_of(&o.deadline_option);
        if timeout.is_none() {
            failed = failed.or(Some(timed_out()));
        }
        pending.insert(
            key,
            Pending {
                correlation: chunk.correlation_id.clone().unwrap_or_default(),
                stream,
                expected: o.expected_stream_position,
                timeout: timeout.unwrap_or_default(),
                gathered: Gathered::new(
                    ctx.ledger.limits().append_bytes_max,
                    ctx.in_flight.clone(),
                ),
                failed,
            },
        );
    }
    // All the appends open on one call share one append's byte budget.
    let budget = ctx.ledger.limits().append_bytes_max;
    let open: usize = pending.values().map(|p| p.gathered.bytes()).sum();
    let incoming: usize = chunk
        .proposed_messages
        .iter()
        .map(|m| m.data.len() + m.custom_metadata.len())
        .sum();
    if open.saturating_add(incoming) > budget {
        return Err(errors::append_too_large(
            open.saturating_add(incoming),
            budget,
        ));
    }
    let p = pending.get_mut(&key).expect("inserted above");
    for m in chunk.proposed_messages {
        if p.failed.is_some() {
            break;
        }
        let pushed = convert::proposed(m.id, m.metadata, m.custom_metadata, m.data)
            .and_then(|e| p.gathered.push(&p.stream, e));
        if let Err(e) = pushed {
            p.failed = Some(of_status(&e));
        }
    }
    if !chunk.is_final {
        return Ok(());
    }
    let mut p = pending.remove(&key).expect("present");
    let (ledger, tx) = (ctx.ledger.clone(), tx.clone());
    tokio::spawn(async move {
        let result = match p.failed {
            Some(s) => batch_append_resp::Result::Error(s),
            None => {
                let expected: ExpectedRevision = expected_of(&p.expected)
                    .map(Into::into)
                    .unwrap_or(ExpectedRevision::Any);
                let events = std::mem::take(&mut p.gathered.events);
                let write = ledger.append(&p.stream, expected, events);
                match tokio::time::timeout(p.timeout, write).await {
                    Ok(Ok(r)) => batch_append_resp::Result::Success(success(r)),
                    Ok(Err(e)) => batch_append_resp::Result::Error(failure(e)),
                    Err(_) => batch_append_resp::Result::Error(timed_out()),
                }
            }
        };
        let reply = BatchAppendResp {
            correlation_id: Some(p.correlation),
            result: Some(result),
            stream_identifier: Some(stream_id(&p.stream)),
            expected_stream_position: echo(&p.expected),
        };
        let _ = tx.send(Ok(reply)).await;
    });
    Ok(())
}

fn success(r: ledger::AppendResult) -> batch_append_resp::Success {
    use batch_append_resp::success::{CurrentRevisionOption, PositionOption};
    batch_append_resp::Success {
        current_revision_option: Some(match r.revision {
            CurrentRevision::Current(v) => CurrentRevisionOption::CurrentRevision(v),
            CurrentRevision::NoStream => CurrentRevisionOption::NoStream(()),
        }),
        position_option: Some(match r.position {
            Some(p) => PositionOption::Position(shared::AllStreamPosition {
                commit_position: p,
                prepare_position: p,
            }),
            None => PositionOption::NoPosition(()),
        }),
    }
}
