//! The on-disk record: its canonical bytes (what is hashed), and the segments that pack the
//! records of one commit into one value of the `log` table. `schema/ledger-format.md` documents
//! every byte; `tests/format_compat.rs` holds a stored ledger written by format version 1.

use crate::event::{ContentType, EventId, ProposedEvent, RecordedEvent, Timestamp};
use crate::merkle::Hash;
use bincode::{BorrowDecode, Encode};

/// Version byte at the head of every segment.
pub const FORMAT_VERSION: u8 = 1;

/// Records in one segment, at most.
pub const SEGMENT_RECORDS_MAX: usize = 1024;
/// Bytes of one segment before a new one is started (a larger single record gets its own):
/// one 32 KiB redb page. Reading one event reads its whole segment, so this bounds what an
/// audit or a history reads per event; `$all` scans read more segments for it. Measured
/// against 128 KiB segments (domain_bench and ledger_bench, 1M events, alternated): an audit of
/// one community 5.33 → 1.95 ms, `$all` 3.7M → 3.0–3.2M events/s, bulk import the same beside
/// SQLite (1.74–1.83×); 16 KiB segments gave 1.25 ms but `$all` 2.6M/s, below SQLite's.
pub const SEGMENT_BYTES_TARGET: usize = 32_640;

/// Bytes of the segment header: version (1) and record count (u32 LE).
pub const SEGMENT_HEADER_BYTES: usize = 5;
/// Bytes before each record's body: body length (u32 LE) and the chain hash (32).
pub const RECORD_HEADER_BYTES: usize = 36;

/// bincode configuration of the canonical bytes: fixed-width little-endian integers,
/// u64 length prefixes, no limit beyond the event size checks made before encoding.
pub fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
}

/// The canonical bytes of a record, field order fixed. Borrowed so that encoding copies nothing.
#[derive(Encode, BorrowDecode, Debug, PartialEq, Eq)]
pub struct RecordBody<'a> {
    pub position: u64,
    pub stream: &'a str,
    pub revision: u64,
    pub event_id: [u8; 16],
    pub event_type: &'a str,
    /// 1 = application/json, 0 = application/octet-stream.
    pub is_json: u8,
    pub data: &'a [u8],
    pub metadata: &'a [u8],
    pub recorded_ns: i64,
    pub occurred_ns: i64,
}

impl RecordBody<'_> {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // Encoding into a Vec cannot fail: every field has a fixed or length-prefixed form.
        bincode::encode_into_std_write(self, out, config()).expect("encoding into a Vec");
    }

    pub fn content_type(&self) -> ContentType {
        if self.is_json == 1 {
            ContentType::Json
        } else {
            ContentType::Binary
        }
    }

    /// The event as it was proposed (its own id, type, content and occurred time).
    pub fn to_proposed(&self) -> ProposedEvent {
        ProposedEvent {
            id: EventId::from_bytes(self.event_id),
            event_type: self.event_type.to_owned(),
            content_type: self.content_type(),
            data: self.data.to_vec(),
            metadata: self.metadata.to_vec(),
            occurred: Some(Timestamp(self.occurred_ns)),
        }
    }

    pub fn to_event(&self, hash: Hash) -> RecordedEvent {
        RecordedEvent {
            position: self.position,
            stream: self.stream.to_owned(),
            revision: self.revision,
            id: EventId::from_bytes(self.event_id),
            event_type: self.event_type.to_owned(),
            content_type: self.content_type(),
            data: self.data.to_vec(),
            metadata: self.metadata.to_vec(),
            recorded: Timestamp(self.recorded_ns),
            occurred: Timestamp(self.occurred_ns),
            hash,
        }
    }
}

pub fn decode_body(bytes: &[u8]) -> Result<RecordBody<'_>, String> {
    let (body, used): (RecordBody<'_>, usize) =
        bincode::borrow_decode_from_slice(bytes, config()).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the record body",
            bytes.len() - used
        ));
    }
    if body.is_json > 1 {
        return Err(format!("content flag {} is neither 0 nor 1", body.is_json));
    }
    Ok(body)
}

/// Decodes a record that must stand at `position`.
pub fn decode_at(bytes: &[u8], position: u64) -> Result<RecordBody<'_>, String> {
    let body = decode_body(bytes)?;
    if body.position != position {
        return Err(format!("record says position {}", body.position));
    }
    Ok(body)
}

/// `blake3(prev_hash ‖ canonical body bytes)`.
pub fn chain_hash(prev: &Hash, body: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(body);
    *h.finalize().as_bytes()
}

