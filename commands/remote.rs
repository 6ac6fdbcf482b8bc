//! `record`, `recover`, `plan`, `audit` and `history` with `--server URL`: the fact recorded,
//! the findings, the plan, its files, `plan record` and `plan done`, the audit and a
//! community's timeline, asked of the `lifeline serve` that holds the ledger (no other process
//! can open a served ledger). The server does what the commands would (`/api/v1/record`,
//! `/api/v1/findings`, `/api/v1/plan`, `/api/v1/plan/files`, `/api/v1/plan/record`,
//! `/api/v1/plan/done`, `/api/v1/audit`, `/api/v1/history/…`); this side prints and writes the
//! same way.

use crate::cli::{
    AuditArgs, Format, FormatArg, HistoryArgs, PlanAction, PlanArgs, PointArgs, RecordArgs,
    RecoverArgs, ServerArgs,
};
use crate::exit::{with_code, ERROR, NOT_FOUND, USAGE, WRONG_EXPECTED_REVISION};
use anyhow::Context;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// The largest answer read: the HTML reports of a large deployment run to hundreds of MB.
const ANSWER_BYTES_MAX: u64 = 2 << 30;

/// A plan is made from the whole log: at 100,000 communities that takes seconds.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Whether `url` is http(s)://HOST….
pub(crate) fn is_web_url(url: &str) -> bool {
    let uri: Option<axum::http::Uri> = url.parse().ok();
    uri.as_ref().is_some_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
    })
}

struct Server {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl Server {
    fn new(url: &str, r: &ServerArgs) -> anyhow::Result<Server> {
        if !is_web_url(url) {
            return Err(with_code(
                USAGE,
                format!(
                    "--server '{url}' is not the URL of a `lifeline serve`: give its base URL, \
                     like http://127.0.0.1:2113"
                ),
            ));
        }
        let authorization = match &r.token_file {
            Some(file) => {
                let token = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the token file {}", file.display()))?;
                Some(format!("Bearer {}", token.trim_end_matches(['\r', '\n'])))
            }
            None => None,
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT));
        if let Some(file) = &r.ca_file {
            let roots = ureq::tls::RootCerts::new_with_certs(&certificates(file)?);
            config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
        }
        let agent = config.build().into();
        Ok(Server {
            agent,
            base: url.trim_end_matches('/').to_owned(),
            authorization,
        })
    }

    /// The server's answer to a GET as `T`, read from its JSON text (never a `Value` tree
    /// first: findings at 100,000 communities are hundreds of megabytes of it).
    fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        what: &str,
    ) -> anyhow::Result<T> {
        let (url, body) = self.get_text(path, query)?;
        decode(&url, what, &body)
    }

    /// The JSON text of the server's answer to GET `path` with `query` (each pair encoded),
    /// and the URL asked.
    fn get_text(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<(String, Vec<u8>)> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        for (k, v) in query {
            req = req.query(k, v);
        }
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let body = read_answer(&url, req.call())?;
        Ok((url, body))
    }

    fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        parsed(&url, &read_answer(&url, req.send(body.to_string()))?)
    }
}

/// The certificates of a PEM file; an error when it holds none.
fn certificates(file: &Path) -> anyhow::Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(with_code(
                    USAGE,
                    format!("--ca-file {}: {e}", file.display()),
                ))
            }
        }
    }
    if certs.is_empty() {
        return Err(with_code(
            USAGE,
            format!(
                "--ca-file {} holds no certificate (a PEM file with BEGIN CERTIFICATE)",
                file.display()
            ),
        ));
    }
    Ok(certs)
}

