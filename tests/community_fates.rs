//! `history` and `replay --community UUID` fold only the events that can change a community
//! (`world::community_fates`, `world::community_world`). Their answers must be those of the fold
//! of the whole log, for every community of a simulated deployment with remote apps transferred
//! between communities, failed and retried deliveries, restores that lose changes and a queue
//! clear that drops some.

mod common;

use common::{record, rename_not_delivered_to_forums};
use ledger::{Ledger, Options, Position};
use lifeline::domain::Point;
use lifeline::replay::filtered;
use lifeline::world::{community_fates, fates_of};
use projections::events::*;
use projections::reach::{Fate, Loss};
use projections::{Database, DomainEvent};
use std::collections::HashSet;

/// The labels of the backups of `d` recorded so far, oldest first.
fn backups(l: &Ledger, d: Database) -> Vec<String> {
    lifeline::audit::catch_up(l).unwrap();
    let taken = l.tagged("type:BackupTaken", 1, l.head()).unwrap();
    lifeline::domain::load_positions(l, &taken)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            DomainEvent::BackupTaken(b) if b.database == d => Some(b.label),
            _ => None,
        })
        .collect()
}

fn restore(l: &Ledger, database: Database, backup: &str) {
    record(
        l,
        DomainEvent::DatabaseRestored(DatabaseRestored {
            database,
            backup: backup.into(),
            actor: None,
        }),
    );
}

/// The simulated history with its restores, failed delivery and queue clear, tag index caught up.
fn history(dir: &std::path::Path) -> Ledger {
    let l = Ledger::open(dir.join("l.redb"), Options::default()).unwrap();
    let start = lifeline::time_fmt::parse("2026-10-01T00:00:00Z").unwrap().0;
    let cfg = projections::simulate::Config::new(120, 14, 7, start);
    lifeline::simulate::write(&l, &cfg).unwrap();
    // Files and then Communities (and its retry queue) restored from older backups, with the
    // whole queue cleared between them, a failed delivery to Forums in it.
    let files = backups(&l, Database::Files);
    restore(&l, Database::Files, &files[files.len() - 4]);
    let point = lifeline::domain::Point {
        position: l.head(),
        occurred_by: None,
    };
    let w = lifeline::world::world_at(&l, &point, false).unwrap().world;
    let forum = w.actual.db(Database::Forums).all_resources()[0].community;
    rename_not_delivered_to_forums(&l, forum);
    record(
        &l,
        DomainEvent::QueueCleared(QueueCleared {
            scope: QueueScope::ResourceType,
            actor: None,
        }),
    );
    let comms = backups(&l, Database::Communities);
    restore(&l, Database::Communities, &comms[comms.len() - 3]);
    // In the trash: a subcommunity, its parent and one more community. Nothing can be made a
    // subcommunity of them, and the subcommunity cannot be restored before its parent.
    let sub = w
        .intended
        .communities()
        .values()
        .find(|c| c.parent.is_some())
        .expect("a subcommunity");
    let other = *w.intended.communities().keys().nth(1).unwrap();
    for community in [sub.uuid, sub.parent.unwrap(), other] {
        record(
            &l,
            DomainEvent::CommunityTrashed(CommunityRef {
                community,
                actor: None,
            }),
        );
    }
    lifeline::audit::catch_up(&l).unwrap();
    l
}

