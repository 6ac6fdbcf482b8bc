//! `sync --server URL`: a live read of a Connections server's Communities API — every page of
//! `communities/all` and of the trash (following `rel=next`), and each community's members and
//! widgets feeds — compared with the ledger like `import atom`. With both feeds read whole, a
//! community the ledger knows that is in neither is recorded as purged. Requests are retried; a server that stays unreachable imports
//! nothing.

use crate::atom_api::{document, Document};
use crate::atom_import::{import_snapshot, Snapshot};
use crate::cli::{Format, SyncArgs};
use crate::exit::{with_code, ERROR};
use anyhow::Context;
use base64::Engine;
use ledger::Ledger;
use std::collections::HashSet;
use std::time::Duration;

/// Attempts per request, with a pause that doubles between them.
pub const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// Pages of `communities/all` read at most (a guard against a server that links in a circle).
pub const PAGES_MAX: usize = 100_000;
/// The largest response read.
const BODY_BYTES_MAX: u64 = 64 << 20;

struct Client {
    agent: ureq::Agent,
    authorization: Option<String>,
}

impl Client {
    fn new(a: &SyncArgs) -> anyhow::Result<Client> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let authorization = match (&a.user, &a.password_file) {
            (Some(user), Some(file)) => {
                let password = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the password file {}", file.display()))?;
                let pair = format!("{user}:{}", password.trim_end_matches(['\r', '\n']));
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
            (None, None) => None,
            _ => {
                return Err(with_code(
                    crate::exit::USAGE,
                    "--user and --password-file go together",
                ))
            }
        };
        Ok(Client {
            agent,
            authorization,
        })
    }

    /// The body at `url`: `None` for a 404, an error once every attempt failed.
    fn get(&self, url: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let mut pause = FIRST_PAUSE;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let mut req = self.agent.get(url).header("Accept", "application/atom+xml");
            if let Some(a) = &self.authorization {
                req = req.header("Authorization", a);
            }
            match req.call() {
                Ok(mut r) if r.status() == 200 => {
                    let body = r
                        .body_mut()
                        .with_config()
                        .limit(BODY_BYTES_MAX)
                        .read_to_vec()
                        .with_context(|| format!("reading {url}"))?;
                    return Ok(Some(body));
                }
                Ok(r) if r.status() == 404 => return Ok(None),
                Ok(r) if r.status() == 401 || r.status() == 403 => {
                    return Err(with_code(
                        ERROR,
                        format!(
                            "{url}: {} (check --user and --password-file); nothing was imported",
                            r.status()
                        ),
                    ))
                }
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            if attempt < ATTEMPTS {
                std::thread::sleep(pause);
                pause *= 2;
            }
        }
        Err(with_code(
            ERROR,
            format!("{url}: {last} after {ATTEMPTS} attempts; nothing was imported"),
        ))
    }
}

pub fn sync(l: &Ledger, a: &SyncArgs, format: Format) -> anyhow::Result<()> {
    if !crate::remote::is_web_url(&a.server) {
        return Err(crate::exit::with_code(
            crate::exit::USAGE,
            format!(
                "--server '{}' is not the URL of a web server: give its base URL, like \
                 https://connections.example.com",
                a.server
            ),
        ));
    }
    let client = Client::new(a)?;
    let base = a.server.trim_end_matches('/');
    let mut snapshot = Snapshot::default();
    let bar = crate::progress::bar(0, "sync");
    let all = format!("{base}/communities/service/atom/communities/all?ps=100");
    let whole = read_pages(&client, &all, false, &mut snapshot, &bar)?;
    let trash = format!("{base}/communities/service/atom/communities/trash?ps=100");
    let trash_read = read_pages(&client, &trash, true, &mut snapshot, &bar)?;
    if !trash_read {
        eprintln!("lifeline: the server has no trash feed ({trash}): trashed and purged communities are not recorded");
    }
    snapshot.complete = whole && trash_read;
    bar.finish_and_clear();
    import_snapshot(l, &snapshot, format)
}

/// Reads every page of a communities feed from `first`, and each community's members and
/// widgets, into `snapshot`. `Ok(false)`: the feed is not there (404) or pages ran past
/// [`PAGES_MAX`], so the snapshot is not the whole of it.
fn read_pages(
    client: &Client,
    first: &str,
    trash: bool,
    snapshot: &mut Snapshot,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<bool> {
    let mut url = Some(first.to_owned());
    let mut seen = HashSet::new();
    while let Some(page) = url.take() {
        if !seen.insert(page.clone()) || seen.len() > PAGES_MAX {
            return Ok(false);
        }
        let Some(body) = client.get(&page)? else {
            if seen.len() == 1 && trash {
                return Ok(false);
            }
            return Err(with_code(
                ERROR,
                format!("{page}: not found; nothing was imported"),
            ));
        };
        let doc = document(&body)
            .map_err(|e| with_code(ERROR, format!("{page}: {e}; nothing was imported")))?;
        let Document::Communities {
            entries,
            total,
            next,
            ..
        } = doc
        else {
            return Err(with_code(
                ERROR,
                format!("{page}: not a communities feed; nothing was imported"),
            ));
        };
        if let Some(t) = total {
            bar.set_length(bar.length().unwrap_or(0).max(t));
        }
        for c in &entries {
            for (what, feed) in [("members", &c.members_url), ("widgets", &c.widgets_url)] {
                let Some(feed) = feed else { continue };
                match client.get(feed)? {
                    Some(body) => snapshot.add(document(&body).map_err(|e| {
                        with_code(ERROR, format!("{feed}: {e}; nothing was imported"))
                    })?),
                    None => eprintln!("lifeline: no {what} feed for {} ({feed})", c.uuid),
                }
            }
            bar.inc(1);
        }
        snapshot.add(Document::Communities {
            entries,
            total,
            next: None,
            trash,
        });
        url = next;
    }
    Ok(true)
}
