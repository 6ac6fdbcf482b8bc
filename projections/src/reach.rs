//! Where each event's change stands in each database: held, waiting in the retry queue, or lost
//! (rolled back by a restore to an older backup, or dropped from the queue). Computed beside the
//! fold, from the same rules: a community event reaches the Communities database at once and each
//! app holding a resource of the community when it is delivered; a backup keeps what its
//! database held; a restore gives that back and loses what came after.

use crate::events::{DomainEvent, QueueScope};
use crate::fold::{failures, is_lifecycle, Failures, Reached, Recorded, World};
use crate::vocabulary::{App, Database};
use imbl::OrdMap;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Why a database no longer holds a change.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Queued deliveries, part of the Communities database: (event id, app) → (event
    /// position, community). Found by delivery, as the fold's queue is (`crate::queue`); the
    /// copy kept at each backup shares it.
    queue: OrdMap<(uuid::Uuid, App), (u64, uuid::Uuid)>,
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
    fed(start, events).finish()
}

/// [`reach_and_world_from`] with the lost fates alone (see [`Reaching::finish_lost`]).
pub fn lost_and_world_from(start: World, events: &[Recorded]) -> (Reach, World) {
    fed(start, events).finish_lost()
}

/// `start` with all of `events` fed, every position followed.
fn fed(start: World, events: &[Recorded]) -> Reaching {
    let mut reaching = Reaching::new(
        start,
        failures(events),
        crate::fold::restored_labels(events),
        None,
    );
    reaching.feed(events);
    reaching
}

/// [`reach_and_world_from`] fed a piece at a time, so that a history need not be in memory
/// all at once; optionally for some positions only. Fates depend on each event alone, so
/// following fewer positions changes none of theirs, and costs memory for those alone.
pub struct Reaching {
    world: World,
    failed: Failures,
    following: Following,
}

/// What [`Reaching`] keeps beside the world: it reads only the events and where each went, so
/// it may be kept on another thread than the fold.
struct Following {
    restored: HashSet<String>,
    /// The positions whose fates are wanted: all when `None`.
    only: Option<HashSet<u64>>,
    t: Tracked,
    /// Event position → the databases it concerns, one bit each.
    concerned: BTreeMap<u64, u8>,
    backups: HashMap<String, (Database, u64, Tracked)>,
    losses: Quick<(u64, Database), (u64, Loss)>,
}

/// A map keyed by positions and databases, looked up once per event and database: hashed
/// quickly (positions come from the log, not from a caller).
type Quick<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
type QuickSet<T> = HashSet<T, foldhash::fast::FixedState>;

/// Events from which [`Reaching::feed`] follows them on a second core while this one folds
/// them, how many it hands over at a time, and how many such batches may wait.
pub const FOLLOW_APART_AT_LEAST: usize = 4096;
const FOLLOW_BATCH: usize = 256;
const FOLLOW_BATCHES_WAITING: usize = 16;

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
                t.queue.insert((q.event, q.app), (q.position, q.community));
                concern(&mut concerned, q.position, q.app.database());
            }
        }
        Reaching {
            world,
            failed,
            following: Following {
                restored,
                only,
                t,
                concerned,
                backups: HashMap::new(),
                losses: Quick::default(),
            },
        }
    }

    /// Whether the fate of the event at `p` is followed.
    pub fn follows(&self, p: u64) -> bool {
        follows(&self.following.only, p)
    }

    /// Folds the next events, in log order.
    ///
    /// Following them needs only each event and where it went (the apps holding resources of
    /// its community before it), never the world itself: with a second core, and enough events
    /// to be worth a thread, they are followed there, a batch behind the fold, which then has
    /// this core to itself (following was about a sixth of the work at 100,000 communities).
    pub fn feed(&mut self, events: &[Recorded]) {
        let Reaching {
            world,
            failed,
            following,
        } = self;
        if events.len() < FOLLOW_APART_AT_LEAST || !crate::parallel::second_core() {
            for r in events {
                let reached = world.apply_reaching(r, failed);
                following.step(r, reached);
            }
            return;
        }
        let (to_follow, folded) =
            std::sync::mpsc::sync_channel::<Vec<Reached>>(FOLLOW_BATCHES_WAITING);
        std::thread::scope(|s| {
            let behind = s.spawn(move || {
                for (batch, reached) in events.chunks(FOLLOW_BATCH).zip(folded) {
                    for (r, reached) in batch.iter().zip(reached) {
                        following.step(r, reached);
                    }
                }
            });
            for batch in events.chunks(FOLLOW_BATCH) {
                let reached = batch
                    .iter()
                    .map(|r| world.apply_reaching(r, failed))
                    .collect();
                if to_follow.send(reached).is_err() {
                    break; // following stopped (it panicked)
                }
            }
            drop(to_follow);
            behind
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        });
    }

    /// The fates of the events followed, and the world after the last event fed.
    pub fn finish(self) -> (Reach, World) {
        let Reaching {
            world, following, ..
        } = self;
        let standing = Standing::new(&following, |_| true);
        let fates = following
            .concerned
            .iter()
            .map(|(&p, &dbs)| {
                let fates = Database::ALL
                    .into_iter()
                    .filter(|d| dbs & bit(*d) != 0)
                    .map(|d| (d, standing.fate(p, d)))
                    .collect();
                (p, fates)
            })
            .collect();
        (fates, world)
    }

    /// [`Reaching::finish`] with the lost fates alone: what findings report. It asks only
    /// about the changes that something rolled back or dropped, instead of every event's
    /// standing in every database.
    pub fn finish_lost(self) -> (Reach, World) {
        let Reaching {
            world, following, ..
        } = self;
        let mut dbs = 0u8;
        for (_, d) in following.losses.keys() {
            dbs |= bit(*d);
        }
        let standing = Standing::new(&following, |d| dbs & bit(d) != 0);
        let mut fates = Reach::new();
        for &(p, d) in following.losses.keys() {
            let concerns = following.concerned.get(&p).is_some_and(|c| c & bit(d) != 0);
            if !concerns {
                continue;
            }
            let fate = standing.fate(p, d);
            if matches!(fate, Fate::Lost { .. }) {
                fates.entry(p).or_default().insert(d, fate);
            }
        }
        (fates, world)
    }
}

