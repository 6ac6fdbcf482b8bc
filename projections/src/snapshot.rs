//! A world as bytes, to be kept beside the log so that replay need not start from nothing.
//! `version byte ‖ zstd frame of the bincode (standard configuration) of` the position, the
//! intended deployment (`state::DeploymentOut`), what each database of the actual deployment
//! changes from the intended one (`state::DbChangesOut`), and the backups; a value held in
//! several places (a member map, a community, a resource) is written once (see `shared`), and
//! what follows from the rest is not written. Versions 2 (an LZ4 block, its size first) and 3
//! (zstd), whose bincode writes every map in full, 4, which writes both deployments in full,
//! and 5, which writes where each resource is, are still read. A snapshot of another version,
//! or one that does not decode, is simply not used.

use crate::fold::World;
use crate::shared::Sharing;
use crate::state::{
    Backup, DbChangesIn, DbChangesInV5, DbChangesOut, Deployment, DeploymentIn, DeploymentOut,
};
use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use std::io::Read;

/// 1 was uncompressed bincode; 2 compressed it with LZ4; 3 with zstd, which writes a third of
/// LZ4's bytes on the same worlds (domain_bench, 1M events: 81 → 28 MB, 11.9% → 4.1% of the
/// ledger) at a similar replay time: member names repeat across mirrors and deployments,
/// further apart than LZ4 looks back. 4 writes each shared member map once.
/// 5 writes the actual deployment as its changes from the intended one, and reads it back
/// sharing the intended one's map nodes. 6 leaves out what follows from the rest: where each
/// resource is (`located`), rebuilt from the resources on reading, and the intended
/// deployment's mirrors that are what their apps copy of their communities, made again from
/// them (at 100,000 communities: 447.1 → 271.0 MB for 13 snapshots).
pub const SNAPSHOT_VERSION: u8 = 6;
const CHANGES_VERSION: u8 = 5;
const WHOLE_DEPLOYMENTS_VERSION: u8 = 4;
const ZSTD_UNSHARED_VERSION: u8 = 3;
const LZ4_VERSION: u8 = 2;
/// zstd's level: 3 is its default, fast to write; higher levels gained little here.
const ZSTD_LEVEL: i32 = 3;
/// How far back zstd looks for repeats (2^this bytes, long-distance matching on): the actual
/// deployment repeats much of the intended one (each writes its maps in full) tens of MB
/// further on, past level 3's window of 2 MiB. At 100,000 communities a snapshot went from 83.0 to 64.3 MB,
/// written and read as fast. 27 is the largest window a decoder takes without being told.
/// (Version 5 no longer writes the actual deployment in full; the window still finds repeats
/// between communities.)
const ZSTD_WINDOW_LOG: u32 = 27;

/// Serialised straight into the compressor, through a small buffer: the uncompressed whole
/// (142 MB at 100,000 communities) is never in memory, nor copied as it grows. With a second
/// core, zstd compresses on a worker thread of its own while this one serialises.
pub fn encode(w: &World) -> Vec<u8> {
    let mut z = zstd::stream::write::Encoder::new(vec![SNAPSHOT_VERSION], ZSTD_LEVEL)
        .expect("a compressor at a valid level");
    z.long_distance_matching(true)
        .and_then(|()| z.window_log(ZSTD_WINDOW_LOG))
        .expect("valid compression parameters");
    if std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
        // Refused only by a zstd built without threads: then it compresses on this one.
        let _ = z.multithread(1);
    }
    {
        let mut buffered = std::io::BufWriter::with_capacity(ENCODE_BUFFER_BYTES, &mut z);
        let _sharing = Sharing::writing();
        let stored = Written {
            position: w.position,
            intended: w.intended.stored(),
            actual: w.actual.changes_from(&w.intended),
            backups: &w.backups,
        };
        bincode::serde::encode_into_std_write(stored, &mut buffered, bincode::config::standard())
            .expect("a world serialises to memory");
        std::io::Write::flush(&mut buffered).expect("compressing to memory");
    }
    z.finish().expect("compressing to memory")
}

/// What the serialiser hands the compressor at a time (it writes a few bytes per call).
const ENCODE_BUFFER_BYTES: usize = 128 * 1024;

