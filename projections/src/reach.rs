//! Where each event's change stands in each database: held, waiting in the retry queue, or lost
//! (rolled back by a restore to an older backup, or dropped from the queue). Computed beside the
//! fold, from the same rules: a community event reaches the Communities database at once and each
//! app holding a resource of the community when it is delivered; a backup keeps what its
//! database held; a restore gives that back and loses what came after.

use crate::events::{DomainEvent, QueueScope};
use crate::fold::{failures, is_lifecycle, Failures, Recorded, World};
use crate::vocabulary::{App, Database};
use imbl::OrdMap;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Why a database no longer holds a change.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "by")]
pub enum Loss {
    /// The database was restored from a backup taken before the change reached it.
    Restore {
        backup: String,
        backup_position: u64,
    },
    /// The queued delivery was cleared: it never arrives.
    QueueCleared,
}

/// What became of one event in one database.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Fate {
    /// The database holds it, applied at `since` (the event's position, or its retry's).
    Held { since: u64 },
    /// It waits in `LC_EVENT_REPLAY` for this database's app.
    Queued,
    /// Lost at position `at`.
    Lost { at: u64, loss: Loss },
}

/// Event position → database → fate, for every event that concerns a database.
pub type Reach = BTreeMap<u64, BTreeMap<Database, Fate>>;

#[derive(Clone, Default)]
struct Tracked {
    /// Positions of the events whose change each database holds, in the order applied, with
    /// the position at which each was applied.
    applied: OrdMap<Database, Vec<(u64, u64)>>,
    /// Queued deliveries (event position, event id, app, community), part of the Communities
    /// database.
    queue: Vec<(u64, uuid::Uuid, App, uuid::Uuid)>,
}

/// Fates of every event of `events` at their end.
pub fn reach(events: &[Recorded]) -> Reach {
    reach_and_world(events).0
}

/// [`reach`], and the world after `events` (folded on the way).
pub fn reach_and_world(events: &[Recorded]) -> (Reach, World) {
    reach_and_world_from(World::default(), events)
}

/// [`reach_and_world`] for `events` that continue `start` (a world at some earlier point, with
/// the contents of the backups that `events` restore and `start` precedes, see
/// [`World::backups_needed`]).
///
/// Fates are given for the events of `events` and for the deliveries waiting in `start`'s
/// queue. They are exact when every restore among `events` restores a backup taken after
/// `start`: the changes a restore rolls back are then all among `events`.
pub fn reach_and_world_from(start: World, events: &[Recorded]) -> (Reach, World) {
    let mut reaching = Reaching::new(
        start,
        failures(events),
        crate::fold::restored_labels(events),
        None,
    );
    reaching.feed(events);
    reaching.finish()
}

/// [`reach_and_world_from`] fed a piece at a time, so that a history need not be in memory
/// all at once; optionally for some positions only. Fates depend on each event alone, so
/// following fewer positions changes none of theirs, and costs memory for those alone.
pub struct Reaching {
    world: World,
    failed: Failures,
    restored: HashSet<String>,
    /// The positions whose fates are wanted: all when `None`.
    only: Option<HashSet<u64>>,
    t: Tracked,
    /// Event position → the databases it concerns, one bit each.
    concerned: BTreeMap<u64, u8>,
    backups: HashMap<String, (Database, u64, Tracked)>,
    losses: HashMap<(u64, Database), (u64, Loss)>,
}

impl Reaching {
    /// Continues `start` (see [`reach_and_world_from`]) with events in which `failed` are the
    /// deliveries reported failed and `restored` the backups restored, following the fates of
    /// the positions in `only` (all when `None`).
    pub fn new(
        start: World,
        failed: Failures,
        restored: HashSet<String>,
        only: Option<HashSet<u64>>,
    ) -> Reaching {
        let mut world = start;
        world.keep_backups = Some(restored.clone());
        let mut t = Tracked::default();
        let mut concerned = BTreeMap::new();
        for q in &world.actual.db(Database::Communities).queue {
            if follows(&only, q.position) {
                t.queue.push((q.position, q.event, q.app, q.community));
                concern(&mut concerned, q.position, q.app.database());
            }
        }
        Reaching {
            world,
            failed,
            restored,
            only,
            t,
            concerned,
            backups: HashMap::new(),
            losses: HashMap::new(),
        }
    }

    /// Whether the fate of the event at `p` is followed.
    pub fn follows(&self, p: u64) -> bool {
        follows(&self.only, p)
    }

    /// Folds the next events, in log order.
    pub fn feed(&mut self, events: &[Recorded]) {
        for r in events {
            self.step(r);
        }
    }