#[test]
fn one_community_followed_alone_has_the_fates_of_the_whole_fold() {
    let dir = tempfile::tempdir().unwrap();
    let l = history(dir.path());
    let head = l.head();
    let domain: HashSet<Position> = l.tagged("domain", 1, head).unwrap().into_iter().collect();
    let whole = fates_of(&l, head, domain, false).unwrap();
    let transfers = l.tagged("type:RemoteAppTransferred", 1, head).unwrap();
    let communities: HashSet<uuid::Uuid> = whole
        .events
        .iter()
        .filter_map(|r| r.event.community())
        .collect();
    assert!(communities.len() >= 40);

    let (mut linked, mut restored, mut cleared) = (0, 0, 0);
    for c in communities {
        let own = l.tagged(&format!("community:{c}"), 1, head).unwrap();
        let alone = community_fates(&l, head, c, &own)
            .unwrap()
            .expect("transfers link few communities here");
        let expected: Vec<_> = whole
            .fates
            .iter()
            .filter(|(p, _)| own.binary_search(p).is_ok())
            .collect();
        assert_eq!(
            alone.fates.iter().collect::<Vec<_>>(),
            expected,
            "community {c}"
        );
        let positions: Vec<Position> = alone.events.iter().map(|r| r.position).collect();
        assert_eq!(positions, own, "community {c}: the events followed");
        assert!(alone.unreadable.is_empty());
        linked += usize::from(own.iter().any(|p| transfers.binary_search(p).is_ok()));
        for fate in alone.fates.values().flat_map(|f| f.values()) {
            match fate {
                Fate::Lost {
                    loss: Loss::Restore { .. },
                    ..
                } => restored += 1,
                Fate::Lost {
                    loss: Loss::QueueCleared,
                    ..
                } => cleared += 1,
                _ => {}
            }
        }
    }
    // The history exercises what links or spans communities.
    assert!(linked > 0, "no community took part in a transfer");
    assert!(restored > 0, "no change was lost to a restore");
    assert!(cleared > 0, "no delivery was dropped by the queue clear");
}