/// Checks one stored record: it decodes, stands at `position`, and its stored hash is
/// `blake3(prev ‖ body)`.
pub fn check_record(prev: &Hash, position: u64, raw: &RawRecord<'_>) -> Result<(), String> {
    decode_at(raw.body, position).map_err(|r| format!("record does not decode here: {r}"))?;
    if chain_hash(prev, raw.body) != raw.hash {
        return Err("stored hash differs from blake3(previous hash ‖ record)".into());
    }
    Ok(())
}

/// Builds the segments of one commit.
#[derive(Default)]
pub struct SegmentWriter {
    done: Vec<(u64, Vec<u8>)>,
    current: Vec<u8>,
    first_position: u64,
    count: u32,
    scratch: Vec<u8>,
}

impl SegmentWriter {
    /// Encodes a record, chains it to `prev` and returns its hash.
    pub fn push(&mut self, body: &RecordBody<'_>, prev: &Hash) -> Hash {
        self.scratch.clear();
        body.encode_into(&mut self.scratch);
        let hash = chain_hash(prev, &self.scratch);
        let full = self.count as usize >= SEGMENT_RECORDS_MAX
            || (self.count > 0 && self.current.len() + self.scratch.len() > SEGMENT_BYTES_TARGET);
        if full {
            self.finish_current();
        }
        if self.count == 0 {
            self.first_position = body.position;
            self.current
                .reserve(SEGMENT_BYTES_TARGET.max(self.scratch.len() + RECORD_HEADER_BYTES + 5));
            self.current.push(FORMAT_VERSION);
            self.current.extend_from_slice(&0u32.to_le_bytes());
        }
        let len = u32::try_from(self.scratch.len()).expect("record size bounded by limits");
        self.current.extend_from_slice(&len.to_le_bytes());
        self.current.extend_from_slice(&hash);
        self.current.extend_from_slice(&self.scratch);
        self.count += 1;
        hash
    }

    fn finish_current(&mut self) {
        if self.count == 0 {
            return;
        }
        self.current[1..5].copy_from_slice(&self.count.to_le_bytes());
        self.done
            .push((self.first_position, std::mem::take(&mut self.current)));
        self.count = 0;
    }

    /// The finished segments, keyed by their first position.
    pub fn finish(mut self) -> Vec<(u64, Vec<u8>)> {
        self.finish_current();
        self.done
    }

    pub fn mark(&self) -> SegmentMark {
        SegmentMark {
            done: self.done.len(),
            current: self.current.len(),
            count: self.count,
            first_position: self.first_position,
        }
    }

    /// Forgets every record pushed since `mark`.
    pub fn rollback(&mut self, mark: &SegmentMark) {
        if self.done.len() > mark.done {
            let (first, bytes) = self.done.swap_remove(mark.done);
            self.done.truncate(mark.done);
            self.current = bytes;
            self.first_position = first;
        }
        self.current.truncate(mark.current);
        self.count = mark.count;
        self.first_position = mark.first_position;
    }
}

/// Where a [`SegmentWriter`] stood, to roll back to.
#[derive(Clone, Copy, Debug)]
pub struct SegmentMark {
    done: usize,
    current: usize,
    count: u32,
    first_position: u64,
}

/// One record inside a segment: its stored chain hash and its canonical body bytes.
#[derive(Clone, Copy, Debug)]
pub struct RawRecord<'a> {
    pub hash: Hash,
    pub body: &'a [u8],
}

/// The records of a stored segment, one at a time, so that damage is named at the first record
/// it touches. `first` is the segment's key. After the last record, trailing bytes are an error.
pub fn segment_records(
    first: u64,
    bytes: &[u8],
) -> impl Iterator<Item = Result<RawRecord<'_>, (u64, String)>> + '_ {
    let header = if bytes.len() < SEGMENT_HEADER_BYTES {
        Err((first, "segment shorter than its header".to_string()))
    } else if bytes[0] != FORMAT_VERSION {
        Err((
            first,
            format!(
                "segment format version {} (expected {FORMAT_VERSION})",
                bytes[0]
            ),
        ))
    } else {
        let count = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if count == 0 || count > SEGMENT_RECORDS_MAX {
            Err((first, format!("segment claims {count} records")))
        } else {
            Ok(count)
        }
    };
    let mut at = SEGMENT_HEADER_BYTES;
    let mut i = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let count = match &header {
            Err(e) => {
                failed = true;
                return Some(Err(e.clone()));
            }
            Ok(c) => *c,
        };
        if i == count {
            if at != bytes.len() {
                failed = true;
                return Some(Err((
                    first + count as u64 - 1,
                    format!("{} bytes after the last record", bytes.len() - at),
                )));
            }
            return None;
        }
        let position = first + i as u64;
        let fail = |reason: &str| Some(Err((position, reason.to_string())));
        let Some(h) = bytes.get(at..at + RECORD_HEADER_BYTES) else {
            failed = true;
            return fail("segment ends inside a record header");
        };
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&h[4..36]);
        let start = at + RECORD_HEADER_BYTES;
        let Some(body) = bytes.get(start..start.saturating_add(len)) else {
            failed = true;
            return fail("record length runs past the segment");
        };
        at = start + len;
        i += 1;
        Some(Ok(RawRecord { hash, body }))
    })
}

