//! Reads: a stream by revision in either direction, and `$all` by position with filters.

use crate::error::{ReadError, StorageError};
use crate::event::*;
use crate::filter::Filter;
use crate::merkle::Hash;
use crate::record::{decode_at, split_segment, RecordBody};
use crate::store::{load_stream, Ledger, SegmentCache};
use crate::tables::*;
use std::ops::ControlFlow;

/// A page of `$all`.
#[derive(Debug, Default)]
pub struct AllPage {
    pub events: Vec<RecordedEvent>,
    /// The last position the read looked at, matching or not (for filtered checkpoints).
    pub last_considered: Option<Position>,
    /// The read reached the end of the log (forwards) or its start (backwards).
    pub exhausted: bool,
}

impl Ledger {
    /// Up to `count` events of `stream` from `start`, inclusive, in `direction`.
    pub fn read_stream(
        &self,
        stream: &str,
        start: StreamStart,
        direction: Direction,
        count: u64,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let txn = self.read_txn()?;
        let streams = txn.open_table(STREAMS).map_err(StorageError::from)?;
        let rec = load_stream(&streams, stream)?;
        let not_found = || ReadError::StreamNotFound {
            stream: stream.into(),
        };
        let rec = rec.ok_or_else(not_found)?;
        if rec.is_tombstoned() {
            return Err(ReadError::StreamDeleted {
                stream: stream.into(),
            });
        }
        let last = rec.last_revision.ok_or_else(not_found)?;
        if rec.is_soft_deleted() {
            return Err(not_found());
        }
        // A metadata stream (`$$S`) shows only its latest event: KurrentDB keeps one
        // (`$maxCount` 1), and clients read S's metadata as that event. Nothing is removed;
        // `$all` still has every version.
        let first = match crate::stream_meta::target_of(stream) {
            Some(_) => rec.first_visible().max(last),
            None => rec.first_visible(),
        };
        let revisions: Box<dyn Iterator<Item = u64>> = match direction {
            Direction::Forwards => {
                let from = match start {
                    StreamStart::Start => first,
                    StreamStart::Revision(r) => r.max(first),
                    StreamStart::End => last.saturating_add(1),
                };
                Box::new((from..=last).take(count_usize(count)))
            }
            Direction::Backwards => {
                let from = match start {
                    StreamStart::Start => first,
                    StreamStart::Revision(r) => r.min(last),
                    StreamStart::End => last,
                };
                if from < first {
                    Box::new(std::iter::empty())
                } else {
                    Box::new((first..=from).rev().take(count_usize(count)))
                }
            }
        };
        let index = txn.open_table(STREAM_INDEX).map_err(StorageError::from)?;
        let mut segments = SegmentCache::new(&txn)?;
        let mut walk = IndexWalk::new(&index, rec.id);
        let mut out = Vec::new();
        for revision in revisions {
            let entry = walk
                .entry(revision)?
                .ok_or(ReadError::Storage(StorageError(format!(
                    "stream '{stream}' index has no entry for revision {revision}"
                ))))?;
            let event = segments.event(entry.position)?;
            if event.stream != stream || event.revision != revision {
                return Err(ReadError::Corrupt {
                    position: entry.position,
                    reason: format!(
                        "index says {stream}@{revision}, record says {}@{}",
                        event.stream, event.revision
                    ),
                });
            }
            out.push(event);
        }
        Ok(out)
    }

    /// The ids of a stream's latest `count` events, newest first, read from the stream index
    /// alone (no event is decoded): what a caller needs to recognise a redelivery. A stream
    /// never written has none.
    pub fn recent_event_ids(&self, stream: &str, count: u64) -> Result<Vec<EventId>, ReadError> {
        let txn = self.read_txn()?;
        let streams = txn.open_table(STREAMS).map_err(StorageError::from)?;
        let Some(rec) = load_stream(&streams, stream)? else {
            return Ok(Vec::new());
        };
        let (Some(last), Some(back)) = (rec.last_revision, count.checked_sub(1)) else {
            return Ok(Vec::new());
        };
        let index = txn.open_table(STREAM_INDEX).map_err(StorageError::from)?;
        let mut walk = IndexWalk::new(&index, rec.id);
        let mut out = Vec::new();
        for revision in (last.saturating_sub(back)..=last).rev() {
            if let Some(e) = walk.entry(revision)? {
                out.push(EventId::from_bytes(e.event_id));
            }
        }
        Ok(out)
    }

