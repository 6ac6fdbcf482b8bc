//! The write-ahead log: what makes a commit durable with one sequential fdatasync.
//!
//! Each group commit appends one frame holding the segments it wrote, syncs the file, and only
//! then is answered; the same segments go into redb in a commit that is not synced. A durable
//! redb commit (a checkpoint: two-phase, `Durability::Immediate`) makes everything before it
//! safe in redb, after which the write-ahead log is emptied. On open, frames past redb's last
//! position are written into redb again.
//!
//! Frame: `payload length u32 LE ‖ first 8 bytes of blake3(payload) ‖ payload`, and the payload is
//! `(first position u64 LE ‖ segment length u32 LE ‖ segment)` repeated. A frame cut short by a
//! crash was never answered: it is dropped. A damaged frame followed by others is damage.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const FRAME_HEADER_BYTES: usize = 12;

/// Segments of one commit, by first position.
pub(crate) type Frame = Vec<(u64, Vec<u8>)>;

pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    len: u64,
    scratch: Vec<u8>,
}

/// Why the write-ahead log cannot be read back.
#[derive(Debug)]
pub(crate) struct WalDamage {
    pub offset: u64,
    pub reason: String,
}

pub(crate) fn path_for(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".wal");
    PathBuf::from(name)
}

impl Wal {
    /// Opens (or creates) the log and reads back its frames; a torn last frame is cut off.
    pub fn open(path: PathBuf) -> Result<(Wal, Vec<Frame>), WalDamage> {
        let io = |e: std::io::Error| WalDamage {
            offset: 0,
            reason: format!("{}: {e}", path.display()),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (frames, good) = parse(&bytes)?;
        if good < bytes.len() as u64 {
            file.set_len(good).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::Start(good)).map_err(io)?;
        let wal = Wal {
            file,
            path,
            len: good,
            scratch: Vec::new(),
        };
        Ok((wal, frames))
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends one frame and syncs it; returns the length before it, to cut back to.
    pub fn append(&mut self, segments: &[(u64, Vec<u8>)]) -> std::io::Result<u64> {
        let before = self.len;
        self.scratch.clear();
        self.scratch.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
        for (first, seg) in segments {
            self.scratch.extend_from_slice(&first.to_le_bytes());
            let len = u32::try_from(seg.len()).map_err(std::io::Error::other)?;
            self.scratch.extend_from_slice(&len.to_le_bytes());
            self.scratch.extend_from_slice(seg);
        }
        let payload_len = self.scratch.len() - FRAME_HEADER_BYTES;
        let len = u32::try_from(payload_len).map_err(std::io::Error::other)?;
        let digest = blake3::hash(&self.scratch[FRAME_HEADER_BYTES..]);
        self.scratch[..4].copy_from_slice(&len.to_le_bytes());
        self.scratch[4..12].copy_from_slice(&digest.as_bytes()[..8]);
        let written = self
            .file
            .write_all(&self.scratch)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += self.scratch.len() as u64;
                Ok(before)
            }
            Err(e) => {
                // Leave no partial frame behind to be mistaken for an answered one.
                let _ = self.truncate_to(before);
                Err(e)
            }
        }
    }

    /// Cuts the log back to `len` bytes, durably.
    pub fn truncate_to(&mut self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::Start(len))?;
        self.file.sync_all()?;
        self.len = len;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The frames of a log and the length of its good prefix.
fn parse(bytes: &[u8]) -> Result<(Vec<Frame>, u64), WalDamage> {
    let mut frames = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + FRAME_HEADER_BYTES) else {
            break; // torn header
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let end = at + FRAME_HEADER_BYTES + len;
        let Some(payload) = bytes.get(at + FRAME_HEADER_BYTES..end) else {
            break; // torn payload
        };
        if blake3::hash(payload).as_bytes()[..8] != header[4..12] {
            if end == bytes.len() {
                break; // the last frame, torn inside
            }
            return Err(WalDamage {
                offset: at as u64,
                reason: "a frame's checksum does not match and more frames follow it".into(),
            });
        }
        frames.push(split_payload(payload).map_err(|reason| WalDamage {
            offset: at as u64,
            reason,
        })?);
        at = end;
    }
    Ok((frames, at as u64))
}

fn split_payload(mut p: &[u8]) -> Result<Frame, String> {
    let mut out = Vec::new();
    while !p.is_empty() {
        if p.len() < 12 {
            return Err("frame ends inside a segment header".into());
        }
        let first = u64::from_le_bytes(p[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(p[8..12].try_into().expect("4 bytes")) as usize;
        let seg = p
            .get(12..12 + len)
            .ok_or("segment runs past its frame")?
            .to_vec();
        out.push((first, seg));
        p = &p[12 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        {
            let (mut w, frames) = Wal::open(path.clone()).unwrap();
            assert!(frames.is_empty());
            w.append(&[(1, vec![1, 2, 3]), (4, vec![4])]).unwrap();
            w.append(&[(5, vec![5; 100])]).unwrap();
        }
        let full = std::fs::read(&path).unwrap();
        for cut in 1..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (w, frames) = Wal::open(path.clone()).unwrap();
            let first_frame = 12 + 12 + 3 + 12 + 1;
            if cut < first_frame {
                assert!(frames.is_empty(), "cut {cut}");
                assert_eq!(w.len(), 0);
            } else {
                assert_eq!(frames.len(), 1, "cut {cut}");
                assert_eq!(frames[0], vec![(1, vec![1, 2, 3]), (4, vec![4])]);
                assert_eq!(w.len(), first_frame as u64);
            }
        }
        // a damaged first frame with another after it is damage, not a torn tail
        let mut bad = full.clone();
        bad[14] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(Wal::open(path.clone()).is_err());
    }
}
