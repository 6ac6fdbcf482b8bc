//! `Streams.Read`: a stream or `$all`, a count of events in either direction, or a
//! subscription (confirmation first, catch-up, `caught_up`, then live; filtered `$all`
//! subscriptions send checkpoints). Messages go out in batches (a page of a read, or what a
//! subscription has ready) through a small bounded channel, so a slow reader holds the
//! reading back instead of filling memory.

use super::convert::{self, read_event, stream_id, stream_name};
use super::errors::{self, invalid};
use super::proto::event_store::client::streams::read_req::options::{
    self as opts, filter_options, AllOptions, CountOption, FilterOption, FilterOptions,
    StreamOption, StreamOptions,
};
use super::proto::event_store::client::streams::{read_req, read_resp, ReadResp};
use ledger::{
    AllStart, AllSubscription, Direction, Filter, FilterOn, Ledger, ReadError, StreamStart,
    SubscriptionMessage,
};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

pub type ReadStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<ReadResp, Status>> + Send + 'static>>;

/// Batches buffered per read before the reading waits for the client.
const BUFFER_BATCHES: usize = 4;
/// Messages in one batch of a subscription.
const BATCH_MESSAGES: usize = 512;

/// A filtered subscription's checkpoint window when the client asks for `count` (KurrentDB's).
const DEFAULT_CHECKPOINT_WINDOW: u64 = 32;

/// A batch of messages, or the error that ends the call.
type Batch = Result<Vec<ReadResp>, Status>;

/// The read's side of the channel: messages gathered into a batch, sent on `flush`.
struct Out {
    tx: mpsc::Sender<Batch>,
    batch: Vec<ReadResp>,
}

/// The client went away: nothing more to send.
struct Gone;

impl Out {
    fn push(&mut self, content: read_resp::Content) {
        self.batch.push(ReadResp {
            content: Some(content),
        });
    }

    async fn flush(&mut self) -> Result<(), Gone> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.tx.send(Ok(batch)).await.map_err(|_| Gone)
    }

    /// Sends what is gathered, then the error that ends the call.
    async fn fail(mut self, e: Status) {
        if self.flush().await.is_ok() {
            let _ = self.tx.send(Err(e)).await;
        }
    }

    /// Ends a counted read: what is gathered, or the error.
    async fn finish(mut self, r: Result<(), Status>) {
        match r {
            Ok(()) => {
                let _ = self.flush().await;
            }
            Err(e) => self.fail(e).await,
        }
    }
}

/// The call's side: the batches, one message at a time.
struct Batched {
    rx: mpsc::Receiver<Batch>,
    current: std::vec::IntoIter<ReadResp>,
}

