//! A synthetic Connections deployment: communities created and changed day by day, widgets
//! added and removed, subcommunities, trash → restore → purge, remote app transfers, shares,
//! deliveries that fail and are retried (or stay queued), queue clears, and nightly backups of
//! each database at its own hour. The same configuration and seed give the same history, event
//! ids included. Every event is one Connections would accept at its point (a test checks each
//! against [`crate::validate`]).

use crate::events::*;
use crate::vocabulary::{App, CommunityType, Database, Lifecycle, Role};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::BTreeMap;
use uuid::Uuid;

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;
const DAY: i64 = 24 * HOUR;

#[derive(Clone, Debug)]
pub struct Config {
    pub communities: usize,
    pub days: u32,
    pub seed: u64,
    /// Midnight (UTC, in ns since the epoch) of the first day.
    pub start_ns: i64,
    /// Chance that one delivery of a lifecycle event to one app fails.
    pub failure_rate: f64,
    /// Chance that a community changes at all on a given day.
    pub activity: f64,
}

impl Config {
    pub fn new(communities: usize, days: u32, seed: u64, start_ns: i64) -> Config {
        Config {
            communities,
            days,
            seed,
            start_ns,
            failure_rate: 0.02,
            activity: 0.1,
        }
    }
}

/// One simulated event: its ledger id, when it happened, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Simulated {
    pub id: Uuid,
    pub occurred_ns: i64,
    pub event: DomainEvent,
}

/// The hour (UTC) each database's nightly backup runs.
pub const BACKUP_HOURS: [(Database, i64); 8] = [
    (Database::Communities, 1),
    (Database::Activities, 2),
    (Database::Blogs, 2),
    (Database::Files, 3),
    (Database::Forums, 3),
    (Database::Wikis, 4),
    (Database::News, 4),
    (Database::Library, 5),
];

