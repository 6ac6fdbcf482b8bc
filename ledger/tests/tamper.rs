//! Tampering: flip bits of stored records and Merkle nodes, and of proofs. Verification names
//! the first bad position; a mutated proof never verifies.

mod common;
use common::*;
use ledger::*;
use redb::{ReadableDatabase, ReadableTable};

const SEGMENT_HEADER: usize = 5;
const RECORD_HEADER: usize = 36;

/// A ledger of 10 commits × 30 events, closed; returns the file path.
fn build(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let clock = ManualClock::new(Timestamp(1_000_000));
    let l = open_at(dir, &clock);
    for c in 0..10u64 {
        let events = (0..30).map(|i| ev("Tamper", c * 30 + i)).collect();
        l.append_blocking(&format!("s{}", c % 3), ExpectedRevision::Any, events)
            .unwrap();
    }
    l.close();
    dir.path().join("test.redb")
}

fn segments(path: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(raw::LOG).unwrap();
    t.iter()
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.value(), v.value().to_vec())
        })
        .collect()
}

fn rewrite(path: &std::path::Path, key: u64, bytes: &[u8]) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(raw::LOG)
        .unwrap()
        .insert(key, bytes)
        .unwrap();
    txn.commit().unwrap();
}

/// The position a flipped byte at `offset` of a segment belongs to (None: the segment header).
fn owner(first: u64, seg: &[u8], offset: usize) -> Option<u64> {
    let mut at = SEGMENT_HEADER;
    let mut p = first;
    while at < seg.len() {
        let len = u32::from_le_bytes(seg[at..at + 4].try_into().unwrap()) as usize;
        let end = at + RECORD_HEADER + len;
        if offset < end {
            return (offset >= at).then_some(p);
        }
        at = end;
        p += 1;
    }
    None
}

/// The position named for the damage: by verify, or by open when it cannot even start.
fn named(path: &std::path::Path) -> Option<u64> {
    let clock = ManualClock::new(Timestamp(1_000_000));
    let opened = Ledger::open(
        path,
        Options {
            clock: std::sync::Arc::new(clock),
            ..Options::default()
        },
    );
    match opened {
        Err(OpenError::Damaged { position, .. }) => Some(position),
        Err(e) => panic!("unexpected open error {e}"),
        Ok(l) => {
            let r = l.verify(None, |_, _| {}).unwrap();
            l.close();
            r.problem.map(|p| p.position)
        }
    }
}

#[test]
fn every_flipped_byte_of_a_record_is_named_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(&dir);
    let segs = segments(&path);
    assert_eq!(segs.len(), 10);
    let mut checked = 0;
    for (first, seg) in &segs {
        // Every byte of the segment header and the first record, then a stride over the rest.
        let offsets: Vec<usize> = (0..SEGMENT_HEADER + RECORD_HEADER + 80)
            .step_by(if *first == 1 { 1 } else { 5 })
            .chain((0..seg.len()).step_by(41))
            .filter(|o| *o < seg.len())
            .collect();
        for offset in offsets {
            let mut bad = seg.clone();
            bad[offset] ^= 0x10;
            rewrite(&path, *first, &bad);
            let got = named(&path);
            match owner(*first, seg, offset) {
                Some(p) => assert_eq!(got, Some(p), "segment {first} byte {offset}"),
                None => {
                    let p = got.unwrap_or_else(|| panic!("header byte {offset} not detected"));
                    assert!(
                        p >= *first,
                        "segment {first} header byte {offset}: named {p}"
                    );
                }
            }
            checked += 1;
        }
        rewrite(&path, *first, seg);
    }
    assert!(checked > 400, "{checked}");
    assert_eq!(named(&path), None, "restored ledger verifies");
}

#[test]
fn a_wrong_merkle_node_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(&dir);
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(raw::MERKLE).unwrap();
            // level 4, index 3: positions 49–64
            let key = (4u64 << 56) | 3;
            let mut h = *t.get(key).unwrap().unwrap().value();
            h[0] ^= 1;
            t.insert(key, &h).unwrap();
        }
        txn.commit().unwrap();
    }
    // found when position 64 completes the subtree over 49–64
    assert_eq!(named(&path), Some(64));
}

fn flips(v: &[u8; 32]) -> impl Iterator<Item = [u8; 32]> + '_ {
    (0..256).map(move |bit| {
        let mut m = *v;
        m[bit / 8] ^= 1 << (bit % 8);
        m
    })
}

#[test]
fn inclusion_proofs_verify_and_every_one_bit_mutation_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(5));
    let l = open_at(&dir, &clock);
    for i in 0..77 {
        l.append_blocking("s", ExpectedRevision::Any, vec![ev("P", i)])
            .unwrap();
    }
    for (position, size) in [(1, 77), (40, 77), (77, 77), (16, 16), (5, 33)] {
        let cp = l.checkpoint_at(Some(size)).unwrap();
        let proof = l.prove_inclusion(position, Some(size)).unwrap();
        let event = proof.verify(&cp).unwrap();
        assert_eq!(event.position, position);
        for i in 0..proof.path.len() {
            for m in flips(&proof.path[i]) {
                let mut bad = proof.clone();
                bad.path[i] = m;
                assert!(bad.verify(&cp).is_err());
            }
        }
        for m in flips(&proof.record_hash) {
            let mut bad = proof.clone();
            bad.record_hash = m;
            assert!(bad.verify(&cp).is_err());
        }
        for m in flips(&proof.prev_hash) {
            let mut bad = proof.clone();
            bad.prev_hash = m;
            assert!(bad.verify(&cp).is_err());
        }
        for byte in 0..proof.record.len() {
            let mut bad = proof.clone();
            bad.record[byte] ^= 0x01;
            assert!(bad.verify(&cp).is_err(), "record byte {byte}");
        }
        for m in flips(&cp.root) {
            assert!(proof.verify(&Checkpoint { size, root: m }).is_err());
        }
        let mut shorter = proof.clone();
        shorter.path.pop();
        assert!(shorter.verify(&cp).is_err() || proof.path.is_empty());
    }
}

#[test]
fn consistency_proofs_verify_and_every_one_bit_mutation_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp(5));
    let l = open_at(&dir, &clock);
    for i in 0..50 {
        l.append_blocking("s", ExpectedRevision::Any, vec![ev("P", i)])
            .unwrap();
    }
    let new = l.checkpoint().unwrap();
    for old_size in [1, 7, 16, 31, 49] {
        let old = l.checkpoint_at(Some(old_size)).unwrap();
        let proof = l.prove_consistency(old_size, None).unwrap();
        proof.verify(&old, &new).unwrap();
        for i in 0..proof.path.len() {
            for m in flips(&proof.path[i]) {
                let mut bad = proof.clone();
                bad.path[i] = m;
                assert!(bad.verify(&old, &new).is_err(), "{old_size} elem {i}");
            }
        }
        for m in flips(&old.root) {
            assert!(proof
                .verify(
                    &Checkpoint {
                        size: old_size,
                        root: m
                    },
                    &new
                )
                .is_err());
        }
    }
}