impl tokio_stream::Stream for Batched {
    type Item = Result<ReadResp, Status>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        loop {
            if let Some(m) = self.current.next() {
                return Poll::Ready(Some(Ok(m)));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(batch))) => self.current = batch.into_iter(),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// How the client wants replies shaped.
#[derive(Clone, Copy)]
struct Shape {
    /// Ids as two integers rather than text.
    structured: bool,
    /// Send `last_stream_position` at the end of stream reads (compatibility level 1).
    positions: bool,
}

enum Kind {
    Stream { name: String, start: StreamStart },
    All { start: AllStart },
}

/// Checks the request and starts answering it.
pub fn start(
    ledger: Arc<Ledger>,
    o: read_req::Options,
    deadline: Option<Instant>,
) -> Result<ReadStream, Status> {
    let shape = Shape {
        structured: matches!(
            o.uuid_option.and_then(|u| u.content),
            Some(opts::uuid_option::Content::Structured(_))
        ),
        positions: o.control_option.is_some_and(|c| c.compatibility >= 1),
    };
    let direction = match opts::ReadDirection::try_from(o.read_direction) {
        Ok(opts::ReadDirection::Forwards) => Direction::Forwards,
        Ok(opts::ReadDirection::Backwards) => Direction::Backwards,
        Err(_) => {
            return Err(invalid(format!(
                "read direction {} is neither forwards (0) nor backwards (1)",
                o.read_direction
            )))
        }
    };
    let filter = match o.filter_option {
        Some(FilterOption::Filter(f)) => Some(filter_of(f)?),
        Some(FilterOption::NoFilter(_)) | None => None,
    };
    let kind = match o.stream_option {
        Some(StreamOption::Stream(s)) => stream_kind(s)?,
        Some(StreamOption::All(a)) => Kind::All {
            start: all_start(a)?,
        },
        None => {
            return Err(invalid(
                "a read names a stream or $all; this one names neither",
            ))
        }
    };
    let subscription = matches!(o.count_option, Some(CountOption::Subscription(_)));
    let combination_ok = match (&kind, subscription) {
        (Kind::Stream { .. }, false) => filter.is_none(),
        (Kind::All { .. }, false) => true,
        (Kind::Stream { .. }, true) => filter.is_none() && direction == Direction::Forwards,
        (Kind::All { .. }, true) => direction == Direction::Forwards,
    };
    if !combination_ok {
        return Err(invalid(format!(
            "The combination of {} with {:?} reading and {} is invalid: filters apply to $all only, and subscriptions read forwards",
            if subscription { "a subscription" } else { "a counted read" },
            direction,
            if filter.is_some() { "a filter" } else { "no filter" },
        )));
    }
    let (tx, rx) = mpsc::channel(BUFFER_BATCHES);
    let mut out = Out {
        tx,
        batch: Vec::new(),
    };
    match (kind, o.count_option) {
        (Kind::Stream { name, start }, Some(CountOption::Count(n))) => {
            tokio::spawn(async move {
                let r = read_stream(
                    &ledger, &mut out, &name, start, direction, n, shape, deadline,
                )
                .await;
                out.finish(r).await;
            });
        }
        (Kind::All { start }, Some(CountOption::Count(n))) => {
            let filter = filter.map(|(f, _)| f);
            tokio::spawn(async move {
                let r = read_all(
                    &ledger, &mut out, start, direction, n, filter, shape, deadline,
                )
                .await;
                out.finish(r).await;
            });
        }
        (kind, Some(CountOption::Subscription(_))) => {
            if let Kind::Stream { name, .. } = &kind {
                let tombstoned = ledger
                    .stream_record(name)
                    .map_err(errors::of_read)?
                    .is_some_and(|r| r.is_tombstoned());
                if tombstoned {
                    return Err(errors::stream_deleted(name));
                }
            }
            let subscription = match kind {
                Kind::Stream { name, start } => ledger.subscribe_stream(&name, start),
                Kind::All { start } => {
                    let (filter, checkpoint_interval) = match filter {
                        Some((f, every)) => (Some(f), every),
                        None => (None, 0),
                    };
                    ledger.subscribe_all(AllSubscription {
                        from: start,
                        filter,
                        checkpoint_interval,
                    })
                }
            };
            tokio::spawn(follow(subscription, out, shape));
        }
        (_, None) => return Err(invalid("a read gives a count or asks for a subscription")),
    }
    Ok(Box::pin(Batched {
        rx,
        current: Vec::new().into_iter(),
    }))
}

fn stream_kind(s: StreamOptions) -> Result<Kind, Status> {
    let name = stream_name(s.stream_identifier)?;
    let start = match s.revision_option {
        Some(opts::stream_options::RevisionOption::Revision(r)) => StreamStart::Revision(r),
        Some(opts::stream_options::RevisionOption::Start(_)) | None => StreamStart::Start,
        Some(opts::stream_options::RevisionOption::End(_)) => StreamStart::End,
    };
    Ok(Kind::Stream { name, start })
}

fn all_start(a: AllOptions) -> Result<AllStart, Status> {
    Ok(match a.all_option {
        Some(opts::all_options::AllOption::Position(p)) => {
            if p.commit_position != p.prepare_position {
                return Err(invalid(format!(
                    "Trying to read from an invalid position: commit {} and prepare {} differ (Lifeline's positions have them equal)",
                    p.commit_position, p.prepare_position
                )));
            }
            AllStart::Position(p.commit_position)
        }
        Some(opts::all_options::AllOption::Start(_)) | None => AllStart::Start,
        Some(opts::all_options::AllOption::End(_)) => AllStart::End,
    })
}

/// The filter and, for subscriptions, how many considered events between checkpoints.
fn filter_of(f: FilterOptions) -> Result<(Filter, u64), Status> {
    let (on, expr) = match f.filter {
        Some(filter_options::Filter::StreamIdentifier(e)) => (FilterOn::StreamName, e),
        Some(filter_options::Filter::EventType(e)) => (FilterOn::EventType, e),
        None => {
            return Err(invalid(
                "a filter is on the stream name or the event type; this one is on neither",
            ))
        }
    };
    let filter = if !expr.regex.is_empty() {
        Filter::regex(on, &expr.regex).map_err(errors::of_read)?
    } else if !expr.prefix.is_empty() {
        Filter::prefixes(on, expr.prefix)
    } else {
        return Err(invalid("a filter needs a regex or at least one prefix"));
    };
    let window = match f.window {
        Some(filter_options::Window::Max(m)) => u64::from(m.max(1)),
        Some(filter_options::Window::Count(_)) | None => DEFAULT_CHECKPOINT_WINDOW,
    };
    let every = window.saturating_mul(u64::from(f.checkpoint_interval_multiplier.max(1)));
    Ok((filter, every))
}

fn past(deadline: Option<Instant>) -> Result<(), Status> {
    match deadline {
        Some(at) if Instant::now() >= at => {
            Err(Status::deadline_exceeded("the read's deadline passed"))
        }
        _ => Ok(()),
    }
}

/// Runs a ledger read off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReadError> + Send + 'static,
) -> Result<Result<T, ReadError>, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("the read failed: {e}")))
}