    /// Up to `count` events of `$all` from `start` (forwards inclusive, backwards exclusive)
    /// that pass `filter`.
    pub fn read_all(
        &self,
        start: AllStart,
        direction: Direction,
        count: u64,
        filter: Option<&Filter>,
    ) -> Result<AllPage, ReadError> {
        let mut page = AllPage::default();
        let want = count_usize(count);
        if want == 0 {
            return Ok(page);
        }
        let done = self.scan_all(start, direction, |body, hash| {
            page.last_considered = Some(body.position);
            if filter.is_none_or(|f| f.matches(body.stream, body.event_type)) {
                page.events.push(body.to_event(*hash));
                if page.events.len() >= want {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })?;
        page.exhausted = done;
        Ok(page)
    }

    /// Walks `$all` from `start`, handing each record's borrowed body to `visit` until it
    /// breaks. Returns whether the walk ran to the end of the log (or its start, backwards).
    pub fn scan_all(
        &self,
        start: AllStart,
        direction: Direction,
        mut visit: impl FnMut(&RecordBody<'_>, &Hash) -> ControlFlow<()>,
    ) -> Result<bool, ReadError> {
        let txn = self.read_txn()?;
        let segments = SegmentCache::new(&txn)?;
        let head = segments.size()?;
        let log = &segments.log;
        let from = match (start, direction) {
            (AllStart::Start, Direction::Forwards) => 1,
            (AllStart::Start, Direction::Backwards) => return Ok(true),
            (AllStart::End, Direction::Forwards) => return Ok(true),
            (AllStart::End, Direction::Backwards) => head + 1,
            (AllStart::Position(p), _) => {
                if p > head + 1 {
                    return Err(ReadError::InvalidPosition {
                        position: p,
                        last: head,
                    });
                }
                p.max(1)
            }
        };
        let storage = |e: redb::StorageError| ReadError::Storage(StorageError::from(e));
        match direction {
            Direction::Forwards => {
                let seg_start = log
                    .range(..=from)
                    .map_err(storage)?
                    .next_back()
                    .transpose()
                    .map_err(storage)?
                    .map_or(from, |(k, _)| k.value());
                for item in log.range(seg_start..).map_err(storage)? {
                    let (k, v) = item.map_err(storage)?;
                    if visit_segment(k.value(), v.value(), from, false, &mut visit)?.is_break() {
                        return Ok(false);
                    }
                }
            }
            Direction::Backwards => {
                if from <= 1 {
                    return Ok(true);
                }
                for item in log.range(..from).map_err(storage)?.rev() {
                    let (k, v) = item.map_err(storage)?;
                    if visit_segment(k.value(), v.value(), from, true, &mut visit)?.is_break() {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }
}

/// Visits the records of one segment at or after `from` (forwards) or before it (backwards).
fn visit_segment(
    first: u64,
    bytes: &[u8],
    from: Position,
    backwards: bool,
    visit: &mut impl FnMut(&RecordBody<'_>, &Hash) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, ReadError> {
    let records = split_segment(first, bytes)
        .map_err(|(position, reason)| ReadError::Corrupt { position, reason })?;
    let mut handle = |i: usize| -> Result<ControlFlow<()>, ReadError> {
        let position = first + i as u64;
        let keep = if backwards {
            position < from
        } else {
            position >= from
        };
        if !keep {
            return Ok(ControlFlow::Continue(()));
        }
        let raw = &records[i];
        let body = decode_at(raw.body, position)
            .map_err(|reason| ReadError::Corrupt { position, reason })?;
        Ok(visit(&body, &raw.hash))
    };
    if backwards {
        for i in (0..records.len()).rev() {
            if handle(i)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
    } else {
        for i in 0..records.len() {
            if handle(i)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
    }
    Ok(ControlFlow::Continue(()))
}

fn count_usize(count: u64) -> usize {
    usize::try_from(count).unwrap_or(usize::MAX)
}

/// A stream's index entries, revision by revision in either direction: a piece is loaded only
/// when the one in hand does not hold the revision asked for.
struct IndexWalk<'a, T> {
    index: &'a T,
    stream_id: u64,
    piece: Option<Piece>,
}

impl<'a, T: redb::ReadableTable<u128, &'static [u8]>> IndexWalk<'a, T> {
    fn new(index: &'a T, stream_id: u64) -> Self {
        IndexWalk {
            index,
            stream_id,
            piece: None,
        }
    }

    fn entry(&mut self, revision: u64) -> Result<Option<IndexEntry>, StorageError> {
        if self.piece.as_ref().and_then(|p| p.get(revision)).is_none() {
            self.piece = piece_at(self.index, self.stream_id, revision)?;
        }
        Ok(self.piece.as_ref().and_then(|p| p.get(revision)))
    }
}
