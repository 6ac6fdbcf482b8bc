//! Tables that fit the terminal, and JSON.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    // On a terminal comfy-table fits the terminal's width; elsewhere `COLUMNS` when it is set
    // (as shells set it for scripts that ask), or a fixed width.
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        t.set_width(width_off_terminal(std::env::var("COLUMNS").ok().as_deref()));
    }
    t
}

/// The width of a table written elsewhere than a terminal: `COLUMNS` when it is a sensible
/// width, else 120.
fn width_off_terminal(columns: Option<&str>) -> u16 {
    columns
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| (40..=1000).contains(w))
        .unwrap_or(120)
}

/// One JSON value on its own line, written as it is made (recover's findings at 100,000
/// communities are tens of MB: no copy of the whole as one string first).
pub fn json_line(v: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Shortens text to `max` characters for a table cell.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::width_off_terminal;

    #[test]
    fn a_table_off_the_terminal_takes_columns_when_it_is_a_sensible_width() {
        assert_eq!(width_off_terminal(None), 120);
        assert_eq!(width_off_terminal(Some("200")), 200);
        assert_eq!(width_off_terminal(Some(" 80\n")), 80);
        assert_eq!(width_off_terminal(Some("10")), 120);
        assert_eq!(width_off_terminal(Some("wide")), 120);
    }
}
