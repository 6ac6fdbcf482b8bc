//! The lifecycle vocabulary: one event type per Connections fact, stored as JSON in the ledger.
//!
//! The ledger event type is the variant's name; the data is its fields (camelCase); the
//! metadata carries `{"schemaVersion": N}`. [`decode`] upcasts older versions before reading, so
//! a version-1 event still replays after a field is added or renamed.

use crate::repair::Action;
use crate::state::MemberRoles;
use crate::vocabulary::{App, CommunityType, Database, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The current schema version of every event type.
pub const SCHEMA_VERSION: u32 = 1;

/// A community's first state (`community.create`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommunityCreated {
    pub community: Uuid,
    pub name: String,
    pub community_type: CommunityType,
    #[serde(default)]
    pub list_when_restricted: bool,
    #[serde(default)]
    pub external: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    #[serde(default)]
    pub pre_moderation: bool,
    #[serde(default)]
    pub post_moderation: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
    /// External user ids of the first owners (at least one).
    pub owners: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl CommunityCreated {
    /// A community with these owners and Connections' defaults for the rest (not listed, not
    /// external, no org, default theme, no moderation, top level, no other members).
    pub fn new(
        community: Uuid,
        name: &str,
        community_type: CommunityType,
        owners: Vec<String>,
    ) -> Self {
        CommunityCreated {
            community,
            name: name.to_owned(),
            community_type,
            list_when_restricted: false,
            external: false,
            org_id: None,
            theme: None,
            pre_moderation: false,
            post_moderation: false,
            parent: None,
            owners,
            members: Vec::new(),
            actor: None,
        }
    }
}

/// Name, description, tags, theme or moderation flags changed (`community.updated`); absent
/// fields are unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommunityUpdated {
    pub community: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_moderation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_moderation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Access level changed (`community.visibility.changed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VisibilityChanged {
    pub community: Uuid,
    pub community_type: CommunityType,
    #[serde(default)]
    pub list_when_restricted: bool,
    #[serde(default)]
    pub external: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Users joined with a role (`community.members.added`), or members' roles changed
/// (`community.members.modified`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Members {
    pub community: Uuid,
    pub members: BTreeMap<String, Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Users left (`community.members.removed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MembersRemoved {
    pub community: Uuid,
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// Organisation changed (`community.org.changed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgChanged {
    pub community: Uuid,
    pub org_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A widget instance added (`remote.app.added` / `widget.added`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WidgetAdded {
    pub community: Uuid,
    /// `snx:widgetInstanceId`, e.g. `W1bbc7d02840e_4389_999c_3cb882695d99`.
    pub instance: String,
    /// `snx:widgetDefId`, e.g. `Files`; internal widgets (`Members`, …) are recorded too.
    pub widget_def_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A widget instance removed (`remote.app.removed` / `widget.removed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WidgetRemoved {
    pub community: Uuid,
    pub instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A remote application created its container for a widget (the app's own reply).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteAppProvisioned {
    pub community: Uuid,
    pub app: App,
    pub instance: String,
    /// The app's own id: blog id, library id, forum id … (the reports' Object Identifying Id).
    pub object_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// An app's container moved to another community (`remote.app.transfer`, `assignRemoteApp`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteAppTransferred {
    pub app: App,
    pub object_id: String,
    pub from_community: Uuid,
    pub to_community: Uuid,
    /// The widget instance in the target community.
    pub instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A community (only its uuid) and who acted: trash, restore from trash, purge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommunityRef {
    pub community: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A community moved under another parent, or made top-level (`parent` absent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubcommunityMoved {
    pub community: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A file, folder (Files) or activity (Activities) shared with a community, or unshared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Share {
    pub community: Uuid,
    pub app: App,
    pub object_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A lifecycle event did not reach an app and waits in `LC_EVENT_REPLAY`; or a retry of it
/// reached the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Delivery {
    /// The community of the lifecycle event (`history` and `replay --community` find the
    /// report by it).
    pub community: Uuid,
    pub app: App,
    /// The ledger id of the lifecycle event.
    pub event: Uuid,
}

/// What `CommunitiesQEventService.clear…` removed from the retry queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "by", deny_unknown_fields)]
pub enum QueueScope {
    /// `clearQueuedEventsByRemoteAppDefId`.
    RemoteApp { app: App },
    /// `clearQueuedEventsByResourceType("community")`: everything.
    ResourceType,
    /// `clearQueuedEventsByResourceId("community", uuid)`.
    Community { community: Uuid },
    /// `clearQueuedEventByEventId`.
    Event { event: Uuid },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueCleared {
    pub scope: QueueScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A scheduler task paused or resumed (`CommunitiesScheduler.pause…/resumeSchedulingTask`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Task {
    /// e.g. `LifecycleRetryQueuedEvents`.
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A backup of one database was taken; it holds that database as of this event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupTaken {
    pub database: Database,
    /// A name unique across backups, e.g. `activities-2026-11-20`.
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A database was restored from a backup, without replaying its transaction log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseRestored {
    pub database: Database,
    pub backup: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A repair plan was recorded, or one of its steps done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repair {
    pub plan: String,
    /// `RepairStepApplied`: the step done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// `RepairPlanned`: how many steps the plan has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    /// `RepairPlanned`: the log position the plan was made at; once every step is done, the
    /// restores up to there count as repaired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    /// `RepairPlanned`: what each step does to the databases, in step order (empty in plans
    /// recorded before steps carried their effect, and in plans too large for one event, whose
    /// `RepairStepPlanned` events that follow carry it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// `RepairStepPlanned`: what the step does to the databases (or one part of it).
    /// `RepairStepApplied`: what the step did to the databases (or one part of it); the actual
    /// state takes it from here on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// `RepairStepPlanned`, `RepairStepApplied`: which part of the step's action this event
    /// carries (from 1), when the action is too large for one event and comes in `parts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// `RepairPlanned`: how many `RepairStepPlanned` events follow it (in the same append),
    /// carrying what the steps do instead of `actions`. With `part`: how many parts the step's
    /// action comes in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// The membership events that turn `now` into `wanted`, in the order that never leaves the
/// community without an owner: added, roles changed, removed.
pub fn membership_changes(
    community: Uuid,
    now: &MemberRoles,
    wanted: &MemberRoles,
    actor: Option<String>,
) -> Vec<DomainEvent> {
    let pick = |keep: &dyn Fn(&str, &Role) -> bool| -> BTreeMap<String, Role> {
        wanted
            .iter()
            .filter(|(u, r)| keep(u, r))
            .map(|(u, r)| (u.to_string(), *r))
            .collect()
    };
    let added = pick(&|u, _| !now.contains_key(u));
    let modified = pick(&|u, r| now.get(u).is_some_and(|x| x != r));
    let removed: Vec<String> = now
        .keys()
        .filter(|u| !wanted.contains_key(u))
        .map(|u| u.to_string())
        .collect();
    let mut out = Vec::new();
    if !added.is_empty() {
        out.push(DomainEvent::MembersAdded(Members {
            community,
            members: added,
            actor: actor.clone(),
        }));
    }
    if !modified.is_empty() {
        out.push(DomainEvent::MembersModified(Members {
            community,
            members: modified,
            actor: actor.clone(),
        }));
    }
    if !removed.is_empty() {
        out.push(DomainEvent::MembersRemoved(MembersRemoved {
            community,
            users: removed,
            actor,
        }));
    }
    out
}

/// Every fact Lifeline records. The variant name is the ledger event type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum DomainEvent {
    CommunityCreated(CommunityCreated),
    CommunityUpdated(CommunityUpdated),
    VisibilityChanged(VisibilityChanged),
    MembersAdded(Members),
    MembersRemoved(MembersRemoved),
    MembersModified(Members),
    OrgChanged(OrgChanged),
    WidgetAdded(WidgetAdded),
    WidgetRemoved(WidgetRemoved),
    RemoteAppProvisioned(RemoteAppProvisioned),
    RemoteAppTransferred(RemoteAppTransferred),
    CommunityTrashed(CommunityRef),
    CommunityRestored(CommunityRef),
    CommunityPurged(CommunityRef),
    SubcommunityMoved(SubcommunityMoved),
    CommunityShareAdded(Share),
    CommunityShareRemoved(Share),
    DeliveryFailed(Delivery),
    DeliveryRetried(Delivery),
    QueueCleared(QueueCleared),
    TaskPaused(Task),
    TaskResumed(Task),
    BackupTaken(BackupTaken),
    DatabaseRestored(DatabaseRestored),
    RepairPlanned(Repair),
    RepairStepPlanned(Repair),
    RepairStepApplied(Repair),
}

/// Every event type, with the JSON Schema of its data.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    use schemars::schema_for;
    vec![
        ("CommunityCreated", schema_for!(CommunityCreated)),
        ("CommunityUpdated", schema_for!(CommunityUpdated)),
        ("VisibilityChanged", schema_for!(VisibilityChanged)),
        ("MembersAdded", schema_for!(Members)),
        ("MembersRemoved", schema_for!(MembersRemoved)),
        ("MembersModified", schema_for!(Members)),
        ("OrgChanged", schema_for!(OrgChanged)),
        ("WidgetAdded", schema_for!(WidgetAdded)),
        ("WidgetRemoved", schema_for!(WidgetRemoved)),
        ("RemoteAppProvisioned", schema_for!(RemoteAppProvisioned)),
        ("RemoteAppTransferred", schema_for!(RemoteAppTransferred)),
        ("CommunityTrashed", schema_for!(CommunityRef)),
        ("CommunityRestored", schema_for!(CommunityRef)),
        ("CommunityPurged", schema_for!(CommunityRef)),
        ("SubcommunityMoved", schema_for!(SubcommunityMoved)),
        ("CommunityShareAdded", schema_for!(Share)),
        ("CommunityShareRemoved", schema_for!(Share)),
        ("DeliveryFailed", schema_for!(Delivery)),
        ("DeliveryRetried", schema_for!(Delivery)),
        ("QueueCleared", schema_for!(QueueCleared)),
        ("TaskPaused", schema_for!(Task)),
        ("TaskResumed", schema_for!(Task)),
        ("BackupTaken", schema_for!(BackupTaken)),
        ("DatabaseRestored", schema_for!(DatabaseRestored)),
        ("RepairPlanned", schema_for!(Repair)),
        ("RepairStepPlanned", schema_for!(Repair)),
        ("RepairStepApplied", schema_for!(Repair)),
    ]
}

pub const OPS_QUEUE: &str = "ops-queue";
pub const OPS_SCHEDULER: &str = "ops-scheduler";
pub const OPS_BACKUPS: &str = "ops-backups";

pub fn community_stream(community: Uuid) -> String {
    format!("community-{community}")
}

impl DomainEvent {
    /// The ledger event type.
    pub fn type_name(&self) -> &'static str {
        match self {
            DomainEvent::CommunityCreated(_) => "CommunityCreated",
            DomainEvent::CommunityUpdated(_) => "CommunityUpdated",
            DomainEvent::VisibilityChanged(_) => "VisibilityChanged",
            DomainEvent::MembersAdded(_) => "MembersAdded",
            DomainEvent::MembersRemoved(_) => "MembersRemoved",
            DomainEvent::MembersModified(_) => "MembersModified",
            DomainEvent::OrgChanged(_) => "OrgChanged",
            DomainEvent::WidgetAdded(_) => "WidgetAdded",
            DomainEvent::WidgetRemoved(_) => "WidgetRemoved",
            DomainEvent::RemoteAppProvisioned(_) => "RemoteAppProvisioned",
            DomainEvent::RemoteAppTransferred(_) => "RemoteAppTransferred",
            DomainEvent::CommunityTrashed(_) => "CommunityTrashed",
            DomainEvent::CommunityRestored(_) => "CommunityRestored",
            DomainEvent::CommunityPurged(_) => "CommunityPurged",
            DomainEvent::SubcommunityMoved(_) => "SubcommunityMoved",
            DomainEvent::CommunityShareAdded(_) => "CommunityShareAdded",
            DomainEvent::CommunityShareRemoved(_) => "CommunityShareRemoved",
            DomainEvent::DeliveryFailed(_) => "DeliveryFailed",
            DomainEvent::DeliveryRetried(_) => "DeliveryRetried",
            DomainEvent::QueueCleared(_) => "QueueCleared",
            DomainEvent::TaskPaused(_) => "TaskPaused",
            DomainEvent::TaskResumed(_) => "TaskResumed",
            DomainEvent::BackupTaken(_) => "BackupTaken",
            DomainEvent::DatabaseRestored(_) => "DatabaseRestored",
            DomainEvent::RepairPlanned(_) => "RepairPlanned",
            DomainEvent::RepairStepPlanned(_) => "RepairStepPlanned",
            DomainEvent::RepairStepApplied(_) => "RepairStepApplied",
        }
    }

    /// Whether the event only keeps the books of a repair — a plan recorded, or a step done
    /// that carries no effect — and so changes no state: a plan made after it is the plan made
    /// before it.
    pub fn is_bookkeeping(&self) -> bool {
        match self {
            DomainEvent::RepairPlanned(_) | DomainEvent::RepairStepPlanned(_) => true,
            DomainEvent::RepairStepApplied(s) => s.action.is_none(),
            _ => false,
        }
    }

    /// The community a community-scoped event is about.
    pub fn community(&self) -> Option<Uuid> {
        use DomainEvent::*;
        match self {
            CommunityCreated(e) => Some(e.community),
            CommunityUpdated(e) => Some(e.community),
            VisibilityChanged(e) => Some(e.community),
            MembersAdded(e) => Some(e.community),
            MembersRemoved(e) => Some(e.community),
            MembersModified(e) => Some(e.community),
            OrgChanged(e) => Some(e.community),
            WidgetAdded(e) => Some(e.community),
            WidgetRemoved(e) => Some(e.community),
            RemoteAppProvisioned(e) => Some(e.community),
            RemoteAppTransferred(e) => Some(e.to_community),
            CommunityTrashed(e) | CommunityRestored(e) | CommunityPurged(e) => Some(e.community),
            SubcommunityMoved(e) => Some(e.community),
            CommunityShareAdded(e) | CommunityShareRemoved(e) => Some(e.community),
            DeliveryFailed(e) | DeliveryRetried(e) => Some(e.community),
            QueueCleared(_) | TaskPaused(_) | TaskResumed(_) | BackupTaken(_)
            | DatabaseRestored(_) | RepairPlanned(_) | RepairStepPlanned(_)
            | RepairStepApplied(_) => None,
        }
    }

    /// Who did it, when the event says.
    pub fn actor(&self) -> Option<&str> {
        use DomainEvent::*;
        let a = match self {
            CommunityCreated(e) => &e.actor,
            CommunityUpdated(e) => &e.actor,
            VisibilityChanged(e) => &e.actor,
            MembersAdded(e) => &e.actor,
            MembersRemoved(e) => &e.actor,
            MembersModified(e) => &e.actor,
            OrgChanged(e) => &e.actor,
            WidgetAdded(e) => &e.actor,
            WidgetRemoved(e) => &e.actor,
            RemoteAppProvisioned(e) => &e.actor,
            RemoteAppTransferred(e) => &e.actor,
            CommunityTrashed(e) | CommunityRestored(e) | CommunityPurged(e) => &e.actor,
            SubcommunityMoved(e) => &e.actor,
            CommunityShareAdded(e) | CommunityShareRemoved(e) => &e.actor,
            DeliveryFailed(_) | DeliveryRetried(_) => return None,
            QueueCleared(e) => &e.actor,
            TaskPaused(e) | TaskResumed(e) => &e.actor,
            BackupTaken(e) => &e.actor,
            DatabaseRestored(e) => &e.actor,
            RepairPlanned(e) | RepairStepPlanned(e) | RepairStepApplied(e) => &e.actor,
        };
        a.as_deref()
    }

    /// The stream it belongs in.
    pub fn stream(&self) -> String {
        use DomainEvent::*;
        match self {
            QueueCleared(_) => OPS_QUEUE.into(),
            TaskPaused(_) | TaskResumed(_) => OPS_SCHEDULER.into(),
            BackupTaken(_) | DatabaseRestored(_) => OPS_BACKUPS.into(),
            RepairPlanned(e) | RepairStepPlanned(e) | RepairStepApplied(e) => {
                format!("repair-{}", e.plan)
            }
            other => community_stream(other.community().expect("community-scoped")),
        }
    }

    /// The ledger form: event type, data (JSON), metadata (JSON with the schema version).
    pub fn encode(&self) -> (String, Vec<u8>, Vec<u8>) {
        let mut value = serde_json::to_value(self).expect("domain events serialise");
        if let Some(map) = value.as_object_mut() {
            map.remove("type");
        }
        let data = serde_json::to_vec(&value).expect("JSON serialises");
        let metadata = serde_json::to_vec(&serde_json::json!({ "schemaVersion": SCHEMA_VERSION }))
            .expect("JSON serialises");
        (self.type_name().to_owned(), data, metadata)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("'{0}' is not a Lifeline domain event type")]
    UnknownType(String),
    #[error("{event_type} data is not valid: {reason}")]
    Invalid { event_type: String, reason: String },
    #[error("{event_type} has schema version {version}; this build reads up to {SCHEMA_VERSION}")]
    TooNew { event_type: String, version: u32 },
}

/// Every domain event type, as the ledger names them.
pub const TYPES: [&str; 27] = [
    "CommunityCreated",
    "CommunityUpdated",
    "VisibilityChanged",
    "MembersAdded",
    "MembersRemoved",
    "MembersModified",
    "OrgChanged",
    "WidgetAdded",
    "WidgetRemoved",
    "RemoteAppProvisioned",
    "RemoteAppTransferred",
    "CommunityTrashed",
    "CommunityRestored",
    "CommunityPurged",
    "SubcommunityMoved",
    "CommunityShareAdded",
    "CommunityShareRemoved",
    "DeliveryFailed",
    "DeliveryRetried",
    "QueueCleared",
    "TaskPaused",
    "TaskResumed",
    "BackupTaken",
    "DatabaseRestored",
    "RepairPlanned",
    "RepairStepPlanned",
    "RepairStepApplied",
];

/// Whether a ledger event type is one of ours.
pub fn is_domain_type(event_type: &str) -> bool {
    TYPES.contains(&event_type)
}

/// Upcasters: `(event type, from version)` → a change of the JSON to the next version.
type Upcaster = fn(&mut serde_json::Map<String, serde_json::Value>);

/// Version 1 is the first; as fields are added or renamed, an upcaster per step goes here.
const UPCASTERS: &[(&str, u32, Upcaster)] = &[];

/// Reads a domain event from its ledger form, upcasting older schema versions.
pub fn decode(event_type: &str, data: &[u8], metadata: &[u8]) -> Result<DomainEvent, DecodeError> {
    decode_with(event_type, data, metadata, UPCASTERS, true)
}

/// `try_direct`: current data is first decoded in one pass (see [`direct`]); tests turn it off
/// to compare with the general path.
pub(crate) fn decode_with(
    event_type: &str,
    data: &[u8],
    metadata: &[u8],
    upcasters: &[(&str, u32, Upcaster)],
    try_direct: bool,
) -> Result<DomainEvent, DecodeError> {
    if !is_domain_type(event_type) {
        return Err(DecodeError::UnknownType(event_type.to_owned()));
    }
    let invalid = |reason: String| DecodeError::Invalid {
        event_type: event_type.to_owned(),
        reason,
    };
    /// The one metadata field read; anything else there is passed over.
    #[derive(Deserialize)]
    struct Meta {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u64>,
    }
    let version = serde_json::from_slice::<Meta>(metadata)
        .ok()
        .and_then(|m| m.schema_version)
        .map_or(1, |v| u32::try_from(v).unwrap_or(u32::MAX));
    let latest = upcasters
        .iter()
        .filter(|(t, _, _)| *t == event_type)
        .map(|(_, from, _)| from + 1)
        .max()
        .unwrap_or(SCHEMA_VERSION)
        .max(SCHEMA_VERSION);
    if version > latest {
        return Err(DecodeError::TooNew {
            event_type: event_type.to_owned(),
            version,
        });
    }
    // Current data decodes straight into its type; whatever that refuses takes the general
    // path below, which says why (and upcasts older versions).
    if try_direct && version == latest {
        if let Some(Ok(e)) = direct(event_type, data) {
            return Ok(e);
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| invalid(e.to_string()))?;
    let map = value
        .as_object_mut()
        .ok_or_else(|| invalid("the data must be a JSON object".into()))?;
    for v in version..latest {
        if let Some((_, _, up)) = upcasters
            .iter()
            .find(|(t, from, _)| *t == event_type && *from == v)
        {
            up(map);
        }
    }
    map.insert(
        "type".into(),
        serde_json::Value::String(event_type.to_owned()),
    );
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// `data` decoded as the payload of `event_type` in one pass (no intermediate JSON value);
/// `None` for a type that is not ours.
fn direct(event_type: &str, data: &[u8]) -> Option<Result<DomainEvent, serde_json::Error>> {
    macro_rules! by_type {
        ($($variant:ident),* $(,)?) => {
            match event_type {
                $(stringify!($variant) => Some(serde_json::from_slice(data).map(DomainEvent::$variant)),)*
                _ => None,
            }
        };
    }
    by_type!(
        CommunityCreated,
        CommunityUpdated,
        VisibilityChanged,
        MembersAdded,
        MembersRemoved,
        MembersModified,
        OrgChanged,
        WidgetAdded,
        WidgetRemoved,
        RemoteAppProvisioned,
        RemoteAppTransferred,
        CommunityTrashed,
        CommunityRestored,
        CommunityPurged,
        SubcommunityMoved,
        CommunityShareAdded,
        CommunityShareRemoved,
        DeliveryFailed,
        DeliveryRetried,
        QueueCleared,
        TaskPaused,
        TaskResumed,
        BackupTaken,
        DatabaseRestored,
        RepairPlanned,
        RepairStepPlanned,
        RepairStepApplied,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass decoder knows every type, and gives what the general path gives.
    #[test]
    fn direct_decoding_agrees_with_the_general_path() {
        for t in TYPES {
            assert!(direct(t, b"{}").is_some(), "{t} is missing from `direct`");
        }
        let start = 1_790_000_000_000_000_000;
        let history = crate::simulate::simulate(&crate::simulate::Config::new(30, 8, 5, start));
        let mut seen = std::collections::BTreeSet::new();
        for h in &history {
            let (t, data, meta) = h.event.encode();
            let fast = decode(&t, &data, &meta).unwrap();
            let slow = decode_with(&t, &data, &meta, UPCASTERS, false).unwrap();
            assert_eq!(fast, slow);
            assert_eq!(fast, h.event);
            seen.insert(t);
        }
        // The simulation writes the lifecycle and operations types (13 of 26 here); the
        // first loop has every type mapped to its own variant.
        assert!(
            seen.len() >= 12,
            "the simulation covers {} types",
            seen.len()
        );
        // Data the types refuse still gets the general path's explanation.
        let err = decode("MembersAdded", br#"{"community":"x"}"#, b"").unwrap_err();
        assert!(err.to_string().contains("MembersAdded"), "{err}");
    }

    #[test]
    fn round_trip_through_the_ledger_form() {
        let e = DomainEvent::MembersAdded(Members {
            community: Uuid::from_u128(7),
            members: [("u1".to_string(), Role::Owner)].into_iter().collect(),
            actor: Some("admin".into()),
        });
        let (t, data, meta) = e.encode();
        assert_eq!(t, "MembersAdded");
        let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(json["members"]["u1"], "owner");
        assert!(json.get("type").is_none());
        assert_eq!(decode(&t, &data, &meta).unwrap(), e);
        assert_eq!(e.stream(), "community-00000000-0000-0000-0000-000000000007");
    }

    #[test]
    fn the_type_list_and_the_schemas_agree() {
        let named: Vec<&str> = schemas().iter().map(|(t, _)| *t).collect();
        assert_eq!(named, TYPES);
    }

    #[test]
    fn bad_data_is_named() {
        let err = decode("MembersAdded", br#"{"community":"x"}"#, b"").unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { .. }), "{err}");
        assert!(matches!(
            decode("Nope", b"{}", b""),
            Err(DecodeError::UnknownType(_))
        ));
        let err = decode("TaskPaused", br#"{"task":"t","extra":1}"#, b"").unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn a_version_1_event_is_upcast_before_it_is_read() {
        // Suppose version 2 of OrgChanged renamed `org` to `orgId`.
        fn rename_org(m: &mut serde_json::Map<String, serde_json::Value>) {
            if let Some(v) = m.remove("org") {
                m.insert("orgId".into(), v);
            }
        }
        let upcasters: &[(&str, u32, Upcaster)] = &[("OrgChanged", 1, rename_org)];
        let old = br#"{"community":"00000000-0000-0000-0000-000000000001","org":"acme"}"#;
        let got = decode_with(
            "OrgChanged",
            old,
            br#"{"schemaVersion":1}"#,
            upcasters,
            true,
        )
        .unwrap();
        assert_eq!(
            got,
            DomainEvent::OrgChanged(OrgChanged {
                community: Uuid::from_u128(1),
                org_id: "acme".into(),
                actor: None
            })
        );
        let newer = decode_with(
            "OrgChanged",
            old,
            br#"{"schemaVersion":3}"#,
            upcasters,
            true,
        );
        assert!(matches!(newer, Err(DecodeError::TooNew { .. })));
    }
}
