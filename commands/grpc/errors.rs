//! Errors as KurrentDB clients expect them: a status code, a message, and trailers naming the
//! exception (`exception`, `stream-name`, `expected-version`, `actual-version` …) that clients
//! map to their typed errors.

use super::Caller;
use crate::access::Role;
use axum::response::Response;
use ledger::{AppendError, CurrentRevision, ExpectedRevision, ReadError};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// The exception names clients look for in the `exception` trailer.
pub const WRONG_EXPECTED_VERSION: &str = "wrong-expected-version";
pub const STREAM_DELETED: &str = "stream-deleted";
pub const ACCESS_DENIED: &str = "access-denied";
pub const MISSING_METADATA: &str = "missing-required-metadata-property";
pub const APPEND_SIZE: &str = "maximum-append-size-exceeded";
pub const EVENT_SIZE: &str = "maximum-append-event-size-exceeded";

/// A status with trailers. Values that are not valid header text are left out.
pub fn with_trailers(
    code: Code,
    message: impl Into<String>,
    trailers: &[(&'static str, String)],
) -> Status {
    let mut map = MetadataMap::new();
    for (k, v) in trailers {
        if let Ok(v) = MetadataValue::try_from(v.as_str()) {
            map.insert(*k, v);
        }
    }
    Status::with_metadata(code, message, map)
}

/// KurrentDB's numeric form of an expected revision (NoStream -1, Any -2, StreamExists -4).
pub fn expected_code(e: ExpectedRevision) -> i64 {
    match e {
        ExpectedRevision::Any => -2,
        ExpectedRevision::NoStream => -1,
        ExpectedRevision::StreamExists => -4,
        ExpectedRevision::Exact(r) => r as i64,
    }
}

pub fn current_code(c: CurrentRevision) -> i64 {
    match c {
        CurrentRevision::NoStream => -1,
        CurrentRevision::Current(r) => r as i64,
    }
}

pub fn stream_deleted(stream: &str) -> Status {
    with_trailers(
        Code::FailedPrecondition,
        format!("Event stream '{stream}' is deleted."),
        &[
            ("exception", STREAM_DELETED.into()),
            ("stream-name", stream.into()),
        ],
    )
}

pub fn access_denied(needs: Role, has: Option<Role>) -> Status {
    let why = match has {
        None => format!("Access Denied: this call needs credentials of role {needs} or above"),
        Some(r) => format!(
            "Access Denied: these credentials' role is {r}; this call needs {needs} or above"
        ),
    };
    with_trailers(
        Code::PermissionDenied,
        why,
        &[("exception", ACCESS_DENIED.into())],
    )
}

/// `Ok` when the caller's role allows `needs`.
pub fn allow<T>(req: &tonic::Request<T>, needs: Role) -> Result<(), Status> {
    match req.extensions().get::<Caller>() {
        Some(Caller(r)) if *r >= needs => Ok(()),
        Some(Caller(r)) => Err(access_denied(needs, Some(*r))),
        None => Err(access_denied(needs, None)),
    }
}

pub fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

/// A failed write other than a wrong expected revision (which Append answers in its response
/// and Delete in [`delete_wrong_version`]).
pub fn of_append(e: AppendError) -> Status {
    match e {
        AppendError::StreamDeleted { stream } => stream_deleted(&stream),
        AppendError::EventTooLarge { id, size, max } => with_trailers(
            Code::InvalidArgument,
            format!("Maximum Append Event Size Exceeded: event {id} is {size} bytes; the limit is {max}"),
            &[
                ("exception", EVENT_SIZE.into()),
                ("event-id", id.to_string()),
                ("proposed-append-event-size", size.to_string()),
                ("maximum-append-event-size", max.to_string()),
            ],
        ),
        AppendError::AppendTooLarge { size, max } => append_too_large(size, max),
        e @ (AppendError::InvalidStreamName { .. }
        | AppendError::InvalidEvent { .. }
        | AppendError::TooManyEvents { .. }
        | AppendError::ImportConflict { .. }) => invalid(e.to_string()),
        AppendError::WrongExpectedVersion { stream, expected, actual } => {
            wrong_version("Append", &stream, expected, actual)
        }
        e @ AppendError::Closed => Status::unavailable(format!("Server Is Not Ready: {e}")),
        e @ AppendError::Storage(_) => Status::internal(e.to_string()),
    }
}

pub fn append_too_large(size: usize, max: usize) -> Status {
    with_trailers(
        Code::InvalidArgument,
        format!(
            "Maximum Append Size Exceeded: the append is {size} bytes or more; the limit is {max}"
        ),
        &[
            ("exception", APPEND_SIZE.into()),
            ("maximum-append-size", max.to_string()),
        ],
    )
}

/// A wrong expected revision as an error, in KurrentDB's words (clients parse the message)
/// and trailers; `operation` is "Append" or "Delete" (tombstones say "Delete" too).
fn wrong_version(
    operation: &str,
    stream: &str,
    expected: ExpectedRevision,
    actual: CurrentRevision,
) -> Status {
    let (expected, actual) = (expected_code(expected), current_code(actual));
    with_trailers(
        Code::FailedPrecondition,
        format!(
            "{operation} failed due to WrongExpectedVersion. Stream: {stream}, Expected version: {expected}, Actual version: {actual}"
        ),
        &[
            ("exception", WRONG_EXPECTED_VERSION.into()),
            ("stream-name", stream.into()),
            ("expected-version", expected.to_string()),
            ("actual-version", actual.to_string()),
        ],
    )
}

/// Delete and Tombstone answer a wrong expected revision as an error, with KurrentDB's text
/// (clients parse it) for both.
pub fn of_delete(e: AppendError) -> Status {
    match e {
        AppendError::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => wrong_version("Delete", &stream, expected, actual),
        e => of_append(e),
    }
}

pub fn of_read(e: ReadError) -> Status {
    match e {
        ReadError::StreamDeleted { stream } => stream_deleted(&stream),
        ReadError::InvalidPosition { position, last } => invalid(format!(
            "Trying to read from an invalid position: {position} is past the end of the log (last position {last})."
        )),
        e @ ReadError::InvalidFilter(_) => invalid(e.to_string()),
        e @ ReadError::StreamNotFound { .. } => Status::not_found(e.to_string()),
        e @ (ReadError::Corrupt { .. } | ReadError::Storage(_)) => Status::internal(e.to_string()),
    }
}

/// The deadline passed before the write was durable. It may still be written: a retry with
/// the same event ids is answered with the original positions.
pub fn deadline_passed(what: &str) -> Status {
    Status::deadline_exceeded(format!(
        "the deadline passed before the {what} was durable; it may still be written: retry with the same event ids"
    ))
}

/// A status as a complete HTTP answer (for calls answered before reaching a service).
pub fn grpc_error(status: Status) -> Response {
    let r: axum::http::Response<axum::body::Body> = status.into_http();
    r
}