/// A world as version 6 writes it.
#[derive(Serialize)]
struct Written<'a> {
    position: u64,
    intended: DeploymentOut<'a>,
    actual: Vec<DbChangesOut<'a>>,
    backups: &'a OrdMap<String, Backup>,
}

/// [`Written`] as read.
#[derive(Deserialize)]
struct Stored {
    position: u64,
    intended: DeploymentIn,
    actual: Vec<DbChangesIn>,
    backups: OrdMap<String, Backup>,
}

impl Stored {
    fn world(self) -> Result<World, String> {
        let intended = Deployment::stored_as(self.intended)
            .map_err(|e| format!("snapshot does not decode: {e}"))?;
        world_of(self.position, intended, self.actual, self.backups)
    }
}

/// A world as version 5 wrote it: the intended deployment with `located`, and the changes to
/// it in each database of the actual one.
#[derive(Deserialize)]
struct StoredV5 {
    position: u64,
    intended: Deployment,
    actual: Vec<DbChangesInV5>,
    backups: OrdMap<String, Backup>,
}

impl StoredV5 {
    fn world(self) -> Result<World, String> {
        let actual = self.actual.into_iter().map(DbChangesIn::from).collect();
        world_of(self.position, self.intended, actual, self.backups)
    }
}

/// The world of an intended deployment and the changes to it that make the actual one.
fn world_of(
    position: u64,
    intended: Deployment,
    actual: Vec<DbChangesIn>,
    backups: OrdMap<String, Backup>,
) -> Result<World, String> {
    Ok(World {
        position,
        actual: Deployment::with_changes(&intended, actual)
            .map_err(|e| format!("snapshot does not decode: {e}"))?,
        intended,
        backups,
        ..World::default()
    })
}

pub fn decode(bytes: &[u8]) -> Result<World, String> {
    match bytes.split_first() {
        Some((
            &(SNAPSHOT_VERSION
            | CHANGES_VERSION
            | WHOLE_DEPLOYMENTS_VERSION
            | ZSTD_UNSHARED_VERSION),
            rest,
        )) => {
            // Decompressed as it is decoded: the whole decompressed snapshot (~1.7 times the
            // compressed one) is never in memory beside the world it becomes.
            let unpacked = zstd::stream::read::Decoder::with_buffer(rest)
                .map_err(|e| format!("snapshot does not decompress: {e}"))?;
            let version = bytes[0];
            let _sharing = (version != ZSTD_UNSHARED_VERSION).then(Sharing::reading);
            std::thread::scope(|s| {
                let chunks = unpacking(s, unpacked);
                match version {
                    SNAPSHOT_VERSION => decode_from::<Stored>(chunks)?.world(),
                    CHANGES_VERSION => decode_from::<StoredV5>(chunks)?.world(),
                    _ => decode_from::<World>(chunks),
                }
            })
        }
        Some((&LZ4_VERSION, rest)) => {
            let plain = lz4_flex::decompress_size_prepended(rest)
                .map_err(|e| format!("snapshot does not decompress: {e}"))?;
            decode_from::<World>(plain.as_slice())
        }
        Some((v, _)) => Err(format!(
            "snapshot version {v}, this build reads {LZ4_VERSION} to {SNAPSHOT_VERSION}"
        )),
        None => Err("empty snapshot".into()),
    }
}

/// Decompressed bytes handed over at a time, and chunks in flight at most: about a megabyte
/// between the two threads.
const CHUNK_BYTES: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// Decompresses on a thread of its own while this one decodes, so that neither waits for the
/// other on a machine with a second core (decompression is about a tenth of the work; the rest
/// is building the world). The bytes come back in order through a bounded channel; the helper
/// stops at the end, at an error (which the reader then returns), or when the reader is
/// dropped.
fn unpacking<'scope, R: Read + Send + 'scope>(
    s: &'scope std::thread::Scope<'scope, '_>,
    mut unpacked: R,
) -> Chunks {
    let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    s.spawn(move || loop {
        // Up to a chunk's worth; on an error, what was read before it stays in `chunk`.
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        let read = (&mut unpacked)
            .take(CHUNK_BYTES as u64)
            .read_to_end(&mut chunk);
        let last = chunk.len() < CHUNK_BYTES || read.is_err();
        // The bytes read before an error go first, then the error.
        let mut sent = if chunk.is_empty() {
            Ok(())
        } else {
            tx.send(Ok(chunk))
        };
        if let (Ok(()), Err(e)) = (&sent, read) {
            sent = tx.send(Err(e));
        }
        if last || sent.is_err() {
            break;
        }
    });
    Chunks {
        rx,
        chunk: Vec::new(),
        at: 0,
    }
}

