//! A small progress line on stderr: done/total, rate and ETA. Quiet when stderr is not a
//! terminal (CI logs, pipes), so it never fills a log with carriage returns.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    enabled: bool,
    state: Mutex<State>,
}

struct State {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    last_draw: Option<Instant>,
}

impl Progress {
    /// Draws only when stderr is a terminal.
    pub fn stderr() -> Self {
        Self::new(std::io::stderr().is_terminal())
    }

    /// Never draws (tests, `--quiet`).
    pub fn hidden() -> Self {
        Self::new(false)
    }

    fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            state: Mutex::new(State {
                label: String::new(),
                total: 0,
                done: 0,
                started: Instant::now(),
                last_draw: None,
            }),
        }
    }

    /// Starts a new phase of `total` steps (0 when unknown).
    pub fn phase(&self, label: &str, total: u64) {
        self.finish_line();
        let mut s = self.state.lock().expect("progress lock");
        s.label = label.to_string();
        s.total = total;
        s.done = 0;
        s.started = Instant::now();
        s.last_draw = None;
        drop(s);
        self.draw(true);
    }

    pub fn advance(&self, n: u64) {
        self.state.lock().expect("progress lock").done += n;
        self.draw(false);
    }

    /// Ends the current line (the next phase starts on a fresh one).
    pub fn finish_line(&self) {
        let drawn = self
            .state
            .lock()
            .expect("progress lock")
            .last_draw
            .is_some();
        if self.enabled && drawn {
            self.draw(true);
            let _ = writeln!(std::io::stderr());
        }
    }

    fn draw(&self, force: bool) {
        if !self.enabled {
            return;
        }
        let mut s = self.state.lock().expect("progress lock");
        let now = Instant::now();
        if !force
            && s.last_draw
                .is_some_and(|t| now - t < Duration::from_millis(200))
        {
            return;
        }
        s.last_draw = Some(now);
        let line = render(&s.label, s.done, s.total, now - s.started);
        let _ = write!(std::io::stderr(), "\r\x1b[2K{line}");
    }
}

/// The line for `done` of `total` after `elapsed`.
pub fn render(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    if total == 0 {
        return format!("{label}: {done} ({rate:.0}/s)");
    }
    let width = 24;
    let filled = ((done.min(total) * width) / total) as usize;
    let bar = format!(
        "{}{}",
        "#".repeat(filled),
        "-".repeat(width as usize - filled)
    );
    let eta = if rate > 0.0 && done < total {
        let left = (total - done) as f64 / rate;
        format!(", ETA {}", clock(left))
    } else {
        String::new()
    };
    format!(
        "{label} [{bar}] {done}/{total} ({rate:.0}/s, {}{eta})",
        clock(secs)
    )
}

fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rate_and_eta() {
        let line = render("creating", 50, 200, Duration::from_secs(10));
        assert_eq!(
            line,
            "creating [######------------------] 50/200 (5/s, 0:10, ETA 0:30)"
        );
        assert_eq!(
            render("listing", 300, 0, Duration::from_secs(3)),
            "listing: 300 (100/s)"
        );
        assert!(!render("x", 200, 200, Duration::from_secs(1)).contains("ETA"));
    }
}
