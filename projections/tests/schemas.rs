//! `schema/events/<Type>.schema.json` are the JSON Schemas of the event data, generated from the
//! types: this test fails when they drift. `LIFELINE_BLESS=1` rewrites them.

use std::path::Path;

#[test]
fn committed_schemas_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/events");
    let bless = std::env::var_os("LIFELINE_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, schema) in projections::events::schemas() {
        let mut value = serde_json::to_value(&schema).unwrap();
        let obj = value.as_object_mut().unwrap();
        obj.insert("title".into(), name.into());
        obj.insert(
            "x-lifeline-schema-version".into(),
            projections::events::SCHEMA_VERSION.into(),
        );
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        let path = dir.join(format!("{name}.schema.json"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "rerun with LIFELINE_BLESS=1 after a deliberate change: {stale:?}"
    );
}
