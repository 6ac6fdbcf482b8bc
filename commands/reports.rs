//! HTML reports: `<App>_communityDifferences.html` and `<App>_orphanedRemoteApplications.html`
//! as `generateSyncReports` names them (with Lifeline's repair beside each row), and an index
//! page that tells the story first and lists the tables after.

use crate::plan::{convergence_line, Made};
use crate::recover::{disposition, lost_how, orphan_reason, summary};
use projections::converge::Residual;
use projections::findings::Against;
use projections::App;
use std::fmt::Write;

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;\
padding:0 1rem;color:#1d232a}h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #d5dbe1}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{border:1px solid #d5dbe1;\
padding:.3rem .5rem;text-align:left;vertical-align:top;white-space:pre-line}th{background:#eef2f5}code{font-size:.9em}\
.cards{display:flex;flex-wrap:wrap;gap:.75rem}.card{border:1px solid #d5dbe1;border-radius:.4rem;\
padding:.6rem .9rem;min-width:9rem}.card b{display:block;font-size:1.6rem}.ok{color:#17663a}\
.bad{color:#a4161a}.muted{color:#5b6770}table.steps td:nth-child(3){font:12px/1.4 ui-monospace,monospace;word-break:break-all}";

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        esc(title)
    )
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>\n");
    for r in rows {
        s.push_str("<tr>");
        for cell in r {
            let _ = write!(s, "<td>{}</td>", esc(cell));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
    s
}

/// (file name, page) for the index and each app's two reports.
pub fn reports(made: &Made) -> Vec<(String, String)> {
    let mut out = vec![("index.html".to_owned(), index(made))];
    for app in App::ALL {
        out.push((
            format!("{app}_communityDifferences.html"),
            differences(made, app),
        ));
        out.push((
            format!("{app}_orphanedRemoteApplications.html"),
            orphans(made, app),
        ));
    }
    out
}

fn differences(made: &Made, app: App) -> String {
    let rows: Vec<Vec<String>> = made
        .analysis
        .findings
        .differences
        .iter()
        .filter(|d| d.app == Some(app) && d.against == Against::Communities)
        .map(|d| {
            vec![
                d.community.to_string(),
                d.community_name.clone(),
                d.object_id.clone().unwrap_or_default(),
                d.field.name().to_owned(),
                d.expected.clone(),
                d.found.clone(),
            ]
        })
        .collect();
    let intro = format!(
        "Communities whose settings in the {} database differ from the Communities database",
        app.database()
    );
    let header = [
        "Community uuid",
        "Community",
        "Object identifying id",
        "Field",
        "Communities",
        app.widget_def_id(),
    ];
    let title = format!("{app}: community differences");
    app_page(made, &title, &intro, &header, &rows)
}

fn orphans(made: &Made, app: App) -> String {
    let rows: Vec<Vec<String>> = made
        .analysis
        .findings
        .orphans
        .iter()
        .filter(|o| o.app == app)
        .map(|o| {
            vec![
                o.object_id.clone(),
                o.old_community.to_string(),
                o.name.clone(),
                orphan_reason(o.reason).to_owned(),
                disposition(&o.disposition),
            ]
        })
        .collect();
    let intro = format!(
        "Data in the {} database whose community is missing, in the trash, deleted, or lacks \
         the widget",
        app.database()
    );
    let header = [
        "Object identifying id",
        "Old community uuid",
        "Community name (as the app holds it)",
        "Why",
        "Repair",
    ];
    let title = format!("{app}: orphaned remote applications");
    app_page(made, &title, &intro, &header, &rows)
}

/// One app's report: a heading, what it lists, and the table (or "None.").
fn app_page(
    made: &Made,
    title: &str,
    intro: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> String {
    let mut body = format!(
        "<h1>{}</h1>\n<p class=\"muted\">{}, at log position {}. <a href=\"index.html\">Back \
         to the summary</a>.</p>\n",
        esc(title),
        esc(intro),
        made.plan.position
    );
    if rows.is_empty() {
        body.push_str("<p class=\"ok\">None.</p>\n");
    } else {
        body.push_str(&table(header, rows));
    }
    page(title, &body)
}

fn card(s: &mut String, n: usize, what: &str) {
    let _ = write!(s, "<div class=\"card\"><b>{n}</b>{}</div>", esc(what));
}

fn index(made: &Made) -> String {
    let f = &made.analysis.findings;
    let p = &made.plan;
    let mut b = format!("<h1>Repair plan {}</h1>\n", esc(made.short_id()));
    let _ = writeln!(
        b,
        "<p class=\"muted\">Lifeline, from the ledger at position {} (checkpoint size {}, root \
         <code>{}</code>).</p>",
        p.position,
        made.checkpoint.size,
        ledger::hex32::encode(&made.checkpoint.root)
    );
    b.push_str("<h2>What happened</h2>\n<ul>");
    if f.restores.is_empty() {
        b.push_str("<li>No database was restored since the last completed repair.</li>");
    }
    for r in &f.restores {
        let _ = write!(b, "<li>{}.</li>", esc(&r.describe()));
    }
    b.push_str("</ul>\n<div class=\"cards\">");
    card(&mut b, f.lost.len(), "changes lost");
    card(&mut b, f.differences.len(), "differences");
    card(&mut b, f.orphans.len(), "orphans");
    card(&mut b, f.missing.len(), "widgets without data");
    card(&mut b, f.stale_queue.len(), "stale queued events");
    card(&mut b, p.steps.len(), "repair steps");
    card(&mut b, p.owners.len(), "owners to tell");
    b.push_str("</div>\n");
    let class = if p.converges { "ok" } else { "bad" };
    let _ = writeln!(b, "<p class=\"{class}\">{}</p>", esc(&convergence_line(p)));
    let _ = writeln!(b, "<p class=\"muted\">{}</p>", esc(&summary(f)));
    steps(&mut b, made);
    lost(&mut b, made);
    unrecoverable(&mut b, p);
    b.push_str("<h2>Reports by application</h2>\n<ul>");
    for app in App::ALL {
        let d = f
            .differences
            .iter()
            .filter(|d| d.app == Some(app) && d.against == Against::Communities)
            .count();
        let o = f.orphans.iter().filter(|o| o.app == app).count();
        let _ = write!(
            b,
            "<li>{app}: <a href=\"{app}_communityDifferences.html\">{d} differences</a>, \
             <a href=\"{app}_orphanedRemoteApplications.html\">{o} orphans</a></li>"
        );
    }
    b.push_str("</ul>\n");
    page(&format!("Repair plan {}", made.short_id()), &b)
}

fn steps(b: &mut String, made: &Made) {
    if made.plan.steps.is_empty() {
        b.push_str("<h2>Steps</h2><p class=\"ok\">Nothing to repair.</p>\n");
        return;
    }
    b.push_str("<h2>Steps</h2>\n<p>In this order; the runbook has each command and check.</p>\n");
    let rows: Vec<Vec<String>> = made
        .plan
        .steps
        .iter()
        .map(|s| {
            let how = if s.calls.is_empty() {
                "by hand".to_owned()
            } else {
                let mut shown: Vec<String> =
                    s.calls.iter().take(3).map(|c| c.code.clone()).collect();
                if s.calls.len() > 3 {
                    shown.push(format!(
                        "… and {} more (see the runbook)",
                        s.calls.len() - 3
                    ));
                }
                shown.join("\n")
            };
            vec![s.number.to_string(), s.title.clone(), how, s.reason.clone()]
        })
        .collect();
    let t = table(&["#", "Step", "Command", "Why"], &rows);
    b.push_str(&t.replacen("<table>", "<table class=\"steps\">", 1));
}

fn lost(b: &mut String, made: &Made) {
    let f = &made.analysis.findings;
    if f.lost.is_empty() {
        return;
    }
    b.push_str("<h2>Changes the restores took away</h2>\n");
    let rows: Vec<Vec<String>> = f
        .lost
        .iter()
        .map(|c| {
            vec![
                c.database.to_string(),
                crate::time_fmt::format_seconds(ledger::Timestamp(c.occurred_ns)),
                c.actor.clone().unwrap_or_default(),
                c.community_name.clone(),
                c.summary.clone(),
                lost_how(f, c),
            ]
        })
        .collect();
    b.push_str(&table(
        &["Database", "When", "Who", "Community", "Change", "Lost by"],
        &rows,
    ));
}

fn unrecoverable(b: &mut String, p: &projections::plan::Plan) {
    if p.unrecoverable.is_empty() && p.owners.is_empty() {
        return;
    }
    b.push_str("<h2>What no command brings back, and whom to tell</h2>\n");
    let rows: Vec<Vec<String>> = p
        .owners
        .iter()
        .map(|o| vec![o.name.clone(), o.owners.join(", "), o.lost.join("\n")])
        .collect();
    b.push_str(&table(&["Community", "Owners", "What it lost"], &rows));
    let unexplained: Vec<&Residual> = p.unrecoverable.iter().filter(|r| !r.is_content()).collect();
    if !unexplained.is_empty() {
        let _ = writeln!(
            b,
            "<p class=\"bad\">{} differences are not explained by the plan.</p>",
            unexplained.len()
        );
    }
}
