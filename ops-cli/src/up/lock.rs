//! The data dir's lock, held by every process of one `bazaar up` run.
//!
//! `bazaar up` takes an exclusive `flock` on `<data-dir>/.lock` and hands
//! the locked file to each child (the broker and every service) as its
//! standard input. A lock belongs to the open file, which every child
//! shares, so it is held until the last process of the run has exited: if
//! `bazaar up` itself is killed, a second one on the same data dir is
//! refused while the first one's broker or services still run on its files
//! (two shops on one store lose orders and miscount stock).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

#[derive(Debug)]
pub struct DataDirLock {
    path: PathBuf,
    file: Flock<File>,
}

impl DataDirLock {
    /// Takes the lock, or names the processes that hold it.
    pub fn take(data_dir: &Path) -> anyhow::Result<DataDirLock> {
        let path = data_dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => Ok(DataDirLock { path, file }),
            Err((_, Errno::EWOULDBLOCK)) => {
                let holders = holders(&path);
                let pids: Vec<String> = holders.iter().map(|(pid, _)| pid.to_string()).collect();
                let named: Vec<String> = holders
                    .iter()
                    .map(|(pid, name)| format!("{pid} ({name})"))
                    .collect();
                if holders.is_empty() {
                    bail!(
                        "{} is in use by processes of an earlier `bazaar up` that outlived it; \
                         stop them, or pass another --data-dir",
                        data_dir.display()
                    );
                }
                bail!(
                    "{} is still in use by processes of an earlier `bazaar up` that outlived it: {}; \
                     stop them first (`kill {}`), or pass another --data-dir",
                    data_dir.display(),
                    named.join(", "),
                    pids.join(" ")
                )
            }
            Err((_, errno)) => {
                Err(errno).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
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
