//! Kill a writer with SIGKILL at random moments: after reopening, every acknowledged event is
//! where it was acknowledged, and the whole log verifies. A new ledger is made in one step.

use ledger::{Ledger, Options};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn writer_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_ledger-crash-writer"))
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("CRASH_SEED={seed}");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let bin = writer_binary();
    let mut acked: Vec<(u64, uuid::Uuid)> = Vec::new();
    for round in 0..20u64 {
        let mut child = Command::new(&bin)
            .arg(&path)
            .arg(round.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split(' ');
                if let (Some(p), Some(id)) = (parts.next(), parts.next()) {
                    if let (Ok(p), Ok(id)) = (p.parse::<u64>(), id.parse::<uuid::Uuid>()) {
                        got.push((p, id));
                    }
                }
            }
            got
        });
        std::thread::sleep(Duration::from_millis(20 + next() % 200));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        let got = reader.join().unwrap();
        acked.extend(got);
        let l = Ledger::open(&path, Options::default()).expect("reopen after kill");
        for (position, id) in &acked {
            let e = l
                .event_at(*position)
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged position {position} lost (seed {seed})"));
            assert_eq!(e.id.0, *id, "position {position} (seed {seed})");
        }
        let report = l.verify(None, |_, _| {}).unwrap();
        assert_eq!(report.problem, None, "round {round} (seed {seed})");
        l.close();
    }
    assert!(acked.len() > 100, "only {} acknowledged", acked.len());
}

/// A new ledger is made under another name and then linked into place, so that a process
/// killed while making it cannot leave a file that no open takes; nothing else is left behind.
#[test]
fn a_new_ledger_leaves_only_itself_and_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.redb");
    let l = Ledger::open(&path, Options::default()).unwrap();
    for i in 0..3 {
        let e = ledger::ProposedEvent::json("Noted", &serde_json::json!({ "i": i }));
        l.append_blocking("notes", ledger::ExpectedRevision::Any, vec![e])
            .unwrap();
    }
    l.close();
    drop(l);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.first().map(String::as_str), Some("new.redb"));
    assert!(names.iter().all(|n| n.starts_with("new.redb")), "{names:?}");
    let l = Ledger::open(&path, Options::default()).unwrap();
    assert_eq!(l.head(), 3);
}

/// What a creation killed midway left (`.NAME.new-PID` of a process that has ended) is removed
/// when the ledger is next opened; the file of a process still running (a creation in progress)
/// and files of other ledgers are left.
#[test]
fn an_open_removes_what_a_killed_creation_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.redb");
    let mut ended = Command::new("true").spawn().unwrap();
    ended.wait().unwrap();
    let mut running = Command::new("sleep").arg("30").spawn().unwrap();
    let left = |pid: u32| dir.path().join(format!(".l.redb.new-{pid}"));
    for file in [
        left(ended.id()),
        left(running.id()),
        dir.path().join(format!(".other.redb.new-{}", ended.id())),
        dir.path().join(".l.redb.new-notapid"),
    ] {
        std::fs::write(&file, b"half made").unwrap();
    }
    let l = Ledger::open(&path, Options::default()).unwrap();
    l.close();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    running.kill().unwrap();
    running.wait().unwrap();
    let mut expected = vec![
        format!(".l.redb.new-{}", running.id()),
        ".l.redb.new-notapid".to_owned(),
        format!(".other.redb.new-{}", ended.id()),
    ];
    expected.sort();
    assert_eq!(names, expected);
}
