//! Reading what the Communities Atom API and the apps' feeds return (connections-api.md §1, §4):
//! community entries and feeds (with paging; `all` and `trash`), members, widgets and remote
//! applications feeds, community activities, a community's Files library, a community wiki,
//! and the error body. Documents
//! are read into a small namespace-aware tree first, so the
//! extractors follow the format rather than a byte layout: real servers put namespace
//! declarations on odd elements and whitespace inside values.

use anyhow::{anyhow, bail};
use projections::{CommunityType, Role};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use uuid::Uuid;

pub const ATOM: &str = "http://www.w3.org/2005/Atom";
pub const SNX: &str = "http://www.ibm.com/xmlns/prod/sn";
pub const TD: &str = "urn:ibm.com/td";
const OPENSEARCH: &str = "http://a9.com/-/spec/opensearch/1.1/";
const TYPE_SCHEME: &str = "http://www.ibm.com/xmlns/prod/sn/type";
const PARENT_REL: &str = "http://www.ibm.com/xmlns/prod/sn/parentcommunity";
const MEMBERS_REL: &str = "http://www.ibm.com/xmlns/prod/sn/member-list";
const WIDGETS_REL: &str = "http://www.ibm.com/xmlns/prod/sn/widgets";
const REMOTE_APP_FEED_REL: &str = "http://www.ibm.com/xmlns/prod/sn/remote-application/feed";

/// One element: namespace, local name, attributes (by local name), text, children.
#[derive(Debug, Default)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }
    fn all<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.is(ns, name))
    }
    /// The trimmed text of a child.
    fn value(&self, ns: &str, name: &str) -> Option<String> {
        self.child(ns, name).map(|c| c.text.trim().to_owned())
    }
    fn link(&self, rel: &str) -> Option<&str> {
        self.all(ATOM, "link")
            .find(|l| l.attr("rel") == Some(rel))
            .and_then(|l| l.attr("href"))
    }
}

fn start(e: &BytesStart, ns: ResolveResult) -> anyhow::Result<Element> {
    let ns = match ns {
        ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
        _ => String::new(),
    };
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| anyhow!("a malformed attribute: {e}"))?;
        let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
        attrs.push((key, a.unescape_value()?.into_owned()));
    }
    Ok(Element {
        ns,
        name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
        attrs,
        ..Element::default()
    })
}

/// Parses a document into its root element.
pub fn parse(body: &[u8]) -> anyhow::Result<Element> {
    let mut reader = NsReader::from_reader(body);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let mut buf = Vec::new();
    loop {
        let at = reader.buffer_position();
        let (ns, ev) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| anyhow!("malformed XML at byte {at}: {e}"))?;
        match ev {
            Event::Start(ref e) => stack.push(start(e, ns)?),
            Event::Empty(ref e) => {
                let el = start(e, ns)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let raw = t
                        .decode()
                        .map_err(|e| anyhow!("bad text at byte {at}: {e}"))?;
                    let text = quick_xml::escape::unescape(&raw)
                        .map_err(|e| anyhow!("bad text at byte {at}: {e}"))?;
                    top.text.push_str(&text);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let reference = format!("&{};", String::from_utf8_lossy(&r));
                    let text = quick_xml::escape::unescape(&reference)
                        .map_err(|e| anyhow!("bad reference at byte {at}: {e}"))?;
                    top.text.push_str(&text);
                }
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| anyhow!("unbalanced end tag at byte {at}"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        bail!("the document ends before its elements are closed");
    }
    root.ok_or_else(|| anyhow!("the body holds no XML element"))
}

/// A community as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommunityEntry {
    pub uuid: Uuid,
    pub name: String,
    pub community_type: CommunityType,
    pub list_when_restricted: bool,
    pub external: bool,
    pub org_id: Option<String>,
    pub theme: Option<String>,
    pub pre_moderation: bool,
    pub post_moderation: bool,
    pub parent: Option<Uuid>,
    pub tags: Vec<String>,
    /// The creator's `snx:userid`.
    pub author: Option<String>,
    pub published: Option<String>,
    pub updated: Option<String>,
    pub member_count: Option<u64>,
    /// Where its members feed is (`link rel=".../sn/member-list"`).
    pub members_url: Option<String>,
    /// Where its widgets feed is (`link rel=".../sn/widgets"`).
    pub widgets_url: Option<String>,
}

