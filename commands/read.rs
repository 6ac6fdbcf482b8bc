//! `read`: a stream or `$all`.

use crate::cli::{Format, ReadArgs};
use crate::output;
use ledger::{AllStart, Direction, Ledger, RecordedEvent, StreamStart};
use std::io::Write;

pub fn read(l: &Ledger, a: &ReadArgs, format: Format) -> anyhow::Result<()> {
    let direction = if a.backwards {
        Direction::Backwards
    } else {
        Direction::Forwards
    };
    let events = if a.stream == "$all" {
        let start = match (a.from, a.backwards) {
            (Some(p), _) => AllStart::Position(p),
            (None, false) => AllStart::Start,
            (None, true) => AllStart::End,
        };
        if format == Format::Json {
            // Written as read, so a large --count needs no memory.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            crate::jsonl::write_all(l, start, direction, a.count, &mut out, |_| {})?;
            return Ok(out.flush()?);
        }
        l.read_all(start, direction, a.count, None)?.events
    } else {
        let start = match (a.from, a.backwards) {
            (Some(r), _) => StreamStart::Revision(r),
            (None, false) => StreamStart::Start,
            (None, true) => StreamStart::End,
        };
        l.read_stream(&a.stream, start, direction, a.count)?
    };
    match format {
        Format::Json => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for e in &events {
                crate::jsonl::write_event(&mut out, e)?;
            }
            out.flush()?;
        }
        Format::Table => print_table(&events),
    }
    Ok(())
}

fn print_table(events: &[RecordedEvent]) {
    if events.is_empty() {
        println!("no events");
        return;
    }
    let mut t = output::table(&["position", "stream", "rev", "type", "recorded", "data"]);
    for e in events {
        let data = match (e.content_type, std::str::from_utf8(&e.data)) {
            (ledger::ContentType::Json, Ok(text)) => text.to_owned(),
            _ => format!("({} bytes, binary)", e.data.len()),
        };
        t.add_row(vec![
            e.position.to_string(),
            e.stream.clone(),
            if e.is_tombstone() {
                "tombstone".into()
            } else {
                e.revision.to_string()
            },
            e.event_type.clone(),
            crate::time_fmt::format(e.recorded),
            output::clip(&data, 60),
        ]);
    }
    println!("{t}");
}
