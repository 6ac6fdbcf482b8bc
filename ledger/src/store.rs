//! The ledger handle: opening the file, recovering the writer's state, and the read side.

use crate::clock::{Clock, SystemClock};
use crate::error::{OpenError, ReadError, StorageError};
use crate::event::{Position, RecordedEvent, Timestamp};
use crate::limits::Limits;
use crate::merkle::{self, Frontier, Hash, Subtrees};
use crate::record::{check_record, decode_at, segment_records, split_segment, RawRecord};
use crate::tables::*;
use crate::writer::{self, WriterState};
use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// How a ledger is opened.
#[derive(Clone)]
pub struct Options {
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    /// redb page cache, in bytes.
    pub cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

pub(crate) struct Inner {
    /// Shared with the writer's open transaction, which may outlive this (see `writer::Open`).
    pub db: Arc<Database>,
    pub path: PathBuf,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    pub published: Arc<writer::Published>,
    pub writer: Mutex<Option<writer::Handle>>,
    /// Shared with the writer, which counts its last redb commit after letting go of this.
    pub stats: Arc<crate::stats::Counters>,
}

/// An open ledger. Cheap to clone; all clones share one file and one writer.
#[derive(Clone)]
pub struct Ledger {
    pub(crate) inner: Arc<Inner>,
}

/// What a checkpoint commits to: the first `size` events and the Merkle root over them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub size: u64,
    #[serde(with = "crate::hex32")]
    pub root: Hash,
}

/// What [`Ledger::compact`] did: the ledger file's size before and after, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compacted {
    pub before: u64,
    pub after: u64,
}

