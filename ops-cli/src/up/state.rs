//! `<data-dir>/up.json`: how other tools find the running local shop, and
//! how a second `bazaar up` on the same data dir knows to refuse.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpFile {
    pub http_url: String,
    pub nats_url: String,
    pub nats_user: String,
    pub nats_password: String,
    /// The `bazaar up` process.
    pub pid: u32,
    /// The nats-server `bazaar up` runs, if it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_pid: Option<u32>,
    pub services: Vec<ServiceEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceEntry {
    pub instance: String,
    /// The current process; absent while it is being restarted.
    pub pid: Option<u32>,
    pub health_url: String,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("up.json")
}

/// Fails when `up.json` names a `bazaar up` that is still alive; a stale
/// file from a run that was killed is left to be overwritten, and the pid
/// of that run is returned.
pub fn refuse_if_running(data_dir: &Path) -> anyhow::Result<Option<u32>> {
    let Ok(text) = fs::read_to_string(path(data_dir)) else {
        return Ok(None);
    };
    let Ok(previous) = serde_json::from_str::<UpFile>(&text) else {
        return Ok(None);
    };
    if previous.pid != std::process::id() && is_alive(previous.pid) {
        bail!(
            "a shop is already running from this data dir (pid {}); stop it first (Ctrl-C in its terminal, \
             or `kill {}`), or pass another --data-dir",
            previous.pid,
            previous.pid
        );
    }
    Ok(Some(previous.pid))
}

fn is_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM means it exists but is not ours.
    matches!(kill(Pid::from_raw(pid), None), Ok(()) | Err(Errno::EPERM))
}

/// The live `up.json`, rewritten whenever a child's pid changes.
#[derive(Debug)]
pub struct UpState {
    path: PathBuf,
    file: Mutex<UpFile>,
}

impl UpState {
    pub fn create(data_dir: &Path, file: UpFile) -> anyhow::Result<UpState> {
        let state = UpState {
            path: path(data_dir),
            file: Mutex::new(file),
        };
        let file = state.file.lock().unwrap_or_else(|e| e.into_inner());
        write(&state.path, &file)?;
        drop(file);
        Ok(state)
    }

    pub fn set_pid(&self, instance: &str, pid: Option<u32>) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = file.services.iter_mut().find(|s| s.instance == instance) {
            entry.pid = pid;
        }
        if let Err(e) = write(&self.path, &file) {
            tracing::warn!(error = format!("{e:#}"), "cannot update up.json");
        }
    }

    pub fn set_nats_pid(&self, pid: Option<u32>) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.nats_pid = pid;
        if let Err(e) = write(&self.path, &file) {
            tracing::warn!(error = format!("{e:#}"), "cannot update up.json");
        }
    }

    pub fn remove(&self) {
        if let Err(e) = fs::remove_file(&self.path) {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot remove up.json");
        }
    }
}

/// Written to a temporary file and renamed, so readers never see half a
/// file; mode 0600 because it holds the ops password.
fn write(path: &Path, file: &UpFile) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(file).context("cannot encode up.json")?;
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    out.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}
