//! What a failed system test prints: the end of every service's log, so a
//! failure on CI can be understood without running it again.

use std::path::PathBuf;

/// Prints the last lines of every instance's log when dropped during a
/// panic (a failed assertion); does nothing otherwise. Holds only the log
/// directory, so the shop stays free to be borrowed mutably.
#[derive(Debug)]
pub struct LogsOnFailure {
    dir: PathBuf,
    lines: usize,
}

impl crate::Shop {
    /// A guard that prints the services' logs if the test fails. Declare
    /// it after the shop, so it drops (and reads the logs) first:
    /// `let _logs = shop.logs_on_failure();`
    pub fn logs_on_failure(&self) -> LogsOnFailure {
        LogsOnFailure {
            dir: self.data_dir().join("logs"),
            lines: 40,
        }
    }
}

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut logs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        logs.sort();
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(self.lines)..].join("\n");
            let name = log.file_name().unwrap_or_default().to_string_lossy();
            eprintln!("----- {name} (last {} lines) -----\n{tail}", self.lines);
        }
    }
}
