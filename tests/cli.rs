//! The `lifeline` binary end to end: outputs, exit codes, and that bad input changes nothing.

mod common;
use common::{lifeline, ok};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.redb");
    ok(&path, &["init"]);
    (dir, path)
}

fn head(ledger: &Path) -> u64 {
    let out = ok(ledger, &["checkpoint", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["size"].as_u64().unwrap()
}

const FIXTURE: &str = "tests/fixtures/events.jsonl";

/// Imports `export` (made from ledger `a`) into a new ledger in `dir`, and checks that both
/// have the same checkpoint; returns the new ledger.
fn import_gives_the_same_root(dir: &Path, a: &Path, export: &Path) -> PathBuf {
    let b = dir.join("b.redb");
    ok(&b, &["init"]);
    ok(&b, &["import", export.to_str().unwrap()]);
    assert_eq!(
        ok(a, &["checkpoint", "--format", "json"]),
        ok(&b, &["checkpoint", "--format", "json"])
    );
    b
}

#[test]
fn append_then_read_as_json_lines() {
    let (_d, l) = scratch();
    let out = ok(
        &l,
        &[
            "append",
            "--stream",
            "notes-1",
            "--type",
            "Note",
            "--expected",
            "no-stream",
            "--data",
            r#"{"name":"Sales"}"#,
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["position"], 1);
    let out = ok(&l, &["read", "notes-1", "--format", "json"]);
    let e: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    for field in [
        "stream", "revision", "position", "id", "type", "data", "metadata", "recorded", "occurred",
    ] {
        assert!(e.get(field).is_some(), "{field} missing from {e}");
    }
    assert_eq!(e["data"]["name"], "Sales");
    assert_eq!(e["revision"], 0);
}

#[test]
fn exit_codes_say_what_went_wrong() {
    let (_d, l) = scratch();
    ok(
        &l,
        &["append", "--stream", "s", "--type", "A", "--data", "{}"],
    );
    let r = lifeline(
        &l,
        &[
            "append",
            "--stream",
            "s",
            "--type",
            "A",
            "--data",
            "{}",
            "--expected",
            "7",
        ],
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("expected 7, actual 0"), "{}", r.stderr);
    let r = lifeline(
        &l,
        &[
            "append",
            "--stream",
            "s",
            "--type",
            "A",
            "--data",
            "{not json",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("--data is not valid JSON"),
        "{}",
        r.stderr
    );
    let r = lifeline(&l, &["read", "nope"]);
    assert_eq!(r.code, 5);
    let missing = l.with_file_name("missing.redb");
    let r = lifeline(&missing, &["read", "s"]);
    assert_eq!(r.code, 5);
    assert!(r.stderr.contains("lifeline init"), "{}", r.stderr);
    assert!(!missing.exists(), "reading must not create a ledger");
    let r = lifeline(&l, &["read"]);
    assert_eq!(r.code, 2, "usage error");
    assert_eq!(head(&l), 1);
}

#[test]
fn a_ledger_another_process_holds_is_refused_with_what_to_do() {
    let (_d, l) = scratch();
    ok(
        &l,
        &["append", "--stream", "s", "--type", "A", "--data", "{}"],
    );
    // This process holds it, as a running `lifeline serve` would.
    let held = ledger::Ledger::open(&l, ledger::Options::default()).unwrap();
    for args in [
        &["read", "s"][..],
        &["append", "--stream", "s", "--type", "A", "--data", "{}"],
        &["recover"],
        &["init"],
        &["compact"],
    ] {
        let r = lifeline(&l, args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("is already open elsewhere")
                && r.stderr.contains("stop that process first"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = lifeline(&l, &["recover"]);
    assert!(r.stderr.contains("take --server URL"), "{}", r.stderr);
    assert_eq!(held.head(), 1, "nothing was appended");
    drop(held);
    assert_eq!(head(&l), 1);
}

#[test]
fn export_import_round_trip_keeps_the_root_and_bad_files_import_nothing() {
    let (d, a) = scratch();
    ok(&a, &["import", FIXTURE]);
    let export = d.path().join("out.jsonl");
    ok(&a, &["export", "--out", export.to_str().unwrap()]);
    let b = import_gives_the_same_root(d.path(), &a, &export);
    // importing the same file again finds everything there
    let again = ok(
        &b,
        &["import", export.to_str().unwrap(), "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["written"], 0);
    // a file with a bad line imports nothing, and says where
    let text = std::fs::read_to_string(&export).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let bad = d.path().join("bad.jsonl");
    lines.insert(
        3,
        r#"{"stream":"x","revision":0,"id":"not-a-uuid","type":"T"}"#,
    );
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let c = d.path().join("c.redb");
    ok(&c, &["init"]);
    let r = lifeline(&c, &["import", bad.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.jsonl line 4"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was imported"), "{}", r.stderr);
    assert_eq!(head(&c), 0);
    // revisions that skip ahead are refused the same way
    let gap = d.path().join("gap.jsonl");
    std::fs::write(
        &gap,
        r#"{"stream":"g","revision":0,"id":"00000000-0000-0000-0000-000000000001","type":"T"}
{"stream":"g","revision":2,"id":"00000000-0000-0000-0000-000000000002","type":"T"}
"#,
    )
    .unwrap();
    let r = lifeline(&c, &["import", gap.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("next is 1"),
        "{}",
        r.stderr
    );
    assert_eq!(head(&c), 0);
}

#[test]
fn every_kind_of_data_and_metadata_survives_an_export_and_an_import() {
    let (d, a) = scratch();
    // JSON null, nothing at all, bytes that are not JSON, and JSON with a line break, as data
    // and as metadata; and `null` given beside base64 reads as no bytes.
    let null = "bnVsbA=="; // the bytes `null`
    let lines = [
        r#"{"stream":"k","revision":0,"id":"00000000-0000-0000-0000-00000000000a","type":"T","data":null,"data_base64":"bnVsbA==","metadata":null,"metadata_base64":"bnVsbA=="}"#.to_owned(),
        r#"{"stream":"k","revision":1,"id":"00000000-0000-0000-0000-00000000000b","type":"T"}"#.to_owned(),
        r#"{"stream":"k","revision":2,"id":"00000000-0000-0000-0000-00000000000c","type":"T","content_type":"application/octet-stream","data_base64":"AAEC/w==","metadata_base64":"eyJhIjoKMX0="}"#.to_owned(),
        r#"{"stream":"k","revision":3,"id":"00000000-0000-0000-0000-00000000000d","type":"T","data":{"a":[1,null]},"metadata":{}}"#.to_owned(),
    ];
    let file = d.path().join("kinds.jsonl");
    // Written the way Windows tools write UTF-8: a byte order mark, and CR LF line ends.
    std::fs::write(&file, format!("\u{feff}{}\r\n", lines.join("\r\n"))).unwrap();
    ok(&a, &["import", file.to_str().unwrap()]);
    ok(
        &a,
        &["append", "--stream", "k", "--type", "T", "--data", "null"],
    );
    let export = d.path().join("out.jsonl");
    ok(&a, &["export", "--out", export.to_str().unwrap()]);
    let text = std::fs::read_to_string(&export).unwrap();
    let read: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(read.len(), 5);
    // Every line names data and metadata, whatever they hold.
    for e in &read {
        assert!(
            e.get("data").is_some() && e.get("metadata").is_some(),
            "{e}"
        );
    }
    for e in [&read[0], &read[4]] {
        assert_eq!(
            (&e["data"], &e["data_base64"]),
            (&serde_json::Value::Null, &null.into())
        );
    }
    assert_eq!(read[0]["metadata_base64"], null);
    assert_eq!(
        (&read[1]["data"], read[1].get("data_base64")),
        (&serde_json::Value::Null, None)
    );
    assert_eq!(read[2]["data_base64"], "AAEC/w==");
    assert_eq!(read[3]["data"]["a"][1], serde_json::Value::Null);
    assert_eq!(read[3]["metadata"], serde_json::json!({}));
    // The same records, so the same root.
    import_gives_the_same_root(d.path(), &a, &export);
}

#[test]
fn verify_names_the_damaged_position_with_exit_4() {
    let (_d, l) = scratch();
    ok(&l, &["import", FIXTURE]);
    assert!(ok(&l, &["verify"]).contains("intact"));
    {
        use redb::ReadableDatabase;
        let db = redb::Database::open(&l).unwrap();
        let (key, mut bytes) = {
            let txn = db.begin_read().unwrap();
            let t = txn.open_table(ledger::raw::LOG).unwrap();
            let (k, v) = redb::ReadableTable::first(&t).unwrap().unwrap();
            (k.value(), v.value().to_vec())
        };
        let n = bytes.len();
        bytes[n - 3] ^= 0x20; // inside the data of the segment's last record
        let txn = db.begin_write().unwrap();
        txn.open_table(ledger::raw::LOG)
            .unwrap()
            .insert(key, bytes.as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let r = lifeline(&l, &["verify"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("verification failed at position"),
        "{}",
        r.stderr
    );
}

#[test]
fn proofs_check_against_a_checkpoint_file() {
    let (d, l) = scratch();
    ok(&l, &["import", FIXTURE]);
    let cp = d.path().join("cp.json");
    std::fs::write(&cp, ok(&l, &["checkpoint", "--format", "json"])).unwrap();
    let proof = d.path().join("p.json");
    std::fs::write(&proof, ok(&l, &["prove", "3"])).unwrap();
    let out = ok(
        &l,
        &[
            "verify-proof",
            proof.to_str().unwrap(),
            "--checkpoint",
            cp.to_str().unwrap(),
        ],
    );
    assert!(out.contains("is at position 3"), "{out}");
    // the same proof with one hex digit of its path changed is rejected
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    let first = p["proof"]["path"][0].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        if first.starts_with('0') { '1' } else { '0' },
        &first[1..]
    );
    p["proof"]["path"][0] = serde_json::Value::String(flipped);
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, p.to_string()).unwrap();
    let r = lifeline(
        &l,
        &[
            "verify-proof",
            bad.to_str().unwrap(),
            "--checkpoint",
            cp.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 4);
    // consistency: the log extends its first 2 events
    let old = d.path().join("old.json");
    std::fs::write(
        &old,
        ok(&l, &["checkpoint", "--size", "2", "--format", "json"]),
    )
    .unwrap();
    ok(&l, &["verify", "--checkpoint", old.to_str().unwrap()]);
    let cproof = d.path().join("c.json");
    std::fs::write(&cproof, ok(&l, &["prove", "--consistency", "2"])).unwrap();
    let out = ok(
        &l,
        &[
            "verify-proof",
            cproof.to_str().unwrap(),
            "--checkpoint",
            cp.to_str().unwrap(),
            "--old-checkpoint",
            old.to_str().unwrap(),
        ],
    );
    assert!(out.contains("extends the log of 2 events"), "{out}");
    // Positions and sizes the log does not have are not found (exit 5), and say its range.
    let size = head(&l);
    for args in [
        vec!["prove".to_owned(), (size + 1).to_string()],
        vec!["prove".to_owned(), "0".to_owned()],
        vec![
            "checkpoint".to_owned(),
            "--size".to_owned(),
            (size + 1).to_string(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = lifeline(&l, &args);
        assert_eq!(r.code, 5, "{args:?}: {}", r.stderr);
    }
    let r = lifeline(&l, &["prove", &(size + 1).to_string()]);
    assert!(
        r.stderr.contains(&format!("its positions are 1 to {size}")),
        "{}",
        r.stderr
    );
}

#[test]
fn read_all_as_json_honours_count_and_direction() {
    let (_d, l) = scratch();
    ok(&l, &["import", FIXTURE]);
    let positions = |out: String| -> Vec<u64> {
        out.lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["position"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    let fw = ok(
        &l,
        &[
            "read", "$all", "--format", "json", "--from", "2", "--count", "2",
        ],
    );
    assert_eq!(positions(fw), [2, 3]);
    let bw = ok(
        &l,
        &[
            "read",
            "$all",
            "--format",
            "json",
            "--backwards",
            "--count",
            "3",
        ],
    );
    assert_eq!(positions(bw), [5, 4, 3]);
    let none = ok(&l, &["read", "$all", "--format", "json", "--count", "0"]);
    assert!(none.is_empty());
}

#[test]
fn read_table_renders_as_expected() {
    let (_d, l) = scratch();
    ok(&l, &["import", FIXTURE]);
    let got = ok(&l, &["read", "$all"]);
    let path = Path::new("tests/expected/read_all_table.txt");
    if std::env::var_os("LIFELINE_BLESS").is_some() {
        std::fs::write(path, &got).unwrap();
    }
    let want = std::fs::read_to_string(path).unwrap();
    assert_eq!(
        got, want,
        "rerun with LIFELINE_BLESS=1 to accept a deliberate change"
    );
}

#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    use std::io::Read;
    let (d, l) = scratch();
    // Far more output than a pipe holds, so the writer does meet the closed pipe.
    let many = d.path().join("many.jsonl");
    let lines: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#"{{"stream":"s","revision":{i},"id":"{}","type":"Note","data":{{"pad":"{}"}}}}"#,
                uuid::Uuid::from_u128(i + 1),
                "x".repeat(100)
            )
        })
        .collect();
    std::fs::write(&many, lines.join("\n")).unwrap();
    ok(&l, &["import", many.to_str().unwrap()]);
    for format in ["json", "table"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lifeline"))
            .arg("--ledger")
            .arg(&l)
            .args(["read", "$all", "--format", format, "--count", "1000000"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away at once
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        child.wait().unwrap();
        assert!(err.is_empty(), "{format}: {err}");
    }
}

/// `serve` stops cleanly on SIGTERM (what service managers send), as on Ctrl-C: exit 0, and the
/// ledger it closed verifies.
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("l.redb");
    ok(&l, &["init"]);
    let status = common::Served::start(&l, &[]).stop();
    assert!(status.success(), "{status:?}");
    ok(&l, &["verify"]);
}
