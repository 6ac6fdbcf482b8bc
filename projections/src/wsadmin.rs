//! The wsadmin (Jython) calls of each repair action, with the vendor's service names, method
//! signatures and ids (domain.md §2, §5), every argument quoted as a Jython string literal.

use crate::repair::{Action, Target, RETRY_TASK};
use crate::vocabulary::{App, Database};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The wsadmin script to `execfile` for the commands of a database's application (the
/// Communities services included); Library has none.
pub fn admin_script(service: Database) -> Option<&'static str> {
    Some(match service {
        Database::Communities => "communitiesAdmin.py",
        Database::Activities => "activitiesAdmin.py",
        Database::Blogs => "blogsAdmin.py",
        Database::Files => "filesAdmin.py",
        Database::Forums => "forumsAdmin.py",
        Database::Wikis => "wikisAdmin.py",
        Database::News => "newsAdmin.py",
        Database::Library => return None,
    })
}

/// One Jython statement for one service's wsadmin session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The wsadmin service (named as its database).
    pub service: Database,
    pub code: String,
}

/// A Jython string literal of `s`: quotes, backslashes and control characters escaped,
/// anything beyond ASCII as `\uXXXX` in a unicode literal.
pub fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    let mut unicode = false;
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_ascii() => out.push(c),
            c => {
                unicode = true;
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    format!("{}\"{out}\"", if unicode { "u" } else { "" })
}

/// The `uiLocation` of `assignRemoteApp` (domain.md §2).
pub fn ui_location(app: App) -> &'static str {
    match app {
        App::StatusUpdates => "col2statusposts",
        _ => "col2",
    }
}

fn call(service: Database, code: String) -> Call {
    Call { service, code }
}

fn communities(code: String) -> Call {
    call(Database::Communities, code)
}

/// The wsadmin calls of `action`; none for what a person does.
pub fn calls(action: &Action) -> Vec<Call> {
    let q = py_str;
    match action {
        Action::BlockUsers
        | Action::UnblockUsers
        | Action::Recreate { .. }
        | Action::Reapply { .. }
        | Action::ContactOwners { .. } => vec![],
        Action::PauseRetries => vec![communities(format!(
            "CommunitiesScheduler.pauseSchedulingTask({})",
            q(RETRY_TASK)
        ))],
        Action::ResumeRetries => vec![communities(format!(
            "CommunitiesScheduler.resumeSchedulingTask({})",
            q(RETRY_TASK)
        ))],
        Action::RetryQueued => vec![communities(format!(
            "CommunitiesQEventService.retryQueuedEventsByResourceType({})",
            q("community")
        ))],
        Action::ClearQueueByApp { app } => app
            .remote_app_def_id()
            .map(|id| {
                communities(format!(
                    "CommunitiesQEventService.clearQueuedEventsByRemoteAppDefId({})",
                    q(id)
                ))
            })
            .into_iter()
            .collect(),
        Action::ClearQueueAll => vec![communities(format!(
            "CommunitiesQEventService.clearQueuedEventsByResourceType({})",
            q("community")
        ))],
        Action::ExportAndReport { app } => export_and_report(*app),
        Action::Undelete { communities: list } => list
            .iter()
            .map(|c| {
                communities(format!(
                    "CommunitiesService.unDeleteCommunity({})",
                    q(&c.to_string())
                ))
            })
            .collect(),
        Action::Resync {
            app,
            communities: list,
        } => list
            .iter()
            .map(|c| {
                communities(format!(
                    "CommunitiesRemoteAppService.resyncRemoteAppsForCommunityAndWidget({}, {})",
                    q(&c.to_string()),
                    q(app.widget_def_id())
                ))
            })
            .collect(),
        Action::ResyncAll { app } => vec![communities(format!(
            "CommunitiesRemoteAppService.resyncRemoteAppsForAllCommunities({})",
            q(app.widget_def_id())
        ))],
        Action::SyncShares { app } => match app {
            App::Files => vec![call(
                Database::Files,
                "FilesDataIntegrityService.syncAllCommunityShares()".into(),
            )],
            App::Activities => vec![call(
                Database::Activities,
                "AccessControlService.syncAllCommunityShares()".into(),
            )],
            _ => vec![],
        },
        Action::Assign { app, orphans } => {
            let Some(def) = app.remote_app_def_id() else {
                return vec![];
            };
            orphans
                .iter()
                .map(|o| {
                    let new = match &o.target {
                        Target::Existing { community } => q(&community.to_string()),
                        Target::Recreated { community, .. } => {
                            format!("new_uuid({})", q(&community.to_string()))
                        }
                    };
                    communities(format!(
                        "CommunitiesRemoteAppService.assignRemoteApp({}, {}, {}, {new}, {})",
                        q(def),
                        q(&o.object_id),
                        q(&o.old_community.to_string()),
                        q(ui_location(*app))
                    ))
                })
                .collect()
        }
        Action::DeleteOrphans { app, orphans } => orphans
            .iter()
            .filter_map(|o| delete_orphan(*app, &o.object_id, o.old_community, &o.name))
            .collect(),
    }
}

