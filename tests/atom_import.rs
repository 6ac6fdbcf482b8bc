//! `import atom DIR` on the recorded Connections responses: everything new is recorded with the
//! feeds' times, a second run appends nothing, a changed snapshot appends just the changes, and
//! a bad file imports nothing.

mod common;

use common::{lifeline, ok};
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
    let audit = ok(
        &l,
        &[
            "audit",
            "--community",
            "ad7bdb90-bebd-42a1-be13-a7cd80dc4378",
            "--format",
            "json",
        ],
    );
    let row: Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
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
    let audit = ok(
        &l,
        &[
            "audit",
            "--community",
            "ad7bdb90-bebd-42a1-be13-a7cd80dc4378",
            "--format",
            "json",
        ],
    );
    let types: Vec<(String, String)> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
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
    let cp: Value = serde_json::from_str(&ok(&l, &["checkpoint", "--format", "json"])).unwrap();
    assert_eq!(cp["size"], 0);
}