/// The answer's JSON; a refusal as the error the server gave, with the exit code the same
/// error has when the command opens the ledger itself (the server says it; else as near as
/// HTTP tells it).
fn read_answer(
    url: &str,
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> anyhow::Result<Vec<u8>> {
    let mut r = answer.map_err(|e| {
        let said = e.to_string();
        let hint = if said.contains("CaUsedAsEndEntity") {
            "the server's certificate is a CA certificate, which TLS does not accept for a \
             server: make it with basicConstraints=critical,CA:FALSE (README)"
        } else if said.contains("invalid peer certificate") {
            "for a certificate the server signed itself, give it with --ca-file"
        } else {
            "is `lifeline serve` running there?"
        };
        with_code(ERROR, format!("{url}: {said} ({hint})"))
    })?;
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(ANSWER_BYTES_MAX)
        .read_to_vec()
        .with_context(|| format!("reading the answer of {url}"))?;
    if status == 200 {
        return Ok(body);
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        with_code(
            ERROR,
            format!("{url}: HTTP {status}, not the JSON of a `lifeline serve` ({e})"),
        )
    })?;
    let said = v["error"].as_str().unwrap_or("(no reason given)");
    let code = match (v["exitCode"].as_i64(), status) {
        (Some(code), _) => i32::try_from(code).unwrap_or(ERROR),
        (None, 404) => NOT_FOUND,
        (None, 409) => WRONG_EXPECTED_REVISION,
        _ => ERROR,
    };
    let hint = match status {
        401 | 403 => " (--token-file names a file holding a token of the server's access file)",
        _ => "",
    };
    Err(with_code(code, format!("the server refused: {said}{hint}")))
}

/// The query that names `p`'s point and restores.
fn point_query(p: &PointArgs) -> Vec<(&'static str, String)> {
    let mut query = vec![("at", p.at.to_string())];
    if p.occurred {
        query.push(("occurred", "true".to_owned()));
    }
    if !p.restore.is_empty() {
        query.push(("restore", restore_texts(p).join(",")));
    }
    query
}

/// `p`'s restores as `--restore` takes them.
fn restore_texts(p: &PointArgs) -> Vec<String> {
    p.restore.iter().map(ToString::to_string).collect()
}

fn connect(r: &ServerArgs) -> anyhow::Result<Server> {
    Server::new(r.server.as_deref().expect("called with --server"), r)
}

/// A successful answer's JSON.
fn parsed(url: &str, body: &[u8]) -> anyhow::Result<Value> {
    serde_json::from_slice(body).map_err(|e| {
        with_code(
            ERROR,
            format!("{url}: HTTP 200, not the JSON of a `lifeline serve` ({e})"),
        )
    })
}

/// What the server answered, as the type the command prints: read from the answer's JSON
/// text.
fn decode<T: serde::de::DeserializeOwned>(url: &str, what: &str, body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        let said = if e.is_data() {
            format!("the server's {what}: {e}")
        } else {
            format!("HTTP 200, not the JSON of a `lifeline serve` ({e})")
        };
        with_code(ERROR, format!("{url}: {said}"))
    })
}

pub fn record(a: &RecordArgs, format: Format) -> anyhow::Result<()> {
    // What a JSON body cannot carry as text is refused here, as `record` refuses it.
    let data: Value = serde_json::from_str(&a.data).map_err(|e| {
        with_code(
            ERROR,
            format!(
                "{} data is not valid: {e}; nothing was recorded",
                a.event_type
            ),
        )
    })?;
    crate::time_fmt::parse_flag(a.occurred.as_deref(), "--occurred")?;
    let server = connect(&a.remote)?;
    let body = json!({
        "type": a.event_type, "data": data, "force": a.force, "occurred": a.occurred,
        "id": a.id,
    });
    crate::record::show(&server.post("/api/v1/record", &body)?, format)
}

pub fn audit(a: &AuditArgs, format: FormatArg) -> anyhow::Result<()> {
    let server = connect(&a.remote)?;
    let mut query = vec![("limit", a.limit.to_string())];
    let mut filter = |name, value: Option<String>| {
        if let Some(v) = value {
            query.push((name, v));
        }
    };
    filter("community", a.community.clone());
    filter("actor", a.actor.clone());
    filter("type", a.event_type.clone());
    filter("database", a.database.map(|d| d.name().to_owned()));
    filter("since", a.since.as_ref().map(ToString::to_string));
    filter("until", a.until.as_ref().map(ToString::to_string));
    #[derive(serde::Deserialize)]
    struct Audit {
        total: usize,
        events: Vec<crate::audit::Row>,
    }
    let Audit { total, events } = server.get_as("/api/v1/audit", &query, "audit")?;
    crate::audit::show(&events, total, format)
}