fn uuid_in(s: &str, what: &str) -> anyhow::Result<Uuid> {
    s.trim()
        .parse()
        .map_err(|_| anyhow!("{what} '{}' is not a uuid", s.trim()))
}

/// The `communityUuid` query parameter of a URL.
fn community_param(url: &str) -> Option<&str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("communityUuid="))
}

fn flag(e: &Element, name: &str) -> bool {
    e.value(SNX, name).is_some_and(|v| v == "true")
}

pub fn community_entry(e: &Element) -> anyhow::Result<CommunityEntry> {
    let uuid = match e.value(SNX, "communityUuid") {
        Some(u) => uuid_in(&u, "snx:communityUuid")?,
        None => bail!("a community entry without snx:communityUuid"),
    };
    let community_type = match e.value(SNX, "communityType").as_deref() {
        Some("public") | None => CommunityType::Public,
        Some("publicInviteOnly") => CommunityType::PublicInviteOnly,
        Some("private") => CommunityType::Private,
        Some(other) => bail!("community {uuid}: communityType '{other}' is not known"),
    };
    let parent = match e.link(PARENT_REL).and_then(community_param) {
        Some(p) => Some(uuid_in(p, "the parent community")?),
        None => None,
    };
    Ok(CommunityEntry {
        uuid,
        name: e.value(ATOM, "title").unwrap_or_default(),
        community_type,
        list_when_restricted: flag(e, "listWhenRestricted"),
        external: flag(e, "isExternal"),
        org_id: e.value(SNX, "orgId").filter(|o| !o.is_empty()),
        theme: e
            .child(SNX, "communityTheme")
            .and_then(|t| t.attr("uuid"))
            .map(str::to_owned),
        pre_moderation: flag(e, "preModeration"),
        post_moderation: flag(e, "postModeration"),
        parent,
        tags: e
            .all(ATOM, "category")
            .filter(|c| c.attr("scheme").is_none())
            .filter_map(|c| c.attr("term").map(str::to_owned))
            .collect(),
        author: e.child(ATOM, "author").and_then(|a| a.value(SNX, "userid")),
        published: e.value(ATOM, "published"),
        updated: e.value(ATOM, "updated"),
        member_count: e.value(SNX, "membercount").and_then(|v| v.parse().ok()),
        members_url: e.link(MEMBERS_REL).map(str::to_owned),
        widgets_url: e.link(WIDGETS_REL).map(str::to_owned),
    })
}

/// A widget instance of a community as its widgets feed shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WidgetEntry {
    /// `snx:widgetInstanceId`, e.g. `W1bbc7d02840e_4389_999c_3cb882695d99`.
    pub instance: String,
    /// `snx:widgetDefId`, e.g. `Files`.
    pub def_id: String,
    pub published: Option<String>,
}

fn widget(e: &Element) -> anyhow::Result<WidgetEntry> {
    let instance = e
        .value(SNX, "widgetInstanceId")
        .filter(|i| !i.is_empty())
        .ok_or_else(|| anyhow!("a widget entry without snx:widgetInstanceId"))?;
    let def_id = e
        .value(SNX, "widgetDefId")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| anyhow!("widget {instance}: no snx:widgetDefId"))?;
    Ok(WidgetEntry {
        instance,
        def_id,
        published: e.value(ATOM, "published"),
    })
}

/// A member of a community as its members feed shows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEntry {
    pub userid: String,
    pub role: Role,
    pub published: Option<String>,
}

