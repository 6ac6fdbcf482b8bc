//! Progress bars for long work, shown only when standard error is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A bar over `total` items.
pub fn bar(total: u64, what: &str) -> ProgressBar {
    styled(
        total,
        what,
        "{msg:>10} [{bar:30}] {human_pos}/{human_len} ({per_sec}, {eta} left)",
    )
}

/// A bar over `total` bytes.
pub fn bytes_bar(total: u64, what: &str) -> ProgressBar {
    styled(
        total,
        what,
        "{msg:>10} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta} left)",
    )
}

/// A spinner for work that cannot say how far it is.
pub fn spinner(what: &str) -> ProgressBar {
    let pb = styled(None, what, "{spinner} {msg} ({elapsed})");
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

fn styled(total: impl Into<Option<u64>>, what: &str, template: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(total.into(), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(what.to_owned());
    pb
}
