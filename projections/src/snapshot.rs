//! A world as bytes, to be kept beside the log so that replay need not start from nothing.
//! `version byte ‖ bincode (standard configuration) of World`. A snapshot of another version,
//! or one that does not decode, is simply not used.

use crate::fold::World;

pub const SNAPSHOT_VERSION: u8 = 1;

pub fn encode(w: &World) -> Vec<u8> {
    let mut out = vec![SNAPSHOT_VERSION];
    out.extend(
        bincode::serde::encode_to_vec(w, bincode::config::standard()).expect("a world serialises"),
    );
    out
}

pub fn decode(bytes: &[u8]) -> Result<World, String> {
    match bytes.split_first() {
        Some((&SNAPSHOT_VERSION, rest)) => {
            let (w, used): (World, usize) =
                bincode::serde::decode_from_slice(rest, bincode::config::standard())
                    .map_err(|e| format!("snapshot does not decode: {e}"))?;
            if used != rest.len() {
                return Err(format!("{} bytes after the snapshot", rest.len() - used));
            }
            Ok(w)
        }
        Some((v, _)) => Err(format!(
            "snapshot version {v}, this build reads {SNAPSHOT_VERSION}"
        )),
        None => Err("empty snapshot".into()),
    }
}