/// One document read from the API.
#[derive(Debug)]
pub enum Document {
    /// A community entry, or a feed of them, with the next page's URL. `trash`: the feed of
    /// communities in the trash (`communities/trash`).
    Communities {
        entries: Vec<CommunityEntry>,
        total: Option<u64>,
        next: Option<String>,
        trash: bool,
    },
    /// The widget instances of one community.
    Widgets {
        community: Uuid,
        widgets: Vec<WidgetEntry>,
    },
    /// The remote applications of one community: the app type (`Files`, `Activities` …) and
    /// where its feed for the community is.
    RemoteApplications {
        community: Uuid,
        apps: Vec<(String, Option<String>)>,
    },
    /// The members of one community.
    Members {
        community: Uuid,
        members: Vec<MemberEntry>,
    },
    /// Activities of communities: (activity id, community).
    Activities { activities: Vec<(String, Uuid)> },
    /// A community's Files library: its id (`td:libraryId`, not the community's) and its
    /// files' ids (`td:uuid`).
    FilesLibrary {
        community: Uuid,
        library: Option<String>,
        files: Vec<String>,
    },
    /// A community's wiki: its id, its label (the Wiki widget instance id), the community.
    Wiki {
        id: String,
        label: String,
        community: Uuid,
    },
    /// An error body.
    Error { code: Option<u16>, message: String },
}