/// The reading end of [`unpacking`].
struct Chunks {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(next) => {
                    self.chunk = next?;
                    self.at = 0;
                }
                // The helper has finished: everything was handed over.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }

    /// The decoder reads a few bytes at a time: those come straight from the chunk at hand.
    fn read_exact(&mut self, mut buf: &mut [u8]) -> std::io::Result<()> {
        if let Some(here) = self.chunk.get(self.at..self.at + buf.len()) {
            buf.copy_from_slice(here);
            self.at += buf.len();
            return Ok(());
        }
        while !buf.is_empty() {
            match self.read(buf)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }
}

/// The value in `reader`, which must end with it.
fn decode_from<T: serde::de::DeserializeOwned>(
    mut reader: impl std::io::Read,
) -> Result<T, String> {
    let w: T = bincode::serde::decode_from_std_read(&mut reader, bincode::config::standard())
        .map_err(|e| format!("snapshot does not decode: {e}"))?;
    let mut after = Vec::new();
    match reader.read_to_end(&mut after) {
        Ok(0) => Ok(w),
        Ok(n) => Err(format!("bytes after the snapshot: {n}")),
        Err(e) => Err(format!("snapshot does not decompress: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::tests::{add, recorded, with_files_and_forum};
    use crate::Database;
    use std::sync::Arc;
    use uuid::Uuid;

    /// Two communities, each with Files and Forums mirroring its members, and a member added.
    fn world() -> World {
        let mut events = Vec::new();
        for n in 1..=2u128 {
            events.extend(with_files_and_forum(n));
            events.push(add(Uuid::from_u128(n), &format!("member{n}")));
        }
        World::replay(&recorded(events))
    }

    /// Every members map of community `n`, in both deployments.
    fn maps(w: &World, n: u128) -> Vec<crate::state::Members> {
        let c = Uuid::from_u128(n);
        let mut out = Vec::new();
        for d in [&w.intended, &w.actual] {
            out.push(d.communities()[&c].members.clone());
            for db in [Database::Files, Database::Forums] {
                out.extend(
                    d.db(db)
                        .resources_of(c)
                        .filter_map(|r| r.mirror.members.clone()),
                );
            }
        }
        out
    }

    #[test]
    fn round_trip_keeps_shared_values_shared() {
        let w = world();
        let bytes = encode(&w);
        assert_eq!(bytes[0], SNAPSHOT_VERSION);
        let back = decode(&bytes).unwrap();
        assert_eq!(back, w);
        // The index of which databases hold each community's resources is rebuilt on reading.
        assert_eq!(back.actual.holding(Uuid::from_u128(1)).count(), 2);
        assert!(back.actual.index_agrees() && back.intended.index_agrees());
        for n in 1..=2 {
            let m = maps(&back, n);
            assert_eq!(m.len(), 6);
            assert!(m.iter().all(|x| Arc::ptr_eq(x, &m[0])), "community {n}");
            assert_eq!(m[0].len(), 2);
        }
        assert!(!Arc::ptr_eq(&maps(&back, 1)[0], &maps(&back, 2)[0]));
        // Each community and each resource is one value, held by both deployments.
        for (id, c) in back.intended.communities() {
            assert!(Arc::ptr_eq(c, &back.actual.communities()[id]));
        }
        for db in [Database::Files, Database::Forums] {
            let i: Vec<_> = back.intended.db(db).resources().collect();
            let a: Vec<_> = back.actual.db(db).resources().collect();
            assert_eq!((i.len(), a.len()), (2, 2));
            for r in &i {
                assert!(a.iter().any(|x| std::ptr::eq(*r, *x)), "{db:?}");
            }
        }
        // Written once each: smaller than every copy written in full.
        let plain = bincode::serde::encode_to_vec(&w, bincode::config::standard()).unwrap();
        let shared = {
            let _s = Sharing::writing();
            bincode::serde::encode_to_vec(&w, bincode::config::standard()).unwrap()
        };
        assert!(
            shared.len() < plain.len(),
            "{} vs {}",
            shared.len(),
            plain.len()
        );
    }

    /// Intended resources whose mirrors are what their apps copy of their communities are
    /// written without them and read back with them made again; one whose mirror is not (made
    /// here: the intended deployment always agrees) is written in full and read back as it was.
    #[test]
    fn mirrors_that_follow_from_their_communities_are_left_out() {
        let w = world();
        let agreeing = encode(&w);
        assert_eq!(decode(&agreeing).unwrap(), w);
        let mut stale = w.clone();
        let mut r = stale
            .intended
            .db(Database::Files)
            .resources_of(Uuid::from_u128(1))
            .next()
            .cloned()
            .expect("community 1 has a Files resource");
        r.mirror.name = "A name from before".into();
        stale
            .intended
            .db_mut(Database::Files)
            .insert_resource(r.clone());
        assert_ne!(stale, w);
        let back = decode(&encode(&stale)).unwrap();
        assert_eq!(back, stale);
        let got = back.intended.db(Database::Files).resources_of(r.community);
        assert_eq!(
            got.map(|x| &x.mirror.name).collect::<Vec<_>>(),
            [&r.mirror.name]
        );
        // Each community's name is written once, in the Communities database, not again in
        // the mirrors of its Files and Forums resources; the stale name is written.
        let count = |bytes: &[u8], text: &str| {
            let raw = zstd::stream::decode_all(&bytes[1..]).unwrap();
            raw.windows(text.len())
                .filter(|x| *x == text.as_bytes())
                .count()
        };
        for (id, c) in w.intended.communities() {
            assert_eq!(count(&agreeing, &c.name), 1, "{id}");
        }
        assert_eq!(count(&encode(&stale), "A name from before"), 1);
    }

    #[test]
    fn a_resource_shares_its_widget_instance_with_its_community() {
        // So that `findings::holds` finds the widget by pointer: as folded (provisioned after
        // the widget was added) and as read back from a snapshot.
        let w = world();
        let back = decode(&encode(&w)).unwrap();
        for world in [&w, &back] {
            let mut seen = 0;
            for d in [&world.intended, &world.actual] {
                for db in [Database::Files, Database::Forums] {
                    for r in d.db(db).resources() {
                        let c = &d.communities()[&r.community];
                        let (key, _) = c.widgets.get_key_value(&r.instance).unwrap();
                        assert!(Arc::ptr_eq(key, &r.instance), "{}", r.object_id);
                        seen += 1;
                    }
                }
            }
            assert_eq!(seen, 8);
        }
    }

    #[test]
    fn unpacking_hands_over_every_byte_in_order_and_the_error_that_ends_them() {
        use std::io::Read;
        // Several chunks and a part of one, read back in pieces that straddle chunk ends.
        let bytes: Vec<u8> = (0..CHUNK_BYTES * 3 + 17).map(|i| (i % 251) as u8).collect();
        let back = std::thread::scope(|s| {
            let mut chunks = unpacking(s, bytes.as_slice());
            let mut back = Vec::new();
            let mut piece = [0u8; 1000];
            loop {
                let n = chunks.read(&mut piece).unwrap();
                if n == 0 {
                    break back;
                }
                back.extend_from_slice(&piece[..n]);
            }
        });
        assert_eq!(back, bytes);
        // The same with read_exact, whose pieces straddle chunk ends too; then the end.
        let back = std::thread::scope(|s| {
            let mut chunks = unpacking(s, bytes.as_slice());
            let mut back = vec![0u8; bytes.len()];
            for piece in back.chunks_mut(999) {
                chunks.read_exact(piece).unwrap();
            }
            let past = chunks.read_exact(&mut [0u8; 1]).unwrap_err();
            assert_eq!(past.kind(), std::io::ErrorKind::UnexpectedEof);
            back
        });
        assert_eq!(back, bytes);
        // A source that fails after a chunk and a half: the bytes before, then its error.
        let failing = bytes[..CHUNK_BYTES + CHUNK_BYTES / 2].chain(FailingRead);
        let (got, err) = std::thread::scope(|s| {
            let mut chunks = unpacking(s, failing);
            let mut got = Vec::new();
            let err = chunks.read_to_end(&mut got).unwrap_err();
            (got, err)
        });
        assert_eq!(got, bytes[..CHUNK_BYTES + CHUNK_BYTES / 2]);
        assert_eq!(err.to_string(), "the source broke");
        // A reader dropped early stops the helper (the scope would otherwise never end).
        std::thread::scope(|s| {
            let mut chunks = unpacking(s, std::io::repeat(7));
            let mut one = [0u8; 1];
            chunks.read_exact(&mut one).unwrap();
            assert_eq!(one, [7]);
        });
    }

    struct FailingRead;

    impl std::io::Read for FailingRead {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("the source broke"))
        }
    }

    /// `w` as version 4 wrote it.
    fn whole_deployments(w: &World) -> Vec<u8> {
        let plain = {
            let _sharing = Sharing::writing();
            bincode::serde::encode_to_vec(w, bincode::config::standard()).unwrap()
        };
        let mut v4 = vec![WHOLE_DEPLOYMENTS_VERSION];
        v4.extend(zstd::bulk::compress(&plain, ZSTD_LEVEL).unwrap());
        v4
    }

    /// `w` as version 5 wrote it: the intended deployment in full (`located` too), the actual
    /// one as its changes, `located`'s among them.
    fn changes_v5(w: &World) -> Vec<u8> {
        #[derive(Serialize)]
        struct WrittenV5<'a> {
            position: u64,
            intended: &'a Deployment,
            actual: Vec<crate::state::DbChangesOutV5<'a>>,
            backups: &'a OrdMap<String, Backup>,
        }
        let plain = {
            let _sharing = Sharing::writing();
            let v5 = WrittenV5 {
                position: w.position,
                intended: &w.intended,
                actual: w.actual.changes_from_v5(&w.intended),
                backups: &w.backups,
            };
            bincode::serde::encode_to_vec(v5, bincode::config::standard()).unwrap()
        };
        let mut v5 = vec![CHANGES_VERSION];
        v5.extend(zstd::bulk::compress(&plain, ZSTD_LEVEL).unwrap());
        v5
    }

    /// A world whose actual deployment differs from the intended one in every way a map entry
    /// can: a community and its Files resource only intended (made after the restored
    /// backups), a purged community's Files resource only actual (restored), the purged
    /// community itself different, a mirror a failed delivery left behind, and a queue.
    fn diverged() -> World {
        use crate::events::*;
        let mut events: Vec<DomainEvent> = (1..=40).flat_map(with_files_and_forum).collect();
        let backups = [
            (Database::Files, "files-1"),
            (Database::Communities, "comm-1"),
        ];
        for (database, label) in backups {
            events.push(DomainEvent::BackupTaken(BackupTaken {
                database,
                label: label.into(),
                actor: None,
            }));
        }
        let five = CommunityRef {
            community: Uuid::from_u128(5),
            actor: None,
        };
        events.push(DomainEvent::CommunityTrashed(five.clone()));
        events.push(DomainEvent::CommunityPurged(five));
        events.extend(with_files_and_forum(42));
        for (database, backup) in backups {
            events.push(DomainEvent::DatabaseRestored(DatabaseRestored {
                database,
                backup: backup.into(),
                actor: None,
            }));
        }
        events.extend(with_files_and_forum(41));
        events.push(add(Uuid::from_u128(41), "xavier"));
        events.push(add(Uuid::from_u128(3), "yvonne"));
        let mut recorded = recorded(events);
        let mut failure = recorded.last().unwrap().clone();
        failure.event = DomainEvent::DeliveryFailed(Delivery {
            community: Uuid::from_u128(3),
            app: crate::App::Forum,
            event: failure.id,
        });
        failure.position += 1;
        failure.id = Uuid::from_u128(10_000);
        recorded.push(failure);
        World::replay(&recorded)
    }

    #[test]
    fn the_actual_deployment_is_read_back_from_its_changes_sharing_the_intended_ones_nodes() {
        let w = diverged();
        for d in [Database::Communities, Database::Files, Database::Forums] {
            assert_ne!(w.actual.db(d), w.intended.db(d), "{d:?} should differ");
        }
        assert!(!w.actual.db(Database::Communities).queue.is_empty());
        let (five, forty_two) = (Uuid::from_u128(5), Uuid::from_u128(42));
        let files = |d: &Deployment, c: Uuid| d.db(Database::Files).held_by(c).len();
        assert_eq!((files(&w.intended, five), files(&w.actual, five)), (0, 1));
        assert_eq!(
            (files(&w.intended, forty_two), files(&w.actual, forty_two)),
            (1, 0)
        );
        assert!(!w.actual.communities().contains_key(&forty_two));
        let bytes = encode(&w);
        assert_eq!(bytes[0], SNAPSHOT_VERSION);
        let back = decode(&bytes).unwrap();
        assert_eq!(back, w);
        // The index of which databases hold each community's resources is as a fold left it.
        for c in (1..=42).map(Uuid::from_u128) {
            for (got, want) in [(&back.intended, &w.intended), (&back.actual, &w.actual)] {
                assert_eq!(
                    got.holding(c).collect::<Vec<_>>(),
                    want.holding(c).collect::<Vec<_>>(),
                    "{c}"
                );
            }
        }
        // A community the same in both deployments is one value.
        let one = Uuid::from_u128(1);
        assert!(Arc::ptr_eq(
            &back.intended.communities()[&one],
            &back.actual.communities()[&one]
        ));
        // Smaller than writing both deployments in full, and than writing where each
        // resource is as well (version 5), which reads back the same.
        assert!(bytes.len() < whole_deployments(&w).len());
        let v5 = changes_v5(&w);
        assert!(bytes.len() < v5.len(), "{} vs {}", bytes.len(), v5.len());
        let from_v5 = decode(&v5).unwrap();
        assert_eq!(from_v5, w);
        for c in (1..=42).map(Uuid::from_u128) {
            assert_eq!(
                from_v5.actual.holding(c).collect::<Vec<_>>(),
                w.actual.holding(c).collect::<Vec<_>>(),
                "{c}"
            );
        }
        // And it folds on as the original does.
        let next = recorded(vec![add(one, "zoe")]);
        let mut next = next[0].clone();
        next.position = w.position + 1;
        let failed = crate::Failures::default();
        let (mut a, mut b) = (w.clone(), back);
        a.apply(&next, &failed);
        b.apply(&next, &failed);
        assert_eq!(a, b);
    }

    #[test]
    fn earlier_versions_still_read_and_others_are_refused() {
        let w = world();
        // Versions 2 (LZ4) and 3 (zstd), as earlier builds stored them: every map in full.
        let plain = bincode::serde::encode_to_vec(&w, bincode::config::standard()).unwrap();
        let mut v2 = vec![2];
        v2.extend(lz4_flex::compress_prepend_size(&plain));
        assert_eq!(decode(&v2).unwrap(), w);
        let mut v3 = vec![3];
        v3.extend(zstd::bulk::compress(&plain, ZSTD_LEVEL).unwrap());
        assert_eq!(decode(&v3).unwrap(), w);
        // Version 4: the world with shared values written once, both deployments in full.
        let v4 = whole_deployments(&w);
        assert_eq!(decode(&v4).unwrap(), w);
        // Version 5: the actual deployment as its changes, where each resource is included.
        let v5 = changes_v5(&w);
        assert_eq!(decode(&v5).unwrap(), w);
        // A body read as another version is refused, not misread.
        let now = encode(&w);
        for (body, version) in [
            (now.clone(), 5),
            (now.clone(), 4),
            (now, 3),
            (v5.clone(), 6),
            (v5, 4),
            (v4, 3),
        ] {
            let mut misread = body;
            misread[0] = version;
            assert!(decode(&misread).is_err(), "read as version {version}");
        }
        assert!(decode(&[]).is_err());
        assert!(decode(&[1, 0, 0]).unwrap_err().contains("version 1"));
        let mut bad = encode(&w);
        bad.truncate(bad.len() - 1);
        assert!(decode(&bad).is_err());
        // Bytes after the world, inside the compressed stream, are not passed over.
        let mut longer =
            bincode::serde::encode_to_vec(World::default(), bincode::config::standard()).unwrap();
        longer.push(0);
        let mut trailing = vec![WHOLE_DEPLOYMENTS_VERSION];
        trailing.extend(zstd::bulk::compress(&longer, ZSTD_LEVEL).unwrap());
        assert_eq!(
            decode(&trailing).unwrap_err(),
            "bytes after the snapshot: 1"
        );
        assert_eq!(
            decode(&encode(&World::default())).unwrap(),
            World::default()
        );
    }
}
