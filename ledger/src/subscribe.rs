//! Subscriptions: catch up from the log, then follow it live.
//!
//! A subscription never holds events in memory beyond its bounded channel: it always reads
//! from the committed log, from its own cursor, and waits on the head position when it has
//! read everything. There is no separate live path to switch to, so there is nothing to race:
//! no gap and no duplicate, however appends interleave with the catch-up.

use crate::error::ReadError;
use crate::event::*;
use crate::filter::Filter;
use crate::store::Ledger;
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionMessage {
    Event(RecordedEvent),
    /// Everything committed when the subscription got here has been delivered.
    CaughtUp {
        /// `$all`: the last position delivered or passed over (none when the log is empty).
        position: Option<Position>,
        /// Stream: the last revision delivered (none when the stream is empty or missing).
        revision: Option<Revision>,
    },
    /// A filtered `$all` subscription considered every event up to here.
    Checkpoint {
        position: Position,
    },
}

pub type SubscriptionItem = Result<SubscriptionMessage, ReadError>;

pub struct Subscription {
    rx: mpsc::Receiver<SubscriptionItem>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscription {
    pub async fn next(&mut self) -> Option<SubscriptionItem> {
        self.rx.recv().await
    }

    /// The next message if one is ready now (to send several at once).
    pub fn try_next(&mut self) -> Option<SubscriptionItem> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Options of a `$all` subscription.
#[derive(Clone, Debug)]
pub struct AllSubscription {
    /// `Start`: from the first event; `Position(p)`: after `p`; `End`: only new events.
    pub from: AllStart,
    pub filter: Option<Filter>,
    /// With a filter, a checkpoint after this many considered events (0: none).
    pub checkpoint_interval: u64,
}

impl Ledger {
    /// Subscribes to `$all`. Must be called inside a tokio runtime.
    pub fn subscribe_all(&self, options: AllSubscription) -> Subscription {
        let (tx, rx) = mpsc::channel(self.limits().subscription_buffer_events.max(1));
        let ledger = self.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = follow_all(ledger, options, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Subscription { rx, task }
    }

    /// Subscribes to one stream. `Start`: from its first event; `Revision(r)`: after `r`;
    /// `End`: only new events. A missing stream is waited for. Must be called inside a tokio
    /// runtime.
    pub fn subscribe_stream(&self, stream: &str, from: StreamStart) -> Subscription {
        let (tx, rx) = mpsc::channel(self.limits().subscription_buffer_events.max(1));
        let ledger = self.clone();
        let stream = stream.to_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = follow_stream(ledger, stream, from, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Subscription { rx, task }
    }
}

/// `Err(())` when the subscriber has gone away.
async fn send(tx: &mpsc::Sender<SubscriptionItem>, m: SubscriptionMessage) -> Result<(), ()> {
    tx.send(Ok(m)).await.map_err(|_| ())
}

async fn follow_all(
    ledger: Ledger,
    options: AllSubscription,
    tx: &mpsc::Sender<SubscriptionItem>,
) -> Result<(), ReadError> {
    let mut head = ledger.watch_head();
    let mut cursor = match options.from {
        AllStart::Start => 1,
        AllStart::Position(p) => p + 1,
        AllStart::End => *head.borrow() + 1,
    };
    let page_events = ledger.limits().read_page_events;
    let checkpoints = options.filter.is_some() && options.checkpoint_interval > 0;
    let interval = if checkpoints {
        options.checkpoint_interval
    } else {
        0
    };
    let mut considered = 0u64;
    let mut live = false;
    loop {
        let seen = *head.borrow_and_update();
        if cursor <= seen + 1 {
            let (l, f) = (ledger.clone(), options.filter.clone());
            let page = tokio::task::spawn_blocking(move || {
                read_page(&l, cursor, f.as_ref(), page_events, interval, considered)
            })
            .await
            .map_err(|e| ReadError::Storage(crate::error::StorageError(e.to_string())))??;
            for m in page.messages {
                if send(tx, m).await.is_err() {
                    return Ok(());
                }
            }
            considered = page.considered;
            if let Some(last) = page.last_considered {
                cursor = last + 1;
            }
            if !page.exhausted {
                continue;
            }
        }
        if !live {
            live = true;
            let position = (cursor > 1).then_some(cursor - 1);
            let caught = SubscriptionMessage::CaughtUp {
                position,
                revision: None,
            };
            if send(tx, caught).await.is_err() {
                return Ok(());
            }
            if let (true, Some(p)) = (checkpoints, position) {
                considered = 0;
                if send(tx, SubscriptionMessage::Checkpoint { position: p })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return Ok(()) },
            () = tx.closed() => return Ok(()),
        }
    }
}

/// One page of a `$all` subscription: events that pass the filter and, every `interval`
/// considered events (0: never), a checkpoint at the last one considered.
struct Page {
    messages: Vec<SubscriptionMessage>,
    last_considered: Option<Position>,
    exhausted: bool,
    /// Events considered since the last checkpoint.
    considered: u64,
}

/// Records looked at in one page of a filtered subscription that matches little, before the
/// page ends so that the subscription yields (and a client that left is noticed).
const PAGE_CONSIDERED_MAX: usize = 65_536;

fn read_page(
    ledger: &Ledger,
    cursor: Position,
    filter: Option<&Filter>,
    page_events: usize,
    interval: u64,
    mut considered: u64,
) -> Result<Page, ReadError> {
    let mut messages = Vec::new();
    let mut last_considered = None;
    let mut looked = 0usize;
    let exhausted = ledger.scan_all(
        AllStart::Position(cursor),
        Direction::Forwards,
        |body, hash| {
            last_considered = Some(body.position);
            looked += 1;
            if filter.is_none_or(|f| f.matches(body.stream, body.event_type)) {
                messages.push(SubscriptionMessage::Event(body.to_event(*hash)));
            }
            if interval > 0 {
                considered += 1;
                if considered >= interval {
                    considered = 0;
                    messages.push(SubscriptionMessage::Checkpoint {
                        position: body.position,
                    });
                }
            }
            if messages.len() >= page_events.max(1) || looked >= PAGE_CONSIDERED_MAX {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        },
    )?;
    Ok(Page {
        messages,
        last_considered,
        exhausted,
        considered,
    })
}

async fn follow_stream(
    ledger: Ledger,
    stream: String,
    from: StreamStart,
    tx: &mpsc::Sender<SubscriptionItem>,
) -> Result<(), ReadError> {
    let mut head = ledger.watch_head();
    let mut cursor = match from {
        StreamStart::Start => 0,
        StreamStart::Revision(r) => r + 1,
        StreamStart::End => ledger
            .stream_record(&stream)?
            .and_then(|r| r.last_revision)
            .map_or(0, |l| l + 1),
    };
    let page_events = ledger.limits().read_page_events as u64;
    let mut live = false;
    loop {
        head.borrow_and_update();
        let (l, s) = (ledger.clone(), stream.clone());
        let read = tokio::task::spawn_blocking(move || {
            l.read_stream(
                &s,
                StreamStart::Revision(cursor),
                Direction::Forwards,
                page_events,
            )
        })
        .await
        .map_err(|e| ReadError::Storage(crate::error::StorageError(e.to_string())))?;
        let full_page = match read {
            Ok(events) => {
                let full = events.len() as u64 == page_events;
                for e in events {
                    cursor = e.revision + 1;
                    if send(tx, SubscriptionMessage::Event(e)).await.is_err() {
                        return Ok(());
                    }
                }
                full
            }
            Err(ReadError::StreamNotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        if full_page {
            continue;
        }
        if !live {
            live = true;
            let caught = SubscriptionMessage::CaughtUp {
                position: None,
                revision: cursor.checked_sub(1),
            };
            if send(tx, caught).await.is_err() {
                return Ok(());
            }
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return Ok(()) },
            () = tx.closed() => return Ok(()),
        }
    }
}
