//! The rules of each write, KurrentDB's: expected revisions, idempotent retries, soft delete,
//! tombstone, stream metadata, and the exact writes of an import.

use crate::error::AppendError;
use crate::event::*;
use crate::staging::{Op, Staging};
use crate::stream_meta;
use crate::tables::*;
use crate::writer::{ImportRecord, ImportSummary};

impl Staging<'_> {
    pub(crate) fn append(
        &mut self,
        stream: &str,
        expected: ExpectedRevision,
        events: &[ProposedEvent],
    ) -> Op<AppendResult> {
        crate::validate::stream_name(stream, self.limits)?;
        crate::validate::events(events, self.limits)?;
        let meta_target = stream_meta::target_of(stream);
        let new_meta = match meta_target {
            Some(_) => stream_meta::last_metadata(events, self.limits)?,
            None => None,
        };
        let rec = self.stream(stream)?;
        if rec.is_tombstoned() {
            return Err(AppendError::StreamDeleted {
                stream: stream.into(),
            });
        }
        let current = rec.last_revision;
        let soft = rec.is_soft_deleted();
        let wev = || AppendError::WrongExpectedVersion {
            stream: stream.into(),
            expected,
            actual: CurrentRevision::from_option(current),
        };
        match expected {
            ExpectedRevision::Exact(e) if current == Some(e) => {}
            ExpectedRevision::NoStream if current.is_none() || soft => {}
            ExpectedRevision::Exact(e) => return self.retry_at(&rec, Some(e), events, wev),
            ExpectedRevision::NoStream => return self.retry_at(&rec, None, events, wev),
            ExpectedRevision::Any | ExpectedRevision::StreamExists => {
                if expected == ExpectedRevision::StreamExists {
                    let exists = current.is_some() || self.has_metadata_stream(stream)?;
                    if !exists || soft {
                        return Err(wev());
                    }
                }
                if let Some(done) = self.retry_in_window(&rec, events, wev)? {
                    return Ok(done);
                }
            }
        }
        if events.is_empty() {
            return Ok(AppendResult {
                revision: CurrentRevision::from_option(current),
                position: None,
            });
        }
        let mut rec = rec;
        self.ensure_id(&mut rec);
        let first = current.map_or(0, |c| c + 1);
        let mut position = 0;
        for (i, event) in events.iter().enumerate() {
            position = self.write(stream, rec.id, first + i as u64, event, self.now)?;
        }
        let last = first + events.len() as u64 - 1;
        rec.last_revision = Some(last);
        if soft {
            rec.truncate_before = Some(first);
        }
        let metadata = rec.metadata.clone();
        self.put_stream(stream, rec)?;
        if let (Some(target), Some(meta)) = (meta_target, new_meta) {
            self.apply_metadata(target, meta)?;
        }
        if soft {
            // Appending after a soft delete continues the stream: its `$tb` moves to the first
            // new revision, keeping the rest of its metadata.
            let data = stream_meta::with_truncate_before(metadata.as_deref(), first);
            self.append(
                &stream_meta::metadata_stream(stream),
                ExpectedRevision::Any,
                &[stream_meta::metadata_event(data)],
            )?;
        }
        Ok(AppendResult {
            revision: CurrentRevision::Current(last),
            position: Some(position),
        })
    }

    pub(crate) fn has_metadata_stream(&mut self, stream: &str) -> Op<bool> {
        let meta = stream_meta::metadata_stream(stream);
        Ok(self.stream(&meta)?.last_revision.is_some())
    }

    pub(crate) fn apply_metadata(&mut self, target: &str, meta: stream_meta::Parsed) -> Op<()> {
        let mut rec = self.stream(target)?;
        rec.truncate_before = meta.truncate_before;
        rec.metadata = Some(meta.data);
        self.put_stream(target, rec)?;
        Ok(())
    }

    /// An exact or no-stream append behind the stream's end: an idempotent retry when the ids
    /// at the following revisions are exactly the proposed ones.
    pub(crate) fn retry_at(
        &mut self,
        rec: &StreamRecord,
        expected: Option<Revision>,
        events: &[ProposedEvent],
        wev: impl Fn() -> AppendError,
    ) -> Op<AppendResult> {
        let Some(current) = rec.last_revision else {
            return Err(wev());
        };
        let start = expected.map_or(0, |e| e + 1);
        if events.is_empty() || start > current {
            return Err(wev());
        }
        self.match_ids(rec, start, current, events)?.ok_or_else(wev)
    }

    /// The ids at `start..` equal the proposed ones: the original result. Otherwise `None`.
    pub(crate) fn match_ids(
        &mut self,
        rec: &StreamRecord,
        start: Revision,
        current: Revision,
        events: &[ProposedEvent],
    ) -> Op<Option<AppendResult>> {
        let mut position = 0;
        for (i, event) in events.iter().enumerate() {
            let revision = start + i as u64;
            if revision > current {
                return Ok(None);
            }
            match self.entry(rec.id, revision)? {
                Some(e) if &e.event_id == event.id.as_bytes() => position = e.position,
                _ => return Ok(None),
            }
        }
        Ok(Some(AppendResult {
            revision: CurrentRevision::Current(start + events.len() as u64 - 1),
            position: Some(position),
        }))
    }

    /// `Any`/`StreamExists` retries: the first id is looked for among the stream's last
    /// [`IDEMPOTENCY_WINDOW_EVENTS`] or more events; found, the rest must follow it exactly.
    pub(crate) fn retry_in_window(
        &mut self,
        rec: &StreamRecord,
        events: &[ProposedEvent],
        wev: impl Fn() -> AppendError,
    ) -> Op<Option<AppendResult>> {
        let (Some(first), Some(current)) = (events.first(), rec.last_revision) else {
            return Ok(None);
        };
        let Some(start) = self.find_recent(rec.id, current, first.id.as_bytes())? else {
            return Ok(None);
        };
        match self.match_ids(rec, start, current, events)? {
            Some(done) => Ok(Some(done)),
            None => Err(wev()),
        }
    }

    pub(crate) fn soft_delete(&mut self, stream: &str, expected: ExpectedRevision) -> Op<Position> {
        crate::validate::stream_name(stream, self.limits)?;
        let rec = self.stream(stream)?;
        if rec.is_tombstoned() {
            return Err(AppendError::StreamDeleted {
                stream: stream.into(),
            });
        }
        let ok = match (expected, rec.last_revision) {
            (_, None) => false,
            (ExpectedRevision::Any, _) => true,
            (ExpectedRevision::NoStream, _) => false,
            (ExpectedRevision::StreamExists, _) => !rec.is_soft_deleted(),
            (ExpectedRevision::Exact(e), Some(last)) => e == last,
        };
        if !ok {
            return Err(AppendError::WrongExpectedVersion {
                stream: stream.into(),
                expected,
                actual: CurrentRevision::from_option(rec.last_revision),
            });
        }
        let data = stream_meta::with_truncate_before(rec.metadata.as_deref(), TOMBSTONE_REVISION);
        let done = self.append(
            &stream_meta::metadata_stream(stream),
            ExpectedRevision::Any,
            &[stream_meta::metadata_event(data)],
        )?;
        Ok(done.position.unwrap_or(self.state.head))
    }

    pub(crate) fn tombstone(&mut self, stream: &str, expected: ExpectedRevision) -> Op<Position> {
        crate::validate::stream_name(stream, self.limits)?;
        let rec = self.stream(stream)?;
        if rec.is_tombstoned() {
            return Err(AppendError::StreamDeleted {
                stream: stream.into(),
            });
        }
        let soft = rec.is_soft_deleted();
        let ok = match expected {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => rec.last_revision.is_none() || soft,
            ExpectedRevision::StreamExists => rec.last_revision.is_some() && !soft,
            ExpectedRevision::Exact(e) => rec.last_revision == Some(e),
        };
        if !ok {
            return Err(AppendError::WrongExpectedVersion {
                stream: stream.into(),
                expected,
                actual: CurrentRevision::from_option(rec.last_revision),
            });
        }
        let mut rec = rec;
        self.ensure_id(&mut rec);
        let event = tombstone_event(EventId::new_random());
        let position = self.write(stream, rec.id, TOMBSTONE_REVISION, &event, self.now)?;
        rec.tombstone_position = Some(position);
        self.put_stream(stream, rec)?;
        Ok(position)
    }

    pub(crate) fn import(&mut self, records: &[ImportRecord]) -> Op<ImportSummary> {
        let mut summary = ImportSummary::default();
        for r in records {
            crate::validate::stream_name(&r.stream, self.limits)?;
            crate::validate::events(std::slice::from_ref(&r.event), self.limits)?;
            if self.import_one(r)? {
                summary.written += 1;
            } else {
                summary.already_present += 1;
            }
        }
        summary.last_position = self.state.head;
        Ok(summary)
    }

    /// Writes one imported record; `false` when it was already there.
    pub(crate) fn import_one(&mut self, r: &ImportRecord) -> Op<bool> {
        let conflict = |reason: String| AppendError::ImportConflict {
            stream: r.stream.clone(),
            revision: r.revision,
            reason,
        };
        let rec = self.stream(&r.stream)?;
        let recorded = r.recorded.0.max(self.state.last_recorded);
        if r.revision == TOMBSTONE_REVISION && r.event.event_type == TOMBSTONE_TYPE {
            if rec.is_tombstoned() {
                return Ok(false);
            }
            let mut rec = rec;
            self.ensure_id(&mut rec);
            let position = self.write(&r.stream, rec.id, TOMBSTONE_REVISION, &r.event, recorded)?;
            rec.tombstone_position = Some(position);
            self.put_stream(&r.stream, rec)?;
            return Ok(true);
        }
        if rec.is_tombstoned() {
            return Err(conflict("the stream is tombstoned in this ledger".into()));
        }
        let next = rec.last_revision.map_or(0, |l| l + 1);
        if r.revision < next {
            return match self.entry(rec.id, r.revision)? {
                Some(e) if &e.event_id == r.event.id.as_bytes() => Ok(false),
                _ => Err(conflict(format!(
                    "this revision already holds another event (not {})",
                    r.event.id
                ))),
            };
        }
        if r.revision > next {
            return Err(conflict(format!(
                "revisions must follow on: the stream's next revision is {next}"
            )));
        }
        let new_meta = match stream_meta::target_of(&r.stream) {
            Some(t) => stream_meta::last_metadata(std::slice::from_ref(&r.event), self.limits)?
                .map(|m| (t, m)),
            None => None,
        };
        let mut rec = rec;
        self.ensure_id(&mut rec);
        self.write(&r.stream, rec.id, r.revision, &r.event, recorded)?;
        rec.last_revision = Some(r.revision);
        self.put_stream(&r.stream, rec)?;
        if let Some((target, meta)) = new_meta {
            self.apply_metadata(target, meta)?;
        }
        Ok(true)
    }
}

pub(crate) fn tombstone_event(id: EventId) -> ProposedEvent {
    ProposedEvent {
        id,
        event_type: TOMBSTONE_TYPE.into(),
        content_type: ContentType::Binary,
        data: Vec::new(),
        metadata: Vec::new(),
        occurred: None,
    }
}
