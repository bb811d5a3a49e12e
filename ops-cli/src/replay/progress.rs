//! A replay's progress as the service reports it: a progress bar with rate
//! and ETA on a terminal, a plain line every few seconds otherwise (on
//! stderr, so stdout keeps only the report; none for a short replay).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use platform::control::ReplayProgress;

/// How often a plain progress line is printed.
const LINE_EVERY: Duration = Duration::from_secs(2);

pub enum Display {
    Bar(ProgressBar),
    Lines {
        started: Instant,
        last: Option<Instant>,
        latest: Option<ReplayProgress>,
    },
    Quiet,
}

impl Display {
    /// A bar when stdout is a terminal (and the output is for a person).
    pub fn new(quiet: bool) -> Display {
        if quiet {
            return Display::Quiet;
        }
        if std::io::stdout().is_terminal() {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            Display::Bar(bar)
        } else {
            Display::Lines {
                started: Instant::now(),
                last: None,
                latest: None,
            }
        }
    }

    pub fn update(&mut self, p: ReplayProgress) {
        match self {
            Display::Bar(bar) => {
                bar.set_length(p.total);
                bar.set_position(p.done);
            }
            Display::Lines {
                started,
                last,
                latest,
            } => {
                *latest = Some(p);
                // A replay shorter than one interval prints no progress.
                let due = match last {
                    Some(t) => t.elapsed() >= LINE_EVERY,
                    None => started.elapsed() >= LINE_EVERY,
                };
                if due {
                    *last = Some(Instant::now());
                    errln!("{}", line(p, started.elapsed()));
                }
            }
            Display::Quiet => {}
        }
    }

    pub fn finish(&mut self) {
        match self {
            Display::Bar(bar) => bar.finish_and_clear(),
            Display::Lines {
                started,
                last: Some(_),
                latest: Some(p),
            } => errln!("{}", line(*p, started.elapsed())),
            _ => {}
        }
    }

    pub fn abandon(&mut self) {
        if let Display::Bar(bar) = self {
            bar.abandon();
        }
    }
}

/// `replay: 1200/5000 events (24%), 3000 events/s, ETA 2s`
fn line(p: ReplayProgress, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        p.done as f64 / secs
    } else {
        0.0
    };
    let percent = p
        .done
        .saturating_mul(100)
        .checked_div(p.total)
        .unwrap_or(100);
    let eta = if rate > 0.0 && p.total > p.done {
        format!(", ETA {:.0}s", (p.total - p.done) as f64 / rate)
    } else {
        String::new()
    };
    format!(
        "replay: {}/{} events ({percent}%), {rate:.0} events/s{eta}",
        p.done, p.total
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_has_count_share_rate_and_eta() {
        let p = ReplayProgress {
            done: 1000,
            total: 4000,
        };
        assert_eq!(
            line(p, Duration::from_secs(2)),
            "replay: 1000/4000 events (25%), 500 events/s, ETA 6s"
        );
    }
}
