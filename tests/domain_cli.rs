//! `record` and `replay` end to end: validation that appends nothing, points in time, backups
//! and restores, and the JSON a script reads.

mod common;
use common::{audit, lifeline, ok};
use std::path::{Path, PathBuf};

fn run(ledger: &Path, args: &[&str]) -> (i32, String, String) {
    let r = lifeline(ledger, args);
    (r.code, r.stdout, r.stderr)
}

const C: &str = "5d19412d-8665-43bc-8e94-3a4ed1ccb47d";

fn record(l: &Path, ty: &str, data: &str) -> String {
    ok(l, &["record", ty, "--data", data, "--format", "json"])
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("l.redb");
    ok(&l, &["init"]);
    record(
        &l,
        "CommunityCreated",
        &format!(
            r#"{{"community":"{C}","name":"Sales EMEA","communityType":"public","owners":["alice"]}}"#
        ),
    );
    record(
        &l,
        "WidgetAdded",
        &format!(r#"{{"community":"{C}","instance":"Wf","widgetDefId":"Files"}}"#),
    );
    record(
        &l,
        "RemoteAppProvisioned",
        &format!(r#"{{"community":"{C}","app":"Files","instance":"Wf","objectId":"lib-1"}}"#),
    );
    record(
        &l,
        "BackupTaken",
        r#"{"database":"Files","label":"files-mon"}"#,
    );
    record(
        &l,
        "MembersAdded",
        &format!(r#"{{"community":"{C}","members":{{"bob":"member"}}}}"#),
    );
    (dir, l)
}

fn files_members(out: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    v["databases"]["Files"]["resources"]["Files:lib-1"]["members"].clone()
}

#[test]
fn a_rejected_event_appends_nothing_and_force_records_it() {
    let (_d, l) = setup();
    let head = |l: &Path| -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&ok(l, &["checkpoint", "--format", "json"])).unwrap();
        v["size"].as_u64().unwrap()
    };
    let before = head(&l);
    let (code, _, err) = run(
        &l,
        &[
            "record",
            "MembersRemoved",
            "--data",
            &format!(r#"{{"community":"{C}","users":["alice"]}}"#),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("last owner") && err.contains("nothing was recorded"),
        "{err}"
    );
    let (code, _, err) = run(
        &l,
        &[
            "record",
            "MembersAdded",
            "--data",
            r#"{"community":"nope"}"#,
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("MembersAdded data is not valid"), "{err}");
    let (code, _, err) = run(
        &l,
        &[
            "append",
            "--stream",
            "x",
            "--type",
            "MembersAdded",
            "--data",
            "{}",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(head(&l), before);
    ok(
        &l,
        &[
            "record",
            "MembersRemoved",
            "--force",
            "--data",
            &format!(r#"{{"community":"{C}","users":["alice"]}}"#),
        ],
    );
    assert_eq!(head(&l), before + 1);
}

#[test]
fn a_delivery_report_must_name_a_lifecycle_event_of_its_community() {
    let (_d, l) = setup();
    let id = |out: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(out).unwrap();
        v["id"].as_str().unwrap().to_owned()
    };
    const D: &str = "0f6a3c35-3b0e-4be4-a9a6-6c2f5a0d7c11";
    let created = id(&record(
        &l,
        "CommunityCreated",
        &format!(
            r#"{{"community":"{D}","name":"Sales APAC","communityType":"public","owners":["dana"]}}"#
        ),
    ));
    let added = id(&record(
        &l,
        "MembersAdded",
        &format!(r#"{{"community":"{C}","members":{{"carol":"member"}}}}"#),
    ));
    let head = |l: &Path| -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&ok(l, &["checkpoint", "--format", "json"])).unwrap();
        v["size"].as_u64().unwrap()
    };
    let before = head(&l);
    let report = |ty: &str, community: &str, event: &str| {
        run(
            &l,
            &[
                "record",
                ty,
                "--data",
                &format!(r#"{{"community":"{community}","app":"Files","event":"{event}"}}"#),
            ],
        )
    };
    let unknown = "7e57e57e-0000-4000-8000-000000000001";
    for (ty, community, event, says) in [
        (
            "DeliveryFailed",
            C,
            unknown,
            format!("event {unknown} is not an event of community {C}"),
        ),
        // A real lifecycle event, reported against another community.
        (
            "DeliveryFailed",
            D,
            added.as_str(),
            format!("event {added} is not an event of community {D}"),
        ),
        (
            "DeliveryFailed",
            D,
            created.as_str(),
            format!("event {created} is a CommunityCreated, which is not delivered to the apps"),
        ),
        (
            "DeliveryFailed",
            "3c0ffee0-0000-4000-8000-000000000002",
            added.as_str(),
            "has no events".to_owned(),
        ),
        (
            "DeliveryRetried",
            D,
            added.as_str(),
            format!("event {added} is not an event of community {D}"),
        ),
    ] {
        let (code, _, err) = report(ty, community, event);
        assert_eq!(code, 1, "{ty} {community} {event}: {err}");
        assert!(
            err.contains(&says) && err.contains("nothing was recorded"),
            "{err}"
        );
    }
    assert_eq!(head(&l), before);
    // Reported against its own community, it is taken; then retried.
    let (code, _, err) = report("DeliveryFailed", C, &added);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = report("DeliveryRetried", C, &added);
    assert_eq!(code, 0, "{err}");
    assert_eq!(head(&l), before + 2);
}

#[test]
fn replay_at_a_backup_a_position_and_after_a_restore() {
    let (_d, l) = setup();
    let now = ok(&l, &["replay", "--database", "Files", "--format", "json"]);
    assert_eq!(
        files_members(&now),
        serde_json::json!({"alice": "owner", "bob": "member"})
    );
    let at_backup = ok(
        &l,
        &[
            "replay",
            "--at",
            "files-mon",
            "--database",
            "Files",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        files_members(&at_backup),
        serde_json::json!({"alice": "owner"})
    );
    let at_two = ok(
        &l,
        &[
            "replay",
            "--at",
            "@2",
            "--database",
            "Files",
            "--format",
            "json",
        ],
    );
    assert!(!at_two.contains("lib-1"), "{at_two}");
    record(
        &l,
        "DatabaseRestored",
        r#"{"database":"Files","backup":"files-mon"}"#,
    );
    let restored = ok(&l, &["replay", "--database", "Files", "--format", "json"]);
    assert_eq!(
        files_members(&restored),
        serde_json::json!({"alice": "owner"})
    );
    let intended = ok(
        &l,
        &[
            "replay",
            "--intended",
            "--database",
            "Files",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        files_members(&intended),
        serde_json::json!({"alice": "owner", "bob": "member"})
    );
    let by_name = ok(
        &l,
        &["replay", "--community", "Sales EMEA", "--format", "json"],
    );
    assert!(by_name.contains(C));
    let (code, _, err) = run(&l, &["replay", "--community", "Nobody"]);
    assert_eq!(code, 5, "{err}");
    let (code, _, err) = run(&l, &["replay", "--at", "@999"]);
    assert_eq!(code, 5, "{err}");
    // A label no backup has: the error shows what the recorded ones look like.
    let (code, _, err) = run(&l, &["replay", "--at", "files-tue"]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("the latest of the 1 recorded: files-mon"),
        "{err}"
    );
    // A date is its midnight, UTC: before everything, and after everything.
    let files_at = |at: &str| {
        let out = ok(
            &l,
            &[
                "replay",
                "--at",
                at,
                "--database",
                "Files",
                "--format",
                "json",
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["databases"]["Files"]["resources"].clone()
    };
    assert!(files_at("2001-02-03").get("Files:lib-1").is_none());
    assert!(files_at("2200-01-01").get("Files:lib-1").is_some());
    let (code, _, err) = run(&l, &["replay", "--at", "2026-02-30"]);
    assert_eq!(code, 5, "not a day, not a label: {err}");
    assert!(
        err.contains("'2026-02-30' is not a day of the calendar: February 2026 has no day 30")
            && err.contains("no backup labelled '2026-02-30'"),
        "{err}"
    );
    let (code, _, err) = run(&l, &["replay", "--at", "2026-13-01"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("there is no month 13"), "{err}");
    let (code, _, err) = run(&l, &["replay", "--database", "Nowhere"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn audit_filters_combine_and_the_index_follows_new_events() {
    let (_d, l) = setup();
    let all = audit(&l, &[]);
    assert_eq!(all.len(), 5);
    let files = audit(&l, &["--database", "Files"]);
    let types: Vec<&str> = files.iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["RemoteAppProvisioned", "BackupTaken"]);
    // recorded after the first audit: the index catches up before answering
    ok(
        &l,
        &[
            "record",
            "MembersAdded",
            "--data",
            &format!(r#"{{"community":"{C}","members":{{"carol":"member"}},"actor":"alice"}}"#),
        ],
    );
    let by_alice = audit(&l, &["--actor", "alice"]);
    assert_eq!(by_alice.len(), 1);
    assert_eq!(by_alice[0]["data"]["members"]["carol"], "member");
    let what = by_alice[0]["what"].as_str().unwrap();
    assert!(
        what.contains("carol"),
        "JSON says what the event did too: {what}"
    );
    let both = audit(&l, &["--community", "Sales EMEA", "--type", "MembersAdded"]);
    assert_eq!(both.len(), 2);
    let window = audit(&l, &["--since", "@3", "--until", "@5"]);
    assert_eq!(
        window
            .iter()
            .map(|r| r["position"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [4, 5]
    );
    let (code, _, err) = run(&l, &["audit", "--since", "@5", "--until", "@3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("swap them"), "{err}");
    // The table says what each event did in words.
    let table = ok(&l, &["audit", "--type", "BackupTaken"]);
    assert!(table.contains("Files backed up as files-mon"), "{table}");
    let csv = ok(&l, &["audit", "--type", "BackupTaken", "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "position,recorded,occurred,actor,type,community,databases,what,data"
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("4,"), "{row}");
    assert!(row.contains("Files backed up as files-mon"), "{row}");
    let last = audit(&l, &["--limit", "2"]);
    assert_eq!(
        last.iter()
            .map(|r| r["position"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [5, 6]
    );
    let (code, _, err) = run(&l, &["read", "x", "--format", "csv"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn history_names_what_a_restore_rolled_back() {
    let (_d, l) = setup();
    record(
        &l,
        "DatabaseRestored",
        r#"{"database":"Files","backup":"files-mon"}"#,
    );
    let out = ok(&l, &["history", "Sales EMEA", "--format", "json"]);
    let entries: Vec<serde_json::Value> = out
        .lines()
        .map(|x| serde_json::from_str(x).unwrap())
        .collect();
    let types: Vec<&str> = entries
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "CommunityCreated",
            "WidgetAdded",
            "RemoteAppProvisioned",
            "MembersAdded"
        ]
    );
    let added = &entries[3];
    assert_eq!(added["held"], serde_json::json!(["Communities"]));
    assert_eq!(added["lost"][0]["database"], "Files");
    assert_eq!(added["lost"][0]["by"], "restore");
    assert_eq!(added["lost"][0]["backup"], "files-mon");
    assert_eq!(entries[2]["held"], serde_json::json!(["Files"]));
    let (code, _, _) = run(&l, &["history", "Nobody"]);
    assert_eq!(code, 5);
}