/// `exportSyncedResourceInfo` into `EXPORT_DIR`, then `generateSyncReports` into `REPORT_DIR`
/// (both set at the top of each script).
fn export_and_report(app: App) -> Vec<Call> {
    let q = py_str;
    let file = format!(
        "EXPORT_DIR + {}",
        q(&format!("/{}.xml", app.widget_def_id()))
    );
    let export = match app {
        App::Activities => format!(
            "ActivityService.exportSyncedResourceInfo({file}, {})",
            q("community")
        ),
        App::Blog | App::IdeationBlog => format!(
            "BlogsAdminService.exportSyncedResourceInfo({file}, {}, {})",
            q("community"),
            q(app.widget_def_id())
        ),
        App::Files => format!(
            "FilesLibraryService.exportSyncedResourceInfo({file}, {})",
            q("community")
        ),
        App::Forum => format!(
            "ForumsService.exportSyncedResourceInfo({file}, {})",
            q("community")
        ),
        App::Wiki => format!(
            "WikisLibraryService.exportSyncedResourceInfo({file}, {})",
            q("community")
        ),
        App::StatusUpdates => format!(
            "NewsMicrobloggingService.exportSyncedResourceInfo({file}, {})",
            q("community")
        ),
        App::Library => return vec![],
    };
    vec![
        call(app.database(), export),
        communities(format!(
            "CommunitiesRemoteAppService.generateSyncReports({file}, REPORT_DIR)"
        )),
    ]
}

/// The "Deleting orphaned data" command of each app (domain.md §5); Library has none.
fn delete_orphan(app: App, object_id: &str, old_community: Uuid, name: &str) -> Option<Call> {
    let q = py_str;
    let old = q(&old_community.to_string());
    let (service, code) = match app {
        App::Activities => (
            Database::Activities,
            format!(
                "ActivityService.deleteActivities(ActivityService.fetchActivitiesByCommunityExId({old}))"
            ),
        ),
        App::Blog | App::IdeationBlog => (
            Database::Blogs,
            format!("BlogsAdminService.deleteWeblog({})", q(object_id)),
        ),
        App::Files => (
            Database::Files,
            format!("FilesLibraryService.delete({})", q(object_id)),
        ),
        App::Forum => (
            Database::Forums,
            format!(
                "ForumsService.deleteForums(ForumsService.fetchForumsByName({}))",
                q(name)
            ),
        ),
        App::Wiki => (
            Database::Wikis,
            format!("WikisLibraryService.delete({})", q(object_id)),
        ),
        App::StatusUpdates => (
            Database::News,
            format!("NewsMicrobloggingService.deleteMicroblogs({old})"),
        ),
        App::Library => return None,
    };
    Some(call(service, code))
}

#[cfg(test)]
mod tests {
    use super::py_str;

    #[test]
    fn strings_are_quoted_for_jython() {
        assert_eq!(py_str("Files"), "\"Files\"");
        assert_eq!(py_str("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(py_str("line\nnext"), "\"line\\nnext\"");
        assert_eq!(py_str("Équipe"), "u\"\\u00c9quipe\"");
        assert_eq!(py_str("😀"), "u\"\\ud83d\\ude00\"");
        assert_eq!(py_str("\u{1}"), "\"\\x01\"");
    }
}
