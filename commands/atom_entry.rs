//! Reading the Atom entry Communities POSTs to a lifecycle handler (domain.md §3): the event in
//! `atom:category` (scheme `http://www.ibm.com/prod/sn/type/event`), the community in
//! `snx:container` with its `snx:property` children, the widget instance in
//! `snx:remoteApplication` or `snx:managedApplication`, the actor in `atom:author/snx:userid`.

use anyhow::{anyhow, bail, Context};
use projections::lifecycle::Entry;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;

const ATOM: &[u8] = b"http://www.w3.org/2005/Atom";
const SNX: &[u8] = b"http://www.ibm.com/xmlns/prod/sn";
/// The `atom:category` scheme of lifecycle events.
pub const EVENT_SCHEME: &str = "http://www.ibm.com/prod/sn/type/event";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ns {
    Atom,
    Snx,
    Other,
}

fn ns_of(r: &ResolveResult) -> Ns {
    match r {
        ResolveResult::Bound(Namespace(n)) if *n == ATOM => Ns::Atom,
        ResolveResult::Bound(Namespace(n)) if *n == SNX => Ns::Snx,
        _ => Ns::Other,
    }
}

fn attr(e: &BytesStart, name: &[u8]) -> anyhow::Result<Option<String>> {
    for a in e.attributes() {
        let a = a.context("a malformed attribute")?;
        if a.key.local_name().as_ref() == name {
            return Ok(Some(a.unescape_value()?.into_owned()));
        }
    }
    Ok(None)
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What the parser is inside of, for the text it meets.
#[derive(Clone, PartialEq, Eq)]
enum Text {
    None,
    UserId,
    Property(String),
}

/// Parses one lifecycle entry; `widget_def_id` is the handler path's.
pub fn parse(body: &[u8], widget_def_id: Option<&str>) -> anyhow::Result<Entry> {
    let mut reader = NsReader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut entry = Entry {
        widget_def_id: widget_def_id.map(str::to_owned),
        ..Entry::default()
    };
    let mut depth = 0usize;
    let mut text = Text::None;
    let mut in_author = false;
    let mut buf = Vec::new();
    loop {
        let at = reader.buffer_position();
        let (ns, ev) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| anyhow!("malformed XML at byte {at}: {e}"))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let local = e.local_name();
                let name = local.as_ref();
                let ns = ns_of(&ns);
                if depth == 0 && !(ns == Ns::Atom && name == b"entry") {
                    bail!("the body is not an Atom entry (its root element is not atom:entry)");
                }
                match (ns, name) {
                    (Ns::Atom, b"category")
                        if attr(e, b"scheme")?.as_deref() == Some(EVENT_SCHEME) =>
                    {
                        entry.event = attr(e, b"term")?.unwrap_or_default();
                    }
                    (Ns::Atom, b"author") => in_author = true,
                    (Ns::Snx, b"userid") if in_author => text = Text::UserId,
                    (Ns::Snx, b"container") => {
                        if let Some(id) = attr(e, b"id")? {
                            entry.community = Some(id.trim().parse().map_err(|_| {
                                anyhow!("snx:container id '{id}' is not a community uuid")
                            })?);
                        }
                        entry.name = attr(e, b"name")?;
                    }
                    (Ns::Snx, b"property") => {
                        text = Text::Property(attr(e, b"name")?.unwrap_or_default());
                        // A property with no text is there, and empty.
                        take_text(&mut entry, &text, String::new());
                    }
                    (Ns::Snx, b"remoteApplication" | b"managedApplication") => {
                        entry.instance = attr(e, b"instanceId")?;
                    }
                    _ => {}
                }
                if empty {
                    if matches!(text, Text::UserId | Text::Property(_)) {
                        text = Text::None;
                    }
                } else {
                    depth += 1;
                }
            }
            Event::Text(t) => {
                let value = t
                    .decode()
                    .map_err(|e| anyhow!("bad text at byte {at}: {e}"))?;
                let value = quick_xml::escape::unescape(&value)
                    .map_err(|e| anyhow!("bad text at byte {at}: {e}"))?
                    .into_owned();
                take_text(&mut entry, &text, value);
            }
            Event::CData(t) => {
                let value = String::from_utf8_lossy(&t).into_owned();
                take_text(&mut entry, &text, value);
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                if e.local_name().as_ref() == b"author" {
                    in_author = false;
                }
                text = Text::None;
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if depth != 0 {
        bail!("the entry ends before its elements are closed");
    }
    if entry.event.is_empty() {
        bail!("no atom:category with scheme {EVENT_SCHEME} (the lifecycle event)");
    }
    Ok(entry)
}

fn take_text(entry: &mut Entry, text: &Text, value: String) {
    match text {
        Text::UserId => entry.actor = Some(value),
        Text::Property(p) => match p.as_str() {
            "communityType" => entry.community_type = Some(value),
            "communityOrgId" => entry.org_id = Some(value),
            "owners" => entry.owners = Some(list(&value)),
            "members" => entry.members = Some(list(&value)),
            _ => {}
        },
        Text::None => {}
    }
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
