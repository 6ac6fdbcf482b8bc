//! Restore semantics against a hand-written model: each database keeps its own copy of the
//! community's type and members; a backup copies one database's; a restore puts it back; later
//! changes apply on top. The intended state never sees a restore.

use projections::events::*;
use projections::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

#[derive(Clone, Debug)]
enum Step {
    Visibility(u8),
    Add(u8),
    Remove(u8),
    Backup(u8),
    Restore(u8, u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3u8).prop_map(Step::Visibility),
        3 => (0..6u8).prop_map(Step::Add),
        2 => (0..6u8).prop_map(Step::Remove),
        2 => (0..3u8).prop_map(Step::Backup),
        2 => (0..3u8, 0..8u8).prop_map(|(d, b)| Step::Restore(d, b)),
    ]
}

const DBS: [Database; 3] = [Database::Communities, Database::Files, Database::Activities];

#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Seen {
    community_type: Option<CommunityType>,
    members: BTreeSet<String>,
}

fn types(i: u8) -> CommunityType {
    [
        CommunityType::Public,
        CommunityType::PublicInviteOnly,
        CommunityType::Private,
    ][i as usize % 3]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn restores_follow_the_model(steps in prop::collection::vec(step(), 1..40)) {
        let c = Uuid::from_u128(1);
        let mut events = vec![
            DomainEvent::CommunityCreated(CommunityCreated::new(c, "M", CommunityType::Public, vec!["owner".into()])),
        ];
        for (app, instance, object) in [(App::Files, "Wf", "lib"), (App::Activities, "Wa", "act")] {
            events.push(DomainEvent::WidgetAdded(WidgetAdded {
                community: c, instance: instance.into(), widget_def_id: app.widget_def_id().into(), actor: None,
            }));
            events.push(DomainEvent::RemoteAppProvisioned(RemoteAppProvisioned {
                community: c, app, instance: instance.into(), object_id: object.into(), actor: None,
            }));
        }
        let start = Seen { community_type: Some(CommunityType::Public), members: ["owner".to_string()].into() };
        let mut now: BTreeMap<Database, Seen> = DBS.iter().map(|d| (*d, start.clone())).collect();
        let mut intended = start.clone();
        let mut backups: Vec<(String, Database, Seen)> = Vec::new();
        for s in steps {
            match s {
                Step::Visibility(t) => {
                    events.push(DomainEvent::VisibilityChanged(VisibilityChanged {
                        community: c, community_type: types(t), list_when_restricted: false, external: false, actor: None,
                    }));
                    for seen in now.values_mut() { seen.community_type = Some(types(t)); }
                    intended.community_type = Some(types(t));
                }
                Step::Add(u) => {
                    let user = format!("u{u}");
                    if intended.members.contains(&user) { continue; }
                    events.push(DomainEvent::MembersAdded(Members {
                        community: c, members: [(user.clone(), Role::Member)].into(), actor: None,
                    }));
                    for seen in now.values_mut() { seen.members.insert(user.clone()); }
                    intended.members.insert(user);
                }
                Step::Remove(u) => {
                    let user = format!("u{u}");
                    if !intended.members.contains(&user) { continue; }
                    events.push(DomainEvent::MembersRemoved(MembersRemoved {
                        community: c, users: vec![user.clone()], actor: None,
                    }));
                    for seen in now.values_mut() { seen.members.remove(&user); }
                    intended.members.remove(&user);
                }
                Step::Backup(d) => {
                    let db = DBS[d as usize];
                    let label = format!("b{}", backups.len());
                    events.push(DomainEvent::BackupTaken(BackupTaken { database: db, label: label.clone(), actor: None }));
                    backups.push((label, db, now[&db].clone()));
                }
                Step::Restore(d, b) => {
                    let db = DBS[d as usize];
                    let Some((label, _, seen)) = backups.iter().filter(|(_, bd, _)| *bd == db).nth(b as usize % 4).cloned() else { continue };
                    events.push(DomainEvent::DatabaseRestored(DatabaseRestored { database: db, backup: label, actor: None }));
                    now.insert(db, seen);
                }
            }
        }
        let recorded: Vec<Recorded> = events.into_iter().enumerate().map(|(i, event)| Recorded {
            position: i as u64 + 1, id: Uuid::from_u128(1000 + i as u128),
            recorded_ns: i as i64, occurred_ns: i as i64, event,
        }).collect();
        let w = World::replay(&recorded);
        let comm = &w.actual.communities()[&c];
        let got = Seen { community_type: Some(comm.community_type), members: comm.members.keys().map(|u| u.to_string()).collect() };
        prop_assert_eq!(&got, &now[&Database::Communities]);
        for (db, app, object) in [(Database::Files, App::Files, "lib"), (Database::Activities, App::Activities, "act")] {
            let r = w.actual.db(db).resource(&projections::state::ResourceKey::new(app, object)).unwrap();
            let got = Seen {
                community_type: Some(r.mirror.community_type),
                members: r.mirror.members.as_ref().unwrap().keys().map(|u| u.to_string()).collect(),
            };
            prop_assert_eq!(&got, &now[&db], "{}", db);
        }
        let ic = &w.intended.communities()[&c];
        prop_assert_eq!(Some(ic.community_type), intended.community_type);
        prop_assert_eq!(ic.members.keys().map(|u| u.to_string()).collect::<BTreeSet<_>>(), intended.members);
        // replaying a prefix gives the world of that prefix, whatever comes after it
        let k = recorded.len() / 2;
        let mut incremental = World::default();
        let failed = failures(&recorded[..k]);
        for r in &recorded[..k] { incremental.apply(r, &failed); }
        prop_assert_eq!(incremental, World::replay(&recorded[..k]));
    }
}