pub fn history(a: &HistoryArgs, format: Format) -> anyhow::Result<()> {
    let server = connect(&a.remote)?;
    let community =
        percent_encoding::utf8_percent_encode(&a.community, percent_encoding::NON_ALPHANUMERIC);
    #[derive(serde::Deserialize)]
    struct History {
        changes: Vec<crate::history::Entry>,
    }
    let History { changes } =
        server.get_as(&format!("/api/v1/history/{community}"), &[], "history")?;
    crate::history::show(&changes, format)
}

pub fn recover(a: &RecoverArgs, format: Format) -> anyhow::Result<()> {
    if a.advise {
        return Err(with_code(
            USAGE,
            "--advise reads the backups beside the ledger: it does not go with --server",
        ));
    }
    let server = connect(&a.remote)?;
    let (url, body) = server.get_text("/api/v1/findings", &point_query(&a.point))?;
    // The findings, and the plans under way that the API answers beside them.
    #[derive(serde::Deserialize)]
    struct Beside {
        #[serde(default, rename = "inProgress")]
        in_progress: Vec<crate::recover::Progress>,
    }
    let b: Beside = decode(&url, "findings", &body)?;
    let f: projections::findings::Findings = decode(&url, "findings", &body)?;
    drop(body);
    match format {
        Format::Json => crate::output::json_line(&crate::recover::json(&f, &b.in_progress)),
        Format::Table => {
            crate::recover::print_findings(&f, &b.in_progress, None);
            Ok(())
        }
    }
}

pub fn plan(a: &PlanArgs, format: FormatArg) -> anyhow::Result<()> {
    crate::plan::check_args(a, format)?;
    let server = connect(&a.remote)?;
    let p = &a.point;
    match &a.action {
        Some(PlanAction::Record { actor }) => {
            let body = json!({
                "at": p.at.to_string(), "occurred": p.occurred, "restore": restore_texts(p),
                "actor": actor,
            });
            crate::plan::show_recorded(&server.post("/api/v1/plan/record", &body)?, format)
        }
        Some(PlanAction::Done {
            plan,
            steps: crate::cli::Steps(steps),
            actor,
        }) => {
            let body = json!({ "plan": plan, "steps": steps, "actor": actor });
            crate::plan::show_done(&server.post("/api/v1/plan/done", &body)?, format)
        }
        None => {
            let mut query = point_query(p);
            match (format, &a.out) {
                (FormatArg::Table | FormatArg::Json, None) => {
                    // The plan and what the API answers beside it (`plan::json`).
                    #[derive(serde::Deserialize)]
                    struct Beside {
                        id: String,
                        checkpoint: ledger::Checkpoint,
                        restores: Vec<projections::findings::Restore>,
                        #[serde(default, rename = "inProgress")]
                        in_progress: Vec<crate::recover::Progress>,
                    }
                    let (url, body) = server.get_text("/api/v1/plan", &query)?;
                    let b: Beside = decode(&url, "plan", &body)?;
                    let plan: projections::plan::Plan = decode(&url, "plan", &body)?;
                    drop(body);
                    if format == FormatArg::Table {
                        crate::plan::print_table(&plan, &b.id, &b.in_progress);
                        return Ok(());
                    }
                    let json = crate::plan::json_of(
                        &plan,
                        &b.id,
                        &b.checkpoint,
                        &b.restores,
                        &b.in_progress,
                    );
                    crate::output::json_line(&json)
                }
                (format, out) => {
                    let name = clap::ValueEnum::to_possible_value(&format)
                        .map(|v| v.get_name().to_owned())
                        .unwrap_or_default();
                    query.push(("format", name));
                    #[derive(serde::Deserialize)]
                    struct Files {
                        files: Vec<(String, String)>,
                    }
                    let Files { files } = server.get_as("/api/v1/plan/files", &query, "files")?;
                    match out {
                        Some(dir) => crate::plan::put_all(dir, &files),
                        // runbook.md, or owners.csv: what `plan` prints in that form.
                        None => {
                            print!("{}", files.first().map_or("", |(_, text)| text.as_str()));
                            Ok(())
                        }
                    }
                }
            }
        }
    }
}
