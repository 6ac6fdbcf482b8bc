//! `import atom DIR` on the recorded Connections responses: everything new is recorded with the
//! feeds' times, a second run appends nothing, a changed snapshot appends just the changes, and
//! a bad file imports nothing.

mod common;

use common::{audit, lifeline, ok};
use serde_json::Value;
use std::path::Path;

fn fixtures(into: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/connections");
    std::fs::create_dir_all(into).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, into.join(p.file_name().unwrap())).unwrap();
    }
}

fn import(l: &Path, dir: &Path) -> Value {
    serde_json::from_str(&ok(
        l,
        &["import", "atom", dir.to_str().unwrap(), "--format", "json"],
    ))
    .unwrap()
}

#[test]
fn snapshots_become_events_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (l, dir) = (tmp.path().join("a.redb"), tmp.path().join("feeds"));
    fixtures(&dir);
    ok(&l, &["init"]);
    let first = import(&l, &dir);
    assert_eq!(first["communities"], 14, "{first}");
    assert_eq!(first["documents"], 10);
    assert_eq!(first["created"], 14);
    let again = import(&l, &dir);
    assert_eq!(again["appended"], 0, "{again}");

    // The restricted community, as its entry says, created when the entry says.
    let rows = audit(&l, &["--community", RESTRICTED]);
    let row = &rows[0];
    assert_eq!(row["type"], "CommunityCreated");
    assert_eq!(row["occurred"], "2013-03-28T07:20:25.991Z");
    assert_eq!(row["data"]["communityType"], "private");
    assert_eq!(
        row["data"]["owners"][0],
        "0EE5A7FA-3434-9A59-4825-7A7000278DAA"
    );

    // Later: renamed and opened up.
    let path = dir.join("community-entry-restricted.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text
        .replace("Restricted Communty 1", "Open Community 1")
        .replace(">private\n", ">public\n")
        .replace(
            "<updated>2013-03-28T07:20:27.889Z</updated>",
            "<updated>2014-01-02T03:04:05Z</updated>",
        );
    assert_ne!(changed, text);
    std::fs::write(&path, changed).unwrap();
    let third = import(&l, &dir);
    assert_eq!(third["appended"], 2, "{third}");
    let types: Vec<(String, String)> = audit(&l, &["--community", RESTRICTED])
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_owned(),
                r["occurred"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        types[1..],
        [
            (
                "CommunityUpdated".to_owned(),
                "2014-01-02T03:04:05Z".to_owned()
            ),
            (
                "VisibilityChanged".to_owned(),
                "2014-01-02T03:04:05Z".to_owned()
            ),
        ]
    );
}