    fn step(&mut self, r: &Recorded) {
        let p = r.position;
        // Where the event went: the apps holding resources of its community before it.
        let reached = self.world.apply_reaching(r, &self.failed);
        let follow = self.follows(p);
        let t = &mut self.t;
        let concerned = &mut self.concerned;
        let apply_to = |t: &mut Tracked, d: Database, at: u64| {
            t.applied.entry(d).or_default().push((p, at));
        };
        match &r.event {
            DomainEvent::BackupTaken(b) if self.restored.contains(&b.label) => {
                self.backups
                    .insert(b.label.clone(), (b.database, p, t.clone()));
            }
            DomainEvent::DatabaseRestored(x) => {
                if let Some((d, at, saved)) = self
                    .backups
                    .get(&x.backup)
                    .filter(|(d, _, _)| *d == x.database)
                {
                    let kept: HashSet<u64> = saved
                        .applied
                        .get(d)
                        .into_iter()
                        .flatten()
                        .map(|(e, _)| *e)
                        .collect();
                    for (e, _) in t.applied.get(d).into_iter().flatten() {
                        if !kept.contains(e) {
                            let loss = Loss::Restore {
                                backup: x.backup.clone(),
                                backup_position: *at,
                            };
                            self.losses.insert((*e, *d), (p, loss));
                        }
                    }
                    let restored = saved.applied.get(d).cloned().unwrap_or_default();
                    t.applied.insert(*d, restored);
                    if *d == Database::Communities {
                        // The queue is in the Communities database: deliveries queued since the
                        // backup are gone with it.
                        for (e, id, app, _) in &t.queue {
                            if !saved.queue.iter().any(|q| q.1 == *id && q.2 == *app) {
                                let loss = Loss::Restore {
                                    backup: x.backup.clone(),
                                    backup_position: *at,
                                };
                                self.losses.insert((*e, app.database()), (p, loss));
                            }
                        }
                        t.queue = saved.queue.clone();
                    }
                }
            }
            DomainEvent::DeliveryRetried(x) => {
                if let Some(i) = t
                    .queue
                    .iter()
                    .position(|(_, id, app, _)| *id == x.event && *app == x.app)
                {
                    let (e, _, app, _) = t.queue.remove(i);
                    t.applied.entry(app.database()).or_default().push((e, p));
                }
            }
            DomainEvent::QueueCleared(q) => {
                let cleared: Vec<(u64, App)> = t
                    .queue
                    .iter()
                    .filter(|(_, id, app, c)| match &q.scope {
                        QueueScope::RemoteApp { app: a } => a == app,
                        QueueScope::ResourceType => true,
                        QueueScope::Community { community } => community == c,
                        QueueScope::Event { event } => event == id,
                    })
                    .map(|(e, _, app, _)| (*e, *app))
                    .collect();
                t.queue
                    .retain(|(e, _, app, _)| !cleared.contains(&(*e, *app)));
                for (e, app) in cleared {
                    self.losses
                        .insert((e, app.database()), (p, Loss::QueueCleared));
                }
            }
            _ if !follow => {}
            DomainEvent::RemoteAppProvisioned(x) => {
                apply_to(t, x.app.database(), p);
                concern(concerned, p, x.app.database());
            }
            DomainEvent::RemoteAppTransferred(x) => {
                for d in [Database::Communities, x.app.database()] {
                    apply_to(t, d, p);
                    concern(concerned, p, d);
                }
            }
            DomainEvent::CommunityShareAdded(x) | DomainEvent::CommunityShareRemoved(x) => {
                apply_to(t, x.app.database(), p);
                concern(concerned, p, x.app.database());
            }
            e => {
                if let Some(c) = e.community().filter(|_| is_community_change(e)) {
                    apply_to(t, Database::Communities, p);
                    concern(concerned, p, Database::Communities);
                    if is_lifecycle(e) {
                        for (app, lost) in reached.iter() {
                            let db = app.database();
                            concern(concerned, p, db);
                            if lost {
                                t.queue.push((p, r.id, app, c));
                            } else {
                                apply_to(t, db, p);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The fates of the events followed, and the world after the last event fed.
    pub fn finish(self) -> (Reach, World) {
        let Reaching {
            world,
            t,
            concerned,
            losses,
            ..
        } = self;
        let held: HashMap<Database, HashMap<u64, u64>> = t
            .applied
            .iter()
            .map(|(d, v)| (*d, v.iter().copied().collect()))
            .collect();
        let queued: HashSet<(u64, Database)> = t
            .queue
            .iter()
            .map(|(e, _, app, _)| (*e, app.database()))
            .collect();
        let fates = concerned
            .into_iter()
            .map(|(p, dbs)| {
                let fates = Database::ALL
                    .into_iter()
                    .filter(|d| dbs & (1 << *d as u8) != 0)
                    .map(|d| {
                        let fate = if let Some(since) = held.get(&d).and_then(|h| h.get(&p)) {
                            Fate::Held { since: *since }
                        } else if queued.contains(&(p, d)) {
                            Fate::Queued
                        } else if let Some((at, loss)) = losses.get(&(p, d)) {
                            Fate::Lost {
                                at: *at,
                                loss: loss.clone(),
                            }
                        } else {
                            Fate::Queued
                        };
                        (d, fate)
                    })
                    .collect();
                (p, fates)
            })
            .collect();
        (fates, world)
    }
}

fn follows(only: &Option<HashSet<u64>>, p: u64) -> bool {
    only.as_ref().is_none_or(|o| o.contains(&p))
}

fn concern(c: &mut BTreeMap<u64, u8>, p: u64, d: Database) {
    *c.entry(p).or_default() |= 1 << d as u8;
}

/// Community events that change the Communities database.
fn is_community_change(e: &DomainEvent) -> bool {
    !matches!(
        e,
        DomainEvent::DeliveryFailed(_) | DomainEvent::DeliveryRetried(_)
    )
}
