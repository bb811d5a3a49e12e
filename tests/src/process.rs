//! One service process a test started: spawned with a fixed environment,
//! output appended to a log file, stopped with SIGTERM or SIGKILL.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Variables a child must not inherit from the test process: the test sets
/// every one of them itself (see `Shop`), and a stray `DATABASE_URL` or
/// `NATS_URL` in a developer's shell must not leak into a test. `NO_COLOR`
/// neither: whether a service colours its log is what a test checks.
fn inherited_but_ours(key: &str) -> bool {
    key.starts_with("BAZAAR_")
        || key.starts_with("NATS_")
        || key == "DATABASE_URL"
        || key == "NO_COLOR"
}

#[derive(Debug)]
pub(crate) struct ServiceProcess {
    pub(crate) instance: String,
    pub(crate) bin: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) log: PathBuf,
    pub(crate) child: Option<Child>,
}

impl ServiceProcess {
    pub(crate) fn spawn(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let stderr = log
            .try_clone()
            .context("cannot duplicate the log file handle")?;
        let mut cmd = Command::new(&self.bin);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(inherited_but_ours) {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .args(&self.args)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether the process runs; reaps it when it has exited.
    pub(crate) fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// How the process ended, if it has; reaps it.
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status.to_string())
    }

    pub(crate) fn terminate(&self) {
        // A frozen (SIGSTOPped) process would sit on SIGTERM until woken.
        self.signal(Signal::SIGCONT);
        self.signal(Signal::SIGTERM);
    }

    /// Sends `signal` to the process, if it runs.
    pub(crate) fn signal(&self, signal: Signal) {
        if let Some(child) = &self.child {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), signal);
            }
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of the log (at most the last 64 KiB).
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
            let _ = file.take(64 * 1024).read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// SIGTERM to every running process, up to `grace` for them to exit, then
/// SIGKILL for the rest.
pub(crate) fn stop_all<'a>(
    procs: impl IntoIterator<Item = &'a mut ServiceProcess>,
    grace: Duration,
) {
    let mut running: Vec<&mut ServiceProcess> = procs.into_iter().collect();
    running.retain_mut(|p| p.is_running());
    running.iter().for_each(|p| p.terminate());
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        running.retain_mut(|p| p.is_running());
        if running.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    running.iter_mut().for_each(|p| p.kill());
}