#[test]
fn a_bad_file_imports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (l, dir) = (tmp.path().join("a.redb"), tmp.path().join("feeds"));
    fixtures(&dir);
    std::fs::write(
        dir.join("zz-broken.xml"),
        "<feed xmlns='http://www.w3.org/2005/Atom'><entry>",
    )
    .unwrap();
    ok(&l, &["init"]);
    let r = lifeline(&l, &["import", "atom", dir.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("zz-broken.xml") && r.stderr.contains("nothing was imported"),
        "{}",
        r.stderr
    );
    // Options may come before `atom` too; a file and `atom` together are refused.
    let r = lifeline(
        &l,
        &["import", "--format", "json", "atom", dir.to_str().unwrap()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("zz-broken.xml"), "{}", r.stderr);
    let r = lifeline(&l, &["import", "x.jsonl", "atom", dir.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not both"), "{}", r.stderr);
    let cp: Value = serde_json::from_str(&ok(&l, &["checkpoint", "--format", "json"])).unwrap();
    assert_eq!(cp["size"], 0);
}

const RESTRICTED: &str = "ad7bdb90-bebd-42a1-be13-a7cd80dc4378";

/// A widgets feed as the Communities API shapes it (connections-api.md: `category
/// term="widget"`, `snx:widgetDefId`, `snx:widgetInstanceId`); no recorded one exists.
fn widgets_feed(widgets: &[(&str, &str)]) -> String {
    let entries: String = widgets
        .iter()
        .map(|(def, instance)| {
            format!(
                "<entry><id>urn:widget:{instance}</id><title>{def}</title>\
                 <category term=\"widget\" scheme=\"http://www.ibm.com/xmlns/prod/sn/type\"/>\
                 <snx:widgetDefId>{def}</snx:widgetDefId>\
                 <snx:widgetInstanceId>{instance}</snx:widgetInstanceId>\
                 <published>2014-02-03T04:05:06Z</published></entry>"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:snx=\"http://www.ibm.com/xmlns/prod/sn\">\
         <id>https://connections.example.com/communities/service/atom/community/widgets?communityUuid={RESTRICTED}</id>\
         <title>Widgets</title>{entries}</feed>"
    )
}

/// The trash feed holding the given recorded entry.
fn trash_feed(entry: &str) -> String {
    let entry = entry.trim_start();
    let entry = match entry.strip_prefix("<?xml") {
        Some(rest) => &rest[rest.find("?>").unwrap() + 2..],
        None => entry,
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <id>https://connections.example.com/communities/service/atom/communities/trash</id>\
         <title>Trash</title>{entry}</feed>"
    )
}

fn types_of(l: &Path) -> Vec<String> {
    audit(l, &["--community", RESTRICTED])
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn widgets_trash_restore_and_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let (l, dir) = (tmp.path().join("a.redb"), tmp.path().join("feeds"));
    fixtures(&dir);
    ok(&l, &["init"]);
    import(&l, &dir);

    // Widgets: two added, then one of them removed.
    let files = "W1bbc7d02840e_4389_999c_3cb882695d99";
    let activities = "W5aa1c2d3e4f5_4a6b_8c7d_9e0f1a2b3c4d";
    let widgets = dir.join("widgets-restricted.xml");
    std::fs::write(
        &widgets,
        widgets_feed(&[("Files", files), ("Activities", activities)]),
    )
    .unwrap();
    assert_eq!(import(&l, &dir)["appended"], 2);
    assert_eq!(
        import(&l, &dir)["appended"],
        0,
        "the same widgets again: nothing"
    );
    std::fs::write(&widgets, widgets_feed(&[("Files", files)])).unwrap();
    assert_eq!(import(&l, &dir)["appended"], 1);
    let types = types_of(&l);
    assert_eq!(
        &types[types.len() - 3..],
        ["WidgetAdded", "WidgetAdded", "WidgetRemoved"]
    );

    // Into the trash: the entry is in the trash feed, no longer in communities/all.
    let entry_path = dir.join("community-entry-restricted.xml");
    let entry = std::fs::read_to_string(&entry_path).unwrap();
    std::fs::remove_file(&entry_path).unwrap();
    std::fs::write(dir.join("trash.xml"), trash_feed(&entry)).unwrap();
    assert_eq!(import(&l, &dir)["appended"], 1);
    assert_eq!(types_of(&l).last().unwrap(), "CommunityTrashed");
    assert_eq!(
        import(&l, &dir)["appended"],
        0,
        "still in the trash: nothing"
    );

    // Back out of the trash.
    std::fs::remove_file(dir.join("trash.xml")).unwrap();
    std::fs::write(&entry_path, &entry).unwrap();
    assert_eq!(import(&l, &dir)["appended"], 1);
    assert_eq!(types_of(&l).last().unwrap(), "CommunityRestored");

    // Gone from both: without --complete nothing can be said; with it, purged.
    std::fs::remove_file(&entry_path).unwrap();
    std::fs::remove_file(&widgets).unwrap();
    assert_eq!(import(&l, &dir)["appended"], 0);
    let complete: Value = serde_json::from_str(&ok(
        &l,
        &[
            "import",
            "atom",
            dir.to_str().unwrap(),
            "--complete",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(complete["appended"], 2, "{complete}");
    let types = types_of(&l);
    assert_eq!(
        &types[types.len() - 2..],
        ["CommunityTrashed", "CommunityPurged"]
    );
}
