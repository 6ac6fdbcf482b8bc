//! `init` and `append`.

use crate::cli::{AppendArgs, Format};
use anyhow::{anyhow, Context};
use ledger::{ContentType, EventId, Ledger, ProposedEvent};
use std::io::Read;
use std::path::Path;

pub fn init(path: &Path, format: Format) -> anyhow::Result<()> {
    let existed = path.exists();
    let l = crate::open_or_create(path, ledger::Options::default(), "creating")?;
    let head = l.head();
    l.close();
    match format {
        Format::Json => crate::output::json_line(&serde_json::json!({
            "ledger": path.display().to_string(),
            "created": !existed,
            "events": head,
        })),
        Format::Table => {
            if existed {
                println!("{} already holds a ledger of {head} events", path.display());
            } else {
                println!("created an empty ledger at {}", path.display());
            }
            Ok(())
        }
    }
}

fn json_arg(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| anyhow!("{what} is not valid JSON: {e}"))?;
    Ok(text.as_bytes().to_vec())
}

pub fn append(l: &Ledger, a: &AppendArgs, format: Format) -> anyhow::Result<()> {
    let data = match (&a.data, &a.data_file) {
        (Some(d), _) => json_arg("--data", d)?,
        (None, Some(f)) => {
            let mut text = String::new();
            if f.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading --data-file {}", f.display()))?;
            }
            json_arg(&format!("the data in {}", f.display()), text.trim_end())?
        }
        (None, None) => unreachable!("clap requires --data or --data-file"),
    };
    if projections::events::is_domain_type(&a.event_type) {
        projections::decode(&a.event_type, &data, b"").map_err(|e| {
            crate::exit::with_code(
                crate::exit::ERROR,
                format!("{e}; nothing was appended (`lifeline record` also checks it against the state)"),
            )
        })?;
    }
    let metadata = match &a.metadata {
        Some(m) => json_arg("--metadata", m)?,
        None => Vec::new(),
    };
    let occurred = crate::time_fmt::parse_flag(a.occurred.as_deref(), "--occurred")?;
    let event = ProposedEvent {
        id: a.id.map_or_else(EventId::new_random, EventId),
        event_type: a.event_type.clone(),
        content_type: ContentType::Json,
        data,
        metadata,
        occurred,
    };
    let id = event.id;
    let r = l.append_blocking(&a.stream, a.expected, vec![event])?;
    l.close();
    let position = r.position.unwrap_or(0);
    match format {
        Format::Json => crate::output::json_line(&serde_json::json!({
            "stream": a.stream, "id": id.to_string(), "position": position,
            "revision": r.revision.to_string(),
        })),
        Format::Table => {
            println!(
                "appended {id} to {} at revision {}, position {position}",
                a.stream, r.revision
            );
            Ok(())
        }
    }
}