#[test]
fn one_community_replayed_alone_is_as_in_the_whole_world() {
    let dir = tempfile::tempdir().unwrap();
    let l = history(dir.path());
    let head = l.head();
    let mid = l.event_at(head / 2).unwrap().unwrap();
    let points = [
        Point {
            position: head,
            occurred_by: None,
        },
        Point {
            position: head / 3,
            occurred_by: None,
        },
        // By occurred time: the events that happened by then, wherever they were recorded.
        Point {
            position: head,
            occurred_by: Some(mid.occurred),
        },
    ];
    let mut compared = 0;
    for point in points {
        let whole = lifeline::world::world_at(&l, &point, false).unwrap().world;
        let communities: Vec<uuid::Uuid> = whole.actual.communities().keys().copied().collect();
        assert!(communities.len() > 20);
        for c in communities {
            let alone = lifeline::world::community_world(&l, &point, c)
                .unwrap()
                .expect("transfers link few communities here")
                .world;
            for (a, w) in [
                (&alone.actual, &whole.actual),
                (&alone.intended, &whole.intended),
            ] {
                for d in Database::ALL {
                    assert!(
                        filtered(a.db(d), Some(c)) == filtered(w.db(d), Some(c)),
                        "community {c}, {d:?}, at {point:?}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 0);
}

/// The events `record` checks against the world of the communities they name
/// (`validate::communities_read`), several for each kind, some accepted and some refused, for
/// community `c` as `w` holds it (a new community with `c` as its parent among them).
fn local_events(w: &projections::World, c: uuid::Uuid) -> Vec<DomainEvent> {
    use projections::{App, CommunityType, Role};
    let mut out = Vec::new();
    let Some(ic) = w.community(c) else {
        return out;
    };
    let owners: Vec<String> = ic.owners().map(str::to_owned).collect();
    let newcomer = uuid::Uuid::from_u128(c.as_u128() ^ 0xFFFF);
    let nowhere = uuid::Uuid::from_u128(7);
    for (community, parent) in [
        (c, None),
        (newcomer, None),
        (newcomer, Some(c)),
        (newcomer, Some(nowhere)),
    ] {
        out.push(DomainEvent::CommunityCreated(CommunityCreated {
            parent,
            ..CommunityCreated::new(community, "Sub", CommunityType::Public, vec!["ann".into()])
        }));
    }
    let someone = ic.members.keys().next().map(|u| u.to_string());
    for user in someone.iter().map(String::as_str).chain(["newcomer"]) {
        for role in [Role::Member, Role::Owner] {
            let members = [(user.to_owned(), role)].into();
            out.push(DomainEvent::MembersAdded(Members {
                community: c,
                members,
                actor: None,
            }));
            let members = [(user.to_owned(), role)].into();
            out.push(DomainEvent::MembersModified(Members {
                community: c,
                members,
                actor: None,
            }));
        }
    }
    for users in [
        owners.clone(),
        vec!["nobody".to_owned()],
        someone.into_iter().collect(),
    ] {
        out.push(DomainEvent::MembersRemoved(MembersRemoved {
            community: c,
            users,
            actor: None,
        }));
    }
    for (community_type, list_when_restricted) in [
        (CommunityType::Public, true),
        (CommunityType::Private, true),
    ] {
        out.push(DomainEvent::VisibilityChanged(VisibilityChanged {
            community: c,
            community_type,
            list_when_restricted,
            external: false,
            actor: None,
        }));
    }
    out.push(DomainEvent::CommunityUpdated(CommunityUpdated {
        community: c,
        name: Some("Renamed".into()),
        ..Default::default()
    }));
    out.push(DomainEvent::OrgChanged(OrgChanged {
        community: c,
        org_id: "org-2".into(),
        actor: None,
    }));
    let instances: Vec<String> = ic
        .widgets
        .keys()
        .map(|k| k.to_string())
        .chain(["Wnew".into()])
        .collect();
    for instance in instances {
        out.push(DomainEvent::WidgetAdded(WidgetAdded {
            community: c,
            instance: instance.clone(),
            widget_def_id: App::Files.widget_def_id().into(),
            actor: None,
        }));
        out.push(DomainEvent::WidgetRemoved(WidgetRemoved {
            community: c,
            instance,
            actor: None,
        }));
    }
    let ours = CommunityRef {
        community: c,
        actor: None,
    };
    out.push(DomainEvent::CommunityTrashed(ours.clone()));
    out.push(DomainEvent::CommunityRestored(ours.clone()));
    out.push(DomainEvent::CommunityPurged(ours));
    let shared: Vec<(App, String)> = w
        .intended
        .db(Database::Files)
        .shares
        .iter()
        .filter(|(sc, _, _)| *sc == c)
        .map(|(_, app, o)| (*app, o.clone()))
        .chain([
            (App::Files, "file-new".into()),
            (App::Forum, "topic".into()),
        ])
        .collect();
    for (app, object_id) in shared {
        let share = Share {
            community: c,
            app,
            object_id,
            actor: None,
        };
        out.push(DomainEvent::CommunityShareAdded(share.clone()));
        out.push(DomainEvent::CommunityShareRemoved(share));
    }
    let queued = w.actual.db(Database::Communities).queue.iter();
    let reports: Vec<(App, uuid::Uuid)> = queued
        .filter(|q| q.community == c)
        .flat_map(|q| [(q.app, q.event), (App::Wiki, q.event)])
        .chain([(App::Files, uuid::Uuid::from_u128(7))])
        .collect();
    for (app, event) in reports {
        let d = Delivery {
            community: c,
            app,
            event,
        };
        out.push(DomainEvent::DeliveryFailed(d.clone()));
        out.push(DomainEvent::DeliveryRetried(d));
    }
    out
}

#[test]
fn record_judges_an_event_by_the_world_of_the_communities_it_names_as_by_the_whole_world() {
    use lifeline::world::checking_world;
    use projections::validate::{communities_read, validate};
    let dir = tempfile::tempdir().unwrap();
    let l = history(dir.path());
    let head = l.head();
    let (mut accepted, mut refused, mut retries, mut before_parent) = (0, 0, 0, 0);
    for position in [head, head / 2] {
        let point = Point {
            position,
            occurred_by: None,
        };
        let whole = lifeline::world::world_at(&l, &point, false).unwrap().world;
        let communities: Vec<uuid::Uuid> = whole.intended.communities().keys().copied().collect();
        for c in communities {
            let alone = lifeline::world::community_world(&l, &point, c)
                .unwrap()
                .expect("transfers link few communities here")
                .world;
            for e in local_events(&whole, c) {
                // The world `record` checks against; `alone` where that is `c`'s own.
                let own = communities_read(&e).is_some_and(|read| read == [c]);
                let of_those = (!own).then(|| checking_world(&l, &point, &e).unwrap());
                let verdict = validate(&whole, &e);
                let judged = validate(of_those.as_ref().unwrap_or(&alone), &e);
                assert_eq!(judged, verdict, "community {c}, {e:?}");
                match (&e, &verdict) {
                    (DomainEvent::DeliveryRetried(_), Ok(())) => retries += 1,
                    (DomainEvent::CommunityRestored(_), Err(r)) if r.0.contains("parent") => {
                        before_parent += 1
                    }
                    (_, Ok(())) => accepted += 1,
                    (_, Err(_)) => refused += 1,
                }
            }
        }
    }
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
    assert!(retries > 0, "no queued delivery to retry");
    assert!(before_parent > 0, "no restore refused for its parent");
}
