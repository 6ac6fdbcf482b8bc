//! Every recorded Connections response in `tests/fixtures/connections/` (see its README for
//! where they come from) parses, with the values it holds.

use lifeline::atom_api::{document, Document};
use projections::{CommunityType, Role};
use std::path::Path;

fn read(name: &str) -> Document {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/connections")
        .join(name);
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    document(&body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn community(name: &str) -> lifeline::atom_api::CommunityEntry {
    match read(name) {
        Document::Communities { mut entries, .. } if entries.len() == 1 => entries.remove(0),
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn community_entries() {
    let c = community("community-entry-restricted.xml");
    assert_eq!(c.uuid.to_string(), "ad7bdb90-bebd-42a1-be13-a7cd80dc4378");
    assert_eq!(c.name, "Restricted Communty 1");
    assert_eq!(c.community_type, CommunityType::Private);
    assert_eq!(c.tags, ["tag1", "tag2", "tag3"]);
    assert_eq!(
        c.author.as_deref(),
        Some("0EE5A7FA-3434-9A59-4825-7A7000278DAA")
    );
    assert_eq!(c.theme.as_deref(), Some("default"));
    assert_eq!(c.member_count, Some(5));
    assert_eq!(c.published.as_deref(), Some("2013-03-28T07:20:25.991Z"));
    assert!(!c.pre_moderation && !c.post_moderation);

    let m = community("community-entry-moderated.xml");
    assert_eq!(m.community_type, CommunityType::PublicInviteOnly);
    assert_eq!(m.member_count, Some(4));
    let p = community("community-entry-public.xml");
    assert_eq!(p.community_type, CommunityType::Public);
    assert_eq!(p.uuid.to_string(), "5d19412d-8665-43bc-8e94-3a4ed1ccb47d");
    assert!(p.pre_moderation && p.post_moderation);
    assert_eq!(p.parent, None);

    let s = community("subcommunity-entry.xml");
    assert_eq!(s.uuid.to_string(), "4ead1c30-eff4-4047-bb0c-0b73eb79075b");
    assert_eq!(
        s.parent.map(|u| u.to_string()).as_deref(),
        Some("059fb1c8-1792-405a-96ab-6cf9cf3595b3")
    );
}

#[test]
fn a_page_of_communities() {
    let Document::Communities {
        entries,
        total,
        next,
        trash,
    } = read("communities-feed-page1.xml")
    else {
        panic!("not a communities feed");
    };
    assert_eq!(entries.len(), 10);
    assert_eq!(total, Some(688));
    assert!(!trash, "communities/all is not the trash");
    assert!(
        next.as_deref()
            .is_some_and(|n| n.ends_with("communities/all?page=2")),
        "{next:?}"
    );
    assert_eq!(entries[0].name, "JavaTestCommunity 1392116635633");
    let mut ids: Vec<_> = entries.iter().map(|e| e.uuid).collect();
    ids.dedup();
    assert_eq!(ids.len(), 10);
}

#[test]
fn members_feeds() {
    let Document::Members { community, members } = read("members-feed-2.xml") else {
        panic!("not a members feed");
    };
    assert_eq!(
        community.to_string(),
        "569bf180-1e86-4f4e-a806-23a3699c40d7"
    );
    assert_eq!(members.len(), 5);
    assert_eq!(members.iter().filter(|m| m.role == Role::Owner).count(), 1);
    assert_eq!(members[0].userid, "0EE5A7FA-3434-9A59-4825-7A7000278DAA");
    let Document::Members { community, members } = read("members-feed.xml") else {
        panic!("not a members feed");
    };
    assert_eq!(
        community.to_string(),
        "5f697c82-a9a3-453f-a998-553174951ffb"
    );
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].role, Role::Owner);
}

#[test]
fn app_feeds_name_their_community() {
    let Document::Activities { activities } = read("activities-feed-community.xml") else {
        panic!("not an activities feed");
    };
    assert_eq!(activities.len(), 10);
    assert_eq!(activities[0].0, "95e0a124-6596-41f0-99e0-e237f3454f92");
    assert_eq!(
        activities[0].1.to_string(),
        "eef9db57-37da-4b69-917e-fc4faa7692d4"
    );
    let Document::Wiki {
        id,
        label,
        community,
    } = read("wiki-community.xml")
    else {
        panic!("not a wiki");
    };
    assert_eq!(id, "46add1f8-dfe3-4ba4-b0b3-8fd3c89237b6");
    assert_eq!(label, "W9e6ac2731c1e_4232_b4e5_df41fe1ac44c");
    assert_eq!(
        community.to_string(),
        "1385ec11-e8c4-475b-85b8-964e1262a372"
    );
}

#[test]
fn the_error_body() {
    let Document::Error { code, message } = read("error-community-not-found.xml") else {
        panic!("not an error");
    };
    assert_eq!(code, Some(404));
    assert_eq!(
        message,
        "The community which this resource or page is associated with does not exist."
    );
}

#[test]
fn bad_documents_get_clear_errors() {
    for (body, phrase) in [
        ("<html/>", "not an Atom feed or entry"),
        ("<feed xmlns='http://www.w3.org/2005/Atom'>", "ends before"),
        ("", "no XML element"),
        (
            "<entry xmlns='http://www.w3.org/2005/Atom'><title>x</title></entry>",
            "without snx:communityUuid",
        ),
    ] {
        let err = document(body.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(phrase), "{body:?}: {err}");
    }
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/connections");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Any bytes, and every recorded response cut short or with a byte changed: a document
    /// or a clear error, never a panic.
    #[test]
    fn documents_never_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
        which in 0usize..64,
        cut in 0.0f64..1.0,
        flip in 0.0f64..1.0,
        with in proptest::prelude::any::<u8>(),
    ) {
        let _ = document(&bytes);
        let all = fixtures();
        let mut doc = all[which % all.len()].clone();
        let at = ((doc.len() as f64) * flip) as usize;
        if at < doc.len() {
            doc[at] = with;
        }
        let _ = document(&doc);
        doc.truncate(((doc.len() as f64) * cut) as usize);
        match document(&doc) {
            Ok(_) => {}
            Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
        }
    }
}

/// Widgets and remote applications feeds as connections-api.md describes them (no recorded
/// body of either exists): the community from the feed's address, each entry's ids.
#[test]
fn widgets_and_remote_applications_feeds() {
    let u = "5d19412d-8665-43bc-8e94-3a4ed1ccb47d";
    let widgets = format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:snx=\"http://www.ibm.com/xmlns/prod/sn\">\
         <id>https://h/communities/service/atom/community/widgets?communityUuid={u}</id>\
         <entry><title>Files</title><category term=\"widget\"/>\
         <snx:widgetDefId>Files</snx:widgetDefId>\
         <snx:widgetInstanceId>W1bbc7d02840e_4389_999c_3cb882695d99</snx:widgetInstanceId></entry></feed>"
    );
    match document(widgets.as_bytes()).unwrap() {
        Document::Widgets { community, widgets } => {
            assert_eq!(community.to_string(), u);
            assert_eq!(widgets[0].def_id, "Files");
            assert_eq!(widgets[0].instance, "W1bbc7d02840e_4389_999c_3cb882695d99");
        }
        other => panic!("{other:?}"),
    }
    let no_instance = widgets.replace(
        "<snx:widgetInstanceId>W1bbc7d02840e_4389_999c_3cb882695d99</snx:widgetInstanceId>",
        "",
    );
    let err = document(no_instance.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("widgetInstanceId"), "{err}");

    let apps = format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <id>urn:lsid:ibm.com:communities:remoteapplicationfeed-{u}</id><title>Sales - Remote Applications</title>\
         <entry><title>Files</title><category term=\"Files\" scheme=\"http://www.ibm.com/xmlns/prod/sn/type\"/>\
         <link rel=\"http://www.ibm.com/xmlns/prod/sn/remote-application/feed\" href=\"https://h/files/basic/api/communitylibrary/{u}/feed\"/></entry>\
         <entry><title>Activities</title><category term=\"Activities\" scheme=\"http://www.ibm.com/xmlns/prod/sn/type\"/></entry></feed>"
    );
    match document(apps.as_bytes()).unwrap() {
        Document::RemoteApplications { community, apps } => {
            assert_eq!(community.to_string(), u);
            assert_eq!(apps.len(), 2);
            assert_eq!(apps[0].0, "Files");
            assert!(apps[0].1.as_deref().unwrap().ends_with("/feed"));
            assert_eq!(apps[1], ("Activities".to_owned(), None));
        }
        other => panic!("{other:?}"),
    }
}

