//! `event_store.client.streams.Streams`: Append, Delete and Tombstone here; Read (and
//! subscriptions) in `read`, BatchAppend in `batch`.

use super::convert::{self, check_domain, empty, required, stream_name, until, Expected};
use super::errors::{self, allow, invalid};
use super::proto::event_store::client::streams::{
    append_req, append_resp, delete_req, delete_resp, streams_server, tombstone_req,
    tombstone_resp, AppendReq, AppendResp, BatchAppendReq, DeleteReq, DeleteResp, ReadReq,
    TombstoneReq, TombstoneResp,
};
use super::Context;
use crate::access::Role;
use ledger::{AppendError, AppendResult, CurrentRevision, ExpectedRevision, ProposedEvent};
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

pub struct Service {
    ctx: Arc<Context>,
}

impl Service {
    pub fn new(ctx: Arc<Context>) -> Service {
        Service { ctx }
    }
}

/// The expected revision of a write request: Append, Delete and Tombstone each spell the same
/// four choices in a oneof of their own.
macro_rules! expected_of {
    ($name:ident, $oneof:ty) => {
        fn $name(e: Option<$oneof>) -> Result<Expected, Status> {
            use $oneof as E;
            Ok(match required(e, "expected stream revision")? {
                E::Revision(r) => Expected::Revision(r),
                E::NoStream(_) => Expected::NoStream,
                E::Any(_) => Expected::Any,
                E::StreamExists(_) => Expected::StreamExists,
            })
        }
    };
}

expected_of!(append_expected, append_req::options::ExpectedStreamRevision);
expected_of!(delete_expected, delete_req::options::ExpectedStreamRevision);
expected_of!(
    tombstone_expected,
    tombstone_req::options::ExpectedStreamRevision
);

/// Checks what the ledger does not know about: the append's total size as it arrives (so a
/// flood is cut off early), the server's budget for appends in flight, and Lifeline's domain
/// events. The budget it holds is given back when it is dropped, after the append.
pub struct Gathered {
    pub events: Vec<ProposedEvent>,
    bytes: usize,
    max: usize,
    budget: Arc<tokio::sync::Semaphore>,
    held: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Gathered {
    pub fn new(max: usize, budget: Arc<tokio::sync::Semaphore>) -> Gathered {
        Gathered {
            events: Vec::new(),
            bytes: 0,
            max,
            budget,
            held: None,
        }
    }

    /// Bytes gathered so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push(&mut self, stream: &str, e: ProposedEvent) -> Result<(), Status> {
        let size = e.size_bytes();
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.max {
            return Err(errors::append_too_large(self.bytes, self.max));
        }
        check_domain(stream, &e)?;
        let kib = u32::try_from(size.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| {
                Status::unavailable(format!(
                    "Server Is Too Busy: {} MiB of appends are in flight; retry shortly",
                    super::IN_FLIGHT_BYTES_MAX >> 20
                ))
            })?;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        self.events.push(e);
        Ok(())
    }
}

fn success(r: AppendResult) -> append_resp::Success {
    use append_resp::success::{CurrentRevisionOption, PositionOption};
    append_resp::Success {
        current_revision_option: Some(match r.revision {
            CurrentRevision::Current(v) => CurrentRevisionOption::CurrentRevision(v),
            CurrentRevision::NoStream => CurrentRevisionOption::NoStream(empty()),
        }),
        position_option: Some(match r.position {
            Some(p) => PositionOption::Position(append_resp::Position {
                commit_position: p,
                prepare_position: p,
            }),
            None => PositionOption::NoPosition(empty()),
        }),
    }
}

/// A wrong expected revision, in both the current fields and those of servers before 20.6.
fn wrong_version(
    expected: ExpectedRevision,
    actual: CurrentRevision,
) -> append_resp::WrongExpectedVersion {
    use append_resp::wrong_expected_version::*;
    append_resp::WrongExpectedVersion {
        current_revision_option_20_6_0: Some(match actual {
            CurrentRevision::Current(r) => CurrentRevisionOption2060::CurrentRevision2060(r),
            CurrentRevision::NoStream => CurrentRevisionOption2060::NoStream2060(empty()),
        }),
        expected_revision_option_20_6_0: match expected {
            ExpectedRevision::Exact(r) => Some(ExpectedRevisionOption2060::ExpectedRevision2060(r)),
            ExpectedRevision::Any => Some(ExpectedRevisionOption2060::Any2060(empty())),
            ExpectedRevision::StreamExists => {
                Some(ExpectedRevisionOption2060::StreamExists2060(empty()))
            }
            // The old fields had no "no stream": it was revision -1, which a uint64 cannot say.
            ExpectedRevision::NoStream => None,
        },
        current_revision_option: Some(match actual {
            CurrentRevision::Current(r) => CurrentRevisionOption::CurrentRevision(r),
            CurrentRevision::NoStream => CurrentRevisionOption::CurrentNoStream(empty()),
        }),
        expected_revision_option: Some(match expected {
            ExpectedRevision::Exact(r) => ExpectedRevisionOption::ExpectedRevision(r),
            ExpectedRevision::Any => ExpectedRevisionOption::ExpectedAny(empty()),
            ExpectedRevision::StreamExists => ExpectedRevisionOption::ExpectedStreamExists(empty()),
            ExpectedRevision::NoStream => ExpectedRevisionOption::ExpectedNoStream(empty()),
        }),
    }
}