impl Ledger {
    /// Opens the ledger at `path`, creating it if it does not exist.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Ledger, OpenError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        let storage = |e: &dyn std::fmt::Display| storage_error(&path, e);
        if !path.exists() {
            create_file(&path).map_err(|e| storage(&e))?;
        }
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(&path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse {
                    path: shown.clone(),
                },
                e => storage(&e),
            })?;
        remove_half_made(&path);
        init_tables(&db).map_err(|e| storage(&e))?;
        let found = read_format(&db).map_err(|e| storage(&e))?;
        if found != LEDGER_FORMAT {
            return Err(OpenError::UnsupportedFormat {
                path: shown,
                found,
                supported: LEDGER_FORMAT,
            });
        }
        let mut state = recover_state(&db).map_err(|(position, reason)| {
            // Name the first damaged record, not wherever recovery happened to stumble.
            let first = crate::verify::walk(&db, 0, None, &mut |_, _| {})
                .ok()
                .and_then(|r| r.problem);
            let (position, reason) = first.map_or((position, reason), |p| (p.position, p.reason));
            OpenError::Damaged {
                path: shown.clone(),
                position,
                reason,
            }
        })?;
        let published = Arc::new(writer::Published::new(state.head));
        let inner = Arc::new(Inner {
            db: Arc::new(db),
            path,
            limits: options.limits,
            clock: options.clock,
            published,
            writer: Mutex::new(None),
            stats: Default::default(),
        });
        let wal_path = crate::wal::path_for(&inner.path);
        let (mut wal, frames) =
            crate::wal::Wal::open(wal_path.clone()).map_err(|d| OpenError::Damaged {
                path: wal_path.display().to_string(),
                position: state.head + 1,
                reason: format!("write-ahead log at byte {}: {}", d.offset, d.reason),
            })?;
        writer::replay(&inner, &mut state, frames, &mut wal).map_err(|(position, reason)| {
            OpenError::Damaged {
                path: wal_path.display().to_string(),
                position,
                reason,
            }
        })?;
        inner.published.answer(state.head);
        inner.published.made_visible(state.head);
        let handle = writer::spawn(Arc::downgrade(&inner), state, wal);
        *inner.writer.lock().expect("writer lock") = Some(handle);
        Ok(Ledger { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Rewrites the ledger file at `path` without the pages it no longer uses (those of
    /// removed snapshots, of tables rewritten, of transactions long done), so that the file
    /// shrinks: redb reuses free pages but never gives them back on its own. The ledger is
    /// opened first (so a write-ahead log left by a crash is replayed and emptied), closed,
    /// and compacted alone: it must not be open anywhere else (redb's lock refuses it). What
    /// the ledger holds is unchanged: the same records, hashes and snapshots.
    pub fn compact(path: impl AsRef<Path>, options: Options) -> Result<Compacted, OpenError> {
        let path = path.as_ref();
        let failed = |e: &dyn std::fmt::Display| storage_error(path, e);
        let size = || {
            std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|e| failed(&e))
        };
        let cache_bytes = options.cache_bytes;
        let l = Ledger::open(path, options)?;
        l.close();
        drop(l);
        let before = size()?;
        let mut db = Database::builder()
            .set_cache_size(cache_bytes)
            .open(path)
            .map_err(|e| failed(&e))?;
        while db.compact().map_err(|e| failed(&e))? {}
        drop(db);
        Ok(Compacted {
            before,
            after: size()?,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The position of the last event committed (durable, and answered to its writer; a read
    /// begun now sees it) — 0 when the log is empty.
    pub fn head(&self) -> Position {
        self.inner.published.answered()
    }

    /// What the writer has done since the ledger was opened. Replaying the write-ahead log
    /// when it opens counts as a checkpoint; the events it replays are not counted again.
    pub fn writer_stats(&self) -> crate::WriterStats {
        self.inner.stats.read()
    }

    /// Notified after every commit with the new head (what is read after the notice holds it).
    pub fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.published.head.subscribe()
    }

    /// A read transaction that sees every write answered before the call.
    pub(crate) fn read_txn(&self) -> Result<ReadTransaction, StorageError> {
        self.inner.published.settle();
        Ok(self.inner.db.begin_read()?)
    }

    /// Stops the writer after the requests already queued; later writes fail with `Closed`.
    pub fn close(&self) {
        let handle = self.inner.writer.lock().expect("writer lock").take();
        self.inner.finish(handle);
    }

    /// The event at `position`, if there is one.
    pub fn event_at(&self, position: Position) -> Result<Option<RecordedEvent>, ReadError> {
        Ok(self.events_at(&[position])?.pop().flatten())
    }

    /// The events at `positions`, in their order, read in one transaction (`None` where the
    /// log has no such position). Ascending positions read each segment once.
    pub fn events_at(
        &self,
        positions: &[Position],
    ) -> Result<Vec<Option<RecordedEvent>>, ReadError> {
        let txn = self.read_txn()?;
        let mut segments = SegmentCache::new(&txn)?;
        let size = segments.size()?;
        positions
            .iter()
            .map(|&p| {
                if p == 0 || p > size {
                    Ok(None)
                } else {
                    segments.event(p).map(Some)
                }
            })
            .collect()
    }

    /// The state of a stream as the ledger tracks it.
    pub fn stream_record(&self, stream: &str) -> Result<Option<StreamRecord>, ReadError> {
        let txn = self.read_txn()?;
        let t = txn.open_table(STREAMS).map_err(StorageError::from)?;
        load_stream(&t, stream)
    }

    /// The checkpoint over the whole log as committed now.
    pub fn checkpoint(&self) -> Result<Checkpoint, ReadError> {
        let txn = self.read_txn()?;
        let size = TreeReader::new(&txn)?.size()?;
        checkpoint_of(&txn, size)
    }

    /// The last position whose recorded time is at or before `at` (0 if none).
    pub fn position_at_time(&self, at: Timestamp) -> Result<Position, ReadError> {
        let txn = self.read_txn()?;
        let t = txn.open_table(BY_TIME).map_err(StorageError::from)?;
        let next = t
            .range(at.0.saturating_add(1)..)
            .map_err(StorageError::from)?
            .next()
            .transpose()
            .map_err(StorageError::from)?;
        match next {
            Some((_, first)) => Ok(first.value().saturating_sub(1)),
            None => Ok(TreeReader::new(&txn)?.size()?),
        }
    }

    /// The latest snapshot stored at or before `position`: its position and bytes.
    pub fn snapshot_at_or_before(
        &self,
        position: Position,
    ) -> Result<Option<(Position, Vec<u8>)>, ReadError> {
        let txn = self.read_txn()?;
        let t = txn.open_table(SNAPSHOTS).map_err(StorageError::from)?;
        last_at_or_before(&t, position)
    }

    /// Positions of the stored snapshots and their sizes in bytes.
    pub fn snapshots(&self) -> Result<Vec<(Position, u64)>, ReadError> {
        let txn = self.read_txn()?;
        let t = txn.open_table(SNAPSHOT_SIZES).map_err(StorageError::from)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(StorageError::from)? {
            let (k, v) = item.map_err(StorageError::from)?;
            out.push((k.value(), v.value()));
        }
        Ok(out)
    }

    /// The last position the tag index covers.
    pub fn tags_watermark(&self) -> Result<Position, ReadError> {
        let txn = self.read_txn()?;
        let meta = txn.open_table(META).map_err(StorageError::from)?;
        Ok(tags_watermark(&meta).map_err(StorageError::from)?)
    }

    /// Positions in `from..=to` that carry `tag`, in order.
    pub fn tagged(
        &self,
        tag: &str,
        from: Position,
        to: Position,
    ) -> Result<Vec<Position>, ReadError> {
        let txn = self.read_txn()?;
        let t = txn.open_table(TAG_PIECES).map_err(StorageError::from)?;
        let mut out = Vec::new();
        if from > to {
            return Ok(out);
        }
        // The piece that may hold `from`: the last one starting at or before it.
        let start = t
            .range((tag, 0)..=(tag, from))
            .map_err(StorageError::from)?
            .next_back()
            .transpose()
            .map_err(StorageError::from)?
            .map_or(from, |(k, _)| k.value().1);
        for item in t
            .range((tag, start)..=(tag, to))
            .map_err(StorageError::from)?
        {
            let (k, v) = item.map_err(StorageError::from)?;
            let piece = v.value();
            if piece.len() % 8 != 0 {
                return Err(StorageError(format!(
                    "the tag index piece ('{tag}', {}) has {} bytes, not a whole number of \
                     positions: the file is damaged",
                    k.value().1,
                    piece.len()
                ))
                .into());
            }
            out.extend(
                piece
                    .chunks_exact(8)
                    .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .filter(|p| (from..=to).contains(p)),
            );
        }
        Ok(out)
    }

    pub(crate) fn tree_reader(txn: &ReadTransaction) -> Result<TreeReader, ReadError> {
        TreeReader::new(txn)
    }
}

impl Inner {
    /// Stops the writer and makes everything durable in redb (emptying the write-ahead log).
    fn finish(&self, handle: Option<writer::Handle>) {
        if let Some(mut wal) = handle.and_then(writer::Handle::stop) {
            // Should this fail, the write-ahead log still holds every commit for the next open.
            // Once redb holds everything, the log is emptied (no new generation first: no file
            // of zeros written ahead stays behind a closed ledger).
            if wal.len() == 0 || writer::make_durable(self).is_ok() {
                let _ = wal.clear();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let handle = self.writer.get_mut().ok().and_then(Option::take);
        self.finish(handle);
    }
}

/// The checkpoint of the first `size` events as `txn` sees the log.
pub(crate) fn checkpoint_of(txn: &ReadTransaction, size: u64) -> Result<Checkpoint, ReadError> {
    let mut tree = TreeReader::new(txn)?;
    let root = Frontier::from_source(&mut tree, size)?.root();
    Ok(Checkpoint { size, root })
}

/// A ledger file that cannot be opened, created or compacted, and why.
fn storage_error(path: &Path, e: &dyn std::fmt::Display) -> OpenError {
    OpenError::Storage {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Makes a new, empty ledger file at `path` as one step: the file is made and its tables
/// committed under a name of this process's own beside `path` (`.NAME.new-PID`), then linked
/// to `path` (which fails if another process made `path` meanwhile: that one is then used).
/// redb writes a new file's header in several writes, so a process killed while making the
/// file in place left a file no open would take ("not a redb database"; `ledger/tests/
/// crash.rs` met it about once in a hundred runs under load). Killed now, it leaves at most
/// the file under the other name, which nothing reads and the next open removes.
fn create_file(path: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let name = path
        .file_name()
        .ok_or("a ledger path names a file")?
        .to_string_lossy();
    let making = path.with_file_name(format!(".{name}.new-{}", std::process::id()));
    let _ = std::fs::remove_file(&making);
    {
        let db = Database::create(&making)?;
        init_tables(&db)?;
    }
    match std::fs::hard_link(&making, path) {
        Ok(()) => std::fs::remove_file(&making)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::remove_file(&making)?,
        // A file system without hard links: moved into place instead, unless another process
        // made the ledger meanwhile.
        Err(_) if path.exists() => std::fs::remove_file(&making)?,
        Err(_) => std::fs::rename(&making, path)?,
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Removes the files that creations of the ledger at `path` left when killed midway
/// (`.NAME.new-PID`, see [`create_file`]) by processes no longer running. A live process's file
/// is its creation in progress, and is left to it. Nothing here can fail an open: a file that
/// cannot be removed stays.
fn remove_half_made(path: &Path) {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!(".{name}.new-");
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let pid = file
            .to_str()
            .and_then(|f| f.strip_prefix(prefix.as_str()))
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !running(pid)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process `pid` is running (asked with signal 0, which sends nothing). Where that
/// cannot be asked, every process is taken to be running.
#[cfg(target_os = "linux")]
fn running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let sent = unsafe { libc::kill(pid, 0) };
    sent == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(target_os = "linux"))]
fn running(_: u32) -> bool {
    true
}

fn init_tables(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        if meta.get(META_FORMAT)?.is_none() {
            meta.insert(META_FORMAT, LEDGER_FORMAT.to_le_bytes().as_slice())?;
            meta.insert(META_NEXT_STREAM_ID, 1u64.to_le_bytes().as_slice())?;
        }
        txn.open_table(LOG)?;
        txn.open_table(STREAMS)?;
        txn.open_table(STREAM_INDEX)?;
        txn.open_table(MERKLE)?;
        txn.open_table(BY_TIME)?;
        txn.open_table(SNAPSHOTS)?;
        txn.open_table(TAG_PIECES)?;
        // The tag index of earlier builds: derived, and caught up afresh in `tag_pieces`.
        if txn.delete_table(OLD_TAGS)? {
            meta.remove(META_OLD_TAGS_WATERMARK)?;
        }
        if meta.get(META_SNAPSHOT_SIZES)?.is_none() {
            // Made before snapshot sizes were kept: list the stored snapshots once.
            let snapshots = txn.open_table(SNAPSHOTS)?;
            let mut sizes = txn.open_table(SNAPSHOT_SIZES)?;
            for item in snapshots.iter()? {
                let (k, v) = item?;
                sizes.insert(k.value(), v.value().len() as u64)?;
            }
            meta.insert(META_SNAPSHOT_SIZES, [1u8].as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

fn read_format(db: &Database) -> Result<u32, redb::Error> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let v = meta.get(META_FORMAT)?.map(|g| g.value().to_vec());
    Ok(v.and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0))
}

fn recover_state(db: &Database) -> Result<WriterState, (Position, String)> {
    let err0 = |e: &dyn std::fmt::Display| (0u64, e.to_string());
    let txn = db.begin_read().map_err(|e| err0(&e))?;
    let meta = txn.open_table(META).map_err(|e| err0(&e))?;
    let next_stream_id = meta
        .get(META_NEXT_STREAM_ID)
        .map_err(|e| err0(&e))?
        .and_then(|g| g.value().try_into().ok())
        .map_or(1, u64::from_le_bytes);
    let tags_watermark = tags_watermark(&meta).map_err(|e| err0(&e))?;
    let mut tree = TreeReader::new(&txn).map_err(|e| err0(&e))?;
    let head = tree.size().map_err(|e| err0(&e))?;
    check_tail(&tree.segments.log)?;
    let (last_hash, last_recorded) = if head == 0 {
        ([0u8; 32], i64::MIN)
    } else {
        let e = tree
            .segments
            .event(head)
            .map_err(|e| (head, e.to_string()))?;
        (e.hash, e.recorded.0)
    };
    let frontier = Frontier::from_source(&mut tree, head).map_err(|e| (head, e.to_string()))?;
    Ok(WriterState {
        head,
        last_hash,
        frontier,
        last_recorded,
        next_stream_id,
        tags_watermark,
    })
}

/// The last position the tag index covers (0: none).
fn tags_watermark(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Position, redb::StorageError> {
    Ok(meta
        .get(META_TAG_PIECES_WATERMARK)?
        .and_then(|g| g.value().try_into().ok())
        .map_or(0, u64::from_le_bytes))
}

/// Checks every record of the last segment (the one a crash could have touched last), so that
/// the writer never chains onto a damaged record.
fn check_tail(log: &ReadOnlyTable<u64, &'static [u8]>) -> Result<(), (Position, String)> {
    let err = |e: &dyn std::fmt::Display| (0u64, e.to_string());
    let Some((k, v)) = log.last().map_err(|e| err(&e))? else {
        return Ok(());
    };
    let first = k.value();
    let mut prev = match first {
        1 => [0u8; 32],
        _ => {
            let (pfirst, pbytes) = last_at_or_before(log, first - 1)
                .map_err(|e| err(&e))?
                .ok_or((first - 1, "no segment holds this position".to_string()))?;
            let records = split_segment(pfirst, &pbytes)?;
            records
                .last()
                .map(|r| r.hash)
                .ok_or((first - 1, "empty segment".to_string()))?
        }
    };
    for (i, raw) in segment_records(first, v.value()).enumerate() {
        let raw = raw?;
        let position = first + i as u64;
        check_record(&prev, position, &raw).map_err(|reason| (position, reason))?;
        prev = raw.hash;
    }
    Ok(())
}

pub(crate) fn load_stream(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    stream: &str,
) -> Result<Option<StreamRecord>, ReadError> {
    match t.get(stream).map_err(StorageError::from)? {
        None => Ok(None),
        Some(g) => StreamRecord::decode(g.value()).map(Some).map_err(|reason| {
            ReadError::Storage(StorageError(format!("stream '{stream}': {reason}")))
        }),
    }
}

/// The last entry of `t` whose key is at or before `key`: for the log, the segment that holds
/// position `key`.
pub(crate) fn last_at_or_before(
    t: &impl ReadableTable<u64, &'static [u8]>,
    key: u64,
) -> Result<Option<(u64, Vec<u8>)>, ReadError> {
    let found = t
        .range(..=key)
        .map_err(StorageError::from)?
        .next_back()
        .transpose()
        .map_err(StorageError::from)?;
    Ok(found.map(|(k, v)| (k.value(), v.value().to_vec())))
}

/// The segment last read, so that neighbouring positions cost one lookup.
pub(crate) struct SegmentCache {
    pub log: ReadOnlyTable<u64, &'static [u8]>,
    cached: Option<(u64, Vec<u8>)>,
}

impl SegmentCache {
    pub fn new(txn: &ReadTransaction) -> Result<Self, ReadError> {
        Ok(SegmentCache {
            log: txn.open_table(LOG).map_err(StorageError::from)?,
            cached: None,
        })
    }

    /// Events in the log: the last position.
    pub fn size(&self) -> Result<u64, ReadError> {
        let last = self.log.last().map_err(StorageError::from)?;
        let Some((k, v)) = last else { return Ok(0) };
        let first = k.value();
        Ok(first + segment_len(v.value()) - 1)
    }

    fn load(&mut self, position: Position) -> Result<(u64, &[u8]), ReadError> {
        let hit = matches!(&self.cached, Some((first, bytes))
            if *first <= position && position < *first + segment_len(bytes));
        if !hit {
            self.cached = last_at_or_before(&self.log, position)?;
        }
        let (first, bytes) = self.cached.as_ref().ok_or(ReadError::Corrupt {
            position,
            reason: "no segment holds this position".into(),
        })?;
        Ok((*first, bytes))
    }

    fn raw(&mut self, position: Position) -> Result<RawRecord<'_>, ReadError> {
        let (first, bytes) = self.load(position)?;
        let records = split_segment(first, bytes)
            .map_err(|(position, reason)| ReadError::Corrupt { position, reason })?;
        records
            .get((position - first) as usize)
            .copied()
            .ok_or(ReadError::Corrupt {
                position,
                reason: "missing from its segment".into(),
            })
    }

    pub fn record_hash(&mut self, position: Position) -> Result<Hash, ReadError> {
        Ok(self.raw(position)?.hash)
    }

    pub fn event(&mut self, position: Position) -> Result<RecordedEvent, ReadError> {
        let raw = self.raw(position)?;
        let body = decode_at(raw.body, position)
            .map_err(|reason| ReadError::Corrupt { position, reason })?;
        Ok(body.to_event(raw.hash))
    }

    /// The canonical body bytes and chain hash of a record, and the hash before it.
    pub fn raw_owned(&mut self, position: Position) -> Result<(Hash, Vec<u8>, Hash), ReadError> {
        let prev = if position > 1 {
            self.raw(position - 1)?.hash
        } else {
            [0u8; 32]
        };
        let raw = self.raw(position)?;
        Ok((prev, raw.body.to_vec(), raw.hash))
    }
}

/// Reads complete subtrees from the `merkle` table, recomputing unstored levels from the
/// nearest stored level below and leaves from the log.
pub(crate) struct TreeReader {
    pub segments: SegmentCache,
    merkle: ReadOnlyTable<u64, &'static [u8; 32]>,
}

impl TreeReader {
    fn new(txn: &ReadTransaction) -> Result<Self, ReadError> {
        Ok(TreeReader {
            segments: SegmentCache::new(txn)?,
            merkle: txn.open_table(MERKLE).map_err(StorageError::from)?,
        })
    }

    pub fn size(&self) -> Result<u64, ReadError> {
        self.segments.size()
    }
}

pub(crate) fn segment_len(bytes: &[u8]) -> u64 {
    bytes.get(1..5).map_or(0, |b| {
        u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    })
}

impl Subtrees for TreeReader {
    type Error = ReadError;
    fn complete(&mut self, level: u32, index: u64) -> Result<Hash, ReadError> {
        if level == 0 {
            return Ok(merkle::leaf_hash(&self.segments.record_hash(index + 1)?));
        }
        if level % STORED_LEVEL_STEP == 0 {
            let stored = self
                .merkle
                .get(merkle_key(level, index))
                .map_err(StorageError::from)?;
            return stored.map(|g| *g.value()).ok_or(ReadError::Corrupt {
                position: (index << level) + 1,
                reason: format!("Merkle node level {level} index {index} missing"),
            });
        }
        let left = self.complete(level - 1, 2 * index)?;
        let right = self.complete(level - 1, 2 * index + 1)?;
        Ok(merkle::node_hash(&left, &right))
    }
}