/// All records of a stored segment, or the first damage found.
pub fn split_segment(first: u64, bytes: &[u8]) -> Result<Vec<RawRecord<'_>>, (u64, String)> {
    segment_records(first, bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(position: u64, data: &[u8]) -> RecordBody<'_> {
        RecordBody {
            position,
            stream: "community-1",
            revision: position - 1,
            event_id: [position as u8; 16],
            event_type: "CommunityCreated",
            is_json: 1,
            data,
            metadata: b"",
            recorded_ns: 10,
            occurred_ns: 5,
        }
    }

    #[test]
    fn segments_round_trip_and_split_at_their_limits() {
        let mut w = SegmentWriter::default();
        let mut prev = [0u8; 32];
        let data = b"{\"a\":1}".to_vec();
        for p in 1..=3000u64 {
            prev = w.push(&body(p, &data), &prev);
        }
        let segs = w.finish();
        assert!(segs.len() >= 3);
        for (first, bytes) in &segs {
            let n = split_segment(*first, bytes).unwrap().len();
            assert!(n <= SEGMENT_RECORDS_MAX && bytes.len() <= SEGMENT_BYTES_TARGET);
        }
        // every segment but the last is full: one more record would not have fitted
        for pair in segs.windows(2) {
            let count = (pair[1].0 - pair[0].0) as usize;
            let per_record = (pair[0].1.len() - SEGMENT_HEADER_BYTES) / count;
            assert!(
                count == SEGMENT_RECORDS_MAX || pair[0].1.len() + per_record > SEGMENT_BYTES_TARGET
            );
        }
        // a record larger than the target gets a segment of its own
        let mut w = SegmentWriter::default();
        let big = vec![b'x'; SEGMENT_BYTES_TARGET + 10];
        let p1 = w.push(&body(1, &data), &[0u8; 32]);
        let p2 = w.push(&body(2, &big), &p1);
        w.push(&body(3, &data), &p2);
        let firsts: Vec<u64> = w.finish().iter().map(|s| s.0).collect();
        assert_eq!(firsts, [1, 2, 3]);
        let mut prev = [0u8; 32];
        let mut n = 0;
        for (first, bytes) in &segs {
            for (i, r) in split_segment(*first, bytes).unwrap().iter().enumerate() {
                let b = decode_body(r.body).unwrap();
                assert_eq!(b, body(first + i as u64, &data));
                assert_eq!(chain_hash(&prev, r.body), r.hash);
                prev = r.hash;
                n += 1;
            }
        }
        assert_eq!(n, 3000);
    }

    #[test]
    fn rollback_forgets_records_across_a_segment_boundary() {
        let data = b"{}".to_vec();
        let mut prev = [0u8; 32];
        let mut w = SegmentWriter::default();
        for p in 1..=100u64 {
            prev = w.push(&body(p, &data), &prev);
        }
        let mark = w.mark();
        let mut reference = SegmentWriter::default();
        let mut rprev = [0u8; 32];
        for p in 1..=100u64 {
            rprev = reference.push(&body(p, &data), &rprev);
        }
        let mut scratch = prev;
        for p in 101..=200u64 {
            scratch = w.push(&body(p, &data), &scratch);
        }
        w.rollback(&mark);
        for p in 101..=103u64 {
            prev = w.push(&body(p, &data), &prev);
            rprev = reference.push(&body(p, &data), &rprev);
        }
        assert_eq!(w.finish(), reference.finish());
    }

    #[test]
    fn canonical_bytes_are_fixed_width_little_endian() {
        let mut out = Vec::new();
        body(1, b"x").encode_into(&mut out);
        assert_eq!(&out[0..8], &1u64.to_le_bytes());
        assert_eq!(&out[8..16], &11u64.to_le_bytes());
        assert_eq!(&out[16..27], b"community-1");
    }
}