#[allow(clippy::too_many_arguments)]
async fn read_stream(
    ledger: &Arc<Ledger>,
    out: &mut Out,
    name: &str,
    mut start: StreamStart,
    direction: Direction,
    count: u64,
    shape: Shape,
    deadline: Option<Instant>,
) -> Result<(), Status> {
    let page = ledger.limits().read_page_events as u64;
    let mut remaining = count;
    let mut first_page = true;
    while remaining > 0 {
        past(deadline)?;
        let want = remaining.min(page);
        let (l, n) = (ledger.clone(), name.to_owned());
        let events = match blocking(move || l.read_stream(&n, start, direction, want)).await? {
            Ok(events) => events,
            Err(ReadError::StreamNotFound { .. }) if first_page => {
                out.push(read_resp::Content::StreamNotFound(
                    read_resp::StreamNotFound {
                        stream_identifier: Some(stream_id(name)),
                    },
                ));
                return Ok(());
            }
            Err(ReadError::StreamNotFound { .. }) => break,
            Err(e) => return Err(errors::of_read(e)),
        };
        first_page = false;
        let got = events.len() as u64;
        let last = events.last().map(|e| e.revision);
        for e in events {
            out.push(read_resp::Content::Event(read_event(e, shape.structured)));
        }
        if out.flush().await.is_err() {
            return Ok(());
        }
        remaining -= got;
        match (last, direction) {
            _ if got < want => break,
            (Some(r), Direction::Forwards) => start = StreamStart::Revision(r + 1),
            (Some(0), Direction::Backwards) | (None, _) => break,
            (Some(r), Direction::Backwards) => start = StreamStart::Revision(r - 1),
        }
    }
    if shape.positions {
        let last = ledger
            .stream_record(name)
            .map_err(errors::of_read)?
            .and_then(|r| r.last_revision);
        if let Some(last) = last {
            out.push(read_resp::Content::LastStreamPosition(last));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn read_all(
    ledger: &Arc<Ledger>,
    out: &mut Out,
    mut start: AllStart,
    direction: Direction,
    count: u64,
    filter: Option<Filter>,
    shape: Shape,
    deadline: Option<Instant>,
) -> Result<(), Status> {
    let page = ledger.limits().read_page_events as u64;
    let filter = Arc::new(filter);
    let mut remaining = count;
    while remaining > 0 {
        past(deadline)?;
        let want = remaining.min(page);
        let (l, f) = (ledger.clone(), filter.clone());
        let page = blocking(move || l.read_all(start, direction, want, f.as_ref().as_ref()))
            .await?
            .map_err(errors::of_read)?;
        remaining -= page.events.len() as u64;
        for e in page.events {
            out.push(read_resp::Content::Event(read_event(e, shape.structured)));
        }
        if out.flush().await.is_err() {
            return Ok(());
        }
        match (page.exhausted, page.last_considered) {
            (false, Some(p)) => {
                start = match direction {
                    Direction::Forwards => AllStart::Position(p + 1),
                    Direction::Backwards => AllStart::Position(p),
                }
            }
            _ => break,
        }
    }
    Ok(())
}

/// One subscription message as the wire has it.
fn content_of(m: SubscriptionMessage, shape: Shape) -> read_resp::Content {
    match m {
        SubscriptionMessage::Event(e) => read_resp::Content::Event(read_event(e, shape.structured)),
        SubscriptionMessage::CaughtUp { position, revision } => {
            read_resp::Content::CaughtUp(read_resp::CaughtUp {
                timestamp: Some(convert::now()),
                stream_revision: revision.map(|r| r as i64),
                position: position.map(|p| read_resp::Position {
                    commit_position: p,
                    prepare_position: p,
                }),
            })
        }
        SubscriptionMessage::Checkpoint { position } => {
            read_resp::Content::Checkpoint(read_resp::Checkpoint {
                commit_position: position,
                prepare_position: position,
                timestamp: Some(convert::now()),
            })
        }
    }
}

/// Forwards a subscription: confirmation first, then events, `caught_up` and checkpoints,
/// sending together whatever is ready at once.
async fn follow(mut sub: ledger::Subscription, mut out: Out, shape: Shape) {
    out.push(read_resp::Content::Confirmation(
        read_resp::SubscriptionConfirmation {
            subscription_id: uuid::Uuid::new_v4().to_string(),
        },
    ));
    if out.flush().await.is_err() {
        return;
    }
    while let Some(item) = sub.next().await {
        let mut next = Some(item);
        while let Some(item) = next.take() {
            match item {
                Ok(m) => out.push(content_of(m, shape)),
                Err(e) => return out.fail(errors::of_read(e)).await,
            }
            if out.batch.len() < BATCH_MESSAGES {
                next = sub.try_next();
            }
        }
        if out.flush().await.is_err() {
            return;
        }
    }
}
