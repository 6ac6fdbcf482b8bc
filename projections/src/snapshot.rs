//! A world as bytes, to be kept beside the log so that replay need not start from nothing.
//! `version byte ‖ zstd frame of the bincode (standard configuration) of World`, in which a
//! member map held by several communities and mirrors is written once (see `shared`).
//! Versions 2 (an LZ4 block, its size first) and 3 (zstd), whose bincode writes every map in
//! full, are still read. A snapshot of another version, or one that does not decode, is simply
//! not used.

use crate::fold::World;
use crate::shared::Sharing;

/// 1 was uncompressed bincode; 2 compressed it with LZ4; 3 with zstd, which writes a third of
/// LZ4's bytes on the same worlds (domain_bench, 1M events: 81 → 28 MB, 11.9% → 4.1% of the
/// ledger) at a similar replay time: member names repeat across mirrors and deployments,
/// further apart than LZ4 looks back. 4 writes each shared member map once.
pub const SNAPSHOT_VERSION: u8 = 4;
const ZSTD_UNSHARED_VERSION: u8 = 3;
const LZ4_VERSION: u8 = 2;
/// zstd's level: 3 is its default, fast to write; higher levels gained little here.
const ZSTD_LEVEL: i32 = 3;

pub fn encode(w: &World) -> Vec<u8> {
    let sharing = Sharing::writing();
    let plain =
        bincode::serde::encode_to_vec(w, bincode::config::standard()).expect("a world serialises");
    drop(sharing);
    let mut out = vec![SNAPSHOT_VERSION];
    out.extend(zstd::bulk::compress(&plain, ZSTD_LEVEL).expect("compressing to memory"));
    out
}

pub fn decode(bytes: &[u8]) -> Result<World, String> {
    match bytes.split_first() {
        Some((&(SNAPSHOT_VERSION | ZSTD_UNSHARED_VERSION), rest)) => {
            // Decompressed as it is decoded: the whole decompressed snapshot (~1.7 times the
            // compressed one) is never in memory beside the world it becomes.
            let unpacked = zstd::stream::read::Decoder::with_buffer(rest)
                .map_err(|e| format!("snapshot does not decompress: {e}"))?;
            let reader = std::io::BufReader::with_capacity(READ_BUFFER_BYTES, unpacked);
            let _sharing = (bytes[0] == SNAPSHOT_VERSION).then(Sharing::reading);
            decode_from(reader)
        }
        Some((&LZ4_VERSION, rest)) => {
            let plain = lz4_flex::decompress_size_prepended(rest)
                .map_err(|e| format!("snapshot does not decompress: {e}"))?;
            decode_from(plain.as_slice())
        }
        Some((v, _)) => Err(format!(
            "snapshot version {v}, this build reads {LZ4_VERSION} to {SNAPSHOT_VERSION}"
        )),
        None => Err("empty snapshot".into()),
    }
}

const READ_BUFFER_BYTES: usize = 256 * 1024;

/// The world in `reader`, which must end with it.
fn decode_from(mut reader: impl std::io::Read) -> Result<World, String> {
    let w: World = bincode::serde::decode_from_std_read(&mut reader, bincode::config::standard())
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
        // A version 4 body read as version 3 is refused, not misread.
        let mut v4_as_v3 = encode(&w);
        v4_as_v3[0] = 3;
        assert!(decode(&v4_as_v3).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[1, 0, 0]).unwrap_err().contains("version 1"));
        let mut bad = encode(&w);
        bad.truncate(bad.len() - 1);
        assert!(decode(&bad).is_err());
        // Bytes after the world, inside the compressed stream, are not passed over.
        let mut longer =
            bincode::serde::encode_to_vec(World::default(), bincode::config::standard()).unwrap();
        longer.push(0);
        let mut trailing = vec![SNAPSHOT_VERSION];
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