/// A community's Files library feed as connections-api.md describes it (no recorded body):
/// the community from the feed's address, the library id (not the community's), the files.
#[test]
fn a_community_files_library() {
    let u = "5d19412d-8665-43bc-8e94-3a4ed1ccb47d";
    let feed = format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:td=\"urn:ibm.com/td\">\
         <id>https://h/files/basic/api/communitylibrary/{u}/feed</id><title>Files</title>\
         <entry><td:uuid>0f1e2d3c-0000-4000-8000-000000000001</td:uuid>\
         <td:libraryId>9a8b7c6d-0000-4000-8000-00000000000a</td:libraryId>\
         <td:libraryType>communityFiles</td:libraryType>\
         <link rel=\"alternate\" href=\"https://h/files/app/communityview?communityUuid={u}#fullpageWidgetId=W1\"/></entry></feed>"
    );
    match document(feed.as_bytes()).unwrap() {
        Document::FilesLibrary {
            community,
            library,
            files,
        } => {
            assert_eq!(community.to_string(), u);
            assert_eq!(
                library.as_deref(),
                Some("9a8b7c6d-0000-4000-8000-00000000000a")
            );
            assert_eq!(files, ["0f1e2d3c-0000-4000-8000-000000000001"]);
        }
        other => panic!("{other:?}"),
    }
    // Without the address, the entries' links name the community.
    let unnamed = feed.replace(&format!("communitylibrary/{u}/feed"), "somewhere");
    match document(unnamed.as_bytes()).unwrap() {
        Document::FilesLibrary { community, .. } => assert_eq!(community.to_string(), u),
        other => panic!("{other:?}"),
    }
}