/// The label of a database's nightly backup on a day (`files-2026-11-20`).
pub fn backup_label(database: Database, day_start_ns: i64) -> String {
    let (y, m, d) = civil(day_start_ns.div_euclid(DAY));
    format!("{}-{y:04}-{m:02}-{d:02}", database.name().to_lowercase())
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const TOPICS: [&str; 12] = [
    "Sales",
    "Marketing",
    "Engineering",
    "HR",
    "Finance",
    "Support",
    "Design",
    "Legal",
    "Research",
    "Operations",
    "Security",
    "Training",
];
const KINDS: [&str; 10] = [
    "EMEA",
    "Americas",
    "APAC",
    "Team",
    "Guild",
    "Project Apollo",
    "Onboarding",
    "Newsletter",
    "Practice",
    "Hackathon",
];
const THEMES: [&str; 5] = ["default", "blue", "green", "red", "gold"];
/// Apps a community may add beyond the defaults (Files, Forums, Status Updates), with the
/// chance of each at creation.
const OPTIONAL: [(App, f64); 5] = [
    (App::Activities, 0.4),
    (App::Blog, 0.3),
    (App::Wiki, 0.35),
    (App::IdeationBlog, 0.1),
    (App::Library, 0.05),
];

struct Comm {
    id: Uuid,
    name: String,
    members: BTreeMap<String, Role>,
    /// App → (widget instance, the app's object id).
    apps: BTreeMap<App, (String, String)>,
    shares: Vec<(App, String)>,
    lifecycle: Lifecycle,
    /// The day it went to the trash, and whether it will come back.
    trashed: Option<(u32, bool)>,
    parent: Option<Uuid>,
    private: bool,
    created_ns: i64,
}

/// A failed delivery waiting in the queue: retried at `at`, or never when `None`.
struct Queued {
    event: Uuid,
    app: App,
    community: Uuid,
    at: Option<i64>,
}

struct Sim {
    rng: Xoshiro256PlusPlus,
    cfg: Config,
    comms: Vec<Comm>,
    users: usize,
    /// Events of the day being made, with their times (sorted at the day's end).
    day: Vec<Simulated>,
    queue: Vec<Queued>,
    /// Communities whose owners hand an app to another community tonight: done after every
    /// other change of the day, so that both communities are as the day left them.
    transfers: Vec<usize>,
    out: Vec<Simulated>,
}

/// The history of `cfg`, in time order.
pub fn simulate(cfg: &Config) -> Vec<Simulated> {
    let mut s = Sim {
        rng: Xoshiro256PlusPlus::seed_from_u64(cfg.seed),
        cfg: cfg.clone(),
        comms: Vec::with_capacity(cfg.communities),
        users: cfg.communities.max(1) * 5,
        day: Vec::new(),
        queue: Vec::new(),
        transfers: Vec::new(),
        out: Vec::new(),
    };
    // Most communities exist when the history starts; the rest are created as it goes.
    let existing = cfg.communities * 4 / 5;
    for _ in 0..existing {
        let t = cfg.start_ns + s.rng.random_range(0..HOUR);
        s.create(t);
    }
    s.flush();
    for day in 0..cfg.days {
        s.run_day(day);
    }
    s.out
}

impl Sim {
    fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    fn user(&mut self) -> String {
        format!("user{:05}", self.rng.random_range(0..self.users))
    }

    fn emit(&mut self, t: i64, event: DomainEvent) -> Uuid {
        let id = self.uuid();
        self.day.push(Simulated {
            id,
            occurred_ns: t,
            event,
        });
        id
    }

    /// Emits a lifecycle event of community `i`: each app holding data for it may miss it.
    fn lifecycle(&mut self, i: usize, t: i64, event: DomainEvent) {
        let id = self.emit(t, event);
        let apps: Vec<App> = self.comms[i].apps.keys().copied().collect();
        let community = self.comms[i].id;
        for app in apps {
            if self.chance(self.cfg.failure_rate) {
                let d = Delivery {
                    community,
                    app,
                    event: id,
                };
                self.emit(t + SECOND, DomainEvent::DeliveryFailed(d));
                // The retry task runs hourly; an app that stays down keeps its events queued.
                let at = self
                    .chance(0.9)
                    .then(|| (t / HOUR + 1) * HOUR + 5 * SECOND + self.rng.random_range(0..SECOND));
                self.queue.push(Queued {
                    event: id,
                    app,
                    community,
                    at,
                });
            }
        }
    }

    fn flush(&mut self) {
        self.day.sort_by_key(|e| e.occurred_ns);
        self.out.append(&mut self.day);
    }

    fn run_day(&mut self, day: u32) {
        let midnight = self.cfg.start_ns + i64::from(day) * DAY;
        self.backups(midnight);
        let created = self.cfg.communities - self.cfg.communities * 4 / 5;
        let today = created / self.cfg.days.max(1) as usize
            + usize::from((day as usize) < created % self.cfg.days.max(1) as usize);
        for _ in 0..today {
            let t = midnight + self.rng.random_range(8 * HOUR..18 * HOUR);
            self.create(t);
        }
        for i in 0..self.comms.len() {
            self.community_day(i, day, midnight);
        }
        for (k, i) in std::mem::take(&mut self.transfers).into_iter().enumerate() {
            let t = midnight + 22 * HOUR + k as i64 * 10 * SECOND;
            if self.comms[i].lifecycle == Lifecycle::Active {
                let owner = self.owner(i);
                self.transfer(i, t, &owner);
            }
        }
        if self.chance(0.05) {
            self.clear_queue(midnight + 23 * HOUR);
        }
        self.retries(midnight + DAY);
        self.flush();
    }

    fn backups(&mut self, midnight: i64) {
        for (database, hour) in BACKUP_HOURS {
            let t = midnight + hour * HOUR + self.rng.random_range(0..30 * 60 * SECOND);
            let label = backup_label(database, midnight);
            self.emit(
                t,
                DomainEvent::BackupTaken(BackupTaken {
                    database,
                    label,
                    actor: Some("wasadmin".into()),
                }),
            );
        }
    }

    /// Retries due before `until`.
    fn retries(&mut self, until: i64) {
        let due: Vec<Queued> = {
            let (due, rest): (Vec<Queued>, Vec<Queued>) = std::mem::take(&mut self.queue)
                .into_iter()
                .partition(|q| q.at.is_some_and(|at| at < until));
            self.queue = rest;
            due
        };
        for q in due {
            let d = Delivery {
                community: q.community,
                app: q.app,
                event: q.event,
            };
            self.emit(q.at.unwrap_or(until), DomainEvent::DeliveryRetried(d));
        }
    }

    /// An administrator clears one app's queued events (its server was rebuilt).
    fn clear_queue(&mut self, t: i64) {
        let apps: Vec<App> = App::ALL
            .into_iter()
            .filter(|a| a.remote_app_def_id().is_some())
            .collect();
        let app = apps[self.rng.random_range(0..apps.len())];
        self.retries(t);
        self.queue.retain(|q| q.app != app);
        let actor = Some("wasadmin".to_owned());
        let task = |actor: &Option<String>| Task {
            task: crate::repair::RETRY_TASK.into(),
            actor: actor.clone(),
        };
        self.emit(t, DomainEvent::TaskPaused(task(&actor)));
        self.emit(
            t + SECOND,
            DomainEvent::QueueCleared(QueueCleared {
                scope: QueueScope::RemoteApp { app },
                actor: actor.clone(),
            }),
        );
        self.emit(t + 2 * SECOND, DomainEvent::TaskResumed(task(&actor)));
    }

    fn create(&mut self, t: i64) {
        let id = self.uuid();
        let n = self.comms.len();
        let name = format!(
            "{} {} {n}",
            TOPICS[self.rng.random_range(0..TOPICS.len())],
            KINDS[self.rng.random_range(0..KINDS.len())]
        );
        let parent = if self.chance(0.1) {
            self.pick_parent(t)
        } else {
            None
        };
        let community_type = match self.rng.random_range(0..4) {
            0 | 1 => CommunityType::Public,
            2 => CommunityType::PublicInviteOnly,
            _ => CommunityType::Private,
        };
        let private = community_type == CommunityType::Private;
        let owner = self.user();
        let mut members = BTreeMap::new();
        members.insert(owner.clone(), Role::Owner);
        let mut created = CommunityCreated::new(id, &name, community_type, vec![owner.clone()]);
        for _ in 0..self.rng.random_range(1..8) {
            let u = self.user();
            if members.insert(u.clone(), Role::Member).is_none() {
                created.members.push(u);
            }
        }
        created.list_when_restricted = private && self.chance(0.3);
        created.theme = Some(THEMES[self.rng.random_range(0..THEMES.len())].into());
        created.parent = parent;
        created.actor = Some(owner.clone());
        self.emit(t, DomainEvent::CommunityCreated(created));
        self.comms.push(Comm {
            id,
            name,
            members,
            apps: BTreeMap::new(),
            shares: Vec::new(),
            lifecycle: Lifecycle::Active,
            trashed: None,
            parent,
            private,
            created_ns: t,
        });
        let mut apps = vec![App::Files, App::Forum, App::StatusUpdates];
        for (app, p) in OPTIONAL {
            if self.chance(p) {
                apps.push(app);
            }
        }
        for (k, app) in apps.into_iter().enumerate() {
            self.add_widget(n, t + (k as i64 + 1) * SECOND, app, &owner);
        }
    }

    /// An active top-level community created before `t`, if the one drawn is.
    fn pick_parent(&mut self, t: i64) -> Option<Uuid> {
        if self.comms.is_empty() {
            return None;
        }
        let c = &self.comms[self.rng.random_range(0..self.comms.len())];
        let fits = c.lifecycle == Lifecycle::Active && c.parent.is_none();
        (fits && c.created_ns + 60 * SECOND < t).then_some(c.id)
    }

    fn object_id(&mut self, app: App) -> String {
        let u = self.uuid();
        match app {
            App::Library => format!("urn:lsid:ibm.com:td:OS1%3B{u}"),
            _ => u.to_string(),
        }
    }

    fn add_widget(&mut self, i: usize, t: i64, app: App, actor: &str) {
        let instance = format!("W{}", &self.uuid().simple().to_string()[..12]);
        let object_id = self.object_id(app);
        let community = self.comms[i].id;
        let actor = Some(actor.to_owned());
        self.emit(
            t,
            DomainEvent::WidgetAdded(WidgetAdded {
                community,
                instance: instance.clone(),
                widget_def_id: app.widget_def_id().into(),
                actor: actor.clone(),
            }),
        );
        self.emit(
            t + SECOND / 2,
            DomainEvent::RemoteAppProvisioned(RemoteAppProvisioned {
                community,
                app,
                instance: instance.clone(),
                object_id: object_id.clone(),
                actor,
            }),
        );
        self.comms[i].apps.insert(app, (instance, object_id));
    }

    fn owner(&self, i: usize) -> String {
        self.comms[i]
            .members
            .iter()
            .find(|(_, r)| **r == Role::Owner)
            .map(|(u, _)| u.clone())
            .unwrap_or_default()
    }

    fn community_day(&mut self, i: usize, day: u32, midnight: i64) {
        match (self.comms[i].lifecycle, self.comms[i].trashed) {
            (Lifecycle::Purged, _) => return,
            (Lifecycle::Trashed, Some((since, back))) => {
                if day >= since + 2 {
                    let t = midnight + self.rng.random_range(9 * HOUR..17 * HOUR);
                    self.leave_trash(i, t, back);
                }
                return;
            }
            _ => {}
        }
        // A handful of things happen to a community on a given day, at working hours.
        // Most communities are quiet on most days.
        let changes = if self.chance(self.cfg.activity) {
            self.rng.random_range(1..3)
        } else {
            0
        };
        let mut t = (midnight + 8 * HOUR).max(self.comms[i].created_ns + 60 * SECOND);
        for _ in 0..changes {
            t += self.rng.random_range(SECOND..3 * HOUR);
            if self.comms[i].lifecycle != Lifecycle::Active {
                break;
            }
            self.one_change(i, day, t);
        }
    }

    fn one_change(&mut self, i: usize, day: u32, t: i64) {
        let owner = self.owner(i);
        let community = self.comms[i].id;
        let actor = Some(owner.clone());
        match self.rng.random_range(0..1000) {
            0..400 => self.add_member(i, t, &owner),
            400..550 => self.remove_member(i, t, &owner),
            550..600 => self.change_role(i, t, &owner),
            600..680 => {
                let mut u = CommunityUpdated {
                    community,
                    actor,
                    ..CommunityUpdated::default()
                };
                match self.rng.random_range(0..4) {
                    0 => {
                        let name = format!("{} (renamed)", self.comms[i].name);
                        self.comms[i].name = name.clone();
                        u.name = Some(name);
                    }
                    1 => u.theme = Some(THEMES[self.rng.random_range(0..THEMES.len())].into()),
                    2 => u.pre_moderation = Some(self.chance(0.5)),
                    _ => u.post_moderation = Some(self.chance(0.5)),
                }
                self.lifecycle(i, t, DomainEvent::CommunityUpdated(u));
            }
            680..720 => {
                let community_type = match self.rng.random_range(0..3) {
                    0 => CommunityType::Public,
                    1 => CommunityType::PublicInviteOnly,
                    _ => CommunityType::Private,
                };
                let private = community_type == CommunityType::Private;
                self.comms[i].private = private;
                let v = VisibilityChanged {
                    community,
                    community_type,
                    list_when_restricted: private && self.chance(0.3),
                    external: false,
                    actor,
                };
                self.lifecycle(i, t, DomainEvent::VisibilityChanged(v));
            }
            720..780 => self.add_app(i, t, &owner),
            780..810 => self.remove_app(i, t, &owner),
            810..870 => self.share(i, t, &owner),
            870..885 => self.transfers.push(i),
            885..895 => self.trash(i, day, t, &owner),
            895..900 if self.comms[i].parent.is_some() => {
                self.comms[i].parent = None;
                let m = SubcommunityMoved {
                    community,
                    parent: None,
                    actor: Some("wasadmin".into()),
                };
                self.emit(t, DomainEvent::SubcommunityMoved(m));
            }
            900..905 => {
                let o = OrgChanged {
                    community,
                    org_id: format!("org{}", self.rng.random_range(1..4)),
                    actor: Some("wasadmin".into()),
                };
                self.lifecycle(i, t, DomainEvent::OrgChanged(o));
            }
            _ => {} // a quiet day
        }
    }

    fn add_member(&mut self, i: usize, t: i64, owner: &str) {
        let u = self.user();
        if self.comms[i].members.contains_key(&u) {
            return;
        }
        let role = if self.chance(0.1) {
            Role::Owner
        } else {
            Role::Member
        };
        self.comms[i].members.insert(u.clone(), role);
        let m = Members {
            community: self.comms[i].id,
            members: [(u, role)].into_iter().collect(),
            actor: Some(owner.to_owned()),
        };
        self.lifecycle(i, t, DomainEvent::MembersAdded(m));
    }

    fn remove_member(&mut self, i: usize, t: i64, owner: &str) {
        let c = &self.comms[i];
        let candidates: Vec<String> = c
            .members
            .iter()
            .filter(|(_, r)| **r == Role::Member)
            .map(|(u, _)| u.clone())
            .collect();
        if candidates.is_empty() {
            return;
        }
        let u = candidates[self.rng.random_range(0..candidates.len())].clone();
        self.comms[i].members.remove(&u);
        let m = MembersRemoved {
            community: self.comms[i].id,
            users: vec![u],
            actor: Some(owner.to_owned()),
        };
        self.lifecycle(i, t, DomainEvent::MembersRemoved(m));
    }

    fn change_role(&mut self, i: usize, t: i64, owner: &str) {
        let c = &self.comms[i];
        let Some(u) = c
            .members
            .iter()
            .find(|(_, r)| **r == Role::Member)
            .map(|(u, _)| u.clone())
        else {
            return;
        };
        self.comms[i].members.insert(u.clone(), Role::Owner);
        let m = Members {
            community: self.comms[i].id,
            members: [(u, Role::Owner)].into_iter().collect(),
            actor: Some(owner.to_owned()),
        };
        self.lifecycle(i, t, DomainEvent::MembersModified(m));
    }

    fn add_app(&mut self, i: usize, t: i64, owner: &str) {
        let missing: Vec<App> = App::ALL
            .into_iter()
            .filter(|a| !self.comms[i].apps.contains_key(a))
            .collect();
        if missing.is_empty() {
            return;
        }
        let app = missing[self.rng.random_range(0..missing.len())];
        self.add_widget(i, t, app, owner);
    }

    fn remove_app(&mut self, i: usize, t: i64, owner: &str) {
        let held: Vec<App> = self.comms[i].apps.keys().copied().collect();
        if held.is_empty() {
            return;
        }
        let app = held[self.rng.random_range(0..held.len())];
        // The event reaches the app while it still holds the data.
        let (instance, _) = self.comms[i].apps[&app].clone();
        let w = WidgetRemoved {
            community: self.comms[i].id,
            instance,
            actor: Some(owner.to_owned()),
        };
        self.lifecycle(i, t, DomainEvent::WidgetRemoved(w));
        self.comms[i].apps.remove(&app);
    }

    fn share(&mut self, i: usize, t: i64, owner: &str) {
        let community = self.comms[i].id;
        let actor = Some(owner.to_owned());
        if !self.comms[i].shares.is_empty() && self.chance(0.3) {
            let k = self.rng.random_range(0..self.comms[i].shares.len());
            let (app, object_id) = self.comms[i].shares.swap_remove(k);
            let s = Share {
                community,
                app,
                object_id,
                actor,
            };
            self.emit(t, DomainEvent::CommunityShareRemoved(s));
            return;
        }
        let app = if self.chance(0.7) {
            App::Files
        } else {
            App::Activities
        };
        let object_id = self.uuid().to_string();
        self.comms[i].shares.push((app, object_id.clone()));
        let s = Share {
            community,
            app,
            object_id,
            actor,
        };
        self.emit(t, DomainEvent::CommunityShareAdded(s));
    }

    /// An owner hands one app's data to another community (the two are being merged), then
    /// removes the emptied widget.
    fn transfer(&mut self, i: usize, t: i64, owner: &str) {
        let movable = [App::Blog, App::Wiki, App::Activities];
        let Some(app) = movable
            .into_iter()
            .find(|a| self.comms[i].apps.contains_key(a))
        else {
            return;
        };
        let j = self.rng.random_range(0..self.comms.len());
        let target = &self.comms[j];
        if j == i || target.lifecycle != Lifecycle::Active || target.apps.contains_key(&app) {
            return;
        }
        let (instance, object_id) = self.comms[i].apps.remove(&app).expect("checked above");
        let (from, to) = (self.comms[i].id, self.comms[j].id);
        let tr = RemoteAppTransferred {
            app,
            object_id: object_id.clone(),
            from_community: from,
            to_community: to,
            instance: instance.clone(),
            actor: Some("wasadmin".into()),
        };
        self.emit(t, DomainEvent::RemoteAppTransferred(tr));
        self.comms[j]
            .apps
            .insert(app, (instance.clone(), object_id));
        let w = WidgetRemoved {
            community: from,
            instance,
            actor: Some(owner.to_owned()),
        };
        self.lifecycle(i, t + SECOND, DomainEvent::WidgetRemoved(w));
    }

    fn trash(&mut self, i: usize, day: u32, t: i64, owner: &str) {
        let id = self.comms[i].id;
        let has_subs = self
            .comms
            .iter()
            .any(|c| c.parent == Some(id) && c.lifecycle != Lifecycle::Purged);
        if has_subs {
            return;
        }
        let back = self.chance(0.5);
        self.comms[i].lifecycle = Lifecycle::Trashed;
        self.comms[i].trashed = Some((day, back));
        let r = CommunityRef {
            community: id,
            actor: Some(owner.to_owned()),
        };
        self.lifecycle(i, t, DomainEvent::CommunityTrashed(r));
    }

    fn leave_trash(&mut self, i: usize, t: i64, back: bool) {
        let parent_active = self.comms[i].parent.is_none_or(|p| {
            self.comms
                .iter()
                .any(|c| c.id == p && c.lifecycle == Lifecycle::Active)
        });
        let r = CommunityRef {
            community: self.comms[i].id,
            actor: Some("wasadmin".into()),
        };
        self.comms[i].trashed = None;
        if back && parent_active {
            self.comms[i].lifecycle = Lifecycle::Active;
            self.lifecycle(i, t, DomainEvent::CommunityRestored(r));
        } else {
            // The trash is emptied after `daysToDelete` (short in this deployment).
            self.comms[i].lifecycle = Lifecycle::Purged;
            self.lifecycle(i, t, DomainEvent::CommunityPurged(r));
            self.comms[i].apps.clear();
            self.comms[i].shares.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_779), (2026, 11, 22));
        assert_eq!(civil(-1), (1969, 12, 31));
        assert_eq!(civil(11_016), (2000, 2, 29));
    }
}
