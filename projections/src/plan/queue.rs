//! Steps 1–7 of the vendor procedure (domain.md §4): block users, pause the retry task, clear
//! the queue by app or by resource type, export and report, resume, unblock.

use super::Builder;
use crate::findings::Findings;
use crate::repair::{Action, RETRY_TASK};
use crate::vocabulary::{App, Database};

fn restores_text(f: &Findings) -> String {
    let lines: Vec<String> = f.restores.iter().map(|r| r.describe()).collect();
    lines.join("; ")
}

pub(super) fn phase(b: &mut Builder, f: &Findings) {
    let restored = f.restored();
    if restored.is_empty() {
        let queued = b.state.db(Database::Communities).queue.len();
        if queued > 0 {
            b.push(
                Action::RetryQueued,
                format!(
                    "Re-post the {}",
                    crate::describe::count(
                        queued,
                        "queued lifecycle event",
                        "queued lifecycle events"
                    )
                ),
                "no database was restored, so the queued events still apply".into(),
                "CommunitiesQEventService.viewQueuedEventsSummary() shows none left".into(),
            );
        }
        return;
    }
    let why = restores_text(f);
    let stale = f.stale_queue.len();
    b.push_with(
        Action::BlockUsers,
        "Block users at the IBM HTTP Server".into(),
        why.clone(),
        "a browser from outside the admin address gets the maintenance page".into(),
        vec![
            "In httpd.conf: ErrorDocument 401 and 403 point at a maintenance page; in \
             <Location /> deny from all, allow from the admin address and from each WebSphere \
             node; restart IHS. WebSphere stays up for wsadmin."
                .into(),
        ],
    );
    b.push(
        Action::PauseRetries,
        format!("Pause {RETRY_TASK}"),
        "queued events must not replay while the databases disagree".into(),
        format!("CommunitiesScheduler.getTaskDetails(\"{RETRY_TASK}\") shows status SUSPENDED"),
    );
    let affected: Vec<App> = if restored.contains(&Database::Communities) {
        b.push(
            Action::ClearQueueAll,
            "Clear every queued community event".into(),
            match stale {
                0 => "the Communities database lost data, so what its queue holds is stale".into(),
                n => format!(
                    "the Communities database lost data, so its queue is stale ({} events from \
                     before a restore)",
                    crate::describe::count(n, "entry replays", "entries replay")
                ),
            },
            "CommunitiesQEventService.viewQueuedEventsByResourceType(\"community\", None, 10) \
             returns None"
                .into(),
        );
        App::ALL.to_vec()
    } else {
        let apps: Vec<App> = App::ALL
            .into_iter()
            .filter(|a| restored.contains(&a.database()))
            .collect();
        for app in apps.iter().filter(|a| a.remote_app_def_id().is_some()) {
            let n = f.stale_queue.iter().filter(|s| s.app == *app).count();
            b.push(
                Action::ClearQueueByApp { app: *app },
                format!("Clear the events queued for {app}"),
                match n {
                    0 => format!(
                        "{} lost data: an event queued for it before the restore would replay \
                         against the restored database (the ledger knows of none queued now)",
                        app.database()
                    ),
                    n => format!(
                        "{} lost data; {} stale",
                        app.database(),
                        crate::describe::count(
                            n,
                            "of its queued events is",
                            "of its queued events are"
                        )
                    ),
                },
                format!(
                    "CommunitiesQEventService.viewQueuedEventsByRemoteAppDefId(\"{app}\", None, \
                     10) returns None"
                ),
            );
        }
        apps
    };
    for app in affected.into_iter().filter(|a| *a != App::Library) {
        b.push(
            Action::ExportAndReport { app },
            format!("Export the synced resources of {app} and generate its sync reports"),
            "the vendor's own comparison, to check this plan's findings against".into(),
            format!(
                "REPORT_DIR holds {app}_communityDifferences.html and \
                 {app}_orphanedRemoteApplications.html, listing what `lifeline recover` lists"
            ),
        );
    }
    b.push(
        Action::ResumeRetries,
        format!("Resume {RETRY_TASK}"),
        "the stale events are gone; new ones must flow again".into(),
        format!("CommunitiesScheduler.getTaskDetails(\"{RETRY_TASK}\") shows status SCHEDULED"),
    );
    b.push_with(
        Action::UnblockUsers,
        "Remove the blocks at the IBM HTTP Server".into(),
        "the databases are consistent enough for users; the rest repairs online".into(),
        "users reach Connections again".into(),
        vec!["Undo the httpd.conf changes of step 1 and restart IHS.".into()],
    );
}
