//! Progress of a long operation on stderr: a bar redrawn in place on a terminal, plain
//! lines (every tenth of the way, and the end) otherwise, so a log file stays readable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the bar is redrawn at most.
const REDRAW: Duration = Duration::from_millis(100);
const WIDTH: usize = 30;

#[derive(Debug)]
pub struct Progress {
    label: &'static str,
    terminal: bool,
    last_draw: Option<Instant>,
    last_tenth: u64,
    drew_bar: bool,
}

impl Progress {
    pub fn new(label: &'static str) -> Self {
        Self::with_terminal(label, std::io::stderr().is_terminal())
    }

    pub fn with_terminal(label: &'static str, terminal: bool) -> Self {
        Self {
            label,
            terminal,
            last_draw: None,
            last_tenth: 0,
            drew_bar: false,
        }
    }

    /// Whether the bar is drawn in place (stderr is a terminal).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// What to print for `done` of `total`, if anything (pure, for tests).
    pub fn render(&mut self, done: u64, total: u64, now: Instant) -> Option<String> {
        let finished = done >= total;
        if self.terminal {
            let due = self
                .last_draw
                .is_none_or(|t| now.duration_since(t) >= REDRAW);
            if !due && !finished {
                return None;
            }
            self.last_draw = Some(now);
            self.drew_bar = true;
            let filled = if total == 0 {
                WIDTH
            } else {
                (done.min(total) as usize * WIDTH) / total as usize
            };
            let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH - filled));
            let end = if finished { "\n" } else { "" };
            return Some(format!("\r{} [{bar}] {done}/{total}{end}", self.label));
        }
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if tenth > self.last_tenth || (finished && self.last_tenth < 10) {
            self.last_tenth = tenth.max(u64::from(finished) * 10);
            return Some(format!("{} {done}/{total}\n", self.label));
        }
        None
    }

    /// Shows `done` of `total`.
    pub fn set(&mut self, done: u64, total: u64) {
        if let Some(text) = self.render(done, total, Instant::now()) {
            let mut err = std::io::stderr();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }

    /// Ends a bar left unfinished (an error midway), so the next line starts clean.
    pub fn abandon(&mut self) {
        if self.terminal && self.drew_bar {
            let _ = std::io::stderr().write_all(b"\n");
            self.drew_bar = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_a_terminal_it_prints_whole_lines_every_tenth() {
        let mut p = Progress::with_terminal("published", false);
        let now = Instant::now();
        let lines: Vec<String> = (0..=100).filter_map(|n| p.render(n, 100, now)).collect();
        assert_eq!(lines.len(), 10, "{lines:?}");
        assert!(lines.iter().all(|l| l.ends_with('\n') && !l.contains('\r')));
        assert_eq!(lines.last().unwrap(), "published 100/100\n");
    }

    #[test]
    fn on_a_terminal_it_redraws_a_bar_in_place_and_ends_the_line() {
        let mut p = Progress::with_terminal("published", true);
        let t0 = Instant::now();
        let first = p.render(0, 4, t0).unwrap();
        assert!(first.starts_with("\rpublished [") && !first.ends_with('\n'));
        assert_eq!(p.render(1, 4, t0), None, "not redrawn within 100 ms");
        let last = p.render(4, 4, t0).unwrap();
        assert!(
            last.contains(&"#".repeat(WIDTH)) && last.ends_with("4/4\n"),
            "{last}"
        );
    }
}
