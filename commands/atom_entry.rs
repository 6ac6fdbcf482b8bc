//! Reading the Atom entry Communities POSTs to a lifecycle handler (domain.md §3): the event in
//! `atom:category` (scheme `http://www.ibm.com/prod/sn/type/event`), the community in
//! `snx:container` with its `snx:property` children, the widget instance in
//! `snx:remoteApplication` or `snx:managedApplication`, the actor in `atom:author/snx:userid`.

use crate::atom_api::{parse as parse_tree, Element, ATOM, SNX};
use anyhow::{anyhow, bail};
use projections::lifecycle::Entry;

/// The `atom:category` scheme of lifecycle events.
pub const EVENT_SCHEME: &str = "http://www.ibm.com/prod/sn/type/event";

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn child<'a>(e: &'a Element, ns: &str, name: &str) -> Option<&'a Element> {
    e.children.iter().find(|c| c.ns == ns && c.name == name)
}

/// Parses one lifecycle entry; `widget_def_id` is the handler path's.
pub fn parse(body: &[u8], widget_def_id: Option<&str>) -> anyhow::Result<Entry> {
    let root = parse_tree(body)?;
    if !(root.ns == ATOM && root.name == "entry") {
        bail!("the body is not an Atom entry (its root element is not atom:entry)");
    }
    let mut entry = Entry {
        widget_def_id: widget_def_id.map(str::to_owned),
        ..Entry::default()
    };
    entry.event = root
        .children
        .iter()
        .filter(|c| c.ns == ATOM && c.name == "category")
        .find(|c| c.attr("scheme") == Some(EVENT_SCHEME))
        .and_then(|c| c.attr("term"))
        .unwrap_or_default()
        .to_owned();
    if entry.event.is_empty() {
        bail!("no atom:category with scheme {EVENT_SCHEME} (the lifecycle event)");
    }
    entry.actor = child(&root, ATOM, "author")
        .and_then(|a| child(a, SNX, "userid"))
        .map(|u| u.text.trim().to_owned());
    if let Some(c) = child(&root, SNX, "container") {
        if let Some(id) = c.attr("id") {
            entry.community = Some(
                id.trim()
                    .parse()
                    .map_err(|_| anyhow!("snx:container id '{id}' is not a community uuid"))?,
            );
        }
        entry.name = c.attr("name").map(str::to_owned);
        for p in c
            .children
            .iter()
            .filter(|p| p.ns == SNX && p.name == "property")
        {
            // A property with no text is there, and empty.
            let value = p.text.trim().to_owned();
            match p.attr("name").unwrap_or_default() {
                "communityType" => entry.community_type = Some(value),
                "communityOrgId" => entry.org_id = Some(value),
                "owners" => entry.owners = Some(list(&value)),
                "members" => entry.members = Some(list(&value)),
                _ => {}
            }
        }
    }
    entry.instance = root
        .children
        .iter()
        .find(|c| c.ns == SNX && (c.name == "remoteApplication" || c.name == "managedApplication"))
        .and_then(|c| c.attr("instanceId"))
        .map(str::to_owned);
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<entry xmlns="http://www.w3.org/2005/Atom" xmlns:snx="http://www.ibm.com/xmlns/prod/sn">
  <id>urn:lsid:ibm.com:communities:event-1</id>
  <category term="community.members.added" scheme="http://www.ibm.com/prod/sn/type/event"/>
  <author><name>Amy Jones</name><snx:userid>AMY-1</snx:userid></author>
  <snx:container id="5d19412d-8665-43bc-8e94-3a4ed1ccb47d" name="Sales &amp; Marketing">
    <snx:property name="communityType">private</snx:property>
    <snx:property name="owners">AMY-1</snx:property>
    <snx:property name="members">BOB-2, CAROL-3</snx:property>
  </snx:container>
  <snx:remoteApplication instanceId="Wabc"/>
</entry>"#;

    #[test]
    fn reads_every_part_of_an_entry() {
        let e = parse(ENTRY.as_bytes(), Some("Files")).unwrap();
        assert_eq!(e.event, "community.members.added");
        assert_eq!(e.name.as_deref(), Some("Sales & Marketing"));
        assert_eq!(
            e.community.unwrap().to_string(),
            "5d19412d-8665-43bc-8e94-3a4ed1ccb47d"
        );
        assert_eq!(e.community_type.as_deref(), Some("private"));
        assert_eq!(e.owners, Some(vec!["AMY-1".to_owned()]));
        assert_eq!(
            e.members,
            Some(vec!["BOB-2".to_owned(), "CAROL-3".to_owned()])
        );
        assert_eq!(e.instance.as_deref(), Some("Wabc"));
        assert_eq!(e.actor.as_deref(), Some("AMY-1"));
        assert_eq!(e.widget_def_id.as_deref(), Some("Files"));
    }

    #[test]
    fn refuses_what_is_not_an_entry() {
        for (body, phrase) in [
            (
                "<feed xmlns='http://www.w3.org/2005/Atom'/>",
                "not an Atom entry",
            ),
            ("<entry xmlns='http://www.w3.org/2005/Atom'>", "ends before"),
            (
                "<entry xmlns='http://www.w3.org/2005/Atom'></entry>",
                "no atom:category",
            ),
            ("not xml at all <", "malformed XML"),
            (
                &ENTRY.replace("5d19412d-8665-43bc-8e94-3a4ed1ccb47d", "nope"),
                "not a community uuid",
            ),
        ] {
            let err = parse(body.as_bytes(), None).unwrap_err().to_string();
            assert!(err.contains(phrase), "{body}: {err}");
        }
    }

    proptest::proptest! {
        /// Any bytes, and any mangling of a real entry: an entry or a clear error, never a
        /// panic; and whatever parses translates without one.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
                        cut in 0usize..700, flip in 0usize..700) {
            let mut mangled = ENTRY.as_bytes().to_vec();
            if flip < mangled.len() {
                mangled[flip] ^= 0x20;
            }
            mangled.truncate(cut.max(1));
            for body in [&bytes[..], &mangled[..]] {
                if let Ok(e) = parse(body, Some("Files")) {
                    let _ = projections::lifecycle::translate(&projections::World::default(), &e);
                }
            }
        }
    }
}
