//! A world as bytes, to be kept beside the log so that replay need not start from nothing.
//! `version byte ‖ LZ4 block (its size first) of the bincode (standard configuration) of World`.
//! A snapshot of another version, or one that does not decode, is simply not used.

use crate::fold::World;

/// 1 was uncompressed bincode; 2 compresses it (member names repeat across mirrors).
pub const SNAPSHOT_VERSION: u8 = 2;

pub fn encode(w: &World) -> Vec<u8> {
    let plain =
        bincode::serde::encode_to_vec(w, bincode::config::standard()).expect("a world serialises");
    let mut out = vec![SNAPSHOT_VERSION];
    out.extend(lz4_flex::compress_prepend_size(&plain));
    out
}

pub fn decode(bytes: &[u8]) -> Result<World, String> {
    match bytes.split_first() {
        Some((&SNAPSHOT_VERSION, rest)) => {
            let plain = lz4_flex::decompress_size_prepended(rest)
                .map_err(|e| format!("snapshot does not decompress: {e}"))?;
            let (w, used): (World, usize) =
                bincode::serde::decode_from_slice(&plain, bincode::config::standard())
                    .map_err(|e| format!("snapshot does not decode: {e}"))?;
            if used != plain.len() {
                return Err(format!("{} bytes after the snapshot", plain.len() - used));
            }
            Ok(w)
        }
        Some((v, _)) => Err(format!(
            "snapshot version {v}, this build reads {SNAPSHOT_VERSION}"
        )),
        None => Err("empty snapshot".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let w = World::default();
        assert_eq!(decode(&encode(&w)).unwrap(), w);
        assert!(decode(&[]).is_err());
        assert!(decode(&[1, 0, 0]).unwrap_err().contains("version 1"));
        let mut bad = encode(&w);
        bad.truncate(bad.len() - 1);
        assert!(decode(&bad).is_err());
    }
}
