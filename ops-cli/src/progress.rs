//! Progress lines on stderr every few seconds while a long command runs
//! (stdout stays for the result, so `--json` output is never interleaved).

use std::time::{Duration, Instant};

/// How often a progress line is printed.
pub const EVERY: Duration = Duration::from_secs(3);

/// Prints `line(elapsed)` every [`EVERY`] until dropped. A run shorter than
/// that prints nothing.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start<F>(started: Instant, line: F) -> Progress
    where
        F: Fn(Duration) -> String + Send + 'static,
    {
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            ticks.tick().await;
            // Ends when the guard drops (the task is aborted).
            loop {
                ticks.tick().await;
                errln!("{}", line(started.elapsed()));
            }
        });
        Progress { task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Events per second over `elapsed`, 0 for no time at all.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}
