//! Connections' own words: community types, roles, the remote applications and their ids, and
//! the databases they keep (domain.md §2, §7).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// `snx:communityType`. The UI's "moderated" is `publicInviteOnly`, "restricted" is `private`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum CommunityType {
    Public,
    PublicInviteOnly,
    Private,
}

impl fmt::Display for CommunityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommunityType::Public => "public",
            CommunityType::PublicInviteOnly => "publicInviteOnly",
            CommunityType::Private => "private",
        })
    }
}

/// A member's role (`memberRole` 1 = owner, 0 = member).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Owner,
    Member,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Owner => "owner",
            Role::Member => "member",
        })
    }
}

/// A remote application: a widget whose data lives in its own database. Serialised as its
/// widgetDefId, exactly (ids are case-sensitive).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum App {
    Activities,
    Blog,
    IdeationBlog,
    Files,
    Forum,
    Wiki,
    StatusUpdates,
    Library,
}

impl App {
    pub const ALL: [App; 8] = [
        App::Activities,
        App::Blog,
        App::IdeationBlog,
        App::Files,
        App::Forum,
        App::Wiki,
        App::StatusUpdates,
        App::Library,
    ];

    /// The `defId` of its `<widgetDef>`, used by the resync commands.
    pub fn widget_def_id(self) -> &'static str {
        match self {
            App::Activities => "Activities",
            App::Blog => "Blog",
            App::IdeationBlog => "IdeationBlog",
            App::Files => "Files",
            App::Forum => "Forum",
            App::Wiki => "Wiki",
            App::StatusUpdates => "StatusUpdates",
            App::Library => "Library",
        }
    }

    /// [`App::widget_def_id`] as text that every holder shares: each community's widget of
    /// an app holds the same `Arc` instead of a copy of its own (one allocation per widget:
    /// `recover`'s peak at 100,000 communities fell from 589 to 552–575 MB).
    pub fn widget_def_text(self) -> crate::state::Text {
        static TEXTS: std::sync::LazyLock<[crate::state::Text; App::ALL.len()]> =
            std::sync::LazyLock::new(|| App::ALL.map(|a| a.widget_def_id().into()));
        TEXTS[self as usize].clone()
    }

    pub fn from_widget_def_id(id: &str) -> Option<App> {
        // A match, not a search of `ALL`: findings ask it of every widget of every community.
        Some(match id {
            "Activities" => App::Activities,
            "Blog" => App::Blog,
            "IdeationBlog" => App::IdeationBlog,
            "Files" => App::Files,
            "Forum" => App::Forum,
            "Wiki" => App::Wiki,
            "StatusUpdates" => App::StatusUpdates,
            "Library" => App::Library,
            _ => return None,
        })
    }

    /// The remoteAppDefId of the queue and `assignRemoteApp`; Library has none.
    pub fn remote_app_def_id(self) -> Option<&'static str> {
        match self {
            App::Library => None,
            other => Some(other.widget_def_id()),
        }
    }

    /// The database that holds its data (Blog and IdeationBlog share Blogs).
    pub fn database(self) -> Database {
        match self {
            App::Activities => Database::Activities,
            App::Blog | App::IdeationBlog => Database::Blogs,
            App::Files => Database::Files,
            App::Forum => Database::Forums,
            App::Wiki => Database::Wikis,
            App::StatusUpdates => Database::News,
            App::Library => Database::Library,
        }
    }

    /// Whether its resources mirror the community's membership (INFERRED: every app that
    /// subscribes to `community.members.*`; Status Updates and Library are open to the
    /// community as a whole).
    pub fn mirrors_members(self) -> bool {
        !matches!(self, App::StatusUpdates | App::Library)
    }

    /// Whether it mirrors the two moderation flags (Files, Forums and Blogs, domain.md §1).
    pub fn mirrors_moderation(self) -> bool {
        matches!(
            self,
            App::Files | App::Forum | App::Blog | App::IdeationBlog
        )
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.widget_def_id())
    }
}

/// A database with its own backups.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Database {
    Communities,
    Activities,
    Blogs,
    Files,
    Forums,
    Wikis,
    News,
    Library,
}

impl Database {
    pub const ALL: [Database; 8] = [
        Database::Communities,
        Database::Activities,
        Database::Blogs,
        Database::Files,
        Database::Forums,
        Database::Wikis,
        Database::News,
        Database::Library,
    ];

    /// The remote apps' databases: every one but Communities (the first of `ALL`).
    pub const APPS: [Database; 7] = {
        let mut apps = [Database::Communities; 7];
        let mut i = 0;
        while i < apps.len() {
            apps[i] = Database::ALL[i + 1];
            i += 1;
        }
        apps
    };

    pub fn name(self) -> &'static str {
        match self {
            Database::Communities => "Communities",
            Database::Activities => "Activities",
            Database::Blogs => "Blogs",
            Database::Files => "Files",
            Database::Forums => "Forums",
            Database::Wikis => "Wikis",
            Database::News => "News",
            Database::Library => "Library",
        }
    }

    /// Parses a database name, case-insensitively.
    pub fn parse(s: &str) -> Option<Database> {
        Database::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a community is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Lifecycle {
    Active,
    /// In the trash: restorable until purged.
    Trashed,
    Purged,
}
