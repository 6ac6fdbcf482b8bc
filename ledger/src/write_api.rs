//! The public write side of a ledger: appends, deletes, tombstones, imports, and what the layer
//! above stores beside the log. Each call goes to the writer thread and returns once durable.

use crate::error::AppendError;
use crate::event::*;
use crate::store::Ledger;
use crate::writer::{ImportRecord, ImportSummary, Outcome, Request, WriteOp};
use tokio::sync::{mpsc, oneshot};

impl Ledger {
    async fn submit(&self, op: WriteOp) -> Result<Outcome, AppendError> {
        let tx = self.sender()?;
        let (reply, rx) = oneshot::channel();
        tx.send(Request { op, reply })
            .await
            .map_err(|_| AppendError::Closed)?;
        rx.await.map_err(|_| AppendError::Closed)?
    }

    fn submit_blocking(&self, op: WriteOp) -> Result<Outcome, AppendError> {
        let tx = self.sender()?;
        let (reply, rx) = oneshot::channel();
        tx.blocking_send(Request { op, reply })
            .map_err(|_| AppendError::Closed)?;
        rx.blocking_recv().map_err(|_| AppendError::Closed)?
    }

    /// Queues an append behind every write queued before it and returns at once; `wait` on the
    /// result returns once it is durable. Appends queued in turn are committed in that order
    /// (sharing group commits), so a caller can queue the next append before the last is
    /// durable.
    pub fn append_queued(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<QueuedAppend, AppendError> {
        let tx = self.sender()?;
        let (reply, rx) = oneshot::channel();
        tx.blocking_send(Request {
            op: WriteOp::append(stream, expected, events),
            reply,
        })
        .map_err(|_| AppendError::Closed)?;
        Ok(QueuedAppend { rx })
    }

    fn sender(&self) -> Result<mpsc::Sender<Request>, AppendError> {
        let guard = self.inner.writer.lock().map_err(|_| AppendError::Closed)?;
        guard
            .as_ref()
            .and_then(|h| h.tx.clone())
            .ok_or(AppendError::Closed)
    }

    /// Appends events to a stream once the expected revision holds; returns after the commit
    /// is durable.
    pub async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult, AppendError> {
        appended(
            self.submit(WriteOp::append(stream, expected, events))
                .await?,
        )
    }

    /// [`Ledger::append`] for callers outside an async runtime.
    pub fn append_blocking(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult, AppendError> {
        appended(self.submit_blocking(WriteOp::append(stream, expected, events))?)
    }

    /// Soft delete: reads of the stream find nothing, and an append continues it.
    pub async fn delete(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> Result<Position, AppendError> {
        deleted(self.submit(WriteOp::delete(stream, expected)).await?)
    }

    pub fn delete_blocking(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> Result<Position, AppendError> {
        deleted(self.submit_blocking(WriteOp::delete(stream, expected))?)
    }

    /// Tombstone: the stream can never be written again.
    pub async fn tombstone(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> Result<Position, AppendError> {
        deleted(self.submit(WriteOp::tombstone(stream, expected)).await?)
    }

    pub fn tombstone_blocking(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> Result<Position, AppendError> {
        deleted(self.submit_blocking(WriteOp::tombstone(stream, expected))?)
    }

    /// Writes records exactly as given, in one commit; records already present (same id at the
    /// same revision) are passed over, so an interrupted import can be run again.
    pub fn import_blocking(
        &self,
        records: Vec<ImportRecord>,
    ) -> Result<ImportSummary, AppendError> {
        match self.submit_blocking(WriteOp::Import(records))? {
            Outcome::Imported(s) => Ok(s),
            _ => unreachable!("an import answers with a summary"),
        }
    }

    /// Queues an import behind every write queued before it and returns at once; `wait` on the
    /// result returns its summary once it is durable. A caller can so prepare the next records
    /// while these are written.
    pub fn import_queued(&self, records: Vec<ImportRecord>) -> Result<QueuedImport, AppendError> {
        let tx = self.sender()?;
        let (reply, rx) = oneshot::channel();
        tx.blocking_send(Request {
            op: WriteOp::Import(records),
            reply,
        })
        .map_err(|_| AppendError::Closed)?;
        Ok(QueuedImport { rx })
    }

    /// Stores, for each tag, positions that carry it, and moves the index's watermark to
    /// `up_to`. Positions the index covers already (at or below its watermark) are passed over:
    /// the index only grows forwards, and a catch-up that raced another stores nothing twice.
    pub fn put_tags_blocking(
        &self,
        tags: Vec<(String, Vec<Position>)>,
        up_to: Position,
    ) -> Result<(), AppendError> {
        match self.submit_blocking(WriteOp::Tags { tags, up_to })? {
            Outcome::Stored => Ok(()),
            _ => unreachable!("tags answer with stored"),
        }
    }

    /// Stores a snapshot of the layer above's state after `position` (durably; not in the log).
    pub fn put_snapshot_blocking(
        &self,
        position: Position,
        bytes: Vec<u8>,
    ) -> Result<(), AppendError> {
        match self.submit_blocking(WriteOp::Snapshot { position, bytes })? {
            Outcome::Stored => Ok(()),
            _ => unreachable!("a snapshot answers with stored"),
        }
    }

    /// Removes the snapshots stored at `positions` (those not stored are passed over), in one
    /// durable commit. Snapshots are a cache beside the log: the log is not touched.
    pub fn drop_snapshots_blocking(&self, positions: Vec<Position>) -> Result<(), AppendError> {
        if positions.is_empty() {
            return Ok(());
        }
        match self.submit_blocking(WriteOp::DropSnapshots(positions))? {
            Outcome::Stored => Ok(()),
            _ => unreachable!("dropping snapshots answers with stored"),
        }
    }

    pub async fn import(&self, records: Vec<ImportRecord>) -> Result<ImportSummary, AppendError> {
        match self.submit(WriteOp::Import(records)).await? {
            Outcome::Imported(s) => Ok(s),
            _ => unreachable!("an import answers with a summary"),
        }
    }
}

/// An append queued with [`Ledger::append_queued`].
pub struct QueuedAppend {
    rx: oneshot::Receiver<Result<Outcome, AppendError>>,
}

impl QueuedAppend {
    /// Blocks until the append is durable (or refused).
    pub fn wait(self) -> Result<AppendResult, AppendError> {
        appended(self.rx.blocking_recv().map_err(|_| AppendError::Closed)??)
    }
}

/// An import queued with [`Ledger::import_queued`].
pub struct QueuedImport {
    rx: oneshot::Receiver<Result<Outcome, AppendError>>,
}

impl QueuedImport {
    /// Blocks until the import is durable (or refused).
    pub fn wait(self) -> Result<ImportSummary, AppendError> {
        match self.rx.blocking_recv().map_err(|_| AppendError::Closed)?? {
            Outcome::Imported(s) => Ok(s),
            _ => unreachable!("an import answers with a summary"),
        }
    }
}

fn appended(o: Outcome) -> Result<AppendResult, AppendError> {
    match o {
        Outcome::Appended(r) => Ok(r),
        _ => unreachable!("an append answers with an append result"),
    }
}

fn deleted(o: Outcome) -> Result<Position, AppendError> {
    match o {
        Outcome::Deleted(p) => Ok(p),
        _ => unreachable!("a delete answers with a position"),
    }
}