#[tonic::async_trait]
impl streams_server::Streams for Service {
    type ReadStream = super::read::ReadStream;

    async fn read(&self, req: Request<ReadReq>) -> Result<Response<Self::ReadStream>, Status> {
        allow(&req, Role::Read)?;
        let deadline = convert::deadline(req.metadata());
        let options = required(req.into_inner().options, "options")?;
        super::read::start(self.ctx.ledger.clone(), options, deadline).map(Response::new)
    }

    async fn append(
        &self,
        req: Request<Streaming<AppendReq>>,
    ) -> Result<Response<AppendResp>, Status> {
        allow(&req, Role::Write)?;
        let deadline = convert::deadline(req.metadata());
        let mut messages = req.into_inner();
        let first = messages
            .message()
            .await?
            .ok_or_else(|| invalid("an append starts with its options; none came"))?;
        let Some(append_req::Content::Options(options)) = first.content else {
            return Err(invalid(
                "an append starts with its options (stream and expected revision)",
            ));
        };
        let stream = stream_name(options.stream_identifier)?;
        let expected: ExpectedRevision = append_expected(options.expected_stream_revision)?.into();
        let mut gathered = Gathered::new(
            self.ctx.ledger.limits().append_bytes_max,
            self.ctx.in_flight.clone(),
        );
        while let Some(m) = messages.message().await? {
            match m.content {
                Some(append_req::Content::ProposedMessage(p)) => {
                    let e = convert::proposed(p.id, p.metadata, p.custom_metadata, p.data)?;
                    gathered.push(&stream, e)?;
                }
                Some(append_req::Content::Options(_)) => {
                    return Err(invalid("an append sends its options once, first"))
                }
                None => return Err(invalid("an append message carries nothing")),
            }
        }
        let written = until(
            deadline,
            "append",
            self.ctx
                .ledger
                .append(&stream, expected, std::mem::take(&mut gathered.events)),
        )
        .await?;
        let result = match written {
            Ok(r) => append_resp::Result::Success(success(r)),
            Err(AppendError::WrongExpectedVersion {
                expected, actual, ..
            }) => append_resp::Result::WrongExpectedVersion(wrong_version(expected, actual)),
            Err(e) => return Err(errors::of_append(e)),
        };
        Ok(Response::new(AppendResp {
            result: Some(result),
        }))
    }

    async fn delete(&self, req: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        allow(&req, Role::Write)?;
        let deadline = convert::deadline(req.metadata());
        let options = required(req.into_inner().options, "options")?;
        let stream = stream_name(options.stream_identifier)?;
        let expected = delete_expected(options.expected_stream_revision)?.into();
        let position = until(
            deadline,
            "delete",
            self.ctx.ledger.delete(&stream, expected),
        )
        .await?
        .map_err(errors::of_delete)?;
        Ok(Response::new(DeleteResp {
            position_option: Some(delete_resp::PositionOption::Position(
                delete_resp::Position {
                    commit_position: position,
                    prepare_position: position,
                },
            )),
        }))
    }

    async fn tombstone(
        &self,
        req: Request<TombstoneReq>,
    ) -> Result<Response<TombstoneResp>, Status> {
        allow(&req, Role::Admin)?;
        let deadline = convert::deadline(req.metadata());
        let options = required(req.into_inner().options, "options")?;
        let stream = stream_name(options.stream_identifier)?;
        let expected = tombstone_expected(options.expected_stream_revision)?.into();
        let position = until(
            deadline,
            "tombstone",
            self.ctx.ledger.tombstone(&stream, expected),
        )
        .await?
        .map_err(errors::of_delete)?;
        Ok(Response::new(TombstoneResp {
            position_option: Some(tombstone_resp::PositionOption::Position(
                tombstone_resp::Position {
                    commit_position: position,
                    prepare_position: position,
                },
            )),
        }))
    }

    type BatchAppendStream = super::batch::BatchStream;

    async fn batch_append(
        &self,
        req: Request<Streaming<BatchAppendReq>>,
    ) -> Result<Response<Self::BatchAppendStream>, Status> {
        allow(&req, Role::Write)?;
        Ok(Response::new(super::batch::start(
            self.ctx.clone(),
            req.into_inner(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(bytes: usize) -> ProposedEvent {
        ProposedEvent {
            data: vec![b'x'; bytes],
            content_type: ledger::ContentType::Binary,
            ..ProposedEvent::json("Blob", &serde_json::json!({}))
        }
    }

    #[test]
    fn appends_in_flight_share_one_budget_given_back_when_done() {
        let budget = Arc::new(tokio::sync::Semaphore::new(3)); // 3 KiB
        let mut first = Gathered::new(1 << 20, budget.clone());
        first.push("s", event(1500)).unwrap();
        let mut second = Gathered::new(1 << 20, budget.clone());
        let refused = second.push("s", event(1500)).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        assert!(
            refused.message().contains("Too Busy"),
            "{}",
            refused.message()
        );
        assert!(second.events.is_empty(), "a refused event is not kept");
        drop(first);
        second.push("s", event(1500)).unwrap();
        // The append's own limit is checked first, whatever the budget.
        let mut small = Gathered::new(100, budget);
        assert_eq!(
            small.push("s", event(200)).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