impl Following {
    /// Follows `r`, which went where `reached` says.
    fn step(&mut self, r: &Recorded, reached: Reached) {
        let p = r.position;
        let follow = follows(&self.only, p);
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
                    let kept: QuickSet<u64> = saved
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
                        for ((id, app), (e, _)) in &t.queue {
                            if !saved.queue.contains_key(&(*id, *app)) {
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
                if let Some((e, _)) = t.queue.remove(&(x.event, x.app)) {
                    t.applied.entry(x.app.database()).or_default().push((e, p));
                }
            }
            DomainEvent::QueueCleared(q) => {
                let cleared: Vec<((uuid::Uuid, App), u64)> = t
                    .queue
                    .iter()
                    .filter(|((id, app), (_, c))| match &q.scope {
                        QueueScope::RemoteApp { app: a } => a == app,
                        QueueScope::ResourceType => true,
                        QueueScope::Community { community } => community == c,
                        QueueScope::Event { event } => event == id,
                    })
                    .map(|(key, (e, _))| (*key, *e))
                    .collect();
                for ((id, app), e) in cleared {
                    t.queue.remove(&(id, app));
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
                                t.queue.insert((r.id, app), (p, c));
                            } else {
                                apply_to(t, db, p);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn bit(d: Database) -> u8 {
    1 << d as u8
}

/// Where the followed events stand in the databases asked about.
struct Standing<'a> {
    /// Database → event position → the position at which its change was applied.
    held: HashMap<Database, Quick<u64, u64>>,
    queued: QuickSet<(u64, Database)>,
    losses: &'a Quick<(u64, Database), (u64, Loss)>,
}

impl<'a> Standing<'a> {
    fn new(f: &'a Following, asked: impl Fn(Database) -> bool) -> Standing<'a> {
        Standing {
            held: f
                .t
                .applied
                .iter()
                .filter(|(d, _)| asked(**d))
                .map(|(d, v)| (*d, v.iter().copied().collect()))
                .collect(),
            queued: f
                .t
                .queue
                .iter()
                .map(|((_, app), (e, _))| (*e, app.database()))
                .collect(),
            losses: &f.losses,
        }
    }

    /// The fate of the event at `p` in `d`, one of the databases asked about.
    fn fate(&self, p: u64, d: Database) -> Fate {
        if let Some(since) = self.held.get(&d).and_then(|h| h.get(&p)) {
            Fate::Held { since: *since }
        } else if self.queued.contains(&(p, d)) {
            Fate::Queued
        } else if let Some((at, loss)) = self.losses.get(&(p, d)) {
            Fate::Lost {
                at: *at,
                loss: loss.clone(),
            }
        } else {
            Fate::Queued
        }
    }
}

fn follows(only: &Option<HashSet<u64>>, p: u64) -> bool {
    only.as_ref().is_none_or(|o| o.contains(&p))
}

fn concern(c: &mut BTreeMap<u64, u8>, p: u64, d: Database) {
    *c.entry(p).or_default() |= bit(d);
}

/// Community events that change the Communities database.
fn is_community_change(e: &DomainEvent) -> bool {
    !matches!(
        e,
        DomainEvent::DeliveryFailed(_) | DomainEvent::DeliveryRetried(_)
    )
}