pub fn document(body: &[u8]) -> anyhow::Result<Document> {
    let root = parse(body)?;
    if root.is(SNX, "error") {
        return Ok(Document::Error {
            code: root.value(SNX, "code").and_then(|c| c.parse().ok()),
            message: root.value(SNX, "message").unwrap_or_default(),
        });
    }
    let entries: Vec<&Element> = if root.is(ATOM, "entry") {
        vec![&root]
    } else if root.is(ATOM, "feed") {
        root.all(ATOM, "entry").collect()
    } else {
        bail!(
            "not an Atom feed or entry (root element {}:{})",
            root.ns,
            root.name
        );
    };
    let kind = |e: &Element| {
        e.all(ATOM, "category")
            .find(|c| c.attr("scheme") == Some(TYPE_SCHEME))
            .and_then(|c| c.attr("term"))
            .unwrap_or("")
            .to_owned()
    };
    if root.is(ATOM, "entry") && root.child(TD, "label").is_some() {
        let community = uuid_in(
            &root.value(SNX, "communityUuid").unwrap_or_default(),
            "snx:communityUuid",
        )?;
        return Ok(Document::Wiki {
            id: root.value(TD, "uuid").unwrap_or_default(),
            label: root.value(TD, "label").unwrap_or_default(),
            community,
        });
    }
    // The feed's own address: its id, else its self link.
    let address = root
        .value(ATOM, "id")
        .into_iter()
        .chain(root.link("self").map(str::to_owned))
        .collect::<Vec<_>>();
    let is_widgets = root.is(ATOM, "feed")
        && (address.iter().any(|a| a.contains("/community/widgets"))
            || (!entries.is_empty()
                && entries.iter().all(|e| {
                    e.all(ATOM, "category")
                        .any(|c| c.attr("term") == Some("widget"))
                })));
    if is_widgets {
        let community = address
            .iter()
            .find_map(|a| community_param(a))
            .ok_or_else(|| anyhow!("a widgets feed that does not name its community"))?;
        let community = uuid_in(community, "the widgets feed's community")?;
        let widgets = entries
            .iter()
            .map(|e| widget(e))
            .collect::<anyhow::Result<_>>()?;
        return Ok(Document::Widgets { community, widgets });
    }
    let is_remote_apps = root.is(ATOM, "feed")
        && address.iter().any(|a| {
            a.contains("/community/remoteApplications") || a.contains("remoteapplicationfeed")
        });
    if is_remote_apps {
        let id = address
            .iter()
            .find_map(|a| {
                community_param(a)
                    .or_else(|| a.rsplit_once("remoteapplicationfeed-").map(|(_, u)| u))
            })
            .ok_or_else(|| {
                anyhow!("a remote applications feed that does not name its community")
            })?;
        let community = uuid_in(id, "the remote applications feed's community")?;
        let apps = entries
            .iter()
            .map(|e| {
                let app = e
                    .all(ATOM, "category")
                    .find(|c| c.attr("scheme") == Some(TYPE_SCHEME))
                    .and_then(|c| c.attr("term"))
                    .ok_or_else(|| anyhow!("a remote application without its type (category)"))?;
                Ok((
                    app.to_owned(),
                    e.link(REMOTE_APP_FEED_REL).map(str::to_owned),
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        return Ok(Document::RemoteApplications { community, apps });
    }
    let is_library = root.is(ATOM, "feed")
        && (address.iter().any(|a| a.contains("/communitylibrary/"))
            || (!entries.is_empty()
                && entries
                    .iter()
                    .all(|e| e.value(TD, "libraryType").as_deref() == Some("communityFiles"))));
    if is_library {
        let named = address.iter().find_map(|a| {
            let rest = a.split_once("/communitylibrary/")?.1;
            Some(rest.split(['/', '?']).next().unwrap_or(rest))
        });
        let from_links = entries.iter().find_map(|e| {
            e.all(ATOM, "link")
                .filter_map(|l| l.attr("href"))
                .find_map(|h| community_param(h.split('#').next().unwrap_or(h)))
        });
        let community = named
            .or(from_links)
            .ok_or_else(|| anyhow!("a community library feed that does not name its community"))?;
        return Ok(Document::FilesLibrary {
            community: uuid_in(community, "the library's community")?,
            library: root
                .value(TD, "libraryId")
                .or_else(|| entries.iter().find_map(|e| e.value(TD, "libraryId"))),
            files: entries.iter().filter_map(|e| e.value(TD, "uuid")).collect(),
        });
    }
    let is_members = root.is(ATOM, "feed")
        && (root.child(SNX, "communityLastMod").is_some()
            || root
                .value(ATOM, "id")
                .is_some_and(|i| i.contains("/community/members")));
    if is_members {
        let id = root.value(ATOM, "id").unwrap_or_default();
        let community = uuid_in(
            community_param(&id).unwrap_or(""),
            "the members feed's community",
        )?;
        let members = entries
            .iter()
            .map(|e| member(e))
            .collect::<anyhow::Result<_>>()?;
        return Ok(Document::Members { community, members });
    }
    if entries.iter().any(|e| kind(e).contains("activity")) {
        let mut activities = Vec::new();
        for e in entries
            .iter()
            .filter(|e| kind(e).contains("community_activity"))
        {
            let c = e
                .value(SNX, "communityUuid")
                .or_else(|| e.value(SNX, "commUuid"))
                .ok_or_else(|| anyhow!("a community activity without its community"))?;
            let id = e.value(SNX, "activity").unwrap_or_default();
            activities.push((id, uuid_in(&c, "snx:communityUuid")?));
        }
        return Ok(Document::Activities { activities });
    }
    let communities = entries
        .iter()
        .map(|e| community_entry(e))
        .collect::<anyhow::Result<_>>()?;
    Ok(Document::Communities {
        entries: communities,
        total: root
            .value(OPENSEARCH, "totalResults")
            .and_then(|t| t.parse().ok()),
        next: root.link("next").map(str::to_owned),
        trash: root.is(ATOM, "feed") && address.iter().any(|a| a.contains("communities/trash")),
    })
}

fn member(e: &Element) -> anyhow::Result<MemberEntry> {
    let who = e
        .child(ATOM, "contributor")
        .and_then(|c| c.value(SNX, "userid"))
        .ok_or_else(|| anyhow!("a member entry without contributor/snx:userid"))?;
    let role = match e.value(SNX, "role").as_deref() {
        Some("owner") => Role::Owner,
        Some("member") | None => Role::Member,
        Some(other) => bail!("member {who}: role '{other}' is not owner or member"),
    };
    Ok(MemberEntry {
        userid: who,
        role,
        published: e.value(ATOM, "published"),
    })
}
