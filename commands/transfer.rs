//! `export` and `import` of JSON Lines.

use crate::cli::{ExportArgs, Format};
use crate::exit::with_code;
use anyhow::Context;
use ledger::{AllStart, Clock, Direction, ImportRecord, Ledger, ReadError, Revision, StreamStart};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// Records per import commit: bounds memory whatever the file's size (larger commits are
/// faster: each one touches every stream it writes once).
const IMPORT_BATCH_RECORDS: usize = 100_000;

/// The page cache an import opens the ledger with: it writes and hardly reads.
pub const IMPORT_CACHE_BYTES: usize = 16 * 1024 * 1024;

pub fn export(l: &Ledger, a: &ExportArgs) -> anyhow::Result<()> {
    let sink: Box<dyn Write> = match &a.out {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, sink);
    let bar = crate::progress::bar(l.head(), "export");
    crate::jsonl::write_all(
        l,
        AllStart::Start,
        Direction::Forwards,
        u64::MAX,
        &mut out,
        |p| bar.set_position(p),
    )?;
    bar.finish_and_clear();
    out.flush()?;
    l.close();
    Ok(())
}

/// What pass one knows of a stream: the next revision it expects and whether it is closed.
#[derive(Clone, Copy)]
struct StreamState {
    next: Revision,
    tombstoned: bool,
}

pub fn import(l: &Ledger, file: &Path, format: Format) -> anyhow::Result<()> {
    let now = ledger::SystemClock.now();
    let lines = check_whole_file(l, file, now)?;
    let bar = crate::progress::bar(lines, "import");
    let mut batch: Vec<ImportRecord> = Vec::with_capacity(IMPORT_BATCH_RECORDS);
    let (mut written, mut present) = (0u64, 0u64);
    // One batch is written while the next is parsed; a batch is queued only once the one
    // before it is durable, so a failure stops the import there.
    let mut in_flight: Option<ledger::QueuedImport> = None;
    let mut flush = |batch: Option<Vec<ImportRecord>>| -> anyhow::Result<()> {
        if let Some(queued) = in_flight.take() {
            let s = queued.wait()?;
            written += s.written;
            present += s.already_present;
        }
        if let Some(batch) = batch {
            in_flight = Some(l.import_queued(batch)?);
        }
        Ok(())
    };
    for (n, line) in lines_of(file)?.enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        batch.push(crate::jsonl::parse_line(&line, now).with_context(|| at(file, n))?);
        if batch.len() == IMPORT_BATCH_RECORDS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH_RECORDS));
            flush(Some(full))?;
            bar.set_position(n as u64 + 1);
        }
    }
    flush(Some(batch))?;
    flush(None)?;
    bar.finish_and_clear();
    crate::world::keep_snapshots(l);
    l.close();
    match format {
        Format::Json => crate::output::json_line(&serde_json::json!({
            "file": file.display().to_string(), "written": written, "already_present": present,
        })),
        Format::Table => {
            println!(
                "imported {written} events from {} ({present} were already in the ledger)",
                file.display()
            );
            Ok(())
        }
    }
}

fn at(file: &Path, n: usize) -> String {
    format!("{} line {}", file.display(), n + 1)
}

/// The file's lines; a byte order mark before the first (as Windows tools write UTF-8) is not
/// part of it.
fn lines_of(file: &Path) -> anyhow::Result<impl Iterator<Item = std::io::Result<String>>> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let lines = BufReader::with_capacity(1 << 20, f).lines();
    Ok(lines.enumerate().map(|(n, line)| match line {
        Ok(text) if n == 0 && text.starts_with('\u{feff}') => {
            Ok(text['\u{feff}'.len_utf8()..].to_owned())
        }
        other => other,
    }))
}

/// Pass one: every line parses, and every record follows on from the ledger or from the lines
/// before it (or is already in the ledger with the same id). Nothing is written. Returns the
/// number of lines, for pass two's progress.
fn check_whole_file(l: &Ledger, file: &Path, now: ledger::Timestamp) -> anyhow::Result<u64> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("opening {}", file.display()))?
        .len();
    let bar = crate::progress::bytes_bar(size, "check");
    let mut read = 0u64;
    let mut lines = 0u64;
    let mut streams: HashMap<String, StreamState> = HashMap::new();
    let bad = |n: usize, msg: String| {
        with_code(
            crate::exit::ERROR,
            format!("{}: {msg}; nothing was imported", at(file, n)),
        )
    };
    for (n, line) in lines_of(file)?.enumerate() {
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        lines += 1;
        read += line.len() as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let r = crate::jsonl::parse_line(&line, now).map_err(|e| bad(n, format!("{e:#}")))?;
        if projections::events::is_domain_type(&r.event.event_type) {
            projections::decode(&r.event.event_type, &r.event.data, &r.event.metadata)
                .map_err(|e| bad(n, e.to_string()))?;
        }
        let st = match streams.get(&r.stream) {
            Some(s) => *s,
            None => {
                let rec = l.stream_record(&r.stream)?;
                StreamState {
                    next: rec
                        .as_ref()
                        .and_then(|r| r.last_revision)
                        .map_or(0, |x| x + 1),
                    tombstoned: rec.is_some_and(|r| r.is_tombstoned()),
                }
            }
        };
        let tomb = r.revision == ledger::TOMBSTONE_REVISION
            && r.event.event_type == ledger::TOMBSTONE_TYPE;
        let next = if tomb {
            StreamState {
                tombstoned: true,
                ..st
            }
        } else if st.tombstoned {
            return Err(bad(
                n,
                format!("stream '{}' is tombstoned before this line", r.stream),
            ));
        } else if r.revision == st.next {
            StreamState {
                next: st.next + 1,
                ..st
            }
        } else if r.revision < st.next {
            check_present(l, &r).map_err(|m| bad(n, m))?;
            st
        } else {
            return Err(bad(
                n,
                format!(
                    "stream '{}' revision {} does not follow on (next is {})",
                    r.stream, r.revision, st.next
                ),
            ));
        };
        streams.insert(r.stream, next);
        if n % 4096 == 0 {
            bar.set_position(read);
        }
    }
    bar.finish_and_clear();
    Ok(lines)
}

/// A line behind the stream's end must be the very event the ledger holds there.
fn check_present(l: &Ledger, r: &ImportRecord) -> Result<(), String> {
    let held = l.read_stream(
        &r.stream,
        StreamStart::Revision(r.revision),
        Direction::Forwards,
        1,
    );
    match held {
        Ok(v)
            if v.first()
                .is_some_and(|e| e.revision == r.revision && e.id == r.event.id) =>
        {
            Ok(())
        }
        Ok(_) | Err(ReadError::StreamNotFound { .. }) => Err(format!(
            "stream '{}' revision {} already holds a different event than {}",
            r.stream, r.revision, r.event.id
        )),
        Err(e) => Err(e.to_string()),
    }
}
