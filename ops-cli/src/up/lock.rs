//! The data dir's lock, held by every process of one `bazaar up` run.
//!
//! `bazaar up` takes an exclusive `flock` on `<data-dir>/.lock` and hands
//! the locked file to each child (the broker and every service) as its
//! standard input. A lock belongs to the open file, which every child
//! shares, so it is held until the last process of the run has exited: if
//! `bazaar up` itself is killed, a second one on the same data dir is
//! refused while the first one's broker or services still run on its files
//! (two shops on one store lose orders and miscount stock).
//!
//! What a killed run leaves behind is cleared up where that is safe: its
//! services stop by themselves within a second (they watch
//! `BAZAAR_SUPERVISOR_PID`), so `take` waits a few seconds for them; its
//! nats-server does not, so `take` stops it (SIGTERM, a clean shutdown)
//! when it is the only holder left and no `bazaar` process is its parent.
//! Anything else still holding the lock is named and refused.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::warn;

/// How long a killed run's services get to notice and stop by themselves.
const SERVICES_STOP_WITHIN: Duration = Duration::from_secs(5);
/// How long its nats-server gets to shut down cleanly after SIGTERM.
const BROKER_STOPS_WITHIN: Duration = Duration::from_secs(15);
/// The process name of the broker `bazaar up` starts.
const BROKER_NAME: &str = "nats-server";

#[derive(Debug)]
pub struct DataDirLock {
    path: PathBuf,
    file: Flock<File>,
}

impl DataDirLock {
    /// Takes the lock; clears up what a killed run left (see the module
    /// doc), or names the processes that hold it.
    pub async fn take(data_dir: &Path) -> anyhow::Result<DataDirLock> {
        let path = data_dir.join(".lock");
        if let Some(lock) = try_lock(&path)? {
            return Ok(lock);
        }
        if let Some(lock) = lock_within(&path, SERVICES_STOP_WITHIN).await? {
            return Ok(lock);
        }
        let left = holders(&path);
        let brokers: Vec<u32> = left
            .iter()
            .filter(|(pid, name)| name == BROKER_NAME && !has_bazaar_parent(*pid))
            .map(|(pid, _)| *pid)
            .collect();
        if !left.is_empty() && brokers.len() == left.len() {
            for pid in &brokers {
                warn!(
                    pid,
                    "stopping the nats-server that a killed `bazaar up` left running on this data dir"
                );
                if let Ok(pid) = i32::try_from(*pid) {
                    // Already gone is as good as stopped.
                    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                }
            }
            if let Some(lock) = lock_within(&path, BROKER_STOPS_WITHIN).await? {
                return Ok(lock);
            }
        }
        Err(refusal(data_dir, &holders(&path)))
    }

    /// The locked file as a child's standard input, so the child holds the
    /// lock while it runs.
    pub fn stdin(&self) -> anyhow::Result<Stdio> {
        Ok(Stdio::from(self.file()?))
    }

    /// Another handle on the locked file.
    pub fn file(&self) -> anyhow::Result<File> {
        self.file
            .try_clone()
            .with_context(|| format!("cannot share {}", self.path.display()))
    }
}

/// Takes the lock if it is free.
fn try_lock(path: &Path) -> anyhow::Result<Option<DataDirLock>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(file) => Ok(Some(DataDirLock {
            path: path.to_path_buf(),
            file,
        })),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(errno).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Tries the lock every 100 ms until it is taken or `within` has passed.
async fn lock_within(path: &Path, within: Duration) -> anyhow::Result<Option<DataDirLock>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(lock) = try_lock(path)? {
            return Ok(Some(lock));
        }
    }
    Ok(None)
}

/// Why the data dir cannot be used: who still holds it.
fn refusal(data_dir: &Path, holders: &[(u32, String)]) -> anyhow::Error {
    if holders.is_empty() {
        return anyhow::anyhow!(
            "{} is in use by processes of an earlier `bazaar up` that outlived it; \
             stop them, or pass another --data-dir",
            data_dir.display()
        );
    }
    let pids: Vec<String> = holders.iter().map(|(pid, _)| pid.to_string()).collect();
    let named: Vec<String> = holders
        .iter()
        .map(|(pid, name)| format!("{pid} ({name})"))
        .collect();
    anyhow::anyhow!(
        "{} is still in use by processes of an earlier `bazaar up` that outlived it: {}; \
         stop them first (`kill {}`), or pass another --data-dir",
        data_dir.display(),
        named.join(", "),
        pids.join(" ")
    )
}

/// True when the process's parent is a `bazaar` process (a live run, or
/// another command's), whose broker this is not ours to stop.
fn has_bazaar_parent(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The name in parentheses may hold spaces; the parent pid is the
    // second field after it.
    let Some(ppid) = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
    else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{ppid}/comm")).is_ok_and(|name| name.trim() == "bazaar")
}

/// The processes whose standard input is the lock file: (pid, name).
fn holders(lock: &Path) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let lock = lock.canonicalize().unwrap_or_else(|_| lock.to_path_buf());
    let mut found: Vec<(u32, String)> = entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stdin = std::fs::read_link(entry.path().join("fd/0")).ok()?;
            if stdin != lock {
                return None;
            }
            let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            Some((pid, name.trim().to_owned()))
        })
        .collect();
    found.sort();
    found
}
